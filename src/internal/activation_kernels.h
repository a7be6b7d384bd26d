/* Per-ISA micro-kernels of the activation family. Each operates on a
 * contiguous chunk; the driver (src/activation.c) splits work across threads. */
#ifndef CNNC_ACTIVATION_KERNELS_H
#define CNNC_ACTIVATION_KERNELS_H
#include "cnnc_internal.h"

struct cnnc_activation_kernels {
    void (*relu_forward)(int64_t n, const float *x, float *y);
    void (*relu_backward)(int64_t n, const float *x, const float *dy, float *dx);
};

extern CNNC_INTERNAL const struct cnnc_activation_kernels cnnc_activation_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_activation_kernels cnnc_activation_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_activation_kernels cnnc_activation_kernels_avx512;

#endif
