/* Single-precision general matrix multiply. */
#ifndef CNNC_GEMM_H
#define CNNC_GEMM_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CNNC_NO_TRANS = 0, CNNC_TRANS = 1 } cnnc_transpose;

/* C = alpha * op(A) * op(B) + beta * C, all matrices row-major.
 *
 * op(A) is M x K: A itself (M rows of lda >= K floats) for CNNC_NO_TRANS, or
 * the transpose of A (K rows of lda >= M floats) for CNNC_TRANS; likewise
 * op(B) is K x N with ldb >= N (no trans) or ldb >= K (trans); C is M x N
 * with ldc >= N.
 *
 * BLAS semantics: beta == 0 overwrites C without reading it (NaN and Inf in
 * C are ignored); alpha == 0 or K == 0 only scale C by beta (A and B are not
 * read and may be NULL); M == 0 or N == 0 does nothing. Negative sizes, a
 * leading dimension smaller than its row, or a NULL pointer that would be
 * read give CNNC_ERR_INVALID_ARGUMENT; a matrix whose extent (rows - 1) * ld
 * + cols floats overflows int64_t or size_t gives CNNC_ERR_OVERFLOW.
 *
 * C must not overlap A or B when they are read (alpha != 0 and K > 0):
 * such calls give CNNC_ERR_INVALID_ARGUMENT (C is written block by block
 * while A and B are still being read, so no in-place form is supported).
 *
 * Runs on up to cnnc_get_team_limit() threads; the result is the same bits
 * whatever the thread count, from run to run (each element of C is summed
 * over K in the same order every time). */
CNNC_API cnnc_status cnnc_sgemm(cnnc_transpose trans_a, cnnc_transpose trans_b,
                                int64_t M, int64_t N, int64_t K, float alpha,
                                const float *A, int64_t lda, const float *B, int64_t ldb,
                                float beta, float *C, int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif
