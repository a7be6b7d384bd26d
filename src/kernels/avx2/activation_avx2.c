#define CNNC_SIMD 1
#include "activation_template.h"

CNNC_ACTIVATION_KERNELS(avx2);
