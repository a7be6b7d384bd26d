#define CNNC_SIMD 0
#define VECMATH_EVAL vecmath_eval_scalar
#include "vecmath_eval.h"
