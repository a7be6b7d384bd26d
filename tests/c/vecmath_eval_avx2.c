#define CNNC_SIMD 1
#define VECMATH_EVAL vecmath_eval_avx2
#include "vecmath_eval.h"
