/* The inference graph of a loaded model: values (tensors without the batch
 * axis) and nodes (one per layer call, in topological order) holding their
 * parameters and their weights (copies, or the caller's arrays when it
 * lends them). graph.c builds it from a
 * model file, plan.c rewrites it for speed and lays out its buffers, ops.c
 * runs one node. */
#ifndef CNNC_MODEL_GRAPH_H
#define CNNC_MODEL_GRAPH_H

#include "cnnc.h"
#include "file.h"
#include "gemm_internal.h"
#include "../conv/conv.h"

typedef enum op_kind {
    OP_IDENTITY,        /* reshape, flatten, dropout, augmentation at inference: output aliases input */
    OP_CONV,            /* Conv1D/Conv2D/DepthwiseConv2D (desc without the batch) */
    OP_CONV_TRANSPOSE,  /* Conv2DTranspose (desc of the forward convolution it transposes) */
    OP_DENSE,           /* x (rows, in) @ w (in, units) + b */
    OP_BATCH_NORM,      /* over the last axis with the moving statistics */
    OP_ACTIVATION,      /* elementwise, or softmax / log-softmax over the last axis */
    OP_SOFTMAX_AXIS,    /* softmax over an inner axis: i[0] outer, i[1] axis length, i[2] inner */
    OP_MAX_POOL, OP_AVG_POOL, /* 2-D pooling, params in pool */
    OP_DILATED_MAX_POOL, OP_DILATED_AVG_POOL, /* pool's window with taps i[0], i[1] apart; i[2]
                        * count_include_pad, i[3..4] explicit padding (h, w) without the ceil overhang */
    OP_GLOBAL_AVG_POOL, OP_GLOBAL_MAX_POOL, /* i[0] h, i[1] w, i[2] c */
    OP_ADD, OP_SUBTRACT, OP_MULTIPLY, OP_AVERAGE, OP_MAXIMUM, OP_MINIMUM, OP_DIVIDE, /* inputs broadcast
                        * (NumPy's rule, per-sample shapes aligned on the right) */
    OP_CONCAT,          /* i[0] rows per sample; widths[] per input */
    OP_PAD,             /* zero padding of (h, w, c): i[0..2] input, i[3..6] top bottom left right */
    OP_CROP,            /* i[0..2] input (h, w, c), i[3] top, i[4] left, i[5..6] output h, w */
    OP_UPSAMPLE,        /* i[0..2] input (h, w, c), i[3] sh, i[4] sw, i[5] bilinear */
    OP_PERMUTE,         /* input shape of the value, perm[] */
    OP_RESCALE,         /* y = x * f[0] + f[1] */
    OP_NORMALIZE,       /* y = (x - mean) / std, or x * std + mean (i[0] = invert); per-sample arrays */
    OP_RESIZE,          /* Keras smart resize: i[0..2] input (h, w, c), i[3..4] output, matrix in f[0..5] */
    OP_CONST_BINARY,    /* x op c (c op x when i[1]), op kind i[0] among the merges; c in p0 broadcast
                        * to the per-sample shape */
    OP_PRELU,           /* x >= 0 ? x : alpha x, alpha in p0 broadcast to the per-sample shape */
    OP_PAD_ND,          /* Pad of every axis: widths[2 d], widths[2 d + 1] before and after axis d;
                        * i[0] mode (0 constant f[0], 1 reflect, 2 edge) */
    OP_LAYER_NORM,      /* per sample as (i[0] outer, i[1] normalized, i[2] inner): statistics over the
                        * middle axis for each (outer, inner); gamma w, beta b (NULL: 1, 0) of i[1]; eps f[0] */
    OP_GROUP_NORM,      /* per sample as (i[0] outer, i[1] channels, i[2] inner), i[3] groups of
                        * consecutive channels: statistics over (outer, group, inner); w, b per channel */
    OP_AFFINE_GRID,     /* theta (6 per sample) -> grid (i[0] h, i[1] w, 2), cnnc_affine_grid */
    OP_GRID_SAMPLE,     /* images (h, w, c), grid (oh, ow, 2) -> (oh, ow, c), cnnc_grid_sample */
    OP_EMBEDDING        /* float indices, checked whole and in [0, i[0]) -> rows of w (i[0], i[1]) */
} op_kind;

/* Activation functions, as cnnc.activations names them. */
typedef enum act_kind {
    ACT_LINEAR, ACT_RELU, ACT_RELU6, ACT_LEAKY_RELU, ACT_ELU, ACT_SELU, ACT_GELU, ACT_SIGMOID, ACT_HARD_SIGMOID,
    ACT_TANH, ACT_SOFTMAX, ACT_LOG_SOFTMAX, ACT_SWISH, ACT_SOFTPLUS, ACT_SOFTSIGN, ACT_EXPONENTIAL,
    ACT_RELU_GENERAL,   /* Keras ReLU(max_value, negative_slope, threshold) */
    ACT_CLIP            /* Clip / HardSigmoid: clamp(x * scale + offset, lo, hi), NaN kept */
} act_kind;

typedef struct activation {
    act_kind kind;
    float alpha;        /* leaky slope, ELU alpha, general ReLU negative slope */
    float max_value;    /* general ReLU: < 0 means none */
    float threshold;
    float scale, offset, lo, hi;  /* clip */
} activation;

typedef struct model_value {
    int rank;
    int64_t shape[MODEL_MAX_RANK];
    int64_t size;        /* elements per sample */
    int producer;        /* node index, -1 for a model input */
    int input_index;     /* model input number, or -1 */
    int consumers;       /* number of uses by nodes (an input listed twice counts twice) */
    int last_use;        /* last consuming node; INT32_MAX for model outputs */
    int storage;         /* plan: buffer id, -1 for a model input */
} model_value;

typedef struct model_node {
    op_kind op;
    char *name;          /* the layer's name, for error messages */
    int n_inputs;
    int *inputs;         /* value ids */
    int output;          /* value id */
    int in_place;        /* plan: the output reuses inputs[0]'s buffer */
    activation act;      /* applied to the output (conv, dense, activation) */
    cnnc_conv2d_desc conv;
    cnnc_pool2d_params pool;
    int64_t i[8];
    float f[8];
    int64_t *widths;     /* concat */
    int perm[MODEL_MAX_RANK];
    /* Weights owned by the node (cnnc_malloc): w kernel, b bias, and per-op
     * arrays (batch norm scale and shift, normalization mean and std). */
    float *w, *b, *p0, *p1;
    int64_t w_count, b_count, p_count;
    /* w of a convolution, dense layer or embedding may instead point into
     * the caller's array (cnnc_model_load_tensors_borrowed): then it is
     * never written or freed, and a batch norm folded into the layer is
     * kept as its per-output-channel scale (fold, w's last axis; NULL for
     * none), applied where w is packed (plan_folded_weights). */
    int w_borrowed;
    double *fold;
    /* plan: the weights packed for a convolution's algorithm (conv_packed,
     * at load), or a dense layer's GEMM panels (packed: made by the first
     * call of more than DENSE_INPLACE_ROWS rows and published atomically,
     * NULL until then; fewer rows read w in place). Such a node may carry
     * a second input, a residual added in its output stage. */
    struct cnnc_gemm_packed_b *packed;
    struct cnnc_conv_packed conv_packed;
} model_node;

typedef struct model_graph {
    model_value *values;
    int n_values, cap_values;
    model_node *nodes;
    int n_nodes, cap_nodes;
    int n_inputs, n_outputs;
    int *input_values, *output_values;
} model_graph;

/* Builds the graph of the model file's model_config, copying the weights it
 * uses (pointing at the kernels when file->borrowable allows it); every
 * layer config and weight shape is checked. */
CNNC_INTERNAL cnnc_status graph_build(const model_file *file, model_graph *graph);
CNNC_INTERNAL void graph_free(model_graph *graph);

#endif
