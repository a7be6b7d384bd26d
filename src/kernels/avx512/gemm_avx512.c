/* AVX-512 GEMM micro-kernel: 14 x 32 tile of C in 28 zmm accumulators, a
 * packed B row in 2 registers and the A element broadcast: 31 of the 32 zmm
 * registers. 28 FMAs per k step keep both 512-bit FMA pipes busy through
 * the 4-cycle FMA latency with room to spare. Partial tiles are written
 * with masked loads and stores, so edges never touch memory outside C. */
#include <immintrin.h>
#define GEMM_MR 14
#define GEMM_NR 32
#include "gemm_pack.h"

static void ukernel(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp,
                    float *c, int64_t ldc, int64_t m, int64_t n, float alpha, float beta)
{
    __m512 acc[GEMM_MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < GEMM_MR; ++i) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        _mm_prefetch((const char *)(c + (i < m ? i : 0) * ldc), _MM_HINT_T0);
    }
    if (rs_a == 1) {
        for (int64_t p = 0; p < k; ++p, a += cs_a, bp += GEMM_NR) {
            const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 14
            for (int i = 0; i < GEMM_MR; ++i) {
                const __m512 ai = _mm512_set1_ps(a[i]);
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
            }
        }
    } else {
        for (int64_t p = 0; p < k; ++p, a += cs_a, bp += GEMM_NR) {
            const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 14
            for (int i = 0; i < GEMM_MR; ++i) {
                const __m512 ai = _mm512_set1_ps(a[i * rs_a]);
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
            }
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    if (m == GEMM_MR && n == GEMM_NR) {
#pragma GCC unroll 14
        for (int i = 0; i < GEMM_MR; ++i) {
            float *ci = c + i * ldc;
            __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), r0);
                r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), r1);
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
            __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
            if (beta != 0.0f) {
                r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k0, ci), r0);
                r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k1, ci + 16), r1);
            }
            _mm512_mask_storeu_ps(ci, k0, r0);
            _mm512_mask_storeu_ps(ci + 16, k1, r1);
        }
    }
}

/* Blocking for a 48 KiB L1d / 1 MiB L2 / 32 MiB L3 core: KC = 256 puts the
 * 256 x 32 B micro-panel (32 KiB) in L1 while the 14 x 256 A micro-panels
 * (14 KiB) stream from L2; MC = 336 rows (24 micro-panels) make a 336 KiB
 * packed A block, a third of L2, so it stays there while B micro-panels and
 * C tiles pass through; NC = 4096 columns make a 4 MiB packed B block,
 * shared by the threads, well inside L3. */
const struct cnnc_gemm_kernels cnnc_gemm_kernels_avx512 = {
    .mr = GEMM_MR, .nr = GEMM_NR,
    .mc = 336, .kc = 256, .nc = 4096,
    .ukernel = ukernel,
    .pack_a = gemm_pack_a,
    .pack_b = gemm_pack_b,
};
