/* The convolution family's algorithm layer: explicit GEMMs over x itself or
 * im2col tiles, and the dcol + col2im input gradient
 * (src/conv/im2col_gemm.c). Each function takes the thread count the caller
 * sized (cnnc_conv_threads). */
#ifndef CNNC_CONV_IM2COL_GEMM_H
#define CNNC_CONV_IM2COL_GEMM_H
#include "geometry.h"
#include "gemm_internal.h"

/* Pointwise g (cnnc_conv_is_pointwise): y = bias (or 0) + x * w, one GEMM
 * per group and pixel chunk, x read in place. */
CNNC_INTERNAL cnnc_status cnnc_conv_gemm_pointwise_forward(const struct cnnc_conv_geom *g, int threads,
                                                           const float *x, const float *w, const float *bias,
                                                           float *y);
/* Pointwise g with one group: y = stage(x * w), the GEMM reading w's
 * panels from `packed` when they suit the active ISA (else packing w per
 * call) and applying the output stage (bias, residual, activation) to each
 * tile while it is in L1; the residual has y's layout. */
CNNC_INTERNAL cnnc_status cnnc_conv_gemm_pointwise_forward_fused(const struct cnnc_conv_geom *g, int threads,
                                                                 const float *x, const float *w,
                                                                 const struct cnnc_gemm_packed_b *packed,
                                                                 const struct cnnc_gemm_epilogue *stage, float *y);
/* Pointwise g: dx = bias (or 0) + dy * w^T, dy read in place. */
CNNC_INTERNAL cnnc_status cnnc_conv_gemm_pointwise_backward_data(const struct cnnc_conv_geom *g, int threads,
                                                                 const float *w, const float *dy,
                                                                 const float *bias, float *dx);
/* dx = bias (or 0) + col2im(dy * w^T), any geometry, with at least one
 * image per thread: each thread owns whole images of dx and scatter-adds
 * its dcol tiles into them. */
CNNC_INTERNAL cnnc_status cnnc_conv_gemm_backward_data_scatter(const struct cnnc_conv_geom *g, int threads,
                                                               const float *w, const float *dy,
                                                               const float *bias, float *dx);
/* The same for any image count (made for fewer images than threads): per
 * image, the threads split its output pixels to compute the whole dcol,
 * then its input rows to gather it. */
CNNC_INTERNAL cnnc_status cnnc_conv_gemm_backward_data_shared(const struct cnnc_conv_geom *g, int threads,
                                                              const float *w, const float *dy,
                                                              const float *bias, float *dx);
/* dw = im2col(x)^T * dy (x itself when pointwise), any geometry: per-thread
 * partials over pixel ranges summed in thread order; db (the channel sums
 * of dy), when not NULL, in a second pass. */
CNNC_INTERNAL cnnc_status cnnc_conv_gemm_backward_weights(const struct cnnc_conv_geom *g, int threads,
                                                          const float *x, const float *dy, float *dw, float *db);

#endif
