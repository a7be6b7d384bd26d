/* Depthwise convolution kernels for the scalar path (see conv_depthwise_impl.h). */
#define CNNC_CONV_TABLE cnnc_conv_kernels_scalar
#include "conv_depthwise_impl.h"
