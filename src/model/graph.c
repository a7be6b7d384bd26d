/* Building the inference graph from the model_config JSON (docs/format.md):
 * Sequential and functional models, nested models, and one node per layer
 * call with its weights copied out of the file. Shapes are inferred here,
 * once, per sample (the batch axis is left out). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "graph.h"

/* Per-sample tensors above this many elements are refused: no real model
 * has them, and they would only serve to make predict allocate terabytes. */
#define MAX_VALUE_ELEMENTS ((int64_t)1 << 36)

/* ---- name table: (layer name, output index) -> value, hashed ------------- */

typedef struct name_entry { char *name; int index; int value; } name_entry;
typedef struct name_table { name_entry *slots; size_t cap, used; } name_table;

static uint64_t hash_name(const char *s, int index)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(unsigned)index;
    for (; *s; ++s) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static cnnc_status table_put(name_table *t, const char *name, int index, int value)
{
    if ((t->used + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        name_entry *slots = calloc(cap, sizeof *slots);
        if (!slots) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
        for (size_t i = 0; i < t->cap; ++i) {
            if (!t->slots[i].name) continue;
            size_t k = hash_name(t->slots[i].name, t->slots[i].index) & (cap - 1);
            while (slots[k].name) k = (k + 1) & (cap - 1);
            slots[k] = t->slots[i];
        }
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    size_t k = hash_name(name, index) & (t->cap - 1);
    while (t->slots[k].name) {
        if (t->slots[k].index == index && strcmp(t->slots[k].name, name) == 0) {
            t->slots[k].value = value; /* a layer called again: its latest output, as Python's loader */
            return CNNC_OK;
        }
        k = (k + 1) & (t->cap - 1);
    }
    t->slots[k].name = strdup(name);
    if (!t->slots[k].name) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    t->slots[k].index = index;
    t->slots[k].value = value;
    ++t->used;
    return CNNC_OK;
}

static int table_get(const name_table *t, const char *name, int index)
{
    if (!t->cap) return -1;
    size_t k = hash_name(name, index) & (t->cap - 1);
    while (t->slots[k].name) {
        if (t->slots[k].index == index && strcmp(t->slots[k].name, name) == 0) return t->slots[k].value;
        k = (k + 1) & (t->cap - 1);
    }
    return -1;
}

static void table_free(name_table *t)
{
    for (size_t i = 0; i < t->cap; ++i) free(t->slots[i].name);
    free(t->slots);
}

/* ---- config accessors -------------------------------------------------------- */

typedef struct builder {
    const model_file *file;
    model_graph *g;
    const char *layer;   /* layer being built, for messages */
    int depth;           /* model nesting */
} builder;

#define FAIL(b, ...) layer_error(b, __VA_ARGS__)

static cnnc_status layer_error(const builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cnnc_status layer_error(const builder *b, const char *fmt, ...)
{
    char message[400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    return cnnc_error(CNNC_ERR_FORMAT, "model_config: layer \"%.100s\": %s", b->layer ? b->layer : "?", message);
}

static int is_int(const json_value *v) { return v && v->type == JSON_NUMBER && v->is_integer; }

/* An int, or a list of n ints, each in [lo, hi]; absent gives fallback. */
static cnnc_status get_ints(const builder *b, const json_value *cfg, const char *key, int n, int64_t lo, int64_t hi,
                            const int64_t *fallback, int64_t *out)
{
    const json_value *v = json_get(cfg, key);
    if (!v || v->type == JSON_NULL) {
        if (!fallback) return FAIL(b, "missing \"%s\"", key);
        memcpy(out, fallback, (size_t)n * sizeof *out);
        return CNNC_OK;
    }
    if (is_int(v)) {
        for (int k = 0; k < n; ++k) out[k] = v->integer;
    } else if (v->type == JSON_ARRAY && v->count == (size_t)n) {
        for (int k = 0; k < n; ++k) {
            if (!is_int(&v->items[k])) return FAIL(b, "\"%s\" must hold integers", key);
            out[k] = v->items[k].integer;
        }
    } else {
        return FAIL(b, "\"%s\" must be an integer or a list of %d integers", key, n);
    }
    for (int k = 0; k < n; ++k)
        if (out[k] < lo || out[k] > hi) return FAIL(b, "\"%s\" = %lld is out of range", key, (long long)out[k]);
    return CNNC_OK;
}

static cnnc_status get_float(const builder *b, const json_value *cfg, const char *key, double fallback, int nullable,
                             double *out)
{
    const json_value *v = json_get(cfg, key);
    if (!v || (nullable && v->type == JSON_NULL)) { *out = fallback; return CNNC_OK; }
    if (v->type != JSON_NUMBER) return FAIL(b, "\"%s\" must be a number", key);
    *out = v->number;
    return CNNC_OK;
}

static cnnc_status get_bool(const builder *b, const json_value *cfg, const char *key, int fallback, int *out)
{
    const json_value *v = json_get(cfg, key);
    if (!v) { *out = fallback; return CNNC_OK; }
    if (v->type != JSON_BOOL) return FAIL(b, "\"%s\" must be true or false", key);
    *out = v->boolean;
    return CNNC_OK;
}

static const char *get_string(const json_value *cfg, const char *key, const char *fallback)
{
    const json_value *v = json_get(cfg, key);
    if (!v || v->type == JSON_NULL) return fallback;
    return v->type == JSON_STRING ? v->string : NULL;
}

/* ---- graph storage -------------------------------------------------------------- */

/* Room for one more item in a growing array (capacity doubles). */
static cnnc_status reserve(const builder *b, void **array, int count, int *capacity, size_t item)
{
    if (count < *capacity) return CNNC_OK;
    if (*capacity > INT32_MAX / 4) return FAIL(b, "too many layers or tensors");
    int cap = *capacity ? *capacity * 2 : 64;
    void *grown = realloc(*array, (size_t)cap * item);
    if (!grown) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    *array = grown;
    *capacity = cap;
    return CNNC_OK;
}

static cnnc_status new_value(builder *b, int rank, const int64_t *shape_in, int *id)
{
    model_graph *g = b->g;
    int64_t shape[MODEL_MAX_RANK];  /* shape_in may point into the array that grows below */
    if (rank >= 1 && rank <= MODEL_MAX_RANK - 1) memcpy(shape, shape_in, (size_t)rank * sizeof *shape);
    if (rank < 1 || rank > MODEL_MAX_RANK - 1) return FAIL(b, "tensors of rank %d are not supported", rank + 1);
    int64_t size = 1;
    for (int k = 0; k < rank; ++k) {
        if (shape[k] < 1) return FAIL(b, "a tensor would have an empty or negative axis (%lld)", (long long)shape[k]);
        if (shape[k] > MAX_VALUE_ELEMENTS || size > MAX_VALUE_ELEMENTS / shape[k])
            return FAIL(b, "a tensor of more than 2^36 elements per sample is refused");
        size *= shape[k];
    }
    CNNC_TRY(reserve(b, (void **)&g->values, g->n_values, &g->cap_values, sizeof *g->values));
    model_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->rank = rank;
    memcpy(v->shape, shape, (size_t)rank * sizeof *shape);
    v->size = size;
    v->producer = -1;
    v->input_index = -1;
    v->storage = -1;
    *id = g->n_values++;
    return CNNC_OK;
}

/* A node reading inputs[0..n) and writing a new value of the given shape. */
static cnnc_status new_node(builder *b, op_kind op, int n, const int *inputs, int rank, const int64_t *shape,
                            model_node **out)
{
    model_graph *g = b->g;
    int value;
    CNNC_TRY(new_value(b, rank, shape, &value));
    CNNC_TRY(reserve(b, (void **)&g->nodes, g->n_nodes, &g->cap_nodes, sizeof *g->nodes));
    model_node *node = &g->nodes[g->n_nodes];
    memset(node, 0, sizeof *node);
    node->op = op;
    node->output = value;
    node->act.kind = ACT_LINEAR;
    node->act.max_value = -1.0f;
    ++g->n_nodes;
    node->name = strdup(b->layer ? b->layer : "");
    node->inputs = malloc((size_t)(n ? n : 1) * sizeof *node->inputs);
    if (!node->name || !node->inputs) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    memcpy(node->inputs, inputs, (size_t)n * sizeof *inputs);
    node->n_inputs = n;
    g->values[value].producer = g->n_nodes - 1;
    *out = node;
    return CNNC_OK;
}

/* Weight "<prefix><layer>/<short>", checked to be float32 of exactly the given shape. */
static cnnc_status find_weight(builder *b, const char *prefix, const char *short_name, int rank, const int64_t *shape,
                               const file_tensor **out)
{
    char key[1024];
    int len = snprintf(key, sizeof key, "%s%s/%s", prefix, b->layer, short_name);
    if (len < 0 || (size_t)len >= sizeof key) return FAIL(b, "the weight name is too long");
    const file_tensor *t = model_file_find(b->file, key);
    if (!t) return FAIL(b, "the file has no weight \"%.300s\"", key);
    if (!t->is_f32) return FAIL(b, "weight \"%.300s\" is not float32", key);
    int same = t->rank == rank;
    for (int k = 0; same && k < rank; ++k) same = t->shape[k] == shape[k];
    if (!same) return FAIL(b, "weight \"%.300s\" has the wrong shape for the layer", key);
    *out = t;
    return CNNC_OK;
}

/* Copies weight "<prefix><layer>/<short>" of exactly the given shape. */
static cnnc_status get_weight(builder *b, const char *prefix, const char *short_name, int rank, const int64_t *shape,
                              float **out, int64_t *count)
{
    const file_tensor *t;
    CNNC_TRY(find_weight(b, prefix, short_name, rank, shape, &t));
    float *w = cnnc_malloc((size_t)(t->count ? t->count : 1) * sizeof *w);
    if (!w) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory for weight \"%.300s\"", t->name);
    /* The file's little-endian floats, copied byte by byte (they may be unaligned) or read from the file. */
    cnnc_status s = model_file_read(b->file, t, w);
    if (s != CNNC_OK) {
        cnnc_free(w);
        return s;
    }
    *out = w;
    if (count) *count = t->count;
    return CNNC_OK;
}

/* A layer's kernel into node->w: the caller's own array where it lends it
 * (and it is aligned for floats), else a copy. Only kernels are lent: the
 * other weights are small, and plan.c may fold into biases. */
static cnnc_status get_kernel(builder *b, model_node *node, const char *prefix, const char *short_name, int rank,
                              const int64_t *shape)
{
    const file_tensor *t;
    CNNC_TRY(find_weight(b, prefix, short_name, rank, shape, &t));
    if (b->file->borrowable && t->count && (uintptr_t)t->data % sizeof(float) == 0) {
        node->w = (float *)(uintptr_t)t->data;
        node->w_count = t->count;
        node->w_borrowed = 1;
        return CNNC_OK;
    }
    return get_weight(b, prefix, short_name, rank, shape, &node->w, &node->w_count);
}

static const struct { const char *name; act_kind kind; float alpha; } activations[] = {
    {"linear", ACT_LINEAR, 0}, {"none", ACT_LINEAR, 0}, {"relu", ACT_RELU, 0}, {"relu6", ACT_RELU6, 0},
    {"leaky_relu", ACT_LEAKY_RELU, 0.2f}, {"elu", ACT_ELU, 1.0f}, {"selu", ACT_SELU, 0}, {"gelu", ACT_GELU, 0},
    {"sigmoid", ACT_SIGMOID, 0}, {"hard_sigmoid", ACT_HARD_SIGMOID, 0}, {"tanh", ACT_TANH, 0},
    {"softmax", ACT_SOFTMAX, 0}, {"log_softmax", ACT_LOG_SOFTMAX, 0}, {"swish", ACT_SWISH, 0},
    {"silu", ACT_SWISH, 0}, {"softplus", ACT_SOFTPLUS, 0}, {"softsign", ACT_SOFTSIGN, 0},
    {"exponential", ACT_EXPONENTIAL, 0},
};

static cnnc_status get_activation(const builder *b, const json_value *cfg, const char *key, activation *act)
{
    const json_value *v = json_get(cfg, key);
    act->kind = ACT_LINEAR;
    act->max_value = -1.0f;
    if (!v || v->type == JSON_NULL) return CNNC_OK;
    if (v->type != JSON_STRING) return FAIL(b, "\"%s\" must be an activation name", key);
    for (size_t i = 0; i < sizeof activations / sizeof activations[0]; ++i) {
        if (strcmp(v->string, activations[i].name) == 0) {
            act->kind = activations[i].kind;
            act->alpha = activations[i].alpha;
            return CNNC_OK;
        }
    }
    return cnnc_error(CNNC_ERR_UNSUPPORTED, "model_config: layer \"%.100s\": unknown activation \"%.100s\"", b->layer,
                      v->string);
}

static const model_value *value_of(const builder *b, int id) { return &b->g->values[id]; }

static cnnc_status need_rank(const builder *b, int id, int rank, const char *what)
{
    if (value_of(b, id)->rank != rank) return FAIL(b, "expects %s inputs (rank %d with the batch), got rank %d", what, rank + 1, value_of(b, id)->rank + 1);
    return CNNC_OK;
}

/* ---- layers ---------------------------------------------------------------------- */

static const int64_t ONE[2] = {1, 1};

static int padding_mode(const char *p)
{
    if (!p) return -1;
    if (strcmp(p, "valid") == 0) return 0;
    if (strcmp(p, "same") == 0) return 1;
    if (strcmp(p, "causal") == 0) return 2;
    return -1;
}

/* Explicit padding as saved: `spatial` (before, after) pairs, each in [0, limit]. */
static cnnc_status explicit_pairs(const builder *b, const json_value *v, int spatial, int64_t limit, int64_t pads[2][2])
{
    if (v->type != JSON_ARRAY || v->count != (size_t)spatial)
        return FAIL(b, "padding must be \"valid\", \"same\" or %d (before, after) pairs", spatial);
    for (int a = 0; a < spatial; ++a) {
        const json_value *p = &v->items[a];
        if (p->type != JSON_ARRAY || p->count != 2 || !is_int(&p->items[0]) || !is_int(&p->items[1]))
            return FAIL(b, "padding must be (before, after) pairs of integers");
        for (int s = 0; s < 2; ++s) {
            int64_t pad = p->items[s].integer;
            if (pad < 0 || pad > limit) return FAIL(b, "a padding of %lld is out of range", (long long)pad);
            pads[a][s] = pad;
        }
    }
    return CNNC_OK;
}

static cnnc_status conv_layer(builder *b, const char *cls, const json_value *cfg, const char *prefix, int in, int *out)
{
    /* A separable convolution is a depthwise one (no bias, no activation)
     * feeding a pointwise one that carries the bias and the activation. */
    int separable = strncmp(cls, "Separable", 9) == 0;
    int depthwise = separable || strcmp(cls, "DepthwiseConv2D") == 0;
    int one_d = strcmp(cls, "Conv1D") == 0 || strcmp(cls, "SeparableConv1D") == 0;
    int transpose = strcmp(cls, "Conv2DTranspose") == 0;
    int spatial = one_d ? 1 : 2;
    CNNC_TRY(need_rank(b, in, spatial + 1, one_d ? "(N, L, C)" : "(N, H, W, C)"));
    const model_value xv = *value_of(b, in), *x = &xv;
    int64_t k[2], s[2], d[2], groups = 1, filters = 0, mult = 1;
    const int64_t limit = (int64_t)1 << 24;
    CNNC_TRY(get_ints(b, cfg, "kernel_size", spatial, 1, limit, NULL, k));
    CNNC_TRY(get_ints(b, cfg, "strides", spatial, 1, limit, ONE, s));
    CNNC_TRY(get_ints(b, cfg, "dilation_rate", spatial, 1, limit, ONE, d));
    int64_t pointwise_filters = 0;
    if (depthwise) CNNC_TRY(get_ints(b, cfg, "depth_multiplier", 1, 1, limit, ONE, &mult));
    if (separable) CNNC_TRY(get_ints(b, cfg, "filters", 1, 1, limit, NULL, &pointwise_filters));
    else if (!depthwise) CNNC_TRY(get_ints(b, cfg, "filters", 1, 1, limit, NULL, &filters));
    if (!depthwise) CNNC_TRY(get_ints(b, cfg, "groups", 1, 1, limit, ONE, &groups));
    if (transpose && groups != 1) return FAIL(b, "grouped transposed convolutions are not supported");
    const json_value *pv = json_get(cfg, "padding");
    int64_t explicit_pads[2][2] = {{0, 0}, {0, 0}};
    int mode = pv && pv->type == JSON_ARRAY ? 3 : padding_mode(get_string(cfg, "padding", "valid"));
    if (mode < 0 || (mode == 2 && !one_d)) return FAIL(b, "unknown padding");
    if (mode == 3) CNNC_TRY(explicit_pairs(b, pv, spatial, limit, explicit_pads));
    int use_bias = 1;
    CNNC_TRY(get_bool(b, cfg, "use_bias", 1, &use_bias));
    const char *df = get_string(cfg, "data_format", "channels_last");
    if (!df || strcmp(df, "channels_last") != 0) return FAIL(b, "only channels_last is supported");
    int64_t h = one_d ? 1 : x->shape[0], w = one_d ? x->shape[0] : x->shape[1], c = x->shape[spatial];
    int64_t kh = one_d ? 1 : k[0], kw = k[spatial - 1], sh = one_d ? 1 : s[0], sw = s[spatial - 1];
    int64_t dh = one_d ? 1 : d[0], dw = d[spatial - 1];
    cnnc_conv2d_desc desc = {0};
    desc.batch = 1;
    desc.kernel_h = kh; desc.kernel_w = kw; desc.stride_h = sh; desc.stride_w = sw;
    desc.dilation_h = dh; desc.dilation_w = dw;
    int64_t out_shape[3];
    model_node *node = NULL;
    if (!transpose) {
        if (depthwise) {
            if (c > limit / mult) return FAIL(b, "depth_multiplier times the channels is too large");
            groups = c;
            filters = c * mult;
        }
        if (c % groups || filters % groups) return FAIL(b, "groups must divide the input channels and the filters");
        desc.in_h = h; desc.in_w = w; desc.in_channels = c; desc.out_channels = filters; desc.groups = groups;
        if (mode == 1) {
            if (!one_d) CNNC_TRY(cnnc_conv_same_padding(h, kh, sh, dh, &desc.pad_top, &desc.pad_bottom));
            CNNC_TRY(cnnc_conv_same_padding(w, kw, sw, dw, &desc.pad_left, &desc.pad_right));
        } else if (mode == 2) {
            desc.pad_left = (kw - 1) * dw;
        } else if (mode == 3) {
            desc.pad_top = one_d ? 0 : explicit_pads[0][0]; desc.pad_bottom = one_d ? 0 : explicit_pads[0][1];
            desc.pad_left = explicit_pads[spatial - 1][0]; desc.pad_right = explicit_pads[spatial - 1][1];
        }
        int64_t oh, ow;
        if (cnnc_conv2d_output_size(&desc, &oh, &ow) != CNNC_OK) return FAIL(b, "the input is too small for the kernel");
        if (one_d) { out_shape[0] = ow; out_shape[1] = filters; }
        else { out_shape[0] = oh; out_shape[1] = ow; out_shape[2] = filters; }
        CNNC_TRY(new_node(b, OP_CONV, 1, &in, spatial + 1, out_shape, &node));
        int64_t wshape[4] = {kh, kw, c / groups, filters}, dshape[4] = {kh, kw, c, mult};
        if (depthwise && one_d) CNNC_TRY(get_kernel(b, node, prefix, "depthwise_kernel", 3, dshape + 1));
        else if (depthwise) CNNC_TRY(get_kernel(b, node, prefix, "depthwise_kernel", 4, dshape));
        else if (one_d) CNNC_TRY(get_kernel(b, node, prefix, "kernel", 3, wshape + 1));
        else CNNC_TRY(get_kernel(b, node, prefix, "kernel", 4, wshape));
    } else {
        /* Keras's output size, then the forward convolution from that size back to x. */
        int64_t op[2] = {-1, -1};
        const json_value *opv = json_get(cfg, "output_padding");
        if (opv && opv->type != JSON_NULL) CNNC_TRY(get_ints(b, cfg, "output_padding", 2, 0, limit, NULL, op));
        int64_t size[2] = {h, w}, kk[2] = {kh, kw}, ss[2] = {sh, sw}, dd[2] = {dh, dw}, len[2], pad[2][2];
        for (int a = 0; a < 2; ++a) {
            int64_t span = (kk[a] - 1) * dd[a] + 1;
            if (op[a] >= 0 && op[a] >= (ss[a] > dd[a] ? ss[a] : dd[a])) return FAIL(b, "output_padding must be smaller than the strides");
            if (mode == 3) {
                /* (H - 1) s + k - before - after + output_padding, the forward convolution padded as given */
                pad[a][0] = explicit_pads[a][0];
                pad[a][1] = explicit_pads[a][1];
                len[a] = (size[a] - 1) * ss[a] + span - pad[a][0] - pad[a][1] + (op[a] > 0 ? op[a] : 0);
                if (len[a] < 1) return FAIL(b, "the padding leaves no output");
                continue;
            }
            if (mode == 0) len[a] = op[a] < 0 ? size[a] * ss[a] + (span > ss[a] ? span - ss[a] : 0) : (size[a] - 1) * ss[a] + span + op[a];
            else len[a] = op[a] < 0 ? size[a] * ss[a] : (size[a] - 1) * ss[a] + span - 2 * (span / 2) + op[a];
            int64_t total = (size[a] - 1) * ss[a] + span - len[a];
            if (total < 0) total = 0;
            pad[a][0] = mode == 0 ? 0 : total / 2;
            pad[a][1] = mode == 0 ? 0 : total - total / 2;
            if (len[a] < 1) return FAIL(b, "the padding leaves no output");
        }
        desc.in_h = len[0]; desc.in_w = len[1]; desc.in_channels = filters; desc.out_channels = c; desc.groups = 1;
        desc.pad_top = pad[0][0]; desc.pad_bottom = pad[0][1]; desc.pad_left = pad[1][0]; desc.pad_right = pad[1][1];
        int64_t oh, ow;
        if (cnnc_conv2d_output_size(&desc, &oh, &ow) != CNNC_OK || oh != h || ow != w)
            return FAIL(b, "the transposed convolution does not map its output back onto its input");
        out_shape[0] = len[0]; out_shape[1] = len[1]; out_shape[2] = filters;
        CNNC_TRY(new_node(b, OP_CONV_TRANSPOSE, 1, &in, 3, out_shape, &node));
        int64_t wshape[4] = {kh, kw, filters, c};
        CNNC_TRY(get_kernel(b, node, prefix, "kernel", 4, wshape));
    }
    node->conv = desc;
    if (separable) {
        /* The pointwise step: a 1x1 convolution over the depthwise output. */
        cnnc_conv2d_desc pw = {0};
        pw.batch = 1;
        pw.kernel_h = pw.kernel_w = pw.stride_h = pw.stride_w = pw.dilation_h = pw.dilation_w = 1;
        pw.in_h = one_d ? 1 : out_shape[0];
        pw.in_w = out_shape[spatial - 1];
        pw.in_channels = filters;
        pw.out_channels = pointwise_filters;
        pw.groups = 1;
        int mid = node->output;
        out_shape[spatial] = pointwise_filters;
        CNNC_TRY(new_node(b, OP_CONV, 1, &mid, spatial + 1, out_shape, &node));
        int64_t pshape[4] = {1, 1, filters, pointwise_filters};
        CNNC_TRY(get_kernel(b, node, prefix, "pointwise_kernel", spatial + 2, pshape + (one_d ? 1 : 0)));
        node->conv = pw;
        filters = pointwise_filters;
    }
    int64_t bias_shape = filters;
    if (use_bias) CNNC_TRY(get_weight(b, prefix, "bias", 1, &bias_shape, &node->b, &node->b_count));
    CNNC_TRY(get_activation(b, cfg, "activation", &node->act));
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status dense_layer(builder *b, const json_value *cfg, const char *prefix, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    int64_t units, use_shape[MODEL_MAX_RANK];
    CNNC_TRY(get_ints(b, cfg, "units", 1, 1, (int64_t)1 << 30, NULL, &units));
    int use_bias = 1;
    CNNC_TRY(get_bool(b, cfg, "use_bias", 1, &use_bias));
    memcpy(use_shape, x->shape, sizeof use_shape);
    int64_t in_dim = x->shape[x->rank - 1];
    use_shape[x->rank - 1] = units;
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_DENSE, 1, &in, x->rank, use_shape, &node));
    int64_t wshape[2] = {in_dim, units};
    CNNC_TRY(get_kernel(b, node, prefix, "kernel", 2, wshape));
    if (use_bias) CNNC_TRY(get_weight(b, prefix, "bias", 1, &units, &node->b, &node->b_count));
    CNNC_TRY(get_activation(b, cfg, "activation", &node->act));
    node->i[0] = in_dim;
    node->i[1] = units;
    *out = node->output;
    return CNNC_OK;
}

/* A channel axis given Keras-style (negative from the end, counting the batch). */
static cnnc_status last_axis_only(const builder *b, const json_value *cfg, int in)
{
    int64_t axis;
    const int64_t minus_one = -1;
    CNNC_TRY(get_ints(b, cfg, "axis", 1, -64, 64, &minus_one, &axis));
    int rank = value_of(b, in)->rank + 1;
    if (axis != -1 && axis != rank - 1)
        return cnnc_error(CNNC_ERR_UNSUPPORTED, "model_config: layer \"%.100s\": only the last axis is supported", b->layer);
    return CNNC_OK;
}

static cnnc_status batch_norm_layer(builder *b, const json_value *cfg, const char *prefix, int in, int *out)
{
    const json_value *axis = json_get(cfg, "axis");
    if (axis && axis->type == JSON_ARRAY) {
        if (axis->count != 1 || !is_int(&axis->items[0])) return FAIL(b, "axis must be one integer");
        int rank = value_of(b, in)->rank + 1;
        if (axis->items[0].integer != -1 && axis->items[0].integer != rank - 1)
            return cnnc_error(CNNC_ERR_UNSUPPORTED, "model_config: layer \"%.100s\": only the last axis is supported", b->layer);
    } else {
        CNNC_TRY(last_axis_only(b, cfg, in));
    }
    const model_value xv = *value_of(b, in), *x = &xv;
    int64_t c = x->shape[x->rank - 1];
    int center = 1, scale = 1;
    double eps = 1e-3;
    CNNC_TRY(get_bool(b, cfg, "center", 1, &center));
    CNNC_TRY(get_bool(b, cfg, "scale", 1, &scale));
    CNNC_TRY(get_float(b, cfg, "epsilon", 1e-3, 0, &eps));
    if (!(eps > 0) || eps > 1e30) return FAIL(b, "epsilon must be positive");
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_BATCH_NORM, 1, &in, x->rank, x->shape, &node));
    float *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
    cnnc_status s = CNNC_OK;
    if (scale) s = get_weight(b, prefix, "gamma", 1, &c, &gamma, NULL);
    if (s == CNNC_OK && center) s = get_weight(b, prefix, "beta", 1, &c, &beta, NULL);
    if (s == CNNC_OK) s = get_weight(b, prefix, "moving_mean", 1, &c, &mean, NULL);
    if (s == CNNC_OK) s = get_weight(b, prefix, "moving_variance", 1, &c, &var, NULL);
    if (s == CNNC_OK) {
        /* Kept as given; plan.c folds them into a preceding convolution. */
        node->w = gamma; node->b = beta; node->p0 = mean; node->p1 = var;
        node->p_count = c;
        node->f[0] = (float)eps;
        *out = node->output;
        return CNNC_OK;
    }
    cnnc_free(gamma); cnnc_free(beta); cnnc_free(mean); cnnc_free(var);
    return s;
}

static cnnc_status activation_node(builder *b, int in, activation act, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_ACTIVATION, 1, &in, x->rank, x->shape, &node));
    node->act = act;
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status identity_node(builder *b, int in, int rank, const int64_t *shape, int *out)
{
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_IDENTITY, 1, &in, rank, shape, &node));
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status pooling_layer(builder *b, const char *cls, const json_value *cfg, int in, int *out)
{
    int one_d = strstr(cls, "1D") != NULL, avg = strncmp(cls, "Average", 7) == 0 || strncmp(cls, "AvgPool", 7) == 0;
    int spatial = one_d ? 1 : 2;
    CNNC_TRY(need_rank(b, in, spatial + 1, one_d ? "(N, L, C)" : "(N, H, W, C)"));
    const model_value xv = *value_of(b, in), *x = &xv;
    const int64_t limit = (int64_t)1 << 24, ones[2] = {1, 1};
    int64_t k[2], s[2], d[2];
    CNNC_TRY(get_ints(b, cfg, "pool_size", spatial, 1, limit, NULL, k));
    CNNC_TRY(get_ints(b, cfg, "strides", spatial, 1, limit, k, s));
    CNNC_TRY(get_ints(b, cfg, "dilation_rate", spatial, 1, limit, ones, d));
    int ceil_mode = 0, count_include_pad = 0;
    CNNC_TRY(get_bool(b, cfg, "ceil_mode", 0, &ceil_mode));
    CNNC_TRY(get_bool(b, cfg, "count_include_pad", 0, &count_include_pad));
    const char *df = get_string(cfg, "data_format", "channels_last");
    if (!df || strcmp(df, "channels_last") != 0) return FAIL(b, "only channels_last is supported");
    /* Per spatial axis, as BasePooling._pads: the window's extent, the
     * (before, after) padding, and the ceil-mode overhang after it. */
    int64_t n[2], extent[2], pads[2][2] = {{0, 0}, {0, 0}}, over[2] = {0, 0}, outs[2];
    for (int a = 0; a < spatial; ++a) {
        n[a] = x->shape[a];
        extent[a] = (k[a] - 1) * d[a] + 1;
    }
    const json_value *pv = json_get(cfg, "padding");
    int mode = pv && pv->type != JSON_STRING ? 3 : padding_mode(get_string(cfg, "padding", "valid"));
    if (mode < 0 || mode == 2) return FAIL(b, "unknown padding");
    if (mode == 3) {
        CNNC_TRY(explicit_pairs(b, pv, spatial, limit, pads));
        for (int a = 0; a < spatial; ++a)
            if (pads[a][0] >= extent[a] || pads[a][1] >= extent[a]) return FAIL(b, "each pad must be smaller than the pool's extent");
    }
    for (int a = 0; a < spatial; ++a) {
        if (mode == 1) CNNC_TRY(cnnc_pool_same_padding(n[a], extent[a], s[a], &pads[a][0], &pads[a][1]));
        int64_t padded = n[a] + pads[a][0] + pads[a][1];
        if (padded < extent[a]) return FAIL(b, "the input is smaller than the pool");
        if (ceil_mode) {
            int64_t o = (padded - extent[a] + s[a] - 1) / s[a] + 1;
            if ((o - 1) * s[a] >= n[a] + pads[a][0]) --o;  /* no window may start in the end padding */
            int64_t extra = (o - 1) * s[a] + extent[a] - padded;
            over[a] = extra > 0 ? extra : 0;
        }
        outs[a] = (padded + over[a] - extent[a]) / s[a] + 1;
    }
    int dilated = d[0] != 1 || d[spatial - 1] != 1;
    int any_pad = pads[0][0] || pads[0][1] || pads[spatial - 1][0] || pads[spatial - 1][1];
    /* count_include_pad: the explicit zeros are real inputs of the window, so
     * they are materialized first (as the Python layer does). */
    int pre = !dilated && avg && count_include_pad && any_pad;
    int64_t shape[3];
    if (pre) {
        int64_t h = one_d ? 1 : n[0], w = n[spatial - 1], c = x->shape[spatial];
        int64_t top = one_d ? 0 : pads[0][0], bottom = one_d ? 0 : pads[0][1];
        int64_t left = pads[spatial - 1][0], right = pads[spatial - 1][1];
        shape[0] = h + top + bottom; shape[1] = w + left + right; shape[2] = c;
        model_node *padn = NULL;
        CNNC_TRY(new_node(b, OP_PAD, 1, &in, spatial + 1, one_d ? shape + 1 : shape, &padn));
        padn->i[0] = h; padn->i[1] = w; padn->i[2] = c;
        padn->i[3] = top; padn->i[4] = bottom; padn->i[5] = left; padn->i[6] = right;
        in = padn->output;
        for (int a = 0; a < spatial; ++a) { n[a] += pads[a][0] + pads[a][1]; pads[a][0] = pads[a][1] = 0; }
    }
    cnnc_pool2d_params p = {0};
    p.n = 1;
    int r = one_d ? 1 : 0;  /* 1-D pooling runs as 2-D over one row */
    p.h = one_d ? 1 : n[0]; p.w = n[spatial - 1]; p.c = x->shape[spatial];
    p.pool_h = one_d ? 1 : k[0]; p.pool_w = k[spatial - 1];
    p.stride_h = one_d ? 1 : s[0]; p.stride_w = s[spatial - 1];
    p.pad_top = r ? 0 : pads[0][0]; p.pad_bottom = r ? 0 : pads[0][1] + over[0];
    p.pad_left = pads[spatial - 1][0]; p.pad_right = pads[spatial - 1][1] + over[spatial - 1];
    if (!dilated && (p.pad_top >= p.pool_h || p.pad_bottom >= p.pool_h || p.pad_left >= p.pool_w || p.pad_right >= p.pool_w))
        return FAIL(b, "with ceil_mode the padding reaches a whole pool");
    shape[0] = one_d ? 1 : outs[0]; shape[1] = outs[spatial - 1]; shape[2] = p.c;
    if (!dilated) {
        int64_t oh, ow;
        if (cnnc_pool2d_output_size(&p, &oh, &ow) != CNNC_OK || oh != shape[0] || ow != shape[1])
            return FAIL(b, "the input is smaller than the pool");
    }
    model_node *node = NULL;
    op_kind op = dilated ? (avg ? OP_DILATED_AVG_POOL : OP_DILATED_MAX_POOL) : avg ? OP_AVG_POOL : OP_MAX_POOL;
    CNNC_TRY(new_node(b, op, 1, &in, spatial + 1, one_d ? shape + 1 : shape, &node));
    node->pool = p;
    node->i[0] = one_d ? 1 : d[0];
    node->i[1] = d[spatial - 1];
    node->i[2] = count_include_pad;
    node->i[3] = one_d ? 0 : pads[0][0] + pads[0][1];   /* explicit padding, without the overhang */
    node->i[4] = pads[spatial - 1][0] + pads[spatial - 1][1];
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status global_pooling_layer(builder *b, const char *cls, const json_value *cfg, int in, int *out)
{
    int one_d = strstr(cls, "1D") != NULL, avg = strstr(cls, "Av") != NULL;
    int spatial = one_d ? 1 : 2;
    CNNC_TRY(need_rank(b, in, spatial + 1, one_d ? "(N, L, C)" : "(N, H, W, C)"));
    const model_value xv = *value_of(b, in), *x = &xv;
    int keepdims = 0;
    CNNC_TRY(get_bool(b, cfg, "keepdims", 0, &keepdims));
    int64_t c = x->shape[spatial], shape[3] = {1, 1, 1};
    shape[keepdims ? spatial : 0] = c;
    model_node *node = NULL;
    int64_t h = x->shape[0], w = one_d ? 1 : x->shape[1];
    CNNC_TRY(new_node(b, avg ? OP_GLOBAL_AVG_POOL : OP_GLOBAL_MAX_POOL, 1, &in, keepdims ? spatial + 1 : 1, shape, &node));
    node->i[0] = h; node->i[1] = w; node->i[2] = c;
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status merge_layer(builder *b, const char *cls, const json_value *cfg, int n, const int *in, int *out)
{
    static const struct { const char *name; op_kind op; } kinds[] = {
        {"Add", OP_ADD}, {"Subtract", OP_SUBTRACT}, {"Multiply", OP_MULTIPLY}, {"Average", OP_AVERAGE},
        {"Maximum", OP_MAXIMUM}, {"Minimum", OP_MINIMUM}, {"Divide", OP_DIVIDE}};
    (void)cfg;
    op_kind op = OP_ADD;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; ++i) if (strcmp(cls, kinds[i].name) == 0) op = kinds[i].op;
    if (n < 2 || ((op == OP_SUBTRACT || op == OP_DIVIDE) && n != 2)) return FAIL(b, "wrong number of inputs (%d)", n);
    /* NumPy broadcasting of the per-sample shapes, aligned on the right. */
    int rank = 0;
    for (int k = 0; k < n; ++k) if (value_of(b, in[k])->rank > rank) rank = value_of(b, in[k])->rank;
    int64_t shape[MODEL_MAX_RANK];
    for (int d = 0; d < rank; ++d) shape[d] = 1;
    for (int k = 0; k < n; ++k) {
        const model_value *y = value_of(b, in[k]);
        for (int d = 0; d < y->rank; ++d) {
            int64_t size = y->shape[d], *o = &shape[rank - y->rank + d];
            if (size != 1 && *o != 1 && size != *o) return FAIL(b, "the input shapes do not broadcast");
            if (size != 1) *o = size;
        }
    }
    model_node *node = NULL;
    CNNC_TRY(new_node(b, op, n, in, rank, shape, &node));
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status concat_layer(builder *b, const json_value *cfg, int n, const int *in, int *out)
{
    if (n < 2) return FAIL(b, "needs at least 2 inputs");
    const model_value xv = *value_of(b, in[0]), *x = &xv;
    int64_t axis;
    const int64_t minus_one = -1;
    CNNC_TRY(get_ints(b, cfg, "axis", 1, -64, 64, &minus_one, &axis));
    int rank = x->rank + 1;
    if (axis < 0) axis += rank;
    if (axis < 1 || axis >= rank) return FAIL(b, "axis is not a non-batch axis");
    int a = (int)axis - 1;
    int64_t shape[MODEL_MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    shape[a] = 0;
    for (int k = 0; k < n; ++k) {
        const model_value *y = value_of(b, in[k]);
        if (y->rank != x->rank) return FAIL(b, "inputs must have the same rank");
        for (int d = 0; d < x->rank; ++d)
            if (d != a && y->shape[d] != x->shape[d]) return FAIL(b, "inputs must match except on the axis");
        if (shape[a] > MAX_VALUE_ELEMENTS) return FAIL(b, "the result is too large");
        shape[a] += y->shape[a];
    }
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_CONCAT, n, in, x->rank, shape, &node));
    node->widths = malloc((size_t)n * sizeof *node->widths);
    if (!node->widths) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    int64_t rows = 1;
    for (int d = 0; d < a; ++d) rows *= x->shape[d];
    for (int k = 0; k < n; ++k) node->widths[k] = value_of(b, in[k])->size / rows;
    node->i[0] = rows;
    *out = node->output;
    return CNNC_OK;
}

/* Pairs ((top, bottom), (left, right)) or (h, w) or an int, as normalize_pad_pairs. */
static cnnc_status pad_pairs(const builder *b, const json_value *cfg, const char *key, int64_t *out4)
{
    const json_value *v = json_get(cfg, key);
    if (v && v->type == JSON_ARRAY && v->count == 2 && v->items[0].type == JSON_ARRAY) {
        for (int a = 0; a < 2; ++a) {
            const json_value *p = &v->items[a];
            if (p->type != JSON_ARRAY || p->count != 2 || !is_int(&p->items[0]) || !is_int(&p->items[1]) ||
                p->items[0].integer < 0 || p->items[1].integer < 0 || p->items[0].integer > (1 << 24) ||
                p->items[1].integer > (1 << 24))
                return FAIL(b, "\"%s\" must be pairs of non-negative integers", key);
            out4[2 * a] = p->items[0].integer;
            out4[2 * a + 1] = p->items[1].integer;
        }
        return CNNC_OK;
    }
    int64_t hw[2];
    CNNC_TRY(get_ints(b, cfg, key, 2, 0, 1 << 24, NULL, hw));
    out4[0] = out4[1] = hw[0];
    out4[2] = out4[3] = hw[1];
    return CNNC_OK;
}

static cnnc_status pad_crop_layer(builder *b, const char *cls, const json_value *cfg, int in, int *out)
{
    int one_d = strstr(cls, "1D") != NULL, crop = strncmp(cls, "Cropping", 8) == 0;
    CNNC_TRY(need_rank(b, in, one_d ? 2 : 3, one_d ? "(N, L, C)" : "(N, H, W, C)"));
    const model_value xv = *value_of(b, in), *x = &xv;
    int64_t p[4] = {0, 0, 0, 0};
    if (one_d) {
        int64_t lr[2];
        const int64_t fallback[2] = {1, 1};
        CNNC_TRY(get_ints(b, cfg, crop ? "cropping" : "padding", 2, 0, 1 << 24, fallback, lr));
        p[2] = lr[0]; p[3] = lr[1];
    } else {
        CNNC_TRY(pad_pairs(b, cfg, crop ? "cropping" : "padding", p));
    }
    int64_t h = one_d ? 1 : x->shape[0], w = one_d ? x->shape[0] : x->shape[1], c = x->shape[one_d ? 1 : 2];
    int64_t oh = crop ? h - p[0] - p[1] : h + p[0] + p[1], ow = crop ? w - p[2] - p[3] : w + p[2] + p[3];
    if (oh < 1 || ow < 1) return FAIL(b, "the cropping leaves nothing");
    int64_t shape[3] = {oh, ow, c};
    model_node *node = NULL;
    CNNC_TRY(new_node(b, crop ? OP_CROP : OP_PAD, 1, &in, one_d ? 2 : 3, one_d ? shape + 1 : shape, &node));
    node->i[0] = h; node->i[1] = w; node->i[2] = c;
    if (crop) { node->i[3] = p[0]; node->i[4] = p[2]; node->i[5] = oh; node->i[6] = ow; }
    else { node->i[3] = p[0]; node->i[4] = p[1]; node->i[5] = p[2]; node->i[6] = p[3]; }
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status upsample_layer(builder *b, const char *cls, const json_value *cfg, int in, int *out)
{
    int one_d = strstr(cls, "1D") != NULL;
    CNNC_TRY(need_rank(b, in, one_d ? 2 : 3, one_d ? "(N, L, C)" : "(N, H, W, C)"));
    const model_value xv = *value_of(b, in), *x = &xv;
    int64_t size[2] = {1, 1};
    const int64_t two[2] = {2, 2};
    if (one_d) CNNC_TRY(get_ints(b, cfg, "size", 1, 1, 1 << 16, two, size + 1));
    else CNNC_TRY(get_ints(b, cfg, "size", 2, 1, 1 << 16, two, size));
    const char *interp = get_string(cfg, "interpolation", "nearest");
    if (!interp || (strcmp(interp, "nearest") != 0 && strcmp(interp, "bilinear") != 0)) return FAIL(b, "unknown interpolation");
    int64_t h = one_d ? 1 : x->shape[0], w = one_d ? x->shape[0] : x->shape[1], c = x->shape[one_d ? 1 : 2];
    int64_t shape[3] = {h * size[0], w * size[1], c};
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_UPSAMPLE, 1, &in, one_d ? 2 : 3, one_d ? shape + 1 : shape, &node));
    node->i[0] = h; node->i[1] = w; node->i[2] = c; node->i[3] = size[0]; node->i[4] = size[1];
    node->i[5] = strcmp(interp, "bilinear") == 0;
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status reshape_layer(builder *b, const char *cls, const json_value *cfg, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    int64_t shape[MODEL_MAX_RANK];
    if (strcmp(cls, "Flatten") == 0) {
        shape[0] = x->size;
        return identity_node(b, in, 1, shape, out);
    }
    const json_value *t = json_get_array(cfg, "target_shape");
    if (!t || t->count < 1 || t->count > MODEL_MAX_RANK - 1) return FAIL(b, "target_shape must be a list of 1 to 7 integers");
    int inferred = -1;
    int64_t known = 1;
    for (size_t k = 0; k < t->count; ++k) {
        const json_value *d = &t->items[k];
        if (!is_int(d) || (d->integer < 1 && d->integer != -1) || d->integer > MAX_VALUE_ELEMENTS) return FAIL(b, "bad target_shape");
        if (d->integer == -1) {
            if (inferred >= 0) return FAIL(b, "target_shape has two -1");
            inferred = (int)k;
            shape[k] = -1;
            continue;
        }
        shape[k] = d->integer;
        if (known > MAX_VALUE_ELEMENTS / d->integer) return FAIL(b, "target_shape too large");
        known *= d->integer;
    }
    if (inferred >= 0) {
        if (x->size % known) return FAIL(b, "cannot reshape");
        shape[inferred] = x->size / known;
    } else if (known != x->size) {
        return FAIL(b, "cannot reshape %lld values to target_shape", (long long)x->size);
    }
    return identity_node(b, in, (int)t->count, shape, out);
}

static cnnc_status permute_layer(builder *b, const json_value *cfg, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    const json_value *dims = json_get_array(cfg, "dims");
    if (!dims || dims->count != (size_t)x->rank) return FAIL(b, "dims do not match the input rank");
    int seen[MODEL_MAX_RANK] = {0}, perm[MODEL_MAX_RANK];
    int64_t shape[MODEL_MAX_RANK];
    for (int k = 0; k < x->rank; ++k) {
        const json_value *d = &dims->items[k];
        if (!is_int(d) || d->integer < 1 || d->integer > x->rank || seen[d->integer - 1]++) return FAIL(b, "dims must be a permutation of 1..rank");
        perm[k] = (int)d->integer - 1;
        shape[k] = x->shape[perm[k]];
    }
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_PERMUTE, 1, &in, x->rank, shape, &node));
    memcpy(node->perm, perm, sizeof perm);
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status softmax_layer(builder *b, const json_value *cfg, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    int64_t axis;
    const int64_t minus_one = -1;
    CNNC_TRY(get_ints(b, cfg, "axis", 1, -64, 64, &minus_one, &axis));
    int rank = x->rank + 1;
    if (axis < -rank || axis >= rank) return FAIL(b, "axis out of range");
    if (axis < 0) axis += rank;
    if (axis == rank - 1) {
        activation act = {ACT_SOFTMAX, 0, -1.0f, 0, 1.0f, 0.0f, 0.0f, 0.0f};
        return activation_node(b, in, act, out);
    }
    if (axis == 0) return cnnc_error(CNNC_ERR_UNSUPPORTED, "model_config: layer \"%.100s\": softmax over the batch axis", b->layer);
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_SOFTMAX_AXIS, 1, &in, x->rank, x->shape, &node));
    int a = (int)axis - 1;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < a; ++d) outer *= x->shape[d];
    for (int d = a + 1; d < x->rank; ++d) inner *= x->shape[d];
    node->i[0] = outer; node->i[1] = x->shape[a]; node->i[2] = inner;
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status relu_layer(builder *b, const char *cls, const json_value *cfg, int in, int *out)
{
    activation act = {ACT_RELU, 0, -1.0f, 0, 1.0f, 0.0f, 0.0f, 0.0f};
    double v = 0.0;
    if (strcmp(cls, "LeakyReLU") == 0) {
        const json_value *alpha = json_get(cfg, "alpha");
        CNNC_TRY(get_float(b, cfg, alpha && alpha->type == JSON_NUMBER ? "alpha" : "negative_slope", 0.3, 0, &v));
        act.kind = ACT_LEAKY_RELU;
        act.alpha = (float)v;
    } else if (strcmp(cls, "ELU") == 0) {
        CNNC_TRY(get_float(b, cfg, "alpha", 1.0, 0, &v));
        act.kind = ACT_ELU;
        act.alpha = (float)v;
    } else if (strcmp(cls, "ReLU") == 0) {
        double max_value = -1.0, slope = 0.0, threshold = 0.0;
        CNNC_TRY(get_float(b, cfg, "max_value", -1.0, 1, &max_value));
        CNNC_TRY(get_float(b, cfg, "negative_slope", 0.0, 0, &slope));
        CNNC_TRY(get_float(b, cfg, "threshold", 0.0, 0, &threshold));
        if (max_value < 0 && threshold == 0.0) {
            act.kind = slope == 0.0 ? ACT_RELU : ACT_LEAKY_RELU;
            act.alpha = (float)slope;
        } else if (max_value == 6.0 && threshold == 0.0 && slope == 0.0) {
            act.kind = ACT_RELU6;  /* MobileNet's: the vectorized kernel */
        } else {
            act.kind = ACT_RELU_GENERAL;
            act.alpha = (float)slope;
            act.max_value = (float)max_value;
            act.threshold = (float)threshold;
        }
    } else {
        CNNC_TRY(get_activation(b, cfg, "activation", &act));
    }
    return activation_node(b, in, act, out);
}

static cnnc_status rescaling_layer(builder *b, const json_value *cfg, int in, int *out)
{
    double scale, offset = 0.0;
    const json_value *sv = json_get(cfg, "scale");
    if (!sv || sv->type != JSON_NUMBER) return FAIL(b, "scale must be a number");
    scale = sv->number;
    CNNC_TRY(get_float(b, cfg, "offset", 0.0, 0, &offset));
    const model_value xv = *value_of(b, in), *x = &xv;
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_RESCALE, 1, &in, x->rank, x->shape, &node));
    node->f[0] = (float)scale;
    node->f[1] = (float)offset;
    *out = node->output;
    return CNNC_OK;
}

/* A constant of shape cshape (rank cr, aligned on the right of x's shape,
 * each axis 1 or x's) repeated to x's per-sample shape, so that the op runs
 * as a flat loop. */
static cnnc_status broadcast_constant(const builder *b, const model_value *x, int cr, const int64_t *cshape,
                                      const float *c, float **out)
{
    if (cr > x->rank) return FAIL(b, "the constant has more axes than the input");
    for (int d = 0; d < cr; ++d) {
        int64_t xs = x->shape[x->rank - cr + d];
        if (cshape[d] != 1 && cshape[d] != xs) return FAIL(b, "the constant does not broadcast onto the input without enlarging it");
    }
    float *full = cnnc_malloc((size_t)x->size * sizeof *full);
    if (!full) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    for (int64_t e = 0; e < x->size; ++e) {
        int64_t rest = e, src = 0, stride = 1;
        for (int d = x->rank - 1; d >= 0; --d) {
            int64_t idx = rest % x->shape[d];
            rest /= x->shape[d];
            int cd = d - (x->rank - cr);
            if (cd < 0) continue;
            if (cshape[cd] != 1) src += idx * stride;
            stride *= cshape[cd];
        }
        full[e] = c[src];
    }
    *out = full;
    return CNNC_OK;
}

/* The feature axes an "axis" value names (an int, or a list when
 * allow_list; Keras-style, counting the batch axis, negative from the end)
 * as flags over the per-sample axes. */
static cnnc_status feature_axes(const builder *b, const json_value *axis, int rank, int allow_list, int *flags)
{
    memset(flags, 0, MODEL_MAX_RANK * sizeof *flags);
    const json_value *list = axis->type == JSON_ARRAY ? axis : NULL;
    if (list && !allow_list) return FAIL(b, "axis must be one integer");
    size_t n = list ? list->count : 1;
    for (size_t k = 0; k < n; ++k) {
        const json_value *a = list ? &list->items[k] : axis;
        if (!is_int(a) || a->integer < -rank || a->integer >= rank) return FAIL(b, "axis is out of range");
        int64_t ax = a->integer < 0 ? a->integer + rank : a->integer;
        if (ax == 0 || flags[ax - 1]) return FAIL(b, "axis must name distinct non-batch axes");
        flags[ax - 1] = 1;
    }
    return CNNC_OK;
}

/* feature_axes of cfg's "axis", the last axis when it is absent. */
static cnnc_status feature_axes_or_last(const builder *b, const json_value *cfg, int rank, int allow_list, int *flags)
{
    const json_value *axis = json_get(cfg, "axis");
    if (axis) return feature_axes(b, axis, rank, allow_list, flags);
    memset(flags, 0, MODEL_MAX_RANK * sizeof *flags);
    flags[rank - 2] = 1;
    return CNNC_OK;
}

static cnnc_status normalization_layer(builder *b, const json_value *cfg, const char *prefix, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    int keep[MODEL_MAX_RANK] = {0};
    const json_value *axis = json_get(cfg, "axis");
    int rank = x->rank + 1;
    if (axis && axis->type != JSON_NULL) CNNC_TRY(feature_axes(b, axis, rank, 1, keep));
    int64_t stat_shape[MODEL_MAX_RANK];
    for (int d = 0; d < x->rank; ++d) stat_shape[d] = keep[d] ? x->shape[d] : 1;
    int invert = 0;
    CNNC_TRY(get_bool(b, cfg, "invert", 0, &invert));
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_NORMALIZE, 1, &in, x->rank, x->shape, &node));
    float *mean = NULL, *var = NULL;
    cnnc_status s = get_weight(b, prefix, "mean", x->rank, stat_shape, &mean, NULL);
    if (s == CNNC_OK) s = get_weight(b, prefix, "variance", x->rank, stat_shape, &var, NULL);
    /* Broadcast once to the per-sample shape, so the op is a flat loop. */
    if (s == CNNC_OK) s = broadcast_constant(b, x, x->rank, stat_shape, mean, &node->p0);
    if (s == CNNC_OK) s = broadcast_constant(b, x, x->rank, stat_shape, var, &node->p1);
    for (int64_t e = 0; s == CNNC_OK && e < x->size; ++e) {
        float v = node->p1[e];
        if (v != v) { s = FAIL(b, "the Normalization layer has no statistics (adapt was not called)"); break; }
        float sd = sqrtf(v);
        node->p1[e] = sd > 1e-7f ? sd : 1e-7f;
    }
    cnnc_free(mean);
    cnnc_free(var);
    if (s != CNNC_OK) return s;
    node->i[0] = invert;
    node->p_count = x->size;
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status random_crop_layer(builder *b, const json_value *cfg, int in, int *out)
{
    CNNC_TRY(need_rank(b, in, 3, "(N, H, W, C)"));
    const model_value xv = *value_of(b, in), *x = &xv;
    int64_t height, width;
    CNNC_TRY(get_ints(b, cfg, "height", 1, 1, 1 << 24, NULL, &height));
    CNNC_TRY(get_ints(b, cfg, "width", 1, 1, 1 << 24, NULL, &width));
    int64_t h = x->shape[0], w = x->shape[1], c = x->shape[2];
    int64_t shape[3] = {height, width, c};
    if (h == height && w == width) return identity_node(b, in, 3, shape, out);
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_RESIZE, 1, &in, 3, shape, &node));
    /* Keras's smart resize: the largest centred window of the target aspect, bilinear. */
    int64_t crop_h = (int64_t)llround((double)w * (double)height / (double)width);
    int64_t crop_w = (int64_t)llround((double)h * (double)width / (double)height);
    crop_h = crop_h < 1 ? 1 : crop_h > h ? h : crop_h;
    crop_w = crop_w < 1 ? 1 : crop_w > w ? w : crop_w;
    double top = (double)((h - crop_h) / 2), left = (double)((w - crop_w) / 2);
    double sy = (double)crop_h / (double)height, sx = (double)crop_w / (double)width;
    node->f[0] = (float)sx; node->f[1] = 0; node->f[2] = (float)(left + 0.5 * sx - 0.5);
    node->f[3] = 0; node->f[4] = (float)sy; node->f[5] = (float)(top + 0.5 * sy - 0.5);
    node->i[0] = h; node->i[1] = w; node->i[2] = c; node->i[3] = height; node->i[4] = width;
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status clip_layer(builder *b, const char *cls, const json_value *cfg, int in, int *out)
{
    activation act = {ACT_CLIP, 0, -1.0f, 0, 1.0f, 0.0f, -INFINITY, INFINITY};
    double lo = -INFINITY, hi = INFINITY;
    if (strcmp(cls, "HardSigmoid") == 0) {
        double alpha = 0.0, beta = 0.0;
        CNNC_TRY(get_float(b, cfg, "alpha", 1.0 / 6.0, 0, &alpha));
        CNNC_TRY(get_float(b, cfg, "beta", 0.5, 0, &beta));
        if (!isfinite(alpha) || !isfinite(beta)) return FAIL(b, "alpha and beta must be finite");
        act.scale = (float)alpha;
        act.offset = (float)beta;
        lo = 0.0;
        hi = 1.0;
    } else {
        CNNC_TRY(get_float(b, cfg, "min_value", -INFINITY, 1, &lo));
        CNNC_TRY(get_float(b, cfg, "max_value", INFINITY, 1, &hi));
        if (lo != lo || hi != hi || (float)lo > (float)hi) return FAIL(b, "min_value must not exceed max_value");
    }
    act.lo = (float)lo;
    act.hi = (float)hi;
    /* Clip(0, m) is a ReLU with a cap: the kind a convolution's output stage applies. */
    if (act.scale == 1.0f && act.offset == 0.0f && act.lo == 0.0f && act.hi >= 0.0f) {
        activation relu = {ACT_RELU, 0, -1.0f, 0, 1.0f, 0.0f, 0.0f, 0.0f};
        if (act.hi == 6.0f) relu.kind = ACT_RELU6;
        else if (act.hi != INFINITY) { relu.kind = ACT_RELU_GENERAL; relu.max_value = act.hi; }
        act = relu;
    }
    return activation_node(b, in, act, out);
}

static cnnc_status prelu_layer(builder *b, const json_value *cfg, const char *prefix, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    int64_t shape[MODEL_MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    const json_value *axes = json_get(cfg, "shared_axes");
    if (axes && axes->type != JSON_NULL) {
        const json_value *list = axes->type == JSON_ARRAY ? axes : NULL;
        size_t count = list ? list->count : 1;
        if (count > MODEL_MAX_RANK) return FAIL(b, "too many shared_axes");
        for (size_t k = 0; k < count; ++k) {
            const json_value *a = list ? &list->items[k] : axes;
            if (!is_int(a) || a->integer < 1 || a->integer > x->rank) return FAIL(b, "shared_axes must name non-batch axes");
            shape[a->integer - 1] = 1;
        }
    }
    float *alpha = NULL;
    CNNC_TRY(get_weight(b, prefix, "alpha", x->rank, shape, &alpha, NULL));
    model_node *node = NULL;
    cnnc_status s = new_node(b, OP_PRELU, 1, &in, x->rank, x->shape, &node);
    if (s == CNNC_OK) s = broadcast_constant(b, x, x->rank, shape, alpha, &node->p0);
    cnnc_free(alpha);
    if (s != CNNC_OK) return s;
    node->p_count = x->size;
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status constant_arithmetic_layer(builder *b, const json_value *cfg, const char *prefix, int in, int *out)
{
    static const struct { const char *name; op_kind op; } kinds[] = {
        {"add", OP_ADD}, {"subtract", OP_SUBTRACT}, {"multiply", OP_MULTIPLY}, {"divide", OP_DIVIDE},
        {"maximum", OP_MAXIMUM}, {"minimum", OP_MINIMUM}};
    const char *name = get_string(cfg, "operation", NULL);
    int op = -1;
    for (size_t k = 0; name && k < sizeof kinds / sizeof kinds[0]; ++k) if (strcmp(name, kinds[k].name) == 0) op = (int)kinds[k].op;
    if (op < 0) return FAIL(b, "unknown operation");
    int reverse = 0;
    CNNC_TRY(get_bool(b, cfg, "reverse", 0, &reverse));
    const model_value xv = *value_of(b, in), *x = &xv;
    const json_value *cs = json_get_array(cfg, "constant_shape");
    if (!cs || cs->count > (size_t)x->rank) return FAIL(b, "constant_shape must list at most as many axes as the input");
    int64_t shape[MODEL_MAX_RANK];
    for (size_t k = 0; k < cs->count; ++k) {
        const json_value *d = &cs->items[k];
        if (!is_int(d) || d->integer < 1 || d->integer > MAX_VALUE_ELEMENTS) return FAIL(b, "constant_shape must hold positive sizes");
        shape[k] = d->integer;
    }
    int cr = (int)cs->count;
    if (cr == 0) { cr = 1; shape[0] = 1; }  /* the file stores a scalar as one element */
    float *c = NULL;
    CNNC_TRY(get_weight(b, prefix, "constant", cr, shape, &c, NULL));
    model_node *node = NULL;
    cnnc_status s = new_node(b, OP_CONST_BINARY, 1, &in, x->rank, x->shape, &node);
    if (s == CNNC_OK) s = broadcast_constant(b, x, cr, shape, c, &node->p0);
    cnnc_free(c);
    if (s != CNNC_OK) return s;
    /* maximum and minimum are symmetric; Python's layer ignores reverse for them. */
    node->i[0] = op;
    node->i[1] = reverse && (op == OP_SUBTRACT || op == OP_DIVIDE);
    node->p_count = x->size;
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status pad_layer(builder *b, const json_value *cfg, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    const json_value *pads = json_get_array(cfg, "paddings");
    if (!pads || pads->count != (size_t)x->rank) return FAIL(b, "paddings must hold one (before, after) pair per non-batch axis");
    const char *mode = get_string(cfg, "mode", "constant");
    int m = !mode ? -1 : strcmp(mode, "constant") == 0 ? 0 : strcmp(mode, "reflect") == 0 ? 1 : strcmp(mode, "edge") == 0 ? 2 : -1;
    if (m < 0) return FAIL(b, "mode must be constant, reflect or edge");
    double value = 0.0;
    CNNC_TRY(get_float(b, cfg, "constant_value", 0.0, 0, &value));
    int64_t widths[2 * MODEL_MAX_RANK], shape[MODEL_MAX_RANK];
    for (int d = 0; d < x->rank; ++d) {
        const json_value *p = &pads->items[d];
        if (p->type != JSON_ARRAY || p->count != 2 || !is_int(&p->items[0]) || !is_int(&p->items[1]))
            return FAIL(b, "paddings must be (before, after) pairs of integers");
        for (int s = 0; s < 2; ++s) {
            int64_t w = p->items[s].integer;
            if (w < 0 || w > ((int64_t)1 << 24)) return FAIL(b, "a padding of %lld is out of range", (long long)w);
            if (m == 1 && w >= x->shape[d]) return FAIL(b, "reflect padding must be smaller than the axis");
            widths[2 * d + s] = w;
        }
        shape[d] = x->shape[d] + widths[2 * d] + widths[2 * d + 1];
    }
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_PAD_ND, 1, &in, x->rank, shape, &node));
    node->widths = malloc((size_t)(2 * x->rank) * sizeof *node->widths);
    if (!node->widths) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    memcpy(node->widths, widths, (size_t)(2 * x->rank) * sizeof *widths);
    node->i[0] = m;
    node->f[0] = (float)value;
    *out = node->output;
    return CNNC_OK;
}

/* epsilon, center and scale of LayerNormalization and GroupNormalization,
 * and their gamma and beta of the given shape. */
static cnnc_status affine_norm_params(builder *b, const json_value *cfg, const char *prefix, int rank,
                                      const int64_t *shape, model_node *node)
{
    double eps = 1e-3;
    int center = 1, scale = 1;
    CNNC_TRY(get_float(b, cfg, "epsilon", 1e-3, 0, &eps));
    if (!(eps > 0) || eps > 1e30) return FAIL(b, "epsilon must be positive");
    CNNC_TRY(get_bool(b, cfg, "center", 1, &center));
    CNNC_TRY(get_bool(b, cfg, "scale", 1, &scale));
    node->f[0] = (float)eps;
    if (scale) CNNC_TRY(get_weight(b, prefix, "gamma", rank, shape, &node->w, &node->w_count));
    if (center) CNNC_TRY(get_weight(b, prefix, "beta", rank, shape, &node->b, &node->b_count));
    return CNNC_OK;
}

static cnnc_status layer_norm_layer(builder *b, const json_value *cfg, const char *prefix, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    int flags[MODEL_MAX_RANK];
    CNNC_TRY(feature_axes_or_last(b, cfg, x->rank + 1, 1, flags));
    int first = -1, last = -1, count = 0;
    int64_t shape[MODEL_MAX_RANK];
    for (int d = 0; d < x->rank; ++d) {
        if (!flags[d]) continue;
        if (first < 0) first = d;
        last = d;
        shape[count++] = x->shape[d];
    }
    if (count == 0) return FAIL(b, "axis must name at least one axis");
    if (last - first + 1 != count)
        return cnnc_error(CNNC_ERR_UNSUPPORTED, "model_config: layer \"%.100s\": LayerNormalization over axes that are "
                          "not adjacent is not run by the C model runtime", b->layer);
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_LAYER_NORM, 1, &in, x->rank, x->shape, &node));
    node->i[0] = node->i[1] = node->i[2] = 1;
    for (int d = 0; d < x->rank; ++d) node->i[d < first ? 0 : d <= last ? 1 : 2] *= x->shape[d];
    CNNC_TRY(affine_norm_params(b, cfg, prefix, count, shape, node));
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status group_norm_layer(builder *b, const json_value *cfg, const char *prefix, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    int flags[MODEL_MAX_RANK];
    CNNC_TRY(feature_axes_or_last(b, cfg, x->rank + 1, 0, flags));
    int axis = 0;
    while (!flags[axis]) ++axis;
    int64_t groups, channels = x->shape[axis];
    CNNC_TRY(get_ints(b, cfg, "groups", 1, 1, MAX_VALUE_ELEMENTS, NULL, &groups));
    if (channels % groups) return FAIL(b, "%lld channels cannot be split into %lld groups", (long long)channels, (long long)groups);
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_GROUP_NORM, 1, &in, x->rank, x->shape, &node));
    node->i[0] = node->i[2] = 1;
    for (int d = 0; d < x->rank; ++d) if (d != axis) node->i[d < axis ? 0 : 2] *= x->shape[d];
    node->i[1] = channels;
    node->i[3] = groups;
    CNNC_TRY(affine_norm_params(b, cfg, prefix, 1, &channels, node));
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status affine_grid_layer(builder *b, const json_value *cfg, int in, int *out)
{
    const model_value *x = value_of(b, in);
    if (x->size != 6 || !(x->rank == 1 || (x->rank == 2 && x->shape[0] == 2)))
        return FAIL(b, "expects theta of shape (N, 6) or (N, 2, 3)");
    int64_t shape[3] = {0, 0, 2};
    CNNC_TRY(get_ints(b, cfg, "height", 1, 1, 1 << 24, NULL, &shape[0]));
    CNNC_TRY(get_ints(b, cfg, "width", 1, 1, 1 << 24, NULL, &shape[1]));
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_AFFINE_GRID, 1, &in, 3, shape, &node));
    node->i[0] = shape[0];
    node->i[1] = shape[1];
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status bilinear_sampler_layer(builder *b, int n, const int *in, int *out)
{
    if (n != 2) return FAIL(b, "must be called on [images, grid], got %d inputs", n);
    const model_value *images = value_of(b, in[0]), *grid = value_of(b, in[1]);
    if (images->rank != 3 || grid->rank != 3 || grid->shape[2] != 2)
        return FAIL(b, "expects images (N, H, W, C) and a grid (N, OH, OW, 2)");
    int64_t shape[3] = {grid->shape[0], grid->shape[1], images->shape[2]};
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_GRID_SAMPLE, 2, in, 3, shape, &node));
    *out = node->output;
    return CNNC_OK;
}

static cnnc_status embedding_layer(builder *b, const json_value *cfg, const char *prefix, int in, int *out)
{
    const model_value xv = *value_of(b, in), *x = &xv;
    /* float32 holds every integer up to 2^24 exactly, so no larger table can be indexed */
    int64_t dims[2];
    CNNC_TRY(get_ints(b, cfg, "input_dim", 1, 1, (int64_t)1 << 24, NULL, &dims[0]));
    CNNC_TRY(get_ints(b, cfg, "output_dim", 1, 1, MAX_VALUE_ELEMENTS, NULL, &dims[1]));
    if (x->rank + 1 > MODEL_MAX_RANK - 1) return FAIL(b, "the output would have more than %d axes", MODEL_MAX_RANK);
    int64_t shape[MODEL_MAX_RANK];
    memcpy(shape, x->shape, (size_t)x->rank * sizeof *shape);
    shape[x->rank] = dims[1];
    model_node *node = NULL;
    CNNC_TRY(new_node(b, OP_EMBEDDING, 1, &in, x->rank + 1, shape, &node));
    CNNC_TRY(get_kernel(b, node, prefix, "embeddings", 2, dims));
    node->i[0] = dims[0];
    node->i[1] = dims[1];
    *out = node->output;
    return CNNC_OK;
}

static int one_of(const char *cls, const char *const *names)
{
    for (; *names; ++names) if (strcmp(cls, *names) == 0) return 1;
    return 0;
}

static cnnc_status build_model(builder *b, const json_value *entry, const char *prefix, int n_in, const int *in,
                               int *n_out, int **outs);

/* One layer call: n inputs -> *out (a model call may give several: outs). */
static cnnc_status add_layer(builder *b, const json_value *entry, const char *prefix, int n, const int *in,
                             int *n_out, int **outs)
{
    const char *cls = json_get_string(entry, "class_name");
    const json_value *cfg = json_get_object(entry, "config");
    if (!cls || !cfg) return FAIL(b, "a layer entry needs class_name and config");
    if (one_of(cls, (const char *const[]){"Sequential", "Functional", "Model", NULL}))
        return build_model(b, entry, prefix, n, in, n_out, outs);
    int *single = malloc(sizeof *single);
    if (!single) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    *outs = single;
    *n_out = 1;
    if (strcmp(cls, "BilinearSampler") == 0) return bilinear_sampler_layer(b, n, in, single);
    int multi = one_of(cls, (const char *const[]){"Add", "Subtract", "Multiply", "Divide", "Average", "Maximum", "Minimum", "Concatenate", NULL});
    if (!multi && n != 1) return FAIL(b, "%s takes one input, got %d", cls, n);
    int x = in[0];
    if (one_of(cls, (const char *const[]){"Conv1D", "Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Convolution1D", "Convolution2D",
                                          "SeparableConv1D", "SeparableConv2D", NULL}))
        return conv_layer(b, strncmp(cls, "Convolution", 11) == 0 ? (cls[11] == '1' ? "Conv1D" : "Conv2D") : cls, cfg, prefix, x, single);
    if (one_of(cls, (const char *const[]){"SeparableConvolution1D", "SeparableConvolution2D", NULL}))
        return conv_layer(b, cls[20] == '1' ? "SeparableConv1D" : "SeparableConv2D", cfg, prefix, x, single);
    if (strcmp(cls, "Dense") == 0) return dense_layer(b, cfg, prefix, x, single);
    if (one_of(cls, (const char *const[]){"BatchNormalization", "SyncBatchNormalization", NULL})) return batch_norm_layer(b, cfg, prefix, x, single);
    if (one_of(cls, (const char *const[]){"MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D", NULL}))
        return pooling_layer(b, cls, cfg, x, single);
    if (one_of(cls, (const char *const[]){"GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D", NULL}))
        return global_pooling_layer(b, cls, cfg, x, single);
    if (strcmp(cls, "Concatenate") == 0) return concat_layer(b, cfg, n, in, single);
    if (multi) return merge_layer(b, cls, cfg, n, in, single);
    if (one_of(cls, (const char *const[]){"Flatten", "Reshape", NULL})) return reshape_layer(b, cls, cfg, x, single);
    if (strcmp(cls, "Permute") == 0) return permute_layer(b, cfg, x, single);
    if (strcmp(cls, "Softmax") == 0) return softmax_layer(b, cfg, x, single);
    if (one_of(cls, (const char *const[]){"Activation", "ReLU", "LeakyReLU", "ELU", NULL})) return relu_layer(b, cls, cfg, x, single);
    if (one_of(cls, (const char *const[]){"ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", NULL}))
        return pad_crop_layer(b, cls, cfg, x, single);
    if (one_of(cls, (const char *const[]){"UpSampling1D", "UpSampling2D", NULL})) return upsample_layer(b, cls, cfg, x, single);
    if (strcmp(cls, "Rescaling") == 0) return rescaling_layer(b, cfg, x, single);
    if (strcmp(cls, "Normalization") == 0) return normalization_layer(b, cfg, prefix, x, single);
    if (strcmp(cls, "RandomCrop") == 0) return random_crop_layer(b, cfg, x, single);
    if (one_of(cls, (const char *const[]){"Clip", "HardSigmoid", NULL})) return clip_layer(b, cls, cfg, x, single);
    if (strcmp(cls, "PReLU") == 0) return prelu_layer(b, cfg, prefix, x, single);
    if (strcmp(cls, "ConstantArithmetic") == 0) return constant_arithmetic_layer(b, cfg, prefix, x, single);
    if (strcmp(cls, "Pad") == 0) return pad_layer(b, cfg, x, single);
    if (strcmp(cls, "LayerNormalization") == 0) return layer_norm_layer(b, cfg, prefix, x, single);
    if (strcmp(cls, "GroupNormalization") == 0) return group_norm_layer(b, cfg, prefix, x, single);
    if (strcmp(cls, "AffineGridGenerator") == 0) return affine_grid_layer(b, cfg, x, single);
    if (strcmp(cls, "Embedding") == 0) return embedding_layer(b, cfg, prefix, x, single);
    /* Identity at inference. */
    if (one_of(cls, (const char *const[]){"Dropout", "SpatialDropout1D", "SpatialDropout2D", "RandomFlip", "RandomRotation",
                                          "RandomTranslation", "RandomZoom", "RandomBrightness", "RandomContrast", "RandomErasing", NULL})) {
        const model_value *v = value_of(b, x);
        int64_t shape[MODEL_MAX_RANK];
        memcpy(shape, v->shape, sizeof shape);
        return identity_node(b, x, v->rank, shape, single);
    }
    return cnnc_error(CNNC_ERR_UNSUPPORTED, "model_config: layer \"%.100s\": the C model runtime does not know layer class \"%.100s\"",
                      b->layer ? b->layer : "?", cls);
}

/* The per-sample shape of an InputLayer config (batch_shape without its first axis). */
static cnnc_status input_shape(builder *b, const json_value *shape_list, int *rank, int64_t *shape)
{
    if (!shape_list || shape_list->type != JSON_ARRAY || shape_list->count < 2 || shape_list->count > MODEL_MAX_RANK)
        return FAIL(b, "the input shape must list 2 to 8 axes (with the batch)");
    *rank = (int)shape_list->count - 1;
    for (int k = 0; k < *rank; ++k) {
        const json_value *d = &shape_list->items[k + 1];
        if (!is_int(d) || d->integer < 1) return FAIL(b, "every input axis but the batch must be a positive integer");
        shape[k] = d->integer;
    }
    return CNNC_OK;
}

static cnnc_status check_same_shape(builder *b, int value, int rank, const int64_t *shape)
{
    const model_value *v = value_of(b, value);
    if (v->rank != rank || memcmp(v->shape, shape, (size_t)rank * sizeof *shape) != 0)
        return FAIL(b, "the nested model's input shape differs from the tensor it is called on");
    return CNNC_OK;
}

static cnnc_status new_input(builder *b, int rank, const int64_t *shape, int *value)
{
    CNNC_TRY(new_value(b, rank, shape, value));
    model_graph *g = b->g;
    int *inputs = realloc(g->input_values, (size_t)(g->n_inputs + 1) * sizeof *inputs);
    if (!inputs) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    g->input_values = inputs;
    g->values[*value].input_index = g->n_inputs;
    inputs[g->n_inputs++] = *value;
    return CNNC_OK;
}

static char *join_prefix(const char *prefix, const char *name)
{
    size_t a = strlen(prefix), c = strlen(name);
    char *s = malloc(a + c + 2);
    if (!s) return NULL;
    memcpy(s, prefix, a);
    memcpy(s + a, name, c);
    s[a + c] = '/';
    s[a + c + 1] = '\0';
    return s;
}

static cnnc_status build_sequential(builder *b, const json_value *cfg, const char *prefix, int n_in, const int *in,
                                    int *n_out, int **outs)
{
    const json_value *layers = json_get_array(cfg, "layers");
    if (!layers) return FAIL(b, "a Sequential config needs layers");
    const json_value *bis = json_get(cfg, "batch_input_shape");
    int rank = 0, x;
    int64_t shape[MODEL_MAX_RANK];
    if (bis && bis->type != JSON_NULL) CNNC_TRY(input_shape(b, bis, &rank, shape));
    if (n_in < 0) {
        if (!rank) return FAIL(b, "a Sequential model saved without an input shape cannot be run");
        CNNC_TRY(new_input(b, rank, shape, &x));
    } else {
        if (n_in != 1) return FAIL(b, "a Sequential model takes one input");
        x = in[0];
        if (rank) CNNC_TRY(check_same_shape(b, x, rank, shape));
    }
    for (size_t k = 0; k < layers->count; ++k) {
        const json_value *entry = &layers->items[k];
        const json_value *lcfg = json_get_object(entry, "config");
        const char *name = json_get_string(lcfg, "name");
        if (!name) return FAIL(b, "a layer of the Sequential model has no name");
        b->layer = name;
        int count = 0, *o = NULL;
        cnnc_status s = add_layer(b, entry, prefix, 1, &x, &count, &o);
        if (s == CNNC_OK && count != 1) s = FAIL(b, "a layer of a Sequential model must have one output");
        if (s == CNNC_OK) x = o[0];
        free(o);
        if (s != CNNC_OK) return s;
    }
    int *result = malloc(sizeof *result);
    if (!result) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    result[0] = x;
    *outs = result;
    *n_out = 1;
    return CNNC_OK;
}

/* [name, node, index] of inbound_nodes / input_layers / output_layers. */
static cnnc_status tensor_ref(builder *b, const json_value *ref, const char **name, int *index)
{
    if (!ref || ref->type != JSON_ARRAY || ref->count != 3 || ref->items[0].type != JSON_STRING || !is_int(&ref->items[1]) ||
        !is_int(&ref->items[2]) || ref->items[2].integer < 0 || ref->items[2].integer > INT32_MAX)
        return FAIL(b, "a tensor reference must be [layer name, node index, tensor index]");
    *name = ref->items[0].string;
    *index = (int)ref->items[2].integer;
    return CNNC_OK;
}

static cnnc_status build_functional(builder *b, const json_value *cfg, const char *prefix, int n_in, const int *in,
                                    int *n_out, int **outs)
{
    const json_value *layers = json_get_array(cfg, "layers");
    const json_value *inputs = json_get_array(cfg, "input_layers");
    const json_value *outputs = json_get_array(cfg, "output_layers");
    if (!layers || !inputs || !outputs || !inputs->count || !outputs->count)
        return FAIL(b, "a functional config needs layers, input_layers and output_layers");
    if (n_in >= 0 && (size_t)n_in != inputs->count) return FAIL(b, "the nested model is called on %d tensors but has %zu inputs", n_in, inputs->count);
    name_table table = {0};
    cnnc_status s = CNNC_OK;
    int *args = NULL;
    for (size_t k = 0; k < layers->count && s == CNNC_OK; ++k) {
        const json_value *entry = &layers->items[k];
        const char *name = json_get_string(entry, "name");
        if (!name) name = json_get_string(json_get_object(entry, "config"), "name");
        if (!name) { s = FAIL(b, "a layer has no name"); break; }
        b->layer = name;
        const json_value *inbound = json_get_array(entry, "inbound_nodes");
        if (!inbound || inbound->count == 0) {
            /* An InputLayer: a model input, or the tensor a nested model is called on. */
            const char *cls = json_get_string(entry, "class_name");
            if (!cls || strcmp(cls, "InputLayer") != 0) { s = FAIL(b, "only an InputLayer may have no inbound tensors"); break; }
            const json_value *lcfg = json_get_object(entry, "config");
            const json_value *shape = json_get(lcfg, "batch_shape");
            if (!shape) shape = json_get(lcfg, "batch_input_shape");
            int rank, value = -1;
            int64_t dims[MODEL_MAX_RANK];
            if ((s = input_shape(b, shape, &rank, dims)) != CNNC_OK) break;
            if (n_in < 0) {
                s = new_input(b, rank, dims, &value);
            } else {
                for (size_t i = 0; i < inputs->count; ++i) {
                    const char *iname = NULL;
                    int idx = 0;
                    if ((s = tensor_ref(b, &inputs->items[i], &iname, &idx)) != CNNC_OK) break;
                    if (strcmp(iname, name) == 0) value = in[i];
                }
                if (s == CNNC_OK && value < 0) s = FAIL(b, "an InputLayer that is not among the model's input_layers");
                if (s == CNNC_OK) s = check_same_shape(b, value, rank, dims);
            }
            if (s == CNNC_OK) s = table_put(&table, name, 0, value);
            continue;
        }
        const json_value *call = &inbound->items[0];
        if (inbound->count != 1 || call->type != JSON_ARRAY || call->count < 1) { s = FAIL(b, "inbound_nodes must hold one call"); break; }
        free(args);
        args = malloc(call->count * sizeof *args);
        if (!args) { s = cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory"); break; }
        for (size_t i = 0; i < call->count && s == CNNC_OK; ++i) {
            const char *iname = NULL;
            int idx = 0;
            if ((s = tensor_ref(b, &call->items[i], &iname, &idx)) != CNNC_OK) break;
            args[i] = table_get(&table, iname, idx);
            if (args[i] < 0) s = FAIL(b, "calls the unknown tensor \"%.100s\" (layers must be in topological order)", iname);
        }
        if (s != CNNC_OK) break;
        int count = 0, *o = NULL;
        s = add_layer(b, entry, prefix, (int)call->count, args, &count, &o);
        b->layer = name;
        for (int i = 0; i < count && s == CNNC_OK; ++i) s = table_put(&table, name, i, o[i]);
        free(o);
    }
    free(args);
    int *result = NULL;
    if (s == CNNC_OK) {
        result = malloc(outputs->count * sizeof *result);
        if (!result) s = cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
        for (size_t i = 0; i < outputs->count && s == CNNC_OK; ++i) {
            const char *oname = NULL;
            int idx = 0;
            if ((s = tensor_ref(b, &outputs->items[i], &oname, &idx)) != CNNC_OK) break;
            result[i] = table_get(&table, oname, idx);
            if (result[i] < 0) s = FAIL(b, "output_layers names the unknown tensor \"%.100s\"", oname);
        }
    }
    table_free(&table);
    if (s != CNNC_OK) { free(result); return s; }
    *outs = result;
    *n_out = (int)outputs->count;
    return CNNC_OK;
}

static cnnc_status build_model(builder *b, const json_value *entry, const char *prefix, int n_in, const int *in,
                               int *n_out, int **outs)
{
    const char *cls = json_get_string(entry, "class_name");
    const json_value *cfg = json_get_object(entry, "config");
    if (!cls || !cfg) return cnnc_error(CNNC_ERR_FORMAT, "model_config: needs class_name and config");
    if (b->depth >= 16) return cnnc_error(CNNC_ERR_FORMAT, "model_config: models nested more than 16 deep");
    const char *name = json_get_string(cfg, "name");
    /* The top model's weights carry no prefix; a nested one's carry its name. */
    char *inner = n_in < 0 ? strdup(prefix) : join_prefix(prefix, name ? name : "");
    if (!inner) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    ++b->depth;
    cnnc_status s = strcmp(cls, "Sequential") == 0 ? build_sequential(b, cfg, inner, n_in, in, n_out, outs)
                                                   : build_functional(b, cfg, inner, n_in, in, n_out, outs);
    --b->depth;
    free(inner);
    return s;
}

cnnc_status graph_build(const model_file *file, model_graph *graph)
{
    memset(graph, 0, sizeof *graph);
    builder b = {file, graph, NULL, 0};
    const char *cls = json_get_string(file->config, "class_name");
    if (!cls || (strcmp(cls, "Sequential") != 0 && strcmp(cls, "Functional") != 0 && strcmp(cls, "Model") != 0))
        return cnnc_error(CNNC_ERR_FORMAT, "model_config: the top level must be a Sequential or Functional model");
    int n_out = 0, *outs = NULL;
    cnnc_status s = build_model(&b, file->config, "", -1, NULL, &n_out, &outs);
    if (s != CNNC_OK) {
        free(outs);
        graph_free(graph);
        return s;
    }
    graph->output_values = outs;
    graph->n_outputs = n_out;
    return CNNC_OK;
}

void graph_free(model_graph *graph)
{
    for (int i = 0; i < graph->n_nodes; ++i) {
        model_node *n = &graph->nodes[i];
        free(n->name);
        free(n->inputs);
        free(n->widths);
        if (!n->w_borrowed) cnnc_free(n->w);
        free(n->fold);
        cnnc_free(n->b);
        cnnc_free(n->p0);
        cnnc_free(n->p1);
        cnnc_gemm_packed_b_free(n->packed);
        free(n->packed);
        cnnc_conv_packed_free(&n->conv_packed);
    }
    free(graph->nodes);
    free(graph->values);
    free(graph->input_values);
    free(graph->output_values);
    memset(graph, 0, sizeof *graph);
}
