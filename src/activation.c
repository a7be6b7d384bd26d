#include <math.h>
#include "activation_kernels.h"
#include "parallel.h"

/* ---- elementwise ------------------------------------------------------- */

struct forward_args {
    cnnc_act_forward_fn fn;
    const float *x;
    float *y;
    float alpha;
};

static void forward_range(int64_t begin, int64_t end, void *ctx)
{
    struct forward_args *a = ctx;
    a->fn(end - begin, a->x + begin, a->y + begin, a->alpha);
}

struct backward_args {
    cnnc_act_backward_fn fn;
    const float *x, *dy;
    float *dx;
    float alpha;
};

static void backward_range(int64_t begin, int64_t end, void *ctx)
{
    struct backward_args *a = ctx;
    a->fn(end - begin, a->x + begin, a->dy + begin, a->dx + begin, a->alpha);
}

static cnnc_status check_kind(const char *fn, cnnc_activation kind)
{
    if ((int)kind < 0 || kind >= CNNC_ACTIVATION_COUNT)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: unknown activation %d", fn, (int)kind);
    return CNNC_OK;
}

cnnc_status cnnc_activation_forward(cnnc_activation kind, int64_t n, const float *x, float *y,
                                    float alpha)
{
    CNNC_TRY(check_kind(__func__, kind));
    CNNC_CHECK_NONNEG(n);
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(y);
    CNNC_CHECK_IN_PLACE_OK(y, x, n);
    struct forward_args args = {CNNC_PICK(cnnc_activation_kernels)->forward[kind], x, y, alpha};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, forward_range, &args);
    return CNNC_OK;
}

cnnc_status cnnc_activation_backward(cnnc_activation kind, int64_t n, const float *x,
                                     const float *dy, float *dx, float alpha)
{
    CNNC_TRY(check_kind(__func__, kind));
    CNNC_CHECK_NONNEG(n);
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(dy);
    CNNC_CHECK_PTR(dx);
    CNNC_CHECK_IN_PLACE_OK(dx, x, n);
    CNNC_CHECK_IN_PLACE_OK(dx, dy, n);
    struct backward_args args = {CNNC_PICK(cnnc_activation_kernels)->backward[kind], x, dy, dx, alpha};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, backward_range, &args);
    return CNNC_OK;
}

cnnc_status cnnc_relu_forward(int64_t n, const float *x, float *y)
{
    return cnnc_activation_forward(CNNC_ACTIVATION_RELU, n, x, y, 0.0f);
}

cnnc_status cnnc_relu_backward(int64_t n, const float *x, const float *dy, float *dx)
{
    return cnnc_activation_backward(CNNC_ACTIVATION_RELU, n, x, dy, dx, 0.0f);
}

cnnc_status cnnc_leaky_relu_forward(int64_t n, const float *x, float *y, float alpha)
{
    return cnnc_activation_forward(CNNC_ACTIVATION_LEAKY_RELU, n, x, y, alpha);
}

cnnc_status cnnc_leaky_relu_backward(int64_t n, const float *x, const float *dy, float *dx, float alpha)
{
    return cnnc_activation_backward(CNNC_ACTIVATION_LEAKY_RELU, n, x, dy, dx, alpha);
}

cnnc_status cnnc_elu_forward(int64_t n, const float *x, float *y, float alpha)
{
    return cnnc_activation_forward(CNNC_ACTIVATION_ELU, n, x, y, alpha);
}

cnnc_status cnnc_elu_backward(int64_t n, const float *x, const float *dy, float *dx, float alpha)
{
    return cnnc_activation_backward(CNNC_ACTIVATION_ELU, n, x, dy, dx, alpha);
}

cnnc_status cnnc_sigmoid_forward(int64_t n, const float *x, float *y)
{
    return cnnc_activation_forward(CNNC_ACTIVATION_SIGMOID, n, x, y, 0.0f);
}

cnnc_status cnnc_sigmoid_backward(int64_t n, const float *x, const float *dy, float *dx)
{
    return cnnc_activation_backward(CNNC_ACTIVATION_SIGMOID, n, x, dy, dx, 0.0f);
}

cnnc_status cnnc_tanh_forward(int64_t n, const float *x, float *y)
{
    return cnnc_activation_forward(CNNC_ACTIVATION_TANH, n, x, y, 0.0f);
}

cnnc_status cnnc_tanh_backward(int64_t n, const float *x, const float *dy, float *dx)
{
    return cnnc_activation_backward(CNNC_ACTIVATION_TANH, n, x, dy, dx, 0.0f);
}

static cnnc_activation gelu_kind(int approximate)
{
    return approximate ? CNNC_ACTIVATION_GELU_TANH : CNNC_ACTIVATION_GELU;
}

cnnc_status cnnc_gelu_forward(int64_t n, const float *x, float *y, int approximate)
{
    return cnnc_activation_forward(gelu_kind(approximate), n, x, y, 0.0f);
}

cnnc_status cnnc_gelu_backward(int64_t n, const float *x, const float *dy, float *dx, int approximate)
{
    return cnnc_activation_backward(gelu_kind(approximate), n, x, dy, dx, 0.0f);
}

/* ---- softmax ------------------------------------------------------------ */

enum softmax_op { SOFTMAX_FORWARD, LOG_SOFTMAX_FORWARD, SOFTMAX_BACKWARD, LOG_SOFTMAX_BACKWARD };

struct softmax_args {
    const struct cnnc_activation_kernels *k;
    enum softmax_op op;
    int64_t cols;
    const float *a, *b; /* forward: x; backward: y, dy */
    float *out;
};

static void softmax_rows(int64_t begin, int64_t end, void *ctx)
{
    const struct softmax_args *s = ctx;
    const struct cnnc_activation_kernels *k = s->k;
    const int64_t n = s->cols;
    for (int64_t r = begin; r < end; ++r) {
        const float *a = s->a + r * n;
        const float *b = s->b ? s->b + r * n : NULL;
        float *out = s->out + r * n;
        switch (s->op) {
        case SOFTMAX_FORWARD: {
            float m = k->row_max(n, a);
            float total = k->exp_sum(n, a, m, out);
            k->affine(n, out, 0.0f, 1.0f / total, 0.0f, out);
            break;
        }
        case LOG_SOFTMAX_FORWARD: {
            float m = k->row_max(n, a);
            float total = k->exp_sum(n, a, m, NULL);
            k->affine(n, a, m, 1.0f, -logf(total), out);
            break;
        }
        case SOFTMAX_BACKWARD:
            k->softmax_grad(n, a, b, k->dot(n, a, b), out);
            break;
        case LOG_SOFTMAX_BACKWARD:
            k->log_softmax_grad(n, a, b, k->sum(n, b), out);
            break;
        }
    }
}

static cnnc_status run_softmax(const char *fn, enum softmax_op op, int64_t rows, int64_t cols,
                               const float *a, const float *b, float *out)
{
    if (rows < 0 || cols < 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: rows = %lld and cols = %lld must be >= 0",
                          fn, (long long)rows, (long long)cols);
    int64_t total;
    CNNC_TRY(cnnc_mul_sizes(&total, 2, rows, cols));
    if (total == 0)
        return CNNC_OK;
    if (!a || !out || ((op == SOFTMAX_BACKWARD || op == LOG_SOFTMAX_BACKWARD) && !b))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: an array pointer is NULL", fn);
    /* Each row is reduced before its output is written: in place works,
     * a shifted overlap would read outputs of the row as inputs. */
    CNNC_TRY(cnnc_check_disjoint(fn, "the output", out, total, "the first input", a, total, 1));
    CNNC_TRY(cnnc_check_disjoint(fn, "the output", out, total, "dy", b, total, 1));
    struct softmax_args args = {CNNC_PICK(cnnc_activation_kernels), op, cols, a, b, out};
    /* Rows are independent: split them so that each thread gets about a
     * grain of elements. */
    int64_t grain_rows = cnnc_max_i64(1, CNNC_ELEMENTWISE_GRAIN / cols);
    cnnc_parallel_chunks(rows, grain_rows, 1, softmax_rows, &args);
    return CNNC_OK;
}

cnnc_status cnnc_softmax_forward(int64_t rows, int64_t cols, const float *x, float *y)
{
    return run_softmax(__func__, SOFTMAX_FORWARD, rows, cols, x, NULL, y);
}

cnnc_status cnnc_log_softmax_forward(int64_t rows, int64_t cols, const float *x, float *y)
{
    return run_softmax(__func__, LOG_SOFTMAX_FORWARD, rows, cols, x, NULL, y);
}

cnnc_status cnnc_softmax_backward(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx)
{
    return run_softmax(__func__, SOFTMAX_BACKWARD, rows, cols, y, dy, dx);
}

cnnc_status cnnc_log_softmax_backward(int64_t rows, int64_t cols, const float *y, const float *dy,
                                      float *dx)
{
    return run_softmax(__func__, LOG_SOFTMAX_BACKWARD, rows, cols, y, dy, dx);
}
