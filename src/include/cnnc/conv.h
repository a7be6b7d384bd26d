/* Convolutions (1-D, 2-D, transposed), channels-last.
 *
 * Layouts: x (N, H, W, Cin) and y (N, OH, OW, Cout) row-major; weights in the
 * Keras layout (KH, KW, Cin / groups, Cout), output channel o belonging to
 * group o / (Cout / groups); bias (Cout). A 1-D convolution is the 2-D one
 * with in_h = kernel_h = stride_h = dilation_h = 1 and no vertical padding.
 *
 * Output size: OH = (H + pad_top + pad_bottom - ((KH - 1) * dilation_h + 1)) / stride_h + 1
 * (floor), likewise OW; it must be at least 1, i.e. the dilated kernel must
 * fit in the padded input. Padding may be asymmetric; cnnc_conv_same_padding
 * gives TensorFlow's "same" rule.
 *
 * All functions overwrite their outputs (no accumulation), may use several
 * threads (cnnc_set_num_threads) and give bit-identical results for a fixed
 * thread count and ISA; for any thread count in deterministic mode
 * (cnnc_set_deterministic: without it the weight and bias gradients and the
 * data gradient of strided convolutions depend on the team size). No output may share memory with an input or with the
 * other output (dw and db), not even exactly in place: such calls give
 * CNNC_ERR_INVALID_ARGUMENT.
 *
 * 3x3 stride-1 convolutions (dilation 1, groups 1) with at least 16 channels
 * on each side run their passes (so also those of a stride-1 transposed
 * convolution) through Winograd F(4x4, 3x3) or F(2x2, 3x3), which do 4 and
 * 2.25 times fewer multiplications, wherever that measured faster
 * (src/conv/select.c lists where). Their float32 rounding errors are
 * relative to the magnitudes within each input tile (6x6 and 4x4) rather
 * than each 3x3 window: F(2x2)'s are of the same size as the direct sum's,
 * F(4x4)'s about 10 times larger (measured up to about 20 float32 epsilons
 * of the sum of |x| |w|, 50 for weight gradients over few tiles), and its
 * intermediate sums grow up to a few hundred times the outputs'
 * magnitudes, so outputs within that factor of FLT_MAX may overflow.
 * Likewise an Inf or NaN input makes outputs of the m x m output tiles
 * whose input tile holds it non-finite (NaN where the direct sum may give
 * Inf), not only the 3x3 outputs whose windows hold it. The environment
 * variable CNNC_WINOGRAD, read at each call, overrides the choice:
 * CNNC_WINOGRAD=0 never uses Winograd, CNNC_WINOGRAD=2 (or 1) uses F(2x2,
 * 3x3) and CNNC_WINOGRAD=4 F(4x4, 3x3) for every such convolution.
 */
#ifndef CNNC_CONV_H
#define CNNC_CONV_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One convolution problem. Paddings are >= 0; strides, dilations, groups > 0;
 * groups divides both in_channels and out_channels. Depthwise convolution is
 * groups == in_channels (out_channels = in_channels * multiplier). */
typedef struct cnnc_conv2d_desc {
    int64_t batch, in_h, in_w, in_channels, out_channels;
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t dilation_h, dilation_w;
    int64_t pad_top, pad_bottom, pad_left, pad_right;
    int64_t groups;
} cnnc_conv2d_desc;

/* Validates desc and returns the output height and width. */
CNNC_API cnnc_status cnnc_conv2d_output_size(const cnnc_conv2d_desc *desc, int64_t *out_h, int64_t *out_w);

/* TensorFlow's "same" padding along one axis: output ceil(in / stride), the
 * total padding max((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0)
 * split with the odd pixel after (bottom/right). */
CNNC_API cnnc_status cnnc_conv_same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                                            int64_t *pad_before, int64_t *pad_after);

/* y = conv(x, w) + bias; bias may be NULL. */
CNNC_API cnnc_status cnnc_conv2d_forward(const cnnc_conv2d_desc *desc, const float *x, const float *w,
                                         const float *bias, float *y);
/* dx = d(objective)/dx given dy; dx is overwritten (input pixels no kernel
 * tap reaches get 0). */
CNNC_API cnnc_status cnnc_conv2d_backward_data(const cnnc_conv2d_desc *desc, const float *w, const float *dy,
                                               float *dx);
/* dw (KH, KW, Cin / groups, Cout) and, unless db is NULL, db (Cout). */
CNNC_API cnnc_status cnnc_conv2d_backward_weights(const cnnc_conv2d_desc *desc, const float *x, const float *dy,
                                                  float *dw, float *db);

/* Transposed convolution (Keras Conv2DTranspose), described by the forward
 * convolution it transposes: desc's input (batch, in_h, in_w, in_channels)
 * is the transposed convolution's OUTPUT, desc's output (batch, OH, OW,
 * out_channels) its INPUT, and the Keras kernel (KH, KW, filters, Cin) is
 * exactly desc's weight layout with in_channels = filters and out_channels =
 * Cin. So x is (batch, OH, OW, out_channels), y is (batch, in_h, in_w,
 * in_channels), bias is (in_channels). */
CNNC_API cnnc_status cnnc_conv2d_transpose_forward(const cnnc_conv2d_desc *desc, const float *x, const float *w,
                                                   const float *bias, float *y);
CNNC_API cnnc_status cnnc_conv2d_transpose_backward_data(const cnnc_conv2d_desc *desc, const float *w,
                                                         const float *dy, float *dx);
/* dw in the same layout as w; db (in_channels) unless NULL. */
CNNC_API cnnc_status cnnc_conv2d_transpose_backward_weights(const cnnc_conv2d_desc *desc, const float *x,
                                                            const float *dy, float *dw, float *db);

#ifdef __cplusplus
}
#endif
#endif
