/* Packing routines and the partial-tile store shared by the GEMM kernel
 * files. Each kernel file defines GEMM_MR and GEMM_NR and includes this
 * header, so that the loops are compiled with that file's ISA flags and
 * with the panel widths as constants. */
#ifndef GEMM_MR
#error "define GEMM_MR and GEMM_NR before including gemm_pack.h"
#endif
#include <string.h>
#include "gemm_kernels.h"

/* See cnnc_gemm_pack_a_fn. rs == 1 (op(A) columns contiguous: A transposed)
 * copies runs of MR floats; cs == 1 (rows contiguous) transposes blocks of
 * GEMM_MR rows by GEMM_PACK_T columns through registers. */
#define GEMM_PACK_T 16
static void gemm_pack_a(int64_t m, int64_t k, const float *a, int64_t rs, int64_t cs, float *ap)
{
    for (int64_t i0 = 0; i0 < m; i0 += GEMM_MR, ap += k * GEMM_MR) {
        const int64_t rows = cnnc_min_i64(GEMM_MR, m - i0);
        const float *src = a + i0 * rs;
        if (rs == 1 && rows == GEMM_MR) {
            for (int64_t p = 0; p < k; ++p)
                for (int i = 0; i < GEMM_MR; ++i)
                    ap[p * GEMM_MR + i] = src[p * cs + i];
        } else if (rs == 1) {
            for (int64_t p = 0; p < k; ++p)
                for (int i = 0; i < GEMM_MR; ++i)
                    ap[p * GEMM_MR + i] = i < rows ? src[p * cs + i] : 0.0f;
        } else {
            int64_t p0 = 0;
            if (rows == GEMM_MR) {
                for (; p0 + GEMM_PACK_T <= k; p0 += GEMM_PACK_T) {
                    float *dst = ap + p0 * GEMM_MR;
                    for (int i = 0; i < GEMM_MR; ++i) {
                        const float *row = src + i * rs + p0 * cs;
                        for (int p = 0; p < GEMM_PACK_T; ++p)
                            dst[p * GEMM_MR + i] = row[p * cs];
                    }
                }
            }
            for (int64_t p = p0; p < k; ++p)
                for (int i = 0; i < GEMM_MR; ++i)
                    ap[p * GEMM_MR + i] = i < rows ? src[i * rs + p * cs] : 0.0f;
        }
    }
}

/* See cnnc_gemm_pack_b_fn. cs == 1 (op(B) rows contiguous) copies runs of
 * NR floats; rs == 1 (B transposed) transposes. */
static void gemm_pack_b(int64_t k, int64_t n, const float *b, int64_t rs, int64_t cs, float *bp)
{
    for (int64_t j0 = 0; j0 < n; j0 += GEMM_NR, bp += k * GEMM_NR) {
        const int64_t cols = cnnc_min_i64(GEMM_NR, n - j0);
        const float *src = b + j0 * cs;
        if (cs == 1 && cols == GEMM_NR) {
            for (int64_t p = 0; p < k; ++p)
                memcpy(bp + p * GEMM_NR, src + p * rs, GEMM_NR * sizeof(float));
        } else if (cs == 1) {
            for (int64_t p = 0; p < k; ++p)
                for (int j = 0; j < GEMM_NR; ++j)
                    bp[p * GEMM_NR + j] = j < cols ? src[p * rs + j] : 0.0f;
        } else {
            int64_t p0 = 0;
            if (cols == GEMM_NR) {
                for (; p0 + GEMM_PACK_T <= k; p0 += GEMM_PACK_T) {
                    float *dst = bp + p0 * GEMM_NR;
                    for (int j = 0; j < GEMM_NR; ++j) {
                        const float *col = src + j * cs + p0 * rs;
                        for (int p = 0; p < GEMM_PACK_T; ++p)
                            dst[p * GEMM_NR + j] = col[p * rs];
                    }
                }
            }
            for (int64_t p = p0; p < k; ++p)
                for (int j = 0; j < GEMM_NR; ++j)
                    bp[p * GEMM_NR + j] = j < cols ? src[p * rs + j * cs] : 0.0f;
        }
    }
}

/* Writes the m x n corner of an accumulated tile t (row stride GEMM_NR) to
 * C with alpha and beta applied; beta == 0 does not read C. */
static inline void gemm_store_tile(const float *t, float *c, int64_t ldc, int64_t m, int64_t n,
                                   float alpha, float beta)
{
    for (int64_t i = 0; i < m; ++i) {
        float *ci = c + i * ldc;
        const float *ti = t + i * GEMM_NR;
        if (beta == 0.0f) {
            for (int64_t j = 0; j < n; ++j)
                ci[j] = alpha * ti[j];
        } else {
            for (int64_t j = 0; j < n; ++j)
                ci[j] = alpha * ti[j] + beta * ci[j];
        }
    }
}
