#define CNNC_SIMD 2
#include "depthwise_template.h"

const struct cnnc_depthwise_kernels cnnc_depthwise_kernels_avx512 = {CNNC_DEPTHWISE_TEMPLATE_MEMBERS};
