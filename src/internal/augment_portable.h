/* The augmentation row kernels in plain C, for the tables without
 * hand-written vector versions (scalar, NEON). Multiplies and adds stay
 * separate (the including file turns FMA contraction off) so that every ISA
 * path computes the same sample coordinates and values, bit for bit. */
#ifndef CNNC_AUGMENT_PORTABLE_H
#define CNNC_AUGMENT_PORTABLE_H
#include <math.h>
#include "augment_kernels.h"

static void scale_clip(int64_t n, const float *x, float a, float b, float lo, float hi, float *y)
{
    for (int64_t i = 0; i < n; ++i) {
        float v = a * x[i] + b;
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}

static void bilinear_row_c1(const struct cnnc_warp_row *r, int64_t u0, int64_t u1, float *dst)
{
    for (int64_t u = u0; u < u1; ++u) {
        float xs = (float)u * r->mx + r->row_x;
        float ys = (float)u * r->my + r->row_y;
        float xf = floorf(xs), yf = floorf(ys);
        const float *p = r->src + (int64_t)yf * r->w + (int64_t)xf;
        dst[u] = cnnc_bilerp(p[0], p[1], p[r->w], p[r->w + 1], xs - xf, ys - yf);
    }
}

#endif
