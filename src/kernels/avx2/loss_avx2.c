#define CNNC_SIMD 1
#include "loss_template.h"

CNNC_LOSS_TABLE(avx2);
