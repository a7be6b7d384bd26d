/* Rewrites a built graph for inference speed and lays out its buffers:
 * batch norm folded into the convolution or dense layer before it (into
 * its weights when the graph owns them, else as a scale applied where they
 * are packed, so that lent weights are never copied whole), the
 * activation that follows a convolution or dense layer fused into it, and
 * elementwise layers (activations, residual adds, rescaling) run in place
 * on an input that dies there. A residual add after a dense or convolution
 * layer, and the activation after it, move into that layer's output stage
 * when the other operand is ready before it. Every intermediate tensor then gets an
 * offset in one arena, reused once the tensor is dead (liveness-based),
 * so a predict call needs a single buffer of batch x arena_per_sample floats. */
#ifndef CNNC_MODEL_PLAN_H
#define CNNC_MODEL_PLAN_H

#include "graph.h"

typedef struct model_plan {
    int n_storages;
    int64_t *offset;         /* per storage: offset in floats per sample */
    int64_t per_sample;      /* arena floats per sample */
} model_plan;

CNNC_INTERNAL cnnc_status plan_optimize(model_graph *graph);
/* Whether a node has an output stage (bias, residual, ReLU-family
 * activation; struct cnnc_gemm_epilogue) and weights packed at load: a
 * dense layer (one GEMM) or a convolution (whose algorithm applies the
 * stage to each tile in cache where it can: pointwise convolutions). */
CNNC_INTERNAL int plan_has_stage(const model_node *node);
/* Packs the weights of every convolution once (plan_optimize first). An
 * owned pointwise kernel is then freed (w NULL): its panels hold it. */
CNNC_INTERNAL cnnc_status plan_pack_weights(model_graph *graph);
/* A new cnnc_malloc'd copy of the kernel of pointwise node n, whose w was
 * freed, from its panels (batch norm folded in), for a call they do not
 * serve (another ISA). */
CNNC_INTERNAL cnnc_status plan_unpacked_weights(const model_node *n, float **w);
/* Dense layers of at most this many rows per call read their kernel in
 * place (cnnc_sgemv_fused): bound by the bytes of the kernel, they run as
 * fast as from the packed panels, which such a model never holds. */
#define DENSE_INPLACE_ROWS 2
/* Dense node n's GEMM panels for a call of more rows, made from w (folded
 * first if batch norm waits) unless made before; safe from concurrent
 * predict calls (the first to publish n->packed wins). */
CNNC_INTERNAL cnnc_status plan_pack_dense(const model_node *n);
/* A new cnnc_malloc'd copy of node n's weights with its pending batch-norm
 * fold (n->fold, not NULL) applied, for a call that cannot use the packed
 * form (another ISA, another Winograd variant): the same floats the fold
 * of an owned copy writes. */
CNNC_INTERNAL cnnc_status plan_folded_weights(const model_node *n, float **folded);
/* Bytes of weight data the graph holds itself: its copies of the weights,
 * the folds, and the packed forms (not lent arrays, not activations). */
CNNC_INTERNAL size_t plan_weight_bytes(const model_graph *graph);
CNNC_INTERNAL cnnc_status plan_buffers(model_graph *graph, model_plan *plan);
CNNC_INTERNAL void plan_free(model_plan *plan);

#endif
