/* Convolution tile kernels for the NEON path (see conv_tile_template.h). */
#define CNNC_SIMD 3
#include "conv_tile_template.h"

const struct cnnc_conv_kernels cnnc_conv_kernels_neon = {CNNC_CONV_TILE_MEMBERS};
