#define CNNC_SIMD 3
#include "loss_template.h"

CNNC_LOSS_TABLE(neon);
