/* Multiplies and adds stay separate (no FMA contraction) so that every ISA
 * path computes the same sample coordinates and values, bit for bit. */
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>
#include "augment_kernels.h"

/* Separate multiplies and adds (no FMA) keep the results bit-identical to
 * the scalar path. */
static void scale_clip(int64_t n, const float *x, float a, float b, float lo, float hi, float *y)
{
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_mul_ps(va, _mm256_loadu_ps(x + i)), vb);
        _mm256_storeu_ps(y + i, _mm256_min_ps(_mm256_max_ps(v, vlo), vhi));
    }
    for (; i < n; ++i) {
        float v = a * x[i] + b;
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}

static void bilinear_row_c1(const struct cnnc_warp_row *r, int64_t u0, int64_t u1, float *dst)
{
    const __m256 mx = _mm256_set1_ps(r->mx), my = _mm256_set1_ps(r->my);
    const __m256 rx = _mm256_set1_ps(r->row_x), ry = _mm256_set1_ps(r->row_y);
    const __m256i vw = _mm256_set1_epi32((int)r->w), one = _mm256_set1_epi32(1);
    const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    int64_t u = u0;
    for (; u + 8 <= u1; u += 8) {
        __m256 uu = _mm256_add_ps(_mm256_set1_ps((float)u), lane);
        __m256 xs = _mm256_add_ps(_mm256_mul_ps(uu, mx), rx);
        __m256 ys = _mm256_add_ps(_mm256_mul_ps(uu, my), ry);
        __m256 xf = _mm256_floor_ps(xs), yf = _mm256_floor_ps(ys);
        __m256i idx = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_cvttps_epi32(yf), vw), _mm256_cvttps_epi32(xf));
        __m256 v00 = _mm256_i32gather_ps(r->src, idx, 4);
        __m256 v01 = _mm256_i32gather_ps(r->src, _mm256_add_epi32(idx, one), 4);
        __m256i idx1 = _mm256_add_epi32(idx, vw);
        __m256 v10 = _mm256_i32gather_ps(r->src, idx1, 4);
        __m256 v11 = _mm256_i32gather_ps(r->src, _mm256_add_epi32(idx1, one), 4);
        __m256 fx = _mm256_sub_ps(xs, xf), fy = _mm256_sub_ps(ys, yf);
        __m256 top = _mm256_add_ps(v00, _mm256_mul_ps(fx, _mm256_sub_ps(v01, v00)));
        __m256 bottom = _mm256_add_ps(v10, _mm256_mul_ps(fx, _mm256_sub_ps(v11, v10)));
        _mm256_storeu_ps(dst + u, _mm256_add_ps(top, _mm256_mul_ps(fy, _mm256_sub_ps(bottom, top))));
    }
    if (u < u1)
        cnnc_augment_kernels_scalar.bilinear_row_c1(r, u, u1, dst);
}

const struct cnnc_augment_kernels cnnc_augment_kernels_avx2 = {
    .scale_clip = scale_clip,
    .bilinear_row_c1 = bilinear_row_c1,
};
