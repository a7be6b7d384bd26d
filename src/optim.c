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

static cnnc_status check_moment_rates(const char *fn, float beta_1, float beta_2, float epsilon)
{
    CNNC_TRY(check_rate(fn, "beta_1", beta_1, 0.0f, 1.0f, 1));
    CNNC_TRY(check_rate(fn, "beta_2", beta_2, 0.0f, 1.0f, 1));
    return check_rate(fn, "epsilon", epsilon, 0.0f, INFINITY, 1);
}

static cnnc_status check_arrays(const char *fn, int64_t n, const float *param, const float *grad)
{
    if (n < 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: n = %lld must be >= 0", fn, (long long)n);
    if (n > 0 && (!param || !grad))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, param ? "grad" : "param");
    return CNNC_OK;
}

/* What every update checks first, the arrays and the common hyperparameters,
 * whose per-element constants it folds into *o. */
static cnnc_status prepare_update(const char *fn, int64_t n, const float *param, const float *grad,
                                  const cnnc_optim_common *common, struct cnnc_optim_params *o)
{
    CNNC_TRY(check_arrays(fn, n, param, grad));
    return check_common(fn, common, o);
}

enum which { SGD, ADAM, RMSPROP, ADAGRAD, ADADELTA, ADAMAX, NADAM, LION };

/* The state arrays each update cannot run without, by their parameter names
 * (the optional ones, such as SGD's velocity or Adam's vhat, are absent). */
static const char *const required_states[][2] = {
    [SGD] = {NULL, NULL},          [ADAM] = {"m", "v"},   [RMSPROP] = {"ms", NULL},
    [ADAGRAD] = {"acc", NULL},     [ADADELTA] = {"acc_grad", "acc_delta"},
    [ADAMAX] = {"m", "u"},         [NADAM] = {"m", "v"},  [LION] = {"m", NULL},
};

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
    case ADADELTA: a->k->adadelta(n, p, g, a->s0 + begin, a->s1 + begin, a->o); break;
    case ADAMAX: a->k->adamax(n, p, g, a->s0 + begin, a->s1 + begin, a->o); break;
    case NADAM: a->k->nadam(n, p, g, a->s0 + begin, a->s1 + begin, a->o); break;
    case LION: a->k->lion(n, p, g, a->s0 + begin, a->o); break;
    }
}

/* Every array is read and written element by element, but the state arrays
 * feed each other and the parameter within one element's update: no two of
 * them (nor the gradient) may share memory. */
static cnnc_status run_update(const char *fn, enum which which, int64_t n, float *p, const float *g, float *s0,
                              float *s1, float *s2, const struct cnnc_optim_params *o)
{
    if (n == 0)
        return CNNC_OK;
    const float *arrays[5] = {p, g, s0, s1, s2};
    for (int i = 0; i < 2; ++i)
        if (required_states[which][i] && !arrays[2 + i])
            return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, required_states[which][i]);
    static const char *const names[5] = {"param", "grad", "the first state array", "the second state array",
                                         "the third state array"};
    for (int i = 0; i < 5; ++i)
        for (int j = 0; j < i; ++j)
            CNNC_TRY(cnnc_check_disjoint(fn, names[i], arrays[i], n, names[j], arrays[j], n, 0));
    struct update_args args = {which, CNNC_PICK(cnnc_optim_kernels), o, p, g, s0, s1, s2};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, update_range, &args);
    return CNNC_OK;
}

static cnnc_status check_step(const char *fn, int64_t step)
{
    if (step < 1)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: step = %lld must be >= 1 (it counts this update)", fn,
                          (long long)step);
    return CNNC_OK;
}

cnnc_status cnnc_sgd_update(int64_t n, float *param, const float *grad, float *velocity,
                            const cnnc_optim_common *common, float momentum, int nesterov)
{
    struct cnnc_optim_params o;
    CNNC_TRY(prepare_update(__func__, n, param, grad, common, &o));
    CNNC_TRY(check_rate(__func__, "momentum", momentum, 0.0f, 1.0f, 0));
    if (momentum > 0.0f && n > 0 && !velocity)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: velocity is NULL but momentum = %g", __func__,
                          (double)momentum);
    o.momentum = momentum;
    o.nesterov = nesterov != 0;
    return run_update(__func__, SGD, n, param, grad, momentum > 0.0f ? velocity : NULL, NULL, NULL, &o);
}

cnnc_status cnnc_adam_update(int64_t n, float *param, const float *grad, float *m, float *v, float *vhat,
                             int64_t step, const cnnc_optim_common *common, float beta_1, float beta_2,
                             float epsilon)
{
    struct cnnc_optim_params o;
    CNNC_TRY(prepare_update(__func__, n, param, grad, common, &o));
    CNNC_TRY(check_moment_rates(__func__, beta_1, beta_2, epsilon));
    CNNC_TRY(check_step(__func__, step));
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
    CNNC_TRY(prepare_update(__func__, n, param, grad, common, &o));
    CNNC_TRY(check_rate(__func__, "rho", rho, 0.0f, 1.0f, 1));
    CNNC_TRY(check_rate(__func__, "momentum", momentum, 0.0f, 1.0f, 0));
    CNNC_TRY(check_rate(__func__, "epsilon", epsilon, 0.0f, INFINITY, 1));
    if (momentum > 0.0f && n > 0 && ms && !mom)
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
    CNNC_TRY(prepare_update(__func__, n, param, grad, common, &o));
    CNNC_TRY(check_rate(__func__, "epsilon", epsilon, 0.0f, INFINITY, 1));
    o.eps = epsilon;
    return run_update(__func__, ADAGRAD, n, param, grad, acc, NULL, NULL, &o);
}

cnnc_status cnnc_adadelta_update(int64_t n, float *param, const float *grad, float *acc_grad, float *acc_delta,
                                 const cnnc_optim_common *common, float rho, float epsilon)
{
    struct cnnc_optim_params o;
    CNNC_TRY(prepare_update(__func__, n, param, grad, common, &o));
    CNNC_TRY(check_rate(__func__, "rho", rho, 0.0f, 1.0f, 1));
    CNNC_TRY(check_rate(__func__, "epsilon", epsilon, 0.0f, INFINITY, 1));
    o.rho = rho;
    o.one_minus_rho = 1.0f - rho;
    o.eps = epsilon;
    return run_update(__func__, ADADELTA, n, param, grad, acc_grad, acc_delta, NULL, &o);
}

cnnc_status cnnc_adamax_update(int64_t n, float *param, const float *grad, float *m, float *u, int64_t step,
                               const cnnc_optim_common *common, float beta_1, float beta_2, float epsilon)
{
    struct cnnc_optim_params o;
    CNNC_TRY(prepare_update(__func__, n, param, grad, common, &o));
    CNNC_TRY(check_moment_rates(__func__, beta_1, beta_2, epsilon));
    CNNC_TRY(check_step(__func__, step));
    o.one_minus_b1 = 1.0f - beta_1;
    o.beta_2 = beta_2;
    o.eps = epsilon;
    o.step_size = (float)((double)common->lr / (1.0 - pow((double)beta_1, (double)step)));
    return run_update(__func__, ADAMAX, n, param, grad, m, u, NULL, &o);
}

/* The Nesterov momentum coefficient of Dozat's schedule at step t. */
static double nadam_mu(double beta_1, int64_t t, double momentum_decay)
{
    return beta_1 * (1.0 - 0.5 * pow(0.96, (double)t * momentum_decay));
}

/* Below this, 1 - product * mu rounds to 1 in double: the product stops mattering. */
#define CNNC_NADAM_PRODUCT_FLOOR 0x1p-60

cnnc_status cnnc_nadam_mu_product(int64_t step, float beta_1, float momentum_decay, int64_t from_step,
                                  double from_product, double *product)
{
    CNNC_CHECK_PTR(product);
    CNNC_TRY(check_rate(__func__, "beta_1", beta_1, 0.0f, 1.0f, 1));
    CNNC_TRY(check_rate(__func__, "momentum_decay", momentum_decay, 0.0f, INFINITY, 1));
    if (from_step < 0 || step < from_step)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: need 0 <= from_step = %lld <= step = %lld", __func__,
                          (long long)from_step, (long long)step);
    if (!(from_product >= 0.0 && from_product <= 1.0))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: from_product = %g must be in [0, 1]", __func__,
                          from_product);
    double p = from_product;
    for (int64_t t = from_step + 1; t <= step && p != 0.0; ++t) {
        p *= nadam_mu(beta_1, t, momentum_decay);
        if (p < CNNC_NADAM_PRODUCT_FLOOR)
            p = 0.0;
    }
    *product = p;
    return CNNC_OK;
}

cnnc_status cnnc_nadam_update(int64_t n, float *param, const float *grad, float *m, float *v, int64_t step,
                              double mu_product, const cnnc_optim_common *common, float beta_1, float beta_2,
                              float epsilon, float momentum_decay)
{
    struct cnnc_optim_params o;
    CNNC_TRY(prepare_update(__func__, n, param, grad, common, &o));
    CNNC_TRY(check_moment_rates(__func__, beta_1, beta_2, epsilon));
    CNNC_TRY(check_rate(__func__, "momentum_decay", momentum_decay, 0.0f, INFINITY, 1));
    CNNC_TRY(check_step(__func__, step));
    if (!(mu_product >= 0.0 && mu_product < 1.0))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: mu_product = %g must be in [0, 1)", __func__,
                          mu_product);
    double lr = common->lr;
    double mu = nadam_mu(beta_1, step, momentum_decay), mu_next = nadam_mu(beta_1, step + 1, momentum_decay);
    o.one_minus_b1 = 1.0f - beta_1;
    o.beta_2 = beta_2;
    o.one_minus_b2 = 1.0f - beta_2;
    o.eps = epsilon;
    o.step_size = (float)(lr * mu_next / (1.0 - mu_product * mu_next));
    o.grad_step = (float)(lr * (1.0 - mu) / (1.0 - mu_product));
    o.denom_scale = (float)(1.0 / sqrt(1.0 - pow((double)beta_2, (double)step)));
    return run_update(__func__, NADAM, n, param, grad, m, v, NULL, &o);
}

cnnc_status cnnc_lion_update(int64_t n, float *param, const float *grad, float *m, const cnnc_optim_common *common,
                             float beta_1, float beta_2)
{
    struct cnnc_optim_params o;
    CNNC_TRY(prepare_update(__func__, n, param, grad, common, &o));
    CNNC_TRY(check_rate(__func__, "beta_1", beta_1, 0.0f, 1.0f, 0));
    CNNC_TRY(check_rate(__func__, "beta_2", beta_2, 0.0f, 1.0f, 0));
    o.beta_1 = beta_1;
    o.one_minus_b1 = 1.0f - beta_1;
    o.beta_2 = beta_2;
    o.one_minus_b2 = 1.0f - beta_2;
    return run_update(__func__, LION, n, param, grad, m, NULL, NULL, &o);
}

struct ema_args {
    const struct cnnc_optim_kernels *k;
    float *average;
    const float *param;
    float momentum;
};

static void ema_range(int64_t begin, int64_t end, void *ctx)
{
    const struct ema_args *a = ctx;
    a->k->ema(end - begin, a->average + begin, a->param + begin, a->momentum);
}

cnnc_status cnnc_ema_update(int64_t n, float *average, const float *param, float momentum)
{
    CNNC_TRY(check_arrays(__func__, n, average, param));
    CNNC_TRY(check_rate(__func__, "momentum", momentum, 0.0f, 1.0f, 0));
    if (n == 0)
        return CNNC_OK;
    CNNC_TRY(cnnc_check_disjoint(__func__, "average", average, n, "param", param, n, 0));
    struct ema_args args = {CNNC_PICK(cnnc_optim_kernels), average, param, momentum};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, ema_range, &args);
    return CNNC_OK;
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
