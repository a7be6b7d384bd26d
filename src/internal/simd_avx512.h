/* 16-lane AVX-512 (F/BW/DQ/VL) backend of simd.h (include simd.h, not this
 * file); tails use masked loads and stores. */
#ifndef CNNC_SIMD_AVX512_H
#define CNNC_SIMD_AVX512_H
#include <immintrin.h>

#define VW 16
typedef __m512 vf;
typedef __mmask16 vm;
typedef __m512i vi;

/* The first n lanes, n in [0, 16] (vf_load_part and vf_store_part take n < 16). */
static inline __mmask16 vf_tail_(int64_t n) { return (__mmask16)((1u << n) - 1u); }
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vf_load_part(const float *p, int64_t n) { return _mm512_maskz_loadu_ps(vf_tail_(n), p); }
static inline void vf_store_part(float *p, vf v, int64_t n) { _mm512_mask_storeu_ps(p, vf_tail_(n), v); }
static inline vf vf_set1(float a) { return _mm512_set1_ps(a); }
static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm512_sqrt_ps(a); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_fnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
static inline vf vf_fmsub(vf a, vf b, vf c) { return _mm512_fmsub_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vm vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vm vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm vf_le(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
static inline vm vf_ge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vm vf_ne(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }
static inline vm vf_nge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NGE_UQ); }
static inline vm vm_and(vm a, vm b) { return (vm)(a & b); }
static inline vm vm_or(vm a, vm b) { return (vm)(a | b); }
static inline vf vf_select(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
static inline vf vf_select_zero(vm m, vf a) { return _mm512_maskz_mov_ps(m, a); }
static inline vm vf_better(vf v, vf b)
{
    return _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(b, b, _CMP_ORD_Q), v, b, _CMP_NLE_UQ);
}

/* v, kept in a register: an empty asm hides where it came from, so the
 * compiler cannot fold its load into the instructions that use it. */
static inline vf vf_keep(vf v)
{
    __asm__("" : "+v"(v));
    return v;
}

/* scalef: y * 2^n in one instruction, with correct overflow and gradual underflow. */
#define VF_NATIVE_SCALE_POW2 1
static inline vf vf_scale_pow2(vf y, vf n) { return _mm512_scalef_ps(y, n); }

/* ternarylogic: copysign as one bitwise select (0xca: sign bit from the
 * first operand's mask, the rest from mag). */
#define VF_NATIVE_COPYSIGN 1
static inline vf vf_copysign(vf mag, vf sign)
{
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32((int)0x80000000u),
                                                         _mm512_castps_si512(sign),
                                                         _mm512_castps_si512(mag), 0xca));
}

/* A masked add: the lanes outside m keep a. */
#define VF_NATIVE_ADD_IF 1
static inline vf vf_add_if(vm m, vf a, vf b) { return _mm512_mask_add_ps(a, m, a, b); }

/* getexp/getmant: the split of vf_split_exponent, subnormals included. */
#define VF_NATIVE_SPLIT_EXPONENT 1
static inline void vf_split_exponent(vf x, vf *e, vf *m)
{
    *e = _mm512_getexp_ps(x);
    *m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
}

static inline vi vf_as_vi(vf a) { return _mm512_castps_si512(a); }
static inline vf vi_as_vf(vi i) { return _mm512_castsi512_ps(i); }
static inline vf vf_abs(vf a) { return _mm512_abs_ps(a); }
static inline vf vf_round_small(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vi vf_to_vi(vf a) { return _mm512_cvtps_epi32(a); }
static inline vf vi_to_vf(vi i) { return _mm512_cvtepi32_ps(i); }
static inline vi vi_set1(int32_t a) { return _mm512_set1_epi32(a); }
static inline vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline vi vi_sub(vi a, vi b) { return _mm512_sub_epi32(a, b); }
static inline vi vi_and(vi a, vi b) { return _mm512_and_si512(a, b); }
static inline vi vi_or(vi a, vi b) { return _mm512_or_si512(a, b); }
static inline vi vi_sra1(vi a) { return _mm512_srai_epi32(a, 1); }
static inline vi vi_srl23(vi a) { return _mm512_srli_epi32(a, 23); }
static inline vi vi_sll23(vi a) { return _mm512_slli_epi32(a, 23); }
static inline void vf_square2(vf x, vf *hi, vf *lo)
{
    *hi = _mm512_mul_ps(x, x);
    *lo = _mm512_fmsub_ps(x, x, *hi);
}
static inline float vf_hsum(vf v) { return _mm512_reduce_add_ps(v); }
static inline float vf_hmax(vf v) { return _mm512_reduce_max_ps(v); }

#endif
