/* Separate multiplies and adds (no FMA contraction): every ISA path gives
 * the same samples, bit for bit. */
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>
#include "spatial_kernels.h"

/* Eight grid points at a time: the scalar arithmetic of cnnc_find_taps on
 * lanes, and one masked gather per neighbour (lanes outside read 0). */
static void sample_c1(const float *img, int64_t h, int64_t w, const float *grid, int64_t count,
                      float *y)
{
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    const __m256 fw = _mm256_set1_ps((float)w), fh = _mm256_set1_ps((float)h);
    const __m256 minus1 = _mm256_set1_ps(-1.0f), zero = _mm256_setzero_ps();
    const __m256i iw = _mm256_set1_epi32((int)w), ih = _mm256_set1_epi32((int)h);
    const __m256i ione = _mm256_set1_epi32(1), iminus1 = _mm256_set1_epi32(-1);
    int64_t p = 0;
    for (; p + 8 <= count; p += 8) {
        __m256 g0 = _mm256_loadu_ps(grid + 2 * p), g1 = _mm256_loadu_ps(grid + 2 * p + 8);
        __m256 xs = _mm256_shuffle_ps(g0, g1, _MM_SHUFFLE(2, 0, 2, 0));
        __m256 ys = _mm256_shuffle_ps(g0, g1, _MM_SHUFFLE(3, 1, 3, 1));
        xs = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(xs), _MM_SHUFFLE(3, 1, 2, 0)));
        ys = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ys), _MM_SHUFFLE(3, 1, 2, 0)));
        __m256 u = _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(_mm256_add_ps(xs, one), fw), one), half);
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(_mm256_add_ps(ys, one), fh), one), half);
        __m256 valid = _mm256_and_ps(
            _mm256_and_ps(_mm256_cmp_ps(u, minus1, _CMP_GT_OQ), _mm256_cmp_ps(u, fw, _CMP_LT_OQ)),
            _mm256_and_ps(_mm256_cmp_ps(v, minus1, _CMP_GT_OQ), _mm256_cmp_ps(v, fh, _CMP_LT_OQ)));
        u = _mm256_and_ps(u, valid); /* keeps the conversions in range */
        v = _mm256_and_ps(v, valid);
        __m256i x0 = _mm256_cvttps_epi32(u), y0 = _mm256_cvttps_epi32(v);
        x0 = _mm256_add_epi32(x0, _mm256_castps_si256(_mm256_cmp_ps(_mm256_cvtepi32_ps(x0), u, _CMP_GT_OQ)));
        y0 = _mm256_add_epi32(y0, _mm256_castps_si256(_mm256_cmp_ps(_mm256_cvtepi32_ps(y0), v, _CMP_GT_OQ)));
        __m256 fx = _mm256_sub_ps(u, _mm256_cvtepi32_ps(x0)), fy = _mm256_sub_ps(v, _mm256_cvtepi32_ps(y0));
        __m256 gx0 = _mm256_sub_ps(one, fx), gy0 = _mm256_sub_ps(one, fy);
        __m256i x1 = _mm256_add_epi32(x0, ione), y1 = _mm256_add_epi32(y0, ione);
        __m256i vi = _mm256_castps_si256(valid);
        __m256i left = _mm256_and_si256(vi, _mm256_cmpgt_epi32(x0, iminus1));
        __m256i right = _mm256_and_si256(vi, _mm256_cmpgt_epi32(iw, x1));
        __m256i top = _mm256_cmpgt_epi32(y0, iminus1), bottom = _mm256_cmpgt_epi32(ih, y1);
        __m256i i00 = _mm256_add_epi32(_mm256_mullo_epi32(y0, iw), x0);
        __m256i i10 = _mm256_add_epi32(i00, iw);
        __m256 v00 = _mm256_mask_i32gather_ps(zero, img, i00, _mm256_castsi256_ps(_mm256_and_si256(top, left)), 4);
        __m256 v01 = _mm256_mask_i32gather_ps(zero, img, _mm256_add_epi32(i00, ione),
                                              _mm256_castsi256_ps(_mm256_and_si256(top, right)), 4);
        __m256 v10 = _mm256_mask_i32gather_ps(zero, img, i10, _mm256_castsi256_ps(_mm256_and_si256(bottom, left)), 4);
        __m256 v11 = _mm256_mask_i32gather_ps(zero, img, _mm256_add_epi32(i10, ione),
                                              _mm256_castsi256_ps(_mm256_and_si256(bottom, right)), 4);
        __m256 acc = _mm256_add_ps(zero, _mm256_mul_ps(_mm256_mul_ps(gx0, gy0), v00));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(fx, gy0), v01));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(gx0, fy), v10));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(fx, fy), v11));
        _mm256_storeu_ps(y + p, acc);
    }
    for (; p < count; ++p)
        y[p] = cnnc_sample_c1(img, h, w, grid[2 * p], grid[2 * p + 1]);
}

const struct cnnc_spatial_kernels cnnc_spatial_kernels_avx2 = {
    .sample_c1 = sample_c1,
};
