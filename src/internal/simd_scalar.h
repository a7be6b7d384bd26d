/* One-lane "vector" layer for the generic kernels: the same macro vocabulary
 * as simd_avx2.h and simd_avx512.h, so that a kernel template written once
 * (optim_template.h, loss_template.h) compiles for every ISA. */
#ifndef CNNC_SIMD_SCALAR_H
#define CNNC_SIMD_SCALAR_H
#include <math.h>
#include <stdint.h>
#include "vecmath_scalar.h"

typedef float vf;
typedef int vmask;
#define V_WIDTH 1
#define V_SET1(x) ((float)(x))
#define V_ZERO() 0.0f
#define V_LOAD(p) (*(p))
#define V_STORE(p, v) (*(p) = (v))
/* Partial loads/stores of the first n (< V_WIDTH) lanes never happen with
 * one lane; they exist for the templates' tail handling. */
#define V_LOADN(p, n) (*(p))
#define V_STOREN(p, v, n) (*(p) = (v))
#define V_ADD(a, b) ((a) + (b))
#define V_SUB(a, b) ((a) - (b))
#define V_MUL(a, b) ((a) * (b))
#define V_DIV(a, b) ((a) / (b))
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_FNMA(a, b, c) ((c) - (a) * (b))
#define V_MAX(a, b) ((a) > (b) ? (a) : (b))
#define V_MIN(a, b) ((a) < (b) ? (a) : (b))
#define V_SQRT(a) sqrtf(a)
#define V_ABS(a) fabsf(a)
#define V_LT(a, b) ((a) < (b))
#define V_GT(a, b) ((a) > (b))
#define V_EQ(a, b) ((a) == (b))
#define V_NE(a, b) ((a) != (b))
#define V_OR(m1, m2) ((m1) || (m2))
/* mask ? a : b */
#define V_SELECT(m, a, b) ((m) ? (a) : (b))
#define V_GE(a, b) ((a) >= (b))
#define V_LE(a, b) ((a) <= (b))
#define V_AND(m1, m2) ((m1) && (m2))
#define V_REDUCE_ADD(a) (a)
#define V_REDUCE_MAX(a) (a)
#define V_EXP(a) cnnc_exp_scalar(a)
#define V_LOG(a) cnnc_log_scalar(a)
#define V_LOG1P(a) cnnc_log1p_scalar(a)
#define V_EXPM1(a) cnnc_expm1_scalar(a)
#define V_COPYSIGN(mag, sign) cnnc_copysign_scalar((mag), (sign))
#define V_NORMAL_TAIL(a) cnnc_normal_tail_scalar(a)
#define V_NORMAL_PDF(a) cnnc_normal_pdf_scalar(a)

/* sign(a) with sign(0) = 0 (the subgradient TensorFlow and PyTorch use). */
static inline float v_sign(float a) { return a > 0.0f ? 1.0f : (a < 0.0f ? -1.0f : 0.0f); }
#define V_SIGN(a) v_sign(a)
#include "simd_tail.h"

#endif
