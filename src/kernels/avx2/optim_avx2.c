#include "simd_avx2.h"
#include "optim_template.h"

CNNC_OPTIM_TABLE(avx2);
