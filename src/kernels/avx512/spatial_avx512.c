/* Separate multiplies and adds (no FMA contraction): every ISA path gives
 * the same samples, bit for bit. */
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>
#include "spatial_kernels.h"

/* Sixteen grid points at a time: the scalar arithmetic of cnnc_find_taps
 * on lanes, and one masked gather per neighbour (lanes outside read 0). */
static void sample_c1(const float *img, int64_t h, int64_t w, const float *grid, int64_t count,
                      float *y)
{
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    const __m512 fw = _mm512_set1_ps((float)w), fh = _mm512_set1_ps((float)h);
    const __m512 minus1 = _mm512_set1_ps(-1.0f), zero = _mm512_setzero_ps();
    const __m512i iw = _mm512_set1_epi32((int)w), ih = _mm512_set1_epi32((int)h);
    const __m512i ione = _mm512_set1_epi32(1), iminus1 = _mm512_set1_epi32(-1);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, ione);
    int64_t p = 0;
    for (; p + 16 <= count; p += 16) {
        __m512 g0 = _mm512_loadu_ps(grid + 2 * p), g1 = _mm512_loadu_ps(grid + 2 * p + 16);
        __m512 xs = _mm512_permutex2var_ps(g0, even, g1), ys = _mm512_permutex2var_ps(g0, odd, g1);
        __m512 u = _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(_mm512_add_ps(xs, one), fw), one), half);
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(_mm512_add_ps(ys, one), fh), one), half);
        __mmask16 valid = _mm512_cmp_ps_mask(u, minus1, _CMP_GT_OQ) & _mm512_cmp_ps_mask(u, fw, _CMP_LT_OQ) &
                          _mm512_cmp_ps_mask(v, minus1, _CMP_GT_OQ) & _mm512_cmp_ps_mask(v, fh, _CMP_LT_OQ);
        u = _mm512_maskz_mov_ps(valid, u); /* keeps the conversions in range */
        v = _mm512_maskz_mov_ps(valid, v);
        __m512i x0 = _mm512_cvttps_epi32(u), y0 = _mm512_cvttps_epi32(v);
        x0 = _mm512_mask_sub_epi32(x0, _mm512_cmp_ps_mask(_mm512_cvtepi32_ps(x0), u, _CMP_GT_OQ), x0, ione);
        y0 = _mm512_mask_sub_epi32(y0, _mm512_cmp_ps_mask(_mm512_cvtepi32_ps(y0), v, _CMP_GT_OQ), y0, ione);
        __m512 fx = _mm512_sub_ps(u, _mm512_cvtepi32_ps(x0)), fy = _mm512_sub_ps(v, _mm512_cvtepi32_ps(y0));
        __m512 gx0 = _mm512_sub_ps(one, fx), gy0 = _mm512_sub_ps(one, fy);
        __m512i x1 = _mm512_add_epi32(x0, ione), y1 = _mm512_add_epi32(y0, ione);
        __mmask16 left = valid & _mm512_cmpgt_epi32_mask(x0, iminus1);
        __mmask16 right = valid & _mm512_cmpgt_epi32_mask(iw, x1);
        __mmask16 top = _mm512_cmpgt_epi32_mask(y0, iminus1), bottom = _mm512_cmpgt_epi32_mask(ih, y1);
        __m512i i00 = _mm512_add_epi32(_mm512_mullo_epi32(y0, iw), x0);
        __m512i i10 = _mm512_add_epi32(i00, iw);
        __m512 v00 = _mm512_mask_i32gather_ps(zero, top & left, i00, img, 4);
        __m512 v01 = _mm512_mask_i32gather_ps(zero, top & right, _mm512_add_epi32(i00, ione), img, 4);
        __m512 v10 = _mm512_mask_i32gather_ps(zero, bottom & left, i10, img, 4);
        __m512 v11 = _mm512_mask_i32gather_ps(zero, bottom & right, _mm512_add_epi32(i10, ione), img, 4);
        __m512 acc = _mm512_add_ps(zero, _mm512_mul_ps(_mm512_mul_ps(gx0, gy0), v00));
        acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(fx, gy0), v01));
        acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(gx0, fy), v10));
        acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(fx, fy), v11));
        _mm512_storeu_ps(y + p, acc);
    }
    for (; p < count; ++p)
        y[p] = cnnc_sample_c1(img, h, w, grid[2 * p], grid[2 * p + 1]);
}

const struct cnnc_spatial_kernels cnnc_spatial_kernels_avx512 = {
    .sample_c1 = sample_c1,
};
