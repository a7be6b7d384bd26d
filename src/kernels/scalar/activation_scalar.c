#define CNNC_SIMD 0
#include "activation_template.h"

CNNC_ACTIVATION_KERNELS(scalar);
