#define CNNC_SIMD 0
#include "gemv_template.h"

const struct cnnc_gemv_kernels cnnc_gemv_kernels_scalar = {.vw = VW, .rows = gemv_rows_simd};
