#define CNNC_SIMD 3
#include "activation_template.h"

CNNC_ACTIVATION_KERNELS(neon);
