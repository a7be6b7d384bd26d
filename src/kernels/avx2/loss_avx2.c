#include "simd_avx2.h"
#include "loss_template.h"

CNNC_LOSS_TABLE(avx2);
