#include "simd_scalar.h"
#include "loss_template.h"

CNNC_LOSS_TABLE(scalar);
