/* Per-ISA kernel of the few-row product that reads B in place (the
 * inference runtime's dense layers at small batch: a matrix-vector product
 * bound by the bytes of B, which it streams once, row after row, in its
 * row-major K x N layout, with no packed copy). The driver (src/gemv.c)
 * owns the checks and the threads. */
#ifndef CNNC_GEMV_KERNELS_H
#define CNNC_GEMV_KERNELS_H
#include "gemm_kernels.h"

/* Columns of C per call of the kernel at most: rows of B are read in runs
 * of up to this many floats (16 KiB), long enough for the prefetchers. */
#define CNNC_GEMV_MAX_COLS 4096
/* The same with a fold to apply (the folded rows are kept in scratch). */
#define CNNC_GEMV_FOLD_COLS 1024
/* Floats of the kernel's accumulators (m rows of a run of columns), kept in
 * L1 across a KC block of B's rows: 32 KiB. */
#define CNNC_GEMV_ACC_FLOATS 8192
/* Rows of B the kernel reads at once (and folds into scratch). */
#define CNNC_GEMV_UNROLL 8
/* Floats of a kernel call's scratch: the accumulators, then the folded rows. */
#define CNNC_GEMV_SCRATCH_FLOATS (CNNC_GEMV_ACC_FLOATS + CNNC_GEMV_UNROLL * CNNC_GEMV_FOLD_COLS)

/* For i < m and j0 <= j < j0 + n (n <= CNNC_GEMV_MAX_COLS, or
 * CNNC_GEMV_FOLD_COLS with a fold; m * round_up(n, VW) <=
 * CNNC_GEMV_ACC_FLOATS):
 *   C[i * ldc + j] = stage(sum_p A[i * lda + p] * B'(p, j))
 * with B'(p, j) = B[p * ldb + j], or (float)(B[p * ldb + j] * fold[j]) in
 * double when fold is not NULL (a batch norm folded into a kernel that is
 * not written: the floats the fold writes into an owned copy), and stage the
 * GEMM output stage (bias, residual, activation; ep may be NULL), its
 * columns addressed absolutely (bias[j], residual[i * ldr + j]). The sum
 * runs over blocks of kc rows of B, each summed from zero in p order with
 * the ISA's multiply-add and added to the blocks before it: the order, and
 * so the bits, of the GEMM micro-kernel of the same ISA with that KC.
 * scratch: CNNC_GEMV_SCRATCH_FLOATS floats, 64-byte aligned. */
typedef void (*cnnc_gemv_rows_fn)(int64_t m, int64_t j0, int64_t n, int64_t k, int64_t kc, const float *a,
                                  int64_t lda, const float *b, int64_t ldb, const double *fold,
                                  const struct cnnc_gemm_epilogue *ep, float *c, int64_t ldc, float *scratch);

struct cnnc_gemv_kernels {
    int vw; /* floats per vector: the runs of columns are whole vectors but the last */
    cnnc_gemv_rows_fn rows;
};

extern CNNC_INTERNAL const struct cnnc_gemv_kernels cnnc_gemv_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_gemv_kernels cnnc_gemv_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_gemv_kernels cnnc_gemv_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_gemv_kernels cnnc_gemv_kernels_neon;

#endif
