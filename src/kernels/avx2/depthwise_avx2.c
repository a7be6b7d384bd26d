#define CNNC_SIMD 1
#include "depthwise_template.h"

const struct cnnc_depthwise_kernels cnnc_depthwise_kernels_avx2 = {CNNC_DEPTHWISE_TEMPLATE_MEMBERS};
