#include "activation_kernels.h"
#include "parallel.h"

struct unary_args {
    void (*fn)(int64_t, const float *, float *);
    const float *x;
    float *y;
};

static void unary_range(int64_t begin, int64_t end, void *ctx)
{
    struct unary_args *a = ctx;
    a->fn(end - begin, a->x + begin, a->y + begin);
}

struct binary_args {
    void (*fn)(int64_t, const float *, const float *, float *);
    const float *x, *dy;
    float *dx;
};

static void binary_range(int64_t begin, int64_t end, void *ctx)
{
    struct binary_args *a = ctx;
    a->fn(end - begin, a->x + begin, a->dy + begin, a->dx + begin);
}

cnnc_status cnnc_relu_forward(int64_t n, const float *x, float *y)
{
    CNNC_CHECK_NONNEG(n);
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(y);
    struct unary_args args = {CNNC_PICK(cnnc_activation_kernels)->relu_forward, x, y};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, unary_range, &args);
    return CNNC_OK;
}

cnnc_status cnnc_relu_backward(int64_t n, const float *x, const float *dy, float *dx)
{
    CNNC_CHECK_NONNEG(n);
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(dy);
    CNNC_CHECK_PTR(dx);
    struct binary_args args = {CNNC_PICK(cnnc_activation_kernels)->relu_backward, x, dy, dx};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, binary_range, &args);
    return CNNC_OK;
}
