/* Batch normalization over the channel (last) axis of a rows x c array
 * (rows = N * H * W in NHWC); statistics over all the rows.
 *
 * Training normalizes with the batch mean and the biased batch variance and
 * updates the running averages as Keras does:
 *     moving = moving * momentum + batch * (1 - momentum)
 * (PyTorch's momentum m is Keras's 1 - m.) The variance folded into
 * moving_var is the biased one, as Keras 3 and tf.keras's non-fused path
 * use; PyTorch (and TensorFlow's fused kernel) fold the unbiased variance
 * var * rows / (rows - 1): pass CNNC_BN_UNBIASED_MOVING_VAR for that.
 * Statistics are accumulated in double from float blocks, shifted by the
 * first row for stability, over partitions fixed by the sizes, so results do
 * not depend on the thread count. */
#ifndef CNNC_NORM_H
#define CNNC_NORM_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flags. */
#define CNNC_BN_UNBIASED_MOVING_VAR 1 /* fold var * rows / (rows - 1) into moving_var */
#define CNNC_BN_RELU 2                /* y = max(batch norm, 0): the fused BN + ReLU of ResNets, with the
                                       * bits of cnnc_relu_forward after it (NaN stays NaN, -0 stays -0) */

/* y = (x - mean) * inv_std * gamma + beta with the batch statistics;
 * mean and inv_std = 1 / sqrt(var + epsilon) (c each) are returned for the
 * backward pass. gamma NULL means 1, beta NULL means 0. moving_mean and
 * moving_var (either may be NULL to skip it) are updated in place. y may
 * alias x. Needs rows >= 1, epsilon > 0, 0 <= momentum <= 1. */
CNNC_API cnnc_status cnnc_batch_norm_train_forward(int64_t rows, int64_t c, const float *x, const float *gamma,
                                                   const float *beta, float momentum, float epsilon, int flags,
                                                   float *moving_mean, float *moving_var, float *y,
                                                   float *mean, float *inv_std);
/* y = (x - moving_mean) / sqrt(moving_var + epsilon) * gamma + beta
 * (flags: 0 or CNNC_BN_RELU). */
CNNC_API cnnc_status cnnc_batch_norm_inference(int64_t rows, int64_t c, const float *x, const float *gamma,
                                               const float *beta, const float *moving_mean,
                                               const float *moving_var, float epsilon, int flags, float *y);
/* Gradients of the training forward given mean and inv_std from it:
 *   dbeta = sum dy, dgamma = sum dy * xhat,
 *   dx = gamma * inv_std * (dy - dbeta / rows - xhat * dgamma / rows)
 * with xhat = (x - mean) * inv_std. After a fused ReLU (CNNC_BN_RELU), pass
 * its output as relu_y: dy is then taken as 0 where relu_y <= 0; otherwise
 * relu_y is NULL. dx may be NULL (not wanted) or alias dy exactly; dgamma and
 * dbeta must be given. Any other overlap between an output and an input or
 * another output gives CNNC_ERR_INVALID_ARGUMENT (likewise in the forward
 * functions, where only y == x is allowed). */
CNNC_API cnnc_status cnnc_batch_norm_backward(int64_t rows, int64_t c, const float *x, const float *dy,
                                              const float *relu_y, const float *gamma, const float *mean,
                                              const float *inv_std, float *dx, float *dgamma, float *dbeta);

#ifdef __cplusplus
}
#endif
#endif
