/* The optimizer micro-kernels, written once against the vector vocabulary of
 * simd.h and instantiated by src/kernels/<isa>/optim_<isa>.c, which defines
 * CNNC_SIMD first and then includes this file. Each loop handles the
 * tail with partial loads and stores, so every element takes the same
 * arithmetic path. */
#include "optim_kernels.h"
#include "simd.h"

/* Steps 1-4 of the gradient transform documented in optim.h, on one vector;
 * *p becomes the decoupled-decayed parameter. */
static inline vf transform_grad(const struct cnnc_optim_params *o, vf g, vf *p)
{
    vf p0 = *p;
    if (o->l1 != 0.0f)
        g = vf_fmadd(vf_set1(o->l1), vf_sign(p0), g);
    if (o->l2x2 != 0.0f)
        g = vf_fmadd(vf_set1(o->l2x2), p0, g);
    if (o->grad_scale != 1.0f)
        g = vf_mul(g, vf_set1(o->grad_scale));
    if (o->clip > 0.0f)
        g = vf_min(vf_max(g, vf_set1(-o->clip)), vf_set1(o->clip));
    if (o->wd_coupled != 0.0f)
        g = vf_fmadd(vf_set1(o->wd_coupled), p0, g);
    if (o->keep != 1.0f)
        *p = vf_mul(p0, vf_set1(o->keep));
    return g;
}

/* Adam's moment rates as vectors, set once before a loop: read from the
 * parameters inside it, they would be reloaded after every store (a float
 * store may alias them). */
struct moment_rates {
    vf one_minus_b1, beta_2, one_minus_b2;
};
static inline struct moment_rates moment_rates(const struct cnnc_optim_params *o)
{
    struct moment_rates r = {vf_set1(o->one_minus_b1), vf_set1(o->beta_2), vf_set1(o->one_minus_b2)};
    return r;
}

/* Adam's moments, stored back: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2. */
static inline void update_moments(const struct moment_rates *r, vf g, float *m_, float *v_, int64_t rem, vf *m,
                                  vf *v)
{
    vf m0 = vf_load_tail(m_, rem);
    *m = vf_fmadd(r->one_minus_b1, vf_sub(g, m0), m0);
    *v = vf_fmadd(r->beta_2, vf_load_tail(v_, rem), vf_mul(r->one_minus_b2, vf_mul(g, g)));
    vf_store_tail(m_, *m, rem);
    vf_store_tail(v_, *v, rem);
}

static void sgd(int64_t n, float *param, const float *grad, float *vel, const struct cnnc_optim_params *o)
{
    const vf lr = vf_set1(o->lr), mu = vf_set1(o->momentum);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf p = vf_load_tail(param + i, rem);
        vf g = transform_grad(o, vf_load_tail(grad + i, rem), &p);
        if (!vel) {
            p = vf_fnmadd(lr, g, p);
        } else if (!o->torch_style) {
            vf v = vf_fnmadd(lr, g, vf_mul(mu, vf_load_tail(vel + i, rem)));
            vf_store_tail(vel + i, v, rem);
            p = o->nesterov ? vf_add(p, vf_fnmadd(lr, g, vf_mul(mu, v))) : vf_add(p, v);
        } else {
            vf b = vf_fmadd(mu, vf_load_tail(vel + i, rem), g);
            vf_store_tail(vel + i, b, rem);
            p = vf_fnmadd(lr, o->nesterov ? vf_fmadd(mu, b, g) : b, p);
        }
        vf_store_tail(param + i, p, rem);
    }
}

static void adam(int64_t n, float *param, const float *grad, float *m_, float *v_, float *vhat,
                 const struct cnnc_optim_params *o)
{
    const vf step = vf_set1(o->step_size), dscale = vf_set1(o->denom_scale), eps = vf_set1(o->eps);
    const struct moment_rates rates = moment_rates(o);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf p = vf_load_tail(param + i, rem);
        vf g = transform_grad(o, vf_load_tail(grad + i, rem), &p);
        vf m, v;
        update_moments(&rates, g, m_ + i, v_ + i, rem, &m, &v);
        if (vhat) {
            v = vf_max(vf_load_tail(vhat + i, rem), v);
            vf_store_tail(vhat + i, v, rem);
        }
        vf denom = vf_fmadd(vf_sqrt(v), dscale, eps);
        p = vf_fnmadd(step, vf_div(m, denom), p);
        vf_store_tail(param + i, p, rem);
    }
}

static void rmsprop(int64_t n, float *param, const float *grad, float *ms_, float *mom_, float *mg_,
                    const struct cnnc_optim_params *o)
{
    const vf rho = vf_set1(o->rho), c = vf_set1(o->one_minus_rho), lr = vf_set1(o->lr);
    const vf eps = vf_set1(o->eps), mu = vf_set1(o->momentum);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf p = vf_load_tail(param + i, rem);
        vf g = transform_grad(o, vf_load_tail(grad + i, rem), &p);
        vf ms = vf_fmadd(rho, vf_load_tail(ms_ + i, rem), vf_mul(c, vf_mul(g, g)));
        vf_store_tail(ms_ + i, ms, rem);
        vf d = ms;
        if (mg_) {
            vf mg = vf_load_tail(mg_ + i, rem);
            mg = vf_fmadd(c, vf_sub(g, mg), mg);
            vf_store_tail(mg_ + i, mg, rem);
            /* ms >= mg^2 in exact arithmetic; rounding must not make it negative. */
            d = vf_max(vf_fnmadd(mg, mg, ms), vf_zero());
        }
        vf u = o->torch_style ? vf_div(g, vf_add(vf_sqrt(d), eps)) : vf_div(vf_mul(lr, g), vf_sqrt(vf_add(d, eps)));
        if (mom_) {
            u = vf_fmadd(mu, vf_load_tail(mom_ + i, rem), u);
            vf_store_tail(mom_ + i, u, rem);
        }
        p = o->torch_style ? vf_fnmadd(lr, u, p) : vf_sub(p, u);
        vf_store_tail(param + i, p, rem);
    }
}

static void adagrad(int64_t n, float *param, const float *grad, float *acc_, const struct cnnc_optim_params *o)
{
    const vf lr = vf_set1(o->lr), eps = vf_set1(o->eps);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf p = vf_load_tail(param + i, rem);
        vf g = transform_grad(o, vf_load_tail(grad + i, rem), &p);
        vf acc = vf_fmadd(g, g, vf_load_tail(acc_ + i, rem));
        vf_store_tail(acc_ + i, acc, rem);
        vf denom = o->torch_style ? vf_add(vf_sqrt(acc), eps) : vf_sqrt(vf_add(acc, eps));
        p = vf_sub(p, vf_div(vf_mul(lr, g), denom));
        vf_store_tail(param + i, p, rem);
    }
}

static void adadelta(int64_t n, float *param, const float *grad, float *ag_, float *ad_,
                     const struct cnnc_optim_params *o)
{
    const vf rho = vf_set1(o->rho), c = vf_set1(o->one_minus_rho), lr = vf_set1(o->lr), eps = vf_set1(o->eps);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf p = vf_load_tail(param + i, rem);
        vf g = transform_grad(o, vf_load_tail(grad + i, rem), &p);
        vf ag = vf_fmadd(rho, vf_load_tail(ag_ + i, rem), vf_mul(c, vf_mul(g, g)));
        vf ad = vf_load_tail(ad_ + i, rem);
        /* sqrt(ad + eps) / sqrt(ag + eps) as one root of the quotient */
        vf delta = vf_mul(vf_sqrt(vf_div(vf_add(ad, eps), vf_add(ag, eps))), g);
        ad = vf_fmadd(rho, ad, vf_mul(c, vf_mul(delta, delta)));
        vf_store_tail(ag_ + i, ag, rem);
        vf_store_tail(ad_ + i, ad, rem);
        vf_store_tail(param + i, vf_fnmadd(lr, delta, p), rem);
    }
}

static void adamax(int64_t n, float *param, const float *grad, float *m_, float *u_,
                   const struct cnnc_optim_params *o)
{
    const vf c1 = vf_set1(o->one_minus_b1), b2 = vf_set1(o->beta_2), step = vf_set1(o->step_size);
    /* Keras adds eps to the denominator, PyTorch to |g| inside the maximum. */
    const vf eps_in = vf_set1(o->torch_style ? o->eps : 0.0f), eps_out = vf_set1(o->torch_style ? 0.0f : o->eps);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf p = vf_load_tail(param + i, rem);
        vf g = transform_grad(o, vf_load_tail(grad + i, rem), &p);
        vf m = vf_load_tail(m_ + i, rem);
        m = vf_fmadd(c1, vf_sub(g, m), m);
        vf u = vf_max(vf_mul(b2, vf_load_tail(u_ + i, rem)), vf_add(vf_abs(g), eps_in));
        vf_store_tail(m_ + i, m, rem);
        vf_store_tail(u_ + i, u, rem);
        p = vf_fnmadd(step, vf_div(m, vf_add(u, eps_out)), p);
        vf_store_tail(param + i, p, rem);
    }
}

static void nadam(int64_t n, float *param, const float *grad, float *m_, float *v_,
                  const struct cnnc_optim_params *o)
{
    const vf mstep = vf_set1(o->step_size), gstep = vf_set1(o->grad_step);
    const vf dscale = vf_set1(o->denom_scale), eps = vf_set1(o->eps);
    const struct moment_rates rates = moment_rates(o);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf p = vf_load_tail(param + i, rem);
        vf g = transform_grad(o, vf_load_tail(grad + i, rem), &p);
        vf m, v;
        update_moments(&rates, g, m_ + i, v_ + i, rem, &m, &v);
        vf num = vf_fmadd(mstep, m, vf_mul(gstep, g));
        p = vf_sub(p, vf_div(num, vf_fmadd(vf_sqrt(v), dscale, eps)));
        vf_store_tail(param + i, p, rem);
    }
}

static void lion(int64_t n, float *param, const float *grad, float *m_, const struct cnnc_optim_params *o)
{
    const vf b1 = vf_set1(o->beta_1), c1 = vf_set1(o->one_minus_b1);
    const vf b2 = vf_set1(o->beta_2), c2 = vf_set1(o->one_minus_b2), lr = vf_set1(o->lr);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf p = vf_load_tail(param + i, rem);
        vf g = transform_grad(o, vf_load_tail(grad + i, rem), &p);
        vf m = vf_load_tail(m_ + i, rem);
        p = vf_fnmadd(lr, vf_sign(vf_fmadd(b1, m, vf_mul(c1, g))), p);
        vf_store_tail(m_ + i, vf_fmadd(b2, m, vf_mul(c2, g)), rem);
        vf_store_tail(param + i, p, rem);
    }
}

static void ema(int64_t n, float *average, const float *param, float momentum)
{
    const vf mu = vf_set1(momentum), c = vf_set1(1.0f - momentum);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf a = vf_fmadd(mu, vf_load_tail(average + i, rem), vf_mul(c, vf_load_tail(param + i, rem)));
        vf_store_tail(average + i, a, rem);
    }
}

/* Lanes accumulate in float over at most CNNC_SUMSQ_BLOCK elements (the
 * driver's block size), then in double. */
static double sum_squares(int64_t n, const float *x)
{
    vf acc = vf_zero();
    for (int64_t i = 0; i < n; i += VW) {
        vf a = vf_load_tail(x + i, n - i);
        acc = vf_fmadd(a, a, acc);
    }
    return (double)vf_hsum(acc);
}

#define CNNC_OPTIM_TABLE(isa) \
    const struct cnnc_optim_kernels cnnc_optim_kernels_##isa = { \
        .sgd = sgd, .adam = adam, .rmsprop = rmsprop, .adagrad = adagrad, \
        .adadelta = adadelta, .adamax = adamax, .nadam = nadam, .lion = lion, .ema = ema, \
        .sum_squares = sum_squares, \
    }
