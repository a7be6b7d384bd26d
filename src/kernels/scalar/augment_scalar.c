/* Multiplies and adds stay separate (no FMA contraction) so that every ISA
 * path computes the same sample coordinates and values, bit for bit. */
#pragma GCC optimize("fp-contract=off")
#include "augment_portable.h"

const struct cnnc_augment_kernels cnnc_augment_kernels_scalar = {
    .scale_clip = scale_clip,
    .bilinear_row_c1 = bilinear_row_c1,
};
