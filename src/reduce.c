#include <string.h>
#include "reduce.h"

#define REDUCE_GRAIN 32768          /* elements per partition, roughly */
#define REDUCE_MAX_PARTS 32
#define REDUCE_COLUMN_CHUNK 4096     /* columns per task, so wide rows still split */
#define REDUCE_MAX_PARTIAL_BYTES (16u << 20)
#define REDUCE_WORKSPACE_SLOT 5

cnnc_status cnnc_column_reduce(int64_t rows, int64_t cols, int nq, cnnc_column_block_fn fn,
                               const void *ctx, double *out)
{
    if (nq < 1 || nq > 4)
        return cnnc_error(CNNC_ERR_INTERNAL, "column reduction of %d quantities", nq);
    if (cols <= 0)
        return CNNC_OK;
    if (rows <= 0) {
        memset(out, 0, sizeof(double) * (size_t)nq * (size_t)cols);
        return CNNC_OK;
    }
    int64_t elements;
    CNNC_TRY(cnnc_mul_sizes(&elements, 2, rows, cols));
    int64_t parts = cnnc_min_i64(cnnc_max_i64(elements / REDUCE_GRAIN, 1), REDUCE_MAX_PARTS);
    parts = cnnc_min_i64(parts, rows);
    int64_t per_part_bytes = (int64_t)sizeof(double) * nq * cols;
    if (per_part_bytes > 0)
        parts = cnnc_max_i64(1, cnnc_min_i64(parts, (int64_t)REDUCE_MAX_PARTIAL_BYTES / per_part_bytes));
    int64_t chunks = cnnc_ceil_div(cols, REDUCE_COLUMN_CHUNK);
    int64_t tasks = parts * chunks;

    double *partial = out;
    if (parts > 1) {
        partial = cnnc_workspace(REDUCE_WORKSPACE_SLOT, (size_t)per_part_bytes * (size_t)parts);
        if (!partial)
            return CNNC_ERR_OUT_OF_MEMORY;
    }
    int threads = (int)cnnc_min_i64(cnnc_threads_for(elements, REDUCE_GRAIN), tasks);
#ifdef CNNC_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
#endif
    for (int64_t t = 0; t < tasks; ++t) {
        unsigned fpu = cnnc_fpu_enter();
        int64_t p = t / chunks, chunk = t % chunks;
        int64_t row0 = rows * p / parts, row1 = rows * (p + 1) / parts;
        int64_t col0 = chunk * REDUCE_COLUMN_CHUNK;
        int64_t col1 = cnnc_min_i64(cols, col0 + REDUCE_COLUMN_CHUNK);
        double *acc = partial + p * nq * cols + col0;
        for (int q = 0; q < nq; ++q)
            memset(acc + q * cols, 0, sizeof(double) * (size_t)(col1 - col0));
        fn(ctx, row0, row1, col0, col1, acc, cols);
        cnnc_fpu_restore(fpu);
    }
    if (parts > 1) {
        memcpy(out, partial, (size_t)per_part_bytes);
        for (int64_t p = 1; p < parts; ++p) {
            const double *src = partial + p * nq * cols;
            for (int64_t i = 0; i < nq * cols; ++i)
                out[i] += src[i];
        }
    }
    (void)threads;
    return CNNC_OK;
}
