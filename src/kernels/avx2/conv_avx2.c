/* Convolution tile kernels for the avx2 path (see conv_tile_template.h). */
#define CNNC_SIMD 1
#include "conv_tile_template.h"

const struct cnnc_conv_kernels cnnc_conv_kernels_avx2 = {CNNC_CONV_TILE_MEMBERS};
