/* The convolution family's selection layer: each pass of a validated
 * problem, run by the algorithm that suits it (src/conv/select.c). */
#ifndef CNNC_CONV_SELECT_H
#define CNNC_CONV_SELECT_H
#include "geometry.h"
#include "gemm_internal.h"

/* The weights of one forward convolution packed once (when a model loads)
 * for the algorithm its geometry selects: the K x Cout matrix of a
 * pointwise convolution, the implicit GEMM's B panels, and the Winograd
 * transform of a kernel that takes Winograd from some batch on (both,
 * where small batches take the implicit GEMM: then the transform is made
 * by the first call that takes Winograd, cnnc_conv_select_pack_late). Depthwise convolutions keep
 * reading w. Made for the ISA active then; a
 * forward under another ISA packs per call as usual. Read-only once made. */
struct cnnc_conv_packed {
    const struct cnnc_gemm_kernels *kern;
    struct cnnc_gemm_packed_b pointwise;
    float *implicit;
    float *winograd; /* the transformed kernel (cnnc_conv_winograd_pack) */
    int winograd_tile; /* its variant (enum cnnc_winograd_tile) */
    size_t bytes;    /* what the packed forms above hold (atomic once loaded) */
};

/* y = bias (or 0) + the convolution of x with w. */
CNNC_INTERNAL cnnc_status cnnc_conv_select_forward(const struct cnnc_conv_geom *g, const float *x, const float *w,
                                                   const float *bias, float *y);
/* Packs w for g's forward algorithm (g's batch does not matter, but a
 * Winograd or depthwise choice leaves nothing to pack). */
CNNC_INTERNAL cnnc_status cnnc_conv_select_pack(const struct cnnc_conv_geom *g, const float *w,
                                                struct cnnc_conv_packed *packed);
CNNC_INTERNAL void cnnc_conv_packed_free(struct cnnc_conv_packed *packed);
/* Whether a forward of g (its batch included) takes the Winograd variant
 * of `packed` (made for the active ISA) whose transformed kernel is not
 * made yet; cnnc_conv_select_pack_late then makes it from w. Concurrent
 * calls are safe: the kernel is published once, atomically, and kept. */
CNNC_INTERNAL int cnnc_conv_select_pack_late_wanted(const struct cnnc_conv_geom *g,
                                                    const struct cnnc_conv_packed *packed);
CNNC_INTERNAL cnnc_status cnnc_conv_select_pack_late(const struct cnnc_conv_geom *g, const float *w,
                                                     struct cnnc_conv_packed *packed);
/* Whether cnnc_conv_select_forward_fused for g (its batch included) reads
 * the weights from `packed` alone, never from w. */
CNNC_INTERNAL int cnnc_conv_select_packed_covers(const struct cnnc_conv_geom *g, const struct cnnc_conv_packed *packed);
/* y = stage(the convolution of x with w): the output stage (bias, residual
 * of y's layout, ReLU-family activation; see struct cnnc_gemm_epilogue)
 * runs while the output is in cache where the algorithm allows it
 * (pointwise with one group, per tile or run of tiles; Winograd, per
 * pixel; depthwise, per band of rows; the implicit GEMM, per block of
 * pixels), else over y after
 * the convolution; weights from `packed` where they were packed. Sums in
 * the order cnnc_conv_select_forward's, so the result is the same to the
 * last bit. */
CNNC_INTERNAL cnnc_status cnnc_conv_select_forward_fused(const struct cnnc_conv_geom *g, const float *x,
                                                         const float *w, const struct cnnc_conv_packed *packed,
                                                         const struct cnnc_gemm_epilogue *stage, float *y);
/* dx = bias (or 0) + the input gradient from dy (a transposed
 * convolution's forward passes its bias). */
CNNC_INTERNAL cnnc_status cnnc_conv_select_backward_data(const struct cnnc_conv_geom *g, const float *w,
                                                         const float *dy, const float *bias, float *dx);
/* dw from x and dy; db, when not NULL, is the channel sum of dy (the bias
 * gradient of a convolution, not of a transposed one). */
CNNC_INTERNAL cnnc_status cnnc_conv_select_backward_weights(const struct cnnc_conv_geom *g, const float *x,
                                                            const float *dy, float *dw, float *db);

#endif
