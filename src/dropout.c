#include <math.h>
#include "elementwise_kernels.h"
#include "parallel.h"

static uint64_t splitmix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static cnnc_status check_rate(const char *fn, float rate)
{
    if (!(rate >= 0.0f && rate < 1.0f))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: rate = %g must be in [0, 1)", fn, (double)rate);
    return CNNC_OK;
}

static float keep_scale(float rate) { return (float)(1.0 / (1.0 - (double)rate)); }

struct dropout_args {
    struct cnnc_dropout_key key;
    uint64_t offset;
    const float *x;
    float *y;
    uint8_t *mask;
};

static void dropout_range(int64_t begin, int64_t end, void *ctx)
{
    struct dropout_args *p = ctx;
    CNNC_PICK(cnnc_elementwise_kernels)->dropout_forward(end - begin, p->offset + (uint64_t)begin, &p->key,
                                                         p->x + begin, p->y + begin, p->mask + begin);
}

cnnc_status cnnc_dropout_forward(int64_t n, float rate, uint64_t seed, uint64_t offset, const float *x,
                                 float *y, uint8_t *mask)
{
    CNNC_CHECK_NONNEG(n);
    CNNC_TRY(check_rate(__func__, rate));
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(y);
    CNNC_CHECK_PTR(mask);
    CNNC_CHECK_IN_PLACE_OK(y, x, n);
    /* The mask holds n bytes: (n + 3) / 4 floats of address range. */
    CNNC_TRY(cnnc_check_disjoint(__func__, "y", y, n, "mask", (const float *)(const void *)mask, (n + 3) / 4, 0));
    CNNC_TRY(cnnc_check_disjoint(__func__, "mask", (const float *)(const void *)mask, (n + 3) / 4, "x", x, n, 0));
    uint64_t key = splitmix64(seed);
    double threshold = nearbyint((double)rate * 4294967296.0);
    struct dropout_args args = {
        {(uint32_t)key, (uint32_t)(key >> 32),
         threshold >= 4294967295.0 ? UINT32_MAX : (uint32_t)threshold, keep_scale(rate)},
        offset, x, y, mask};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, dropout_range, &args);
    return CNNC_OK;
}

struct dropout_backward_args {
    float scale;
    const float *dy;
    const uint8_t *mask;
    float *dx;
};

static void dropout_backward_range(int64_t begin, int64_t end, void *ctx)
{
    struct dropout_backward_args *p = ctx;
    CNNC_PICK(cnnc_elementwise_kernels)->dropout_backward(end - begin, p->dy + begin, p->mask + begin,
                                                          p->scale, p->dx + begin);
}

cnnc_status cnnc_dropout_backward(int64_t n, float rate, const float *dy, const uint8_t *mask, float *dx)
{
    CNNC_CHECK_NONNEG(n);
    CNNC_TRY(check_rate(__func__, rate));
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(dy);
    CNNC_CHECK_PTR(mask);
    CNNC_CHECK_PTR(dx);
    CNNC_CHECK_IN_PLACE_OK(dx, dy, n);
    CNNC_TRY(cnnc_check_disjoint(__func__, "dx", dx, n, "mask", (const float *)(const void *)mask, (n + 3) / 4, 0));
    struct dropout_backward_args args = {keep_scale(rate), dy, mask, dx};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, dropout_backward_range, &args);
    return CNNC_OK;
}
