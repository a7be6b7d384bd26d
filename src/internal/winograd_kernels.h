/* Per-ISA transforms of the Winograd convolutions F(2x2, 3x3) and F(4x4,
 * 3x3) (driver: src/conv/winograd.c). All are vectorized over channels (NHWC
 * keeps a pixel's channels contiguous) and work on `count` consecutive
 * floats of each of their planes.
 *
 * F(m x m, 3x3) computes an m x m output tile from the alpha x alpha input
 * tile d that covers it (alpha = m + 2) and the 3x3 kernel g as
 * A^T [(G g G^T) . (B^T d B)] A: alpha^2 products (index xi = alpha * row +
 * column of the transformed tile), summed over input channels by alpha^2
 * independent GEMMs. For F(2x2, 3x3) (points 0, 1, -1, infinity)
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1   |
 *
 * and for F(4x4, 3x3) (points 0, 1, -1, 2, -2, infinity)
 *
 *   B^T = | 4  0 -5  0  1  0 |   G = |  1/4     0     0   |   A^T = | 1  1  1  1  1  0 |
 *         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |         | 0  1 -1  2 -2  0 |
 *         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |         | 0  1  1  4  4  0 |
 *         | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6  |         | 0  1 -1  8 -8  1 |
 *         | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6  |
 *         | 0  4  0 -5  0  1 |       |  0     0     1    |
 *
 * The weight gradient runs the same maps backward: the transformed gradient
 * of U is the sum over tiles of (B^T d B) . (A dy A^T), and dg = G^T dU G. */
#ifndef CNNC_WINOGRAD_KERNELS_H
#define CNNC_WINOGRAD_KERNELS_H
#include "cnnc_internal.h"

/* The transforms of one F(m x m, 3x3); alpha = m + 2. */
struct cnnc_winograd_transforms {
    /* u[xi * u_stride + i] = (G g_i G^T)[xi] for i < count, where tap
     * (kh, kw) of g_i is g[(3 * kh + kw) * g_stride + i]. */
    void (*kernel)(const float *g, int64_t g_stride, int64_t count, float *u, int64_t u_stride);
    /* v[xi * v_stride + c] = (B^T d_c B)[xi] for c < count, where element
     * (r, s) of d_c is d[alpha * r + s][c]. */
    void (*input)(const float *const *d, int64_t count, float *v, int64_t v_stride);
    /* y[m * r + s][c] = (A^T m_c A)[r][s] (+ bias[c] when bias is not NULL)
     * for c < count, where element xi of m_c is m[xi * m_stride + c]. */
    void (*output)(const float *m, int64_t m_stride, int64_t count, const float *bias, float *const *y);
    /* The adjoints, for the weight gradient: m[xi * m_stride + c] =
     * (A dy_c A^T)[xi] with element (r, s) of dy_c dy[m * r + s][c], and
     * g[(3 * kh + kw) * g_stride + i] = (G^T u_i G)[kh][kw] with element xi
     * of u_i u[xi * u_stride + i]. */
    void (*grad_output)(const float *const *dy, int64_t count, float *m, int64_t m_stride);
    void (*grad_kernel)(const float *u, int64_t u_stride, int64_t count, float *g, int64_t g_stride);
};

struct cnnc_winograd_kernels {
    struct cnnc_winograd_transforms f2x2, f4x4;
};

extern CNNC_INTERNAL const struct cnnc_winograd_kernels cnnc_winograd_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_winograd_kernels cnnc_winograd_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_winograd_kernels cnnc_winograd_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_winograd_kernels cnnc_winograd_kernels_neon;

#endif
