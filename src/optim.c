/* Optimizer drivers: validate the hyperparameters, fold them into the
 * per-element constants of struct cnnc_optim_params (in double where they
 * involve powers of the step), and run the ISA's kernel over thread chunks. */
#include <math.h>
#include "optim_kernels.h"
#include "parallel.h"

/* Partial sums of cnnc_sum_squares cover fixed blocks of this many elements,
 * whatever the thread count. */
#define CNNC_SUMSQ_BLOCK 1024

cnnc_optim_common cnnc_optim_common_init(float lr)
{
    cnnc_optim_common c = {0};
    c.lr = lr;
    c.grad_scale = 1.0f;
    return c;
}

static cnnc_status check_rate(const char *fn, const char *name, float value, float lo, float hi, int hi_open)
{
    if (!(value >= lo) || !(hi_open ? value < hi : value <= hi) || isnan(value))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s = %g must be in [%g, %g%s", fn, name,
                          (double)value, (double)lo, (double)hi, hi_open ? ")" : "]");
    return CNNC_OK;
}

static cnnc_status check_common(const char *fn, const cnnc_optim_common *c, struct cnnc_optim_params *o)
{
    if (!c)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: common is NULL", fn);
    CNNC_TRY(check_rate(fn, "lr", c->lr, 0.0f, INFINITY, 1));
    CNNC_TRY(check_rate(fn, "l1", c->l1, 0.0f, INFINITY, 1));
    CNNC_TRY(check_rate(fn, "l2", c->l2, 0.0f, INFINITY, 1));
    CNNC_TRY(check_rate(fn, "weight_decay", c->weight_decay, 0.0f, INFINITY, 1));
    CNNC_TRY(check_rate(fn, "grad_scale", c->grad_scale, 0.0f, INFINITY, 1));
    CNNC_TRY(check_rate(fn, "clip_value", c->clip_value, 0.0f, INFINITY, 0));
    *o = (struct cnnc_optim_params){0};
    o->lr = c->lr;
    o->l1 = c->l1;
    o->l2x2 = 2.0f * c->l2;
    o->grad_scale = c->grad_scale;
    o->clip = isinf(c->clip_value) ? 0.0f : c->clip_value;
    o->wd_coupled = c->decoupled ? 0.0f : c->weight_decay;
    o->keep = c->decoupled ? (float)(1.0 - (double)c->lr * (double)c->weight_decay) : 1.0f;
    o->torch_style = c->torch_style != 0;
    return CNNC_OK;
}

static cnnc_status check_arrays(const char *fn, int64_t n, const float *param, const float *grad)
{
    if (n < 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: n = %lld must be >= 0", fn, (long long)n);
    if (n > 0 && (!param || !grad))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, param ? "grad" : "param");
    return CNNC_OK;
}

enum which { SGD, ADAM, RMSPROP, ADAGRAD };

struct update_args {
    enum which which;
    const struct cnnc_optim_kernels *k;
    const struct cnnc_optim_params *o;
    float *p;
    const float *g;
    float *s0, *s1, *s2;
};

static float *at(float *base, int64_t i) { return base ? base + i : NULL; }

static void update_range(int64_t begin, int64_t end, void *ctx)
{
    const struct update_args *a = ctx;
    int64_t n = end - begin;
    float *p = a->p + begin;
    const float *g = a->g + begin;
    switch (a->which) {
    case SGD: a->k->sgd(n, p, g, at(a->s0, begin), a->o); break;
    case ADAM: a->k->adam(n, p, g, a->s0 + begin, a->s1 + begin, at(a->s2, begin), a->o); break;
    case RMSPROP: a->k->rmsprop(n, p, g, a->s0 + begin, at(a->s1, begin), at(a->s2, begin), a->o); break;
    case ADAGRAD: a->k->adagrad(n, p, g, a->s0 + begin, a->o); break;
    }
}

/* Every array is read and written element by element, but the state arrays
 * feed each other and the parameter within one element's update: no two of
 * them (nor the gradient) may share memory. */
static cnnc_status run_update(const char *fn, enum which which, int64_t n, float *p, const float *g, float *s0,
                              float *s1, float *s2, const struct cnnc_optim_params *o)
{
    const float *arrays[5] = {p, g, s0, s1, s2};
    static const char *const names[5] = {"param", "grad", "the first state array", "the second state array",
                                         "the third state array"};
    for (int i = 0; i < 5; ++i)
        for (int j = 0; j < i; ++j)
            CNNC_TRY(cnnc_check_disjoint(fn, names[i], arrays[i], n, names[j], arrays[j], n, 0));
    struct update_args args = {which, CNNC_PICK(cnnc_optim_kernels), o, p, g, s0, s1, s2};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, update_range, &args);
    return CNNC_OK;
}

cnnc_status cnnc_sgd_update(int64_t n, float *param, const float *grad, float *velocity,
                            const cnnc_optim_common *common, float momentum, int nesterov)
{
    struct cnnc_optim_params o;
    CNNC_TRY(check_arrays(__func__, n, param, grad));
    CNNC_TRY(check_common(__func__, common, &o));
    CNNC_TRY(check_rate(__func__, "momentum", momentum, 0.0f, 1.0f, 0));
    if (momentum > 0.0f && n > 0 && !velocity)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: velocity is NULL but momentum = %g", __func__,
                          (double)momentum);
    if (n == 0)
        return CNNC_OK;
    o.momentum = momentum;
    o.nesterov = nesterov != 0;
    return run_update(__func__, SGD, n, param, grad, momentum > 0.0f ? velocity : NULL, NULL, NULL, &o);
}

cnnc_status cnnc_adam_update(int64_t n, float *param, const float *grad, float *m, float *v, float *vhat,
                             int64_t step, const cnnc_optim_common *common, float beta_1, float beta_2,
                             float epsilon)
{
    struct cnnc_optim_params o;
    CNNC_TRY(check_arrays(__func__, n, param, grad));
    CNNC_TRY(check_common(__func__, common, &o));
    CNNC_TRY(check_rate(__func__, "beta_1", beta_1, 0.0f, 1.0f, 1));
    CNNC_TRY(check_rate(__func__, "beta_2", beta_2, 0.0f, 1.0f, 1));
    CNNC_TRY(check_rate(__func__, "epsilon", epsilon, 0.0f, INFINITY, 1));
    if (step < 1)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: step = %lld must be >= 1 (it counts this update)",
                          __func__, (long long)step);
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(m);
    CNNC_CHECK_PTR(v);
    double t = (double)step;
    double bc1 = 1.0 - pow((double)beta_1, t), bc2 = 1.0 - pow((double)beta_2, t);
    o.one_minus_b1 = 1.0f - beta_1;
    o.beta_2 = beta_2;
    o.one_minus_b2 = 1.0f - beta_2;
    o.eps = epsilon;
    if (o.torch_style) {
        o.step_size = (float)((double)common->lr / bc1);
        o.denom_scale = (float)(1.0 / sqrt(bc2));
    } else {
        o.step_size = (float)((double)common->lr * sqrt(bc2) / bc1);
        o.denom_scale = 1.0f;
    }
    return run_update(__func__, ADAM, n, param, grad, m, v, vhat, &o);
}

cnnc_status cnnc_rmsprop_update(int64_t n, float *param, const float *grad, float *ms, float *mom, float *mg,
                                const cnnc_optim_common *common, float rho, float momentum, float epsilon)
{
    struct cnnc_optim_params o;
    CNNC_TRY(check_arrays(__func__, n, param, grad));
    CNNC_TRY(check_common(__func__, common, &o));
    CNNC_TRY(check_rate(__func__, "rho", rho, 0.0f, 1.0f, 1));
    CNNC_TRY(check_rate(__func__, "momentum", momentum, 0.0f, 1.0f, 0));
    CNNC_TRY(check_rate(__func__, "epsilon", epsilon, 0.0f, INFINITY, 1));
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(ms);
    if (momentum > 0.0f && !mom)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: mom is NULL but momentum = %g", __func__,
                          (double)momentum);
    o.rho = rho;
    o.one_minus_rho = 1.0f - rho;
    o.momentum = momentum;
    o.eps = epsilon;
    return run_update(__func__, RMSPROP, n, param, grad, ms, momentum > 0.0f ? mom : NULL, mg, &o);
}

cnnc_status cnnc_adagrad_update(int64_t n, float *param, const float *grad, float *acc,
                                const cnnc_optim_common *common, float epsilon)
{
    struct cnnc_optim_params o;
    CNNC_TRY(check_arrays(__func__, n, param, grad));
    CNNC_TRY(check_common(__func__, common, &o));
    CNNC_TRY(check_rate(__func__, "epsilon", epsilon, 0.0f, INFINITY, 1));
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(acc);
    o.eps = epsilon;
    return run_update(__func__, ADAGRAD, n, param, grad, acc, NULL, NULL, &o);
}

struct sumsq_args {
    const struct cnnc_optim_kernels *k;
    const float *x;
    int64_t n;
    double *partial;
};

static void sumsq_block(int64_t b, void *ctx)
{
    struct sumsq_args *a = ctx;
    int64_t begin = b * CNNC_SUMSQ_BLOCK;
    a->partial[b] = a->k->sum_squares(cnnc_min_i64(CNNC_SUMSQ_BLOCK, a->n - begin), a->x + begin);
}

cnnc_status cnnc_sum_squares(int64_t n, const float *x, double *out)
{
    CNNC_CHECK_PTR(out);
    CNNC_CHECK_NONNEG(n);
    *out = 0.0;
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(x);
    const struct cnnc_optim_kernels *k = CNNC_PICK(cnnc_optim_kernels);
    int64_t blocks = cnnc_ceil_div(n, CNNC_SUMSQ_BLOCK);
    double *partial = cnnc_workspace(6, (size_t)blocks * sizeof(double));
    if (!partial)
        return CNNC_ERR_OUT_OF_MEMORY;
    struct sumsq_args args = {k, x, n, partial};
    cnnc_parallel_for(blocks, cnnc_threads_for(n, CNNC_ELEMENTWISE_GRAIN), sumsq_block, &args);
    double total = 0.0;
    for (int64_t b = 0; b < blocks; ++b)
        total += partial[b];
    *out = total;
    return CNNC_OK;
}
