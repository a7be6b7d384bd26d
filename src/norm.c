#include <math.h>
#include "elementwise_kernels.h"
#include "parallel.h"
#include "reduce.h"

struct moments_args {
    const float *a, *b, *m, *k;
    float *wout;
    int64_t c;
};

static void moments_block(const void *ctx, int64_t row0, int64_t row1, int64_t col0, int64_t col1,
                          double *acc, int64_t acc_stride)
{
    const struct moments_args *p = ctx;
    CNNC_PICK(cnnc_elementwise_kernels)->column_moments(row1 - row0, p->c, col1 - col0,
                                                        p->a + row0 * p->c + col0,
                                                        p->b ? p->b + row0 * p->c + col0 : NULL,
                                                        p->m ? p->m + row0 * p->c + col0 : NULL, p->k + col0,
                                                        p->wout ? p->wout + row0 * p->c + col0 : NULL, acc,
                                                        acc + acc_stride);
}

/* Per-row affine passes (normalize, or the input gradient), split by rows. */
struct rows_args {
    const float *x, *u, *center, *scale, *shift, *a;
    float *y;
    int64_t c;
    int relu;
};

static void normalize_range(int64_t begin, int64_t end, void *ctx)
{
    struct rows_args *p = ctx;
    CNNC_PICK(cnnc_elementwise_kernels)->scale_shift_rows(end - begin, p->c, p->x + begin * p->c, p->center,
                                                          p->scale, p->shift, p->relu, p->y + begin * p->c);
}

static void gradient_range(int64_t begin, int64_t end, void *ctx)
{
    struct rows_args *p = ctx;
    CNNC_PICK(cnnc_elementwise_kernels)->affine2_rows(end - begin, p->c, p->u + begin * p->c, p->x + begin * p->c,
                                                      p->center, p->a, p->scale, p->shift, p->y + begin * p->c);
}

static int64_t row_grain(int64_t c) { return cnnc_max_i64(1, CNNC_ELEMENTWISE_GRAIN / c); }

static cnnc_status check_sizes(const char *fn, int64_t rows, int64_t c)
{
    if (rows <= 0 || c <= 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: rows = %lld and c = %lld must be > 0", fn,
                          (long long)rows, (long long)c);
    int64_t total;
    return cnnc_mul_sizes(&total, 2, rows, c);
}

static cnnc_status check_epsilon(const char *fn, float epsilon)
{
    if (!(epsilon > 0.0f) || isinf(epsilon))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: epsilon = %g must be > 0", fn, (double)epsilon);
    return CNNC_OK;
}

cnnc_status cnnc_batch_norm_train_forward(int64_t rows, int64_t c, const float *x, const float *gamma,
                                          const float *beta, float momentum, float epsilon, int flags,
                                          float *moving_mean, float *moving_var, float *y, float *mean,
                                          float *inv_std)
{
    CNNC_TRY(check_sizes(__func__, rows, c));
    CNNC_TRY(check_epsilon(__func__, epsilon));
    if (!(momentum >= 0.0f && momentum <= 1.0f))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: momentum = %g must be in [0, 1]", __func__,
                          (double)momentum);
    if (flags & ~(CNNC_BN_UNBIASED_MOVING_VAR | CNNC_BN_RELU))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: unknown flags 0x%x", __func__, (unsigned)flags);
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(y);
    CNNC_CHECK_PTR(mean);
    CNNC_CHECK_PTR(inv_std);
    const int64_t total = rows * c; /* checked by check_sizes */
    CNNC_CHECK_IN_PLACE_OK(y, x, total);
    CNNC_CHECK_DISJOINT(mean, c, x, total);
    CNNC_CHECK_DISJOINT(inv_std, c, x, total);
    CNNC_CHECK_DISJOINT(mean, c, y, total);
    CNNC_CHECK_DISJOINT(inv_std, c, y, total);
    CNNC_CHECK_DISJOINT(inv_std, c, mean, c);

    /* Workspace: sums (2c doubles), then scale and shift (c floats each, in
     * the room of c doubles), then the shift of the sums (the first row,
     * copied because y may alias x). */
    double *scratch, *ws = cnnc_column_reduce_workspace(4 * c, rows, c, 2, &scratch);
    if (!ws)
        return CNNC_ERR_OUT_OF_MEMORY;
    double *sums = ws;
    float *scale = (float *)(ws + 2 * c), *shift = scale + c, *first = (float *)(ws + 3 * c);
    for (int64_t j = 0; j < c; ++j)
        first[j] = x[j];
    struct moments_args margs = {x, NULL, NULL, first, NULL, c};
    cnnc_column_reduce(rows, c, 2, moments_block, &margs, scratch, sums);

    double count = (double)rows;
    double keep = (double)momentum, fold = 1.0 - (double)momentum;
    double correction = (flags & CNNC_BN_UNBIASED_MOVING_VAR) && rows > 1 ? count / (count - 1.0) : 1.0;
    for (int64_t j = 0; j < c; ++j) {
        double d = sums[j] / count;
        double m = (double)first[j] + d;
        double var = sums[c + j] / count - d * d;
        if (var < 0.0)
            var = 0.0;
        double istd = 1.0 / sqrt(var + (double)epsilon);
        mean[j] = (float)m;
        inv_std[j] = (float)istd;
        scale[j] = (float)(istd * (gamma ? (double)gamma[j] : 1.0));
        shift[j] = beta ? beta[j] : 0.0f;
        if (moving_mean)
            moving_mean[j] = (float)((double)moving_mean[j] * keep + m * fold);
        if (moving_var)
            moving_var[j] = (float)((double)moving_var[j] * keep + var * correction * fold);
    }
    struct rows_args args = {x, NULL, mean, scale, shift, NULL, y, c, (flags & CNNC_BN_RELU) != 0};
    cnnc_parallel_range(rows, row_grain(c), normalize_range, &args);
    return CNNC_OK;
}

cnnc_status cnnc_batch_norm_inference(int64_t rows, int64_t c, const float *x, const float *gamma,
                                      const float *beta, const float *moving_mean, const float *moving_var,
                                      float epsilon, int flags, float *y)
{
    CNNC_TRY(check_sizes(__func__, rows, c));
    CNNC_TRY(check_epsilon(__func__, epsilon));
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(y);
    CNNC_CHECK_PTR(moving_mean);
    CNNC_CHECK_PTR(moving_var);
    if (flags & ~CNNC_BN_RELU)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: unknown flags 0x%x", __func__, (unsigned)flags);
    CNNC_CHECK_IN_PLACE_OK(y, x, rows * c);
    double *scratch, *ws = cnnc_column_reduce_workspace(c, 0, c, 1, &scratch);
    if (!ws)
        return CNNC_ERR_OUT_OF_MEMORY;
    float *scale = (float *)ws, *shift = scale + c;
    for (int64_t j = 0; j < c; ++j) {
        double istd = 1.0 / sqrt((double)moving_var[j] + (double)epsilon);
        scale[j] = (float)(istd * (gamma ? (double)gamma[j] : 1.0));
        shift[j] = beta ? beta[j] : 0.0f;
    }
    struct rows_args args = {x, NULL, moving_mean, scale, shift, NULL, y, c, (flags & CNNC_BN_RELU) != 0};
    cnnc_parallel_range(rows, row_grain(c), normalize_range, &args);
    return CNNC_OK;
}

cnnc_status cnnc_batch_norm_backward(int64_t rows, int64_t c, const float *x, const float *dy,
                                     const float *relu_y, const float *gamma, const float *mean, const float *inv_std, float *dx, float *dgamma,
                                     float *dbeta)
{
    CNNC_TRY(check_sizes(__func__, rows, c));
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(dy);
    CNNC_CHECK_PTR(mean);
    CNNC_CHECK_PTR(inv_std);
    CNNC_CHECK_PTR(dgamma);
    CNNC_CHECK_PTR(dbeta);
    const int64_t total = rows * c; /* checked by check_sizes */
    CNNC_CHECK_DISJOINT(dx, total, x, total);
    CNNC_CHECK_IN_PLACE_OK(dx, dy, total);
    if (relu_y)
        CNNC_CHECK_IN_PLACE_OK(dx, relu_y, total);
    CNNC_CHECK_DISJOINT(dgamma, c, dx, total);
    CNNC_CHECK_DISJOINT(dbeta, c, dx, total);
    CNNC_CHECK_DISJOINT(dbeta, c, dgamma, c);
    /* Workspace: sums (2c doubles), then a, b, d (c floats each). */
    double *scratch, *ws = cnnc_column_reduce_workspace(4 * c, rows, c, 2, &scratch);
    if (!ws)
        return CNNC_ERR_OUT_OF_MEMORY;
    double *sums = ws;
    float *a = (float *)(ws + 2 * c), *b = a + c, *d = b + c;
    /* After a ReLU, the reductions store the masked dy into dx as they read
     * it (while it is in cache); the dx pass then reads it back from there
     * instead of dy and relu_y again. */
    struct moments_args margs = {x, dy, relu_y, mean, relu_y ? dx : NULL, c};
    cnnc_column_reduce(rows, c, 2, moments_block, &margs, scratch, sums);

    double count = (double)rows;
    for (int64_t j = 0; j < c; ++j) {
        double istd = (double)inv_std[j], g = gamma ? (double)gamma[j] : 1.0;
        double sum_dy = sums[j], dg = sums[c + j] * istd;
        dbeta[j] = (float)sum_dy;
        dgamma[j] = (float)dg;
        a[j] = (float)(g * istd);
        b[j] = (float)(-g * istd * istd * dg / count);
        d[j] = (float)(-g * istd * sum_dy / count);
    }
    if (dx) {
        struct rows_args args = {x, relu_y ? dx : dy, mean, b, d, a, dx, c, 0};
        cnnc_parallel_range(rows, row_grain(c), gradient_range, &args);
    }
    return CNNC_OK;
}
