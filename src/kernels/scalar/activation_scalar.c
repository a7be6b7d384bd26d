#include "activation_kernels.h"

static void relu_forward(int64_t n, const float *x, float *y)
{
    for (int64_t i = 0; i < n; ++i)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_backward(int64_t n, const float *x, const float *dy, float *dx)
{
    for (int64_t i = 0; i < n; ++i)
        dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

const struct cnnc_activation_kernels cnnc_activation_kernels_scalar = {
    .relu_forward = relu_forward,
    .relu_backward = relu_backward,
};
