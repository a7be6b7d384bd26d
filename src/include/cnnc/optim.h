/* Fused optimizer updates over flat float32 parameter arrays, in place.
 *
 * Each update reads the parameter p, its gradient g and the optimizer state
 * (arrays of the same length) once and writes p and the state once. No two
 * of these arrays may share memory (CNNC_ERR_INVALID_ARGUMENT). The
 * gradient is first transformed, per element, in this order:
 *   1. g += l1 sign(p) + 2 l2 p      Keras L1/L2 regularizers: they are part
 *                                    of the loss, so they come before clipping
 *   2. g *= grad_scale               clip-by-norm factor, computed by the
 *                                    caller (see cnnc_sum_squares)
 *   3. g = clamp(g, -clip_value, clip_value)   when clip_value > 0
 *   4. weight decay: coupled (decoupled = 0, PyTorch's `weight_decay` of
 *      SGD/Adam/RMSprop) adds weight_decay p to g; decoupled (AdamW, and
 *      Keras's `weight_decay` of every optimizer) scales p by
 *      (1 - lr weight_decay) before the update.
 * p in the penalty terms is always the value before this step.
 *
 * `torch_style` = 0 applies Keras's update rule, 1 PyTorch's; they differ as
 * documented per optimizer below (defaults of the hyperparameters are the
 * caller's business: Keras eps 1e-7, PyTorch eps 1e-8, ...).
 * Results do not depend on the thread count. */
#ifndef CNNC_OPTIM_H
#define CNNC_OPTIM_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnnc_optim_common {
    float lr;            /* learning rate, >= 0 */
    float l1;            /* >= 0 */
    float l2;            /* >= 0 (gradient 2 l2 p) */
    float weight_decay;  /* >= 0 */
    int decoupled;       /* 1: decoupled weight decay (AdamW) */
    float grad_scale;    /* >= 0; 1 for none */
    float clip_value;    /* > 0 clips; 0 for none */
    int torch_style;     /* 0: Keras rule, 1: PyTorch rule */
} cnnc_optim_common;

/* The common settings with learning rate lr and every other option off. */
CNNC_API cnnc_optim_common cnnc_optim_common_init(float lr);

/* SGD. Without momentum (velocity may be NULL): p -= lr g.
 * Keras (torch_style 0), velocity v holds the step:
 *   v = momentum v - lr g;  p += v                 (nesterov: p += momentum v - lr g)
 * PyTorch (torch_style 1, dampening 0), velocity b holds the averaged gradient:
 *   b = momentum b + g;     p -= lr b              (nesterov: p -= lr (g + momentum b))
 * With zero-initialized state the trajectories agree while lr is constant
 * (v = -lr b); they differ when lr changes between steps. */
CNNC_API cnnc_status cnnc_sgd_update(int64_t n, float *param, const float *grad, float *velocity,
                                     const cnnc_optim_common *common, float momentum, int nesterov);

/* Adam (AdamW with common->decoupled), step t >= 1 counting this update:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   AMSGrad (vhat non-NULL): vhat = max(vhat, v), used in place of v below
 * Keras:   p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
 * PyTorch: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * (the same rule with eps scaled by sqrt(1 - b2^t)). */
CNNC_API cnnc_status cnnc_adam_update(int64_t n, float *param, const float *grad, float *m, float *v,
                                      float *vhat, int64_t step, const cnnc_optim_common *common,
                                      float beta_1, float beta_2, float epsilon);

/* RMSprop:
 *   ms = rho ms + (1 - rho) g^2;  centered (mg non-NULL): mg = rho mg + (1 - rho) g,
 *   d = ms - mg^2 (else d = ms)
 * Keras:   u = lr g / sqrt(d + eps);  momentum > 0: mom = momentum mom + u, p -= mom; else p -= u
 * PyTorch: u = g / (sqrt(d) + eps);   momentum > 0: mom = momentum mom + u, p -= lr mom; else p -= lr u
 * (PyTorch calls rho `alpha`). mom may be NULL when momentum is 0. */
CNNC_API cnnc_status cnnc_rmsprop_update(int64_t n, float *param, const float *grad, float *ms,
                                         float *mom, float *mg, const cnnc_optim_common *common,
                                         float rho, float momentum, float epsilon);

/* Adagrad: acc += g^2;
 * Keras:   p -= lr g / sqrt(acc + eps)     (Keras starts acc at 0.1)
 * PyTorch: p -= lr g / (sqrt(acc) + eps)   (PyTorch starts acc at 0; its
 *          lr_decay is lr / (1 + (t - 1) lr_decay), the caller's to apply). */
CNNC_API cnnc_status cnnc_adagrad_update(int64_t n, float *param, const float *grad, float *acc,
                                         const cnnc_optim_common *common, float epsilon);

/* *out = sum of x[i]^2, accumulated in blocks of fixed size whose partial
 * sums are added in order: the same result for any thread count. */
CNNC_API cnnc_status cnnc_sum_squares(int64_t n, const float *x, double *out);

#ifdef __cplusplus
}
#endif
#endif
