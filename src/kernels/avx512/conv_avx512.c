/* Convolution tile kernels for the avx512 path (see conv_tile_template.h). */
#define CNNC_SIMD 2
#include "conv_tile_template.h"

const struct cnnc_conv_kernels cnnc_conv_kernels_avx512 = {CNNC_CONV_TILE_MEMBERS};
