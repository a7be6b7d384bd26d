/* The convolution family's algorithm layer: Winograd F(2x2, 3x3) and
 * F(4x4, 3x3) (src/conv/winograd.c). */
#ifndef CNNC_CONV_WINOGRAD_H
#define CNNC_CONV_WINOGRAD_H
#include "geometry.h"
#include "gemm_kernels.h"

/* The variant: the side of its output tiles. F(4x4, 3x3) does 36
 * multiplications per 16 outputs where F(2x2, 3x3) does 16 per 4, at a
 * larger rounding error (its transforms' coefficients reach 5 and 8 where
 * F(2x2)'s are 1 and 1/2). */
enum cnnc_winograd_tile { CNNC_WINOGRAD_F2 = 2, CNNC_WINOGRAD_F4 = 4 };

/* Whether g is a geometry it computes: 3x3, stride 1, dilation 1, groups 1. */
CNNC_INTERNAL int cnnc_conv_winograd_applies(const struct cnnc_conv_geom *g);
/* y = stage(bias (or 0) + the convolution of x with w), for a g it
 * applies to, by the variant `tile`. With flipped, w is the kernel of the
 * convolution whose stride-1 input gradient this is ((3, 3, g->cout,
 * g->cin), used flipped in space and transposed in channels), and g is
 * cnnc_conv_data_gradient_geom of it. u, unless NULL, is w transformed by
 * cnnc_conv_winograd_pack (for the same variant and the active ISA; not
 * with flipped). stage (or NULL): the residual and the activation of struct
 * cnnc_gemm_epilogue (its bias is not read), applied per pixel after the
 * bias, exactly as over the whole of y afterwards. */
CNNC_INTERNAL cnnc_status cnnc_conv_winograd_forward(const struct cnnc_conv_geom *g, enum cnnc_winograd_tile tile,
                                                     const float *x, const float *w, int flipped, const float *u,
                                                     const float *bias, const struct cnnc_gemm_epilogue *stage,
                                                     float *y);
/* *u = w transformed once for the forward convolutions of g's geometry (any
 * batch) by the variant `tile` on the active ISA (cnnc_malloc'd, *u_bytes
 * long; cnnc_free it). */
CNNC_INTERNAL cnnc_status cnnc_conv_winograd_pack(const struct cnnc_conv_geom *g, enum cnnc_winograd_tile tile,
                                                  const float *w, float **u, size_t *u_bytes);
/* dw of a g it applies to, from x and dy. */
CNNC_INTERNAL cnnc_status cnnc_conv_winograd_backward_weights(const struct cnnc_conv_geom *g,
                                                              enum cnnc_winograd_tile tile, const float *x,
                                                              const float *dy, float *dw);

#endif
