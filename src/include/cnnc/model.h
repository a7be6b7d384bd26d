/* Loading a model saved by cnnc's Python `model.save` and running it
 * (inference only).
 *
 * The file (docs/format.md) is treated as hostile: every length, offset,
 * shape, count and checksum is checked against the file before anything is
 * allocated; the JSON header is capped at 100 MiB and its nesting at 64
 * levels. A bad file gives CNNC_ERR_FORMAT (CNNC_ERR_IO when it cannot be
 * read, CNNC_ERR_UNSUPPORTED for a layer or option this runtime does not
 * know), with the reason in cnnc_last_error().
 *
 * Layouts: channels-last, row-major float32, exactly as in Python: x is
 * (batch, *input_shape), y is (batch, *output_shape); shapes reported here
 * leave the batch axis out.
 *
 * Layers run: convolutions (valid, same, causal or explicit padding),
 * dense, batch normalization, activations (Clip, HardSigmoid, PReLU
 * included), pooling (explicit padding, ceil_mode, count_include_pad,
 * dilation), merges and arithmetic with a stored constant
 * (ConstantArithmetic), Pad (constant, reflect, edge), cropping,
 * upsampling, reshapes, Rescaling/Normalization; dropout and random
 * augmentation are the identity, RandomCrop resizes as Keras does at
 * inference. Also separable convolutions (1-D and 2-D: the depthwise
 * convolution, then the pointwise one with the bias and activation),
 * LayerNormalization (over any set of adjacent axes) and
 * GroupNormalization (any channel axis), whose statistics are summed in
 * double and whose standardized value is rounded to float before gamma and
 * beta, the spatial transformer (AffineGridGenerator and BilinearSampler,
 * the cnnc/spatial.h kernels) and Embedding.
 *
 * Embedding indices: inputs are float32 like every other input; an input
 * feeding an Embedding holds the indices as whole numbers (exact up to
 * 2^24, the largest input_dim accepted). predict fails with
 * CNNC_ERR_INVALID_ARGUMENT, naming the layer and the value, for an index
 * that is not a whole number (NaN and infinities included) or lies outside
 * [0, input_dim); some outputs may then have been written.
 *
 * Not run (CNNC_ERR_UNSUPPORTED, naming the class or the reason):
 * LayerNormalization over axes that are not adjacent, and Python-only
 * layers (Lambda, custom layers); Python's predict runs the layers for such
 * models, and for models whose masks (Embedding mask_zero, Masking) a later
 * layer consumes. At load, batch
 * normalization is folded into the convolution or dense layer before it,
 * the weights of dense layers and convolutions are packed once into the
 * GEMM micro-kernel's panels, and a residual add that follows such a layer
 * (when its other operand is computed first) and the ReLU-family
 * activation after it move into the layer's output stage, applied to each
 * output tile while it is in cache (pointwise convolutions, dense layers)
 * or in one pass after it. So results differ from running the layers one
 * by one in the last bits (rounding of the folded weights, the bias added
 * after the products rather than before them);
 * Python's model.predict runs this same code, so the two agree to the bit
 * for the same ISA path and thread count.
 *
 * Memory: a loaded model holds, per convolution, one form of its kernel
 * that predict reads: the GEMM panels (pointwise convolutions, the
 * implicit GEMM) or the Winograd-transformed kernel (16/9 of a 3x3 kernel
 * for F(2x2), 4 times for F(4x4); a layer whose batch-1 forward takes the
 * implicit GEMM but larger batches Winograd keeps the panels, and the
 * transformed kernel from the first call that takes Winograd on), with
 * batch norm folded in. A dense layer called on at most 2 rows (batch 1
 * or 2 of a flat input) reads its kernel in place, in the Keras layout,
 * applying a batch norm folded into a lent kernel as it reads it; the
 * first call of more rows makes its GEMM panels (batch norm folded in),
 * kept from then on. Both give the same bits. Loaded from a file
 * (cnnc_model_load, _load_memory) or copied tensors (_load_tensors), it
 * also keeps its copy of each kernel as read from the file, for the calls
 * the packed form does not serve (another ISA set by cnnc_set_isa, the
 * other Winograd variant at a larger batch), but for pointwise
 * convolutions, whose panels give the kernel back exactly (unpacked per
 * call under another ISA) and serve every batch; the file's bytes are not kept,
 * and cnnc_model_load never holds them whole: it reads the tensors from the
 * file one at a time (checksums through a 1 MiB buffer, then each tensor
 * straight into the model's copy), so its peak is the model's own bytes.
 * With cnnc_model_load_tensors_borrowed it reads the caller's kernels in
 * place instead of copying them, and a batch norm folded into a lent kernel
 * is applied as it is packed (through a copy of that one layer, freed at
 * once) or, for the calls above, to a per-call copy; depthwise kernels,
 * read on every call, are copied when a batch norm folds into them.
 * Besides that: biases, folded scales and the other layers' small arrays,
 * and one activation arena per concurrent call (batch x the planned floats
 * per sample, kept for the next call). cnnc_model_weight_bytes tells what
 * the weights take (it grows when a call makes a transformed kernel or a
 * dense layer's panels).
 *
 * Threads: predict uses up to cnnc_get_team_limit() threads. A loaded model is
 * not modified by predict but for its arena pool (under a lock) and the
 * transformed kernels and dense panels a call may make once (each
 * published atomically):
 * concurrent predict calls on one model from several threads are safe (each call takes its own activation buffer from
 * a pool held by the model).
 */
#ifndef CNNC_MODEL_H
#define CNNC_MODEL_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnnc_model cnnc_model;

/* Loads the file model.save wrote (read a tensor at a time; a file that
 * changes size while it is read gives CNNC_ERR_IO). */
CNNC_API cnnc_status cnnc_model_load(const char *path, cnnc_model **model);
/* The same from a file's bytes in memory (copied; bytes may be freed after). */
CNNC_API cnnc_status cnnc_model_load_memory(const void *bytes, size_t size, cnnc_model **model);
/* The same from a model's parts, without a file image: config is the
 * model_config JSON text (what model.save stores as
 * __metadata__.model_config, NUL-terminated) and tensor i, named names[i],
 * holds the float32 values data[i] (native byte order, any alignment) of
 * shape shapes[8*i .. 8*i + ranks[i]). Names must be distinct. The weights
 * are copied: the caller's arrays may change or be freed after the call. */
CNNC_API cnnc_status cnnc_model_load_tensors(const char *config, size_t n_tensors, const char *const *names,
                                             const int *ranks, const int64_t *shapes, const float *const *data,
                                             cnnc_model **model);
/* The same, but the model reads the kernels of convolutions, dense layers
 * and embeddings (those that are float-aligned) from the caller's arrays
 * instead of copying them: the caller keeps every array unchanged and
 * alive until cnnc_model_free. Batch norm is still folded (where the
 * kernel is packed, one layer at a time), never written into the arrays.
 * The same outputs, to the bit, as cnnc_model_load_tensors. */
CNNC_API cnnc_status cnnc_model_load_tensors_borrowed(const char *config, size_t n_tensors, const char *const *names,
                                                      const int *ranks, const int64_t *shapes, const float *const *data,
                                                      cnnc_model **model);
/* NULL is a no-op. */
CNNC_API void cnnc_model_free(cnnc_model *model);
/* Bytes of weights the loaded model holds itself (see "Memory" above):
 * its copies, the packed and transformed forms, folded scales; not the
 * caller's lent arrays, not activation buffers. 0 for NULL. */
CNNC_API size_t cnnc_model_weight_bytes(const cnnc_model *model);

/* Shape of the model's input / output without the batch axis (rank <= 7).
 * For models with several inputs or outputs these fail with
 * CNNC_ERR_UNSUPPORTED: use the _at forms. */
CNNC_API cnnc_status cnnc_model_input_shape(const cnnc_model *model, int *rank, int64_t shape[8]);
CNNC_API cnnc_status cnnc_model_output_shape(const cnnc_model *model, int *rank, int64_t shape[8]);

CNNC_API int cnnc_model_num_inputs(const cnnc_model *model);
CNNC_API int cnnc_model_num_outputs(const cnnc_model *model);
CNNC_API cnnc_status cnnc_model_input_shape_at(const cnnc_model *model, int index, int *rank, int64_t shape[8]);
CNNC_API cnnc_status cnnc_model_output_shape_at(const cnnc_model *model, int index, int *rank, int64_t shape[8]);

/* y = model(x) for a batch of `batch` >= 1 samples. Single-input,
 * single-output models only (else CNNC_ERR_UNSUPPORTED). */
CNNC_API cnnc_status cnnc_model_predict(const cnnc_model *model, int64_t batch, const float *x, float *y);
/* Any model: xs[i] for input i, ys[j] for output j, in the order of the
 * model's inputs and outputs. */
CNNC_API cnnc_status cnnc_model_predict_multi(const cnnc_model *model, int64_t batch, const float *const *xs,
                                              float *const *ys);

/* Profiling. The runtime's nodes are the model's layer calls in execution
 * order, after folding: a layer folded into another (batch norm, a fused
 * activation or residual add) or a pure alias (reshape, dropout) becomes a
 * node of kind "folded" that runs nothing. */
CNNC_API int cnnc_model_num_nodes(const cnnc_model *model);
/* Node `index`'s layer name and kind ("conv", "depthwise_conv", "dense",
 * "global_avg_pool", "activation", ..., "folded"); the strings live as long
 * as the model. */
CNNC_API cnnc_status cnnc_model_node_info(const cnnc_model *model, int index, const char **name, const char **kind);
/* cnnc_model_predict_multi that also writes the seconds each node took,
 * per node index (cnnc_model_num_nodes entries each): wall_seconds by the
 * monotonic clock, cpu_seconds by the CPU time of the calling thread (with
 * more than one thread it leaves the other threads' work out); either may
 * be NULL. Folded nodes get 0. The outputs are those of predict_multi. */
CNNC_API cnnc_status cnnc_model_predict_profile(const cnnc_model *model, int64_t batch, const float *const *xs,
                                               float *const *ys, double *wall_seconds, double *cpu_seconds);

#ifdef __cplusplus
}
#endif
#endif
