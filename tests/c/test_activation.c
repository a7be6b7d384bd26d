/* Activations and softmax against double-precision references from libm,
 * on every length up to a few vectors (all tail lengths) and a long array
 * that runs on several threads. */
#include <string.h>
#include "check.h"

static double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }
static double gelu_tanh_arg(double x) { return 0.7978845608028654 * (x + 0.044715 * x * x * x); }

static double ref_forward(cnnc_activation kind, double x, double a)
{
    switch (kind) {
    case CNNC_ACTIVATION_RELU: return x > 0 ? x : 0;
    case CNNC_ACTIVATION_LEAKY_RELU: return x > 0 ? x : a * x;
    case CNNC_ACTIVATION_ELU: return x > 0 ? x : a * expm1(x);
    case CNNC_ACTIVATION_SIGMOID: return sigmoid_d(x);
    case CNNC_ACTIVATION_TANH: return tanh(x);
    case CNNC_ACTIVATION_GELU: return 0.5 * x * erfc(-x / sqrt(2.0));
    case CNNC_ACTIVATION_GELU_TANH: return x * sigmoid_d(2 * gelu_tanh_arg(x));
    default: return NAN;
    }
}

static double ref_derivative(cnnc_activation kind, double x, double a)
{
    switch (kind) {
    case CNNC_ACTIVATION_RELU: return x > 0 ? 1 : 0;
    case CNNC_ACTIVATION_LEAKY_RELU: return x > 0 ? 1 : a;
    case CNNC_ACTIVATION_ELU: return x > 0 ? 1 : a * exp(x);
    case CNNC_ACTIVATION_SIGMOID: return sigmoid_d(x) * sigmoid_d(-x);
    case CNNC_ACTIVATION_TANH: return 1 - tanh(x) * tanh(x);
    case CNNC_ACTIVATION_GELU:
        return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
    case CNNC_ACTIVATION_GELU_TANH: {
        double w = 2 * gelu_tanh_arg(x);
        return sigmoid_d(w) + x * 2 * sigmoid_d(w) * sigmoid_d(-w) * 0.7978845608028654 *
                                  (1 + 3 * 0.044715 * x * x);
    }
    default: return NAN;
    }
}

/* Inputs in [-8, 8): a range where every function and derivative is well
 * conditioned away from its zeros, so one absolute + relative bound fits. */
static void test_elementwise(int64_t n)
{
    float *x = cnnc_malloc(n * sizeof(float)), *y = cnnc_malloc(n * sizeof(float));
    float *dy = cnnc_malloc(n * sizeof(float)), *dx = cnnc_malloc(n * sizeof(float));
    unsigned seed = (unsigned)n;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = 8.0f * check_uniform(&seed);
        dy[i] = check_uniform(&seed);
    }
    for (int k = 0; k < CNNC_ACTIVATION_COUNT; ++k) {
        const float alpha = 0.3f;
        CHECK_OK(cnnc_activation_forward((cnnc_activation)k, n, x, y, alpha));
        CHECK_OK(cnnc_activation_backward((cnnc_activation)k, n, x, dy, dx, alpha));
        int bad = 0;
        for (int64_t i = 0; i < n && bad < 3; ++i) {
            double want = ref_forward((cnnc_activation)k, x[i], alpha);
            double dwant = dy[i] * ref_derivative((cnnc_activation)k, x[i], alpha);
            if (fabs(y[i] - want) > 1e-5 * fabs(want) + 1e-6 || fabs(dx[i] - dwant) > 1e-5 * fabs(dwant) + 2e-6) {
                fprintf(stderr, "kind %d n %lld x %g: y %g want %g, dx %g want %g\n", k, (long long)n,
                        x[i], y[i], want, dx[i], dwant);
                ++bad;
            }
        }
        CHECK(bad == 0);
    }
    cnnc_free(x);
    cnnc_free(y);
    cnnc_free(dy);
    cnnc_free(dx);
}

static void test_special_values(void)
{
    const float inf = INFINITY;
    float x[6] = {-inf, -100.0f, 100.0f, inf, NAN, 0.0f}, y[6];
    CHECK_OK(cnnc_sigmoid_forward(6, x, y));
    CHECK(y[0] == 0.0f && y[1] == 0.0f && y[2] == 1.0f && y[3] == 1.0f && isnan(y[4]) && y[5] == 0.5f);
    CHECK_OK(cnnc_tanh_forward(6, x, y));
    CHECK(y[0] == -1.0f && y[1] == -1.0f && y[2] == 1.0f && y[3] == 1.0f && isnan(y[4]) && y[5] == 0.0f);
    CHECK_OK(cnnc_gelu_forward(6, x, y, 0));
    CHECK(y[0] == 0.0f && y[3] == inf && isnan(y[4]));
    CHECK_OK(cnnc_gelu_forward(6, x, y, 1));
    CHECK(y[0] == 0.0f && y[3] == inf && isnan(y[4]));
    CHECK_OK(cnnc_elu_forward(6, x, y, 2.0f));
    CHECK(y[0] == -2.0f && y[3] == inf && isnan(y[4]));
    float ones[6] = {1, 1, 1, 1, 1, 1}, dx[6];
    CHECK_OK(cnnc_sigmoid_backward(6, x, ones, dx));
    CHECK(dx[0] == 0.0f && dx[3] == 0.0f && dx[5] == 0.25f);
    CHECK_OK(cnnc_gelu_backward(6, x, ones, dx, 0));
    CHECK(dx[0] == 0.0f && dx[3] == 1.0f);
    CHECK_NEAR(dx[5], 0.5, 1e-6);
}

static void test_softmax(int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    float *x = cnnc_malloc(n * sizeof(float)), *y = cnnc_malloc(n * sizeof(float));
    float *ly = cnnc_malloc(n * sizeof(float)), *dy = cnnc_malloc(n * sizeof(float));
    float *dx = cnnc_malloc(n * sizeof(float)), *ldx = cnnc_malloc(n * sizeof(float));
    unsigned seed = (unsigned)(rows * 31 + cols);
    for (int64_t i = 0; i < n; ++i) {
        x[i] = 10.0f * check_uniform(&seed);
        dy[i] = check_uniform(&seed);
    }
    CHECK_OK(cnnc_softmax_forward(rows, cols, x, y));
    CHECK_OK(cnnc_log_softmax_forward(rows, cols, x, ly));
    CHECK_OK(cnnc_softmax_backward(rows, cols, y, dy, dx));
    CHECK_OK(cnnc_log_softmax_backward(rows, cols, ly, dy, ldx));
    int bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
        const float *xr = x + r * cols;
        double m = -INFINITY, total = 0, dot = 0, dsum = 0;
        for (int64_t j = 0; j < cols; ++j)
            m = xr[j] > m ? xr[j] : m;
        for (int64_t j = 0; j < cols; ++j)
            total += exp(xr[j] - m);
        for (int64_t j = 0; j < cols; ++j) {
            dot += (double)dy[r * cols + j] * y[r * cols + j];
            dsum += dy[r * cols + j];
        }
        for (int64_t j = 0; j < cols && bad < 3; ++j) {
            int64_t i = r * cols + j;
            double p = exp(xr[j] - m) / total, lp = xr[j] - m - log(total);
            double g = y[i] * (dy[i] - dot), lg = dy[i] - exp((double)ly[i]) * dsum;
            if (fabs(y[i] - p) > 1e-5 * p + 1e-9 || fabs(ly[i] - lp) > 1e-5 * fabs(lp) + 1e-5 ||
                fabs(dx[i] - g) > 1e-4 * fabs(g) + 1e-6 || fabs(ldx[i] - lg) > 1e-4 * fabs(lg) + 1e-5) {
                fprintf(stderr, "softmax %lldx%lld at %lld: %g %g, %g %g, %g %g, %g %g\n", (long long)rows,
                        (long long)cols, (long long)i, y[i], p, ly[i], lp, dx[i], g, ldx[i], lg);
                ++bad;
            }
        }
    }
    CHECK(bad == 0);
    /* In place. */
    memcpy(dx, x, n * sizeof(float));
    CHECK_OK(cnnc_softmax_forward(rows, cols, dx, dx));
    CHECK(memcmp(dx, y, n * sizeof(float)) == 0);
    cnnc_free(x);
    cnnc_free(y);
    cnnc_free(ly);
    cnnc_free(dy);
    cnnc_free(dx);
    cnnc_free(ldx);
}

static void test_errors(void)
{
    float v[4] = {0};
    CHECK_STATUS(cnnc_activation_forward((cnnc_activation)99, 4, v, v, 0), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "activation") != NULL);
    CHECK_STATUS(cnnc_sigmoid_forward(-1, v, v), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_tanh_backward(4, v, NULL, v), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_softmax_forward(2, -2, v, v), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_softmax_backward(2, 2, v, NULL, v), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_softmax_forward(INT64_MAX, 4, v, v), CNNC_ERR_OVERFLOW);
    CHECK_OK(cnnc_softmax_forward(0, 5, NULL, NULL));
    CHECK_OK(cnnc_gelu_forward(0, NULL, NULL, 0));
}

int main(void)
{
    /* Teams of the sizes asked for, even on a machine with fewer CPUs. */
    cnnc_set_oversubscription(1);
    for (int threads = 1; threads <= 2; ++threads) {
        CHECK_OK(cnnc_set_num_threads(threads));
        for (int64_t n = 1; n <= 40; ++n)
            test_elementwise(n);
        test_elementwise(200003);
        test_special_values();
        test_softmax(1, 1);
        test_softmax(3, 17);
        test_softmax(5, 1000);
        test_softmax(3000, 33);
        test_softmax(2, 100001);
    }
    test_errors();
    cnnc_release_workspace();
    return check_finish("test_activation");
}
