#define CNNC_SIMD 0
#include "optim_template.h"

CNNC_OPTIM_TABLE(scalar);
