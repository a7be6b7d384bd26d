/* Separate multiplies and adds (no FMA contraction): every ISA path gives
 * the same samples, bit for bit. */
#pragma GCC optimize("fp-contract=off")
#include "spatial_portable.h"

const struct cnnc_spatial_kernels cnnc_spatial_kernels_neon = {
    .sample_c1 = sample_c1,
    .grid_gradient_c1 = grid_gradient_c1,
};
