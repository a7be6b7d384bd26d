#define CNNC_SIMD 1
#include "gemv_template.h"

const struct cnnc_gemv_kernels cnnc_gemv_kernels_avx2 = {.vw = VW, .rows = gemv_rows_simd};
