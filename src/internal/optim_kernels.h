/* Per-ISA micro-kernels of the optimizer family. Each updates a contiguous
 * chunk [0, n) of the arrays; the driver (src/optim.c) splits the work across
 * threads and folds the hyperparameters into struct cnnc_optim_params. */
#ifndef CNNC_OPTIM_KERNELS_H
#define CNNC_OPTIM_KERNELS_H
#include "cnnc_internal.h"

struct cnnc_optim_params {
    float lr;
    float l1, l2x2;       /* penalty gradient l1 sign(p) + l2x2 p */
    float grad_scale;
    float clip;           /* > 0: clamp */
    float wd_coupled;     /* added wd p after clipping */
    float keep;           /* decoupled decay: p *= keep (1 for none) */
    int torch_style;
    float momentum;       /* SGD and RMSprop */
    int nesterov;
    float one_minus_b1, beta_2, one_minus_b2;
    float step_size;      /* Adam: p -= step_size m / (sqrt(v) denom_scale + eps) */
    float denom_scale;
    float rho, one_minus_rho;
    float eps;
};

struct cnnc_optim_kernels {
    void (*sgd)(int64_t n, float *p, const float *g, float *vel, const struct cnnc_optim_params *o);
    void (*adam)(int64_t n, float *p, const float *g, float *m, float *v, float *vhat,
                 const struct cnnc_optim_params *o);
    void (*rmsprop)(int64_t n, float *p, const float *g, float *ms, float *mom, float *mg,
                    const struct cnnc_optim_params *o);
    void (*adagrad)(int64_t n, float *p, const float *g, float *acc, const struct cnnc_optim_params *o);
    double (*sum_squares)(int64_t n, const float *x);
};

extern CNNC_INTERNAL const struct cnnc_optim_kernels cnnc_optim_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_optim_kernels cnnc_optim_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_optim_kernels cnnc_optim_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_optim_kernels cnnc_optim_kernels_neon;

#endif
