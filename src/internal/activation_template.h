/* The activation micro-kernels, written once over the vocabulary of simd.h:
 * src/kernels/<isa>/activation_<isa>.c defines CNNC_SIMD, includes this
 * file, then expands CNNC_ACTIVATION_KERNELS(isa).
 *
 * Each activation is a pair of inline functions, value name_f(x, alpha) and
 * gradient name_b(x, dy, alpha), applied by the map loops below. Every
 * formula is arranged so that nothing overflows and so that each lane of a
 * vector computes exactly what the one-lane scalar path computes (same
 * operations in the same order). vf_select(m, a, b) is m ? a : b. */
#ifndef CNNC_ACTIVATION_TEMPLATE_H
#define CNNC_ACTIVATION_TEMPLATE_H
#include "activation_kernels.h"
#include "simd.h"

#define A_ZERO vf_zero()
#define A_ONE vf_set1(1.0f)

static inline vf relu_f(vf x, vf a) { return vf_max(A_ZERO, x); } /* NaN stays NaN */
static inline vf relu_b(vf x, vf dy, vf a) { return vf_select(vf_gt(x, A_ZERO), dy, A_ZERO); }

static inline vf leaky_relu_f(vf x, vf a) { return vf_select(vf_gt(x, A_ZERO), x, vf_mul(a, x)); }
static inline vf leaky_relu_b(vf x, vf dy, vf a) { return vf_select(vf_gt(x, A_ZERO), dy, vf_mul(a, dy)); }

static inline vf elu_f(vf x, vf a) { return vf_select(vf_gt(x, A_ZERO), x, vf_mul(a, vf_expm1(x))); }
static inline vf elu_b(vf x, vf dy, vf a)
{
    return vf_select(vf_gt(x, A_ZERO), dy, vf_mul(vf_mul(dy, a), vf_exp(x)));
}

/* With e = exp(-|x|) <= 1 nothing overflows: sigmoid(|x|) = 1 / (1 + e),
 * sigmoid(-|x|) = e / (1 + e), and sigmoid' = e / (1 + e)^2 on both sides. */
static inline vf sigmoid_f(vf x, vf a)
{
    vf e = vf_exp(vf_sub(A_ZERO, vf_abs(x)));
    vf s = vf_div(A_ONE, vf_add(A_ONE, e));
    return vf_select(vf_ge(x, A_ZERO), s, vf_mul(e, s));
}
static inline vf sigmoid_b(vf x, vf dy, vf a)
{
    vf e = vf_exp(vf_sub(A_ZERO, vf_abs(x)));
    vf s = vf_div(A_ONE, vf_add(A_ONE, e));
    return vf_mul(dy, vf_mul(vf_mul(e, s), s));
}

/* tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|)): exact near 0, 1 at +inf;
 * tanh' = 4 e / (1 + e)^2 with e = exp(-2|x|). */
static inline vf tanh_f(vf x, vf a)
{
    vf em = vf_expm1(vf_mul(vf_set1(-2.0f), vf_abs(x)));
    return vf_copysign(vf_div(vf_sub(A_ZERO, em), vf_add(vf_set1(2.0f), em)), x);
}
static inline vf tanh_b(vf x, vf dy, vf a)
{
    vf e = vf_exp(vf_mul(vf_set1(-2.0f), vf_abs(x)));
    vf d = vf_add(A_ONE, e);
    return vf_mul(dy, vf_div(vf_mul(vf_set1(4.0f), e), vf_mul(d, d)));
}

/* Beyond |x| = 20 the normal tail underflows; clamping there turns inf * 0
 * into the limit at +-inf instead of NaN. vf_max/vf_min keep a NaN x. */
static inline vf clamp_low20(vf x) { return vf_max(vf_set1(-20.0f), x); }
static inline vf clamp20(vf x) { return vf_min(vf_set1(20.0f), clamp_low20(x)); }

/* Phi(x) from the upper tail at |x|, so that the left tail keeps its
 * relative accuracy (1 + erf(x) would cancel). */
static inline vf normal_cdf(vf x)
{
    vf c = vf_normal_tail(vf_abs(x));
    return vf_select(vf_ge(x, A_ZERO), vf_sub(A_ONE, c), c);
}
static inline vf gelu_f(vf x, vf a) { return vf_mul(clamp_low20(x), normal_cdf(x)); }
static inline vf gelu_b(vf x, vf dy, vf a)
{
    vf xc = clamp20(x);
    return vf_mul(dy, vf_fmadd(xc, vf_normal_pdf(xc), normal_cdf(x)));
}

/* x (1 + tanh v) / 2 = x sigmoid(2v), v = sqrt(2/pi) (x + 0.044715 x^3):
 * no cancellation for negative x. */
static inline vf gelu_tanh_w(vf xc)
{
    vf inner = vf_fmadd(vf_mul(vf_set1(CNNC_GELU_K1), xc), xc, A_ONE);
    return vf_mul(vf_mul(vf_set1(2.0f * CNNC_GELU_K0), xc), inner);
}
static inline vf gelu_tanh_f(vf x, vf a) { return vf_mul(clamp_low20(x), sigmoid_f(gelu_tanh_w(clamp20(x)), a)); }
static inline vf gelu_tanh_b(vf x, vf dy, vf a)
{
    vf xc = clamp20(x);
    vf w = gelu_tanh_w(xc);
    vf e = vf_exp(vf_sub(A_ZERO, vf_abs(w)));
    vf s = vf_div(A_ONE, vf_add(A_ONE, e));
    vf sg = vf_select(vf_ge(w, A_ZERO), s, vf_mul(e, s));
    vf dw = vf_mul(vf_set1(2.0f * CNNC_GELU_K0), vf_fmadd(vf_mul(vf_set1(3.0f * CNNC_GELU_K1), xc), xc, A_ONE));
    vf ds = vf_mul(vf_mul(e, s), s);
    return vf_mul(dy, vf_fmadd(vf_mul(xc, ds), dw, sg));
}

/* x sigmoid(x); the clamp turns -inf * 0 into the limit 0 (sigmoid has
 * underflowed long before -104). silu' = s + x s (1 - s). */
static inline vf silu_f(vf x, vf a) { return vf_mul(vf_max(vf_set1(-104.0f), x), sigmoid_f(x, a)); }
static inline vf silu_b(vf x, vf dy, vf a)
{
    vf xc = vf_min(vf_set1(104.0f), vf_max(vf_set1(-104.0f), x));
    vf e = vf_exp(vf_sub(A_ZERO, vf_abs(x)));
    vf s = vf_div(A_ONE, vf_add(A_ONE, e));
    vf sg = vf_select(vf_ge(x, A_ZERO), s, vf_mul(e, s));
    return vf_mul(dy, vf_fmadd(xc, vf_mul(vf_mul(e, s), s), sg));
}

/* max(x, 0) + log1p(exp(-|x|)): no overflow, exact for large |x|. */
static inline vf softplus_f(vf x, vf a)
{
    vf e = vf_exp(vf_sub(A_ZERO, vf_abs(x)));
    return vf_add(vf_max(A_ZERO, x), vf_log1p(e));
}
static inline vf softplus_b(vf x, vf dy, vf a) { return vf_mul(dy, sigmoid_f(x, a)); }

static inline vf relu6_f(vf x, vf a) { return vf_min(vf_set1(6.0f), vf_max(A_ZERO, x)); }
static inline vf relu6_b(vf x, vf dy, vf a)
{
    return vf_select(vm_and(vf_gt(x, A_ZERO), vf_lt(x, vf_set1(6.0f))), dy, A_ZERO);
}

static inline vf hard_sigmoid_f(vf x, vf a) { return vf_mul(relu6_f(vf_add(x, vf_set1(3.0f)), a), vf_set1(1.0f / 6.0f)); }
static inline vf hard_sigmoid_b(vf x, vf dy, vf a)
{
    return vf_select(vm_and(vf_gt(x, vf_set1(-3.0f)), vf_lt(x, vf_set1(3.0f))), vf_mul(dy, vf_set1(1.0f / 6.0f)), A_ZERO);
}

/* Zero below -3 stated outright, so that -inf gives 0, not -inf * 0. */
static inline vf hard_swish_f(vf x, vf a)
{
    return vf_select(vf_lt(x, vf_set1(-3.0f)), A_ZERO, vf_mul(x, hard_sigmoid_f(x, a)));
}
static inline vf hard_swish_b(vf x, vf dy, vf a)
{
    vf mid = vf_mul(dy, vf_fmadd(x, vf_set1(1.0f / 3.0f), vf_set1(0.5f)));
    vf r = vf_select(vf_lt(x, vf_set1(3.0f)), mid, dy);
    return vf_select(vf_le(x, vf_set1(-3.0f)), A_ZERO, r);
}

static inline vf selu_f(vf x, vf a) { return vf_mul(vf_set1(CNNC_SELU_SCALE), elu_f(x, vf_set1(CNNC_SELU_ALPHA))); }
static inline vf selu_b(vf x, vf dy, vf a)
{
    return vf_mul(vf_set1(CNNC_SELU_SCALE), elu_b(x, dy, vf_set1(CNNC_SELU_ALPHA)));
}

/* Loops applying an inline value or gradient function, with a partial
 * vector for the tail; the call through f is inlined at each use. */
static inline __attribute__((always_inline)) void act_map1(int64_t n, const float *x, float *y, float alpha,
                                                           vf (*f)(vf, vf))
{
    const vf a = vf_set1(alpha);
    for (int64_t i = 0; i < n; i += VW)
        vf_store_tail(y + i, f(vf_load_tail(x + i, n - i), a), n - i);
}

static inline __attribute__((always_inline)) void act_map2(int64_t n, const float *x, const float *dy, float *dx,
                                                           float alpha, vf (*f)(vf, vf, vf))
{
    const vf a = vf_set1(alpha);
    for (int64_t i = 0; i < n; i += VW) {
        vf d = vf_load_tail(dy + i, n - i);
        /* Keeps dy a plain load: GCC otherwise folds "x > 0 ? dy : 0" into a
         * load of dy masked by the data-dependent compare, which runs at
         * two thirds of memory speed on Zen 5. */
        d = vf_keep(d);
        vf_store_tail(dx + i, f(vf_load_tail(x + i, n - i), d, a), n - i);
    }
}

#define ACT_PAIR(name) CNNC_ACTIVATION_PAIR(name, act_map1, act_map2)
ACT_PAIR(relu)
ACT_PAIR(leaky_relu)
ACT_PAIR(elu)
ACT_PAIR(sigmoid)
ACT_PAIR(tanh)
ACT_PAIR(gelu)
ACT_PAIR(gelu_tanh)
ACT_PAIR(silu)
ACT_PAIR(softplus)
ACT_PAIR(relu6)
ACT_PAIR(hard_sigmoid)
ACT_PAIR(hard_swish)
ACT_PAIR(selu)

/* ---- row primitives of softmax ---------------------------------------- */

static float row_max(int64_t n, const float *x)
{
    if (n < VW) {
        float m = -INFINITY;
        for (int64_t i = 0; i < n; ++i)
            m = x[i] > m ? x[i] : m; /* NaN is skipped */
        return m;
    }
    vf m = vf_set1(-INFINITY);
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        m = vf_max(vf_load(x + i), m); /* NaN in x is skipped */
    if (i < n) /* the last full vector again: max does not mind overlap */
        m = vf_max(vf_load(x + n - VW), m);
    return vf_hmax(m);
}

/* Vector sums run in float over blocks of SUM_BLOCK elements and add the
 * block totals in double: a long row summed in float alone would lose
 * digits. The one-lane path adds every term in double. */
#define SUM_BLOCK (VW == 1 ? 1 : 1024)

/* Sum of the first `count` lanes of v. */
static inline float sum_lanes(vf v, int64_t count)
{
    float lanes[VW];
    vf_store(lanes, v);
    float total = 0.0f;
    for (int64_t k = 0; k < count; ++k)
        total += lanes[k];
    return total;
}

static float exp_sum(int64_t n, const float *x, float shift, float *y)
{
    const vf sh = vf_set1(shift);
    double total = 0.0;
    for (int64_t start = 0; start < n; start += SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + SUM_BLOCK);
        vf acc0 = A_ZERO, acc1 = A_ZERO;
        int64_t i = start;
        for (; i + 2 * VW <= end; i += 2 * VW) {
            vf e0 = vf_exp(vf_sub(vf_load(x + i), sh));
            vf e1 = vf_exp(vf_sub(vf_load(x + i + VW), sh));
            if (y) {
                vf_store(y + i, e0);
                vf_store(y + i + VW, e1);
            }
            acc0 = vf_add(acc0, e0);
            acc1 = vf_add(acc1, e1);
        }
        float rest = 0.0f;
        for (; i < end; i += VW) {
            const int64_t count = cnnc_min_i64(VW, end - i);
            vf e = vf_exp(vf_sub(vf_load_tail(x + i, count), sh));
            if (y)
                vf_store_tail(y + i, e, count);
            if (count == VW)
                acc0 = vf_add(acc0, e);
            else
                rest += sum_lanes(e, count);
        }
        total += (double)vf_hsum(vf_add(acc0, acc1)) + rest;
    }
    return (float)total;
}

static void affine(int64_t n, const float *x, float shift, float scale, float offset, float *y)
{
    const vf sh = vf_set1(shift), sc = vf_set1(scale), off = vf_set1(offset);
    for (int64_t i = 0; i < n; i += VW)
        vf_store_tail(y + i, vf_fmadd(vf_sub(vf_load_tail(x + i, n - i), sh), sc, off), n - i);
}

static float sum(int64_t n, const float *x)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + SUM_BLOCK);
        vf acc = A_ZERO;
        for (int64_t i = start; i < end; i += VW)
            acc = vf_add(acc, vf_load_tail(x + i, end - i)); /* partial loads fill zeros */
        total += vf_hsum(acc);
    }
    return (float)total;
}

static float dot(int64_t n, const float *a, const float *b)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + SUM_BLOCK);
        if (VW == 1) { /* one lane: every product in double */
            total += (double)a[start] * b[start];
            continue;
        }
        vf acc = A_ZERO;
        for (int64_t i = start; i < end; i += VW)
            acc = vf_fmadd(vf_load_tail(a + i, end - i), vf_load_tail(b + i, end - i), acc);
        total += vf_hsum(acc);
    }
    return (float)total;
}

static void softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    const vf sv = vf_set1(s);
    for (int64_t i = 0; i < n; i += VW)
        vf_store_tail(dx + i, vf_mul(vf_load_tail(y + i, n - i), vf_sub(vf_load_tail(dy + i, n - i), sv)), n - i);
}

static void log_softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    const vf sv = vf_set1(s);
    for (int64_t i = 0; i < n; i += VW)
        vf_store_tail(dx + i, vf_fnmadd(vf_exp(vf_load_tail(y + i, n - i)), sv, vf_load_tail(dy + i, n - i)), n - i);
}

#define CNNC_ACTIVATION_KERNELS(isa) \
    const struct cnnc_activation_kernels cnnc_activation_kernels_##isa = CNNC_ACTIVATION_TABLE

#endif
