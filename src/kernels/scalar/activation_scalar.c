#include "activation_kernels.h"
#include "vecmath_scalar.h"

/* Each activation is a pair of inline functions (value, gradient) that the
 * map loops apply; the other ISA files mirror these formulas lane-wise. */

static inline float relu_f(float x, float a) { return x < 0.0f ? 0.0f : x; }
static inline float relu_b(float x, float dy, float a) { return x > 0.0f ? dy : 0.0f; }

static inline float leaky_relu_f(float x, float a) { return x > 0.0f ? x : a * x; }
static inline float leaky_relu_b(float x, float dy, float a) { return x > 0.0f ? dy : a * dy; }

static inline float elu_f(float x, float a) { return x > 0.0f ? x : a * cnnc_expm1_scalar(x); }
static inline float elu_b(float x, float dy, float a)
{
    return x > 0.0f ? dy : dy * a * cnnc_exp_scalar(x);
}

/* With e = exp(-|x|) <= 1 nothing overflows: sigmoid(|x|) = 1 / (1 + e),
 * sigmoid(-|x|) = e / (1 + e), and sigmoid' = e / (1 + e)^2 on both sides. */
static inline float sigmoid_f(float x, float a)
{
    float e = cnnc_exp_scalar(-cnnc_abs_scalar(x));
    float s = 1.0f / (1.0f + e);
    return x >= 0.0f ? s : e * s;
}
static inline float sigmoid_b(float x, float dy, float a)
{
    float e = cnnc_exp_scalar(-cnnc_abs_scalar(x));
    float s = 1.0f / (1.0f + e);
    return dy * (e * s * s);
}

/* tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|)): exact near 0, 1 at +inf;
 * tanh' = 4 e / (1 + e)^2 with e = exp(-2|x|). */
static inline float tanh_f(float x, float a)
{
    float em = cnnc_expm1_scalar(-2.0f * cnnc_abs_scalar(x));
    return cnnc_copysign_scalar(-em / (2.0f + em), x);
}
static inline float tanh_b(float x, float dy, float a)
{
    float e = cnnc_exp_scalar(-2.0f * cnnc_abs_scalar(x));
    float d = 1.0f + e;
    return dy * (4.0f * e / (d * d));
}

/* Beyond |x| = 20 the normal tail underflows; clamping there turns
 * inf * 0 into the limit at +-inf instead of NaN. */
static inline float clamp20(float x)
{
    x = x < -20.0f ? -20.0f : x;
    return x > 20.0f ? 20.0f : x;
}

/* Phi(x) from the upper tail at |x|, so that the left tail keeps its
 * relative accuracy (1 + erf(x) would cancel). */
static inline float normal_cdf(float x)
{
    float c = cnnc_normal_tail_scalar(cnnc_abs_scalar(x));
    return x >= 0.0f ? 1.0f - c : c;
}
static inline float gelu_f(float x, float a)
{
    float xc = x < -20.0f ? -20.0f : x;
    return xc * normal_cdf(x);
}
static inline float gelu_b(float x, float dy, float a)
{
    float xc = clamp20(x);
    return dy * (normal_cdf(x) + xc * cnnc_normal_pdf_scalar(xc));
}

/* x (1 + tanh v) / 2 = x sigmoid(2v), v = sqrt(2/pi) (x + 0.044715 x^3):
 * no cancellation for negative x. */
static inline float gelu_tanh_f(float x, float a)
{
    float xc = clamp20(x);
    float w = 2.0f * CNNC_GELU_K0 * xc * (1.0f + CNNC_GELU_K1 * xc * xc);
    float xs = x < -20.0f ? -20.0f : x;
    return xs * sigmoid_f(w, 0.0f);
}
static inline float gelu_tanh_b(float x, float dy, float a)
{
    float xc = clamp20(x);
    float w = 2.0f * CNNC_GELU_K0 * xc * (1.0f + CNNC_GELU_K1 * xc * xc);
    float e = cnnc_exp_scalar(-cnnc_abs_scalar(w));
    float s = 1.0f / (1.0f + e);
    float sg = w >= 0.0f ? s : e * s;
    float dw = 2.0f * CNNC_GELU_K0 * (1.0f + 3.0f * CNNC_GELU_K1 * xc * xc);
    return dy * (sg + xc * (e * s * s) * dw);
}

/* x sigmoid(x); the clamp turns -inf * 0 into the limit 0 (sigmoid has
 * underflowed long before -104). silu' = s + x s (1 - s). */
static inline float silu_f(float x, float a)
{
    float xc = x < -104.0f ? -104.0f : x;
    return xc * sigmoid_f(x, a);
}
static inline float silu_b(float x, float dy, float a)
{
    float xc = x < -104.0f ? -104.0f : x;
    xc = xc > 104.0f ? 104.0f : xc;
    float e = cnnc_exp_scalar(-cnnc_abs_scalar(x));
    float s = 1.0f / (1.0f + e);
    float sg = x >= 0.0f ? s : e * s;
    return dy * (sg + xc * (e * s * s));
}

/* max(x, 0) + log1p(exp(-|x|)): no overflow, exact for large |x|. */
static inline float softplus_f(float x, float a)
{
    float pos = x < 0.0f ? 0.0f : x;
    return pos + cnnc_log1p_scalar(cnnc_exp_scalar(-cnnc_abs_scalar(x)));
}
static inline float softplus_b(float x, float dy, float a) { return dy * sigmoid_f(x, a); }

static inline float relu6_f(float x, float a)
{
    x = x < 0.0f ? 0.0f : x;
    return x > 6.0f ? 6.0f : x;
}
static inline float relu6_b(float x, float dy, float a) { return x > 0.0f && x < 6.0f ? dy : 0.0f; }

static inline float hard_sigmoid_f(float x, float a) { return relu6_f(x + 3.0f, a) * (1.0f / 6.0f); }
static inline float hard_sigmoid_b(float x, float dy, float a)
{
    return x > -3.0f && x < 3.0f ? dy * (1.0f / 6.0f) : 0.0f;
}

/* Zero below -3 stated outright, so that -inf gives 0, not -inf * 0. */
static inline float hard_swish_f(float x, float a) { return x < -3.0f ? 0.0f : x * hard_sigmoid_f(x, a); }
static inline float hard_swish_b(float x, float dy, float a)
{
    float mid = dy * (x * (1.0f / 3.0f) + 0.5f);
    return x <= -3.0f ? 0.0f : (x < 3.0f ? mid : dy);
}

static inline float selu_f(float x, float a) { return CNNC_SELU_SCALE * elu_f(x, CNNC_SELU_ALPHA); }
static inline float selu_b(float x, float dy, float a) { return CNNC_SELU_SCALE * elu_b(x, dy, CNNC_SELU_ALPHA); }

#define ELEMENTWISE(name) CNNC_ACTIVATION_PAIR(name, cnnc_map1_scalar, cnnc_map2_scalar)
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
    float m = -INFINITY;
    for (int64_t i = 0; i < n; ++i)
        m = x[i] > m ? x[i] : m;
    return m;
}

/* Sums accumulate in double: a row of a million terms summed in float would
 * lose four digits. */
static float exp_sum(int64_t n, const float *x, float shift, float *y)
{
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        float e = cnnc_exp_scalar(x[i] - shift);
        if (y)
            y[i] = e;
        total += e;
    }
    return (float)total;
}

static void affine(int64_t n, const float *x, float shift, float scale, float offset, float *y)
{
    for (int64_t i = 0; i < n; ++i)
        y[i] = (x[i] - shift) * scale + offset;
}

static float sum(int64_t n, const float *x)
{
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i)
        total += x[i];
    return (float)total;
}

static float dot(int64_t n, const float *a, const float *b)
{
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i)
        total += (double)a[i] * b[i];
    return (float)total;
}

static void softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    for (int64_t i = 0; i < n; ++i)
        dx[i] = y[i] * (dy[i] - s);
}

static void log_softmax_grad(int64_t n, const float *y, const float *dy, float s, float *dx)
{
    for (int64_t i = 0; i < n; ++i)
        dx[i] = dy[i] - cnnc_exp_scalar(y[i]) * s;
}

const struct cnnc_activation_kernels cnnc_activation_kernels_scalar = CNNC_ACTIVATION_TABLE;
