/* Vector maths written once over the operations of simd.h (included by
 * simd.h), so every ISA path evaluates the same approximations
 * (vecmath_coeffs.h) and differs only by rounding: one rounding per fused
 * multiply-add where the ISA has FMA, two on the scalar path.
 *
 * Special values: exp(-inf) = 0, exp(+inf) = +inf, NaN propagates;
 * expm1(-inf) = -1; erfc(+inf) = 0; log(0) = -inf, log(x < 0) = NaN. */
#ifndef CNNC_VECMATH_H
#define CNNC_VECMATH_H
#include "vecmath_coeffs.h"

static inline vf vf_exp(vf x)
{
    /* max/min return their second operand when either is NaN: NaN passes. */
    x = vf_min(vf_set1(CNNC_EXP_HI), vf_max(vf_set1(CNNC_EXP_LO), x));
    vf n = vf_round_small(vf_mul(x, vf_set1(CNNC_LOG2E)));
    vf r = vf_fnmadd(n, vf_set1(CNNC_LN2_HI), x);
    r = vf_fnmadd(n, vf_set1(CNNC_LN2_LO), r);
    vf r2 = vf_mul(r, r);
#if VW > 1
    /* P(r) by Estrin's scheme: a shorter dependency chain than Horner's,
     * which pays where fused multiply-adds are pipelined. */
    vf p01 = vf_fmadd(vf_set1(CNNC_EXP_P1), r, vf_set1(CNNC_EXP_P0));
    vf p23 = vf_fmadd(vf_set1(CNNC_EXP_P3), r, vf_set1(CNNC_EXP_P2));
    vf p = vf_fmadd(vf_fmadd(vf_set1(CNNC_EXP_P4), r2, p23), r2, p01);
#else
    /* Horner's scheme: fewest operations without FMA. */
    vf p = vf_fmadd(vf_set1(CNNC_EXP_P4), r, vf_set1(CNNC_EXP_P3));
    p = vf_fmadd(p, r, vf_set1(CNNC_EXP_P2));
    p = vf_fmadd(p, r, vf_set1(CNNC_EXP_P1));
    p = vf_fmadd(p, r, vf_set1(CNNC_EXP_P0));
#endif
    vf y = vf_add(vf_fmadd(p, r2, r), vf_set1(1.0f));
    return vf_scale_pow2(y, n);
}

static inline vf vf_expm1(vf x)
{
    vf q = vf_fmadd(vf_set1(CNNC_EXPM1_Q5), x, vf_set1(CNNC_EXPM1_Q4));
    q = vf_fmadd(q, x, vf_set1(CNNC_EXPM1_Q3));
    q = vf_fmadd(q, x, vf_set1(CNNC_EXPM1_Q2));
    q = vf_fmadd(q, x, vf_set1(CNNC_EXPM1_Q1));
    q = vf_fmadd(q, x, vf_set1(CNNC_EXPM1_Q0));
    vf small = vf_fmadd(q, vf_mul(x, x), x);
    vf large = vf_sub(vf_exp(x), vf_set1(1.0f));
    return vf_select(vf_lt(vf_abs(x), vf_set1(CNNC_EXPM1_SMALL)), small, large);
}

/* exp(a - (q_hi + q_lo)) for a small a and a large q carried in two parts:
 * rounding the argument to one float would cost |q| ulp of relative error. */
static inline vf vf_exp_diff_(vf a, vf q_hi, vf q_lo)
{
    vf hi = vf_sub(a, q_hi);
    vf bb = vf_sub(hi, a);
    vf lo = vf_sub(vf_sub(a, vf_sub(hi, bb)), vf_add(q_hi, bb)); /* TwoSum */
    lo = vf_sub(lo, q_lo);
    return vf_mul(vf_exp(hi), vf_add(vf_set1(1.0f), lo));
}

/* erfc(z) for z >= 0 (or NaN), given z^2 = q_hi + q_lo exactly (callers that
 * know z only as x * constant pass the square of the exact x instead). */
static inline vf vf_erfc_core_(vf z, vf q_hi, vf q_lo)
{
    z = vf_min(vf_set1(CNNC_ERFC_ZMAX), z);
    vf t = vf_div(vf_set1(1.0f), vf_fmadd(z, vf_set1(0.5f), vf_set1(1.0f)));
    vf u = vf_fmsub(t, vf_set1(2.4f), vf_set1(1.4f));
#if VW > 1
    /* Estrin's scheme: a dependency chain of 5 instead of Horner's 10. Long
     * chains keep each store pending longer, and a store still pending stalls
     * later loads that alias it modulo 4 KiB. */
    vf u2 = vf_mul(u, u), u4 = vf_mul(u2, u2);
    vf p01 = vf_fmadd(vf_set1(CNNC_ERFC_E1), u, vf_set1(CNNC_ERFC_E0));
    vf p23 = vf_fmadd(vf_set1(CNNC_ERFC_E3), u, vf_set1(CNNC_ERFC_E2));
    vf p45 = vf_fmadd(vf_set1(CNNC_ERFC_E5), u, vf_set1(CNNC_ERFC_E4));
    vf p67 = vf_fmadd(vf_set1(CNNC_ERFC_E7), u, vf_set1(CNNC_ERFC_E6));
    vf p89 = vf_fmadd(vf_set1(CNNC_ERFC_E9), u, vf_set1(CNNC_ERFC_E8));
    vf p0_3 = vf_fmadd(p23, u2, p01);
    vf p4_7 = vf_fmadd(p67, u2, p45);
    vf p8_10 = vf_fmadd(vf_set1(CNNC_ERFC_E10), u2, p89);
    vf e = vf_fmadd(vf_fmadd(p8_10, u4, p4_7), u4, p0_3);
#else
    vf e = vf_fmadd(vf_set1(CNNC_ERFC_E10), u, vf_set1(CNNC_ERFC_E9));
    e = vf_fmadd(e, u, vf_set1(CNNC_ERFC_E8));
    e = vf_fmadd(e, u, vf_set1(CNNC_ERFC_E7));
    e = vf_fmadd(e, u, vf_set1(CNNC_ERFC_E6));
    e = vf_fmadd(e, u, vf_set1(CNNC_ERFC_E5));
    e = vf_fmadd(e, u, vf_set1(CNNC_ERFC_E4));
    e = vf_fmadd(e, u, vf_set1(CNNC_ERFC_E3));
    e = vf_fmadd(e, u, vf_set1(CNNC_ERFC_E2));
    e = vf_fmadd(e, u, vf_set1(CNNC_ERFC_E1));
    e = vf_fmadd(e, u, vf_set1(CNNC_ERFC_E0));
#endif
    return vf_mul(t, vf_exp_diff_(e, q_hi, q_lo));
}

static inline vf vf_erfc(vf x)
{
    vf z = vf_min(vf_set1(CNNC_ERFC_ZMAX), vf_abs(x)); /* keeps z^2 finite */
    vf hi, lo;
    vf_square2(z, &hi, &lo);
    vf r = vf_erfc_core_(z, hi, lo);
    return vf_select(vf_lt(x, vf_zero()), vf_sub(vf_set1(2.0f), r), r);
}

/* Upper tail of the standard normal, P(X > ax) = erfc(ax / sqrt2) / 2 for
 * ax >= 0, and the density exp(-x^2/2) / sqrt(2 pi): both with the exact
 * x^2/2, so relative accuracy holds far into the tail. */
static inline vf vf_normal_tail(vf ax)
{
    vf hi, lo, half = vf_set1(0.5f);
    ax = vf_min(vf_set1(15.0f), ax); /* the tail underflows long before */
    vf_square2(ax, &hi, &lo);
    vf z = vf_mul(ax, vf_set1(0.707106781186547524f));
    return vf_mul(half, vf_erfc_core_(z, vf_mul(half, hi), vf_mul(half, lo)));
}

static inline vf vf_normal_pdf(vf x)
{
    vf hi, lo, half = vf_set1(0.5f);
    x = vf_min(vf_set1(15.0f), vf_abs(x));
    vf_square2(x, &hi, &lo);
    return vf_mul(vf_set1(0.398942280401432678f), vf_exp_diff_(vf_zero(), vf_mul(half, hi), vf_mul(half, lo)));
}

static inline vf vf_log(vf x)
{
    vf e, m;
    vf_split_exponent(x, &e, &m);
    vm big = vf_gt(m, vf_set1(CNNC_SQRT2));
    m = vf_select(big, vf_mul(m, vf_set1(0.5f)), m);
    e = vf_add_if(big, e, vf_set1(1.0f));
    vf s = vf_div(vf_sub(m, vf_set1(1.0f)), vf_add(m, vf_set1(1.0f)));
    vf s2 = vf_mul(s, s);
    vf p = vf_fmadd(vf_set1(1.0f / 9.0f), s2, vf_set1(1.0f / 7.0f));
    p = vf_fmadd(p, s2, vf_set1(1.0f / 5.0f));
    p = vf_fmadd(p, s2, vf_set1(1.0f / 3.0f));
    vf s_2 = vf_add(s, s);
    vf r = vf_fmadd(e, vf_set1(CNNC_LN2_LO), s_2);
    r = vf_fmadd(s_2, vf_mul(p, s2), r);
    r = vf_fmadd(e, vf_set1(CNNC_LN2_HI), r);
    r = vf_select(vf_eq(x, vf_zero()), vf_set1(-INFINITY), r);
    r = vf_select(vf_eq(x, vf_set1(INFINITY)), vf_set1(INFINITY), r);
    /* Negative or NaN input: NaN. */
    return vf_select(vf_nge(x, vf_zero()), vf_set1(NAN), r);
}

/* log(1 + x), accurate for small x: log(u) * x / (u - 1) with u = 1 + x
 * cancels the rounding of u. */
static inline vf vf_log1p(vf x)
{
    vf u = vf_add(vf_set1(1.0f), x);
    vf d = vf_sub(u, vf_set1(1.0f));
    vf r = vf_mul(vf_log(u), vf_div(x, d));
    r = vf_select(vf_eq(d, vf_zero()), x, r);
    return vf_select(vf_eq(u, vf_set1(INFINITY)), u, r);
}

#endif
