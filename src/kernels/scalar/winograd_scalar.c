#define CNNC_SIMD 0
#include "winograd_template.h"

const struct cnnc_winograd_kernels cnnc_winograd_kernels_scalar = {CNNC_WINOGRAD_TEMPLATE_MEMBERS};
