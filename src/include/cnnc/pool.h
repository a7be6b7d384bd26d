/* Max and average pooling, 2-D (NHWC), 1-D (as 2-D with h = pool_h = 1) and
 * global; forward and backward.
 *
 * Windows never count padding: max pooling ignores it, average pooling
 * divides by the number of input elements inside the window (as Keras and
 * TensorFlow do; PyTorch's count_include_pad=False). Every window must hold
 * at least one input element, hence each pad < the pool size.
 *
 * Outputs must not share memory with inputs (windows of neighbouring
 * outputs read the same inputs): an overlap gives CNNC_ERR_INVALID_ARGUMENT. */
#ifndef CNNC_POOL_H
#define CNNC_POOL_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnnc_pool2d_params {
    int64_t n, h, w, c;                 /* input (N, H, W, C) */
    int64_t pool_h, pool_w;             /* window */
    int64_t stride_h, stride_w;         /* > 0 */
    int64_t pad_top, pad_bottom, pad_left, pad_right;
} cnnc_pool2d_params;

/* TensorFlow's "same" padding along one axis: out = ceil(in / stride),
 * total = max((out - 1) * stride + pool - in, 0), before = total / 2, the
 * odd element after. */
CNNC_API cnnc_status cnnc_pool_same_padding(int64_t in, int64_t pool, int64_t stride, int64_t *before,
                                            int64_t *after);
/* Validates p and gives the output height and width:
 * (h + pad_top + pad_bottom - pool_h) / stride_h + 1, and likewise. */
CNNC_API cnnc_status cnnc_pool2d_output_size(const cnnc_pool2d_params *p, int64_t *oh, int64_t *ow);

/* y (N, OH, OW, C). NaN in a window gives NaN. */
CNNC_API cnnc_status cnnc_max_pool2d_forward(const cnnc_pool2d_params *p, const float *x, float *y);
/* dx (N, H, W, C), overwritten: each dy goes to the first maximum of its
 * window in row-major window order (ties: the top-left one), summed where
 * windows overlap. The maxima are recomputed from x. */
CNNC_API cnnc_status cnnc_max_pool2d_backward(const cnnc_pool2d_params *p, const float *x, const float *dy,
                                              float *dx);
CNNC_API cnnc_status cnnc_avg_pool2d_forward(const cnnc_pool2d_params *p, const float *x, float *y);
/* dx overwritten: dy / (elements in the window) to each element of it. */
CNNC_API cnnc_status cnnc_avg_pool2d_backward(const cnnc_pool2d_params *p, const float *dy, float *dx);

/* Global pooling over H and W of x (N, H, W, C) -> y (N, C); the average is
 * accumulated in double. Backward: dx (N, H, W, C) overwritten. */
CNNC_API cnnc_status cnnc_global_avg_pool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c,
                                                    const float *x, float *y);
CNNC_API cnnc_status cnnc_global_avg_pool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c,
                                                     const float *dy, float *dx);
CNNC_API cnnc_status cnnc_global_max_pool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c,
                                                    const float *x, float *y);
/* dy goes to the first maximum (row-major) of each image and channel. */
CNNC_API cnnc_status cnnc_global_max_pool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c,
                                                     const float *x, const float *dy, float *dx);

#ifdef __cplusplus
}
#endif
#endif
