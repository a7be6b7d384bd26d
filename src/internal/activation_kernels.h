/* Per-ISA micro-kernels of the activation family. Each operates on a
 * contiguous chunk (elementwise) or a block of whole rows (softmax); the
 * driver (src/activation.c) splits work across threads. */
#ifndef CNNC_ACTIVATION_KERNELS_H
#define CNNC_ACTIVATION_KERNELS_H
#include "cnnc_internal.h"

/* y = f(x) over n elements; alpha is the parameter of LeakyReLU / ELU and
 * ignored by the others. y may alias x. */
typedef void (*cnnc_act_forward_fn)(int64_t n, const float *x, float *y, float alpha);
/* dx = dy * f'(x); dx may alias dy or x. */
typedef void (*cnnc_act_backward_fn)(int64_t n, const float *x, const float *dy, float *dx, float alpha);
struct cnnc_activation_kernels {
    /* Indexed by cnnc_activation (public enum in cnnc/activation.h). */
    cnnc_act_forward_fn forward[CNNC_ACTIVATION_COUNT];
    cnnc_act_backward_fn backward[CNNC_ACTIVATION_COUNT];

    /* Row primitives of softmax / log-softmax (and of the losses built on
     * them); the driver runs them row by row, so each ISA provides only the
     * vector loops. */
    float (*row_max)(int64_t n, const float *x);            /* -inf for n = 0; NaN is skipped */
    float (*exp_sum)(int64_t n, const float *x, float shift, float *y); /* y = exp(x - shift) unless
                                                                           y is NULL; returns the sum */
    void (*affine)(int64_t n, const float *x, float shift, float scale, float offset,
                   float *y);                               /* y = (x - shift) * scale + offset */
    float (*sum)(int64_t n, const float *x);
    float (*dot)(int64_t n, const float *a, const float *b);
    void (*softmax_grad)(int64_t n, const float *y, const float *dy, float s,
                         float *dx);                        /* dx = y * (dy - s) */
    void (*log_softmax_grad)(int64_t n, const float *y, const float *dy, float s,
                             float *dx);                    /* dx = dy - exp(y) * s */
};

extern CNNC_INTERNAL const struct cnnc_activation_kernels cnnc_activation_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_activation_kernels cnnc_activation_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_activation_kernels cnnc_activation_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_activation_kernels cnnc_activation_kernels_neon;

/* Each ISA file writes its activations as inline value / gradient functions
 * name##_f(x, alpha) and name##_b(x, dy, alpha) and expands these to get the
 * chunk kernels and the table (the map loops are in its vecmath header). */
#define CNNC_ACTIVATION_PAIR(name, map1, map2)                                                  \
    static void name##_forward(int64_t n, const float *x, float *y, float a)                    \
    {                                                                                           \
        map1(n, x, y, a, name##_f);                                                             \
    }                                                                                           \
    static void name##_backward(int64_t n, const float *x, const float *dy, float *dx, float a) \
    {                                                                                           \
        map2(n, x, dy, dx, a, name##_b);                                                        \
    }

#define CNNC_ACTIVATION_TABLE                                                                   \
    {                                                                                           \
        .forward = {[CNNC_ACTIVATION_RELU] = relu_forward,                                      \
                    [CNNC_ACTIVATION_LEAKY_RELU] = leaky_relu_forward,                          \
                    [CNNC_ACTIVATION_ELU] = elu_forward,                                        \
                    [CNNC_ACTIVATION_SIGMOID] = sigmoid_forward,                                \
                    [CNNC_ACTIVATION_TANH] = tanh_forward,                                      \
                    [CNNC_ACTIVATION_GELU] = gelu_forward,                                      \
                    [CNNC_ACTIVATION_GELU_TANH] = gelu_tanh_forward,                            \
                    [CNNC_ACTIVATION_SILU] = silu_forward,                                      \
                    [CNNC_ACTIVATION_SOFTPLUS] = softplus_forward,                              \
                    [CNNC_ACTIVATION_RELU6] = relu6_forward,                                    \
                    [CNNC_ACTIVATION_HARD_SIGMOID] = hard_sigmoid_forward,                      \
                    [CNNC_ACTIVATION_HARD_SWISH] = hard_swish_forward,                          \
                    [CNNC_ACTIVATION_SELU] = selu_forward},                                     \
        .backward = {[CNNC_ACTIVATION_RELU] = relu_backward,                                    \
                     [CNNC_ACTIVATION_LEAKY_RELU] = leaky_relu_backward,                        \
                     [CNNC_ACTIVATION_ELU] = elu_backward,                                      \
                     [CNNC_ACTIVATION_SIGMOID] = sigmoid_backward,                              \
                     [CNNC_ACTIVATION_TANH] = tanh_backward,                                    \
                     [CNNC_ACTIVATION_GELU] = gelu_backward,                                    \
                     [CNNC_ACTIVATION_GELU_TANH] = gelu_tanh_backward,                          \
                     [CNNC_ACTIVATION_SILU] = silu_backward,                                    \
                     [CNNC_ACTIVATION_SOFTPLUS] = softplus_backward,                            \
                     [CNNC_ACTIVATION_RELU6] = relu6_backward,                                  \
                     [CNNC_ACTIVATION_HARD_SIGMOID] = hard_sigmoid_backward,                    \
                     [CNNC_ACTIVATION_HARD_SWISH] = hard_swish_backward,                        \
                     [CNNC_ACTIVATION_SELU] = selu_backward},                                   \
        .row_max = row_max, .exp_sum = exp_sum, .affine = affine, .sum = sum, .dot = dot,       \
        .softmax_grad = softmax_grad, .log_softmax_grad = log_softmax_grad,                     \
    }

/* Constants of GELU shared by every path. */
#define CNNC_GELU_K0 0.797884560802865355f        /* sqrt(2/pi) */
#define CNNC_GELU_K1 0.044715f
#define CNNC_SELU_ALPHA 1.67326324235437728f
#define CNNC_SELU_SCALE 1.05070098735548049f

#endif
