/* Convolution entry points (the top of src/conv/): validation of the
 * descriptor, pointers and buffer overlaps, then the pass that
 * src/conv/select.c runs.
 *
 * The family is layered, each file calling only the layers beneath it:
 *   conv.c                     public entry points, validation
 *   select.c                   the algorithm of each pass
 *   im2col_gemm.c, implicit.c, tiled_weights.c, winograd.c, depthwise.c
 *                              the algorithms
 *   patches.c, partials.c, team.h, geometry.h
 *                              their shared helpers: patch copies and bands,
 *                              ordered partial sums, the threads of a team
 *                              (work split, failure flag, workspace slots)
 *                              and the geometry
 * with the per-ISA kernels (src/internal/<family>_kernels.h) below them all.
 *
 * A transposed convolution is the adjoint of the convolution it is
 * described by: its forward is that convolution's backward-data (with the
 * bias as the initial value), its backward-data is forward and its
 * backward-weights is backward-weights with x and dy swapped.
 */
#include <string.h>
#include "conv.h"
#include "partials.h"
#include "select.h"

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

/* What a pass's array is to the convolution its descriptor states: the
 * image x, the output y, the weights w, or a vector over the input or output
 * channels (a bias or its gradient). Its element count follows from that
 * (every count checked to fit by resolve). */
enum conv_array { CONV_X, CONV_Y, CONV_W, CONV_CIN, CONV_COUT };

struct pass_array {
    const float *p;
    const char *name; /* as the caller's parameter is named */
    enum conv_array is;
};

#define ARRAY(ptr, is) ((struct pass_array){(ptr), #ptr, (is)})
#define NO_ARRAY ((struct pass_array){NULL, "", CONV_X})

static int64_t array_count(const struct cnnc_conv_geom *g, enum conv_array is)
{
    switch (is) {
    case CONV_X: return g->n * g->h * g->w * g->cin;
    case CONV_Y: return g->n * g->oh * g->ow * g->cout;
    case CONV_W: return g->kh * g->kw * g->cin_g * g->cout;
    case CONV_CIN: return g->cin;
    default: return g->cout;
    }
}

static cnnc_status check_apart(const char *who, const struct cnnc_conv_geom *g, const struct pass_array *a,
                               const struct pass_array *b)
{
    return cnnc_check_disjoint(who, a->name, a->p, array_count(g, a->is), b->name, b->p, array_count(g, b->is), 0);
}

/* The checks every pass makes before it runs: the geometry, then its two
 * inputs and its output given, then the overlaps. Every pass writes its
 * outputs while still reading its inputs (windows of neighbouring pixels,
 * every output channel from every input channel), so no output may share
 * memory with an input (the optional bias among them) or with the other
 * output (the optional bias gradient db). */
static cnnc_status pass_checks(const char *who, const cnnc_conv2d_desc *desc, struct pass_array out,
                               struct pass_array in1, struct pass_array in2, struct pass_array bias,
                               struct pass_array db, struct cnnc_conv_geom *g)
{
    CNNC_TRY(resolve(who, desc, g));
    const struct pass_array *required[] = {&in1, &in2, &out};
    for (size_t i = 0; i < sizeof required / sizeof *required; ++i)
        if (required[i]->p == NULL)
            return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", who, required[i]->name);
    CNNC_TRY(check_apart(who, g, &out, &in1));
    CNNC_TRY(check_apart(who, g, &out, &in2));
    CNNC_TRY(check_apart(who, g, &out, &bias));
    CNNC_TRY(check_apart(who, g, &db, &in1));
    CNNC_TRY(check_apart(who, g, &db, &in2));
    return check_apart(who, g, &db, &out);
}

cnnc_status cnnc_conv2d_forward(const cnnc_conv2d_desc *desc, const float *x, const float *w, const float *bias,
                                float *y)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(pass_checks(__func__, desc, ARRAY(y, CONV_Y), ARRAY(x, CONV_X), ARRAY(w, CONV_W),
                         ARRAY(bias, CONV_COUT), NO_ARRAY, &g));
    return cnnc_conv_select_forward(&g, x, w, bias, y);
}

cnnc_status cnnc_conv2d_pack(const cnnc_conv2d_desc *desc, const float *w, struct cnnc_conv_packed *packed)
{
    CNNC_CHECK_PTR(packed);
    memset(packed, 0, sizeof *packed);
    struct cnnc_conv_geom g;
    CNNC_TRY(resolve(__func__, desc, &g));
    CNNC_CHECK_PTR(w);
    return cnnc_conv_select_pack(&g, w, packed);
}

int cnnc_conv2d_packed_covers(const cnnc_conv2d_desc *desc, const struct cnnc_conv_packed *packed)
{
    struct cnnc_conv_geom g;
    return desc && resolve(__func__, desc, &g) == CNNC_OK && cnnc_conv_select_packed_covers(&g, packed);
}

int cnnc_conv2d_pack_late_wanted(const cnnc_conv2d_desc *desc, const struct cnnc_conv_packed *packed)
{
    struct cnnc_conv_geom g;
    return desc && resolve(__func__, desc, &g) == CNNC_OK && cnnc_conv_select_pack_late_wanted(&g, packed);
}

cnnc_status cnnc_conv2d_pack_late(const cnnc_conv2d_desc *desc, const float *w, struct cnnc_conv_packed *packed)
{
    CNNC_CHECK_PTR(packed);
    CNNC_CHECK_PTR(w);
    struct cnnc_conv_geom g;
    CNNC_TRY(resolve(__func__, desc, &g));
    return cnnc_conv_select_pack_late(&g, w, packed);
}

int cnnc_conv2d_reads_weights(const cnnc_conv2d_desc *desc)
{
    struct cnnc_conv_geom g;
    return desc && resolve(__func__, desc, &g) == CNNC_OK && cnnc_conv_is_depthwise(&g);
}

cnnc_status cnnc_conv2d_forward_fused(const cnnc_conv2d_desc *desc, const float *x, const float *w,
                                      const struct cnnc_conv_packed *packed, const struct cnnc_gemm_epilogue *stage,
                                      float *y)
{
    CNNC_CHECK_PTR(stage);
    struct cnnc_conv_geom g;
    const struct pass_array bias = {stage->bias, "bias", CONV_COUT};
    /* Without w, the packed form must serve the call alone (x stands in
     * for it in the checks). */
    const int packed_alone = !w && cnnc_conv2d_packed_covers(desc, packed);
    CNNC_TRY(pass_checks(__func__, desc, ARRAY(y, CONV_Y), ARRAY(x, CONV_X),
                         packed_alone ? ARRAY(x, CONV_X) : ARRAY(w, CONV_W), bias, NO_ARRAY, &g));
    const int64_t n_y = g.n * g.oh * g.ow * g.cout;
    if (stage->residual) {
        if (stage->ldr != g.cout)
            return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: the residual's rows must be out_channels long", __func__);
        CNNC_TRY(cnnc_check_disjoint(__func__, "y", y, n_y, "the residual", stage->residual, n_y, 0));
    }
    return cnnc_conv_select_forward_fused(&g, x, w, packed, stage, y);
}

cnnc_status cnnc_conv2d_backward_data(const cnnc_conv2d_desc *desc, const float *w, const float *dy, float *dx)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(pass_checks(__func__, desc, ARRAY(dx, CONV_X), ARRAY(w, CONV_W), ARRAY(dy, CONV_Y), NO_ARRAY,
                         NO_ARRAY, &g));
    return cnnc_conv_select_backward_data(&g, w, dy, NULL, dx);
}

cnnc_status cnnc_conv2d_backward_weights(const cnnc_conv2d_desc *desc, const float *x, const float *dy, float *dw,
                                         float *db)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(pass_checks(__func__, desc, ARRAY(dw, CONV_W), ARRAY(x, CONV_X), ARRAY(dy, CONV_Y), NO_ARRAY,
                         ARRAY(db, CONV_COUT), &g));
    return cnnc_conv_select_backward_weights(&g, x, dy, dw, db);
}

cnnc_status cnnc_conv2d_transpose_forward(const cnnc_conv2d_desc *desc, const float *x, const float *w,
                                          const float *bias, float *y)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(pass_checks(__func__, desc, ARRAY(y, CONV_X), ARRAY(x, CONV_Y), ARRAY(w, CONV_W),
                         ARRAY(bias, CONV_CIN), NO_ARRAY, &g));
    return cnnc_conv_select_backward_data(&g, w, x, bias, y);
}

cnnc_status cnnc_conv2d_transpose_backward_data(const cnnc_conv2d_desc *desc, const float *w, const float *dy,
                                                float *dx)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(pass_checks(__func__, desc, ARRAY(dx, CONV_Y), ARRAY(w, CONV_W), ARRAY(dy, CONV_X), NO_ARRAY,
                         NO_ARRAY, &g));
    return cnnc_conv_select_forward(&g, dy, w, NULL, dx);
}

cnnc_status cnnc_conv2d_transpose_backward_weights(const cnnc_conv2d_desc *desc, const float *x, const float *dy,
                                                   float *dw, float *db)
{
    struct cnnc_conv_geom g;
    CNNC_TRY(pass_checks(__func__, desc, ARRAY(dw, CONV_W), ARRAY(x, CONV_Y), ARRAY(dy, CONV_X), NO_ARRAY,
                         ARRAY(db, CONV_CIN), &g));
    CNNC_TRY(cnnc_conv_select_backward_weights(&g, dy, x, dw, NULL));
    if (db)
        CNNC_TRY(cnnc_conv_channel_sum(g.n * g.h * g.w, g.cin, dy, db));
    return CNNC_OK;
}
