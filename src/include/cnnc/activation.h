/* Elementwise activations and row-wise softmax, forward and backward.
 *
 * Elementwise functions take n >= 0 contiguous floats; outputs may alias
 * inputs exactly (in place: y == x, dx == x or dx == dy); any other overlap
 * of an output with an input gives CNNC_ERR_INVALID_ARGUMENT. The softmax
 * functions likewise allow exactly in place and refuse other overlaps. Backward functions take the forward input x and the
 * upstream gradient dy and write dx = dy * f'(x). NaN inputs give NaN;
 * infinite inputs give the mathematical limits (sigmoid(-inf) = 0,
 * tanh(+inf) = 1, gelu(-inf) = 0). All are multi-threaded for large n. */
#ifndef CNNC_ACTIVATION_H
#define CNNC_ACTIVATION_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Activation kinds for the generic entry points (values are stable). */
typedef enum cnnc_activation {
    CNNC_ACTIVATION_RELU = 0,       /* max(x, 0) */
    CNNC_ACTIVATION_LEAKY_RELU = 1, /* x > 0 ? x : alpha x */
    CNNC_ACTIVATION_ELU = 2,        /* x > 0 ? x : alpha (exp(x) - 1) */
    CNNC_ACTIVATION_SIGMOID = 3,    /* 1 / (1 + exp(-x)) */
    CNNC_ACTIVATION_TANH = 4,
    CNNC_ACTIVATION_GELU = 5,       /* x Phi(x), Phi the standard normal CDF (erf form) */
    CNNC_ACTIVATION_GELU_TANH = 6,  /* x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2 */
    CNNC_ACTIVATION_SILU = 7,       /* x sigmoid(x) (swish) */
    CNNC_ACTIVATION_SOFTPLUS = 8,   /* log(1 + exp(x)) */
    CNNC_ACTIVATION_RELU6 = 9,      /* min(max(x, 0), 6) */
    CNNC_ACTIVATION_HARD_SIGMOID = 10, /* relu6(x + 3) / 6 */
    CNNC_ACTIVATION_HARD_SWISH = 11,   /* x relu6(x + 3) / 6 */
    CNNC_ACTIVATION_SELU = 12,      /* 1.0507 (x > 0 ? x : 1.67326 (exp(x) - 1)) */
    CNNC_ACTIVATION_COUNT = 13
} cnnc_activation;

/* y = f(x) over n elements; alpha is used by LEAKY_RELU and ELU only. */
CNNC_API cnnc_status cnnc_activation_forward(cnnc_activation kind, int64_t n, const float *x,
                                             float *y, float alpha);
/* dx = dy * f'(x) over n elements. At the kinks the derivatives are those
 * of PyTorch: ReLU 0 and LeakyReLU alpha at 0, ELU alpha at 0, ReLU6 and
 * hard sigmoid 0 at both ends, hard swish 0 at -3 and 1 at 3. */
CNNC_API cnnc_status cnnc_activation_backward(cnnc_activation kind, int64_t n, const float *x,
                                              const float *dy, float *dx, float alpha);

/* Named forms of the above. */
CNNC_API cnnc_status cnnc_relu_forward(int64_t n, const float *x, float *y);
CNNC_API cnnc_status cnnc_relu_backward(int64_t n, const float *x, const float *dy, float *dx);
CNNC_API cnnc_status cnnc_leaky_relu_forward(int64_t n, const float *x, float *y, float alpha);
CNNC_API cnnc_status cnnc_leaky_relu_backward(int64_t n, const float *x, const float *dy, float *dx,
                                              float alpha);
CNNC_API cnnc_status cnnc_elu_forward(int64_t n, const float *x, float *y, float alpha);
CNNC_API cnnc_status cnnc_elu_backward(int64_t n, const float *x, const float *dy, float *dx,
                                       float alpha);
CNNC_API cnnc_status cnnc_sigmoid_forward(int64_t n, const float *x, float *y);
CNNC_API cnnc_status cnnc_sigmoid_backward(int64_t n, const float *x, const float *dy, float *dx);
CNNC_API cnnc_status cnnc_tanh_forward(int64_t n, const float *x, float *y);
CNNC_API cnnc_status cnnc_tanh_backward(int64_t n, const float *x, const float *dy, float *dx);
/* approximate = 0: exact erf form; non-zero: tanh approximation. */
CNNC_API cnnc_status cnnc_gelu_forward(int64_t n, const float *x, float *y, int approximate);
CNNC_API cnnc_status cnnc_gelu_backward(int64_t n, const float *x, const float *dy, float *dx,
                                        int approximate);

/* Softmax over each row of a rows x cols row-major matrix, computed as
 * exp(x - max) / sum so that no input overflows; -inf entries get 0 (a row
 * of only -inf, or with +inf or NaN, gives NaN, as in PyTorch). y may alias x. */
CNNC_API cnnc_status cnnc_softmax_forward(int64_t rows, int64_t cols, const float *x, float *y);
/* dx = y * (dy - sum(dy * y)) per row, from the forward OUTPUT y. */
CNNC_API cnnc_status cnnc_softmax_backward(int64_t rows, int64_t cols, const float *y,
                                           const float *dy, float *dx);
/* y = x - max - log(sum(exp(x - max))) per row. */
CNNC_API cnnc_status cnnc_log_softmax_forward(int64_t rows, int64_t cols, const float *x, float *y);
/* dx = dy - exp(y) * sum(dy) per row, from the forward OUTPUT y. */
CNNC_API cnnc_status cnnc_log_softmax_backward(int64_t rows, int64_t cols, const float *y,
                                               const float *dy, float *dx);

#ifdef __cplusplus
}
#endif
#endif
