/* Loss functions: per-sample loss and the gradient of the (weighted) sum.
 *
 * Every function here computes, for a batch of n samples,
 *   loss[i] = w_i * L_i                      (w_i = sample_weight[i], or 1)
 *   grad    = grad_scale * d(sum_i w_i L_i) / d(first argument)
 * where L_i is the sample's loss averaged over its non-batch positions
 * (so a mean-reduced batch loss is sum(loss) / n with grad_scale = 1/n).
 * `loss` and `grad` may each be NULL when not wanted. Inputs are row-major
 * float32; the outputs never alias the inputs except `grad` aliasing the first
 * argument exactly, which is allowed; any other overlap of an output with an
 * input or with the other output gives CNNC_ERR_INVALID_ARGUMENT. Results do not depend on the thread count.
 *
 * Label smoothing follows Keras: categorical targets t become
 * (1 - s) t + s / C, binary targets z become (1 - s) z + s / 2. */
#ifndef CNNC_LOSS_H
#define CNNC_LOSS_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* No label is ignored (the value of ignore_index that disables it). */
#define CNNC_NO_IGNORE INT64_MIN

/* Fused softmax + cross-entropy on logits of shape (n, positions, c):
 * L_i = mean over positions of -sum_j t_j log softmax(x)_j, computed as
 * log-sum-exp with the row maximum subtracted (stable for any finite logits).
 * Exactly one of `labels` (class indices, shape (n, positions), each in
 * [0, c) or equal to ignore_index) and `targets` (probabilities or one-hot,
 * shape (n, positions, c)) is non-NULL. A position whose label is
 * ignore_index contributes 0 to the loss and the gradient (it still counts in
 * the mean over positions, as PyTorch's reduction="none" then a mean would).
 * The gradient is exact for soft targets that do not sum to 1:
 * sum(t) softmax(x) - t. */
CNNC_API cnnc_status cnnc_softmax_cross_entropy(int64_t n, int64_t positions, int64_t c,
                                                const float *logits, const int64_t *labels,
                                                const float *targets, float label_smoothing,
                                                int64_t ignore_index, const float *sample_weight,
                                                float grad_scale, float *loss, float *grad);

/* Binary cross-entropy on logits x with targets z (both (n, d)):
 * L_i = mean_j max(x,0) - x z + log1p(exp(-|x|)); gradient sigmoid(x) - z. */
CNNC_API cnnc_status cnnc_sigmoid_cross_entropy(int64_t n, int64_t d, const float *logits,
                                                const float *targets, float label_smoothing,
                                                const float *sample_weight, float grad_scale,
                                                float *loss, float *grad);

/* Categorical cross-entropy on probabilities p of shape (n, positions, c), as
 * Keras computes it: each row is divided by its sum, clipped to
 * [epsilon, 1 - epsilon], and L = -sum_j t_j log(q_j) averaged over positions.
 * The gradient goes through the normalization and is zero where the clip is
 * active. Targets and ignore_index as in cnnc_softmax_cross_entropy. */
CNNC_API cnnc_status cnnc_categorical_cross_entropy(int64_t n, int64_t positions, int64_t c,
                                                    const float *probs, const int64_t *labels,
                                                    const float *targets, float label_smoothing,
                                                    int64_t ignore_index, float epsilon,
                                                    const float *sample_weight,
                                                    float grad_scale, float *loss, float *grad);

/* Binary cross-entropy on probabilities (n, d), as Keras: p clipped to
 * [epsilon, 1 - epsilon], L_i = mean_j -(z log p + (1 - z) log(1 - p));
 * zero gradient where the clip is active. */
CNNC_API cnnc_status cnnc_binary_cross_entropy(int64_t n, int64_t d, const float *probs,
                                               const float *targets, float label_smoothing,
                                               float epsilon, const float *sample_weight,
                                               float grad_scale, float *loss, float *grad);

/* L_i = mean_j (p - t)^2 over the d values of sample i. */
CNNC_API cnnc_status cnnc_mean_squared_error(int64_t n, int64_t d, const float *pred,
                                             const float *target, const float *sample_weight,
                                             float grad_scale, float *loss, float *grad);

/* L_i = mean_j |p - t|; the gradient uses sign(0) = 0. */
CNNC_API cnnc_status cnnc_mean_absolute_error(int64_t n, int64_t d, const float *pred,
                                              const float *target, const float *sample_weight,
                                              float grad_scale, float *loss, float *grad);

#ifdef __cplusplus
}
#endif
#endif
