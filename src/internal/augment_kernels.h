/* Per-ISA micro-kernels of the augmentation family (src/augment.c drives
 * them, one image per thread at a time). */
#ifndef CNNC_AUGMENT_KERNELS_H
#define CNNC_AUGMENT_KERNELS_H
#include "cnnc_internal.h"

/* Bilinear sampling of one output row of a one-channel image, for the
 * output columns [u0, u1) whose four neighbours all lie inside the image
 * (the driver guarantees it). Input coordinates are u * m[0] + row_x and
 * u * m[3] + row_y. */
struct cnnc_warp_row {
    const float *src;
    int64_t w;
    float mx, my;       /* m[0], m[3]: per-column steps */
    float row_x, row_y; /* m[1] v + m[2], m[4] v + m[5] */
};

struct cnnc_augment_kernels {
    /* y[i] = min(max(a x[i] + b, lo), hi) */
    void (*scale_clip)(int64_t n, const float *x, float a, float b, float lo, float hi, float *y);
    void (*bilinear_row_c1)(const struct cnnc_warp_row *r, int64_t u0, int64_t u1, float *dst);
};

extern CNNC_INTERNAL const struct cnnc_augment_kernels cnnc_augment_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_augment_kernels cnnc_augment_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_augment_kernels cnnc_augment_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_augment_kernels cnnc_augment_kernels_neon;

/* The scalar bilinear formula every path must reproduce bit for bit:
 * interpolate along x on both rows, then along y. */
static inline float cnnc_bilerp(float v00, float v01, float v10, float v11, float fx, float fy)
{
    float top = v00 + fx * (v01 - v00);
    float bottom = v10 + fx * (v11 - v10);
    return top + fy * (bottom - top);
}

#endif
