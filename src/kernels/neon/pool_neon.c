#define CNNC_SIMD 3
#include "pool_template.h"

const struct cnnc_pool_kernels cnnc_pool_kernels_neon = {CNNC_POOL_TEMPLATE_MEMBERS};
