#define CNNC_SIMD 2
#include "winograd_template.h"

const struct cnnc_winograd_kernels cnnc_winograd_kernels_avx512 = {CNNC_WINOGRAD_TEMPLATE_MEMBERS};
