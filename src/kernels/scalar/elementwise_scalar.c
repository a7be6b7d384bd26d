#define CNNC_SIMD 0
#include "elementwise_template.h"
#include "dropout_portable.h"

const struct cnnc_elementwise_kernels cnnc_elementwise_kernels_scalar = {
    CNNC_ELEMENTWISE_TEMPLATE_MEMBERS,
    .dropout_forward = dropout_forward,
    .dropout_backward = dropout_backward,
};
