/* Per-ISA transforms of the Winograd F(2x2, 3x3) convolution (driver:
 * src/conv/winograd.c). All three are vectorized over channels (NHWC keeps
 * a pixel's channels contiguous) and work on `count` consecutive floats of
 * each of their planes. With
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1   |
 *
 * a 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A for the 4x4 input tile
 * d that covers it and the 3x3 kernel g; the 16 products (index xi = 4 *
 * row + column of the 4x4 transformed tile) are summed over input channels
 * by 16 independent GEMMs. The weight gradient runs the same maps
 * backward: the transformed gradient of U is sum over tiles of
 * (B^T d B) . (A dy A^T), and dg = G^T dU G. */
#ifndef CNNC_WINOGRAD_KERNELS_H
#define CNNC_WINOGRAD_KERNELS_H
#include "cnnc_internal.h"

struct cnnc_winograd_kernels {
    /* u[xi * u_stride + i] = (G g_i G^T)[xi] for i < count, where tap
     * (kh, kw) of g_i is g[(3 * kh + kw) * g_stride + i]. */
    void (*kernel)(const float *g, int64_t g_stride, int64_t count, float *u, int64_t u_stride);
    /* v[xi * v_stride + c] = (B^T d_c B)[xi] for c < count, where element
     * (r, s) of d_c is d[4 * r + s][c]. */
    void (*input)(const float *const d[16], int64_t count, float *v, int64_t v_stride);
    /* y[2 * r + s][c] = (A^T m_c A)[r][s] (+ bias[c] when bias is not NULL)
     * for c < count, where element xi of m_c is m[xi * m_stride + c]. */
    void (*output)(const float *m, int64_t m_stride, int64_t count, const float *bias, float *const y[4]);
    /* The adjoints, for the weight gradient: m[xi * m_stride + c] =
     * (A dy_c A^T)[xi] with element (r, s) of dy_c dy[2 * r + s][c], and
     * g[(3 * kh + kw) * g_stride + i] = (G^T u_i G)[kh][kw] with element xi
     * of u_i u[xi * u_stride + i]. */
    void (*grad_output)(const float *const dy[4], int64_t count, float *m, int64_t m_stride);
    void (*grad_kernel)(const float *u, int64_t u_stride, int64_t count, float *g, int64_t g_stride);
};

extern CNNC_INTERNAL const struct cnnc_winograd_kernels cnnc_winograd_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_winograd_kernels cnnc_winograd_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_winograd_kernels cnnc_winograd_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_winograd_kernels cnnc_winograd_kernels_neon;

#endif
