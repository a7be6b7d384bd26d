/* Portable GEMM micro-kernel: a 4 x 8 tile of accumulators that the
 * compiler keeps in (SSE) registers. Still cache-blocked by the driver. */
#define GEMM_MR 4
#define GEMM_NR 8
#include "gemm_pack.h"
#define CNNC_SIMD 0
#include "gemm_epilogue_template.h"

static inline void tile_sums(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp,
                             float acc[GEMM_MR * GEMM_NR])
{
    for (int64_t p = 0; p < k; ++p) {
        const float *b = bp + p * GEMM_NR;
        for (int i = 0; i < GEMM_MR; ++i) {
            const float ai = a[i * rs_a + p * cs_a];
            for (int j = 0; j < GEMM_NR; ++j)
                acc[i * GEMM_NR + j] += ai * b[j];
        }
    }
}

static void ukernel(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp,
                    float *c, int64_t ldc, int64_t m, int64_t n, float alpha, float beta)
{
    float acc[GEMM_MR * GEMM_NR] = {0};
    tile_sums(k, a, rs_a, cs_a, bp, acc);
    gemm_store_tile(acc, c, ldc, m, n, alpha, beta);
}

static void ukernel_staged(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp, float *c,
                           int64_t ldc, int64_t m, int64_t n, float alpha, float beta,
                           const struct cnnc_gemm_epilogue *ep, int64_t i0, int64_t j0)
{
    float acc[GEMM_MR * GEMM_NR] = {0};
    tile_sums(k, a, rs_a, cs_a, bp, acc);
    gemm_store_tile_staged(acc, c, ldc, m, n, alpha, beta, ep, i0, j0);
}

/* KC = 256: a 4 x 256 A panel (4 KiB) and a 256 x 8 B panel (8 KiB) sit in
 * L1; MC = 128 rows of A (128 KiB packed) stay in L2; NC = 2048 columns of B
 * (2 MiB packed) in L3. */
const struct cnnc_gemm_kernels cnnc_gemm_kernels_scalar = {
    .mr = GEMM_MR, .nr = GEMM_NR,
    .mc = 128, .kc = 256, .nc = 2048,
    .ukernel = ukernel,
    .pack_a = gemm_pack_a,
    .pack_b = gemm_pack_b,
    .epilogue = gemm_epilogue_simd,
    .ukernel_staged = ukernel_staged,
};
