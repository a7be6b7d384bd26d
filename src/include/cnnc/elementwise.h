/* Elementwise operations on float32 arrays: residual add, multiply, bias add,
 * concatenation along the last axis, and dropout; forward and backward.
 *
 * "rows x c" arguments describe a C-contiguous array whose last axis has c
 * elements (channels, in NHWC), flattened to rows = product of the others.
 *
 * Outputs and inputs: where a function below says an output "may alias" an
 * input, exactly that (the same address, in place) is supported; every other
 * overlap of an output with an input (or, for concatenation, of two parts)
 * gives CNNC_ERR_INVALID_ARGUMENT. The dropout mask may overlap nothing. */
#ifndef CNNC_ELEMENTWISE_H
#define CNNC_ELEMENTWISE_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = a + b over n elements; y may alias a or b. The backward of a sum is dy
 * for both operands. */
CNNC_API cnnc_status cnnc_add_forward(int64_t n, const float *a, const float *b, float *y);
/* y = max(0, a + b) in one pass (the residual add and the ReLU after it),
 * with the same bits as cnnc_add_forward followed by cnnc_relu_forward (NaN
 * stays NaN, -0 stays -0); y may alias a or b. Its backward is the ReLU's
 * (cnnc_relu_backward on y), whose result is the gradient of both a and b. */
CNNC_API cnnc_status cnnc_add_relu_forward(int64_t n, const float *a, const float *b, float *y);
/* y = a * b over n elements; y may alias a or b. Backward: da = dy * b,
 * db = dy * a (two calls of this function). */
CNNC_API cnnc_status cnnc_multiply_forward(int64_t n, const float *a, const float *b, float *y);

/* y[i, j] = x[i, j] + bias[j] for a rows x c array; y may alias x. */
CNNC_API cnnc_status cnnc_bias_add_forward(int64_t rows, int64_t c, const float *x, const float *bias, float *y);
/* dbias[j] = sum over i of dy[i, j], accumulated in double; the result is
 * the same whatever the number of threads. */
CNNC_API cnnc_status cnnc_bias_add_backward(int64_t rows, int64_t c, const float *dy, float *dbias);

/* Concatenation of k arrays of shapes rows x widths[t] along the last axis
 * into y, rows x sum(widths). (Concatenating along any axis is this with rows
 * = the product of the axes before it and widths = the products of the axes
 * from it on.) */
CNNC_API cnnc_status cnnc_concat_forward(int64_t rows, int k, const int64_t *widths,
                                         const float *const *inputs, float *y);
/* The backward (a split): dinputs[t] = the columns of dy belonging to input t. */
CNNC_API cnnc_status cnnc_concat_backward(int64_t rows, int k, const int64_t *widths, const float *dy,
                                          float *const *dinputs);

/* Inverted dropout of n elements: element i is kept when the 32-bit hash of
 * (seed, offset + i) is at or above rate * 2^32, so the mask depends on
 * nothing else (not on the thread count or the ISA) and consecutive calls
 * can continue a stream through `offset`. The hash, for index j:
 *     key = splitmix64(seed); k0 = low 32 bits of key, k1 = high 32 bits
 *     bits = mix(mix(lo(j) ^ k0) + (hi(j) ^ k1))            (mod 2^32)
 *     mix(h): h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35; h ^= h >> 16
 * with splitmix64 the finalizer of Steele et al. (z += 0x9e3779b97f4a7c15,
 * then the 30/27/31 xor-shift-multiply steps); the threshold is
 * round(rate * 2^32), capped at 2^32 - 1. y = x / (1 - rate) where kept, 0
 * where dropped (a multiplication: NaN stays NaN); mask[i] = 1 or 0.
 * 0 <= rate < 1. */
CNNC_API cnnc_status cnnc_dropout_forward(int64_t n, float rate, uint64_t seed, uint64_t offset,
                                          const float *x, float *y, uint8_t *mask);
/* dx = dy / (1 - rate) where mask != 0, else 0. dx may alias dy. */
CNNC_API cnnc_status cnnc_dropout_backward(int64_t n, float rate, const float *dy, const uint8_t *mask,
                                           float *dx);

#ifdef __cplusplus
}
#endif
#endif
