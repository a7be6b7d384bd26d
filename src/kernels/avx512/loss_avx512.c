#define CNNC_SIMD 2
#include "loss_template.h"

CNNC_LOSS_TABLE(avx512);
