#include "simd_avx512.h"
#include "activation_template.h"

CNNC_ACTIVATION_KERNELS(avx512);
