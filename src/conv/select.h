/* The convolution family's selection layer: each pass of a validated
 * problem, run by the algorithm that suits it (src/conv/select.c). */
#ifndef CNNC_CONV_SELECT_H
#define CNNC_CONV_SELECT_H
#include "geometry.h"

/* y = bias (or 0) + the convolution of x with w. */
CNNC_INTERNAL cnnc_status cnnc_conv_select_forward(const struct cnnc_conv_geom *g, const float *x, const float *w,
                                                   const float *bias, float *y);
/* dx = bias (or 0) + the input gradient from dy (a transposed
 * convolution's forward passes its bias). */
CNNC_INTERNAL cnnc_status cnnc_conv_select_backward_data(const struct cnnc_conv_geom *g, const float *w,
                                                         const float *dy, const float *bias, float *dx);
/* dw from x and dy; db, when not NULL, is the channel sum of dy (the bias
 * gradient of a convolution, not of a transposed one). */
CNNC_INTERNAL cnnc_status cnnc_conv_select_backward_weights(const struct cnnc_conv_geom *g, const float *x,
                                                            const float *dy, float *dw, float *db);

#endif
