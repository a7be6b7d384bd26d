/* Graph rewriting and buffer planning; see plan.h. */
#include <math.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include "plan.h"

#define OUTPUT_USE INT32_MAX

static void count_uses(model_graph *g)
{
    for (int v = 0; v < g->n_values; ++v) { g->values[v].consumers = 0; g->values[v].last_use = -1; }
    for (int i = 0; i < g->n_nodes; ++i)
        for (int k = 0; k < g->nodes[i].n_inputs; ++k) {
            model_value *v = &g->values[g->nodes[i].inputs[k]];
            ++v->consumers;
            v->last_use = i;
        }
    for (int k = 0; k < g->n_outputs; ++k) g->values[g->output_values[k]].last_use = OUTPUT_USE;
}

/* The node computing value v, looking through identity nodes (reshapes,
 * folded layers) whose tensors nothing else reads; -1 if none qualifies. */
static int sole_producer(const model_graph *g, int v)
{
    for (;;) {
        const model_value *val = &g->values[v];
        if (val->consumers != 1 || val->last_use == OUTPUT_USE || val->producer < 0) return -1;
        const model_node *p = &g->nodes[val->producer];
        if (p->op != OP_IDENTITY) return val->producer;
        v = p->inputs[0];
    }
}

/* n's weights with its pending fold applied, into w (n->w_count floats). */
static void fold_into(const model_node *n, float *w)
{
    int64_t c = n->op == OP_DENSE ? n->i[1] : n->conv.out_channels;
    /* Channel fastest, as in the fold itself: the same products, rounded once. */
    for (int64_t i = 0; i < n->w_count; i += c)
        for (int64_t o = 0; o < c; ++o) w[i + o] = (float)(n->w[i + o] * n->fold[o]);
}

cnnc_status plan_folded_weights(const model_node *n, float **folded)
{
    float *w = cnnc_malloc((size_t)(n->w_count ? n->w_count : 1) * sizeof *w);
    if (!w) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory folding layer \"%.100s\"", n->name);
    fold_into(n, w);
    *folded = w;
    return CNNC_OK;
}

/* Gives node n its own copy of its weights, with any pending fold applied. */
static cnnc_status own_weights(model_node *n)
{
    float *w;
    if (n->fold) {
        CNNC_TRY(plan_folded_weights(n, &w));
        free(n->fold);
        n->fold = NULL;
    } else {
        if (!(w = cnnc_malloc((size_t)(n->w_count ? n->w_count : 1) * sizeof *w)))
            return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
        memcpy(w, n->w, (size_t)n->w_count * sizeof *w);
    }
    if (!n->w_borrowed) cnnc_free(n->w);
    n->w = w;
    n->w_borrowed = 0;
    return CNNC_OK;
}

static cnnc_status fold_batch_norm(model_node *prev, model_node *bn)
{
    int64_t c = bn->p_count;
    int64_t cout = prev->op == OP_DENSE ? prev->i[1] : prev->conv.out_channels;
    if (cout != c) return CNNC_OK;
    /* Lent weights are not written: the scale waits for the packing. A
     * second fold into the same layer rounds after the first, so the
     * first is applied to a copy of its own. */
    if (prev->fold) CNNC_TRY(own_weights(prev));
    if (prev->w_borrowed && !(prev->fold = malloc((size_t)c * sizeof *prev->fold)))
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
    if (!prev->b) {
        prev->b = cnnc_malloc((size_t)c * sizeof(float));
        if (!prev->b) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
        memset(prev->b, 0, (size_t)c * sizeof(float));
        prev->b_count = c;
    }
    double eps = bn->f[0];
    for (int64_t o = 0; o < c; ++o) {
        double gamma = bn->w ? bn->w[o] : 1.0, beta = bn->b ? bn->b[o] : 0.0;
        double scale = gamma / sqrt((double)bn->p1[o] + eps);
        prev->b[o] = (float)((prev->b[o] - (double)bn->p0[o]) * scale + beta);
        if (prev->fold) prev->fold[o] = scale;
        else for (int64_t i = o; i < prev->w_count; i += c) prev->w[i] = (float)(prev->w[i] * scale);
    }
    bn->op = OP_IDENTITY;
    /* Folded: its statistics are dead. */
    cnnc_free(bn->w); cnnc_free(bn->b); cnnc_free(bn->p0); cnnc_free(bn->p1);
    bn->w = bn->b = bn->p0 = bn->p1 = NULL;
    bn->p_count = 0;
    return CNNC_OK;
}

int plan_has_stage(const model_node *n)
{
    return n->op == OP_DENSE || n->op == OP_CONV;
}

/* The residual add at node i (two inputs of its own size) into the
 * dense or convolution node producing one of them, when the other one is computed before that
 * node (or is a model input): the GEMM gains it as a second input, and the
 * add becomes an alias of the GEMM's output. */
static cnnc_status fuse_residual(model_graph *g, int i)
{
    model_node *add = &g->nodes[i];
    if (add->op != OP_ADD || add->n_inputs != 2) return CNNC_OK;
    const model_value *out = &g->values[add->output];
    for (int k = 0; k < 2; ++k) {
        int p = sole_producer(g, add->inputs[k]);
        int other = add->inputs[1 - k];
        if (p < 0 || g->values[add->inputs[k]].size != out->size || g->values[other].size != out->size) continue;
        model_node *gemm = &g->nodes[p];
        int ready = g->values[other].producer < p;
        if (!plan_has_stage(gemm) || gemm->n_inputs != 1 || gemm->act.kind != ACT_LINEAR || !ready) continue;
        int *inputs = realloc(gemm->inputs, 2 * sizeof *inputs);
        if (!inputs) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory");
        gemm->inputs = inputs;
        gemm->inputs[1] = other;
        gemm->n_inputs = 2;
        int through = add->inputs[k];
        add->inputs[0] = through;  /* the alias runs back to the GEMM's output */
        add->inputs[1] = other;
        add->op = OP_IDENTITY;
        count_uses(g);
        return CNNC_OK;
    }
    return CNNC_OK;
}

cnnc_status plan_pack_weights(model_graph *g)
{
    /* A depthwise convolution reads w on every call: a pending fold
     * becomes its own (small) copy. The others' folds go through one
     * buffer of the largest such kernel, reused layer after layer (a
     * buffer per layer, each freed before the next packed form is made,
     * left heap holes as large as the packed forms resident). Dense
     * layers are packed by their first call of many rows
     * (plan_pack_dense). */
    int64_t largest = 0;
    for (int i = 0; i < g->n_nodes; ++i) {
        model_node *n = &g->nodes[i];
        if (n->op != OP_CONV) continue;
        cnnc_conv2d_desc d = n->conv;
        d.batch = 1;
        if (n->fold && cnnc_conv2d_reads_weights(&d)) CNNC_TRY(own_weights(n));
        if (n->fold && n->w_count > largest) largest = n->w_count;
    }
    float *folded = largest ? cnnc_malloc((size_t)largest * sizeof *folded) : NULL;
    if (largest && !folded) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory folding batch norm");
    cnnc_status s = CNNC_OK;
    for (int i = 0; i < g->n_nodes && s == CNNC_OK; ++i) {
        model_node *n = &g->nodes[i];
        if (n->op != OP_CONV) continue;
        cnnc_conv2d_desc d = n->conv;
        d.batch = 1;
        if (n->fold) fold_into(n, folded);
        s = cnnc_conv2d_pack(&d, n->fold ? folded : n->w, &n->conv_packed);
        /* Pointwise panels serve every batch and give back the kernel
         * exactly (plan_unpacked_weights): an owned copy beside them would
         * hold the kernel twice. */
        if (s == CNNC_OK && n->conv_packed.pointwise.data && !n->w_borrowed && !n->fold) {
            cnnc_free(n->w);
            n->w = NULL;
        }
    }
    cnnc_free(folded);
#ifdef __GLIBC__
    /* The buffer may sit below the packed forms in the heap: give its pages back. */
    if (largest) malloc_trim(0);
#endif
    return s;
}

cnnc_status plan_unpacked_weights(const model_node *n, float **w)
{
    if (!(*w = cnnc_malloc((size_t)(n->w_count ? n->w_count : 1) * sizeof **w)))
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory unpacking layer \"%.100s\"", n->name);
    cnnc_gemm_unpack_b(&n->conv_packed.pointwise, *w, n->conv.out_channels);
    return CNNC_OK;
}

cnnc_status plan_pack_dense(const model_node *n)
{
    model_node *node = (model_node *)n; /* only its atomically published packed form changes */
    if (__atomic_load_n(&node->packed, __ATOMIC_ACQUIRE)) return CNNC_OK;
    struct cnnc_gemm_packed_b *packed = calloc(1, sizeof *packed);
    float *folded = NULL;
    if (!packed) return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory packing layer \"%.100s\"", n->name);
    cnnc_status s = n->fold ? plan_folded_weights(n, &folded) : CNNC_OK;
    if (s == CNNC_OK)
        s = cnnc_gemm_pack_b_once(CNNC_NO_TRANS, n->i[0], n->i[1], folded ? folded : n->w, n->i[1], packed);
    cnnc_free(folded);
    struct cnnc_gemm_packed_b *expected = NULL;
    /* Concurrent calls may both pack: the first to publish wins. */
    if (s == CNNC_OK &&
        __atomic_compare_exchange_n(&node->packed, &expected, packed, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return CNNC_OK;
    cnnc_gemm_packed_b_free(packed);
    free(packed);
    return s;
}

size_t plan_weight_bytes(const model_graph *g)
{
    size_t bytes = 0;
    for (int i = 0; i < g->n_nodes; ++i) {
        const model_node *n = &g->nodes[i];
        /* Batch norm's gamma and beta are p_count long. */
        int64_t w_count = n->op == OP_BATCH_NORM ? n->p_count : n->w_count;
        int64_t b_count = n->op == OP_BATCH_NORM ? n->p_count : n->b_count;
        if (n->w && !n->w_borrowed) bytes += (size_t)w_count * sizeof(float);
        if (n->b) bytes += (size_t)b_count * sizeof(float);
        bytes += (size_t)(n->p0 ? n->p_count : 0) * sizeof(float) + (size_t)(n->p1 ? n->p_count : 0) * sizeof(float);
        if (n->fold) bytes += (size_t)(n->op == OP_DENSE ? n->i[1] : n->conv.out_channels) * sizeof *n->fold;
        const struct cnnc_gemm_packed_b *packed = __atomic_load_n(&n->packed, __ATOMIC_ACQUIRE);
        if (packed) bytes += cnnc_gemm_packed_b_bytes(packed);
        bytes += __atomic_load_n(&n->conv_packed.bytes, __ATOMIC_RELAXED);
    }
    return bytes;
}

cnnc_status plan_optimize(model_graph *g)
{
    count_uses(g);
    for (int i = 0; i < g->n_nodes; ++i) {
        model_node *n = &g->nodes[i];
        CNNC_TRY(fuse_residual(g, i));
        int p = (n->op == OP_BATCH_NORM || n->op == OP_ACTIVATION) ? sole_producer(g, n->inputs[0]) : -1;
        if (p < 0) continue;
        model_node *prev = &g->nodes[p];
        int fusable = (prev->op == OP_CONV || prev->op == OP_DENSE) && prev->act.kind == ACT_LINEAR;
        if (n->op == OP_BATCH_NORM && fusable) {
            CNNC_TRY(fold_batch_norm(prev, n));
        } else if (n->op == OP_ACTIVATION && (fusable || (prev->op == OP_CONV_TRANSPOSE && prev->act.kind == ACT_LINEAR))) {
            prev->act = n->act;
            n->op = OP_IDENTITY;
        }
    }
    return CNNC_OK;
}

/* Elementwise ops that may write over an input of the same size. */
static int elementwise(op_kind op)
{
    switch (op) {
    case OP_ACTIVATION: case OP_BATCH_NORM: case OP_RESCALE: case OP_NORMALIZE:
    case OP_ADD: case OP_SUBTRACT: case OP_MULTIPLY: case OP_AVERAGE: case OP_MAXIMUM: case OP_MINIMUM:
    case OP_DIVIDE: case OP_CONST_BINARY: case OP_PRELU:
        return 1;
    default:
        return 0;
    }
}

typedef struct live { int64_t offset, size; int last; } live;

cnnc_status plan_buffers(model_graph *g, model_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    count_uses(g);
    int n = g->n_values;
    int64_t *size = malloc((size_t)(n ? n : 1) * sizeof *size);
    int *last = malloc((size_t)(n ? n : 1) * sizeof *last);
    int *first = malloc((size_t)(n ? n : 1) * sizeof *first);
    plan->offset = malloc((size_t)(n ? n : 1) * sizeof *plan->offset);
    live *active = malloc((size_t)(n ? n : 1) * sizeof *active);
    cnnc_status status = CNNC_OK;
    if (!size || !last || !first || !plan->offset || !active) { status = cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "model: out of memory"); goto done; }
    int storages = 0;
    for (int v = 0; v < n; ++v) g->values[v].storage = -1;
    for (int i = 0; i < g->n_nodes; ++i) {
        model_node *node = &g->nodes[i];
        model_value *out = &g->values[node->output];
        node->in_place = 0;
        int st = -1;
        if (node->op == OP_IDENTITY) {
            st = g->values[node->inputs[0]].storage;  /* -1: aliases a model input */
            if (st < 0) { out->storage = -1; continue; }
        } else if (elementwise(node->op)) {
            for (int k = 0; k < node->n_inputs && st < 0; ++k) {
                const model_value *x = &g->values[node->inputs[k]];
                if (x->storage >= 0 && last[x->storage] == i && x->size == out->size) {
                    st = x->storage;
                    node->in_place = k + 1;
                }
            }
        }
        if (st < 0) {
            st = storages++;
            /* Whole 64-byte lines per sample keep every sample's tensor aligned. */
            size[st] = (out->size + 15) & ~(int64_t)15;
            first[st] = i;
            last[st] = i;
        }
        out->storage = st;
        if (out->last_use > last[st]) last[st] = out->last_use;
    }
    /* A model output read straight from a model input has no storage of its
     * own: predict copies it. First-fit offsets over the live intervals. */
    int n_active = 0;
    int64_t top = 0;
    for (int s = 0; s < storages; ++s) {
        int k = 0;
        for (int a = 0; a < n_active; ++a) if (active[a].last >= first[s]) active[k++] = active[a];
        n_active = k;
        /* Sorted by offset: take the first gap that fits. */
        int64_t offset = 0;
        int pos = 0;
        for (; pos < n_active; ++pos) {
            if (active[pos].offset - offset >= size[s]) break;
            int64_t end = active[pos].offset + active[pos].size;
            if (end > offset) offset = end;
        }
        memmove(&active[pos + 1], &active[pos], (size_t)(n_active - pos) * sizeof *active);
        active[pos].offset = offset;
        active[pos].size = size[s];
        active[pos].last = last[s];
        ++n_active;
        plan->offset[s] = offset;
        if (offset + size[s] > top) top = offset + size[s];
    }
    plan->n_storages = storages;
    plan->per_sample = top;
done:
    free(size);
    free(last);
    free(first);
    free(active);
    if (status != CNNC_OK) plan_free(plan);
    return status;
}

void plan_free(model_plan *plan)
{
    free(plan->offset);
    memset(plan, 0, sizeof *plan);
}
