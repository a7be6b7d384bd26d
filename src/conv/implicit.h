/* The convolution family's algorithm layer: the implicit GEMM
 * (src/conv/implicit.c). Each function takes the thread count the caller
 * sized (cnnc_conv_threads of the convolution it computes). */
#ifndef CNNC_CONV_IMPLICIT_H
#define CNNC_CONV_IMPLICIT_H
#include "geometry.h"
#include "gemm_kernels.h"

/* y = bias (or 0) + the convolution of x with w, any geometry. */
CNNC_INTERNAL cnnc_status cnnc_conv_implicit_forward(const struct cnnc_conv_geom *g, int threads, const float *x,
                                                     const float *w, const float *bias, float *y);
/* The weights' B panels as cnnc_conv_implicit_forward packs them for the
 * active ISA (*floats of them, 64-byte aligned, cnnc_free to release). */
CNNC_INTERNAL cnnc_status cnnc_conv_implicit_pack(const struct cnnc_conv_geom *g, const float *w, float **panels,
                                                  int64_t *floats);
/* y = stage(bias (or 0) + the convolution of x with w): B panels read
 * from `panels` unless NULL (made by cnnc_conv_implicit_pack for the same
 * geometry and the active ISA) instead of packing w; stage (or NULL): the
 * residual and activation of struct cnnc_gemm_epilogue (its bias is not
 * read), applied to each block of output pixels once computed, exactly as
 * over the whole of y afterwards. */
CNNC_INTERNAL cnnc_status cnnc_conv_implicit_forward_fused(const struct cnnc_conv_geom *g, int threads,
                                                           const float *x, const float *w, const float *panels,
                                                           const float *bias, const struct cnnc_gemm_epilogue *stage,
                                                           float *y);
/* Whether output rows of ow pixels go through the indirect tiles where
 * those apply: the active ISA has them and the rows end in a short partial
 * micro-tile (under two thirds of MR pixels, whose few accumulators would
 * wait on the FMA latency), or are narrower than one. */
CNNC_INTERNAL int cnnc_conv_implicit_indirect_rows(int64_t ow);
/* Whether the active ISA has the indirect tiles at all. */
CNNC_INTERNAL int cnnc_conv_implicit_has_indirect(void);
/* dx = bias (or 0) + the input gradient of a stride-1 g: the forward
 * convolution of dy with w flipped in space and transposed in channels
 * (cnnc_conv_data_gradient_geom); each thread writes whole dx pixels. */
CNNC_INTERNAL cnnc_status cnnc_conv_implicit_backward_data(const struct cnnc_conv_geom *g, int threads,
                                                           const float *w, const float *dy, const float *bias,
                                                           float *dx);
/* The same for stride > 1 with dilation 1, by the sub-pixel decomposition: the dx pixels with
 * (ih + pad_top) mod sh == rh and (iw + pad_left) mod sw == rw receive only
 * the taps kh = rh + sh * j, kw = rw + sw * i, so each of the sh * sw
 * phases is a stride-1 convolution of dy with that sub-kernel, flipped and
 * channel-transposed, writing the phase's strided subset of dx directly:
 * the multiply-adds of dcol = dy * w^T without a dcol to store and scatter
 * back. Each dx pixel belongs to exactly one phase, which starts it from
 * the bias; with a kernel smaller than the stride, the phases no tap
 * reaches are the bias (or 0) alone. */
CNNC_INTERNAL cnnc_status cnnc_conv_implicit_backward_data_phases(const struct cnnc_conv_geom *g, int threads,
                                                                  const float *w, const float *dy,
                                                                  const float *bias, float *dx);

#endif
