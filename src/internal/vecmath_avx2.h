/* 8-wide AVX2 + FMA versions of vecmath_scalar.h, for kernel files built
 * with -mavx2 -mfma. Same approximations and special values. */
#ifndef CNNC_VECMATH_AVX2_H
#define CNNC_VECMATH_AVX2_H
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include "vecmath_coeffs.h"

#define CNNC_V8(c) _mm256_set1_ps(c)

/* Lane mask with the first n (0..8) lanes set, for maskload/maskstore tails. */
static inline __m256i cnnc_tail_mask_avx2(int64_t n)
{
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lanes);
}

static inline __m256 cnnc_abs_avx2(__m256 x)
{
    return _mm256_andnot_ps(CNNC_V8(-0.0f), x);
}

/* Magnitude of mag with the sign bit of sign. */
static inline __m256 cnnc_copysign_avx2(__m256 mag, __m256 sign)
{
    const __m256 sb = CNNC_V8(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sb, mag), _mm256_and_ps(sb, sign));
}

static inline __m256 cnnc_exp_avx2(__m256 x)
{
    /* max/min return their second operand when either is NaN: NaN passes. */
    x = _mm256_min_ps(CNNC_V8(CNNC_EXP_HI), _mm256_max_ps(CNNC_V8(CNNC_EXP_LO), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, CNNC_V8(CNNC_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, CNNC_V8(CNNC_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, CNNC_V8(CNNC_LN2_LO), r);
    /* P(r) by Estrin's scheme (shorter dependency chain than Horner's). */
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 p01 = _mm256_fmadd_ps(CNNC_V8(CNNC_EXP_P1), r, CNNC_V8(CNNC_EXP_P0));
    __m256 p23 = _mm256_fmadd_ps(CNNC_V8(CNNC_EXP_P3), r, CNNC_V8(CNNC_EXP_P2));
    __m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(CNNC_V8(CNNC_EXP_P4), r2, p23), r2, p01);
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), CNNC_V8(1.0f));
    /* 2^n as two factors so that n = 128 and n = -150 scale exactly. */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
}

static inline __m256 cnnc_expm1_avx2(__m256 x)
{
    __m256 q = _mm256_fmadd_ps(CNNC_V8(CNNC_EXPM1_Q5), x, CNNC_V8(CNNC_EXPM1_Q4));
    q = _mm256_fmadd_ps(q, x, CNNC_V8(CNNC_EXPM1_Q3));
    q = _mm256_fmadd_ps(q, x, CNNC_V8(CNNC_EXPM1_Q2));
    q = _mm256_fmadd_ps(q, x, CNNC_V8(CNNC_EXPM1_Q1));
    q = _mm256_fmadd_ps(q, x, CNNC_V8(CNNC_EXPM1_Q0));
    __m256 small = _mm256_fmadd_ps(q, _mm256_mul_ps(x, x), x);
    __m256 large = _mm256_sub_ps(cnnc_exp_avx2(x), CNNC_V8(1.0f));
    __m256 is_small = _mm256_cmp_ps(cnnc_abs_avx2(x), CNNC_V8(CNNC_EXPM1_SMALL), _CMP_LT_OQ);
    return _mm256_blendv_ps(large, small, is_small);
}

/* exp(a - (q_hi + q_lo)) for a small a and a large q carried in two parts:
 * rounding the argument to one float would cost |q| ulp of relative error. */
static inline __m256 cnnc_exp_diff_avx2(__m256 a, __m256 q_hi, __m256 q_lo)
{
    __m256 hi = _mm256_sub_ps(a, q_hi);
    __m256 bb = _mm256_sub_ps(hi, a);
    __m256 lo = _mm256_sub_ps(_mm256_sub_ps(a, _mm256_sub_ps(hi, bb)), _mm256_add_ps(q_hi, bb)); /* TwoSum */
    lo = _mm256_sub_ps(lo, q_lo);
    return _mm256_mul_ps(cnnc_exp_avx2(hi), _mm256_add_ps(CNNC_V8(1.0f), lo));
}

/* erfc(z) for z >= 0 (or NaN), given z^2 = q_hi + q_lo exactly (callers that
 * know z only as x * constant pass the square of the exact x instead). */
static inline __m256 cnnc_erfc_core_avx2(__m256 z, __m256 q_hi, __m256 q_lo)
{
    z = _mm256_min_ps(CNNC_V8(CNNC_ERFC_ZMAX), z);
    __m256 t = _mm256_div_ps(CNNC_V8(1.0f), _mm256_fmadd_ps(z, CNNC_V8(0.5f), CNNC_V8(1.0f)));
    __m256 u = _mm256_fmsub_ps(t, CNNC_V8(2.4f), CNNC_V8(1.4f));
    /* Estrin's scheme: a dependency chain of 5 instead of Horner's 10. Long
     * chains keep each store pending longer, and a store still pending stalls
     * later loads that alias it modulo 4 KiB. */
    __m256 u2 = _mm256_mul_ps(u, u), u4 = _mm256_mul_ps(u2, u2);
    __m256 p01 = _mm256_fmadd_ps(CNNC_V8(CNNC_ERFC_E1), u, CNNC_V8(CNNC_ERFC_E0));
    __m256 p23 = _mm256_fmadd_ps(CNNC_V8(CNNC_ERFC_E3), u, CNNC_V8(CNNC_ERFC_E2));
    __m256 p45 = _mm256_fmadd_ps(CNNC_V8(CNNC_ERFC_E5), u, CNNC_V8(CNNC_ERFC_E4));
    __m256 p67 = _mm256_fmadd_ps(CNNC_V8(CNNC_ERFC_E7), u, CNNC_V8(CNNC_ERFC_E6));
    __m256 p89 = _mm256_fmadd_ps(CNNC_V8(CNNC_ERFC_E9), u, CNNC_V8(CNNC_ERFC_E8));
    __m256 p0_3 = _mm256_fmadd_ps(p23, u2, p01);
    __m256 p4_7 = _mm256_fmadd_ps(p67, u2, p45);
    __m256 p8_10 = _mm256_fmadd_ps(CNNC_V8(CNNC_ERFC_E10), u2, p89);
    __m256 e = _mm256_fmadd_ps(_mm256_fmadd_ps(p8_10, u4, p4_7), u4, p0_3);
    return _mm256_mul_ps(t, cnnc_exp_diff_avx2(e, q_hi, q_lo));
}

/* erfc(z) for z >= 0 (or NaN). */
static inline __m256 cnnc_erfc_nonneg_avx2(__m256 z)
{
    z = _mm256_min_ps(CNNC_V8(CNNC_ERFC_ZMAX), z); /* keeps z^2 finite */
    __m256 hi = _mm256_mul_ps(z, z);
    return cnnc_erfc_core_avx2(z, hi, _mm256_fmsub_ps(z, z, hi));
}

/* Upper tail of the standard normal, P(X > ax) = erfc(ax / sqrt2) / 2 for
 * ax >= 0, and the density exp(-x^2/2) / sqrt(2 pi): both with the exact
 * x^2/2, so relative accuracy holds far into the tail. */
static inline __m256 cnnc_normal_tail_avx2(__m256 ax)
{
    ax = _mm256_min_ps(CNNC_V8(15.0f), ax); /* the tail underflows long before */
    __m256 hi = _mm256_mul_ps(ax, ax);
    __m256 lo = _mm256_fmsub_ps(ax, ax, hi);
    __m256 z = _mm256_mul_ps(ax, CNNC_V8(0.707106781186547524f));
    return _mm256_mul_ps(CNNC_V8(0.5f), cnnc_erfc_core_avx2(z, _mm256_mul_ps(CNNC_V8(0.5f), hi), _mm256_mul_ps(CNNC_V8(0.5f), lo)));
}

static inline __m256 cnnc_normal_pdf_avx2(__m256 x)
{
    x = _mm256_min_ps(CNNC_V8(15.0f), cnnc_abs_avx2(x));
    __m256 hi = _mm256_mul_ps(x, x);
    __m256 lo = _mm256_fmsub_ps(x, x, hi);
    return _mm256_mul_ps(CNNC_V8(0.398942280401432678f),
                      cnnc_exp_diff_avx2(_mm256_setzero_ps(), _mm256_mul_ps(CNNC_V8(0.5f), hi), _mm256_mul_ps(CNNC_V8(0.5f), lo)));
}

static inline __m256 cnnc_erfc_avx2(__m256 x)
{
    __m256 r = cnnc_erfc_nonneg_avx2(cnnc_abs_avx2(x));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(r, _mm256_sub_ps(CNNC_V8(2.0f), r), neg);
}

static inline __m256 cnnc_log_avx2(__m256 x)
{
    const __m256 tiny = CNNC_V8(1.17549435e-38f);
    __m256 sub = _mm256_cmp_ps(x, tiny, _CMP_LT_OQ);
    __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, CNNC_V8(8388608.0f)), sub);
    __m256i bits = _mm256_castps_si256(xs);
    __m256i ei = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    __m256 e = _mm256_sub_ps(_mm256_cvtepi32_ps(ei), _mm256_and_ps(sub, CNNC_V8(23.0f)));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                   _mm256_set1_epi32(0x3f800000)));
    __m256 big = _mm256_cmp_ps(m, CNNC_V8(CNNC_SQRT2), _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, CNNC_V8(0.5f)), big);
    e = _mm256_add_ps(e, _mm256_and_ps(big, CNNC_V8(1.0f)));
    __m256 s = _mm256_div_ps(_mm256_sub_ps(m, CNNC_V8(1.0f)), _mm256_add_ps(m, CNNC_V8(1.0f)));
    __m256 s2 = _mm256_mul_ps(s, s);
    __m256 p = _mm256_fmadd_ps(CNNC_V8(1.0f / 9.0f), s2, CNNC_V8(1.0f / 7.0f));
    p = _mm256_fmadd_ps(p, s2, CNNC_V8(1.0f / 5.0f));
    p = _mm256_fmadd_ps(p, s2, CNNC_V8(1.0f / 3.0f));
    __m256 s_2 = _mm256_add_ps(s, s);
    __m256 r = _mm256_fmadd_ps(e, CNNC_V8(CNNC_LN2_LO), s_2);
    r = _mm256_fmadd_ps(s_2, _mm256_mul_ps(p, s2), r);
    r = _mm256_fmadd_ps(e, CNNC_V8(CNNC_LN2_HI), r);
    r = _mm256_blendv_ps(r, CNNC_V8(-INFINITY), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
    r = _mm256_blendv_ps(r, CNNC_V8(INFINITY), _mm256_cmp_ps(x, CNNC_V8(INFINITY), _CMP_EQ_OQ));
    /* Negative or NaN input: NaN. */
    return _mm256_blendv_ps(r, CNNC_V8(NAN), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NGE_UQ));
}

static inline __m256 cnnc_log1p_avx2(__m256 x)
{
    __m256 u = _mm256_add_ps(CNNC_V8(1.0f), x);
    __m256 d = _mm256_sub_ps(u, CNNC_V8(1.0f));
    __m256 r = _mm256_mul_ps(cnnc_log_avx2(u), _mm256_div_ps(x, d));
    r = _mm256_blendv_ps(r, x, _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ));
    return _mm256_blendv_ps(r, u, _mm256_cmp_ps(u, CNNC_V8(INFINITY), _CMP_EQ_OQ));
}

/* Horizontal reductions. */
static inline float cnnc_hsum_avx2(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float cnnc_hmax_avx2(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
