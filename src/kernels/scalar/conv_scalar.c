/* Convolution tile kernels for the scalar path (see conv_tile_template.h). */
#define CNNC_SIMD 0
#include "conv_tile_template.h"

const struct cnnc_conv_kernels cnnc_conv_kernels_scalar = {CNNC_CONV_TILE_MEMBERS};
