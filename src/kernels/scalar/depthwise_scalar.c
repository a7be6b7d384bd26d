#define CNNC_SIMD 0
#include "depthwise_template.h"

const struct cnnc_depthwise_kernels cnnc_depthwise_kernels_scalar = {CNNC_DEPTHWISE_TEMPLATE_MEMBERS};
