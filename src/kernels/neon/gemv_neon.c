#define CNNC_SIMD 3
#include "gemv_template.h"

const struct cnnc_gemv_kernels cnnc_gemv_kernels_neon = {.vw = VW, .rows = gemv_rows_simd};
