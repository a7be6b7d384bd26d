#include <string.h>
#include "elementwise_kernels.h"
#include "parallel.h"
#include "reduce.h"

struct binary_args {
    void (*fn)(int64_t, const float *, const float *, float *);
    const float *a, *b;
    float *y;
};

static void binary_range(int64_t begin, int64_t end, void *ctx)
{
    struct binary_args *p = ctx;
    p->fn(end - begin, p->a + begin, p->b + begin, p->y + begin);
}

static cnnc_status binary(int64_t n, const float *a, const float *b, float *y,
                          void (*fn)(int64_t, const float *, const float *, float *))
{
    struct binary_args args = {fn, a, b, y};
    cnnc_parallel_range(n, CNNC_ELEMENTWISE_GRAIN, binary_range, &args);
    return CNNC_OK;
}

#define CHECK_BINARY(n, a, b, y) \
    do { CNNC_CHECK_NONNEG(n); if ((n) == 0) return CNNC_OK; CNNC_CHECK_PTR(a); CNNC_CHECK_PTR(b); CNNC_CHECK_PTR(y); \
         CNNC_CHECK_IN_PLACE_OK(y, a, n); CNNC_CHECK_IN_PLACE_OK(y, b, n); } while (0)

cnnc_status cnnc_add_forward(int64_t n, const float *a, const float *b, float *y)
{
    CHECK_BINARY(n, a, b, y);
    return binary(n, a, b, y, CNNC_PICK(cnnc_elementwise_kernels)->add);
}

cnnc_status cnnc_add_relu_forward(int64_t n, const float *a, const float *b, float *y)
{
    CHECK_BINARY(n, a, b, y);
    return binary(n, a, b, y, CNNC_PICK(cnnc_elementwise_kernels)->add_relu);
}

cnnc_status cnnc_multiply_forward(int64_t n, const float *a, const float *b, float *y)
{
    CHECK_BINARY(n, a, b, y);
    return binary(n, a, b, y, CNNC_PICK(cnnc_elementwise_kernels)->mul);
}

struct bias_args {
    const float *x, *bias;
    float *y;
    int64_t c;
};

static void bias_range(int64_t begin, int64_t end, void *ctx)
{
    struct bias_args *p = ctx;
    CNNC_PICK(cnnc_elementwise_kernels)->scale_shift_rows(end - begin, p->c, p->x + begin * p->c, NULL, NULL,
                                                            p->bias, 0, p->y + begin * p->c);
}

/* Rows per thread chunk so that a chunk holds about the elementwise grain. */
static int64_t row_grain(int64_t c) { return cnnc_max_i64(1, CNNC_ELEMENTWISE_GRAIN / cnnc_max_i64(c, 1)); }

cnnc_status cnnc_bias_add_forward(int64_t rows, int64_t c, const float *x, const float *bias, float *y)
{
    CNNC_CHECK_NONNEG(rows);
    CNNC_CHECK_POS(c);
    if (rows == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(bias);
    CNNC_CHECK_PTR(y);
    int64_t total;
    CNNC_TRY(cnnc_mul_sizes(&total, 2, rows, c));
    CNNC_CHECK_IN_PLACE_OK(y, x, total);
    CNNC_CHECK_DISJOINT(y, total, bias, c);
    struct bias_args args = {x, bias, y, c};
    cnnc_parallel_range(rows, row_grain(c), bias_range, &args);
    return CNNC_OK;
}

struct column_sum_args {
    const float *x;
    int64_t ld;
};

static void column_sum_block(const void *ctx, int64_t row0, int64_t row1, int64_t col0, int64_t col1,
                             double *acc, int64_t acc_stride)
{
    const struct column_sum_args *p = ctx;
    (void)acc_stride;
    CNNC_PICK(cnnc_elementwise_kernels)->column_sum(row1 - row0, p->ld, col1 - col0,
                                                    p->x + row0 * p->ld + col0, acc);
}

cnnc_status cnnc_bias_add_backward(int64_t rows, int64_t c, const float *dy, float *dbias)
{
    CNNC_CHECK_NONNEG(rows);
    CNNC_CHECK_POS(c);
    CNNC_CHECK_PTR(dbias);
    if (rows > 0)
        CNNC_CHECK_PTR(dy);
    int64_t total;
    CNNC_TRY(cnnc_mul_sizes(&total, 2, rows, c));
    CNNC_CHECK_DISJOINT(dbias, c, dy, total);
    double *scratch, *sums = cnnc_column_reduce_workspace(c, rows, c, 1, &scratch);
    if (!sums)
        return CNNC_ERR_OUT_OF_MEMORY;
    struct column_sum_args args = {dy, c};
    cnnc_column_reduce(rows, c, 1, column_sum_block, &args, scratch, sums);
    for (int64_t j = 0; j < c; ++j)
        dbias[j] = (float)sums[j];
    return CNNC_OK;
}

/* ---- concatenation ------------------------------------------------------ */

struct concat_args {
    int k;
    const int64_t *widths;
    int64_t total;
    const float *const *inputs;
    float *y;
    const float *dy;
    float *const *dinputs;
};

static void concat_range(int64_t begin, int64_t end, void *ctx)
{
    struct concat_args *p = ctx;
    for (int64_t i = begin; i < end; ++i) {
        int64_t col = 0;
        for (int t = 0; t < p->k; ++t) {
            int64_t w = p->widths[t];
            if (p->y)
                memcpy(p->y + i * p->total + col, p->inputs[t] + i * w, sizeof(float) * (size_t)w);
            else
                memcpy(p->dinputs[t] + i * w, p->dy + i * p->total + col, sizeof(float) * (size_t)w);
            col += w;
        }
    }
}

static cnnc_status concat_check(const char *fn, int64_t rows, int k, const int64_t *widths,
                                const void *const *arrays, const float *joined, int parts_may_alias,
                                int64_t *total)
{
    if (rows < 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: rows = %lld must be >= 0", fn, (long long)rows);
    if (k < 1)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: k = %d must be >= 1", fn, k);
    if (!widths || !arrays)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: widths or the array list is NULL", fn);
    *total = 0;
    for (int t = 0; t < k; ++t) {
        if (widths[t] < 0)
            return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: widths[%d] = %lld must be >= 0", fn, t,
                              (long long)widths[t]);
        if (widths[t] > INT64_MAX - *total)
            return cnnc_error(CNNC_ERR_OVERFLOW, "%s: the total width overflows", fn);
        *total += widths[t];
        if (rows > 0 && widths[t] > 0 && !arrays[t])
            return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: array %d is NULL", fn, t);
    }
    int64_t elements;
    CNNC_TRY(cnnc_mul_sizes(&elements, 2, rows, *total));
    if (elements > 0 && !joined)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: the concatenated array is NULL", fn);
    /* Parts and the concatenated array are copied row by row: no part may
     * share memory with the concatenated array, nor (as outputs) with
     * another part. */
    for (int t = 0; t < k; ++t) {
        int64_t part;
        CNNC_TRY(cnnc_mul_sizes(&part, 2, rows, widths[t]));
        CNNC_TRY(cnnc_check_disjoint(fn, "a part", (const float *)arrays[t], part, "the concatenated array", joined,
                                     elements, 0));
        for (int u = 0; u < t; ++u) {
            int64_t other;
            CNNC_TRY(cnnc_mul_sizes(&other, 2, rows, widths[u]));
            if (!parts_may_alias)
                CNNC_TRY(cnnc_check_disjoint(fn, "a part", (const float *)arrays[t], part, "another part",
                                             (const float *)arrays[u], other, 0));
        }
    }
    return CNNC_OK;
}

cnnc_status cnnc_concat_forward(int64_t rows, int k, const int64_t *widths, const float *const *inputs,
                                float *y)
{
    int64_t total;
    CNNC_TRY(concat_check(__func__, rows, k, widths, (const void *const *)inputs, y, 1, &total));
    if (rows == 0 || total == 0)
        return CNNC_OK;
    struct concat_args args = {k, widths, total, inputs, y, NULL, NULL};
    cnnc_parallel_range(rows, row_grain(total), concat_range, &args);
    return CNNC_OK;
}

cnnc_status cnnc_concat_backward(int64_t rows, int k, const int64_t *widths, const float *dy,
                                 float *const *dinputs)
{
    int64_t total;
    CNNC_TRY(concat_check(__func__, rows, k, widths, (const void *const *)dinputs, dy, 0, &total));
    if (rows == 0 || total == 0)
        return CNNC_OK;
    struct concat_args args = {k, widths, total, NULL, NULL, dy, dinputs};
    cnnc_parallel_range(rows, row_grain(total), concat_range, &args);
    return CNNC_OK;
}
