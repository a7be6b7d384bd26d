#define CNNC_SIMD 2
#include "pool_template.h"

const struct cnnc_pool_kernels cnnc_pool_kernels_avx512 = {CNNC_POOL_TEMPLATE_MEMBERS};
