/* Deterministic column reductions: sums over the rows of a rows x cols
 * matrix (one or more quantities per column), accumulated in double, whose
 * result does not depend on the thread count. The rows are cut into a number
 * of partitions fixed by the problem size alone, every partition accumulates
 * into its own partial, and the partials are added in partition order. */
#ifndef CNNC_REDUCE_H
#define CNNC_REDUCE_H
#include "cnnc_internal.h"

/* Adds the contribution of rows [row0, row1) and columns [col0, col1) to
 * acc[q * acc_stride + (j - col0)] for each quantity q and column j. */
typedef void (*cnnc_column_block_fn)(const void *ctx, int64_t row0, int64_t row1, int64_t col0,
                                     int64_t col1, double *acc, int64_t acc_stride);

/* Workspace (slot 5 of the calling thread) for a reduction of these sizes:
 * returns `extra` doubles for the caller's own use (NULL with the error set
 * if it cannot be had) and sets *scratch to what cnnc_column_reduce needs. */
CNNC_INTERNAL double *cnnc_column_reduce_workspace(int64_t extra, int64_t rows, int64_t cols, int nq,
                                                   double **scratch);
/* out[q * cols + j] = the sum over all rows, for q < nq. rows * cols must
 * not overflow (callers check their sizes first). */
CNNC_INTERNAL void cnnc_column_reduce(int64_t rows, int64_t cols, int nq, cnnc_column_block_fn fn,
                                      const void *ctx, double *scratch, double *out);

#endif
