#define CNNC_SIMD 1
#include "pool_template.h"

const struct cnnc_pool_kernels cnnc_pool_kernels_avx2 = {CNNC_POOL_TEMPLATE_MEMBERS};
