/* Convolution entry points: validation and the choice of algorithm.
 *
 * Algorithms (x NHWC, w (KH, KW, Cin/g, Cout), so that a patch of x in
 * (kh, kw, c) order is a row that multiplies w viewed as a (KH*KW*Cin/g) x
 * Cout matrix):
 *
 * - depthwise (groups == Cin, any multiplier): direct per-ISA kernels
 *   (src/conv_depthwise.c, src/kernels/<isa>/depthwise_<isa>.c), vectorized
 *   over channels. Each output pixel does only KH*KW*Cout multiply-adds, far
 *   too little work to amortize an im2col copy, and GEMMs with K = KH*KW are
 *   hopeless. Forward: parallel over bands of output rows, register tiles
 *   of 8 pixels that load each source vector of a kernel row once.
 *   Backward-data: a gather over the taps that reach each input pixel (one
 *   pass per stride phase), parallel over input rows (no write conflicts).
 *   Backward-weights (and db in the same pass): per-thread partial sums
 *   over row ranges, kept in registers along rows, reduced in thread order.
 * - 3x3, stride 1, dilation 1, groups 1, at least 16 channels on each side
 *   and enough tiles (src/conv_winograd.c has the exact rule, per pass:
 *   the few-channel tile kernels below keep 16 -> 16 forward and the weight
 *   gradient of fewer than 28 input channels): Winograd
 *   F(2x2, 3x3) for all three passes. Backward-data is the forward
 *   convolution of dy with the flipped, channel-transposed kernel (whose
 *   transform is computed from w directly); backward-weights sums the
 *   products of the transformed x and dy tiles and transforms back. 16 GEMMs
 *   on the transformed tiles do 2.25 times fewer multiply-adds than the
 *   direct convolution; the implicit GEMM already runs at about 95% of the
 *   FMA peak, so only fewer multiplications beat it (measured 1.2-2.3x on
 *   ResNet-18's 3x3 layers and the MNIST 32->64 layer, each pass). F(4x4,
 *   3x3) would save more but its transforms lose float32 accuracy.
 *   CNNC_WINOGRAD=0/1 in the environment disables or forces it (tests run
 *   both paths).
 * - everything else runs on the GEMM micro-kernels (src/conv_gemm.c,
 *   src/conv_implicit.c):
 *   * 1x1, stride 1, unpadded: x itself is the (N*H*W) x Cin matrix, so
 *     forward is one GEMM per group and per pixel chunk, backward-data is
 *     dY * W^T and backward-weights X^T * dY, all without any copy.
 *   * general forward: implicit GEMM. The weights are packed once per call
 *     into the micro-kernel's panels. When output rows are at least one
 *     micro-tile (MR pixels) wide, each thread copies the input rows that a
 *     band of output rows reads into a zero-padded buffer (about 256 KiB),
 *     or, when no tap needs padding (1x1 / 2 downsampling), reads x itself
 *     (1.05-1.25x on ResNet-18's 1x1 / 2 layers: the copy held every input
 *     row and column, three quarters of which no tap reads),
 *     and the micro-kernel reads MR consecutive output pixels straight from
 *     it (constant stride stride_w * Cin), one call per kernel row when the
 *     kernel row is contiguous (dilation_w == 1, groups == 1), else per tap:
 *     no im2col at all. With few channels per kernel row (3x3 on 1..21
 *     channels, the ResNet stem) one call per kernel row would load and store
 *     the C tile for a handful of multiply-adds, so a per-ISA tile kernel
 *     (src/internal/conv_tile_template.h) runs all the taps of a tile in
 *     registers from the bias instead, for rows of any width (the tile
 *     computes exactly the pixels it keeps). Otherwise narrower rows are cut
 *     into MR-pixel segments across rows, im2col'd and packed (one copy), in
 *     blocks that fit L2.
 *   * backward-data, stride 1 with >= 64 channels per group: the gradient
 *     is itself a stride-1 convolution of dy with the spatially flipped,
 *     channel-transposed kernel and padding k_eff - 1 - pad, so it runs the
 *     implicit-GEMM forward (which packs that kernel straight from w): each
 *     thread writes whole dx pixels, nothing to scatter.
 *   * backward-data, stride > 1, dilation 1, kernel at least as large as
 *     the stride, >= 32 channels per group in dx, phase rows that are
 *     (nearly) whole micro-tiles of a large register tile (AVX-512; with
 *     AVX2's the dcol GEMM below stays ahead): the sub-pixel decomposition
 *     (backward_data_phases in src/conv_gemm.c). The dx pixels of one
 *     stride phase receive only the taps of one sub-kernel (2x2, 2x1, 1x2,
 *     1x1 for 3x3 / 2): each phase is a stride-1 convolution of dy, run by
 *     the implicit-GEMM forward with that sub-kernel flipped and
 *     channel-transposed, writing a strided subset of dx directly; no
 *     dcol, no col2im (1.1-1.2x on ResNet-18's 3x3 / 2 layers at 56 and
 *     28, at 1 and 2 threads; with 7-pixel phase rows on 14-pixel tiles
 *     it loses, 1.7x). Without a bias (dx never has one) the first
 *     product of each tile initializes it: no zero fill to read back
 *     (1.04-1.1x more).
 *     CNNC_CONV_PHASES=1/0 forces it wherever it applies, or disables it.
 *   * backward-data otherwise: dcol = dY * W^T per tile (W^T packed once,
 *     dY read in place), then col2im. With at least as many images as
 *     threads each thread owns whole images and scatter-adds tile by tile.
 *     With fewer images (batch-1 inference of a transposed convolution)
 *     threads share each image: they compute the image's whole dcol, then
 *     gather it per input row.
 *   * backward-weights with few input channels or outputs (and at most 576
 *     rows of dW; see conv_internal.h for the rule): per-ISA register tiles of dW (a block of KH*KW*Cin/g rows x a few
 *     vectors of Cout) accumulate while the pixels of a zero-padded band of
 *     input rows and the matching dy rows stream by, with the bias gradient
 *     summed in the same pass; per-thread partials as below.
 *   * backward-weights otherwise: each thread accumulates im2col(tile)^T * dY(tile)
 *     (tiles of >= 256 pixels, the GEMM's inner dimension) into a private
 *     dW over its pixel range (thread 0 directly into dw), then the partials
 *     are summed in thread order: deterministic for a fixed thread count.
 * - bias gradients are a channel sum of dy with the same partial scheme (fused
 *   into the tiled weight gradient where that runs).
 * - transposed convolution is the adjoint: its forward is backward-data
 *   (with the bias as the initial value), its backward-data is forward and
 *   its backward-weights is backward-weights with x and dy swapped.
 */
#include <string.h>
#include "conv_internal.h"

#define DESC_CHECK_POS(field) \
    do { if (desc->field <= 0) return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: " #field " = %lld must be > 0", who, (long long)desc->field); } while (0)
#define DESC_CHECK_NONNEG(field) \
    do { if (desc->field < 0) return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: " #field " = %lld must be >= 0", who, (long long)desc->field); } while (0)

/* Output length along one axis, or an error naming the axis. */
static cnnc_status axis_output(const char *who, const char *axis, int64_t in, int64_t pad_before, int64_t pad_after,
                               int64_t kernel, int64_t stride, int64_t dilation, int64_t *out)
{
    int64_t span, padded;
    if (__builtin_mul_overflow(kernel - 1, dilation, &span) || __builtin_add_overflow(span, 1, &span) ||
        __builtin_add_overflow(in, pad_before, &padded) || __builtin_add_overflow(padded, pad_after, &padded))
        return cnnc_error(CNNC_ERR_OVERFLOW, "%s: %s size computation overflows", who, axis);
    if (span > padded)
        return cnnc_error(CNNC_ERR_SHAPE,
                          "%s: the dilated kernel (%lld along %s) is larger than the padded input (%lld)", who,
                          (long long)span, axis, (long long)padded);
    *out = (padded - span) / stride + 1;
    return CNNC_OK;
}

static cnnc_status resolve(const char *who, const cnnc_conv2d_desc *desc, struct cnnc_conv_geom *g)
{
    if (desc == NULL)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: desc is NULL", who);
    DESC_CHECK_POS(batch);
    DESC_CHECK_POS(in_h);
    DESC_CHECK_POS(in_w);
    DESC_CHECK_POS(in_channels);
    DESC_CHECK_POS(out_channels);
    DESC_CHECK_POS(kernel_h);
    DESC_CHECK_POS(kernel_w);
    DESC_CHECK_POS(stride_h);
    DESC_CHECK_POS(stride_w);
    DESC_CHECK_POS(dilation_h);
    DESC_CHECK_POS(dilation_w);
    DESC_CHECK_NONNEG(pad_top);
    DESC_CHECK_NONNEG(pad_bottom);
    DESC_CHECK_NONNEG(pad_left);
    DESC_CHECK_NONNEG(pad_right);
    DESC_CHECK_POS(groups);
    if (desc->in_channels % desc->groups != 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: groups = %lld does not divide in_channels = %lld", who,
                          (long long)desc->groups, (long long)desc->in_channels);
    if (desc->out_channels % desc->groups != 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: groups = %lld does not divide out_channels = %lld", who,
                          (long long)desc->groups, (long long)desc->out_channels);
    struct cnnc_conv_geom r = {
        .n = desc->batch, .h = desc->in_h, .w = desc->in_w, .cin = desc->in_channels, .cout = desc->out_channels,
        .kh = desc->kernel_h, .kw = desc->kernel_w, .sh = desc->stride_h, .sw = desc->stride_w,
        .dh = desc->dilation_h, .dw = desc->dilation_w, .pt = desc->pad_top, .pb = desc->pad_bottom,
        .pl = desc->pad_left, .pr = desc->pad_right, .groups = desc->groups,
        .cin_g = desc->in_channels / desc->groups, .cout_g = desc->out_channels / desc->groups,
    };
    CNNC_TRY(axis_output(who, "height", r.h, r.pt, r.pb, r.kh, r.sh, r.dh, &r.oh));
    CNNC_TRY(axis_output(who, "width", r.w, r.pl, r.pr, r.kw, r.sw, r.dw, &r.ow));
    /* Every buffer any path touches must be addressable: x, y, w, and the
     * im2col row (KH*KW*Cin) times the larger image for the shared dcol. */
    int64_t count;
    size_t bytes;
    CNNC_TRY(cnnc_mul_sizes(&count, 4, r.n, r.h, r.w, r.cin));
    CNNC_TRY(cnnc_float_bytes(count, &bytes));
    CNNC_TRY(cnnc_mul_sizes(&count, 4, r.n, r.oh, r.ow, r.cout));
    CNNC_TRY(cnnc_float_bytes(count, &bytes));
    CNNC_TRY(cnnc_mul_sizes(&count, 4, r.kh, r.kw, r.cin_g, r.cout));
    CNNC_TRY(cnnc_float_bytes(count, &bytes));
    CNNC_TRY(cnnc_mul_sizes(&count, 5, r.kh, r.kw, r.cin, cnnc_max_i64(r.oh, r.h), cnnc_max_i64(r.ow, r.w)));
    CNNC_TRY(cnnc_float_bytes(count, &bytes));
    CNNC_TRY(cnnc_mul_sizes(&count, 4, r.kh, r.kw, r.cout, cnnc_max_i64(r.cin, r.cout)));
    CNNC_TRY(cnnc_float_bytes(count, &bytes));
    *g = r;
    return CNNC_OK;
}

cnnc_status cnnc_conv2d_output_size(const cnnc_conv2d_desc *desc, int64_t *out_h, int64_t *out_w)
{
    CNNC_CHECK_PTR(out_h);
    CNNC_CHECK_PTR(out_w);
    struct cnnc_conv_geom g;
    CNNC_TRY(resolve(__func__, desc, &g));
    *out_h = g.oh;
    *out_w = g.ow;
    return CNNC_OK;
}

cnnc_status cnnc_conv_same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                                   int64_t *pad_before, int64_t *pad_after)
{
    CNNC_CHECK_POS(in);
    CNNC_CHECK_POS(kernel);
    CNNC_CHECK_POS(stride);
    CNNC_CHECK_POS(dilation);
    CNNC_CHECK_PTR(pad_before);
    CNNC_CHECK_PTR(pad_after);
    int64_t out = cnnc_ceil_div(in, stride), total;
    if (kernel - 1 > INT64_MAX / dilation || __builtin_mul_overflow(out - 1, stride, &total) ||
        __builtin_add_overflow(total, (kernel - 1) * dilation, &total) || total == INT64_MAX)
        return cnnc_error(CNNC_ERR_OVERFLOW, "%s: padding computation overflows", __func__);
    total = cnnc_max_i64(total + 1 - in, 0);
    *pad_before = total / 2;
    *pad_after = total - total / 2;
    return CNNC_OK;
}

static int is_depthwise(const struct cnnc_conv_geom *g) { return g->cin_g == 1 && g->groups == g->cin && g->cin > 1; }

static cnnc_status forward(const struct cnnc_conv_geom *g, const float *x, const float *w, const float *bias, float *y)
{
    if (is_depthwise(g))
        return cnnc_conv_depthwise_forward(g, x, w, bias, y);
    if (cnnc_conv_winograd_chosen(g, CNNC_CONV_PASS_FORWARD))
        return cnnc_conv_winograd_forward(g, x, w, 0, bias, y);
    return cnnc_conv_gemm_forward(g, x, w, bias, y);
}

static cnnc_status backward_data(const struct cnnc_conv_geom *g, const float *w, const float *dy, const float *bias,
                                 float *dx)
{
    if (is_depthwise(g))
        return cnnc_conv_depthwise_backward_data(g, w, dy, bias, dx);
    if (g->sh == 1 && g->sw == 1) {
        const struct cnnc_conv_geom t = cnnc_conv_data_gradient_geom(g);
        if (cnnc_conv_winograd_chosen(&t, CNNC_CONV_PASS_BACKWARD_DATA))
            return cnnc_conv_winograd_forward(&t, dy, w, 1, bias, dx);
    }
    return cnnc_conv_gemm_backward_data(g, w, dy, bias, dx);
}

/* db, when not NULL, is the channel sum of dy (the bias gradient of a
 * convolution, not of a transposed one). */
static cnnc_status backward_weights(const struct cnnc_conv_geom *g, const float *x, const float *dy, float *dw,
                                    float *db)
{
    if (is_depthwise(g))
        return cnnc_conv_depthwise_backward_weights(g, x, dy, dw, db);
    if (!cnnc_conv_winograd_chosen(g, CNNC_CONV_PASS_BACKWARD_WEIGHTS))
        return cnnc_conv_gemm_backward_weights(g, x, dy, dw, db);
    CNNC_TRY(cnnc_conv_winograd_backward_weights(g, x, dy, dw));
    if (db)
        CNNC_TRY(cnnc_conv_channel_sum(g->n * g->oh * g->ow, g->cout, dy, db));
    return CNNC_OK;
}

/* Element counts of the image x, the output y and the weights w of g (all
 * checked to fit by resolve). */
struct conv_counts {
    int64_t x, y, w;
};

static struct conv_counts counts_of(const struct cnnc_conv_geom *g)
{
    struct conv_counts c = {g->n * g->h * g->w * g->cin, g->n * g->oh * g->ow * g->cout,
                            g->kh * g->kw * g->cin_g * g->cout};
    return c;
}

/* Every pass writes its outputs while still reading its inputs (windows of
 * neighbouring pixels, every output channel from every input channel), so
 * no output may share memory with an input or with the other output. */
static cnnc_status check_outputs(const char *fn, float *out, int64_t out_count, const char *out_name, float *out2,
                                 int64_t out2_count, const float *in1, int64_t in1_count, const char *in1_name,
                                 const float *in2, int64_t in2_count, const char *in2_name, const float *bias,
                                 int64_t bias_count)
{
    CNNC_TRY(cnnc_check_disjoint(fn, out_name, out, out_count, in1_name, in1, in1_count, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, out_name, out, out_count, in2_name, in2, in2_count, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, out_name, out, out_count, "bias", bias, bias_count, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "db", out2, out2_count, in1_name, in1, in1_count, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "db", out2, out2_count, in2_name, in2, in2_count, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "db", out2, out2_count, out_name, out, out_count, 0));
    return CNNC_OK;
}

cnnc_status cnnc_conv2d_forward(const cnnc_conv2d_desc *desc, const float *x, const float *w, const float *bias,
                                float *y)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(resolve(__func__, desc, &g));
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(w);
    CNNC_CHECK_PTR(y);
    struct conv_counts n = counts_of(&g);
    CNNC_TRY(check_outputs(__func__, y, n.y, "y", NULL, 0, x, n.x, "x", w, n.w, "w", bias, g.cout));
    return forward(&g, x, w, bias, y);
}

cnnc_status cnnc_conv2d_backward_data(const cnnc_conv2d_desc *desc, const float *w, const float *dy, float *dx)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(resolve(__func__, desc, &g));
    CNNC_CHECK_PTR(w);
    CNNC_CHECK_PTR(dy);
    CNNC_CHECK_PTR(dx);
    struct conv_counts n = counts_of(&g);
    CNNC_TRY(check_outputs(__func__, dx, n.x, "dx", NULL, 0, w, n.w, "w", dy, n.y, "dy", NULL, 0));
    return backward_data(&g, w, dy, NULL, dx);
}

cnnc_status cnnc_conv2d_backward_weights(const cnnc_conv2d_desc *desc, const float *x, const float *dy, float *dw,
                                         float *db)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(resolve(__func__, desc, &g));
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(dy);
    CNNC_CHECK_PTR(dw);
    struct conv_counts n = counts_of(&g);
    CNNC_TRY(check_outputs(__func__, dw, n.w, "dw", db, g.cout, x, n.x, "x", dy, n.y, "dy", NULL, 0));
    return backward_weights(&g, x, dy, dw, db);
}

cnnc_status cnnc_conv2d_transpose_forward(const cnnc_conv2d_desc *desc, const float *x, const float *w,
                                          const float *bias, float *y)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(resolve(__func__, desc, &g));
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(w);
    CNNC_CHECK_PTR(y);
    struct conv_counts n = counts_of(&g);
    CNNC_TRY(check_outputs(__func__, y, n.x, "y", NULL, 0, x, n.y, "x", w, n.w, "w", bias, g.cin));
    return backward_data(&g, w, x, bias, y);
}

cnnc_status cnnc_conv2d_transpose_backward_data(const cnnc_conv2d_desc *desc, const float *w, const float *dy,
                                                float *dx)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(resolve(__func__, desc, &g));
    CNNC_CHECK_PTR(w);
    CNNC_CHECK_PTR(dy);
    CNNC_CHECK_PTR(dx);
    struct conv_counts n = counts_of(&g);
    CNNC_TRY(check_outputs(__func__, dx, n.y, "dx", NULL, 0, w, n.w, "w", dy, n.x, "dy", NULL, 0));
    return forward(&g, dy, w, NULL, dx);
}

cnnc_status cnnc_conv2d_transpose_backward_weights(const cnnc_conv2d_desc *desc, const float *x, const float *dy,
                                                   float *dw, float *db)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(resolve(__func__, desc, &g));
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(dy);
    CNNC_CHECK_PTR(dw);
    struct conv_counts n = counts_of(&g);
    CNNC_TRY(check_outputs(__func__, dw, n.w, "dw", db, g.cin, x, n.y, "x", dy, n.x, "dy", NULL, 0));
    CNNC_TRY(backward_weights(&g, dy, x, dw, NULL));
    if (db)
        CNNC_TRY(cnnc_conv_channel_sum(g.n * g.h * g.w, g.cin, dy, db));
    return CNNC_OK;
}
