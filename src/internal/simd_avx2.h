/* 8-lane AVX2+FMA implementation of the vocabulary of simd_scalar.h. */
#ifndef CNNC_SIMD_AVX2_H
#define CNNC_SIMD_AVX2_H
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include "vecmath_avx2.h"

typedef __m256 vf;
typedef __m256 vmask;
#define V_WIDTH 8
#define V_SET1(x) _mm256_set1_ps((float)(x))
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))

#define V_LOADN(p, n) _mm256_maskload_ps((p), cnnc_tail_mask_avx2(n))
#define V_STOREN(p, v, n) _mm256_maskstore_ps((p), cnnc_tail_mask_avx2(n), (v))

#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_SUB(a, b) _mm256_sub_ps((a), (b))
#define V_MUL(a, b) _mm256_mul_ps((a), (b))
#define V_DIV(a, b) _mm256_div_ps((a), (b))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define V_FNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define V_MAX(a, b) _mm256_max_ps((a), (b))
#define V_MIN(a, b) _mm256_min_ps((a), (b))
#define V_SQRT(a) _mm256_sqrt_ps(a)
#define V_ABS(a) cnnc_abs_avx2(a)
#define V_LT(a, b) _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define V_GT(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define V_EQ(a, b) _mm256_cmp_ps((a), (b), _CMP_EQ_OQ)
#define V_NE(a, b) _mm256_cmp_ps((a), (b), _CMP_NEQ_UQ)
#define V_OR(m1, m2) _mm256_or_ps((m1), (m2))
#define V_SELECT(m, a, b) _mm256_blendv_ps((b), (a), (m))
#define V_GE(a, b) _mm256_cmp_ps((a), (b), _CMP_GE_OQ)
#define V_LE(a, b) _mm256_cmp_ps((a), (b), _CMP_LE_OQ)
#define V_AND(m1, m2) _mm256_and_ps((m1), (m2))

#define V_REDUCE_ADD(a) cnnc_hsum_avx2(a)
#define V_REDUCE_MAX(a) cnnc_hmax_avx2(a)

static inline __m256 v_sign(__m256 a)
{
    __m256 zero = _mm256_setzero_ps();
    __m256 pos = _mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_GT_OQ), _mm256_set1_ps(1.0f));
    __m256 neg = _mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_LT_OQ), _mm256_set1_ps(1.0f));
    return _mm256_sub_ps(pos, neg);
}
#define V_SIGN(a) v_sign(a)

#define V_EXP(a) cnnc_exp_avx2(a)
#define V_LOG(a) cnnc_log_avx2(a)
#define V_LOG1P(a) cnnc_log1p_avx2(a)
#define V_EXPM1(a) cnnc_expm1_avx2(a)
#define V_COPYSIGN(mag, sign) cnnc_copysign_avx2((mag), (sign))
#define V_NORMAL_TAIL(a) cnnc_normal_tail_avx2(a)
#define V_NORMAL_PDF(a) cnnc_normal_pdf_avx2(a)

#include "simd_tail.h"

#endif
