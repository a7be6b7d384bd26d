/* Per-ISA micro-kernels of the spatial transformer family (src/spatial.c
 * drives them), and the per-point arithmetic every path shares. */
#ifndef CNNC_SPATIAL_KERNELS_H
#define CNNC_SPATIAL_KERNELS_H
#include "cnnc_internal.h"

/* The four neighbours of one grid point: offsets (in pixels) of the pixels
 * inside the image, their bilinear weights, and the fractions for dgrid. */
struct cnnc_taps {
    int64_t offset[4]; /* nw, ne, sw, se */
    float weight[4];
    int inside[4];
    float fx, fy;
};

/* 0 when the point samples nothing (not finite, or all neighbours outside).
 * The vector kernels reproduce this arithmetic operation for operation. */
static inline int cnnc_find_taps(float gx, float gy, int64_t h, int64_t w, struct cnnc_taps *t)
{
    float u = ((gx + 1.0f) * (float)w - 1.0f) * 0.5f;
    float v = ((gy + 1.0f) * (float)h - 1.0f) * 0.5f;
    /* Also false for NaN; the bounds keep the float-to-integer casts defined. */
    if (!(u > -1.0f && u < (float)w && v > -1.0f && v < (float)h))
        return 0;
    /* floor by truncation, one lower for negatives: exact, and cheaper than
     * floorf without SSE4.1 */
    int64_t x0 = (int64_t)u, y0 = (int64_t)v;
    x0 -= (float)x0 > u;
    y0 -= (float)y0 > v;
    t->fx = u - (float)x0;
    t->fy = v - (float)y0;
    float gx0 = 1.0f - t->fx, gy0 = 1.0f - t->fy;
    t->weight[0] = gx0 * gy0;
    t->weight[1] = t->fx * gy0;
    t->weight[2] = gx0 * t->fy;
    t->weight[3] = t->fx * t->fy;
    int left = x0 >= 0, right = x0 + 1 < w, top = y0 >= 0, bottom = y0 + 1 < h;
    t->inside[0] = top && left;
    t->inside[1] = top && right;
    t->inside[2] = bottom && left;
    t->inside[3] = bottom && right;
    t->offset[0] = y0 * w + x0;
    t->offset[1] = t->offset[0] + 1;
    t->offset[2] = t->offset[0] + w;
    t->offset[3] = t->offset[2] + 1;
    return 1;
}

/* One-channel bilinear sample: the taps inside, summed nw, ne, sw, se. */
static inline float cnnc_sample_c1(const float *img, int64_t h, int64_t w, float gx, float gy)
{
    struct cnnc_taps t;
    if (!cnnc_find_taps(gx, gy, h, w, &t))
        return 0.0f;
    float acc = 0.0f;
    for (int k = 0; k < 4; ++k)
        if (t.inside[k])
            acc += t.weight[k] * img[t.offset[k]];
    return acc;
}

/* dgrid of one grid point over c channels (dy at g): the sum over channels
 * of dy times the slope of the bilinear surface along u and v, scaled by
 * d(u, v)/d(gx, gy); zero when the point samples nothing. */
static inline void cnnc_grid_gradient_point(const float *img, int64_t c, int64_t h, int64_t w,
                                            float gx, float gy, const float *g, float *dg)
{
    struct cnnc_taps t;
    dg[0] = dg[1] = 0.0f;
    if (!cnnc_find_taps(gx, gy, h, w, &t))
        return;
    /* d(weight k)/du and d(weight k)/dv for nw, ne, sw, se */
    const float du[4] = {-(1.0f - t.fy), 1.0f - t.fy, -t.fy, t.fy};
    const float dv[4] = {-(1.0f - t.fx), -t.fx, 1.0f - t.fx, t.fx};
    float su = 0.0f, sv = 0.0f;
    for (int k = 0; k < 4; ++k) {
        if (!t.inside[k])
            continue;
        const float *src = img + t.offset[k] * c;
        float dot = 0.0f;
        for (int64_t j = 0; j < c; ++j)
            dot += src[j] * g[j];
        su += du[k] * dot;
        sv += dv[k] * dot;
    }
    dg[0] = su * (float)w * 0.5f;
    dg[1] = sv * (float)h * 0.5f;
}

struct cnnc_spatial_kernels {
    /* y[p] = bilinear sample of the one-channel h x w image at grid point p
     * ((x, y) pairs), for p in [0, count); h * w + w + 1 fits int32 (the
     * driver checks), so the vector paths index with 32-bit gathers. */
    void (*sample_c1)(const float *img, int64_t h, int64_t w, const float *grid, int64_t count,
                      float *y);
    /* dgrid[p] = cnnc_grid_gradient_point of the one-channel image at grid
     * point p given dy[p], for p in [0, count); same limits as sample_c1. */
    void (*grid_gradient_c1)(const float *img, int64_t h, int64_t w, const float *grid,
                             const float *dy, int64_t count, float *dgrid);
};

extern CNNC_INTERNAL const struct cnnc_spatial_kernels cnnc_spatial_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_spatial_kernels cnnc_spatial_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_spatial_kernels cnnc_spatial_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_spatial_kernels cnnc_spatial_kernels_neon;

#endif
