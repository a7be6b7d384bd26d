/* AVX-512 GEMM micro-kernel: 14 x 32 tile of C in 28 zmm accumulators, a
 * packed B row in 2 registers and the A element broadcast: 31 of the 32 zmm
 * registers. 28 FMAs per k step keep both 512-bit FMA pipes busy through
 * the 4-cycle FMA latency with room to spare. Partial tiles are written
 * with masked loads and stores, so edges never touch memory outside C. */
#include <immintrin.h>
#define GEMM_MR 14
#define GEMM_NR 32
#include "gemm_pack.h"
#define CNNC_SIMD 2
#include "gemm_epilogue_template.h"

/* In-register transpose of a 16 x 16 block: r[i] holds row i on entry and
 * column i on exit. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    }
}

/* dst[p * dst_stride + i] = src[i * src_stride + p] for i < rows (<= 16),
 * p < k, and 0 for rows <= i < 16 (stores only the first `width` lanes of
 * each column: width = 14 for A panels, 16 for half a B panel). Blocks of
 * 16 columns go through transpose16; the last partial block uses masked
 * loads, so nothing past the rows is read. */
static inline __attribute__((always_inline)) void
transpose_rows(int64_t rows, int64_t k, const float *src, int64_t src_stride, float *dst,
               int64_t dst_stride, const int width)
{
    const __mmask16 store = (__mmask16)((1u << width) - 1);
    for (int64_t p0 = 0; p0 < k; p0 += 16) {
        const int64_t cols = cnnc_min_i64(16, k - p0);
        const __mmask16 load = cols == 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i)
            r[i] = i < rows ? _mm512_maskz_loadu_ps(load, src + i * src_stride + p0) : _mm512_setzero_ps();
        transpose16(r);
        if (cols == 16) {
#pragma GCC unroll 16
            for (int p = 0; p < 16; ++p)
                _mm512_mask_storeu_ps(dst + (p0 + p) * dst_stride, store, r[p]);
        } else {
            for (int p = 0; p < cols; ++p)
                _mm512_mask_storeu_ps(dst + (p0 + p) * dst_stride, store, r[p]);
        }
    }
}

/* Packing op(A) stored transposed (rs == 1): each k step of a panel is a
 * run of MR contiguous floats, copied with one masked load and store. The
 * loop walks A row by row (k outer), so that memory is read sequentially
 * and the hardware prefetcher streams it; the panels being written stay in
 * L2. Row-major op(A) (cs == 1) is transposed 16 columns at a time. */
static void pack_a(int64_t m, int64_t k, const float *a, int64_t rs, int64_t cs, float *ap)
{
    if (rs != 1) {
        if (cs != 1) {
            gemm_pack_a(m, k, a, rs, cs, ap);
            return;
        }
        for (int64_t i0 = 0; i0 < m; i0 += GEMM_MR, ap += k * GEMM_MR)
            transpose_rows(cnnc_min_i64(GEMM_MR, m - i0), k, a + i0 * rs, rs, ap, GEMM_MR, GEMM_MR);
        return;
    }
    const __mmask16 full = (1u << GEMM_MR) - 1;
    const int64_t panels = m / GEMM_MR, rest = m - panels * GEMM_MR;
    const __mmask16 last = (__mmask16)((1u << rest) - 1);
    const int64_t panel_stride = k * GEMM_MR;
    for (int64_t p = 0; p < k; ++p) {
        const float *src = a + p * cs;
        float *dst = ap + p * GEMM_MR;
        _mm_prefetch((const char *)(src + 8 * cs), _MM_HINT_T0);
        int64_t q = 0;
        for (; q < panels; ++q)
            _mm512_mask_storeu_ps(dst + q * panel_stride, full,
                                  _mm512_maskz_loadu_ps(full, src + q * GEMM_MR));
        if (rest)
            _mm512_mask_storeu_ps(dst + q * panel_stride, full,
                                  _mm512_maskz_loadu_ps(last, src + q * GEMM_MR));
    }
}

/* Packing row-major op(B) (cs == 1): each k step is NR contiguous floats,
 * two masked loads so that a partial panel is zero-filled without a
 * scalar loop. Transposed op(B) (rs == 1) is transposed 16 x 16 at a time. */
static void pack_b(int64_t k, int64_t n, const float *b, int64_t rs, int64_t cs, float *bp)
{
    if (cs != 1) {
        if (rs != 1) {
            gemm_pack_b(k, n, b, rs, cs, bp);
            return;
        }
        /* op(B) transposed: its columns are rows of memory. */
        for (int64_t j0 = 0; j0 < n; j0 += GEMM_NR, bp += k * GEMM_NR)
            for (int64_t h = 0; h < GEMM_NR; h += 16)
                transpose_rows(cnnc_max_i64(0, cnnc_min_i64(16, n - j0 - h)), k, b + (j0 + h) * cs, cs,
                               bp + h, GEMM_NR, 16);
        return;
    }
    for (int64_t j0 = 0; j0 < n; j0 += GEMM_NR, bp += k * GEMM_NR) {
        const int64_t cols = cnnc_min_i64(GEMM_NR, n - j0);
        const __mmask16 k0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
        const __mmask16 k1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
        const float *src = b + j0;
        for (int64_t p = 0; p < k; ++p) {
            _mm512_store_ps(bp + p * GEMM_NR, _mm512_maskz_loadu_ps(k0, src + p * rs));
            _mm512_store_ps(bp + p * GEMM_NR + 16, _mm512_maskz_loadu_ps(k1, src + p * rs + 16));
        }
    }
}

/* acc += A * Bp over k steps. A(i, p) = a[i * rs_a + p * cs_a] with rs_a == 1
 * when !rows (packed or transposed A: MR consecutive floats per step) and
 * cs_a == 1 when rows (MR rows of A read in place). With one half, only the
 * first 16 columns are computed (n <= 16: half the FMAs); only the first
 * mrows rows of the tile are computed (the others are left alone). Inlined into each
 * combination so that the loops have constant strides and no branches.
 * Rows read in place are addressed as base[t] + {0, 1, 2} * rs_a with five
 * bases, which x86 addressing (base + index * 4 or 8) covers without
 * spilling fourteen row pointers. */
static inline __attribute__((always_inline)) void
accumulate(__m512 acc[GEMM_MR][2], int64_t k, const float *a, int64_t rs_a, int64_t cs_a,
           const float *bp, const int rows, const int halves, const int mrows)
{
    const float *base[5];
#pragma GCC unroll 5
    for (int t = 0; t < 5; ++t)
        base[t] = a + 3 * t * rs_a;
    for (int64_t p = 0; p < k; ++p, bp += GEMM_NR) {
        const __m512 b0 = _mm512_load_ps(bp);
        const __m512 b1 = halves == 2 ? _mm512_load_ps(bp + 16) : b0;
#pragma GCC unroll 14
        for (int i = 0; i < mrows; ++i) {
            const __m512 ai = _mm512_set1_ps(rows ? base[i / 3][(i % 3) * rs_a] : a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            if (halves == 2)
                acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        if (rows) {
#pragma GCC unroll 5
            for (int t = 0; t < 5; ++t)
                base[t] += 1;
        } else {
            a += cs_a;
        }
    }
}

/* Writes the m x n corner of the accumulated tile to C with alpha and beta
 * and, unless kind < 0, the output stage of that kind (gemm_stage_kind,
 * operands st) applied in registers. sums: alpha is 1 and beta 0 (the tile
 * is stored as summed: 1 * v is v). */
static inline __attribute__((always_inline)) void
store_tile(__m512 acc[GEMM_MR][2], float *c, int64_t ldc, int64_t m, int64_t n, float alpha, float beta,
           const struct gemm_tile_stage *st, const int kind, const int sums)
{
    if (sums)
        alpha = 1.0f, beta = 0.0f;
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (m == GEMM_MR && n == GEMM_NR) {
#pragma GCC unroll 14
        for (int i = 0; i < GEMM_MR; ++i) {
            float *ci = c + i * ldc;
            __m512 r0 = sums ? acc[i][0] : _mm512_mul_ps(va, acc[i][0]);
            __m512 r1 = sums ? acc[i][1] : _mm512_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), r0);
                r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), r1);
            }
            if (kind >= 0) {
                r0 = gemm_stage_vector(st, r0, i, 0, 16, 1, kind);
                r1 = gemm_stage_vector(st, r1, i, 16, 16, 1, kind);
            }
            _mm512_storeu_ps(ci, r0);
            _mm512_storeu_ps(ci + 16, r1);
        }
    } else {
        const __mmask16 k0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
        const __mmask16 k1 = n >= 32 ? 0xffff : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
#pragma GCC unroll 14
        for (int i = 0; i < GEMM_MR; ++i) {
            if (i >= m)
                break;
            float *ci = c + i * ldc;
            __m512 r0 = sums ? acc[i][0] : _mm512_mul_ps(va, acc[i][0]);
            __m512 r1 = sums ? acc[i][1] : _mm512_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k0, ci), r0);
                r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k1, ci + 16), r1);
            }
            if (kind >= 0) {
                r0 = gemm_stage_vector(st, r0, i, 0, n < 16 ? n : 16, 0, kind);
                r1 = gemm_stage_vector(st, r1, i, 16, n > 16 ? n - 16 : 0, 0, kind);
            }
            _mm512_mask_storeu_ps(ci, k0, r0);
            _mm512_mask_storeu_ps(ci + 16, k1, r1);
        }
    }
}

/* The micro-kernel, with the output stage ep (or none: NULL) applied to the
 * tile in registers before it is stored. */
static inline __attribute__((always_inline)) void
ukernel_body(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp, float *c, int64_t ldc,
             int64_t m, int64_t n, float alpha, float beta, const struct cnnc_gemm_epilogue *ep, int64_t i0,
             int64_t j0)
{
    __m512 acc[GEMM_MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < GEMM_MR; ++i) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + (i < m ? i : 0) * ldc), _MM_HINT_T0);
    }
    /* A packed panel of at most MR / 2 rows (the last of 49 rows: a 7 x 7
     * image at batch 1) runs the FMAs of its rows alone, each summed
     * exactly as in a full tile; one or two rows (a dense layer at batch 1
     * or 2, a matrix-vector product bound by the FMA latency) run two rows'
     * FMAs: 4 cycles per k step instead of 7 (the 1024 -> 1000 dense layer
     * of a MobileNet at batch 1: 0.19 -> 0.14 ms, one thread). A read in
     * place always has MR rows. */
    if (rs_a == 1 && m <= 2)
        n > 16 ? accumulate(acc, k, a, 1, cs_a, bp, 0, 2, 2) : accumulate(acc, k, a, 1, cs_a, bp, 0, 1, 2);
    else if (rs_a == 1 && m <= GEMM_MR / 2)
        n > 16 ? accumulate(acc, k, a, 1, cs_a, bp, 0, 2, GEMM_MR / 2)
               : accumulate(acc, k, a, 1, cs_a, bp, 0, 1, GEMM_MR / 2);
    else if (rs_a == 1)
        n > 16 ? accumulate(acc, k, a, 1, cs_a, bp, 0, 2, GEMM_MR) : accumulate(acc, k, a, 1, cs_a, bp, 0, 1, GEMM_MR);
    else
        n > 16 ? accumulate(acc, k, a, rs_a, 1, bp, 1, 2, GEMM_MR) : accumulate(acc, k, a, rs_a, 1, bp, 1, 1, GEMM_MR);
    if (!ep) {
        store_tile(acc, c, ldc, m, n, alpha, beta, NULL, -1, 0);
        return;
    }
    /* The runtime's products sum the tile once (alpha 1, beta 0): no
     * multiplication, and no test of beta per row. */
    const int sums = alpha == 1.0f && beta == 0.0f;
#define STORE_KIND(kind)                                                  \
    case kind:                                                            \
        if (sums)                                                         \
            store_tile(acc, c, ldc, m, n, alpha, beta, &st, kind, 1);     \
        else                                                              \
            store_tile(acc, c, ldc, m, n, alpha, beta, &st, kind, 0);     \
        break;
    const struct gemm_tile_stage st = gemm_tile_stage(ep, i0, j0);
    switch (gemm_stage_kind(ep)) { GEMM_STAGE_KINDS(STORE_KIND) }
#undef STORE_KIND
}

GEMM_UKERNEL_ENTRIES

/* Blocking for a 48 KiB L1d / 1 MiB L2 / 32 MiB L3 core. KC = 512: the
 * 14 x 512 A micro-panel (28 KiB) stays in L1 across the k loop while the
 * 512 x 32 B micro-panel (64 KiB) streams from L2 at 128 bytes per 28 FMAs,
 * far below L2 bandwidth; a long KC halves the C tile loads and stores per
 * flop compared with KC = 256 (measured ~5% faster at n >= 1024). MC = 280
 * rows (20 micro-panels) make a 560 KiB packed A block, about half of L2,
 * leaving the rest for the B micro-panels and C. NC = 4096 columns make an
 * 8 MiB packed B block, shared by the threads, in L3. */
const struct cnnc_gemm_kernels cnnc_gemm_kernels_avx512 = {
    .mr = GEMM_MR, .nr = GEMM_NR,
    .mc = 280, .kc = 512, .nc = 4096,
    .ukernel = ukernel,
    .pack_a = pack_a,
    .pack_b = pack_b,
    .epilogue = gemm_epilogue_simd,
    .ukernel_staged = ukernel_staged,
};
