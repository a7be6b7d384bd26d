/* 16-lane AVX-512 implementation of the vocabulary of simd_scalar.h; tails
 * use masked loads and stores. */
#ifndef CNNC_SIMD_AVX512_H
#define CNNC_SIMD_AVX512_H
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include "vecmath_avx512.h"

typedef __m512 vf;
typedef __mmask16 vmask;
#define V_WIDTH 16
#define V_SET1(x) _mm512_set1_ps((float)(x))
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps((p), (v))
#define V_LOADN(p, n) _mm512_maskz_loadu_ps(cnnc_tail_mask_avx512(n), (p))
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps((p), cnnc_tail_mask_avx512(n), (v))

#define V_ADD(a, b) _mm512_add_ps((a), (b))
#define V_SUB(a, b) _mm512_sub_ps((a), (b))
#define V_MUL(a, b) _mm512_mul_ps((a), (b))
#define V_DIV(a, b) _mm512_div_ps((a), (b))
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define V_FNMA(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define V_MAX(a, b) _mm512_max_ps((a), (b))
#define V_MIN(a, b) _mm512_min_ps((a), (b))
#define V_SQRT(a) _mm512_sqrt_ps(a)
#define V_ABS(a) _mm512_abs_ps(a)
#define V_LT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ)
#define V_GT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)
#define V_EQ(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ)
#define V_NE(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_NEQ_UQ)
#define V_OR(m1, m2) ((__mmask16)((m1) | (m2)))
#define V_SELECT(m, a, b) _mm512_mask_blend_ps((m), (b), (a))
#define V_GE(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GE_OQ)
#define V_LE(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_LE_OQ)
#define V_AND(m1, m2) ((__mmask16)((m1) & (m2)))
#define V_REDUCE_ADD(a) _mm512_reduce_add_ps(a)
#define V_REDUCE_MAX(a) _mm512_reduce_max_ps(a)

static inline __m512 v_sign(__m512 a)
{
    __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    __m512 pos = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, zero, _CMP_GT_OQ), one);
    return _mm512_mask_sub_ps(pos, _mm512_cmp_ps_mask(a, zero, _CMP_LT_OQ), zero, one);
}
#define V_SIGN(a) v_sign(a)

#define V_EXP(a) cnnc_exp_avx512(a)
#define V_LOG(a) cnnc_log_avx512(a)
#define V_LOG1P(a) cnnc_log1p_avx512(a)
#define V_EXPM1(a) cnnc_expm1_avx512(a)
#define V_COPYSIGN(mag, sign) cnnc_copysign_avx512((mag), (sign))
#define V_NORMAL_TAIL(a) cnnc_normal_tail_avx512(a)
#define V_NORMAL_PDF(a) cnnc_normal_pdf_avx512(a)

#include "simd_tail.h"

#endif
