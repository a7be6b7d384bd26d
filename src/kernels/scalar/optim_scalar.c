#include "simd_scalar.h"
#include "optim_template.h"

CNNC_OPTIM_TABLE(scalar);
