/* Per-ISA micro-kernels of 2-D pooling. Each computes (or back-propagates)
 * one output row over a range of channels; the driver (src/pool.c) clips the
 * window rows to the input and splits rows, images and channels across
 * threads. Windows are clipped to the input columns inside the kernels:
 * padding never takes part (max ignores it, average excludes it from the
 * count). */
#ifndef CNNC_POOL_KERNELS_H
#define CNNC_POOL_KERNELS_H
#include "cnnc_internal.h"

struct cnnc_pool_row {
    const float *x;     /* input (or dx) at input row ih0 of one image, column 0, channel 0 */
    int64_t rows;       /* window rows inside the input, >= 1 */
    int64_t w, c;       /* input width and channels (the row stride is w * c) */
    int64_t c0, cn;     /* the channels [c0, c0 + cn) to process */
    int64_t ow, kw, sw, pad_left;
    /* Backward: 1 adds into dx; 0 (windows that never overlap) stores the
     * window gradients and zeroes the row's columns no window covers, so
     * that dx need not be cleared first. */
    int accumulate;
};

struct cnnc_pool_kernels {
    /* y: the output row (ow * c floats, channels c0.. written). */
    void (*max_row)(const struct cnnc_pool_row *r, float *y);
    void (*avg_row)(const struct cnnc_pool_row *r, float *y);
    /* Adds the row's gradient into dx (laid out like r->x, at row ih0): to the
     * first maximum of each window (row-major window order, NaN counting as
     * the largest), or spread evenly over the window's input elements. */
    void (*max_row_backward)(const struct cnnc_pool_row *r, const float *dy, float *dx);
    void (*avg_row_backward)(const struct cnnc_pool_row *r, const float *dy, float *dx);
};

extern CNNC_INTERNAL const struct cnnc_pool_kernels cnnc_pool_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_pool_kernels cnnc_pool_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_pool_kernels cnnc_pool_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_pool_kernels cnnc_pool_kernels_neon;

#endif
