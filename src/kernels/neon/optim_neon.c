#define CNNC_SIMD 3
#include "optim_template.h"

CNNC_OPTIM_TABLE(neon);
