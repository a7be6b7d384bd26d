#define CNNC_SIMD 2
#include "activation_template.h"

CNNC_ACTIVATION_KERNELS(avx512);
