/* 8-lane AVX2 + FMA backend of simd.h (include simd.h, not this file). */
#ifndef CNNC_SIMD_AVX2_H
#define CNNC_SIMD_AVX2_H
#include <immintrin.h>

#define VW 8
typedef __m256 vf;
typedef __m256 vm;
typedef __m256i vi;

/* The first n lanes, n in [0, 8]: one load from a sliding window. */
static const int32_t vf_tail_table_[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __m256i vf_tail_(int64_t n) { return _mm256_loadu_si256((const __m256i *)(vf_tail_table_ + 8 - n)); }
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf vf_load_part(const float *p, int64_t n) { return _mm256_maskload_ps(p, vf_tail_(n)); }
static inline void vf_store_part(float *p, vf v, int64_t n) { _mm256_maskstore_ps(p, vf_tail_(n), v); }
static inline vf vf_set1(float a) { return _mm256_set1_ps(a); }
static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm256_sqrt_ps(a); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_fnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf vf_fmsub(vf a, vf b, vf c) { return _mm256_fmsub_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vm vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vm vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vf_le(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
static inline vm vf_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vm vf_ne(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
static inline vm vf_nge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NGE_UQ); }
static inline vm vm_and(vm a, vm b) { return _mm256_and_ps(a, b); }
static inline vm vm_or(vm a, vm b) { return _mm256_or_ps(a, b); }
static inline vf vf_select(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
static inline vf vf_select_zero(vm m, vf a) { return _mm256_and_ps(m, a); }
static inline vm vf_better(vf v, vf b)
{
    return _mm256_and_ps(_mm256_cmp_ps(b, b, _CMP_ORD_Q), _mm256_cmp_ps(v, b, _CMP_NLE_UQ));
}

/* v, kept in a register: an empty asm hides where it came from, so the
 * compiler cannot fold its load into the instructions that use it. */
static inline vf vf_keep(vf v)
{
    __asm__("" : "+v"(v));
    return v;
}

static inline vi vf_as_vi(vf a) { return _mm256_castps_si256(a); }
static inline vf vi_as_vf(vi i) { return _mm256_castsi256_ps(i); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf vf_round_small(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vi vf_to_vi(vf a) { return _mm256_cvtps_epi32(a); }
static inline vf vi_to_vf(vi i) { return _mm256_cvtepi32_ps(i); }
static inline vi vi_set1(int32_t a) { return _mm256_set1_epi32(a); }
static inline vi vi_add(vi a, vi b) { return _mm256_add_epi32(a, b); }
static inline vi vi_sub(vi a, vi b) { return _mm256_sub_epi32(a, b); }
static inline vi vi_and(vi a, vi b) { return _mm256_and_si256(a, b); }
static inline vi vi_or(vi a, vi b) { return _mm256_or_si256(a, b); }
static inline vi vi_sra1(vi a) { return _mm256_srai_epi32(a, 1); }
static inline vi vi_srl23(vi a) { return _mm256_srli_epi32(a, 23); }
static inline vi vi_sll23(vi a) { return _mm256_slli_epi32(a, 23); }
static inline void vf_square2(vf x, vf *hi, vf *lo)
{
    *hi = _mm256_mul_ps(x, x);
    *lo = _mm256_fmsub_ps(x, x, *hi);
}
static inline float vf_hsum(vf v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float vf_hmax(vf v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
