#include "activation_kernels.h"
#include "vecmath_avx2.h"

/* Lane-wise mirrors of the formulas in ../scalar/activation_scalar.c (see the
 * reasoning there). */

#define V(c) _mm256_set1_ps(c)
#define ZERO _mm256_setzero_ps()
/* mask ? b : a */
#define SELECT(mask, a, b) _mm256_blendv_ps((a), (b), (mask))
#define CMP(a, b, op) _mm256_cmp_ps((a), (b), op)

static inline __m256 relu_f(__m256 x, __m256 a) { return _mm256_max_ps(ZERO, x); }
static inline __m256 relu_b(__m256 x, __m256 dy, __m256 a)
{
    return _mm256_and_ps(CMP(x, ZERO, _CMP_GT_OQ), dy);
}

static inline __m256 leaky_relu_f(__m256 x, __m256 a)
{
    return SELECT(CMP(x, ZERO, _CMP_GT_OQ), _mm256_mul_ps(a, x), x);
}
static inline __m256 leaky_relu_b(__m256 x, __m256 dy, __m256 a)
{
    return SELECT(CMP(x, ZERO, _CMP_GT_OQ), _mm256_mul_ps(a, dy), dy);
}

static inline __m256 elu_f(__m256 x, __m256 a)
{
    return SELECT(CMP(x, ZERO, _CMP_GT_OQ), _mm256_mul_ps(a, cnnc_expm1_avx2(x)), x);
}
static inline __m256 elu_b(__m256 x, __m256 dy, __m256 a)
{
    return SELECT(CMP(x, ZERO, _CMP_GT_OQ), _mm256_mul_ps(_mm256_mul_ps(dy, a), cnnc_exp_avx2(x)), dy);
}

static inline __m256 sigmoid_f(__m256 x, __m256 a)
{
    __m256 e = cnnc_exp_avx2(_mm256_sub_ps(ZERO, cnnc_abs_avx2(x)));
    __m256 s = _mm256_div_ps(V(1.0f), _mm256_add_ps(V(1.0f), e));
    return SELECT(CMP(x, ZERO, _CMP_GE_OQ), _mm256_mul_ps(e, s), s);
}
static inline __m256 sigmoid_b(__m256 x, __m256 dy, __m256 a)
{
    __m256 e = cnnc_exp_avx2(_mm256_sub_ps(ZERO, cnnc_abs_avx2(x)));
    __m256 s = _mm256_div_ps(V(1.0f), _mm256_add_ps(V(1.0f), e));
    return _mm256_mul_ps(dy, _mm256_mul_ps(_mm256_mul_ps(e, s), s));
}

static inline __m256 tanh_f(__m256 x, __m256 a)
{
    __m256 em = cnnc_expm1_avx2(_mm256_mul_ps(V(-2.0f), cnnc_abs_avx2(x)));
    __m256 t = _mm256_div_ps(_mm256_sub_ps(ZERO, em), _mm256_add_ps(V(2.0f), em));
    return cnnc_copysign_avx2(t, x);
}
static inline __m256 tanh_b(__m256 x, __m256 dy, __m256 a)
{
    __m256 e = cnnc_exp_avx2(_mm256_mul_ps(V(-2.0f), cnnc_abs_avx2(x)));
    __m256 d = _mm256_add_ps(V(1.0f), e);
    return _mm256_mul_ps(dy, _mm256_div_ps(_mm256_mul_ps(V(4.0f), e), _mm256_mul_ps(d, d)));
}

/* max/min keep NaN in their second operand. */
static inline __m256 clamp_low20(__m256 x) { return _mm256_max_ps(V(-20.0f), x); }
static inline __m256 clamp20(__m256 x) { return _mm256_min_ps(V(20.0f), clamp_low20(x)); }

static inline __m256 normal_cdf(__m256 x)
{
    __m256 c = cnnc_normal_tail_avx2(cnnc_abs_avx2(x));
    return SELECT(CMP(x, ZERO, _CMP_GE_OQ), c, _mm256_sub_ps(V(1.0f), c));
}
static inline __m256 gelu_f(__m256 x, __m256 a) { return _mm256_mul_ps(clamp_low20(x), normal_cdf(x)); }
static inline __m256 gelu_b(__m256 x, __m256 dy, __m256 a)
{
    __m256 xc = clamp20(x);
    __m256 pdf = cnnc_normal_pdf_avx2(xc);
    return _mm256_mul_ps(dy, _mm256_fmadd_ps(xc, pdf, normal_cdf(x)));
}

static inline __m256 gelu_tanh_w(__m256 xc)
{
    __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(V(CNNC_GELU_K1), xc), xc, V(1.0f));
    return _mm256_mul_ps(_mm256_mul_ps(V(2.0f * CNNC_GELU_K0), xc), inner);
}
static inline __m256 gelu_tanh_f(__m256 x, __m256 a)
{
    return _mm256_mul_ps(clamp_low20(x), sigmoid_f(gelu_tanh_w(clamp20(x)), a));
}
static inline __m256 gelu_tanh_b(__m256 x, __m256 dy, __m256 a)
{
    __m256 xc = clamp20(x);
    __m256 w = gelu_tanh_w(xc);
    __m256 e = cnnc_exp_avx2(_mm256_sub_ps(ZERO, cnnc_abs_avx2(w)));
    __m256 s = _mm256_div_ps(V(1.0f), _mm256_add_ps(V(1.0f), e));
    __m256 sg = SELECT(CMP(w, ZERO, _CMP_GE_OQ), _mm256_mul_ps(e, s), s);
    __m256 dw = _mm256_mul_ps(V(2.0f * CNNC_GELU_K0),
                              _mm256_fmadd_ps(_mm256_mul_ps(V(3.0f * CNNC_GELU_K1), xc), xc, V(1.0f)));
    __m256 ds = _mm256_mul_ps(_mm256_mul_ps(e, s), s);
    return _mm256_mul_ps(dy, _mm256_fmadd_ps(_mm256_mul_ps(xc, ds), dw, sg));
}

#define AND(a, b) _mm256_and_ps((a), (b))
static inline __m256 silu_f(__m256 x, __m256 a) { return _mm256_mul_ps(_mm256_max_ps(V(-104.0f), x), sigmoid_f(x, a)); }
static inline __m256 silu_b(__m256 x, __m256 dy, __m256 a)
{
    __m256 xc = _mm256_min_ps(V(104.0f), _mm256_max_ps(V(-104.0f), x));
    __m256 e = cnnc_exp_avx2(_mm256_sub_ps(ZERO, cnnc_abs_avx2(x)));
    __m256 s = _mm256_div_ps(V(1.0f), _mm256_add_ps(V(1.0f), e));
    __m256 sg = SELECT(CMP(x, ZERO, _CMP_GE_OQ), _mm256_mul_ps(e, s), s);
    return _mm256_mul_ps(dy, _mm256_fmadd_ps(xc, _mm256_mul_ps(_mm256_mul_ps(e, s), s), sg));
}

static inline __m256 softplus_f(__m256 x, __m256 a)
{
    __m256 e = cnnc_exp_avx2(_mm256_sub_ps(ZERO, cnnc_abs_avx2(x)));
    return _mm256_add_ps(_mm256_max_ps(ZERO, x), cnnc_log1p_avx2(e));
}
static inline __m256 softplus_b(__m256 x, __m256 dy, __m256 a) { return _mm256_mul_ps(dy, sigmoid_f(x, a)); }

static inline __m256 relu6_f(__m256 x, __m256 a) { return _mm256_min_ps(V(6.0f), _mm256_max_ps(ZERO, x)); }
static inline __m256 relu6_b(__m256 x, __m256 dy, __m256 a)
{
    return SELECT(AND(CMP(x, ZERO, _CMP_GT_OQ), CMP(x, V(6.0f), _CMP_LT_OQ)), ZERO, dy);
}

static inline __m256 hard_sigmoid_f(__m256 x, __m256 a)
{
    return _mm256_mul_ps(relu6_f(_mm256_add_ps(x, V(3.0f)), a), V(1.0f / 6.0f));
}
static inline __m256 hard_sigmoid_b(__m256 x, __m256 dy, __m256 a)
{
    return SELECT(AND(CMP(x, V(-3.0f), _CMP_GT_OQ), CMP(x, V(3.0f), _CMP_LT_OQ)), ZERO, _mm256_mul_ps(dy, V(1.0f / 6.0f)));
}

static inline __m256 hard_swish_f(__m256 x, __m256 a)
{
    return SELECT(CMP(x, V(-3.0f), _CMP_LT_OQ), _mm256_mul_ps(x, hard_sigmoid_f(x, a)), ZERO);
}
static inline __m256 hard_swish_b(__m256 x, __m256 dy, __m256 a)
{
    __m256 mid = _mm256_mul_ps(dy, _mm256_fmadd_ps(x, V(1.0f / 3.0f), V(0.5f)));
    __m256 r = SELECT(CMP(x, V(3.0f), _CMP_LT_OQ), dy, mid);
    return SELECT(CMP(x, V(-3.0f), _CMP_LE_OQ), r, ZERO);
}

static inline __m256 selu_f(__m256 x, __m256 a) { return _mm256_mul_ps(V(CNNC_SELU_SCALE), elu_f(x, V(CNNC_SELU_ALPHA))); }
static inline __m256 selu_b(__m256 x, __m256 dy, __m256 a)
{
    return _mm256_mul_ps(V(CNNC_SELU_SCALE), elu_b(x, dy, V(CNNC_SELU_ALPHA)));
}

#define ELEMENTWISE(name) CNNC_ACTIVATION_PAIR(name, cnnc_map1_avx2, cnnc_map2_avx2)
ELEMENTWISE(relu)
ELEMENTWISE(leaky_relu)
ELEMENTWISE(elu)
ELEMENTWISE(sigmoid)
ELEMENTWISE(tanh)
ELEMENTWISE(gelu)
ELEMENTWISE(gelu_tanh)
ELEMENTWISE(silu)
ELEMENTWISE(softplus)
ELEMENTWISE(relu6)
ELEMENTWISE(hard_sigmoid)
ELEMENTWISE(hard_swish)
ELEMENTWISE(selu)

/* ---- row primitives of softmax ---------------------------------------- */

static float row_max(int64_t n, const float *x)
{
    __m256 m = V(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        m = _mm256_max_ps(_mm256_loadu_ps(x + i), m); /* NaN in x is skipped */
    if (i < n) {
        __m256i mask = cnnc_tail_mask_avx2(n - i);
        __m256 v = SELECT(_mm256_castsi256_ps(mask), V(-INFINITY), _mm256_maskload_ps(x + i, mask));
        m = _mm256_max_ps(v, m);
    }
    return cnnc_hmax_avx2(m);
}

/* Sums run in float vectors over blocks of CNNC_SUM_BLOCK elements and add
 * the block totals in double: a long row summed in float alone would lose
 * digits. */
#define CNNC_SUM_BLOCK 1024

static float exp_sum(int64_t n, const float *x, float shift, float *y)
{
    const __m256 sh = V(shift);
    double total = 0.0;
    for (int64_t start = 0; start < n; start += CNNC_SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + CNNC_SUM_BLOCK);
        __m256 acc0 = ZERO, acc1 = ZERO;
        int64_t i = start;
        for (; i + 16 <= end; i += 16) {
            __m256 e0 = cnnc_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
            __m256 e1 = cnnc_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), sh));
            if (y) {
                _mm256_storeu_ps(y + i, e0);
                _mm256_storeu_ps(y + i + 8, e1);
            }
            acc0 = _mm256_add_ps(acc0, e0);
            acc1 = _mm256_add_ps(acc1, e1);
        }
        for (; i < end; i += 8) {
            __m256i mask = cnnc_tail_mask_avx2(end - i);
            __m256 e = cnnc_exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), sh));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
            if (y)
                _mm256_maskstore_ps(y + i, mask, e);
            acc0 = _mm256_add_ps(acc0, e);
        }
        total += cnnc_hsum_avx2(_mm256_add_ps(acc0, acc1));
    }
    return (float)total;
}

static void affine(int64_t n, const float *x, float shift, float scale, float offset, float *y)
{
    const __m256 sh = V(shift), sc = V(scale), off = V(offset);
    for (int64_t i = 0; i < n; i += 8) {
        __m256i mask = cnnc_tail_mask_avx2(n - i);
        __m256 v = _mm256_maskload_ps(x + i, mask);
        _mm256_maskstore_ps(y + i, mask, _mm256_fmadd_ps(_mm256_sub_ps(v, sh), sc, off));
    }
}

static float sum(int64_t n, const float *x)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += CNNC_SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + CNNC_SUM_BLOCK);
        __m256 acc = ZERO;
        for (int64_t i = start; i < end; i += 8)
            acc = _mm256_add_ps(acc, _mm256_maskload_ps(x + i, cnnc_tail_mask_avx2(end - i)));
        total += cnnc_hsum_avx2(acc);
    }
    return (float)total;
}

static float dot(int64_t n, const float *a, const float *b)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += CNNC_SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + CNNC_SUM_BLOCK);
        __m256 acc = ZERO;
        for (int64_t i = start; i < end; i += 8) {
            __m256i mask = cnnc_tail_mask_avx2(end - i);
            acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, mask), _mm256_maskload_ps(b + i, mask), acc);
        }
        total += cnnc_hsum_avx2(acc);
    }
    return (float)total;
}

static void softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    const __m256 sv = V(s);
    for (int64_t i = 0; i < n; i += 8) {
        __m256i mask = cnnc_tail_mask_avx2(n - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(dy + i, mask), sv);
        _mm256_maskstore_ps(dx + i, mask, _mm256_mul_ps(_mm256_maskload_ps(y + i, mask), d));
    }
}

static void log_softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    const __m256 sv = V(s);
    for (int64_t i = 0; i < n; i += 8) {
        __m256i mask = cnnc_tail_mask_avx2(n - i);
        __m256 e = cnnc_exp_avx2(_mm256_maskload_ps(y + i, mask));
        _mm256_maskstore_ps(dx + i, mask, _mm256_fnmadd_ps(e, sv, _mm256_maskload_ps(dy + i, mask)));
    }
}

const struct cnnc_activation_kernels cnnc_activation_kernels_avx2 = CNNC_ACTIVATION_TABLE;
