/* One function per layer kind, each a call into the public kernels (conv,
 * gemm, pooling, normalization, activation, elementwise) or a short loop for
 * the data movement layers. */
#include <math.h>
#include <string.h>
#include "ops.h"
#include "plan.h"

/* y = f(x) over rows x cols (the activation's last axis is cols); y may be x. */
static cnnc_status activate(const activation *act, int64_t rows, int64_t cols, const float *x, float *y)
{
    int64_t n = rows * cols;
    switch (act->kind) {
    case ACT_LINEAR:
        if (x != y) memcpy(y, x, (size_t)n * sizeof *y);
        return CNNC_OK;
    case ACT_RELU: return cnnc_activation_forward(CNNC_ACTIVATION_RELU, n, x, y, 0.0f);
    case ACT_RELU6: return cnnc_activation_forward(CNNC_ACTIVATION_RELU6, n, x, y, 0.0f);
    case ACT_LEAKY_RELU: return cnnc_activation_forward(CNNC_ACTIVATION_LEAKY_RELU, n, x, y, act->alpha);
    case ACT_ELU: return cnnc_activation_forward(CNNC_ACTIVATION_ELU, n, x, y, act->alpha);
    case ACT_SELU: return cnnc_activation_forward(CNNC_ACTIVATION_SELU, n, x, y, 0.0f);
    case ACT_GELU: return cnnc_activation_forward(CNNC_ACTIVATION_GELU, n, x, y, 0.0f);
    case ACT_SIGMOID: return cnnc_activation_forward(CNNC_ACTIVATION_SIGMOID, n, x, y, 0.0f);
    case ACT_HARD_SIGMOID: return cnnc_activation_forward(CNNC_ACTIVATION_HARD_SIGMOID, n, x, y, 0.0f);
    case ACT_TANH: return cnnc_activation_forward(CNNC_ACTIVATION_TANH, n, x, y, 0.0f);
    case ACT_SWISH: return cnnc_activation_forward(CNNC_ACTIVATION_SILU, n, x, y, 0.0f);
    case ACT_SOFTPLUS: return cnnc_activation_forward(CNNC_ACTIVATION_SOFTPLUS, n, x, y, 0.0f);
    case ACT_SOFTMAX: return cnnc_softmax_forward(rows, cols, x, y);
    case ACT_LOG_SOFTMAX: return cnnc_log_softmax_forward(rows, cols, x, y);
    case ACT_SOFTSIGN:
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + fabsf(x[i]));
        return CNNC_OK;
    case ACT_EXPONENTIAL:
        for (int64_t i = 0; i < n; ++i) y[i] = expf(x[i]);
        return CNNC_OK;
    case ACT_CLIP:
        /* The affine map as two roundings, as the Python layer computes it. */
        if (act->scale != 1.0f || act->offset != 0.0f) {
            for (int64_t i = 0; i < n; ++i) y[i] = x[i] * act->scale;
            for (int64_t i = 0; i < n; ++i) y[i] += act->offset;
            x = y;
        }
        for (int64_t i = 0; i < n; ++i) {
            float v = x[i];
            y[i] = v < act->lo ? act->lo : v > act->hi ? act->hi : v;
        }
        return CNNC_OK;
    case ACT_RELU_GENERAL:
        for (int64_t i = 0; i < n; ++i) {
            /* Without a slope, below the threshold is +0 as in the ReLU layer,
             * not 0 * (x - t): that is -0, and NaN at -inf. */
            float v = x[i] < act->threshold ? (act->alpha != 0.0f ? act->alpha * (x[i] - act->threshold) : 0.0f)
                                            : x[i];
            if (act->max_value >= 0.0f && v > act->max_value) v = act->max_value;
            y[i] = v;
        }
        return CNNC_OK;
    }
    return cnnc_error(CNNC_ERR_INTERNAL, "model: unknown activation");
}

static cnnc_status softmax_axis(const model_node *node, int64_t batch, const float *x, float *y)
{
    int64_t outer = batch * node->i[0], len = node->i[1], inner = node->i[2];
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
            const float *xs = x + o * len * inner + j;
            float *ys = y + o * len * inner + j;
            float m = -INFINITY;
            for (int64_t k = 0; k < len; ++k) m = xs[k * inner] > m ? xs[k * inner] : m;
            double sum = 0.0;
            for (int64_t k = 0; k < len; ++k) sum += (double)expf(xs[k * inner] - m);
            float inv = (float)(1.0 / sum);
            for (int64_t k = 0; k < len; ++k) ys[k * inner] = expf(xs[k * inner] - m) * inv;
        }
    return CNNC_OK;
}

static float nan_max(float a, float b) { return a != a ? a : b != b ? b : a > b ? a : b; }
static float nan_min(float a, float b) { return a != a ? a : b != b ? b : a < b ? a : b; }

static inline float combine(op_kind op, float a, float b)
{
    switch (op) {
    case OP_SUBTRACT: return a - b;
    case OP_MULTIPLY: return a * b;
    case OP_DIVIDE: return a / b;
    case OP_MAXIMUM: return nan_max(a, b);
    case OP_MINIMUM: return nan_min(a, b);
    default: return a + b;  /* add, average */
    }
}

/* y[j] = a[j * sa] op b[j * sb] for j < len, steps 0 (broadcast) or 1; the
 * op is chosen outside the loop so that each loop vectorizes. */
#define BINARY_ROW(expr)                                                                  \
    do {                                                                                  \
        if (sa && sb) for (int64_t j = 0; j < len; ++j) { float u = a[j], v = b[j]; y[j] = (expr); } \
        else if (sa) { float v = b[0]; for (int64_t j = 0; j < len; ++j) { float u = a[j]; y[j] = (expr); } } \
        else if (sb) { float u = a[0]; for (int64_t j = 0; j < len; ++j) { float v = b[j]; y[j] = (expr); } } \
        else { float u = a[0], v = b[0]; for (int64_t j = 0; j < len; ++j) y[j] = (expr); } \
    } while (0)

static void binary_row(op_kind op, const float *a, int64_t sa, const float *b, int64_t sb, int64_t len, float *y)
{
    switch (op) {
    case OP_SUBTRACT: BINARY_ROW(u - v); break;
    case OP_MULTIPLY: BINARY_ROW(u * v); break;
    case OP_DIVIDE: BINARY_ROW(u / v); break;
    case OP_MAXIMUM: BINARY_ROW(nan_max(u, v)); break;
    case OP_MINIMUM: BINARY_ROW(nan_min(u, v)); break;
    default: BINARY_ROW(u + v); break;
    }
}

/* The general merge: inputs of broadcasting shapes (per-sample shapes
 * aligned on the right, size-1 axes repeated), any count. Row by row along
 * the output's last axis; with more than two inputs each element is folded
 * left to right over the inputs before it is written, so the output may
 * share its buffer with any full-size input. Average scales the sum by
 * 1 / k, as the Python layer does. */
static cnnc_status merge_broadcast(const model_graph *g, const model_node *node, int64_t batch, const float *const *in,
                                   float *y)
{
    const model_value *out = &g->values[node->output];
    int k = node->n_inputs, rank = out->rank;
    if (k > 64) return cnnc_error(CNNC_ERR_UNSUPPORTED, "model: layer \"%.100s\" merges more than 64 inputs", node->name);
    int64_t stride[64][MODEL_MAX_RANK], sample[64], step[64];
    for (int t = 0; t < k; ++t) {
        const model_value *v = &g->values[node->inputs[t]];
        int64_t s = 1;
        for (int d = rank - 1; d >= 0; --d) {
            int src = d - (rank - v->rank);
            int64_t size = src >= 0 ? v->shape[src] : 1;
            stride[t][d] = size == 1 ? 0 : s;
            s *= size;
        }
        sample[t] = v->size;
        step[t] = stride[t][rank - 1];
    }
    int64_t len = out->shape[rank - 1], rows = out->size / len;
    int64_t idx[MODEL_MAX_RANK] = {0};
    float *row_buf = NULL;
    if (k > 2 && !(row_buf = cnnc_malloc((size_t)len * sizeof *row_buf)))
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    const float scale = (float)(1.0 / k);
    const float *src[64] = {0};
    for (int64_t n = 0; n < batch; ++n) {
        memset(idx, 0, sizeof idx);
        for (int64_t r = 0; r < rows; ++r) {
            for (int t = 0; t < k; ++t) {
                int64_t off = n * sample[t];
                for (int d = 0; d < rank - 1; ++d) off += idx[d] * stride[t][d];
                src[t] = in[t] + off;
            }
            float *dst = y + (n * rows + r) * len;
            if (k == 2) {
                binary_row(node->op, src[0], step[0], src[1], step[1], len, dst);
            } else {
                /* Fold into a row buffer, so that no input row is overwritten before it is read. */
                binary_row(node->op, src[0], step[0], src[1], step[1], len, row_buf);
                for (int t = 2; t < k; ++t)
                    for (int64_t j = 0; j < len; ++j) row_buf[j] = combine(node->op, row_buf[j], src[t][j * step[t]]);
                memcpy(dst, row_buf, (size_t)len * sizeof *dst);
            }
            if (node->op == OP_AVERAGE) for (int64_t j = 0; j < len; ++j) dst[j] *= scale;
            for (int d = rank - 2; d >= 0; --d) {
                if (++idx[d] < out->shape[d]) break;
                idx[d] = 0;
            }
        }
    }
    cnnc_free(row_buf);
    return CNNC_OK;
}

static cnnc_status merge(const model_graph *g, const model_node *node, int64_t n, const float *const *in, float *y)
{
    int same = node->n_inputs == 2;
    for (int t = 0; t < node->n_inputs && same; ++t) same = g->values[node->inputs[t]].size == g->values[node->output].size;
    if (!same) return merge_broadcast(g, node, n / g->values[node->output].size, in, y);
    switch (node->op) {
    case OP_ADD: case OP_AVERAGE:
        CNNC_TRY(cnnc_add_forward(n, in[0], in[1], y));
        if (node->op == OP_AVERAGE) {
            float s = 0.5f;
            for (int64_t i = 0; i < n; ++i) y[i] *= s;
        }
        return CNNC_OK;
    case OP_MULTIPLY:
        return cnnc_multiply_forward(n, in[0], in[1], y);
    default:
        binary_row(node->op, in[0], 1, in[1], 1, n, y);
        return CNNC_OK;
    }
}

static void pad(const model_node *node, int64_t batch, const float *x, float *y)
{
    int64_t h = node->i[0], w = node->i[1], c = node->i[2];
    int64_t top = node->i[3], bottom = node->i[4], left = node->i[5], right = node->i[6];
    int64_t ow = w + left + right, row = ow * c;
    for (int64_t b = 0; b < batch; ++b) {
        memset(y, 0, (size_t)(top * row) * sizeof *y);
        y += top * row;
        for (int64_t r = 0; r < h; ++r) {
            memset(y, 0, (size_t)(left * c) * sizeof *y);
            memcpy(y + left * c, x, (size_t)(w * c) * sizeof *y);
            memset(y + (left + w) * c, 0, (size_t)(right * c) * sizeof *y);
            x += w * c;
            y += row;
        }
        memset(y, 0, (size_t)(bottom * row) * sizeof *y);
        y += bottom * row;
    }
}

static void crop(const model_node *node, int64_t batch, const float *x, float *y)
{
    int64_t h = node->i[0], w = node->i[1], c = node->i[2], top = node->i[3], left = node->i[4];
    int64_t oh = node->i[5], ow = node->i[6];
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t r = 0; r < oh; ++r) {
            memcpy(y, x + ((b * h + top + r) * w + left) * c, (size_t)(ow * c) * sizeof *y);
            y += ow * c;
        }
}

/* Source index and weights of half-pixel-centre bilinear upsampling, as
 * UpSampling2D(interpolation="bilinear"). */
static void bilinear_tap(int64_t o, int64_t factor, int64_t n_in, int64_t *lo, int64_t *hi, float *frac)
{
    double src = ((double)o + 0.5) / (double)factor - 0.5;
    if (src < 0) src = 0;
    int64_t l = (int64_t)floor(src);
    if (l > n_in - 1) l = n_in - 1;
    *lo = l;
    *hi = l + 1 < n_in ? l + 1 : n_in - 1;
    *frac = (float)(src - (double)l);
}

static void upsample(const model_node *node, int64_t batch, const float *x, float *y)
{
    int64_t h = node->i[0], w = node->i[1], c = node->i[2], sh = node->i[3], sw = node->i[4];
    int64_t oh = h * sh, ow = w * sw;
    for (int64_t b = 0; b < batch; ++b) {
        const float *xb = x + b * h * w * c;
        for (int64_t p = 0; p < oh; ++p)
            for (int64_t q = 0; q < ow; ++q) {
                float *out = y + ((b * oh + p) * ow + q) * c;
                if (!node->i[5]) {
                    memcpy(out, xb + ((p / sh) * w + q / sw) * c, (size_t)c * sizeof *out);
                    continue;
                }
                int64_t y0, y1, x0, x1;
                float fy, fx;
                bilinear_tap(p, sh, h, &y0, &y1, &fy);
                bilinear_tap(q, sw, w, &x0, &x1, &fx);
                const float *a = xb + (y0 * w + x0) * c, *bb = xb + (y0 * w + x1) * c;
                const float *cc = xb + (y1 * w + x0) * c, *d = xb + (y1 * w + x1) * c;
                for (int64_t k = 0; k < c; ++k)
                    out[k] = (1.0f - fy) * ((1.0f - fx) * a[k] + fx * bb[k]) + fy * ((1.0f - fx) * cc[k] + fx * d[k]);
            }
    }
}

static void permute(const model_value *in, const int *perm, int64_t batch, const float *x, float *y)
{
    int rank = in->rank;
    int64_t in_stride[MODEL_MAX_RANK], out_shape[MODEL_MAX_RANK], stride[MODEL_MAX_RANK], idx[MODEL_MAX_RANK] = {0};
    in_stride[rank - 1] = 1;
    for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * in->shape[d + 1];
    for (int d = 0; d < rank; ++d) { out_shape[d] = in->shape[perm[d]]; stride[d] = in_stride[perm[d]]; }
    for (int64_t b = 0; b < batch; ++b) {
        const float *xb = x + b * in->size;
        memset(idx, 0, sizeof idx);
        for (int64_t e = 0; e < in->size; ++e) {
            int64_t src = 0;
            for (int d = 0; d < rank; ++d) src += idx[d] * stride[d];
            *y++ = xb[src];
            for (int d = rank - 1; d >= 0; --d) {
                if (++idx[d] < out_shape[d]) break;
                idx[d] = 0;
            }
        }
    }
}

/* Pooling with taps d apart (dilation), as BasePooling._dilated: the taps
 * taken in row-major order, each output accumulated from its first tap on
 * (padding reads as 0 for an average, -inf for a max), an average divided
 * by the taps on the input (with count_include_pad, on the explicitly
 * padded input). */
static void dilated_pool(const model_node *node, const model_value *y, int64_t batch, const float *x, float *out)
{
    const cnnc_pool2d_params *p = &node->pool;
    int avg = node->op == OP_DILATED_AVG_POOL;
    int64_t dh = node->i[0], dw = node->i[1], c = p->c;
    int64_t oh = y->rank == 3 ? y->shape[0] : 1, ow = y->shape[y->rank - 2];
    const float fill = avg ? 0.0f : -INFINITY;
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t i = 0; i < oh; ++i)
            for (int64_t j = 0; j < ow; ++j) {
                float *dst = out + ((b * oh + i) * ow + j) * c;
                int64_t taps_h = 0, taps_w = 0;
                for (int64_t r = 0; r < p->pool_h; ++r) {
                    int64_t pr = i * p->stride_h + r * dh;  /* in padded coordinates */
                    int64_t lo = node->i[2] ? 0 : p->pad_top, hi = node->i[2] ? p->h + node->i[3] : p->pad_top + p->h;
                    taps_h += pr >= lo && pr < hi;
                }
                for (int64_t t = 0; t < p->pool_w; ++t) {
                    int64_t pc = j * p->stride_w + t * dw;
                    int64_t lo = node->i[2] ? 0 : p->pad_left, hi = node->i[2] ? p->w + node->i[4] : p->pad_left + p->w;
                    taps_w += pc >= lo && pc < hi;
                }
                for (int64_t r = 0; r < p->pool_h; ++r)
                    for (int64_t t = 0; t < p->pool_w; ++t) {
                        int64_t row = i * p->stride_h + r * dh - p->pad_top, col = j * p->stride_w + t * dw - p->pad_left;
                        const float *src = row >= 0 && row < p->h && col >= 0 && col < p->w
                                               ? x + ((b * p->h + row) * p->w + col) * c : NULL;
                        int first = r == 0 && t == 0;
                        for (int64_t k = 0; k < c; ++k) {
                            float v = src ? src[k] : fill;
                            dst[k] = first ? v : avg ? dst[k] + v : nan_max(dst[k], v);
                        }
                    }
                if (avg) {
                    float divisor = (float)taps_h * (float)taps_w;
                    for (int64_t k = 0; k < c; ++k) dst[k] /= divisor;
                }
            }
}

/* Pad of every axis: the output walked in order, each element read from the
 * input index its mode maps it to. */
static void pad_nd(const model_node *node, const model_value *xv, const model_value *yv, int64_t batch, const float *x,
                   float *y)
{
    int rank = xv->rank, mode = (int)node->i[0];
    int64_t stride[MODEL_MAX_RANK], idx[MODEL_MAX_RANK];
    stride[rank - 1] = 1;
    for (int d = rank - 2; d >= 0; --d) stride[d] = stride[d + 1] * xv->shape[d + 1];
    for (int64_t b = 0; b < batch; ++b) {
        const float *xb = x + b * xv->size;
        memset(idx, 0, sizeof idx);
        for (int64_t e = 0; e < yv->size; ++e) {
            int64_t src = 0;
            int inside = 1;
            for (int d = 0; d < rank; ++d) {
                int64_t n = xv->shape[d], k = idx[d] - node->widths[2 * d];
                if (k < 0 || k >= n) {
                    if (mode == 0) { inside = 0; break; }
                    if (mode == 1) {  /* mirror without repeating the edge; pads < n */
                        k = k < 0 ? -k : 2 * (n - 1) - k;
                    } else {
                        k = k < 0 ? 0 : n - 1;
                    }
                }
                src += k * stride[d];
            }
            *y++ = inside ? xb[src] : node->f[0];
            for (int d = rank - 1; d >= 0; --d) {
                if (++idx[d] < yv->shape[d]) break;
                idx[d] = 0;
            }
        }
    }
}

/* The node's activation as the GEMM output stage's ReLU family, if it is one. */
/* (x - mean) / sqrt(var + eps) * gamma[k] + beta[k] over the n elements
 * x[offset(e)], e < n, with offset(e) = (e / run) * jump + (e % run) * step
 * (statistics in double; the standardized value is rounded to float before
 * the affine step, as the Python layers compute it); k = channel(e) picks
 * the parameter: (e / cgroup) % cdiv for a channel axis inside the set. */
typedef struct norm_set { int64_t n, run, step, jump, cgroup, cdiv, cbase; } norm_set;

static inline int64_t norm_offset(const norm_set *s, int64_t e) { return (e / s->run) * s->jump + (e % s->run) * s->step; }

static void standardize(const norm_set *s, float eps, const float *gamma, const float *beta, const float *x, float *y)
{
    double sum = 0.0;
    for (int64_t e = 0; e < s->n; ++e) sum += x[norm_offset(s, e)];
    float mean = (float)(sum / (double)s->n);
    double sq = 0.0;
    for (int64_t e = 0; e < s->n; ++e) {
        float d = x[norm_offset(s, e)] - mean;
        sq += (double)d * (double)d;
    }
    float inv_std = 1.0f / sqrtf((float)(sq / (double)s->n) + eps);
    for (int64_t e = 0; e < s->n; ++e) {
        int64_t o = norm_offset(s, e), k = s->cbase + (e / s->cgroup) % s->cdiv;
        float v = (x[o] - mean) * inv_std;
        if (gamma) v *= gamma[k];
        if (beta) v += beta[k];
        y[o] = v;
    }
}

static void layer_norm(const model_node *node, int64_t batch, const float *x, float *y)
{
    int64_t outer = node->i[0], len = node->i[1], inner = node->i[2];
    norm_set s = {len, len, inner, 0, 1, len, 0};
    for (int64_t o = 0; o < batch * outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
            int64_t base = o * len * inner + j;
            standardize(&s, node->f[0], node->w, node->b, x + base, y + base);
        }
}

static void group_norm(const model_node *node, int64_t batch, const float *x, float *y)
{
    int64_t outer = node->i[0], channels = node->i[1], inner = node->i[2], groups = node->i[3];
    int64_t width = channels / groups, run = width * inner;  /* one outer position's group is contiguous */
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t g = 0; g < groups; ++g) {
            norm_set s = {outer * run, run, 1, channels * inner, inner, width, g * width};
            int64_t base = (b * outer * channels + g * width) * inner;
            standardize(&s, node->f[0], node->w, node->b, x + base, y + base);
        }
}

/* Rows of the table for float indices that must be whole and in range. */
static cnnc_status embedding(const model_node *node, int64_t count, const float *x, float *y)
{
    int64_t rows = node->i[0], dim = node->i[1];
    for (int64_t e = 0; e < count; ++e) {
        float v = x[e];
        if (!(v == floorf(v)) || isinf(v))
            return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "model: layer \"%.100s\" (Embedding): indices must be whole "
                              "numbers, got %g", node->name, (double)v);
        if (v < 0.0f || v >= (float)rows)
            return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "model: layer \"%.100s\" (Embedding): index %.0f is out of "
                              "range [0, %lld)", node->name, (double)v, (long long)rows);
        memcpy(y + e * dim, node->w + (int64_t)v * dim, (size_t)dim * sizeof *y);
    }
    return CNNC_OK;
}

static int stage_activation(const activation *act, struct cnnc_gemm_epilogue *ep)
{
    ep->slope = 0.0f;
    ep->max_value = INFINITY;
    switch (act->kind) {
    case ACT_RELU: break;
    case ACT_RELU6: ep->max_value = 6.0f; break;
    case ACT_LEAKY_RELU: ep->slope = act->alpha; break;
    case ACT_RELU_GENERAL:
        if (act->threshold != 0.0f) return 0;
        ep->slope = act->alpha;
        if (act->max_value >= 0.0f) ep->max_value = act->max_value;
        break;
    default: return 0;
    }
    ep->activate = 1;
    return 1;
}

/* A dense layer: rows x K times the K x units weights, with the bias, the
 * fused residual (in[1]) and a ReLU-family activation applied in the
 * product's output stage; another activation runs over the result
 * afterwards. Few rows read w in place (a pending batch-norm fold applied
 * as it is read); more read the panels their first call packs. Both sum
 * alike: the bits do not depend on which runs. */
static cnnc_status dense_node(const model_node *node, int64_t rows, int64_t k, int64_t units, const float *const *in,
                              float *out)
{
    struct cnnc_gemm_epilogue ep = {.bias = node->b, .residual = node->n_inputs > 1 ? in[1] : NULL, .ldr = units};
    int fused = stage_activation(&node->act, &ep);
    int threads = cnnc_get_num_threads();
    if (rows <= DENSE_INPLACE_ROWS) {
        CNNC_TRY(cnnc_sgemv_fused(threads, rows, units, k, in[0], k, node->w, units, node->fold, &ep, out, units));
    } else {
        CNNC_TRY(plan_pack_dense(node));
        const struct cnnc_gemm_packed_b *packed = __atomic_load_n(&node->packed, __ATOMIC_ACQUIRE);
        /* Packed for another ISA than the active one: the GEMM packs w per
         * call, folded first if batch norm waits in node->fold. */
        float *folded = NULL;
        if (node->fold && packed->kern != CNNC_PICK(cnnc_gemm_kernels)) CNNC_TRY(plan_folded_weights(node, &folded));
        cnnc_status s = cnnc_sgemm_fused(threads, rows, units, k, in[0], k, folded ? folded : node->w, units, packed,
                                         &ep, out, units);
        cnnc_free(folded);
        CNNC_TRY(s);
    }
    return fused ? CNNC_OK : activate(&node->act, rows, units, out, out);
}

cnnc_status op_run(const model_graph *g, const model_node *node, int64_t batch, const float *const *in, float *out)
{
    const model_value *x = &g->values[node->inputs[0]];
    const model_value *y = &g->values[node->output];
    int64_t n_out = batch * y->size;
    int64_t last = y->shape[y->rank - 1];
    switch (node->op) {
    case OP_IDENTITY:
        if (in[0] != out) memcpy(out, in[0], (size_t)n_out * sizeof *out);
        return CNNC_OK;
    case OP_CONV: {
        /* The convolution with its packed weights and its output stage. */
        cnnc_conv2d_desc d = node->conv;
        d.batch = batch;
        struct cnnc_gemm_epilogue ep = {.bias = node->b, .residual = node->n_inputs > 1 ? in[1] : NULL,
                                        .ldr = node->conv.out_channels};
        int fused = stage_activation(&node->act, &ep);
        /* A transformed kernel made on first use (its batch takes Winograd
         * where batch 1 does not): from w, folded first if batch norm
         * waits. The model is otherwise read-only; the kernel is published
         * once, atomically. */
        float *folded = NULL;
        if (cnnc_conv2d_pack_late_wanted(&d, &node->conv_packed)) {
            if (node->fold) CNNC_TRY(plan_folded_weights(node, &folded));
            cnnc_status late = cnnc_conv2d_pack_late(&d, folded ? folded : node->w,
                                                     (struct cnnc_conv_packed *)&node->conv_packed);
            cnnc_free(folded);
            folded = NULL;
            CNNC_TRY(late);
        }
        /* A call the packed forms do not cover (another ISA, the other
         * Winograd variant) reads w: folded first if batch norm waits, or
         * unpacked where the panels alone hold it. */
        if ((node->fold || !node->w) && !cnnc_conv2d_packed_covers(&d, &node->conv_packed))
            CNNC_TRY(node->fold ? plan_folded_weights(node, &folded) : plan_unpacked_weights(node, &folded));
        cnnc_status s = cnnc_conv2d_forward_fused(&d, in[0], folded ? folded : node->w, &node->conv_packed, &ep, out);
        cnnc_free(folded);
        CNNC_TRY(s);
        return fused ? CNNC_OK : activate(&node->act, n_out / last, last, out, out);
    }
    case OP_CONV_TRANSPOSE: {
        cnnc_conv2d_desc d = node->conv;
        d.batch = batch;
        CNNC_TRY(cnnc_conv2d_transpose_forward(&d, in[0], node->w, node->b, out));
        return activate(&node->act, n_out / last, last, out, out);
    }
    case OP_DENSE: {
        int64_t rows = batch * (x->size / node->i[0]);
        return dense_node(node, rows, node->i[0], node->i[1], in, out);
    }
    case OP_BATCH_NORM:
        return cnnc_batch_norm_inference(n_out / last, last, in[0], node->w, node->b, node->p0, node->p1, node->f[0], 0, out);
    case OP_ACTIVATION:
        return activate(&node->act, n_out / last, last, in[0], out);
    case OP_SOFTMAX_AXIS:
        return softmax_axis(node, batch, in[0], out);
    case OP_MAX_POOL: case OP_AVG_POOL: {
        cnnc_pool2d_params p = node->pool;
        p.n = batch;
        return node->op == OP_MAX_POOL ? cnnc_max_pool2d_forward(&p, in[0], out) : cnnc_avg_pool2d_forward(&p, in[0], out);
    }
    case OP_DILATED_MAX_POOL: case OP_DILATED_AVG_POOL:
        dilated_pool(node, y, batch, in[0], out);
        return CNNC_OK;
    case OP_CONST_BINARY: {
        int64_t size = y->size;
        for (int64_t b = 0; b < batch; ++b) {
            const float *xs = in[0] + b * size;
            if (node->i[1]) binary_row((op_kind)node->i[0], node->p0, 1, xs, 1, size, out + b * size);
            else binary_row((op_kind)node->i[0], xs, 1, node->p0, 1, size, out + b * size);
        }
        return CNNC_OK;
    }
    case OP_PRELU: {
        int64_t size = y->size;
        for (int64_t b = 0; b < batch; ++b) {
            const float *xs = in[0] + b * size;
            float *ys = out + b * size;
            for (int64_t i = 0; i < size; ++i) ys[i] = xs[i] >= 0.0f ? xs[i] : node->p0[i] * xs[i];
        }
        return CNNC_OK;
    }
    case OP_PAD_ND:
        pad_nd(node, x, y, batch, in[0], out);
        return CNNC_OK;
    case OP_GLOBAL_AVG_POOL:
        return cnnc_global_avg_pool2d_forward(batch, node->i[0], node->i[1], node->i[2], in[0], out);
    case OP_GLOBAL_MAX_POOL:
        return cnnc_global_max_pool2d_forward(batch, node->i[0], node->i[1], node->i[2], in[0], out);
    case OP_ADD: case OP_SUBTRACT: case OP_MULTIPLY: case OP_AVERAGE: case OP_MAXIMUM: case OP_MINIMUM: case OP_DIVIDE:
        return merge(g, node, n_out, in, out);
    case OP_CONCAT:
        return cnnc_concat_forward(batch * node->i[0], node->n_inputs, node->widths, in, out);
    case OP_PAD:
        pad(node, batch, in[0], out);
        return CNNC_OK;
    case OP_CROP:
        crop(node, batch, in[0], out);
        return CNNC_OK;
    case OP_UPSAMPLE:
        upsample(node, batch, in[0], out);
        return CNNC_OK;
    case OP_PERMUTE:
        permute(x, node->perm, batch, in[0], out);
        return CNNC_OK;
    case OP_RESCALE: {
        float scale = node->f[0], offset = node->f[1];
        for (int64_t i = 0; i < n_out; ++i) out[i] = in[0][i] * scale;
        if (offset != 0.0f) for (int64_t i = 0; i < n_out; ++i) out[i] += offset;
        return CNNC_OK;
    }
    case OP_NORMALIZE: {
        int64_t size = y->size;
        for (int64_t b = 0; b < batch; ++b) {
            const float *xs = in[0] + b * size;
            float *ys = out + b * size;
            if (node->i[0]) for (int64_t i = 0; i < size; ++i) ys[i] = xs[i] * node->p1[i] + node->p0[i];
            else for (int64_t i = 0; i < size; ++i) ys[i] = (xs[i] - node->p0[i]) / node->p1[i];
        }
        return CNNC_OK;
    }
    case OP_LAYER_NORM:
        layer_norm(node, batch, in[0], out);
        return CNNC_OK;
    case OP_GROUP_NORM:
        group_norm(node, batch, in[0], out);
        return CNNC_OK;
    case OP_AFFINE_GRID:
        return cnnc_affine_grid(batch, node->i[0], node->i[1], in[0], out);
    case OP_GRID_SAMPLE: {
        const model_value *images = x, *grid = &g->values[node->inputs[1]];
        return cnnc_grid_sample(batch, images->shape[0], images->shape[1], images->shape[2], in[0], grid->shape[0],
                                grid->shape[1], in[1], out);
    }
    case OP_EMBEDDING:
        return embedding(node, batch * x->size, in[0], out);
    case OP_RESIZE:
        return cnnc_affine_warp(batch, node->i[0], node->i[1], node->i[2], in[0], node->i[3], node->i[4], node->f, 0,
                                CNNC_INTERP_BILINEAR, CNNC_FILL_NEAREST, 0.0f, out);
    }
    return cnnc_error(CNNC_ERR_INTERNAL, "model: unknown op in layer \"%.100s\"", node->name);
}

const char *op_kind_name(const model_node *node)
{
    switch (node->op) {
    case OP_IDENTITY: return "folded";
    case OP_CONV:
        return node->conv.groups > 1 && node->conv.groups == node->conv.in_channels ? "depthwise_conv" : "conv";
    case OP_CONV_TRANSPOSE: return "conv_transpose";
    case OP_DENSE: return "dense";
    case OP_BATCH_NORM: return "batch_norm";
    case OP_ACTIVATION: return "activation";
    case OP_SOFTMAX_AXIS: return "softmax";
    case OP_MAX_POOL: case OP_DILATED_MAX_POOL: return "max_pool";
    case OP_AVG_POOL: case OP_DILATED_AVG_POOL: return "avg_pool";
    case OP_GLOBAL_AVG_POOL: return "global_avg_pool";
    case OP_GLOBAL_MAX_POOL: return "global_max_pool";
    case OP_ADD: case OP_SUBTRACT: case OP_MULTIPLY: case OP_AVERAGE: case OP_MAXIMUM: case OP_MINIMUM:
    case OP_DIVIDE: case OP_CONST_BINARY: return "elementwise";
    case OP_CONCAT: return "concat";
    case OP_PAD: case OP_PAD_ND: return "pad";
    case OP_CROP: return "crop";
    case OP_UPSAMPLE: return "upsample";
    case OP_PERMUTE: return "permute";
    case OP_RESCALE: case OP_NORMALIZE: return "rescale";
    case OP_RESIZE: return "resize";
    case OP_PRELU: return "prelu";
    case OP_LAYER_NORM: return "layer_norm";
    case OP_GROUP_NORM: return "group_norm";
    case OP_AFFINE_GRID: return "affine_grid";
    case OP_GRID_SAMPLE: return "grid_sample";
    case OP_EMBEDDING: return "embedding";
    }
    return "unknown";
}
