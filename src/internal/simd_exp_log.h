/* Polynomial exp and log shared by simd_avx2.h and simd_avx512.h, written
 * against their macro vocabulary (V_*, plus the ISA's V_POW2I / V_FREXP).
 *
 * exp: x = n ln2 + r with |r| <= ln2/2; exp(r) by a degree-8 Taylor
 * polynomial (truncation error below 1e-8 on the range), scaled by
 * 2^n built in the exponent field. Inputs below -87.3 return 0 and above 88.7
 * return +inf so that softmax tails vanish instead of going denormal.
 *
 * log: x = m 2^e with m in [sqrt(1/2), sqrt(2)); s = (m-1)/(m+1) and
 * log(m) = 2 atanh(s), a short odd series because |s| <= 0.1716. */
#ifndef CNNC_SIMD_EXP_LOG_H
#define CNNC_SIMD_EXP_LOG_H

static inline vf v_exp(vf x)
{
    const vf lo = V_SET1(-87.33654f), hi = V_SET1(88.72283f);
    vmask under = V_LT(x, lo), over = V_GT(x, hi);
    vf xc = V_MIN(V_MAX(x, lo), hi);
    vf n = V_ROUND(V_MUL(xc, V_SET1(1.44269504088896341f)));
    vf r = V_FNMA(n, V_SET1(0.693145751953125f), xc);
    r = V_FNMA(n, V_SET1(1.42860682030941723212e-6f), r);
    vf p = V_SET1(1.0f / 40320.0f);
    p = V_FMA(p, r, V_SET1(1.0f / 5040.0f));
    p = V_FMA(p, r, V_SET1(1.0f / 720.0f));
    p = V_FMA(p, r, V_SET1(1.0f / 120.0f));
    p = V_FMA(p, r, V_SET1(1.0f / 24.0f));
    p = V_FMA(p, r, V_SET1(1.0f / 6.0f));
    p = V_FMA(p, r, V_SET1(0.5f));
    p = V_FMA(p, V_MUL(r, r), V_ADD(r, V_SET1(1.0f)));
    vf y = V_SCALE2(p, n);
    y = V_SELECT(under, V_ZERO(), y);
    return V_SELECT(over, V_SET1(INFINITY), y);
}

/* Natural log for positive finite normal x; 0 gives -inf, negative NaN. */
static inline vf v_log(vf x)
{
    vf e, m;
    V_FREXP(x, m, e); /* x = m 2^e, m in [1, 2) */
    vmask big = V_GT(m, V_SET1(1.41421356237309505f));
    m = V_SELECT(big, V_MUL(m, V_SET1(0.5f)), m);
    e = V_SELECT(big, V_ADD(e, V_SET1(1.0f)), e);
    vf s = V_DIV(V_SUB(m, V_SET1(1.0f)), V_ADD(m, V_SET1(1.0f)));
    vf s2 = V_MUL(s, s);
    vf p = V_SET1(1.0f / 9.0f);
    p = V_FMA(p, s2, V_SET1(1.0f / 7.0f));
    p = V_FMA(p, s2, V_SET1(1.0f / 5.0f));
    p = V_FMA(p, s2, V_SET1(1.0f / 3.0f));
    p = V_MUL(p, s2);
    vf two_s = V_ADD(s, s);
    vf lm = V_FMA(two_s, p, two_s);
    vf y = V_FMA(e, V_SET1(0.693147180559945309f), lm);
    y = V_SELECT(V_EQ(x, V_ZERO()), V_SET1(-INFINITY), y);
    y = V_SELECT(V_LT(x, V_ZERO()), V_SET1(NAN), y);
    y = V_SELECT(V_EQ(x, V_SET1(INFINITY)), x, y);
    return V_SELECT(V_NE(x, x), x, y);
}

/* log1p(u) = log(w) * u / (w - 1) with w = 1 + u rounded: the quotient
 * corrects the rounding of w, so small u keeps full relative accuracy. */
static inline vf v_log1p(vf u)
{
    vf w = V_ADD(u, V_SET1(1.0f));
    vf d = V_SUB(w, V_SET1(1.0f));
    vmask exact = V_EQ(d, V_ZERO());
    vf safe_d = V_SELECT(exact, V_SET1(1.0f), d);
    vf y = V_MUL(v_log(w), V_DIV(u, safe_d));
    y = V_SELECT(V_EQ(w, V_SET1(INFINITY)), w, y);
    return V_SELECT(exact, u, y);
}

#define V_EXP(a) v_exp(a)
#define V_LOG(a) v_log(a)
#define V_LOG1P(a) v_log1p(a)
#endif
