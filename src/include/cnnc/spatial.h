/* Spatial transformer: an affine sampling grid and bilinear sampling of an
 * NHWC batch at that grid, with their gradients.
 *
 * Layouts (all float32, C-contiguous):
 *   theta  (n, 2, 3)          row-major affine matrices, one per image;
 *   grid   (n, out_h, out_w, 2) sampling points, [..., 0] = x (width axis),
 *                             [..., 1] = y (height axis), in normalized
 *                             coordinates where -1 and +1 are the outer
 *                             edges of the first and last pixels
 *                             (align_corners = false);
 *   x      (n, h, w, c)       the images sampled;
 *   y      (n, out_h, out_w, c).
 *
 * The definitions match torch.nn.functional.affine_grid / grid_sample with
 * mode="bilinear", padding_mode="zeros", align_corners=False:
 *   grid[i, r, q] = theta[i] . (xs(q), ys(r), 1), xs(q) = (2q + 1) / out_w - 1,
 *                                                ys(r) = (2r + 1) / out_h - 1;
 *   a grid point (gx, gy) reads the input at pixel coordinates
 *   u = ((gx + 1) w - 1) / 2, v = ((gy + 1) h - 1) / 2, interpolating the
 *   four neighbouring pixels bilinearly; neighbours outside the image read 0.
 * A grid point that is not finite, or lies more than one pixel outside the
 * image, samples 0 and receives a zero gradient.
 *
 * Rounding: products and sums in float32 without FMA contraction (sums over
 * pixels for dtheta in double), in a fixed order, so the results do not
 * depend on the thread count or the ISA path (one-channel images use
 * AVX2/AVX-512 gather kernels that reproduce the scalar arithmetic).
 * Threading: OpenMP over output pixels (forward, dgrid) and over (image,
 * channel block) tasks (dx), so no two threads add into the same element.
 * Outputs must not overlap inputs.
 */
#ifndef CNNC_SPATIAL_H
#define CNNC_SPATIAL_H

#include "cnnc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* grid (n, out_h, out_w, 2) from theta (n, 2, 3). */
CNNC_API cnnc_status cnnc_affine_grid(int64_t n, int64_t out_h, int64_t out_w, const float *theta,
                                      float *grid);

/* dtheta (n, 2, 3) = the gradient of sum(dgrid * grid) with respect to theta
 * (overwritten, not accumulated). */
CNNC_API cnnc_status cnnc_affine_grid_backward(int64_t n, int64_t out_h, int64_t out_w,
                                               const float *dgrid, float *dtheta);

/* y (n, out_h, out_w, c) = bilinear samples of x (n, h, w, c) at grid. */
CNNC_API cnnc_status cnnc_grid_sample(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                      int64_t out_h, int64_t out_w, const float *grid, float *y);

/* Gradients of sum(dy * y): dx (n, h, w, c) and dgrid (n, out_h, out_w, 2),
 * both overwritten; either may be NULL when it is not wanted. */
CNNC_API cnnc_status cnnc_grid_sample_backward(int64_t n, int64_t h, int64_t w, int64_t c,
                                               const float *x, int64_t out_h, int64_t out_w,
                                               const float *grid, const float *dy, float *dx,
                                               float *dgrid);

#ifdef __cplusplus
}
#endif
#endif
