/* 8-lane AVX2+FMA implementation of the vocabulary of simd_scalar.h. */
#ifndef CNNC_SIMD_AVX2_H
#define CNNC_SIMD_AVX2_H
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

typedef __m256 vf;
typedef __m256 vmask;
#define V_WIDTH 8
#define V_SET1(x) _mm256_set1_ps((float)(x))
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))

/* Lane i of the mask is set when i < n: a window into 8 ones then 8 zeros. */
static const int32_t v_tail_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __m256i v_tail_mask(int64_t n) { return _mm256_loadu_si256((const __m256i *)(v_tail_table + 8 - n)); }
#define V_LOADN(p, n) _mm256_maskload_ps((p), v_tail_mask(n))
#define V_STOREN(p, v, n) _mm256_maskstore_ps((p), v_tail_mask(n), (v))

#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_SUB(a, b) _mm256_sub_ps((a), (b))
#define V_MUL(a, b) _mm256_mul_ps((a), (b))
#define V_DIV(a, b) _mm256_div_ps((a), (b))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define V_FNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define V_MAX(a, b) _mm256_max_ps((a), (b))
#define V_MIN(a, b) _mm256_min_ps((a), (b))
#define V_SQRT(a) _mm256_sqrt_ps(a)
#define V_ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (a))
#define V_ROUND(a) _mm256_round_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_LT(a, b) _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define V_GT(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define V_EQ(a, b) _mm256_cmp_ps((a), (b), _CMP_EQ_OQ)
#define V_NE(a, b) _mm256_cmp_ps((a), (b), _CMP_NEQ_UQ)
#define V_OR(m1, m2) _mm256_or_ps((m1), (m2))
#define V_SELECT(m, a, b) _mm256_blendv_ps((b), (a), (m))

static inline float v_reduce_add(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float v_reduce_max(__m256 a)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define V_REDUCE_ADD(a) v_reduce_add(a)
#define V_REDUCE_MAX(a) v_reduce_max(a)

static inline __m256 v_sign(__m256 a)
{
    __m256 zero = _mm256_setzero_ps();
    __m256 pos = _mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_GT_OQ), _mm256_set1_ps(1.0f));
    __m256 neg = _mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_LT_OQ), _mm256_set1_ps(1.0f));
    return _mm256_sub_ps(pos, neg);
}
#define V_SIGN(a) v_sign(a)

/* p * 2^n for integral n in [-127, 128]: split in two steps so that the
 * exponent field never overflows. */
static inline __m256 v_scale2(__m256 p, __m256 n)
{
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i half = _mm256_srai_epi32(ni, 1);
    __m256i rest = _mm256_sub_epi32(ni, half);
    __m256 a = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
    __m256 b = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, a), b);
}
#define V_SCALE2(p, n) v_scale2((p), (n))
/* x = m 2^e with m in [1, 2), for positive normal x (FTZ is on). */
#define V_FREXP(x, m, e) do { \
    __m256i xi_ = _mm256_castps_si256(x); \
    (e) = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(xi_, 23), _mm256_set1_epi32(127))); \
    (m) = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(xi_, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000))); \
} while (0)

#include "simd_exp_log.h"
#endif
