/* AVX2/FMA GEMM micro-kernel: 6 x 16 tile of C in 12 ymm accumulators, a
 * packed B row in 2 registers and one broadcast A element: 15 of the 16
 * ymm registers, 12 FMAs per 2 loads + 6 broadcasts. */
#include <immintrin.h>
#define GEMM_MR 6
#define GEMM_NR 16
#include "gemm_pack.h"
#define CNNC_SIMD 1
#include "gemm_epilogue_template.h"

/* acc += A * Bp over k steps; see the AVX-512 kernel for the conventions
 * (rows: MR rows of A read in place, addressed from two bases as
 * base + {0, 1, 2} * rs_a; halves == 1: only the first 8 columns; only the
 * first mrows rows). */
static inline __attribute__((always_inline)) void
accumulate(__m256 acc[GEMM_MR][2], int64_t k, const float *a, int64_t rs_a, int64_t cs_a,
           const float *bp, const int rows, const int halves, const int mrows)
{
    const float *base[2] = {a, a + 3 * rs_a};
    for (int64_t p = 0; p < k; ++p, bp += GEMM_NR) {
        const __m256 b0 = _mm256_load_ps(bp);
        const __m256 b1 = halves == 2 ? _mm256_load_ps(bp + 8) : b0;
#pragma GCC unroll 6
        for (int i = 0; i < mrows; ++i) {
            const __m256 ai = _mm256_broadcast_ss(rows ? &base[i / 3][(i % 3) * rs_a] : a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            if (halves == 2)
                acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        if (rows) {
            base[0] += 1;
            base[1] += 1;
        } else {
            a += cs_a;
        }
    }
}

/* Writes a whole accumulated tile to C with alpha and beta and, unless
 * kind < 0, the output stage of that kind (gemm_stage_kind, operands st)
 * applied in registers. */
static inline __attribute__((always_inline)) void
store_whole_tile(__m256 acc[GEMM_MR][2], float *c, int64_t ldc, float alpha, float beta,
                 const struct gemm_tile_stage *st, const int kind)
{
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < GEMM_MR; ++i) {
        float *ci = c + i * ldc;
        __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);
            r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);
        }
        if (kind >= 0) {
            r0 = gemm_stage_vector(st, r0, i, 0, 8, 1, kind);
            r1 = gemm_stage_vector(st, r1, i, 8, 8, 1, kind);
        }
        _mm256_storeu_ps(ci, r0);
        _mm256_storeu_ps(ci + 8, r1);
    }
}

/* The micro-kernel, with the output stage ep (or none: NULL) applied to a
 * whole tile in registers before it is stored (to a partial one in L1). */
static inline __attribute__((always_inline)) void
ukernel_body(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp, float *c, int64_t ldc,
             int64_t m, int64_t n, float alpha, float beta, const struct cnnc_gemm_epilogue *ep, int64_t i0,
             int64_t j0)
{
    __m256 acc[GEMM_MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < GEMM_MR; ++i)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    /* A packed panel of at most MR / 2 rows runs the FMAs of its rows
     * alone (as the AVX-512 kernel does). */
    if (rs_a == 1 && m <= GEMM_MR / 2)
        n > 8 ? accumulate(acc, k, a, 1, cs_a, bp, 0, 2, GEMM_MR / 2)
              : accumulate(acc, k, a, 1, cs_a, bp, 0, 1, GEMM_MR / 2);
    else if (rs_a == 1)
        n > 8 ? accumulate(acc, k, a, 1, cs_a, bp, 0, 2, GEMM_MR) : accumulate(acc, k, a, 1, cs_a, bp, 0, 1, GEMM_MR);
    else
        n > 8 ? accumulate(acc, k, a, rs_a, 1, bp, 1, 2, GEMM_MR) : accumulate(acc, k, a, rs_a, 1, bp, 1, 1, GEMM_MR);
    if (m == GEMM_MR && n == GEMM_NR) {
        if (!ep) {
            store_whole_tile(acc, c, ldc, alpha, beta, NULL, -1);
            return;
        }
#define STORE_KIND(kind) \
    case kind: store_whole_tile(acc, c, ldc, alpha, beta, &st, kind); break;
        const struct gemm_tile_stage st = gemm_tile_stage(ep, i0, j0);
        switch (gemm_stage_kind(ep)) { GEMM_STAGE_KINDS(STORE_KIND) }
#undef STORE_KIND
    } else {
        float t[GEMM_MR * GEMM_NR] __attribute__((aligned(32)));
#pragma GCC unroll 6
        for (int i = 0; i < GEMM_MR; ++i) {
            _mm256_store_ps(t + i * GEMM_NR, acc[i][0]);
            _mm256_store_ps(t + i * GEMM_NR + 8, acc[i][1]);
        }
        if (ep)
            gemm_store_tile_staged(t, c, ldc, m, n, alpha, beta, ep, i0, j0);
        else
            gemm_store_tile(t, c, ldc, m, n, alpha, beta);
    }
}

GEMM_UKERNEL_ENTRIES

/* Blocking for a 48 KiB L1d / 1 MiB L2 / 32 MiB L3 core: KC = 256 puts the
 * 256 x 16 B micro-panel (16 KiB) in L1 next to two streaming 6 x 256 A
 * micro-panels (6 KiB each); MC = 240 rows make a 240 KiB packed A block,
 * a quarter of L2, leaving room for the B micro-panels and C; NC = 4096
 * columns make a 4 MiB packed B block, shared by the threads, in L3. */
const struct cnnc_gemm_kernels cnnc_gemm_kernels_avx2 = {
    .mr = GEMM_MR, .nr = GEMM_NR,
    .mc = 240, .kc = 256, .nc = 4096,
    .ukernel = ukernel,
    .pack_a = gemm_pack_a,
    .pack_b = gemm_pack_b,
    .epilogue = gemm_epilogue_simd,
    .ukernel_staged = ukernel_staged,
};
