#define CNNC_SIMD 3
#include "winograd_template.h"

const struct cnnc_winograd_kernels cnnc_winograd_kernels_neon = {CNNC_WINOGRAD_TEMPLATE_MEMBERS};
