/* The convolution family's entry points for the library's own model
 * runtime (src/model/): a forward convolution with its weights packed once
 * and its output stage fused (see struct cnnc_conv_packed and
 * cnnc_conv_select_forward_fused). The public entry points are in
 * src/include/cnnc/conv.h. */
#ifndef CNNC_CONV_CONV_H
#define CNNC_CONV_CONV_H
#include "cnnc.h"
#include "select.h"

/* Packs w for the forward convolution desc describes (any batch). */
CNNC_INTERNAL cnnc_status cnnc_conv2d_pack(const cnnc_conv2d_desc *desc, const float *w,
                                           struct cnnc_conv_packed *packed);
/* Whether cnnc_conv2d_forward_fused for desc (its batch included) reads
 * the weights from `packed` alone, never from w (0 for a bad desc). */
CNNC_INTERNAL int cnnc_conv2d_packed_covers(const cnnc_conv2d_desc *desc, const struct cnnc_conv_packed *packed);
/* Whether a forward of desc (its batch included) wants a packed form that
 * is made on first use, and making it from w (see
 * cnnc_conv_select_pack_late; safe from concurrent calls). */
CNNC_INTERNAL int cnnc_conv2d_pack_late_wanted(const cnnc_conv2d_desc *desc, const struct cnnc_conv_packed *packed);
CNNC_INTERNAL cnnc_status cnnc_conv2d_pack_late(const cnnc_conv2d_desc *desc, const float *w,
                                                struct cnnc_conv_packed *packed);
/* Whether every forward of desc's geometry reads w itself (nothing to pack:
 * depthwise convolutions). */
CNNC_INTERNAL int cnnc_conv2d_reads_weights(const cnnc_conv2d_desc *desc);
/* y = stage(conv(x, w)) with the weights from `packed` (or NULL) where they
 * suit (w may be NULL where cnnc_conv2d_packed_covers the call); the residual (stage->residual, y's layout, ldr = out_channels) must
 * not overlap y. */
CNNC_INTERNAL cnnc_status cnnc_conv2d_forward_fused(const cnnc_conv2d_desc *desc, const float *x, const float *w,
                                                    const struct cnnc_conv_packed *packed,
                                                    const struct cnnc_gemm_epilogue *stage, float *y);

#endif
