/* The activation micro-kernels, written once over the V_* vocabulary of
 * simd_<isa>.h: src/kernels/<isa>/activation_<isa>.c includes its
 * simd_<isa>.h, then this file, then expands CNNC_ACTIVATION_KERNELS(isa).
 *
 * Each activation is a pair of inline functions, value name_f(x, alpha) and
 * gradient name_b(x, dy, alpha), applied by the map loops below. Every
 * formula is arranged so that nothing overflows and so that each lane of a
 * vector computes exactly what the one-lane scalar path computes (same
 * operations in the same order). V_SELECT(m, a, b) is m ? a : b. */
#ifndef CNNC_ACTIVATION_TEMPLATE_H
#define CNNC_ACTIVATION_TEMPLATE_H
#include "activation_kernels.h"

#define A_ZERO V_ZERO()
#define A_ONE V_SET1(1.0f)

static inline vf relu_f(vf x, vf a) { return V_MAX(A_ZERO, x); } /* NaN stays NaN */
static inline vf relu_b(vf x, vf dy, vf a) { return V_SELECT(V_GT(x, A_ZERO), dy, A_ZERO); }

static inline vf leaky_relu_f(vf x, vf a) { return V_SELECT(V_GT(x, A_ZERO), x, V_MUL(a, x)); }
static inline vf leaky_relu_b(vf x, vf dy, vf a) { return V_SELECT(V_GT(x, A_ZERO), dy, V_MUL(a, dy)); }

static inline vf elu_f(vf x, vf a) { return V_SELECT(V_GT(x, A_ZERO), x, V_MUL(a, V_EXPM1(x))); }
static inline vf elu_b(vf x, vf dy, vf a)
{
    return V_SELECT(V_GT(x, A_ZERO), dy, V_MUL(V_MUL(dy, a), V_EXP(x)));
}

/* With e = exp(-|x|) <= 1 nothing overflows: sigmoid(|x|) = 1 / (1 + e),
 * sigmoid(-|x|) = e / (1 + e), and sigmoid' = e / (1 + e)^2 on both sides. */
static inline vf sigmoid_f(vf x, vf a)
{
    vf e = V_EXP(V_SUB(A_ZERO, V_ABS(x)));
    vf s = V_DIV(A_ONE, V_ADD(A_ONE, e));
    return V_SELECT(V_GE(x, A_ZERO), s, V_MUL(e, s));
}
static inline vf sigmoid_b(vf x, vf dy, vf a)
{
    vf e = V_EXP(V_SUB(A_ZERO, V_ABS(x)));
    vf s = V_DIV(A_ONE, V_ADD(A_ONE, e));
    return V_MUL(dy, V_MUL(V_MUL(e, s), s));
}

/* tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|)): exact near 0, 1 at +inf;
 * tanh' = 4 e / (1 + e)^2 with e = exp(-2|x|). */
static inline vf tanh_f(vf x, vf a)
{
    vf em = V_EXPM1(V_MUL(V_SET1(-2.0f), V_ABS(x)));
    return V_COPYSIGN(V_DIV(V_SUB(A_ZERO, em), V_ADD(V_SET1(2.0f), em)), x);
}
static inline vf tanh_b(vf x, vf dy, vf a)
{
    vf e = V_EXP(V_MUL(V_SET1(-2.0f), V_ABS(x)));
    vf d = V_ADD(A_ONE, e);
    return V_MUL(dy, V_DIV(V_MUL(V_SET1(4.0f), e), V_MUL(d, d)));
}

/* Beyond |x| = 20 the normal tail underflows; clamping there turns inf * 0
 * into the limit at +-inf instead of NaN. V_MAX/V_MIN keep a NaN x. */
static inline vf clamp_low20(vf x) { return V_MAX(V_SET1(-20.0f), x); }
static inline vf clamp20(vf x) { return V_MIN(V_SET1(20.0f), clamp_low20(x)); }

/* Phi(x) from the upper tail at |x|, so that the left tail keeps its
 * relative accuracy (1 + erf(x) would cancel). */
static inline vf normal_cdf(vf x)
{
    vf c = V_NORMAL_TAIL(V_ABS(x));
    return V_SELECT(V_GE(x, A_ZERO), V_SUB(A_ONE, c), c);
}
static inline vf gelu_f(vf x, vf a) { return V_MUL(clamp_low20(x), normal_cdf(x)); }
static inline vf gelu_b(vf x, vf dy, vf a)
{
    vf xc = clamp20(x);
    return V_MUL(dy, V_FMA(xc, V_NORMAL_PDF(xc), normal_cdf(x)));
}

/* x (1 + tanh v) / 2 = x sigmoid(2v), v = sqrt(2/pi) (x + 0.044715 x^3):
 * no cancellation for negative x. */
static inline vf gelu_tanh_w(vf xc)
{
    vf inner = V_FMA(V_MUL(V_SET1(CNNC_GELU_K1), xc), xc, A_ONE);
    return V_MUL(V_MUL(V_SET1(2.0f * CNNC_GELU_K0), xc), inner);
}
static inline vf gelu_tanh_f(vf x, vf a) { return V_MUL(clamp_low20(x), sigmoid_f(gelu_tanh_w(clamp20(x)), a)); }
static inline vf gelu_tanh_b(vf x, vf dy, vf a)
{
    vf xc = clamp20(x);
    vf w = gelu_tanh_w(xc);
    vf e = V_EXP(V_SUB(A_ZERO, V_ABS(w)));
    vf s = V_DIV(A_ONE, V_ADD(A_ONE, e));
    vf sg = V_SELECT(V_GE(w, A_ZERO), s, V_MUL(e, s));
    vf dw = V_MUL(V_SET1(2.0f * CNNC_GELU_K0), V_FMA(V_MUL(V_SET1(3.0f * CNNC_GELU_K1), xc), xc, A_ONE));
    vf ds = V_MUL(V_MUL(e, s), s);
    return V_MUL(dy, V_FMA(V_MUL(xc, ds), dw, sg));
}

/* x sigmoid(x); the clamp turns -inf * 0 into the limit 0 (sigmoid has
 * underflowed long before -104). silu' = s + x s (1 - s). */
static inline vf silu_f(vf x, vf a) { return V_MUL(V_MAX(V_SET1(-104.0f), x), sigmoid_f(x, a)); }
static inline vf silu_b(vf x, vf dy, vf a)
{
    vf xc = V_MIN(V_SET1(104.0f), V_MAX(V_SET1(-104.0f), x));
    vf e = V_EXP(V_SUB(A_ZERO, V_ABS(x)));
    vf s = V_DIV(A_ONE, V_ADD(A_ONE, e));
    vf sg = V_SELECT(V_GE(x, A_ZERO), s, V_MUL(e, s));
    return V_MUL(dy, V_FMA(xc, V_MUL(V_MUL(e, s), s), sg));
}

/* max(x, 0) + log1p(exp(-|x|)): no overflow, exact for large |x|. */
static inline vf softplus_f(vf x, vf a)
{
    vf e = V_EXP(V_SUB(A_ZERO, V_ABS(x)));
    return V_ADD(V_MAX(A_ZERO, x), V_LOG1P(e));
}
static inline vf softplus_b(vf x, vf dy, vf a) { return V_MUL(dy, sigmoid_f(x, a)); }

static inline vf relu6_f(vf x, vf a) { return V_MIN(V_SET1(6.0f), V_MAX(A_ZERO, x)); }
static inline vf relu6_b(vf x, vf dy, vf a)
{
    return V_SELECT(V_AND(V_GT(x, A_ZERO), V_LT(x, V_SET1(6.0f))), dy, A_ZERO);
}

static inline vf hard_sigmoid_f(vf x, vf a) { return V_MUL(relu6_f(V_ADD(x, V_SET1(3.0f)), a), V_SET1(1.0f / 6.0f)); }
static inline vf hard_sigmoid_b(vf x, vf dy, vf a)
{
    return V_SELECT(V_AND(V_GT(x, V_SET1(-3.0f)), V_LT(x, V_SET1(3.0f))), V_MUL(dy, V_SET1(1.0f / 6.0f)), A_ZERO);
}

/* Zero below -3 stated outright, so that -inf gives 0, not -inf * 0. */
static inline vf hard_swish_f(vf x, vf a)
{
    return V_SELECT(V_LT(x, V_SET1(-3.0f)), A_ZERO, V_MUL(x, hard_sigmoid_f(x, a)));
}
static inline vf hard_swish_b(vf x, vf dy, vf a)
{
    vf mid = V_MUL(dy, V_FMA(x, V_SET1(1.0f / 3.0f), V_SET1(0.5f)));
    vf r = V_SELECT(V_LT(x, V_SET1(3.0f)), mid, dy);
    return V_SELECT(V_LE(x, V_SET1(-3.0f)), A_ZERO, r);
}

static inline vf selu_f(vf x, vf a) { return V_MUL(V_SET1(CNNC_SELU_SCALE), elu_f(x, V_SET1(CNNC_SELU_ALPHA))); }
static inline vf selu_b(vf x, vf dy, vf a)
{
    return V_MUL(V_SET1(CNNC_SELU_SCALE), elu_b(x, dy, V_SET1(CNNC_SELU_ALPHA)));
}

/* Loops applying an inline value or gradient function, with a partial
 * vector for the tail; the call through f is inlined at each use. */
static inline __attribute__((always_inline)) void act_map1(int64_t n, const float *x, float *y, float alpha,
                                                           vf (*f)(vf, vf))
{
    const vf a = V_SET1(alpha);
    for (int64_t i = 0; i < n; i += V_WIDTH)
        v_store_tail(y + i, f(v_load_tail(x + i, n - i), a), n - i);
}

static inline __attribute__((always_inline)) void act_map2(int64_t n, const float *x, const float *dy, float *dx,
                                                           float alpha, vf (*f)(vf, vf, vf))
{
    const vf a = V_SET1(alpha);
    for (int64_t i = 0; i < n; i += V_WIDTH) {
        vf d = v_load_tail(dy + i, n - i);
#if V_WIDTH > 1
        /* Keeps dy a plain load: GCC otherwise folds "x > 0 ? dy : 0" into a
         * load of dy masked by the data-dependent compare, which runs at
         * two thirds of memory speed on Zen 5. */
        __asm__("" : "+v"(d));
#endif
        v_store_tail(dx + i, f(v_load_tail(x + i, n - i), d, a), n - i);
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
    if (n < V_WIDTH) {
        float m = -INFINITY;
        for (int64_t i = 0; i < n; ++i)
            m = x[i] > m ? x[i] : m; /* NaN is skipped */
        return m;
    }
    vf m = V_SET1(-INFINITY);
    int64_t i = 0;
    for (; i + V_WIDTH <= n; i += V_WIDTH)
        m = V_MAX(V_LOAD(x + i), m); /* NaN in x is skipped */
    if (i < n) /* the last full vector again: max does not mind overlap */
        m = V_MAX(V_LOAD(x + n - V_WIDTH), m);
    return V_REDUCE_MAX(m);
}

/* Vector sums run in float over blocks of SUM_BLOCK elements and add the
 * block totals in double: a long row summed in float alone would lose
 * digits. The one-lane path adds every term in double. */
#define SUM_BLOCK (V_WIDTH == 1 ? 1 : 1024)

/* Sum of the first `count` lanes of v. */
static inline float sum_lanes(vf v, int64_t count)
{
    float lanes[V_WIDTH];
    V_STORE(lanes, v);
    float total = 0.0f;
    for (int64_t k = 0; k < count; ++k)
        total += lanes[k];
    return total;
}

static float exp_sum(int64_t n, const float *x, float shift, float *y)
{
    const vf sh = V_SET1(shift);
    double total = 0.0;
    for (int64_t start = 0; start < n; start += SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + SUM_BLOCK);
        vf acc0 = A_ZERO, acc1 = A_ZERO;
        int64_t i = start;
        for (; i + 2 * V_WIDTH <= end; i += 2 * V_WIDTH) {
            vf e0 = V_EXP(V_SUB(V_LOAD(x + i), sh));
            vf e1 = V_EXP(V_SUB(V_LOAD(x + i + V_WIDTH), sh));
            if (y) {
                V_STORE(y + i, e0);
                V_STORE(y + i + V_WIDTH, e1);
            }
            acc0 = V_ADD(acc0, e0);
            acc1 = V_ADD(acc1, e1);
        }
        float rest = 0.0f;
        for (; i < end; i += V_WIDTH) {
            const int64_t count = cnnc_min_i64(V_WIDTH, end - i);
            vf e = V_EXP(V_SUB(v_load_tail(x + i, count), sh));
            if (y)
                v_store_tail(y + i, e, count);
            if (count == V_WIDTH)
                acc0 = V_ADD(acc0, e);
            else
                rest += sum_lanes(e, count);
        }
        total += (double)V_REDUCE_ADD(V_ADD(acc0, acc1)) + rest;
    }
    return (float)total;
}

static void affine(int64_t n, const float *x, float shift, float scale, float offset, float *y)
{
    const vf sh = V_SET1(shift), sc = V_SET1(scale), off = V_SET1(offset);
    for (int64_t i = 0; i < n; i += V_WIDTH)
        v_store_tail(y + i, V_FMA(V_SUB(v_load_tail(x + i, n - i), sh), sc, off), n - i);
}

static float sum(int64_t n, const float *x)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + SUM_BLOCK);
        vf acc = A_ZERO;
        for (int64_t i = start; i < end; i += V_WIDTH)
            acc = V_ADD(acc, v_load_tail(x + i, end - i)); /* partial loads fill zeros */
        total += V_REDUCE_ADD(acc);
    }
    return (float)total;
}

static float dot(int64_t n, const float *a, const float *b)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + SUM_BLOCK);
        if (V_WIDTH == 1) { /* one lane: every product in double */
            total += (double)a[start] * b[start];
            continue;
        }
        vf acc = A_ZERO;
        for (int64_t i = start; i < end; i += V_WIDTH)
            acc = V_FMA(v_load_tail(a + i, end - i), v_load_tail(b + i, end - i), acc);
        total += V_REDUCE_ADD(acc);
    }
    return (float)total;
}

static void softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    const vf sv = V_SET1(s);
    for (int64_t i = 0; i < n; i += V_WIDTH)
        v_store_tail(dx + i, V_MUL(v_load_tail(y + i, n - i), V_SUB(v_load_tail(dy + i, n - i), sv)), n - i);
}

static void log_softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    const vf sv = V_SET1(s);
    for (int64_t i = 0; i < n; i += V_WIDTH)
        v_store_tail(dx + i, V_FNMA(V_EXP(v_load_tail(y + i, n - i)), sv, v_load_tail(dy + i, n - i)), n - i);
}

#define CNNC_ACTIVATION_KERNELS(isa) \
    const struct cnnc_activation_kernels cnnc_activation_kernels_##isa = CNNC_ACTIVATION_TABLE

#endif
