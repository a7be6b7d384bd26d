#include "simd_scalar.h"
#include "activation_template.h"

CNNC_ACTIVATION_KERNELS(scalar);
