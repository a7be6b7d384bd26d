#include <string.h>
#include "elementwise_kernels.h"
#include "parallel.h"
#include "pool_kernels.h"

/* Below this much work (window elements visited), one thread is faster. */
#define POOL_GRAIN cnnc_work_grain(CNNC_WORK_POOL)
/* Channels handled by one global-pooling task: bounds the stack buffers. */
#define GLOBAL_CHUNK 1024

cnnc_status cnnc_pool_same_padding(int64_t in, int64_t pool, int64_t stride, int64_t *before, int64_t *after)
{
    CNNC_CHECK_POS(in);
    CNNC_CHECK_POS(pool);
    CNNC_CHECK_POS(stride);
    CNNC_CHECK_PTR(before);
    CNNC_CHECK_PTR(after);
    int64_t out = cnnc_ceil_div(in, stride), total;
    if (__builtin_mul_overflow(out - 1, stride, &total) || __builtin_add_overflow(total, pool, &total))
        return cnnc_error(CNNC_ERR_OVERFLOW, "%s: padding computation overflows", __func__);
    total = cnnc_max_i64(total - in, 0);
    *before = total / 2;
    *after = total - total / 2;
    return CNNC_OK;
}

static cnnc_status check_axis(const char *fn, const char *axis, int64_t in, int64_t pool, int64_t stride,
                              int64_t before, int64_t after, int64_t *out)
{
    if (in <= 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: input %s = %lld must be > 0", fn, axis, (long long)in);
    if (pool <= 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: pool %s = %lld must be > 0", fn, axis, (long long)pool);
    if (stride <= 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: stride %s = %lld must be > 0", fn, axis,
                          (long long)stride);
    if (before < 0 || after < 0 || before >= pool || after >= pool)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT,
                          "%s: padding (%lld, %lld) along %s must be >= 0 and smaller than the pool size %lld",
                          fn, (long long)before, (long long)after, axis, (long long)pool);
    if (pool > in + before + after)
        return cnnc_error(CNNC_ERR_SHAPE, "%s: pool %s = %lld is larger than the padded input %s %lld", fn, axis,
                          (long long)pool, axis, (long long)(in + before + after));
    *out = (in + before + after - pool) / stride + 1;
    return CNNC_OK;
}

static cnnc_status check_params(const char *fn, const cnnc_pool2d_params *p, int64_t *oh, int64_t *ow)
{
    if (!p)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: params is NULL", fn);
    if (p->n <= 0 || p->c <= 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: n = %lld and c = %lld must be > 0", fn, (long long)p->n,
                          (long long)p->c);
    CNNC_TRY(check_axis(fn, "height", p->h, p->pool_h, p->stride_h, p->pad_top, p->pad_bottom, oh));
    CNNC_TRY(check_axis(fn, "width", p->w, p->pool_w, p->stride_w, p->pad_left, p->pad_right, ow));
    int64_t count;
    size_t bytes;
    CNNC_TRY(cnnc_mul_sizes(&count, 4, p->n, p->h, p->w, p->c));
    CNNC_TRY(cnnc_float_bytes(count, &bytes));
    CNNC_TRY(cnnc_mul_sizes(&count, 4, p->n, *oh, *ow, p->c));
    return CNNC_OK;
}

cnnc_status cnnc_pool2d_output_size(const cnnc_pool2d_params *p, int64_t *oh, int64_t *ow)
{
    CNNC_CHECK_PTR(oh);
    CNNC_CHECK_PTR(ow);
    return check_params(__func__, p, oh, ow);
}

/* The window rows of output row o, clipped to the input: [*i0, *i1). */
static void window_rows(const cnnc_pool2d_params *p, int64_t o, int64_t *i0, int64_t *i1)
{
    int64_t start = o * p->stride_h - p->pad_top;
    *i0 = cnnc_max_i64(start, 0);
    *i1 = cnnc_min_i64(start + p->pool_h, p->h);
}

static struct cnnc_pool_row make_row(const cnnc_pool2d_params *p, const float *image, int64_t i0, int64_t i1,
                                     int64_t c0, int64_t cn, int64_t ow)
{
    struct cnnc_pool_row r = {image + i0 * p->w * p->c, i1 - i0, p->w, p->c, c0, cn,
                              ow, p->pool_w, p->stride_w, p->pad_left, 1};
    return r;
}

static int pool_threads(const cnnc_pool2d_params *p, int64_t oh, int64_t ow, int64_t tasks)
{
    int64_t work = p->n * oh * ow * p->c * p->pool_h * p->pool_w;
    if (work / (p->pool_h * p->pool_w) != p->n * oh * ow * p->c) /* overflow: certainly big */
        work = INT64_MAX;
    return (int)cnnc_min_i64(cnnc_threads_for(work, POOL_GRAIN), tasks);
}

typedef void (*row_forward_fn)(const struct cnnc_pool_row *, float *);

struct forward_task {
    const cnnc_pool2d_params *p;
    const float *x;
    float *y;
    row_forward_fn row;
    int64_t oh, ow;
};

/* Output row t of all images' output rows. */
static void forward_row(int64_t t, void *ctx)
{
    const struct forward_task *f = ctx;
    const cnnc_pool2d_params *p = f->p;
    int64_t image = t / f->oh, o = t % f->oh, i0, i1;
    window_rows(p, o, &i0, &i1);
    struct cnnc_pool_row r = make_row(p, f->x + image * p->h * p->w * p->c, i0, i1, 0, p->c, f->ow);
    f->row(&r, f->y + t * f->ow * p->c);
}

static cnnc_status pool_forward(const char *fn, const cnnc_pool2d_params *p, const float *x, float *y, int max)
{
    int64_t oh = 0, ow = 0;
    CNNC_TRY(check_params(fn, p, &oh, &ow));
    if (!x || !y)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: x or y is NULL", fn);
    CNNC_TRY(cnnc_check_disjoint(fn, "y", y, p->n * oh * ow * p->c, "x", x, p->n * p->h * p->w * p->c, 0));
    const struct cnnc_pool_kernels *k = CNNC_PICK(cnnc_pool_kernels);
    struct forward_task f = {p, x, y, max ? k->max_row : k->avg_row, oh, ow};
    int64_t rows = p->n * oh;
    cnnc_parallel_for(rows, pool_threads(p, oh, ow, rows), forward_row, &f);
    return CNNC_OK;
}

cnnc_status cnnc_max_pool2d_forward(const cnnc_pool2d_params *p, const float *x, float *y)
{
    return pool_forward(__func__, p, x, y, 1);
}

cnnc_status cnnc_avg_pool2d_forward(const cnnc_pool2d_params *p, const float *x, float *y)
{
    return pool_forward(__func__, p, x, y, 0);
}

/* Splits n images x c channels into tasks: whole images when there are
 * enough for the threads, otherwise channel chunks of whole cache lines. */
static int64_t channel_chunk(int64_t n, int64_t c, int threads, int64_t limit)
{
    int64_t chunk = c;
    if (n < threads)
        chunk = cnnc_ceil_div(cnnc_ceil_div(c, cnnc_ceil_div(threads, n)), 16) * 16;
    return cnnc_max_i64(1, cnnc_min_i64(chunk, limit));
}

static void zero_rows(const cnnc_pool2d_params *p, float *rows, int64_t count, int64_t c0, int64_t cn)
{
    if (cn == p->c) {
        memset(rows, 0, sizeof(float) * (size_t)(count * p->w * p->c));
        return;
    }
    for (int64_t i = 0; i < count * p->w; ++i)
        memset(rows + i * p->c + c0, 0, sizeof(float) * (size_t)cn);
}

struct backward_task {
    const cnnc_pool2d_params *p;
    const struct cnnc_pool_kernels *k;
    const float *x, *dy;
    float *dx;
    int64_t oh, ow, chunk, chunks;
    int max, overwrite;
};

/* Channel chunk (t % chunks) of image (t / chunks). */
static void backward_task(int64_t t, void *ctx)
{
    const struct backward_task *b = ctx;
    const cnnc_pool2d_params *p = b->p;
    int64_t image_size = p->h * p->w * p->c;
    int64_t image = t / b->chunks, c0 = (t % b->chunks) * b->chunk;
    int64_t cn = cnnc_min_i64(b->chunk, p->c - c0);
    float *dx_image = b->dx + image * image_size;
    const float *x_image = b->max ? b->x + image * image_size : NULL;
    /* Input rows are zeroed just before the first window that touches
     * them, while they are still in cache (in overwrite mode only the rows
     * between windows). */
    int64_t zeroed = 0;
    for (int64_t o = 0; o < b->oh; ++o) {
        int64_t i0, i1;
        window_rows(p, o, &i0, &i1);
        int64_t upto = b->overwrite ? i0 : i1;
        if (zeroed < upto)
            zero_rows(p, dx_image + zeroed * p->w * p->c, upto - zeroed, c0, cn);
        zeroed = cnnc_max_i64(zeroed, i1);
        const float *g = b->dy + (image * b->oh + o) * b->ow * p->c;
        float *d = dx_image + i0 * p->w * p->c;
        struct cnnc_pool_row r = make_row(p, b->max ? x_image : dx_image, i0, i1, c0, cn, b->ow);
        r.accumulate = !b->overwrite;
        if (b->max)
            b->k->max_row_backward(&r, g, d);
        else
            b->k->avg_row_backward(&r, g, d);
    }
    if (zeroed < p->h)
        zero_rows(p, dx_image + zeroed * p->w * p->c, p->h - zeroed, c0, cn);
}

static cnnc_status pool_backward(const char *fn, const cnnc_pool2d_params *p, const float *x, const float *dy,
                                 float *dx, int max)
{
    int64_t oh = 0, ow = 0;
    CNNC_TRY(check_params(fn, p, &oh, &ow));
    if ((max && !x) || !dy || !dx)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: an array argument is NULL", fn);
    const int64_t in_count = p->n * p->h * p->w * p->c, out_count = p->n * oh * ow * p->c;
    CNNC_TRY(cnnc_check_disjoint(fn, "dx", dx, in_count, "dy", dy, out_count, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "dx", dx, in_count, "x", x, in_count, 0));
    int threads = pool_threads(p, oh, ow, p->n * p->c);
    int64_t chunk = channel_chunk(p->n, p->c, threads, p->c);
    int64_t chunks = cnnc_ceil_div(p->c, chunk);
    /* Without overlap every input element lies in at most one window, so the
     * kernels store instead of accumulating and dx needs no clearing pass
     * except where no window reaches. */
    int overwrite = p->stride_h >= p->pool_h && p->stride_w >= p->pool_w;
    struct backward_task b = {p, CNNC_PICK(cnnc_pool_kernels), x, dy, dx, oh, ow, chunk, chunks, max, overwrite};
    cnnc_parallel_for(p->n * chunks, threads, backward_task, &b);
    return CNNC_OK;
}

cnnc_status cnnc_max_pool2d_backward(const cnnc_pool2d_params *p, const float *x, const float *dy, float *dx)
{
    return pool_backward(__func__, p, x, dy, dx, 1);
}

cnnc_status cnnc_avg_pool2d_backward(const cnnc_pool2d_params *p, const float *dy, float *dx)
{
    return pool_backward(__func__, p, NULL, dy, dx, 0);
}

/* ---- global pooling ------------------------------------------------------ */

enum global_op { GLOBAL_AVG, GLOBAL_AVG_BACKWARD, GLOBAL_MAX, GLOBAL_MAX_BACKWARD };

struct global_task {
    enum global_op op;
    const struct cnnc_elementwise_kernels *k;
    int64_t hw, c, chunk, chunks;
    const float *x, *src;
    float *dst;
};

/* Channel chunk (t % chunks) of image (t / chunks). */
static void global_task(int64_t t, void *ctx)
{
    const struct global_task *g = ctx;
    int64_t hw = g->hw, c = g->c;
    int64_t image = t / g->chunks, c0 = (t % g->chunks) * g->chunk;
    int64_t cn = cnnc_min_i64(g->chunk, c - c0);
    const float *big_in = g->src + image * hw * c + c0; /* (H, W, C) side, when it is the input */
    const float *small_in = g->src + image * c + c0;    /* (C,) side */
    float *big_out = g->dst + image * hw * c + c0;
    float *small_out = g->dst + image * c + c0;
    switch (g->op) {
    case GLOBAL_AVG: {
        double acc[GLOBAL_CHUNK];
        memset(acc, 0, sizeof(double) * (size_t)cn);
        g->k->column_sum(hw, c, cn, big_in, acc);
        for (int64_t j = 0; j < cn; ++j)
            small_out[j] = (float)(acc[j] / (double)hw);
        break;
    }
    case GLOBAL_AVG_BACKWARD: {
        float scaled[GLOBAL_CHUNK];
        float inv = (float)(1.0 / (double)hw);
        for (int64_t j = 0; j < cn; ++j)
            scaled[j] = small_in[j] * inv;
        g->k->broadcast_rows(hw, c, cn, scaled, big_out);
        break;
    }
    case GLOBAL_MAX:
        g->k->column_max(hw, c, cn, big_in, small_out);
        break;
    case GLOBAL_MAX_BACKWARD:
        g->k->column_max_backward(hw, c, cn, g->x + image * hw * c + c0, small_in, big_out);
        break;
    }
}

static cnnc_status global_pool(const char *fn, enum global_op op, int64_t n, int64_t h, int64_t w, int64_t c,
                               const float *x, const float *src, float *dst)
{
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: n, h, w, c = %lld, %lld, %lld, %lld must be > 0", fn,
                          (long long)n, (long long)h, (long long)w, (long long)c);
    if (!src || !dst || (op == GLOBAL_MAX_BACKWARD && !x))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: an array argument is NULL", fn);
    int64_t hw, total;
    CNNC_TRY(cnnc_mul_sizes(&hw, 2, h, w));
    CNNC_TRY(cnnc_mul_sizes(&total, 3, n, hw, c));
    size_t bytes;
    CNNC_TRY(cnnc_float_bytes(total, &bytes));
    const int backward = op == GLOBAL_AVG_BACKWARD || op == GLOBAL_MAX_BACKWARD;
    CNNC_TRY(cnnc_check_disjoint(fn, backward ? "dx" : "y", dst, backward ? total : n * c, backward ? "dy" : "x", src,
                                 backward ? n * c : total, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "dx", dst, total, "x", x, total, 0));
    if (op == GLOBAL_MAX_BACKWARD && hw >= (1 << 24))
        return cnnc_error(CNNC_ERR_UNSUPPORTED, "%s: h * w = %lld is too large (at most 2^24 - 1)", fn,
                          (long long)hw);
    int threads = (int)cnnc_min_i64(cnnc_threads_for(total, POOL_GRAIN), n * c);
    int64_t chunk = channel_chunk(n, c, threads, GLOBAL_CHUNK);
    int64_t chunks = cnnc_ceil_div(c, chunk);
    struct global_task g = {op, CNNC_PICK(cnnc_elementwise_kernels), hw, c, chunk, chunks, x, src, dst};
    cnnc_parallel_for(n * chunks, threads, global_task, &g);
    return CNNC_OK;
}

cnnc_status cnnc_global_avg_pool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x, float *y)
{
    return global_pool(__func__, GLOBAL_AVG, n, h, w, c, NULL, x, y);
}

cnnc_status cnnc_global_avg_pool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float *dy,
                                            float *dx)
{
    return global_pool(__func__, GLOBAL_AVG_BACKWARD, n, h, w, c, NULL, dy, dx);
}

cnnc_status cnnc_global_max_pool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x, float *y)
{
    return global_pool(__func__, GLOBAL_MAX, n, h, w, c, NULL, x, y);
}

cnnc_status cnnc_global_max_pool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                            const float *dy, float *dx)
{
    return global_pool(__func__, GLOBAL_MAX_BACKWARD, n, h, w, c, x, dy, dx);
}
