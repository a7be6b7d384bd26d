#define CNNC_SIMD 0
#include "pool_template.h"

const struct cnnc_pool_kernels cnnc_pool_kernels_scalar = {CNNC_POOL_TEMPLATE_MEMBERS};
