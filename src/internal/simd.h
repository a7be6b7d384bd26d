/* The one float-vector vocabulary of the kernels. A kernel template
 * (src/internal/<family>_template.h) is written once over it and compiled
 * into one micro-kernel table per ISA by src/kernels/<isa>/<family>_<isa>.c,
 * which defines CNNC_SIMD before including the template. CNNC_SIMD, not the
 * compiler's flags, picks the backend, so the scalar table stays scalar even
 * under -march=native.
 *
 *   CNNC_SIMD 0  simd_scalar.h   1 lane
 *             1  simd_avx2.h     8 lanes, AVX2 + FMA
 *             2  simd_avx512.h   16 lanes, AVX-512 F/BW/DQ/VL
 *             3  simd_neon.h     4 lanes, AArch64 Advanced SIMD
 *
 * Every backend provides, with the same semantics:
 *   vf, vm, vi       VW floats, a lane mask, VW 32-bit integers
 *   vf_load/store    unaligned full vector; vf_load_part/vf_store_part the
 *                    first n < VW lanes (the rest read as zero)
 *   vf_set1 vf_zero vf_add vf_sub vf_mul vf_div vf_sqrt vf_abs
 *   vf_fmadd(a,b,c)  a*b + c      vf_fnmadd(a,b,c) c - a*b    vf_fmsub(a,b,c) a*b - c
 *                    (one rounding where the ISA has FMA, two on the scalar path)
 *   vf_max/vf_min    the second operand when either is NaN (x86's rule)
 *   vf_lt gt le ge eq   ordered comparisons (false on NaN); vf_ne, vf_nge (not >=)
 *                    unordered (true on NaN)
 *   vm_and vm_or     mask logic; vf_select(m, a, b) = m ? a : b; vf_select_zero(m, a) = m ? a : 0
 *   vf_better(v, b)  v > b, or v is NaN and b is not: a running maximum that
 *                    propagates NaN and keeps the first of equal maxima
 *   vf_round_small   round to nearest even, for |x| < 2^22
 *   vf_to_vi vi_to_vf vf_as_vi vi_as_vf vi_set1 vi_add vi_sub vi_and vi_or
 *   vi_sra1 (arithmetic >> 1) vi_srl23 vi_sll23   the exponent-field arithmetic of vecmath.h
 *   vf_square2(x, &hi, &lo)   x*x = hi + lo exactly
 *   vf_hsum vf_hmax  horizontal sum (fixed order) and maximum
 *   vf_keep(v)       v, which the compiler must keep in a register (no load folding)
 *   vf_scale_pow2(y, n)  y * 2^n for whole n in [-150, 128] (simd_common.h unless
 *                    the backend has an instruction: VF_NATIVE_SCALE_POW2)
 *   vf_split_exponent(x, &e, &m)  x = m 2^e, m in [1, 2) (likewise VF_NATIVE_SPLIT_EXPONENT)
 *   vf_copysign(mag, sign)  |mag| with the sign bit of sign (likewise VF_NATIVE_COPYSIGN)
 *   vf_add_if(m, a, b)  m ? a + b : a, where a -0 outside m may become +0 (likewise VF_NATIVE_ADD_IF)
 * and on top of those (simd_common.h, vecmath.h): tails, tiles, sign, exp,
 * expm1, erfc, log, log1p and the normal tail and density. */
#ifndef CNNC_SIMD_H
#define CNNC_SIMD_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#if !defined(CNNC_SIMD)
#  error "define CNNC_SIMD (0 scalar, 1 AVX2, 2 AVX-512, 3 NEON) before including simd.h"
#endif

#if CNNC_SIMD == 3
#  include "simd_neon.h"
#elif CNNC_SIMD == 2
#  include "simd_avx512.h"
#elif CNNC_SIMD == 1
#  include "simd_avx2.h"
#else
#  include "simd_scalar.h"
#endif
#include "simd_common.h"
#include "vecmath.h"

#endif
