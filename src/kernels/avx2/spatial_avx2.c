/* Separate multiplies and adds (no FMA contraction): every ISA path gives
 * the same results, bit for bit. */
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>
#include "spatial_kernels.h"

/* cnnc_find_taps on eight grid points, with the four neighbours gathered
 * (lanes outside the image read 0); masks are all-ones lanes. */
struct lanes {
    __m256 fx, fy, gx0, gy0, v[4];
    __m256 valid, inside[4];
};

static inline void find_taps8(const float *img, int64_t h, int64_t w, const float *grid,
                              struct lanes *t)
{
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    const __m256 fw = _mm256_set1_ps((float)w), fh = _mm256_set1_ps((float)h);
    const __m256 minus1 = _mm256_set1_ps(-1.0f), zero = _mm256_setzero_ps();
    const __m256i iw = _mm256_set1_epi32((int)w), ih = _mm256_set1_epi32((int)h);
    const __m256i ione = _mm256_set1_epi32(1), iminus1 = _mm256_set1_epi32(-1);
    __m256 g0 = _mm256_loadu_ps(grid), g1 = _mm256_loadu_ps(grid + 8);
    /* (x0 y0 x1 y1 ...) -> x0..x7 and y0..y7 */
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
    t->fx = _mm256_sub_ps(u, _mm256_cvtepi32_ps(x0));
    t->fy = _mm256_sub_ps(v, _mm256_cvtepi32_ps(y0));
    t->gx0 = _mm256_sub_ps(one, t->fx);
    t->gy0 = _mm256_sub_ps(one, t->fy);
    __m256i vi = _mm256_castps_si256(valid);
    __m256i left = _mm256_and_si256(vi, _mm256_cmpgt_epi32(x0, iminus1));
    __m256i right = _mm256_and_si256(vi, _mm256_cmpgt_epi32(iw, _mm256_add_epi32(x0, ione)));
    __m256i top = _mm256_cmpgt_epi32(y0, iminus1);
    __m256i bottom = _mm256_cmpgt_epi32(ih, _mm256_add_epi32(y0, ione));
    t->valid = valid;
    t->inside[0] = _mm256_castsi256_ps(_mm256_and_si256(top, left));
    t->inside[1] = _mm256_castsi256_ps(_mm256_and_si256(top, right));
    t->inside[2] = _mm256_castsi256_ps(_mm256_and_si256(bottom, left));
    t->inside[3] = _mm256_castsi256_ps(_mm256_and_si256(bottom, right));
    __m256i i00 = _mm256_add_epi32(_mm256_mullo_epi32(y0, iw), x0);
    __m256i i10 = _mm256_add_epi32(i00, iw);
    const __m256i offsets[4] = {i00, _mm256_add_epi32(i00, ione), i10, _mm256_add_epi32(i10, ione)};
    for (int k = 0; k < 4; ++k)
        t->v[k] = _mm256_mask_i32gather_ps(zero, img, offsets[k], t->inside[k], 4);
}

static void sample_c1(const float *img, int64_t h, int64_t w, const float *grid, int64_t count,
                      float *y)
{
    int64_t p = 0;
    for (; p + 8 <= count; p += 8) {
        struct lanes t;
        find_taps8(img, h, w, grid + 2 * p, &t);
        const __m256 weight[4] = {_mm256_mul_ps(t.gx0, t.gy0), _mm256_mul_ps(t.fx, t.gy0),
                                  _mm256_mul_ps(t.gx0, t.fy), _mm256_mul_ps(t.fx, t.fy)};
        __m256 acc = _mm256_setzero_ps();
        for (int k = 0; k < 4; ++k)
            acc = _mm256_add_ps(acc, _mm256_mul_ps(weight[k], t.v[k]));
        _mm256_storeu_ps(y + p, acc);
    }
    for (; p < count; ++p)
        y[p] = cnnc_sample_c1(img, h, w, grid[2 * p], grid[2 * p + 1]);
}

static void grid_gradient_c1(const float *img, int64_t h, int64_t w, const float *grid,
                             const float *dy, int64_t count, float *dgrid)
{
    const __m256 half = _mm256_set1_ps(0.5f), sign = _mm256_set1_ps(-0.0f);
    const __m256 fw = _mm256_set1_ps((float)w), fh = _mm256_set1_ps((float)h);
    int64_t p = 0;
    for (; p + 8 <= count; p += 8) {
        struct lanes t;
        find_taps8(img, h, w, grid + 2 * p, &t);
        const __m256 du[4] = {_mm256_xor_ps(t.gy0, sign), t.gy0, _mm256_xor_ps(t.fy, sign), t.fy};
        const __m256 dv[4] = {_mm256_xor_ps(t.gx0, sign), _mm256_xor_ps(t.fx, sign), t.gx0, t.fx};
        __m256 g = _mm256_loadu_ps(dy + p);
        __m256 su = _mm256_setzero_ps(), sv = _mm256_setzero_ps();
        for (int k = 0; k < 4; ++k) {
            __m256 dot = _mm256_mul_ps(t.v[k], g);
            /* taps outside are skipped, as the scalar loop does */
            su = _mm256_blendv_ps(su, _mm256_add_ps(su, _mm256_mul_ps(du[k], dot)), t.inside[k]);
            sv = _mm256_blendv_ps(sv, _mm256_add_ps(sv, _mm256_mul_ps(dv[k], dot)), t.inside[k]);
        }
        __m256 gu = _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(su, fw), half), t.valid);
        __m256 gv = _mm256_and_ps(_mm256_mul_ps(_mm256_mul_ps(sv, fh), half), t.valid);
        __m256 lo = _mm256_unpacklo_ps(gu, gv), hi = _mm256_unpackhi_ps(gu, gv);
        _mm256_storeu_ps(dgrid + 2 * p, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(dgrid + 2 * p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    for (; p < count; ++p)
        cnnc_grid_gradient_point(img, 1, h, w, grid[2 * p], grid[2 * p + 1], dy + p, dgrid + 2 * p);
}

const struct cnnc_spatial_kernels cnnc_spatial_kernels_avx2 = {
    .sample_c1 = sample_c1,
    .grid_gradient_c1 = grid_gradient_c1,
};
