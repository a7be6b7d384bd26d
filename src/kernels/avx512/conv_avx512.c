/* Depthwise convolution kernels for the avx512 path (see conv_depthwise_impl.h). */
#define CNNC_CONV_TABLE cnnc_conv_kernels_avx512
#include "conv_depthwise_impl.h"
