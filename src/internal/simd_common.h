/* Helpers written once over the backend operations of simd.h (included by
 * simd.h after the backend). */
#ifndef CNNC_SIMD_COMMON_H
#define CNNC_SIMD_COMMON_H

/* The vector at p when `rem` values remain (a partial vector when
 * rem < VW): the templates' loops handle their tails with these. */
static inline vf vf_load_tail(const float *p, int64_t rem) { return rem >= VW ? vf_load(p) : vf_load_part(p, rem); }
static inline void vf_store_tail(float *p, vf v, int64_t rem)
{
    if (rem >= VW)
        vf_store(p, v);
    else
        vf_store_part(p, v, rem);
}

/* m ? a + b : a (outside m as a + 0: a -0 may become +0), unless the
 * backend has an instruction for it (VF_NATIVE_ADD_IF). */
#ifndef VF_NATIVE_ADD_IF
static inline vf vf_add_if(vm m, vf a, vf b) { return vf_add(a, vf_select_zero(m, b)); }
#endif

/* y * 2^n for whole n in [-150, 128], exact with gradual underflow: as two
 * factors, so that n = 128 and n = -150 scale exactly, unless the backend
 * has an instruction for it (VF_NATIVE_SCALE_POW2). */
#ifndef VF_NATIVE_SCALE_POW2
static inline vf vf_scale_pow2(vf y, vf n)
{
    vi ni = vf_to_vi(n);
    vi n1 = vi_sra1(ni);
    vi n2 = vi_sub(ni, n1);
    vi bias = vi_set1(127);
    vf s1 = vi_as_vf(vi_sll23(vi_add(n1, bias)));
    vf s2 = vi_as_vf(vi_sll23(vi_add(n2, bias)));
    return vf_mul(vf_mul(y, s1), s2);
}
#endif

/* x = m 2^e with m in [1, 2) for finite x > 0, subnormals included (other
 * inputs give values vf_log overrides), unless the backend has instructions
 * for it (VF_NATIVE_SPLIT_EXPONENT). */
#ifndef VF_NATIVE_SPLIT_EXPONENT
static inline void vf_split_exponent(vf x, vf *e, vf *m)
{
    /* Subnormals: scale up by 2^23 first so that the exponent field is right. */
    vm sub = vf_lt(x, vf_set1(1.17549435e-38f));
    vi bits = vf_as_vi(vf_select(sub, vf_mul(x, vf_set1(8388608.0f)), x));
    *e = vf_sub(vi_to_vf(vi_sub(vi_srl23(bits), vi_set1(127))), vf_select_zero(sub, vf_set1(23.0f)));
    *m = vi_as_vf(vi_or(vi_and(bits, vi_set1(0x007fffff)), vi_set1(0x3f800000)));
}
#endif

/* Running maximum that propagates NaN. */
static inline vf vf_max_nan(vf acc, vf v) { return vf_select(vf_better(v, acc), v, acc); }

/* sign(a) with sign(0) = 0 (the subgradient TensorFlow and PyTorch use); NaN gives 0. */
static inline vf vf_sign(vf a)
{
    vf zero = vf_zero();
    return vf_add_if(vf_lt(a, zero), vf_select_zero(vf_gt(a, zero), vf_set1(1.0f)), vf_set1(-1.0f));
}

/* Magnitude of mag with the sign bit of sign (unless the backend has an
 * instruction for it: VF_NATIVE_COPYSIGN). */
#ifndef VF_NATIVE_COPYSIGN
static inline vf vf_copysign(vf mag, vf sign)
{
    return vi_as_vf(vi_or(vf_as_vi(vf_abs(mag)), vi_and(vf_as_vi(sign), vi_set1((int32_t)0x80000000u))));
}
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

#endif
