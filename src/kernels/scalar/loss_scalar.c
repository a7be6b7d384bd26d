#define CNNC_SIMD 0
#include "loss_template.h"

CNNC_LOSS_TABLE(scalar);
