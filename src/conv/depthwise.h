/* The convolution family's algorithm layer: direct depthwise convolution
 * (src/conv/depthwise.c), for g with cnnc_conv_is_depthwise. */
#ifndef CNNC_CONV_DEPTHWISE_H
#define CNNC_CONV_DEPTHWISE_H
#include "geometry.h"
#include "gemm_kernels.h"

/* y = stage(bias (or 0) + the depthwise convolution of x with w); stage
 * (or NULL): the residual and activation of struct cnnc_gemm_epilogue (its
 * bias is not read), applied as the outputs are computed (an activation
 * alone before they are stored, by the sliding kernels) or to each band of
 * output rows once written, exactly as over the whole of y afterwards. */
CNNC_INTERNAL cnnc_status cnnc_conv_depthwise_forward(const struct cnnc_conv_geom *g, const float *x,
                                                      const float *w, const float *bias,
                                                      const struct cnnc_gemm_epilogue *stage, float *y);
CNNC_INTERNAL cnnc_status cnnc_conv_depthwise_backward_data(const struct cnnc_conv_geom *g, const float *w,
                                                            const float *dy, const float *bias, float *dx);
/* db (Cout), unless NULL, gets the channel sums of dy from the same pass. */
CNNC_INTERNAL cnnc_status cnnc_conv_depthwise_backward_weights(const struct cnnc_conv_geom *g, const float *x,
                                                               const float *dy, float *dw, float *db);

#endif
