#include "simd_avx512.h"
#include "loss_template.h"

CNNC_LOSS_TABLE(avx512);
