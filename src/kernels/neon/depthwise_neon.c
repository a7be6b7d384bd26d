#define CNNC_SIMD 3
#include "depthwise_template.h"

const struct cnnc_depthwise_kernels cnnc_depthwise_kernels_neon = {CNNC_DEPTHWISE_TEMPLATE_MEMBERS};
