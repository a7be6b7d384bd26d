/* The loss micro-kernels, written once against the vector vocabulary of
 * simd.h and instantiated by src/kernels/<isa>/loss_<isa>.c. Vector
 * accumulators are reduced in a fixed order, so results depend on the ISA
 * but never on threads. */
#include "loss_kernels.h"
#include "simd.h"

/* Lanes past the end of a partial vector take `value` (0 for sums, -inf for
 * maxima) so that they never disturb a reduction. */
static inline vf fill_tail(vf v, int64_t rem, float value)
{
#if VW > 1
    if (rem < VW) {
        float lanes[VW];
        vf_store(lanes, v);
        for (int64_t j = rem; j < VW; ++j)
            lanes[j] = value;
        return vf_load(lanes);
    }
#endif
    (void)rem;
    (void)value;
    return v;
}
#define keep_lanes(v, rem) fill_tail((v), (rem), 0.0f)

static float row_max(int64_t n, const float *x)
{
    vf acc = vf_set1(-INFINITY);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf a = fill_tail(vf_load_tail(x + i, rem), rem, -INFINITY);
        /* NaN must win so that a NaN logit gives a NaN loss. */
        acc = vf_select(vf_ne(a, a), a, vf_max(acc, a));
    }
#if VW > 1
    float lanes[VW];
    vf_store(lanes, acc);
    float m = lanes[0];
    for (int j = 1; j < VW; ++j)
        m = (lanes[j] > m || lanes[j] != lanes[j]) ? lanes[j] : m;
    return m;
#else
    return acc;
#endif
}

static void softmax_exp(int64_t n, const float *x, float mx, const float *t, float *e,
                        struct cnnc_softmax_sums *sums)
{
    const vf m = vf_set1(mx);
    vf es = vf_zero(), sh = vf_zero(), dt = vf_zero(), ts = vf_zero();
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf d = keep_lanes(vf_sub(vf_load_tail(x + i, rem), m), rem);
        vf ex = keep_lanes(vf_exp(d), rem);
        es = vf_add(es, ex);
        sh = vf_add(sh, d);
        if (t) {
            vf tv = vf_load_tail(t + i, rem);
            dt = vf_fmadd(tv, d, dt);
            ts = vf_add(ts, tv);
        }
        if (e)
            vf_store_tail(e + i, ex, rem);
    }
    sums->exp_sum = vf_hsum(es);
    sums->shifted = vf_hsum(sh);
    sums->dot = vf_hsum(dt);
    sums->t_sum = vf_hsum(ts);
}

static void affine(int64_t n, const float *e, const float *t, float a, float b, float c, float *grad)
{
    const vf va = vf_set1(a), vb = vf_set1(b), vc = vf_set1(c);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf r = vf_fmadd(va, vf_load_tail(e + i, rem), vc);
        if (t)
            r = vf_fmadd(vb, vf_load_tail(t + i, rem), r);
        vf_store_tail(grad + i, r, rem);
    }
}

static float sigmoid_xent(int64_t n, const float *x, const float *z, float smoothing, float gfac, float *grad)
{
    const vf keep = vf_set1(1.0f - smoothing), half_s = vf_set1(0.5f * smoothing), gf = vf_set1(gfac);
    const vf one = vf_set1(1.0f), zero = vf_zero();
    vf acc = vf_zero();
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf xv = vf_load_tail(x + i, rem);
        vf zv = vf_fmadd(vf_load_tail(z + i, rem), keep, half_s);
        vf e = vf_exp(vf_sub(zero, vf_abs(xv))); /* exp(-|x|) in (0, 1] */
        vf l = vf_add(vf_fnmadd(xv, zv, vf_max(xv, zero)), vf_log1p(e));
        acc = vf_add(acc, keep_lanes(l, rem));
        if (grad) {
            vf r = vf_div(one, vf_add(one, e));
            vf s = vf_select(vf_lt(xv, zero), vf_mul(e, r), r); /* sigmoid(x) without overflow */
            vf_store_tail(grad + i, vf_mul(gf, vf_sub(s, zv)), rem);
        }
    }
    return vf_hsum(acc);
}

static float binary_xent(int64_t n, const float *p, const float *z, float smoothing, float eps, float gfac,
                         float *grad)
{
    const vf keep = vf_set1(1.0f - smoothing), half_s = vf_set1(0.5f * smoothing), gf = vf_set1(gfac);
    const vf lo = vf_set1(eps), hi = vf_set1(1.0f - eps), one = vf_set1(1.0f);
    vf acc = vf_zero();
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf pv = vf_load_tail(p + i, rem);
        vf zv = vf_fmadd(vf_load_tail(z + i, rem), keep, half_s);
        vf c = vf_min(vf_max(pv, lo), hi);
        vf omc = vf_sub(one, c);
        vf l = vf_fmadd(zv, vf_log(c), vf_mul(vf_sub(one, zv), vf_log(omc)));
        acc = vf_sub(acc, keep_lanes(l, rem));
        if (grad) {
            vf gv = vf_sub(vf_div(vf_sub(one, zv), omc), vf_div(zv, c));
            gv = vf_select(vm_or(vf_lt(pv, lo), vf_gt(pv, hi)), vf_zero(), gv);
            vf_store_tail(grad + i, vf_mul(gf, gv), rem);
        }
    }
    return vf_hsum(acc);
}

static float squared_error(int64_t n, const float *p, const float *t, float gfac, float *grad)
{
    const vf g2 = vf_set1(2.0f * gfac);
    vf acc = vf_zero();
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf d = vf_sub(vf_load_tail(p + i, rem), vf_load_tail(t + i, rem));
        acc = vf_fmadd(d, d, acc);
        if (grad)
            vf_store_tail(grad + i, vf_mul(g2, d), rem);
    }
    return vf_hsum(acc);
}

static float absolute_error(int64_t n, const float *p, const float *t, float gfac, float *grad)
{
    const vf gf = vf_set1(gfac);
    vf acc = vf_zero();
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf d = vf_sub(vf_load_tail(p + i, rem), vf_load_tail(t + i, rem));
        acc = vf_add(acc, vf_abs(d));
        if (grad)
            vf_store_tail(grad + i, vf_mul(gf, vf_sign(d)), rem);
    }
    return vf_hsum(acc);
}

/* q = clip(p / S) with S = sum(p); L = -sum t' log q. With a_j = t'_j / q_j
 * where the clip is inactive (else 0) and r = p / S:
 * dL/dp_k = (sum_j a_j r_j - a_k) / S. */
static float categorical_xent(int64_t n, const float *p, const float *t, int64_t label, float smoothing,
                              float eps, float gfac, float *grad)
{
    vf sv = vf_zero();
    for (int64_t i = 0; i < n; i += VW)
        sv = vf_add(sv, vf_load_tail(p + i, n - i));
    const float inv_s = 1.0f / vf_hsum(sv);
    const float p_label = (!t && label >= 0) ? p[label] : 0.0f; /* grad may alias p */
    const float floor_t = smoothing / (float)n, keep = 1.0f - smoothing;
    const vf inv = vf_set1(inv_s), lo = vf_set1(eps), hi = vf_set1(1.0f - eps);
    const vf vkeep = vf_set1(keep), vfloor = vf_set1(floor_t);
    vf loss = vf_zero(), big_a = vf_zero();
    for (int64_t i = 0; i < n; i += VW) {
        int64_t rem = n - i;
        vf r = vf_mul(vf_load_tail(p + i, rem), inv);
        vf q = vf_min(vf_max(r, lo), hi);
        vf tv = t ? vf_fmadd(vf_load_tail(t + i, rem), vkeep, vfloor) : vfloor;
        tv = keep_lanes(tv, rem);
        loss = vf_fnmadd(tv, vf_log(q), loss);
        vf a = vf_select(vm_or(vf_lt(r, lo), vf_gt(r, hi)), vf_zero(), vf_div(tv, q));
        big_a = vf_fmadd(a, r, big_a);
        if (grad)
            vf_store_tail(grad + i, a, rem);
    }
    float total = vf_hsum(loss), sum_a = vf_hsum(big_a);
    if (!t && label >= 0 && keep != 0.0f) {
        /* The one-hot part of an integer label, on its single class. */
        float r = p_label * inv_s;
        float q = r < eps ? eps : (r > 1.0f - eps ? 1.0f - eps : r);
        total -= keep * logf(q);
        if (!(r < eps || r > 1.0f - eps)) {
            float a = keep / q;
            sum_a += a * r;
            if (grad)
                grad[label] += a;
        }
    }
    if (grad) {
        const vf gs = vf_set1(gfac * inv_s), va = vf_set1(sum_a);
        for (int64_t i = 0; i < n; i += VW) {
            int64_t rem = n - i;
            vf_store_tail(grad + i, vf_mul(gs, vf_sub(va, vf_load_tail(grad + i, rem))), rem);
        }
    }
    return total;
}

#define CNNC_LOSS_TABLE(isa) \
    const struct cnnc_loss_kernels cnnc_loss_kernels_##isa = { \
        .row_max = row_max, .softmax_exp = softmax_exp, .affine = affine, \
        .sigmoid_xent = sigmoid_xent, .binary_xent = binary_xent, .squared_error = squared_error, \
        .absolute_error = absolute_error, .categorical_xent = categorical_xent, \
    }
