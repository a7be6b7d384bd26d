#include "simd_avx2.h"
#include "activation_template.h"

CNNC_ACTIVATION_KERNELS(avx2);
