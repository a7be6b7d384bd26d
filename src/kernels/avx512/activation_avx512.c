#include "activation_kernels.h"
#include "vecmath_avx512.h"

/* Lane-wise mirrors of the formulas in ../scalar/activation_scalar.c (see the
 * reasoning there); tails use masked loads and stores. */

#define V(c) _mm512_set1_ps(c)
#define ZERO _mm512_setzero_ps()
#define CMP(a, b, op) _mm512_cmp_ps_mask((a), (b), op)
/* mask ? b : a */
#define SELECT(mask, a, b) _mm512_mask_blend_ps((mask), (a), (b))

static inline __m512 relu_f(__m512 x, __m512 a) { return _mm512_max_ps(ZERO, x); }
static inline __m512 relu_b(__m512 x, __m512 dy, __m512 a)
{
    return _mm512_maskz_mov_ps(CMP(x, ZERO, _CMP_GT_OQ), dy);
}

static inline __m512 leaky_relu_f(__m512 x, __m512 a)
{
    return SELECT(CMP(x, ZERO, _CMP_GT_OQ), _mm512_mul_ps(a, x), x);
}
static inline __m512 leaky_relu_b(__m512 x, __m512 dy, __m512 a)
{
    return SELECT(CMP(x, ZERO, _CMP_GT_OQ), _mm512_mul_ps(a, dy), dy);
}

static inline __m512 elu_f(__m512 x, __m512 a)
{
    return SELECT(CMP(x, ZERO, _CMP_GT_OQ), _mm512_mul_ps(a, cnnc_expm1_avx512(x)), x);
}
static inline __m512 elu_b(__m512 x, __m512 dy, __m512 a)
{
    return SELECT(CMP(x, ZERO, _CMP_GT_OQ), _mm512_mul_ps(_mm512_mul_ps(dy, a), cnnc_exp_avx512(x)), dy);
}

static inline __m512 sigmoid_f(__m512 x, __m512 a)
{
    __m512 e = cnnc_exp_avx512(_mm512_sub_ps(ZERO, cnnc_abs_avx512(x)));
    __m512 s = _mm512_div_ps(V(1.0f), _mm512_add_ps(V(1.0f), e));
    return SELECT(CMP(x, ZERO, _CMP_GE_OQ), _mm512_mul_ps(e, s), s);
}
static inline __m512 sigmoid_b(__m512 x, __m512 dy, __m512 a)
{
    __m512 e = cnnc_exp_avx512(_mm512_sub_ps(ZERO, cnnc_abs_avx512(x)));
    __m512 s = _mm512_div_ps(V(1.0f), _mm512_add_ps(V(1.0f), e));
    return _mm512_mul_ps(dy, _mm512_mul_ps(_mm512_mul_ps(e, s), s));
}

static inline __m512 tanh_f(__m512 x, __m512 a)
{
    __m512 em = cnnc_expm1_avx512(_mm512_mul_ps(V(-2.0f), cnnc_abs_avx512(x)));
    __m512 t = _mm512_div_ps(_mm512_sub_ps(ZERO, em), _mm512_add_ps(V(2.0f), em));
    return cnnc_copysign_avx512(t, x);
}
static inline __m512 tanh_b(__m512 x, __m512 dy, __m512 a)
{
    __m512 e = cnnc_exp_avx512(_mm512_mul_ps(V(-2.0f), cnnc_abs_avx512(x)));
    __m512 d = _mm512_add_ps(V(1.0f), e);
    return _mm512_mul_ps(dy, _mm512_div_ps(_mm512_mul_ps(V(4.0f), e), _mm512_mul_ps(d, d)));
}

static inline __m512 clamp_low20(__m512 x) { return _mm512_max_ps(V(-20.0f), x); }
static inline __m512 clamp20(__m512 x) { return _mm512_min_ps(V(20.0f), clamp_low20(x)); }

static inline __m512 normal_cdf(__m512 x)
{
    __m512 c = cnnc_normal_tail_avx512(cnnc_abs_avx512(x));
    return SELECT(CMP(x, ZERO, _CMP_GE_OQ), c, _mm512_sub_ps(V(1.0f), c));
}
static inline __m512 gelu_f(__m512 x, __m512 a) { return _mm512_mul_ps(clamp_low20(x), normal_cdf(x)); }
static inline __m512 gelu_b(__m512 x, __m512 dy, __m512 a)
{
    __m512 xc = clamp20(x);
    __m512 pdf = cnnc_normal_pdf_avx512(xc);
    return _mm512_mul_ps(dy, _mm512_fmadd_ps(xc, pdf, normal_cdf(x)));
}

static inline __m512 gelu_tanh_w(__m512 xc)
{
    __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(V(CNNC_GELU_K1), xc), xc, V(1.0f));
    return _mm512_mul_ps(_mm512_mul_ps(V(2.0f * CNNC_GELU_K0), xc), inner);
}
static inline __m512 gelu_tanh_f(__m512 x, __m512 a)
{
    return _mm512_mul_ps(clamp_low20(x), sigmoid_f(gelu_tanh_w(clamp20(x)), a));
}
static inline __m512 gelu_tanh_b(__m512 x, __m512 dy, __m512 a)
{
    __m512 xc = clamp20(x);
    __m512 w = gelu_tanh_w(xc);
    __m512 e = cnnc_exp_avx512(_mm512_sub_ps(ZERO, cnnc_abs_avx512(w)));
    __m512 s = _mm512_div_ps(V(1.0f), _mm512_add_ps(V(1.0f), e));
    __m512 sg = SELECT(CMP(w, ZERO, _CMP_GE_OQ), _mm512_mul_ps(e, s), s);
    __m512 dw = _mm512_mul_ps(V(2.0f * CNNC_GELU_K0),
                              _mm512_fmadd_ps(_mm512_mul_ps(V(3.0f * CNNC_GELU_K1), xc), xc, V(1.0f)));
    __m512 ds = _mm512_mul_ps(_mm512_mul_ps(e, s), s);
    return _mm512_mul_ps(dy, _mm512_fmadd_ps(_mm512_mul_ps(xc, ds), dw, sg));
}

static inline __m512 silu_f(__m512 x, __m512 a) { return _mm512_mul_ps(_mm512_max_ps(V(-104.0f), x), sigmoid_f(x, a)); }
static inline __m512 silu_b(__m512 x, __m512 dy, __m512 a)
{
    __m512 xc = _mm512_min_ps(V(104.0f), _mm512_max_ps(V(-104.0f), x));
    __m512 e = cnnc_exp_avx512(_mm512_sub_ps(ZERO, cnnc_abs_avx512(x)));
    __m512 s = _mm512_div_ps(V(1.0f), _mm512_add_ps(V(1.0f), e));
    __m512 sg = SELECT(CMP(x, ZERO, _CMP_GE_OQ), _mm512_mul_ps(e, s), s);
    return _mm512_mul_ps(dy, _mm512_fmadd_ps(xc, _mm512_mul_ps(_mm512_mul_ps(e, s), s), sg));
}

static inline __m512 softplus_f(__m512 x, __m512 a)
{
    __m512 e = cnnc_exp_avx512(_mm512_sub_ps(ZERO, cnnc_abs_avx512(x)));
    return _mm512_add_ps(_mm512_max_ps(ZERO, x), cnnc_log1p_avx512(e));
}
static inline __m512 softplus_b(__m512 x, __m512 dy, __m512 a) { return _mm512_mul_ps(dy, sigmoid_f(x, a)); }

static inline __m512 relu6_f(__m512 x, __m512 a) { return _mm512_min_ps(V(6.0f), _mm512_max_ps(ZERO, x)); }
static inline __m512 relu6_b(__m512 x, __m512 dy, __m512 a)
{
    return SELECT((__mmask16)(CMP(x, ZERO, _CMP_GT_OQ) & CMP(x, V(6.0f), _CMP_LT_OQ)), ZERO, dy);
}

static inline __m512 hard_sigmoid_f(__m512 x, __m512 a)
{
    return _mm512_mul_ps(relu6_f(_mm512_add_ps(x, V(3.0f)), a), V(1.0f / 6.0f));
}
static inline __m512 hard_sigmoid_b(__m512 x, __m512 dy, __m512 a)
{
    return SELECT((__mmask16)(CMP(x, V(-3.0f), _CMP_GT_OQ) & CMP(x, V(3.0f), _CMP_LT_OQ)), ZERO, _mm512_mul_ps(dy, V(1.0f / 6.0f)));
}

static inline __m512 hard_swish_f(__m512 x, __m512 a)
{
    return SELECT(CMP(x, V(-3.0f), _CMP_LT_OQ), _mm512_mul_ps(x, hard_sigmoid_f(x, a)), ZERO);
}
static inline __m512 hard_swish_b(__m512 x, __m512 dy, __m512 a)
{
    __m512 mid = _mm512_mul_ps(dy, _mm512_fmadd_ps(x, V(1.0f / 3.0f), V(0.5f)));
    __m512 r = SELECT(CMP(x, V(3.0f), _CMP_LT_OQ), dy, mid);
    return SELECT(CMP(x, V(-3.0f), _CMP_LE_OQ), r, ZERO);
}

static inline __m512 selu_f(__m512 x, __m512 a) { return _mm512_mul_ps(V(CNNC_SELU_SCALE), elu_f(x, V(CNNC_SELU_ALPHA))); }
static inline __m512 selu_b(__m512 x, __m512 dy, __m512 a)
{
    return _mm512_mul_ps(V(CNNC_SELU_SCALE), elu_b(x, dy, V(CNNC_SELU_ALPHA)));
}

#define ELEMENTWISE(name) CNNC_ACTIVATION_PAIR(name, cnnc_map1_avx512, cnnc_map2_avx512)
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
    __m512 m = V(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = cnnc_tail_mask_avx512(n - i);
        m = _mm512_max_ps(_mm512_mask_loadu_ps(V(-INFINITY), mask, x + i), m); /* NaN is skipped */
    }
    return _mm512_reduce_max_ps(m);
}

/* Sums run in float vectors over blocks of CNNC_SUM_BLOCK elements and add
 * the block totals in double: a long row summed in float alone would lose
 * digits. */
#define CNNC_SUM_BLOCK 1024

static float exp_sum(int64_t n, const float *x, float shift, float *y)
{
    const __m512 sh = V(shift);
    double total = 0.0;
    for (int64_t start = 0; start < n; start += CNNC_SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + CNNC_SUM_BLOCK);
        __m512 acc0 = ZERO, acc1 = ZERO;
        int64_t i = start;
        for (; i + 32 <= end; i += 32) {
            __m512 e0 = cnnc_exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
            __m512 e1 = cnnc_exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), sh));
            if (y) {
                _mm512_storeu_ps(y + i, e0);
                _mm512_storeu_ps(y + i + 16, e1);
            }
            acc0 = _mm512_add_ps(acc0, e0);
            acc1 = _mm512_add_ps(acc1, e1);
        }
        for (; i < end; i += 16) {
            __mmask16 mask = cnnc_tail_mask_avx512(end - i);
            __m512 e = _mm512_maskz_mov_ps(mask, cnnc_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), sh)));
            if (y)
                _mm512_mask_storeu_ps(y + i, mask, e);
            acc0 = _mm512_add_ps(acc0, e);
        }
        total += _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
    return (float)total;
}

static void affine(int64_t n, const float *x, float shift, float scale, float offset, float *y)
{
    const __m512 sh = V(shift), sc = V(scale), off = V(offset);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = cnnc_tail_mask_avx512(n - i);
        __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        _mm512_mask_storeu_ps(y + i, mask, _mm512_fmadd_ps(_mm512_sub_ps(v, sh), sc, off));
    }
}

static float sum(int64_t n, const float *x)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += CNNC_SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + CNNC_SUM_BLOCK);
        __m512 acc = ZERO;
        for (int64_t i = start; i < end; i += 16)
            acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(cnnc_tail_mask_avx512(end - i), x + i));
        total += _mm512_reduce_add_ps(acc);
    }
    return (float)total;
}

static float dot(int64_t n, const float *a, const float *b)
{
    double total = 0.0;
    for (int64_t start = 0; start < n; start += CNNC_SUM_BLOCK) {
        const int64_t end = cnnc_min_i64(n, start + CNNC_SUM_BLOCK);
        __m512 acc = ZERO;
        for (int64_t i = start; i < end; i += 16) {
            __mmask16 mask = cnnc_tail_mask_avx512(end - i);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), acc);
        }
        total += _mm512_reduce_add_ps(acc);
    }
    return (float)total;
}

static void softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    const __m512 sv = V(s);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = cnnc_tail_mask_avx512(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, dy + i), sv);
        _mm512_mask_storeu_ps(dx + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, y + i), d));
    }
}

static void log_softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    const __m512 sv = V(s);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = cnnc_tail_mask_avx512(n - i);
        __m512 e = cnnc_exp_avx512(_mm512_maskz_loadu_ps(mask, y + i));
        _mm512_mask_storeu_ps(dx + i, mask, _mm512_fnmadd_ps(e, sv, _mm512_maskz_loadu_ps(mask, dy + i)));
    }
}

const struct cnnc_activation_kernels cnnc_activation_kernels_avx512 = CNNC_ACTIVATION_TABLE;
