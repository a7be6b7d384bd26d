/* A minimal float-vector vocabulary shared by the kernel templates, so that
 * one template (src/internal/<family>_template.h) compiles into the scalar,
 * AVX2 and AVX-512 micro-kernels. The including file chooses the path with
 * CNNC_SIMD (0 scalar, 1 AVX2+FMA, 2 AVX-512) rather than the compiler's
 * flags, so that the scalar table stays scalar even under -march=native.
 *
 *   vf               a vector of VW floats          vm   a lane mask
 *   vf_load/store    unaligned full vector
 *   vf_load_part     first n < VW lanes, the rest zero; vf_store_part writes n lanes
 *   vf_gt/eq         lane masks; vf_select(m, a, b) = m ? a : b
 *   vf_better(v, b)  lanes where v should replace the running maximum b: v > b,
 *                    or v is NaN and b is not (so NaN propagates like
 *                    PyTorch's pooling and ties keep the first maximum)
 */
#ifndef CNNC_SIMD_H
#define CNNC_SIMD_H
#include <math.h>
#include <stdint.h>

#if !defined(CNNC_SIMD)
#  error "define CNNC_SIMD (0, 1 or 2) before including simd.h"
#endif

#if CNNC_SIMD == 2
#include <immintrin.h>
#define VW 16
typedef __m512 vf;
typedef __mmask16 vm;
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
static inline vf vf_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vm vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vf vf_select(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
static inline vm vf_better(vf v, vf b)
{
    return _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(b, b, _CMP_ORD_Q), v, b, _CMP_NLE_UQ);
}

#elif CNNC_SIMD == 1
#include <immintrin.h>
#define VW 8
typedef __m256 vf;
typedef __m256 vm;
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
static inline vf vf_fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vm vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vf vf_select(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
static inline vm vf_better(vf v, vf b)
{
    return _mm256_and_ps(_mm256_cmp_ps(b, b, _CMP_ORD_Q), _mm256_cmp_ps(v, b, _CMP_NLE_UQ));
}

#else
#define VW 1
typedef float vf;
typedef int vm;
static inline vf vf_load(const float *p) { return *p; }
static inline void vf_store(float *p, vf v) { *p = v; }
static inline vf vf_load_part(const float *p, int64_t n) { return n > 0 ? *p : 0.0f; }
static inline void vf_store_part(float *p, vf v, int64_t n) { if (n > 0) *p = v; }
static inline vf vf_set1(float a) { return a; }
static inline vf vf_zero(void) { return 0.0f; }
static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
static inline vf vf_fmadd(vf a, vf b, vf c) { return a * b + c; }
/* Like the x86 instruction: the second operand when either is NaN. */
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }
static inline vm vf_gt(vf a, vf b) { return a > b; }
static inline vm vf_eq(vf a, vf b) { return a == b; }
static inline vf vf_select(vm m, vf a, vf b) { return m ? a : b; }
static inline vm vf_better(vf v, vf b) { return !isnan(b) && !(v <= b); }
#endif

/* Tiles of up to 4 vectors kept in registers: VF_TILE_REST(width, body...)
 * runs body with FULL (full vectors, a compile-time constant) and REM (lanes
 * of a last partial vector, constant 0 when there is none) for a remainder of
 * width < 4 * VW floats, so that the kernels' tile loops unroll. */
#define VF_TILE_CASE_(F, rem_, ...)                                  \
    case F:                                                         \
        if ((rem_) == 0) {                                          \
            enum { FULL = F };                                      \
            const int64_t REM = 0;                                  \
            __VA_ARGS__;                                            \
        } else {                                                    \
            enum { FULL = F };                                      \
            const int64_t REM = (rem_);                             \
            __VA_ARGS__;                                            \
        }                                                           \
        break;
#define VF_TILE_REST(width, ...)                                     \
    do {                                                            \
        int64_t vf_rem_ = (width) % VW;                             \
        switch ((int)((width) / VW)) {                              \
            VF_TILE_CASE_(0, vf_rem_, __VA_ARGS__)                  \
            VF_TILE_CASE_(1, vf_rem_, __VA_ARGS__)                  \
            VF_TILE_CASE_(2, vf_rem_, __VA_ARGS__)                  \
        default:                                                    \
            VF_TILE_CASE_(3, vf_rem_, __VA_ARGS__)                  \
        }                                                           \
    } while (0)

/* Running maximum that propagates NaN. */
static inline vf vf_max_nan(vf acc, vf v) { return vf_select(vf_better(v, acc), v, acc); }

#endif
