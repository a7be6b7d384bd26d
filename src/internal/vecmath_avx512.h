/* 16-wide AVX-512 (F/DQ) versions of vecmath_scalar.h, for kernel files
 * built with the AVX-512 flags. Same approximations and special values. */
#ifndef CNNC_VECMATH_AVX512_H
#define CNNC_VECMATH_AVX512_H
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include "vecmath_coeffs.h"

#define CNNC_V16(c) _mm512_set1_ps(c)

/* Mask with the first min(n, 16) lanes set (n >= 0). */
static inline __mmask16 cnnc_tail_mask_avx512(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

static inline __m512 cnnc_abs_avx512(__m512 x)
{
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}

static inline __m512 cnnc_copysign_avx512(__m512 mag, __m512 sign)
{
    /* Bitwise select: bits of sign where the sign-bit mask is set, else mag. */
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32((int)0x80000000),
                                                         _mm512_castps_si512(sign),
                                                         _mm512_castps_si512(mag), 0xca));
}

static inline __m512 cnnc_exp_avx512(__m512 x)
{
    x = _mm512_min_ps(CNNC_V16(CNNC_EXP_HI), _mm512_max_ps(CNNC_V16(CNNC_EXP_LO), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, CNNC_V16(CNNC_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, CNNC_V16(CNNC_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, CNNC_V16(CNNC_LN2_LO), r);
    /* P(r) by Estrin's scheme (shorter dependency chain than Horner's). */
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 p01 = _mm512_fmadd_ps(CNNC_V16(CNNC_EXP_P1), r, CNNC_V16(CNNC_EXP_P0));
    __m512 p23 = _mm512_fmadd_ps(CNNC_V16(CNNC_EXP_P3), r, CNNC_V16(CNNC_EXP_P2));
    __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(CNNC_V16(CNNC_EXP_P4), r2, p23), r2, p01);
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), CNNC_V16(1.0f));
    /* scalef computes y * 2^n with correct overflow and gradual underflow. */
    return _mm512_scalef_ps(y, n);
}

static inline __m512 cnnc_expm1_avx512(__m512 x)
{
    __m512 q = _mm512_fmadd_ps(CNNC_V16(CNNC_EXPM1_Q5), x, CNNC_V16(CNNC_EXPM1_Q4));
    q = _mm512_fmadd_ps(q, x, CNNC_V16(CNNC_EXPM1_Q3));
    q = _mm512_fmadd_ps(q, x, CNNC_V16(CNNC_EXPM1_Q2));
    q = _mm512_fmadd_ps(q, x, CNNC_V16(CNNC_EXPM1_Q1));
    q = _mm512_fmadd_ps(q, x, CNNC_V16(CNNC_EXPM1_Q0));
    __m512 small = _mm512_fmadd_ps(q, _mm512_mul_ps(x, x), x);
    __m512 large = _mm512_sub_ps(cnnc_exp_avx512(x), CNNC_V16(1.0f));
    __mmask16 is_small = _mm512_cmp_ps_mask(cnnc_abs_avx512(x), CNNC_V16(CNNC_EXPM1_SMALL), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(is_small, large, small);
}

/* exp(a - (q_hi + q_lo)) for a small a and a large q carried in two parts:
 * rounding the argument to one float would cost |q| ulp of relative error. */
static inline __m512 cnnc_exp_diff_avx512(__m512 a, __m512 q_hi, __m512 q_lo)
{
    __m512 hi = _mm512_sub_ps(a, q_hi);
    __m512 bb = _mm512_sub_ps(hi, a);
    __m512 lo = _mm512_sub_ps(_mm512_sub_ps(a, _mm512_sub_ps(hi, bb)), _mm512_add_ps(q_hi, bb)); /* TwoSum */
    lo = _mm512_sub_ps(lo, q_lo);
    return _mm512_mul_ps(cnnc_exp_avx512(hi), _mm512_add_ps(CNNC_V16(1.0f), lo));
}

/* erfc(z) for z >= 0 (or NaN), given z^2 = q_hi + q_lo exactly (callers that
 * know z only as x * constant pass the square of the exact x instead). */
static inline __m512 cnnc_erfc_core_avx512(__m512 z, __m512 q_hi, __m512 q_lo)
{
    z = _mm512_min_ps(CNNC_V16(CNNC_ERFC_ZMAX), z);
    __m512 t = _mm512_div_ps(CNNC_V16(1.0f), _mm512_fmadd_ps(z, CNNC_V16(0.5f), CNNC_V16(1.0f)));
    __m512 u = _mm512_fmsub_ps(t, CNNC_V16(2.4f), CNNC_V16(1.4f));
    /* Estrin's scheme: a dependency chain of 5 instead of Horner's 10. Long
     * chains keep each store pending longer, and a store still pending stalls
     * later loads that alias it modulo 4 KiB. */
    __m512 u2 = _mm512_mul_ps(u, u), u4 = _mm512_mul_ps(u2, u2);
    __m512 p01 = _mm512_fmadd_ps(CNNC_V16(CNNC_ERFC_E1), u, CNNC_V16(CNNC_ERFC_E0));
    __m512 p23 = _mm512_fmadd_ps(CNNC_V16(CNNC_ERFC_E3), u, CNNC_V16(CNNC_ERFC_E2));
    __m512 p45 = _mm512_fmadd_ps(CNNC_V16(CNNC_ERFC_E5), u, CNNC_V16(CNNC_ERFC_E4));
    __m512 p67 = _mm512_fmadd_ps(CNNC_V16(CNNC_ERFC_E7), u, CNNC_V16(CNNC_ERFC_E6));
    __m512 p89 = _mm512_fmadd_ps(CNNC_V16(CNNC_ERFC_E9), u, CNNC_V16(CNNC_ERFC_E8));
    __m512 p0_3 = _mm512_fmadd_ps(p23, u2, p01);
    __m512 p4_7 = _mm512_fmadd_ps(p67, u2, p45);
    __m512 p8_10 = _mm512_fmadd_ps(CNNC_V16(CNNC_ERFC_E10), u2, p89);
    __m512 e = _mm512_fmadd_ps(_mm512_fmadd_ps(p8_10, u4, p4_7), u4, p0_3);
    return _mm512_mul_ps(t, cnnc_exp_diff_avx512(e, q_hi, q_lo));
}

/* erfc(z) for z >= 0 (or NaN). */
static inline __m512 cnnc_erfc_nonneg_avx512(__m512 z)
{
    z = _mm512_min_ps(CNNC_V16(CNNC_ERFC_ZMAX), z); /* keeps z^2 finite */
    __m512 hi = _mm512_mul_ps(z, z);
    return cnnc_erfc_core_avx512(z, hi, _mm512_fmsub_ps(z, z, hi));
}

/* Upper tail of the standard normal, P(X > ax) = erfc(ax / sqrt2) / 2 for
 * ax >= 0, and the density exp(-x^2/2) / sqrt(2 pi): both with the exact
 * x^2/2, so relative accuracy holds far into the tail. */
static inline __m512 cnnc_normal_tail_avx512(__m512 ax)
{
    ax = _mm512_min_ps(CNNC_V16(15.0f), ax); /* the tail underflows long before */
    __m512 hi = _mm512_mul_ps(ax, ax);
    __m512 lo = _mm512_fmsub_ps(ax, ax, hi);
    __m512 z = _mm512_mul_ps(ax, CNNC_V16(0.707106781186547524f));
    return _mm512_mul_ps(CNNC_V16(0.5f), cnnc_erfc_core_avx512(z, _mm512_mul_ps(CNNC_V16(0.5f), hi), _mm512_mul_ps(CNNC_V16(0.5f), lo)));
}

static inline __m512 cnnc_normal_pdf_avx512(__m512 x)
{
    x = _mm512_min_ps(CNNC_V16(15.0f), cnnc_abs_avx512(x));
    __m512 hi = _mm512_mul_ps(x, x);
    __m512 lo = _mm512_fmsub_ps(x, x, hi);
    return _mm512_mul_ps(CNNC_V16(0.398942280401432678f),
                      cnnc_exp_diff_avx512(_mm512_setzero_ps(), _mm512_mul_ps(CNNC_V16(0.5f), hi), _mm512_mul_ps(CNNC_V16(0.5f), lo)));
}

static inline __m512 cnnc_erfc_avx512(__m512 x)
{
    __m512 r = cnnc_erfc_nonneg_avx512(cnnc_abs_avx512(x));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_sub_ps(r, neg, CNNC_V16(2.0f), r);
}

static inline __m512 cnnc_log_avx512(__m512 x)
{
    /* getexp/getmant split x = m 2^e with m in [1, 2), subnormals included. */
    __m512 e = _mm512_getexp_ps(x);
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __mmask16 big = _mm512_cmp_ps_mask(m, CNNC_V16(CNNC_SQRT2), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, CNNC_V16(0.5f));
    e = _mm512_mask_add_ps(e, big, e, CNNC_V16(1.0f));
    __m512 s = _mm512_div_ps(_mm512_sub_ps(m, CNNC_V16(1.0f)), _mm512_add_ps(m, CNNC_V16(1.0f)));
    __m512 s2 = _mm512_mul_ps(s, s);
    __m512 p = _mm512_fmadd_ps(CNNC_V16(1.0f / 9.0f), s2, CNNC_V16(1.0f / 7.0f));
    p = _mm512_fmadd_ps(p, s2, CNNC_V16(1.0f / 5.0f));
    p = _mm512_fmadd_ps(p, s2, CNNC_V16(1.0f / 3.0f));
    __m512 s_2 = _mm512_add_ps(s, s);
    __m512 r = _mm512_fmadd_ps(e, CNNC_V16(CNNC_LN2_LO), s_2);
    r = _mm512_fmadd_ps(s_2, _mm512_mul_ps(p, s2), r);
    r = _mm512_fmadd_ps(e, CNNC_V16(CNNC_LN2_HI), r);
    r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_OQ), r, CNNC_V16(-INFINITY));
    r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, CNNC_V16(INFINITY), _CMP_EQ_OQ), r, CNNC_V16(INFINITY));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NGE_UQ), r, CNNC_V16(NAN));
}

static inline __m512 cnnc_log1p_avx512(__m512 x)
{
    __m512 u = _mm512_add_ps(CNNC_V16(1.0f), x);
    __m512 d = _mm512_sub_ps(u, CNNC_V16(1.0f));
    __m512 r = _mm512_mul_ps(cnnc_log_avx512(u), _mm512_div_ps(x, d));
    r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_EQ_OQ), r, x);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(u, CNNC_V16(INFINITY), _CMP_EQ_OQ), r, u);
}

#endif
