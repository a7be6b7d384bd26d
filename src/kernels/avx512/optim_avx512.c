#include "simd_avx512.h"
#include "optim_template.h"

CNNC_OPTIM_TABLE(avx512);
