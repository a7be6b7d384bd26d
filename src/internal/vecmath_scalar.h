/* Portable single-value versions of the vector math in vecmath_avx2.h and
 * vecmath_avx512.h: the same approximations, branch-free, so that loops over
 * them auto-vectorize at the baseline ISA and all paths agree to rounding.
 *
 * Special values: exp(-inf) = 0, exp(+inf) = +inf, NaN propagates;
 * expm1(-inf) = -1; erfc(+inf) = 0; log(0) = -inf, log(x < 0) = NaN. */
#ifndef CNNC_VECMATH_SCALAR_H
#define CNNC_VECMATH_SCALAR_H
#include <stdint.h>
#include <math.h>
#include <string.h>
#include "vecmath_coeffs.h"

static inline uint32_t cnnc_f2u(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
static inline float cnnc_u2f(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }

static inline float cnnc_abs_scalar(float x) { return cnnc_u2f(cnnc_f2u(x) & 0x7fffffffu); }
static inline float cnnc_copysign_scalar(float mag, float sign)
{
    return cnnc_u2f((cnnc_f2u(mag) & 0x7fffffffu) | (cnnc_f2u(sign) & 0x80000000u));
}

static inline float cnnc_exp_scalar(float x)
{
    /* Comparisons are written so that NaN passes through the clamps. */
    x = x < CNNC_EXP_LO ? CNNC_EXP_LO : x;
    x = x > CNNC_EXP_HI ? CNNC_EXP_HI : x;
    /* Round to nearest by the 1.5 * 2^23 trick: no libm call, vectorizable. */
    float n = (x * CNNC_LOG2E + 12582912.0f) - 12582912.0f;
    float r = x - n * CNNC_LN2_HI;
    r = r - n * CNNC_LN2_LO;
    float p = CNNC_EXP_P4;
    p = p * r + CNNC_EXP_P3;
    p = p * r + CNNC_EXP_P2;
    p = p * r + CNNC_EXP_P1;
    p = p * r + CNNC_EXP_P0;
    float y = (p * (r * r) + r) + 1.0f;
    /* 2^n in two halves, so that n = 128 (exp just below FLT_MAX) and
     * n = -150 (gradual underflow) scale exactly. */
    int32_t ni = (int32_t)(n == n ? n : 0.0f);
    int32_t n1 = ni >> 1, n2 = ni - n1;
    return y * cnnc_u2f((uint32_t)(n1 + 127) << 23) * cnnc_u2f((uint32_t)(n2 + 127) << 23);
}

static inline float cnnc_expm1_scalar(float x)
{
    float q = CNNC_EXPM1_Q5;
    q = q * x + CNNC_EXPM1_Q4;
    q = q * x + CNNC_EXPM1_Q3;
    q = q * x + CNNC_EXPM1_Q2;
    q = q * x + CNNC_EXPM1_Q1;
    q = q * x + CNNC_EXPM1_Q0;
    float small = q * (x * x) + x;
    float large = cnnc_exp_scalar(x) - 1.0f;
    return cnnc_abs_scalar(x) < CNNC_EXPM1_SMALL ? small : large;
}

/* Exact square as hi + lo (Veltkamp split; no FMA needed). */
static inline void cnnc_square2_scalar(float x, float *hi, float *lo)
{
    float c = 4097.0f * x, xh = c - (c - x), xl = x - xh;
    *hi = x * x;
    *lo = ((xh * xh - *hi) + 2.0f * xh * xl) + xl * xl;
}

/* exp(a - (q_hi + q_lo)) for a small a and a large q carried in two parts:
 * rounding the argument to one float would cost |q| ulp of relative error. */
static inline float cnnc_exp_diff_scalar(float a, float q_hi, float q_lo)
{
    float hi = a - q_hi;
    float bb = hi - a;
    float lo = ((a - (hi - bb)) + (-q_hi - bb)) - q_lo; /* TwoSum */
    return cnnc_exp_scalar(hi) * (1.0f + lo);
}

/* erfc(z) for z >= 0 (or NaN), given z^2 = q_hi + q_lo exactly (callers that
 * know z only as x * constant pass the square of the exact x instead). */
static inline float cnnc_erfc_core_scalar(float z, float q_hi, float q_lo)
{
    z = z > CNNC_ERFC_ZMAX ? CNNC_ERFC_ZMAX : z;
    float t = 1.0f / (1.0f + 0.5f * z);
    float u = t * 2.4f - 1.4f;
    float e = CNNC_ERFC_E10;
    e = e * u + CNNC_ERFC_E9;
    e = e * u + CNNC_ERFC_E8;
    e = e * u + CNNC_ERFC_E7;
    e = e * u + CNNC_ERFC_E6;
    e = e * u + CNNC_ERFC_E5;
    e = e * u + CNNC_ERFC_E4;
    e = e * u + CNNC_ERFC_E3;
    e = e * u + CNNC_ERFC_E2;
    e = e * u + CNNC_ERFC_E1;
    e = e * u + CNNC_ERFC_E0;
    return t * cnnc_exp_diff_scalar(e, q_hi, q_lo);
}

static inline float cnnc_erfc_nonneg_scalar(float z)
{
    float hi, lo;
    z = z > CNNC_ERFC_ZMAX ? CNNC_ERFC_ZMAX : z; /* keeps z^2 finite */
    cnnc_square2_scalar(z, &hi, &lo);
    return cnnc_erfc_core_scalar(z, hi, lo);
}

/* Upper tail of the standard normal, P(X > ax) = erfc(ax / sqrt2) / 2 for
 * ax >= 0, and the density exp(-x^2/2) / sqrt(2 pi): both with the exact
 * x^2/2, so relative accuracy holds far into the tail. */
static inline float cnnc_normal_tail_scalar(float ax)
{
    float hi, lo;
    ax = ax > 15.0f ? 15.0f : ax; /* the tail underflows long before */
    cnnc_square2_scalar(ax, &hi, &lo);
    return 0.5f * cnnc_erfc_core_scalar(ax * 0.707106781186547524f, 0.5f * hi, 0.5f * lo);
}

static inline float cnnc_normal_pdf_scalar(float x)
{
    float hi, lo;
    x = cnnc_abs_scalar(x);
    x = x > 15.0f ? 15.0f : x;
    cnnc_square2_scalar(x, &hi, &lo);
    return 0.398942280401432678f * cnnc_exp_diff_scalar(0.0f, 0.5f * hi, 0.5f * lo);
}

static inline float cnnc_erfc_scalar(float x)
{
    float r = cnnc_erfc_nonneg_scalar(cnnc_abs_scalar(x));
    return x < 0.0f ? 2.0f - r : r;
}

static inline float cnnc_log_scalar(float x)
{
    /* Subnormals: scale up by 2^23 first so that the exponent field is right. */
    int sub = x < 1.17549435e-38f;
    float xs = sub ? x * 8388608.0f : x;
    uint32_t bits = cnnc_f2u(xs);
    int32_t e = (int32_t)(bits >> 23) - 127 - (sub ? 23 : 0);
    float m = cnnc_u2f((bits & 0x007fffffu) | 0x3f800000u);
    int big = m > CNNC_SQRT2;
    m = big ? 0.5f * m : m;
    e += big;
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float p = 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    float fe = (float)e;
    float r = fe * CNNC_LN2_HI + ((2.0f * s) * (p * s2) + (fe * CNNC_LN2_LO + 2.0f * s));
    r = x == 0.0f ? -INFINITY : r;
    r = x == INFINITY ? INFINITY : r;
    return x < 0.0f || x != x ? (x != x ? x : NAN) : r;
}

/* log(1 + x), accurate for small x: log(u) * x / (u - 1) with u = 1 + x
 * cancels the rounding of u. */
static inline float cnnc_log1p_scalar(float x)
{
    float u = 1.0f + x;
    float l = cnnc_log_scalar(u);
    float d = u - 1.0f;
    float r = d == 0.0f ? x : l * (x / d);
    return u == INFINITY ? u : r;
}

#endif
