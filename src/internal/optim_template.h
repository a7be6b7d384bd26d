/* The optimizer micro-kernels, written once against the vector vocabulary of
 * simd_<isa>.h and instantiated by src/kernels/<isa>/optim_<isa>.c, which
 * includes its simd header first and then this file. Each loop handles the
 * tail with partial loads and stores, so every element takes the same
 * arithmetic path. */
#include "optim_kernels.h"

/* Steps 1-4 of the gradient transform documented in optim.h, on one vector;
 * *p becomes the decoupled-decayed parameter. */
static inline vf transform_grad(const struct cnnc_optim_params *o, vf g, vf *p)
{
    vf p0 = *p;
    if (o->l1 != 0.0f)
        g = V_FMA(V_SET1(o->l1), V_SIGN(p0), g);
    if (o->l2x2 != 0.0f)
        g = V_FMA(V_SET1(o->l2x2), p0, g);
    if (o->grad_scale != 1.0f)
        g = V_MUL(g, V_SET1(o->grad_scale));
    if (o->clip > 0.0f)
        g = V_MIN(V_MAX(g, V_SET1(-o->clip)), V_SET1(o->clip));
    if (o->wd_coupled != 0.0f)
        g = V_FMA(V_SET1(o->wd_coupled), p0, g);
    if (o->keep != 1.0f)
        *p = V_MUL(p0, V_SET1(o->keep));
    return g;
}

/* Adam's moments, stored back: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2. */
static inline void update_moments(const struct cnnc_optim_params *o, vf g, float *m_, float *v_, int64_t rem,
                                  vf *m, vf *v)
{
    vf m0 = v_load_tail(m_, rem);
    *m = V_FMA(V_SET1(o->one_minus_b1), V_SUB(g, m0), m0);
    *v = V_FMA(V_SET1(o->beta_2), v_load_tail(v_, rem), V_MUL(V_SET1(o->one_minus_b2), V_MUL(g, g)));
    v_store_tail(m_, *m, rem);
    v_store_tail(v_, *v, rem);
}

static void sgd(int64_t n, float *param, const float *grad, float *vel, const struct cnnc_optim_params *o)
{
    const vf lr = V_SET1(o->lr), mu = V_SET1(o->momentum);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf p = v_load_tail(param + i, rem);
        vf g = transform_grad(o, v_load_tail(grad + i, rem), &p);
        if (!vel) {
            p = V_FNMA(lr, g, p);
        } else if (!o->torch_style) {
            vf v = V_FNMA(lr, g, V_MUL(mu, v_load_tail(vel + i, rem)));
            v_store_tail(vel + i, v, rem);
            p = o->nesterov ? V_ADD(p, V_FNMA(lr, g, V_MUL(mu, v))) : V_ADD(p, v);
        } else {
            vf b = V_FMA(mu, v_load_tail(vel + i, rem), g);
            v_store_tail(vel + i, b, rem);
            p = V_FNMA(lr, o->nesterov ? V_FMA(mu, b, g) : b, p);
        }
        v_store_tail(param + i, p, rem);
    }
}

static void adam(int64_t n, float *param, const float *grad, float *m_, float *v_, float *vhat,
                 const struct cnnc_optim_params *o)
{
    const vf step = V_SET1(o->step_size), dscale = V_SET1(o->denom_scale), eps = V_SET1(o->eps);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf p = v_load_tail(param + i, rem);
        vf g = transform_grad(o, v_load_tail(grad + i, rem), &p);
        vf m, v;
        update_moments(o, g, m_ + i, v_ + i, rem, &m, &v);
        if (vhat) {
            v = V_MAX(v_load_tail(vhat + i, rem), v);
            v_store_tail(vhat + i, v, rem);
        }
        vf denom = V_FMA(V_SQRT(v), dscale, eps);
        p = V_FNMA(step, V_DIV(m, denom), p);
        v_store_tail(param + i, p, rem);
    }
}

static void rmsprop(int64_t n, float *param, const float *grad, float *ms_, float *mom_, float *mg_,
                    const struct cnnc_optim_params *o)
{
    const vf rho = V_SET1(o->rho), c = V_SET1(o->one_minus_rho), lr = V_SET1(o->lr);
    const vf eps = V_SET1(o->eps), mu = V_SET1(o->momentum);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf p = v_load_tail(param + i, rem);
        vf g = transform_grad(o, v_load_tail(grad + i, rem), &p);
        vf ms = V_FMA(rho, v_load_tail(ms_ + i, rem), V_MUL(c, V_MUL(g, g)));
        v_store_tail(ms_ + i, ms, rem);
        vf d = ms;
        if (mg_) {
            vf mg = v_load_tail(mg_ + i, rem);
            mg = V_FMA(c, V_SUB(g, mg), mg);
            v_store_tail(mg_ + i, mg, rem);
            /* ms >= mg^2 in exact arithmetic; rounding must not make it negative. */
            d = V_MAX(V_FNMA(mg, mg, ms), V_ZERO());
        }
        vf u = o->torch_style ? V_DIV(g, V_ADD(V_SQRT(d), eps)) : V_DIV(V_MUL(lr, g), V_SQRT(V_ADD(d, eps)));
        if (mom_) {
            u = V_FMA(mu, v_load_tail(mom_ + i, rem), u);
            v_store_tail(mom_ + i, u, rem);
        }
        p = o->torch_style ? V_FNMA(lr, u, p) : V_SUB(p, u);
        v_store_tail(param + i, p, rem);
    }
}

static void adagrad(int64_t n, float *param, const float *grad, float *acc_, const struct cnnc_optim_params *o)
{
    const vf lr = V_SET1(o->lr), eps = V_SET1(o->eps);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf p = v_load_tail(param + i, rem);
        vf g = transform_grad(o, v_load_tail(grad + i, rem), &p);
        vf acc = V_FMA(g, g, v_load_tail(acc_ + i, rem));
        v_store_tail(acc_ + i, acc, rem);
        vf denom = o->torch_style ? V_ADD(V_SQRT(acc), eps) : V_SQRT(V_ADD(acc, eps));
        p = V_SUB(p, V_DIV(V_MUL(lr, g), denom));
        v_store_tail(param + i, p, rem);
    }
}

static void adadelta(int64_t n, float *param, const float *grad, float *ag_, float *ad_,
                     const struct cnnc_optim_params *o)
{
    const vf rho = V_SET1(o->rho), c = V_SET1(o->one_minus_rho), lr = V_SET1(o->lr), eps = V_SET1(o->eps);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf p = v_load_tail(param + i, rem);
        vf g = transform_grad(o, v_load_tail(grad + i, rem), &p);
        vf ag = V_FMA(rho, v_load_tail(ag_ + i, rem), V_MUL(c, V_MUL(g, g)));
        vf ad = v_load_tail(ad_ + i, rem);
        /* sqrt(ad + eps) / sqrt(ag + eps) as one root of the quotient */
        vf delta = V_MUL(V_SQRT(V_DIV(V_ADD(ad, eps), V_ADD(ag, eps))), g);
        ad = V_FMA(rho, ad, V_MUL(c, V_MUL(delta, delta)));
        v_store_tail(ag_ + i, ag, rem);
        v_store_tail(ad_ + i, ad, rem);
        v_store_tail(param + i, V_FNMA(lr, delta, p), rem);
    }
}

static void adamax(int64_t n, float *param, const float *grad, float *m_, float *u_,
                   const struct cnnc_optim_params *o)
{
    const vf c1 = V_SET1(o->one_minus_b1), b2 = V_SET1(o->beta_2), step = V_SET1(o->step_size);
    /* Keras adds eps to the denominator, PyTorch to |g| inside the maximum. */
    const vf eps_in = V_SET1(o->torch_style ? o->eps : 0.0f), eps_out = V_SET1(o->torch_style ? 0.0f : o->eps);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf p = v_load_tail(param + i, rem);
        vf g = transform_grad(o, v_load_tail(grad + i, rem), &p);
        vf m = v_load_tail(m_ + i, rem);
        m = V_FMA(c1, V_SUB(g, m), m);
        vf u = V_MAX(V_MUL(b2, v_load_tail(u_ + i, rem)), V_ADD(V_ABS(g), eps_in));
        v_store_tail(m_ + i, m, rem);
        v_store_tail(u_ + i, u, rem);
        p = V_FNMA(step, V_DIV(m, V_ADD(u, eps_out)), p);
        v_store_tail(param + i, p, rem);
    }
}

static void nadam(int64_t n, float *param, const float *grad, float *m_, float *v_,
                  const struct cnnc_optim_params *o)
{
    const vf mstep = V_SET1(o->step_size), gstep = V_SET1(o->grad_step);
    const vf dscale = V_SET1(o->denom_scale), eps = V_SET1(o->eps);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf p = v_load_tail(param + i, rem);
        vf g = transform_grad(o, v_load_tail(grad + i, rem), &p);
        vf m, v;
        update_moments(o, g, m_ + i, v_ + i, rem, &m, &v);
        vf num = V_FMA(mstep, m, V_MUL(gstep, g));
        p = V_SUB(p, V_DIV(num, V_FMA(V_SQRT(v), dscale, eps)));
        v_store_tail(param + i, p, rem);
    }
}

static void lion(int64_t n, float *param, const float *grad, float *m_, const struct cnnc_optim_params *o)
{
    const vf b1 = V_SET1(o->beta_1), c1 = V_SET1(o->one_minus_b1);
    const vf b2 = V_SET1(o->beta_2), c2 = V_SET1(o->one_minus_b2), lr = V_SET1(o->lr);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf p = v_load_tail(param + i, rem);
        vf g = transform_grad(o, v_load_tail(grad + i, rem), &p);
        vf m = v_load_tail(m_ + i, rem);
        p = V_FNMA(lr, V_SIGN(V_FMA(b1, m, V_MUL(c1, g))), p);
        v_store_tail(m_ + i, V_FMA(b2, m, V_MUL(c2, g)), rem);
        v_store_tail(param + i, p, rem);
    }
}

static void ema(int64_t n, float *average, const float *param, float momentum)
{
    const vf mu = V_SET1(momentum), c = V_SET1(1.0f - momentum);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf a = V_FMA(mu, v_load_tail(average + i, rem), V_MUL(c, v_load_tail(param + i, rem)));
        v_store_tail(average + i, a, rem);
    }
}

/* Lanes accumulate in float over at most CNNC_SUMSQ_BLOCK elements (the
 * driver's block size), then in double. */
static double sum_squares(int64_t n, const float *x)
{
    vf acc = V_ZERO();
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        vf a = v_load_tail(x + i, n - i);
        acc = V_FMA(a, a, acc);
    }
    return (double)V_REDUCE_ADD(acc);
}

#define CNNC_OPTIM_TABLE(isa) \
    const struct cnnc_optim_kernels cnnc_optim_kernels_##isa = { \
        .sgd = sgd, .adam = adam, .rmsprop = rmsprop, .adagrad = adagrad, \
        .adadelta = adadelta, .adamax = adamax, .nadam = nadam, .lion = lion, .ema = ema, \
        .sum_squares = sum_squares, \
    }
