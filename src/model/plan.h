/* Rewrites a built graph for inference speed and lays out its buffers:
 * batch norm folded into the convolution or dense layer before it, the
 * activation that follows a convolution or dense layer fused into it, and
 * elementwise layers (activations, residual adds, rescaling) run in place
 * on an input that dies there. A residual add after a dense layer or a
 * pointwise convolution, and the activation after it, move into that
 * layer's GEMM output stage when the other operand is ready before it. Every intermediate tensor then gets an
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
/* Whether a node runs as one GEMM over its rows (a dense layer, or a 1x1
 * stride-1 unpadded ungrouped convolution: pixels x Cin times Cin x Cout),
 * with its weights packed once and bias, residual and a ReLU-family
 * activation applied in the GEMM's output stage. */
CNNC_INTERNAL int plan_is_gemm(const model_node *node);
/* Packs the weights of every GEMM node once (plan_optimize first). */
CNNC_INTERNAL cnnc_status plan_pack_weights(model_graph *graph);
CNNC_INTERNAL cnnc_status plan_buffers(model_graph *graph, model_plan *plan);
CNNC_INTERNAL void plan_free(model_plan *plan);

#endif
