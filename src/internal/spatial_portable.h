/* The one-channel sampling kernels in plain C, for the tables without
 * hand-written vector versions (scalar, NEON); the including file turns FMA
 * contraction off so that every path gives the same samples. */
#ifndef CNNC_SPATIAL_PORTABLE_H
#define CNNC_SPATIAL_PORTABLE_H
#include "spatial_kernels.h"

static void sample_c1(const float *img, int64_t h, int64_t w, const float *grid, int64_t count,
                      float *y)
{
    for (int64_t p = 0; p < count; ++p)
        y[p] = cnnc_sample_c1(img, h, w, grid[2 * p], grid[2 * p + 1]);
}

static void grid_gradient_c1(const float *img, int64_t h, int64_t w, const float *grid,
                             const float *dy, int64_t count, float *dgrid)
{
    for (int64_t p = 0; p < count; ++p)
        cnnc_grid_gradient_point(img, 1, h, w, grid[2 * p], grid[2 * p + 1], dy + p, dgrid + 2 * p);
}

#endif
