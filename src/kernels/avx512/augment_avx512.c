/* Multiplies and adds stay separate (no FMA contraction) so that every ISA
 * path computes the same sample coordinates and values, bit for bit. */
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>
#include "augment_kernels.h"

/* Separate multiplies and adds (no FMA) keep the results bit-identical to
 * the scalar path; masked tails avoid a scalar loop. */
static void scale_clip(int64_t n, const float *x, float a, float b, float lo, float hi, float *y)
{
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_add_ps(_mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i)), vb);
        _mm512_mask_storeu_ps(y + i, m, _mm512_min_ps(_mm512_max_ps(v, vlo), vhi));
    }
}

static void bilinear_row_c1(const struct cnnc_warp_row *r, int64_t u0, int64_t u1, float *dst)
{
    const __m512 mx = _mm512_set1_ps(r->mx), my = _mm512_set1_ps(r->my);
    const __m512 rx = _mm512_set1_ps(r->row_x), ry = _mm512_set1_ps(r->row_y);
    const __m512i vw = _mm512_set1_epi32((int)r->w), one = _mm512_set1_epi32(1);
    const __m512 lane = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t u = u0; u < u1; u += 16) {
        __mmask16 m = u1 - u >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (u1 - u)) - 1);
        __m512 uu = _mm512_add_ps(_mm512_set1_ps((float)u), lane);
        __m512 xs = _mm512_add_ps(_mm512_mul_ps(uu, mx), rx);
        __m512 ys = _mm512_add_ps(_mm512_mul_ps(uu, my), ry);
        __m512 xf = _mm512_roundscale_ps(xs, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        __m512 yf = _mm512_roundscale_ps(ys, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        __m512i idx = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_cvttps_epi32(yf), vw), _mm512_cvttps_epi32(xf));
        __m512i idx1 = _mm512_add_epi32(idx, vw);
        const __m512 z = _mm512_setzero_ps();
        __m512 v00 = _mm512_mask_i32gather_ps(z, m, idx, r->src, 4);
        __m512 v01 = _mm512_mask_i32gather_ps(z, m, _mm512_add_epi32(idx, one), r->src, 4);
        __m512 v10 = _mm512_mask_i32gather_ps(z, m, idx1, r->src, 4);
        __m512 v11 = _mm512_mask_i32gather_ps(z, m, _mm512_add_epi32(idx1, one), r->src, 4);
        __m512 fx = _mm512_sub_ps(xs, xf), fy = _mm512_sub_ps(ys, yf);
        __m512 top = _mm512_add_ps(v00, _mm512_mul_ps(fx, _mm512_sub_ps(v01, v00)));
        __m512 bottom = _mm512_add_ps(v10, _mm512_mul_ps(fx, _mm512_sub_ps(v11, v10)));
        _mm512_mask_storeu_ps(dst + u, m, _mm512_add_ps(top, _mm512_mul_ps(fy, _mm512_sub_ps(bottom, top))));
    }
}

const struct cnnc_augment_kernels cnnc_augment_kernels_avx512 = {
    .scale_clip = scale_clip,
    .bilinear_row_c1 = bilinear_row_c1,
};
