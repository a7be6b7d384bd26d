/* The evaluation loop of test_vecmath, declared once and defined once per
 * ISA by vecmath_eval_<isa>.c (each built with that ISA's flags). */
#ifndef CNNC_TEST_VECMATH_EVAL_H
#define CNNC_TEST_VECMATH_EVAL_H
#include <stdint.h>

enum { F_EXP, F_EXPM1, F_ERFC, F_LOG, F_LOG1P, F_COUNT };
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
        default: r = vf_log1p(v); break;
        }
        vf_store_tail(y + i, r, n - i);
    }
}
#endif
#endif
