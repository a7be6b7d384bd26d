/* Per-ISA micro-kernels of the loss family, each on one row (or one block of
 * a row) of contiguous floats; the driver (src/loss.c) handles samples,
 * weights, label checks and threading. `grad` may be NULL (loss only). */
#ifndef CNNC_LOSS_KERNELS_H
#define CNNC_LOSS_KERNELS_H
#include "cnnc_internal.h"

/* Sums returned by softmax_exp for one row of logits x with maximum mx. */
struct cnnc_softmax_sums {
    float exp_sum;   /* sum exp(x - mx) */
    float shifted;   /* sum (x - mx) */
    float dot;       /* sum t (x - mx), 0 without targets */
    float t_sum;     /* sum t, 0 without targets */
};

struct cnnc_loss_kernels {
    float (*row_max)(int64_t n, const float *x);
    /* e = exp(x - mx) into e (when non-NULL) and the sums; t may be NULL. */
    void (*softmax_exp)(int64_t n, const float *x, float mx, const float *t, float *e,
                        struct cnnc_softmax_sums *sums);
    /* grad = a e + b t + c (t may be NULL); e may alias grad. */
    void (*affine)(int64_t n, const float *e, const float *t, float a, float b, float c, float *grad);
    /* Elementwise losses over a block: return the sum of the elementwise
     * losses and write gfac * d(loss)/d(first argument) to grad. */
    float (*sigmoid_xent)(int64_t n, const float *x, const float *z, float smoothing, float gfac, float *grad);
    float (*binary_xent)(int64_t n, const float *p, const float *z, float smoothing, float eps, float gfac,
                         float *grad);
    float (*squared_error)(int64_t n, const float *p, const float *t, float gfac, float *grad);
    float (*absolute_error)(int64_t n, const float *p, const float *t, float gfac, float *grad);
    /* Categorical cross-entropy on one row of probabilities (see
     * cnnc_categorical_cross_entropy); targets t, or class `label` when t is
     * NULL (label < 0: ignored row). Returns the row's loss. */
    float (*categorical_xent)(int64_t n, const float *p, const float *t, int64_t label, float smoothing,
                              float eps, float gfac, float *grad);
};

extern CNNC_INTERNAL const struct cnnc_loss_kernels cnnc_loss_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_loss_kernels cnnc_loss_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_loss_kernels cnnc_loss_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_loss_kernels cnnc_loss_kernels_neon;

#endif
