#include <string.h>
#include "reduce.h"
#include "elementwise_kernels.h"
#define CNNC_REDUCE_WORKSPACE CNNC_ELEMENTWISE_WORKSPACE

#define REDUCE_GRAIN cnnc_work_grain(CNNC_WORK_REDUCE) /* elements per partition, roughly */
#define REDUCE_MAX_PARTS 32
#define REDUCE_COLUMN_CHUNK 4096     /* columns per task, so wide rows still split */
#define REDUCE_MAX_PARTIAL_DOUBLES (2 << 20)

/* The partition count depends on the sizes only, never on the threads. */
static int64_t partitions(int64_t rows, int64_t cols, int nq)
{
    if (rows <= 0 || cols <= 0)
        return 1;
    int64_t parts = cnnc_min_i64(cnnc_max_i64(rows * cols / REDUCE_GRAIN, 1), REDUCE_MAX_PARTS);
    parts = cnnc_min_i64(parts, rows);
    return cnnc_max_i64(1, cnnc_min_i64(parts, REDUCE_MAX_PARTIAL_DOUBLES / (nq * cols)));
}

double *cnnc_column_reduce_workspace(int64_t extra, int64_t rows, int64_t cols, int nq, double **scratch)
{
    int64_t parts = partitions(rows, cols, nq);
    int64_t doubles = extra + (parts > 1 ? parts * nq * cols : 0);
    size_t bytes;
    if (cnnc_float_bytes(doubles, &bytes) != CNNC_OK || bytes > SIZE_MAX / 2) {
        cnnc_error(CNNC_ERR_OVERFLOW, "reduction workspace of %lld doubles", (long long)doubles);
        return NULL;
    }
    double *base = cnnc_workspace(CNNC_REDUCE_WORKSPACE, 2 * bytes);
    *scratch = base ? base + extra : NULL;
    return base;
}

void cnnc_column_reduce(int64_t rows, int64_t cols, int nq, cnnc_column_block_fn fn, const void *ctx,
                        double *scratch, double *out)
{
    if (cols <= 0)
        return;
    if (rows <= 0) {
        memset(out, 0, sizeof(double) * (size_t)(nq * cols));
        return;
    }
    int64_t parts = partitions(rows, cols, nq);
    int64_t chunks = cnnc_ceil_div(cols, REDUCE_COLUMN_CHUNK);
    int64_t tasks = parts * chunks;
    double *partial = parts > 1 ? scratch : out;
    int threads = (int)cnnc_min_i64(cnnc_threads_for(rows * cols, REDUCE_GRAIN), tasks);
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
    (void)threads;
    if (parts > 1) {
        memcpy(out, partial, sizeof(double) * (size_t)(nq * cols));
        for (int64_t p = 1; p < parts; ++p) {
            const double *src = partial + p * nq * cols;
            for (int64_t i = 0; i < nq * cols; ++i)
                out[i] += src[i];
        }
    }
}
