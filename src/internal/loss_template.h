/* The loss micro-kernels, written once against the vector vocabulary of
 * simd_<isa>.h and instantiated by src/kernels/<isa>/loss_<isa>.c. Vector
 * accumulators are reduced in a fixed order, so results depend on the ISA
 * but never on threads. */
#include "loss_kernels.h"

/* Lanes past the end of a partial vector take `value` (0 for sums, -inf for
 * maxima) so that they never disturb a reduction. */
static inline vf fill_tail(vf v, int64_t rem, float value)
{
#if V_WIDTH > 1
    if (rem < V_WIDTH) {
        float lanes[V_WIDTH];
        V_STORE(lanes, v);
        for (int64_t j = rem; j < V_WIDTH; ++j)
            lanes[j] = value;
        return V_LOAD(lanes);
    }
#endif
    (void)rem;
    (void)value;
    return v;
}
#define keep_lanes(v, rem) fill_tail((v), (rem), 0.0f)

static float row_max(int64_t n, const float *x)
{
    vf acc = V_SET1(-INFINITY);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf a = fill_tail(v_load_tail(x + i, rem), rem, -INFINITY);
        /* NaN must win so that a NaN logit gives a NaN loss. */
        acc = V_SELECT(V_NE(a, a), a, V_MAX(acc, a));
    }
#if V_WIDTH > 1
    float lanes[V_WIDTH];
    V_STORE(lanes, acc);
    float m = lanes[0];
    for (int j = 1; j < V_WIDTH; ++j)
        m = (lanes[j] > m || lanes[j] != lanes[j]) ? lanes[j] : m;
    return m;
#else
    return acc;
#endif
}

static void softmax_exp(int64_t n, const float *x, float mx, const float *t, float *e,
                        struct cnnc_softmax_sums *sums)
{
    const vf m = V_SET1(mx);
    vf es = V_ZERO(), sh = V_ZERO(), dt = V_ZERO(), ts = V_ZERO();
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf d = keep_lanes(V_SUB(v_load_tail(x + i, rem), m), rem);
        vf ex = keep_lanes(V_EXP(d), rem);
        es = V_ADD(es, ex);
        sh = V_ADD(sh, d);
        if (t) {
            vf tv = v_load_tail(t + i, rem);
            dt = V_FMA(tv, d, dt);
            ts = V_ADD(ts, tv);
        }
        if (e)
            v_store_tail(e + i, ex, rem);
    }
    sums->exp_sum = V_REDUCE_ADD(es);
    sums->shifted = V_REDUCE_ADD(sh);
    sums->dot = V_REDUCE_ADD(dt);
    sums->t_sum = V_REDUCE_ADD(ts);
}

static void affine(int64_t n, const float *e, const float *t, float a, float b, float c, float *grad)
{
    const vf va = V_SET1(a), vb = V_SET1(b), vc = V_SET1(c);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf r = V_FMA(va, v_load_tail(e + i, rem), vc);
        if (t)
            r = V_FMA(vb, v_load_tail(t + i, rem), r);
        v_store_tail(grad + i, r, rem);
    }
}

static float sigmoid_xent(int64_t n, const float *x, const float *z, float smoothing, float gfac, float *grad)
{
    const vf keep = V_SET1(1.0f - smoothing), half_s = V_SET1(0.5f * smoothing), gf = V_SET1(gfac);
    const vf one = V_SET1(1.0f), zero = V_ZERO();
    vf acc = V_ZERO();
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf xv = v_load_tail(x + i, rem);
        vf zv = V_FMA(v_load_tail(z + i, rem), keep, half_s);
        vf e = V_EXP(V_SUB(zero, V_ABS(xv))); /* exp(-|x|) in (0, 1] */
        vf l = V_ADD(V_FNMA(xv, zv, V_MAX(xv, zero)), V_LOG1P(e));
        acc = V_ADD(acc, keep_lanes(l, rem));
        if (grad) {
            vf r = V_DIV(one, V_ADD(one, e));
            vf s = V_SELECT(V_LT(xv, zero), V_MUL(e, r), r); /* sigmoid(x) without overflow */
            v_store_tail(grad + i, V_MUL(gf, V_SUB(s, zv)), rem);
        }
    }
    return V_REDUCE_ADD(acc);
}

static float binary_xent(int64_t n, const float *p, const float *z, float smoothing, float eps, float gfac,
                         float *grad)
{
    const vf keep = V_SET1(1.0f - smoothing), half_s = V_SET1(0.5f * smoothing), gf = V_SET1(gfac);
    const vf lo = V_SET1(eps), hi = V_SET1(1.0f - eps), one = V_SET1(1.0f);
    vf acc = V_ZERO();
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf pv = v_load_tail(p + i, rem);
        vf zv = V_FMA(v_load_tail(z + i, rem), keep, half_s);
        vf c = V_MIN(V_MAX(pv, lo), hi);
        vf omc = V_SUB(one, c);
        vf l = V_FMA(zv, V_LOG(c), V_MUL(V_SUB(one, zv), V_LOG(omc)));
        acc = V_SUB(acc, keep_lanes(l, rem));
        if (grad) {
            vf gv = V_SUB(V_DIV(V_SUB(one, zv), omc), V_DIV(zv, c));
            gv = V_SELECT(V_OR(V_LT(pv, lo), V_GT(pv, hi)), V_ZERO(), gv);
            v_store_tail(grad + i, V_MUL(gf, gv), rem);
        }
    }
    return V_REDUCE_ADD(acc);
}

static float squared_error(int64_t n, const float *p, const float *t, float gfac, float *grad)
{
    const vf g2 = V_SET1(2.0f * gfac);
    vf acc = V_ZERO();
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf d = V_SUB(v_load_tail(p + i, rem), v_load_tail(t + i, rem));
        acc = V_FMA(d, d, acc);
        if (grad)
            v_store_tail(grad + i, V_MUL(g2, d), rem);
    }
    return V_REDUCE_ADD(acc);
}

static float absolute_error(int64_t n, const float *p, const float *t, float gfac, float *grad)
{
    const vf gf = V_SET1(gfac);
    vf acc = V_ZERO();
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf d = V_SUB(v_load_tail(p + i, rem), v_load_tail(t + i, rem));
        acc = V_ADD(acc, V_ABS(d));
        if (grad)
            v_store_tail(grad + i, V_MUL(gf, V_SIGN(d)), rem);
    }
    return V_REDUCE_ADD(acc);
}

/* q = clip(p / S) with S = sum(p); L = -sum t' log q. With a_j = t'_j / q_j
 * where the clip is inactive (else 0) and r = p / S:
 * dL/dp_k = (sum_j a_j r_j - a_k) / S. */
static float categorical_xent(int64_t n, const float *p, const float *t, int64_t label, float smoothing,
                              float eps, float gfac, float *grad)
{
    vf sv = V_ZERO();
    for (int64_t i = 0; i < n; i += V_WIDTH)
        sv = V_ADD(sv, v_load_tail(p + i, n - i));
    const float inv_s = 1.0f / V_REDUCE_ADD(sv);
    const float p_label = (!t && label >= 0) ? p[label] : 0.0f; /* grad may alias p */
    const float floor_t = smoothing / (float)n, keep = 1.0f - smoothing;
    const vf inv = V_SET1(inv_s), lo = V_SET1(eps), hi = V_SET1(1.0f - eps);
    const vf vkeep = V_SET1(keep), vfloor = V_SET1(floor_t);
    vf loss = V_ZERO(), big_a = V_ZERO();
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        int64_t rem = n - i;
        vf r = V_MUL(v_load_tail(p + i, rem), inv);
        vf q = V_MIN(V_MAX(r, lo), hi);
        vf tv = t ? V_FMA(v_load_tail(t + i, rem), vkeep, vfloor) : vfloor;
        tv = keep_lanes(tv, rem);
        loss = V_FNMA(tv, V_LOG(q), loss);
        vf a = V_SELECT(V_OR(V_LT(r, lo), V_GT(r, hi)), V_ZERO(), V_DIV(tv, q));
        big_a = V_FMA(a, r, big_a);
        if (grad)
            v_store_tail(grad + i, a, rem);
    }
    float total = V_REDUCE_ADD(loss), sum_a = V_REDUCE_ADD(big_a);
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
        const vf gs = V_SET1(gfac * inv_s), va = V_SET1(sum_a);
        for (int64_t i = 0; i < n; i += V_WIDTH) {
            int64_t rem = n - i;
            v_store_tail(grad + i, V_MUL(gs, V_SUB(va, v_load_tail(grad + i, rem))), rem);
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
