/* Depthwise convolution kernels for the avx2 path (see conv_depthwise_impl.h). */
#define CNNC_CONV_TABLE cnnc_conv_kernels_avx2
#include "conv_depthwise_impl.h"
