/* One-lane backend of simd.h (include simd.h, not this file). Plain C,
 * branch-free where it matters, so loops over it auto-vectorize at the
 * baseline ISA. */
#ifndef CNNC_SIMD_SCALAR_H
#define CNNC_SIMD_SCALAR_H

#define VW 1
typedef float vf;
typedef int vm;
typedef int32_t vi;

static inline vf vf_load(const float *p) { return *p; }
static inline void vf_store(float *p, vf v) { *p = v; }
static inline vf vf_load_part(const float *p, int64_t n) { return n > 0 ? *p : 0.0f; }
static inline void vf_store_part(float *p, vf v, int64_t n) { if (n > 0) *p = v; }
static inline vf vf_set1(float a) { return a; }
static inline vf vf_zero(void) { return 0.0f; }
static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
static inline vf vf_div(vf a, vf b) { return a / b; }
static inline vf vf_sqrt(vf a) { return sqrtf(a); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return a * b + c; }
static inline vf vf_fnmadd(vf a, vf b, vf c) { return c - a * b; }
static inline vf vf_fmsub(vf a, vf b, vf c) { return a * b - c; }
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }
static inline vf vf_min(vf a, vf b) { return a < b ? a : b; }
static inline vm vf_lt(vf a, vf b) { return a < b; }
static inline vm vf_gt(vf a, vf b) { return a > b; }
static inline vm vf_le(vf a, vf b) { return a <= b; }
static inline vm vf_ge(vf a, vf b) { return a >= b; }
static inline vm vf_eq(vf a, vf b) { return a == b; }
static inline vm vf_ne(vf a, vf b) { return a != b; }
static inline vm vf_nge(vf a, vf b) { return !(a >= b); }
static inline vm vm_and(vm a, vm b) { return a & b; }
static inline vm vm_or(vm a, vm b) { return a | b; }
static inline vf vf_select(vm m, vf a, vf b) { return m ? a : b; }
static inline vf vf_select_zero(vm m, vf a) { return m ? a : 0.0f; }
static inline vm vf_better(vf v, vf b) { return b == b && !(v <= b); }

static inline vf vf_keep(vf v) { return v; }

static inline vi vf_as_vi(vf a) { vi i; memcpy(&i, &a, sizeof i); return i; }
static inline vf vi_as_vf(vi i) { vf a; memcpy(&a, &i, sizeof a); return a; }
static inline vf vf_abs(vf a) { return vi_as_vf(vf_as_vi(a) & 0x7fffffff); }
/* The 1.5 * 2^23 trick: no libm call, so the loop still vectorizes. */
static inline vf vf_round_small(vf a) { return (a + 12582912.0f) - 12582912.0f; }
static inline vi vf_to_vi(vf a) { return a == a ? (vi)a : 0; }
static inline vf vi_to_vf(vi i) { return (vf)i; }
static inline vi vi_set1(int32_t a) { return a; }
static inline vi vi_add(vi a, vi b) { return (vi)((uint32_t)a + (uint32_t)b); }
static inline vi vi_sub(vi a, vi b) { return (vi)((uint32_t)a - (uint32_t)b); }
static inline vi vi_and(vi a, vi b) { return a & b; }
static inline vi vi_or(vi a, vi b) { return a | b; }
static inline vi vi_sra1(vi a) { return a >> 1; }
static inline vi vi_srl23(vi a) { return (vi)((uint32_t)a >> 23); }
static inline vi vi_sll23(vi a) { return (vi)((uint32_t)a << 23); }
/* Veltkamp's split: exact without an FMA. */
static inline void vf_square2(vf x, vf *hi, vf *lo)
{
    float c = 4097.0f * x, xh = c - (c - x), xl = x - xh;
    *hi = x * x;
    *lo = ((xh * xh - *hi) + 2.0f * xh * xl) + xl * xl;
}
static inline float vf_hsum(vf a) { return a; }
static inline float vf_hmax(vf a) { return a; }

#endif
