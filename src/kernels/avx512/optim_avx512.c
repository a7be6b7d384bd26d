#define CNNC_SIMD 2
#include "optim_template.h"

CNNC_OPTIM_TABLE(avx512);
