#define CNNC_SIMD 1
#include "winograd_template.h"

const struct cnnc_winograd_kernels cnnc_winograd_kernels_avx2 = {CNNC_WINOGRAD_TEMPLATE_MEMBERS};
