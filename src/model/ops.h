/* Running one node of the inference graph on a batch: in[k] points at the
 * node's k-th input (batch x its size floats), out at its output; for an
 * in-place node out equals one of the inputs. */
#ifndef CNNC_MODEL_OPS_H
#define CNNC_MODEL_OPS_H

#include "graph.h"

CNNC_INTERNAL cnnc_status op_run(const model_graph *graph, const model_node *node, int64_t batch,
                                 const float *const *in, float *out);

/* A short name of what the node runs ("conv", "depthwise_conv", "dense",
 * ...; "folded" for a node merged into another or a pure alias). */
CNNC_INTERNAL const char *op_kind_name(const model_node *node);

#endif
