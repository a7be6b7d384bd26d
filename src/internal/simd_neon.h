/* 4-lane AArch64 Advanced SIMD backend of simd.h (include simd.h, not this
 * file). NEON is baseline on AArch64; an SVE backend would be a sibling. */
#ifndef CNNC_SIMD_NEON_H
#define CNNC_SIMD_NEON_H
#include <arm_neon.h>

#define VW 4
typedef float32x4_t vf;
typedef uint32x4_t vm;
typedef int32x4_t vi;

static inline uint32x4_t vf_tail_(int64_t n)
{
    static const int32_t lanes[4] = {0, 1, 2, 3};
    return vcltq_s32(vld1q_s32(lanes), vdupq_n_s32((int32_t)n));
}
static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
/* Lane by lane: a full-width load could cross into an unmapped page. */
static inline vf vf_load_part(const float *p, int64_t n)
{
    float buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t i = 0; i < n && i < 4; ++i)
        buf[i] = p[i];
    return vld1q_f32(buf);
}
static inline void vf_store_part(float *p, vf v, int64_t n)
{
    float buf[4];
    vst1q_f32(buf, v);
    for (int64_t i = 0; i < n && i < 4; ++i)
        p[i] = buf[i];
}
static inline vf vf_set1(float a) { return vdupq_n_f32(a); }
static inline vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_sqrt(vf a) { return vsqrtq_f32(a); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_fnmadd(vf a, vf b, vf c) { return vfmsq_f32(c, a, b); }
static inline vf vf_fmsub(vf a, vf b, vf c) { return vnegq_f32(vfmsq_f32(c, a, b)); }
static inline vm vf_lt(vf a, vf b) { return vcltq_f32(a, b); }
static inline vm vf_gt(vf a, vf b) { return vcgtq_f32(a, b); }
static inline vm vf_le(vf a, vf b) { return vcleq_f32(a, b); }
static inline vm vf_ge(vf a, vf b) { return vcgeq_f32(a, b); }
static inline vm vf_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline vm vf_ne(vf a, vf b) { return vmvnq_u32(vceqq_f32(a, b)); }
static inline vm vf_nge(vf a, vf b) { return vmvnq_u32(vcgeq_f32(a, b)); }
static inline vm vm_and(vm a, vm b) { return vandq_u32(a, b); }
static inline vm vm_or(vm a, vm b) { return vorrq_u32(a, b); }
static inline vf vf_select(vm m, vf a, vf b) { return vbslq_f32(m, a, b); }
static inline vf vf_select_zero(vm m, vf a) { return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(a))); }
/* fmax/fmin return NaN for any NaN operand; x86's rule (the second operand)
 * is what the templates rely on, so spell it as a compare and select. */
static inline vf vf_max(vf a, vf b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
static inline vf vf_min(vf a, vf b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
static inline vm vf_better(vf v, vf b)
{
    /* b ordered and not (v <= b) */
    return vbicq_u32(vceqq_f32(b, b), vcleq_f32(v, b));
}

/* v, kept in a register: an empty asm hides where it came from, so the
 * compiler cannot fold its load into the instructions that use it. */
static inline vf vf_keep(vf v)
{
    __asm__("" : "+w"(v));
    return v;
}

static inline vi vf_as_vi(vf a) { return vreinterpretq_s32_f32(a); }
static inline vf vi_as_vf(vi i) { return vreinterpretq_f32_s32(i); }
static inline vf vf_abs(vf a) { return vabsq_f32(a); }
static inline vf vf_round_small(vf a) { return vrndnq_f32(a); }
static inline vi vf_to_vi(vf a) { return vcvtnq_s32_f32(a); }
static inline vf vi_to_vf(vi i) { return vcvtq_f32_s32(i); }
static inline vi vi_set1(int32_t a) { return vdupq_n_s32(a); }
static inline vi vi_add(vi a, vi b) { return vaddq_s32(a, b); }
static inline vi vi_sub(vi a, vi b) { return vsubq_s32(a, b); }
static inline vi vi_and(vi a, vi b) { return vandq_s32(a, b); }
static inline vi vi_or(vi a, vi b) { return vorrq_s32(a, b); }
static inline vi vi_sra1(vi a) { return vshrq_n_s32(a, 1); }
static inline vi vi_srl23(vi a) { return vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(a), 23)); }
static inline vi vi_sll23(vi a) { return vshlq_n_s32(a, 23); }
static inline void vf_square2(vf x, vf *hi, vf *lo)
{
    *hi = vmulq_f32(x, x);
    *lo = vf_fmsub(x, x, *hi);
}
/* Pairwise, in the same order on every call: reductions stay deterministic. */
static inline float vf_hsum(vf v) { return vaddvq_f32(v); }
static inline float vf_hmax(vf v)
{
    float32x2_t m = vget_low_f32(vf_max(v, vextq_f32(v, v, 2)));
    float32x2_t s = vext_f32(m, m, 1);
    return vget_lane_f32(vbsl_f32(vcgt_f32(m, s), m, s), 0);
}

#endif
