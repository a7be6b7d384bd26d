/* The evaluation loop of test_vecmath, declared once and defined once per
 * ISA by vecmath_eval_<isa>.c (each built with that ISA's flags). */
#ifndef CNNC_TEST_VECMATH_EVAL_H
#define CNNC_TEST_VECMATH_EVAL_H
#include <stdint.h>

enum { F_EXP, F_EXPM1, F_ERFC, F_LOG, F_LOG1P, F_COUNT,
       /* vocabulary operations with a per-ISA form (simd.h) */
       F_SIGN = F_COUNT, F_COPYSIGN, F_NEG_ABS, F_ADD_IF, F_SELECT_ZERO_NGE };
typedef void (*eval_fn)(int f, int64_t n, const float *x, float *y);

void vecmath_eval_scalar(int f, int64_t n, const float *x, float *y);
void vecmath_eval_avx2(int f, int64_t n, const float *x, float *y);
void vecmath_eval_avx512(int f, int64_t n, const float *x, float *y);
void vecmath_eval_neon(int f, int64_t n, const float *x, float *y);

#ifdef CNNC_SIMD
#include "simd.h"
void VECMATH_EVAL(int f, int64_t n, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i += VW) {
        vf v = vf_load_tail(x + i, n - i), r;
        switch (f) {
        case F_EXP: r = vf_exp(v); break;
        case F_EXPM1: r = vf_expm1(v); break;
        case F_ERFC: r = vf_erfc(v); break;
        case F_LOG: r = vf_log(v); break;
        case F_LOG1P: r = vf_log1p(v); break;
        case F_SIGN: r = vf_sign(v); break;
        case F_COPYSIGN: r = vf_copysign(vf_set1(1.5f), v); break;
        case F_NEG_ABS: r = vf_copysign(v, vf_set1(-0.0f)); break;
        case F_ADD_IF: r = vf_add_if(vf_gt(v, vf_zero()), v, vf_set1(1.0f)); break;
        default: r = vf_select_zero(vf_nge(v, vf_zero()), v); break;
        }
        vf_store_tail(y + i, r, n - i);
    }
}
#endif
#endif
