/* Separate multiplies and adds (no FMA contraction): every ISA path gives
 * the same results, bit for bit. */
#pragma GCC optimize("fp-contract=off")
#include <immintrin.h>
#include "spatial_kernels.h"

/* cnnc_find_taps on sixteen grid points, with the four neighbours gathered
 * (lanes outside the image read 0). */
struct lanes {
    __m512 fx, fy, gx0, gy0, v[4];
    __mmask16 valid, inside[4];
};

static inline void find_taps16(const float *img, int64_t h, int64_t w, const float *grid,
                               struct lanes *t)
{
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    const __m512 fw = _mm512_set1_ps((float)w), fh = _mm512_set1_ps((float)h);
    const __m512 minus1 = _mm512_set1_ps(-1.0f), zero = _mm512_setzero_ps();
    const __m512i iw = _mm512_set1_epi32((int)w), ih = _mm512_set1_epi32((int)h);
    const __m512i ione = _mm512_set1_epi32(1), iminus1 = _mm512_set1_epi32(-1);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512 g0 = _mm512_loadu_ps(grid), g1 = _mm512_loadu_ps(grid + 16);
    __m512 xs = _mm512_permutex2var_ps(g0, even, g1);
    __m512 ys = _mm512_permutex2var_ps(g0, _mm512_add_epi32(even, ione), g1);
    __m512 u = _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(_mm512_add_ps(xs, one), fw), one), half);
    __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(_mm512_add_ps(ys, one), fh), one), half);
    __mmask16 valid = _mm512_cmp_ps_mask(u, minus1, _CMP_GT_OQ) & _mm512_cmp_ps_mask(u, fw, _CMP_LT_OQ) &
                      _mm512_cmp_ps_mask(v, minus1, _CMP_GT_OQ) & _mm512_cmp_ps_mask(v, fh, _CMP_LT_OQ);
    u = _mm512_maskz_mov_ps(valid, u); /* keeps the conversions in range */
    v = _mm512_maskz_mov_ps(valid, v);
    __m512i x0 = _mm512_cvttps_epi32(u), y0 = _mm512_cvttps_epi32(v);
    x0 = _mm512_mask_sub_epi32(x0, _mm512_cmp_ps_mask(_mm512_cvtepi32_ps(x0), u, _CMP_GT_OQ), x0, ione);
    y0 = _mm512_mask_sub_epi32(y0, _mm512_cmp_ps_mask(_mm512_cvtepi32_ps(y0), v, _CMP_GT_OQ), y0, ione);
    t->fx = _mm512_sub_ps(u, _mm512_cvtepi32_ps(x0));
    t->fy = _mm512_sub_ps(v, _mm512_cvtepi32_ps(y0));
    t->gx0 = _mm512_sub_ps(one, t->fx);
    t->gy0 = _mm512_sub_ps(one, t->fy);
    __mmask16 left = valid & _mm512_cmpgt_epi32_mask(x0, iminus1);
    __mmask16 right = valid & _mm512_cmpgt_epi32_mask(iw, _mm512_add_epi32(x0, ione));
    __mmask16 top = _mm512_cmpgt_epi32_mask(y0, iminus1);
    __mmask16 bottom = _mm512_cmpgt_epi32_mask(ih, _mm512_add_epi32(y0, ione));
    t->valid = valid;
    t->inside[0] = top & left;
    t->inside[1] = top & right;
    t->inside[2] = bottom & left;
    t->inside[3] = bottom & right;
    __m512i i00 = _mm512_add_epi32(_mm512_mullo_epi32(y0, iw), x0);
    __m512i i10 = _mm512_add_epi32(i00, iw);
    const __m512i offsets[4] = {i00, _mm512_add_epi32(i00, ione), i10, _mm512_add_epi32(i10, ione)};
    for (int k = 0; k < 4; ++k)
        t->v[k] = _mm512_mask_i32gather_ps(zero, t->inside[k], offsets[k], img, 4);
}

static void sample_c1(const float *img, int64_t h, int64_t w, const float *grid, int64_t count,
                      float *y)
{
    int64_t p = 0;
    for (; p + 16 <= count; p += 16) {
        struct lanes t;
        find_taps16(img, h, w, grid + 2 * p, &t);
        const __m512 weight[4] = {_mm512_mul_ps(t.gx0, t.gy0), _mm512_mul_ps(t.fx, t.gy0),
                                  _mm512_mul_ps(t.gx0, t.fy), _mm512_mul_ps(t.fx, t.fy)};
        __m512 acc = _mm512_setzero_ps();
        for (int k = 0; k < 4; ++k)
            acc = _mm512_add_ps(acc, _mm512_mul_ps(weight[k], t.v[k]));
        _mm512_storeu_ps(y + p, acc);
    }
    for (; p < count; ++p)
        y[p] = cnnc_sample_c1(img, h, w, grid[2 * p], grid[2 * p + 1]);
}

static void grid_gradient_c1(const float *img, int64_t h, int64_t w, const float *grid,
                             const float *dy, int64_t count, float *dgrid)
{
    const __m512 half = _mm512_set1_ps(0.5f);
    const __m512 fw = _mm512_set1_ps((float)w), fh = _mm512_set1_ps((float)h);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    int64_t p = 0;
    for (; p + 16 <= count; p += 16) {
        struct lanes t;
        find_taps16(img, h, w, grid + 2 * p, &t);
        __m512 neg_gy0 = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(t.gy0), sign));
        __m512 neg_gx0 = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(t.gx0), sign));
        __m512 neg_fy = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(t.fy), sign));
        __m512 neg_fx = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(t.fx), sign));
        const __m512 du[4] = {neg_gy0, t.gy0, neg_fy, t.fy};
        const __m512 dv[4] = {neg_gx0, neg_fx, t.gx0, t.fx};
        __m512 g = _mm512_loadu_ps(dy + p);
        __m512 su = _mm512_setzero_ps(), sv = _mm512_setzero_ps();
        for (int k = 0; k < 4; ++k) {
            __m512 dot = _mm512_maskz_mul_ps(t.inside[k], t.v[k], g);
            su = _mm512_mask_add_ps(su, t.inside[k], su, _mm512_mul_ps(du[k], dot));
            sv = _mm512_mask_add_ps(sv, t.inside[k], sv, _mm512_mul_ps(dv[k], dot));
        }
        __m512 gu = _mm512_maskz_mul_ps(t.valid, _mm512_mul_ps(su, fw), half);
        __m512 gv = _mm512_maskz_mul_ps(t.valid, _mm512_mul_ps(sv, fh), half);
        _mm512_storeu_ps(dgrid + 2 * p, _mm512_permutex2var_ps(gu, lo, gv));
        _mm512_storeu_ps(dgrid + 2 * p + 16, _mm512_permutex2var_ps(gu, hi, gv));
    }
    for (; p < count; ++p)
        cnnc_grid_gradient_point(img, 1, h, w, grid[2 * p], grid[2 * p + 1], dy + p, dgrid + 2 * p);
}

const struct cnnc_spatial_kernels cnnc_spatial_kernels_avx512 = {
    .sample_c1 = sample_c1,
    .grid_gradient_c1 = grid_gradient_c1,
};
