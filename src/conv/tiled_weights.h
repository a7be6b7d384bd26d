/* The convolution family's algorithm layer: the weight gradient through the
 * per-ISA weights_tile kernels (src/conv/tiled_weights.c). */
#ifndef CNNC_CONV_TILED_WEIGHTS_H
#define CNNC_CONV_TILED_WEIGHTS_H
#include "geometry.h"

/* dw (and db, the channel sums of dy, when not NULL) on `threads` threads,
 * reading x in place from zero-padded bands. Any geometry; it pays for few
 * input channels or outputs per group (src/conv/select.c has the rule). */
CNNC_INTERNAL cnnc_status cnnc_conv_tiled_backward_weights(const struct cnnc_conv_geom *g, int threads,
                                                           const float *x, const float *dy, float *dw, float *db);

#endif
