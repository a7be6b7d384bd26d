/* Entry points of the GEMM for other kernels of the library. */
#ifndef CNNC_GEMM_INTERNAL_H
#define CNNC_GEMM_INTERNAL_H
#include "cnnc_internal.h"

/* Same contract as cnnc_sgemm, on the calling thread only and without
 * opening an OpenMP region, so that it can run inside another kernel's
 * parallel region (e.g. one GEMM per thread). Uses workspace slots 0 and 1
 * of the calling thread. */
CNNC_INTERNAL cnnc_status cnnc_sgemm_serial(cnnc_transpose trans_a, cnnc_transpose trans_b,
                                            int64_t M, int64_t N, int64_t K, float alpha,
                                            const float *A, int64_t lda, const float *B, int64_t ldb,
                                            float beta, float *C, int64_t ldc);

#endif
