#define CNNC_SIMD 1
#include "optim_template.h"

CNNC_OPTIM_TABLE(avx2);
