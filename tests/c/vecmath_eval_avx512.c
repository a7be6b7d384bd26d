#define CNNC_SIMD 2
#define VECMATH_EVAL vecmath_eval_avx512
#include "vecmath_eval.h"
