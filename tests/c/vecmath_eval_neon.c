#define CNNC_SIMD 3
#define VECMATH_EVAL vecmath_eval_neon
#include "vecmath_eval.h"
