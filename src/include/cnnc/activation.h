/* Elementwise activations and row-wise softmax, forward and backward. */
#ifndef CNNC_ACTIVATION_H
#define CNNC_ACTIVATION_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = max(x, 0) over n elements. y may alias x. */
CNNC_API cnnc_status cnnc_relu_forward(int64_t n, const float *x, float *y);
/* dx = dy where x > 0, else 0. dx may alias dy. */
CNNC_API cnnc_status cnnc_relu_backward(int64_t n, const float *x, const float *dy, float *dx);

#ifdef __cplusplus
}
#endif
#endif
