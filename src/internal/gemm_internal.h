/* Entry points of the GEMM for other kernels of the library. */
#ifndef CNNC_GEMM_INTERNAL_H
#define CNNC_GEMM_INTERNAL_H
#include "cnnc_internal.h"
#include "gemm_kernels.h"

/* Same contract as cnnc_sgemm, on the calling thread only and without
 * opening an OpenMP region, so that it can run inside another kernel's
 * parallel region (e.g. one GEMM per thread). Uses workspace slots 0 and 1
 * of the calling thread. */
CNNC_INTERNAL cnnc_status cnnc_sgemm_serial(cnnc_transpose trans_a, cnnc_transpose trans_b,
                                            int64_t M, int64_t N, int64_t K, float alpha,
                                            const float *A, int64_t lda, const float *B, int64_t ldb,
                                            float beta, float *C, int64_t ldc);

/* op(B) packed once into the micro-kernel panels of the ISA active when it
 * was packed, block after block in the order the driver visits them (NC
 * column blocks, KC row blocks inside each), for a product with row-major
 * (untransposed) A. A GEMM given it skips packing B; if the active ISA has
 * changed since (cnnc_set_isa), it packs from B as usual. Read-only once
 * made: any number of threads may use it at once. */
struct cnnc_gemm_packed_b {
    const struct cnnc_gemm_kernels *kern;
    int64_t K, N;
    float *data;          /* cnnc_malloc'd, 64-byte aligned */
};

CNNC_INTERNAL cnnc_status cnnc_gemm_pack_b_once(cnnc_transpose trans_b, int64_t K, int64_t N, const float *B,
                                                int64_t ldb, struct cnnc_gemm_packed_b *packed);
CNNC_INTERNAL void cnnc_gemm_packed_b_free(struct cnnc_gemm_packed_b *packed);
/* Writes back the K x N B (row-major, ldb) that `packed` (not empty) was
 * packed from: the panels hold its floats unchanged. */
CNNC_INTERNAL void cnnc_gemm_unpack_b(const struct cnnc_gemm_packed_b *packed, float *B, int64_t ldb);
/* Bytes the packed B holds (0 when empty). */
CNNC_INTERNAL size_t cnnc_gemm_packed_b_bytes(const struct cnnc_gemm_packed_b *packed);

/* C (M x N, ldc) = epilogue(A (M x K, lda, row-major) * op(B)), with B
 * (K x N, ldb, row-major) read from `packed` when it fits, else packed from
 * B per call. Every element is summed over K in the same order as
 * cnnc_sgemm; threads as cnnc_sgemm (max_threads caps them, 1 = serial). */
CNNC_INTERNAL cnnc_status cnnc_sgemm_fused(int max_threads, int64_t M, int64_t N, int64_t K, const float *A,
                                           int64_t lda, const float *B, int64_t ldb,
                                           const struct cnnc_gemm_packed_b *packed,
                                           const struct cnnc_gemm_epilogue *epilogue, float *C, int64_t ldc);

/* Rows of the few-row product at most (cnnc_sgemv_fused). */
#define CNNC_GEMV_MAX_ROWS 64

/* C (M x N, ldc) = epilogue(A (M x K, lda) * B'), B' the row-major K x N B
 * (ldb) read in place, or with the per-column double scale fold applied to
 * each element as plan.c folds a batch norm ((float)(b * fold[j]); fold
 * NULL: none), for M <= CNNC_GEMV_MAX_ROWS: no packed copy of B, which is
 * read once, row after row (src/internal/gemv_template.h). Every element is
 * summed as cnnc_sgemm_fused sums it on the same ISA (from the folded B, for
 * fold; but for subnormal values of B, read as zero before a fold scales
 * them), so the two give the same bits. Threads (up to max_threads) split
 * the columns: the bits do not depend on their number. */
CNNC_INTERNAL cnnc_status cnnc_sgemv_fused(int max_threads, int64_t M, int64_t N, int64_t K, const float *A,
                                           int64_t lda, const float *B, int64_t ldb, const double *fold,
                                           const struct cnnc_gemm_epilogue *epilogue, float *C, int64_t ldc);

#endif
