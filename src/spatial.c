/* Spatial transformer drivers: the affine sampling grid and bilinear
 * sampling with zero padding (see cnnc/spatial.h for the definitions).
 *
 * With several channels each output pixel reads four runs of c contiguous
 * floats, and the channel loops here are left to the compiler's vectorizer.
 * With one channel there is nothing to vectorize along channels, so the
 * forward pass runs a per-ISA kernel (src/kernels/) that vectorizes across
 * output pixels with masked gathers. Multiplies and adds stay separate (no
 * FMA contraction) so that every ISA path gives the same samples. */
#pragma GCC optimize("fp-contract=off")
#include <math.h>
#include <string.h>
#include "cnnc_internal.h"
#include "parallel.h"
#include "spatial_kernels.h"

/* Floats of output per thread below which a call stays on one thread. */
#define SPATIAL_GRAIN 16384
/* Channels per dx task: tasks over (image, channel block) never add into
 * the same element, so dx needs no atomics or per-thread copies. */
#define SPATIAL_CHANNEL_BLOCK 64

static cnnc_status check_grid_shape(const char *fn, int64_t n, int64_t out_h, int64_t out_w,
                                    int64_t *grid_count)
{
    if (n < 0 || out_h <= 0 || out_w <= 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: bad grid shape n=%lld out_h=%lld out_w=%lld",
                          fn, (long long)n, (long long)out_h, (long long)out_w);
    size_t bytes;
    CNNC_TRY(cnnc_mul_sizes(grid_count, 4, n, out_h, out_w, (int64_t)2));
    return cnnc_float_bytes(*grid_count, &bytes);
}

static int overlaps(const float *a, int64_t a_count, const float *b, int64_t b_count)
{
    if (a == NULL || b == NULL)
        return 0;
    uintptr_t ab = (uintptr_t)a, bb = (uintptr_t)b;
    return ab < bb + (uintptr_t)b_count * sizeof(float) && bb < ab + (uintptr_t)a_count * sizeof(float);
}

/* ---- affine grid ------------------------------------------------------------ */
/* Normalized centre of pixel q of a row of `size` pixels (align_corners = false). */
static inline float pixel_centre(int64_t q, int64_t size)
{
    return (float)((double)(2 * q + 1) / (double)size - 1.0);
}

struct grid_args {
    const float *theta;
    float *grid;
    const float *dgrid;
    float *dtheta;
    int64_t out_h, out_w;
};

static void grid_rows(int64_t begin, int64_t end, void *ctx)
{
    const struct grid_args *a = ctx;
    for (int64_t row = begin; row < end; ++row) {
        int64_t i = row / a->out_h, r = row % a->out_h;
        const float *t = a->theta + 6 * i;
        float ys = pixel_centre(r, a->out_h);
        float *g = a->grid + row * a->out_w * 2;
        for (int64_t q = 0; q < a->out_w; ++q) {
            float xs = pixel_centre(q, a->out_w);
            g[2 * q] = t[0] * xs + t[1] * ys + t[2];
            g[2 * q + 1] = t[3] * xs + t[4] * ys + t[5];
        }
    }
}

cnnc_status cnnc_affine_grid(int64_t n, int64_t out_h, int64_t out_w, const float *theta, float *grid)
{
    int64_t count;
    CNNC_TRY(check_grid_shape(__func__, n, out_h, out_w, &count));
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(theta);
    CNNC_CHECK_PTR(grid);
    if (overlaps(theta, 6 * n, grid, count))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: grid overlaps theta", __func__);
    struct grid_args args = {.theta = theta, .grid = grid, .out_h = out_h, .out_w = out_w};
    cnnc_parallel_chunks(n * out_h, cnnc_max_i64(1, SPATIAL_GRAIN / (2 * out_w)), 1, grid_rows, &args);
    return CNNC_OK;
}

static void grid_backward_image(int64_t i, void *ctx)
{
    const struct grid_args *a = ctx;
    const float *dg = a->dgrid + i * a->out_h * a->out_w * 2;
    double s[6] = {0, 0, 0, 0, 0, 0};
    for (int64_t r = 0; r < a->out_h; ++r) {
        double ys = pixel_centre(r, a->out_h);
        double row[4] = {0, 0, 0, 0}; /* sum dgx xs, sum dgx, sum dgy xs, sum dgy */
        for (int64_t q = 0; q < a->out_w; ++q, dg += 2) {
            double xs = pixel_centre(q, a->out_w);
            row[0] += dg[0] * xs;
            row[1] += dg[0];
            row[2] += dg[1] * xs;
            row[3] += dg[1];
        }
        s[0] += row[0];
        s[1] += row[1] * ys;
        s[2] += row[1];
        s[3] += row[2];
        s[4] += row[3] * ys;
        s[5] += row[3];
    }
    for (int k = 0; k < 6; ++k)
        a->dtheta[6 * i + k] = (float)s[k];
}

cnnc_status cnnc_affine_grid_backward(int64_t n, int64_t out_h, int64_t out_w, const float *dgrid,
                                      float *dtheta)
{
    int64_t count;
    CNNC_TRY(check_grid_shape(__func__, n, out_h, out_w, &count));
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(dgrid);
    CNNC_CHECK_PTR(dtheta);
    if (overlaps(dtheta, 6 * n, dgrid, count))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: dtheta overlaps dgrid", __func__);
    struct grid_args args = {.dgrid = dgrid, .dtheta = dtheta, .out_h = out_h, .out_w = out_w};
    cnnc_parallel_for(n, cnnc_threads_for(count, SPATIAL_GRAIN), grid_backward_image, &args);
    return CNNC_OK;
}

/* ---- bilinear sampling ------------------------------------------------------ */
struct sample_args {
    const float *x, *grid, *dy;
    float *y, *dx, *dgrid;
    int64_t h, w, c, out_h, out_w, blocks;
    const struct cnnc_spatial_kernels *kernels;
};

/* The input pixels a grid point reads, in nw, ne, sw, se order: at most
 * four (pointer, weight) pairs; returns how many. */
static inline int gather_taps(const struct cnnc_taps *t, const float *img, int64_t c, const float **src,
                              float *weight)
{
    int m = 0;
    for (int k = 0; k < 4; ++k)
        if (t->inside[k]) {
            src[m] = img + t->offset[k] * c;
            weight[m++] = t->weight[k];
        }
    return m;
}

/* The input image of output pixel p, followed along a range of p without a
 * division per pixel. */
struct image_cursor {
    const float *img;
    int64_t next, pixels, stride;
};

static inline struct image_cursor cursor_at(const struct sample_args *a, int64_t begin)
{
    int64_t pixels = a->out_h * a->out_w, i = begin / pixels;
    struct image_cursor cur = {a->x + i * a->h * a->w * a->c, (i + 1) * pixels, pixels,
                               a->h * a->w * a->c};
    return cur;
}

static inline const float *cursor_image(struct image_cursor *cur, int64_t p)
{
    if (p == cur->next) {
        cur->img += cur->stride;
        cur->next += cur->pixels;
    }
    return cur->img;
}

static void sample_pixels(int64_t begin, int64_t end, void *ctx)
{
    const struct sample_args *a = ctx;
    const int64_t c = a->c;
    struct image_cursor cur = cursor_at(a, begin);
    for (int64_t p = begin; p < end; ++p) {
        const float *img = cursor_image(&cur, p);
        float *out = a->y + p * c;
        struct cnnc_taps t;
        const float *src[4];
        float wt[4];
        int m = cnnc_find_taps(a->grid[2 * p], a->grid[2 * p + 1], a->h, a->w, &t)
                    ? gather_taps(&t, img, c, src, wt) : 0;
        if (m == 4) { /* the common case, as one fused loop */
            for (int64_t j = 0; j < c; ++j)
                out[j] = wt[0] * src[0][j] + wt[1] * src[1][j] + wt[2] * src[2][j] + wt[3] * src[3][j];
            continue;
        }
        for (int64_t j = 0; j < c; ++j) {
            float acc = 0.0f;
            for (int q = 0; q < m; ++q)
                acc += wt[q] * src[q][j];
            out[j] = acc;
        }
    }
}

/* Whether the one-channel ISA kernels apply: they index the image with int32. */
static int one_channel(int64_t h, int64_t w, int64_t c)
{
    return c == 1 && h * w <= (int64_t)INT32_MAX - w - 1;
}

/* One channel: the ISA kernel over the run of each image in [begin, end). */
static void sample_pixels_c1(int64_t begin, int64_t end, void *ctx)
{
    const struct sample_args *a = ctx;
    const int64_t pixels = a->out_h * a->out_w;
    for (int64_t p = begin; p < end;) {
        int64_t i = p / pixels, stop = cnnc_min_i64(end, (i + 1) * pixels);
        a->kernels->sample_c1(a->x + i * a->h * a->w, a->h, a->w, a->grid + 2 * p, stop - p, a->y + p);
        p = stop;
    }
}

static cnnc_status check_sample(const char *fn, int64_t n, int64_t h, int64_t w, int64_t c,
                                int64_t out_h, int64_t out_w, int64_t *x_count, int64_t *y_count,
                                int64_t *grid_count)
{
    size_t bytes;
    if (h <= 0 || w <= 0 || c <= 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: bad image shape h=%lld w=%lld c=%lld", fn,
                          (long long)h, (long long)w, (long long)c);
    CNNC_TRY(check_grid_shape(fn, n, out_h, out_w, grid_count));
    CNNC_TRY(cnnc_mul_sizes(x_count, 4, n, h, w, c));
    CNNC_TRY(cnnc_float_bytes(*x_count, &bytes));
    CNNC_TRY(cnnc_mul_sizes(y_count, 4, n, out_h, out_w, c));
    return cnnc_float_bytes(*y_count, &bytes);
}

cnnc_status cnnc_grid_sample(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                             int64_t out_h, int64_t out_w, const float *grid, float *y)
{
    int64_t x_count, y_count, grid_count;
    CNNC_TRY(check_sample(__func__, n, h, w, c, out_h, out_w, &x_count, &y_count, &grid_count));
    if (n == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(x);
    CNNC_CHECK_PTR(grid);
    CNNC_CHECK_PTR(y);
    if (overlaps(y, y_count, x, x_count) || overlaps(y, y_count, grid, grid_count))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: y overlaps x or grid", __func__);
    struct sample_args args = {.x = x, .grid = grid, .y = y, .h = h, .w = w, .c = c,
                               .out_h = out_h, .out_w = out_w,
                               .kernels = CNNC_PICK(cnnc_spatial_kernels)};
    cnnc_parallel_chunks(n * out_h * out_w, cnnc_max_i64(1, SPATIAL_GRAIN / c), 1,
                         one_channel(h, w, c) ? sample_pixels_c1 : sample_pixels, &args);
    return CNNC_OK;
}

static void grid_gradient_pixels(int64_t begin, int64_t end, void *ctx)
{
    const struct sample_args *a = ctx;
    struct image_cursor cur = cursor_at(a, begin);
    for (int64_t p = begin; p < end; ++p)
        cnnc_grid_gradient_point(cursor_image(&cur, p), a->c, a->h, a->w, a->grid[2 * p],
                                 a->grid[2 * p + 1], a->dy + p * a->c, a->dgrid + 2 * p);
}

/* One channel: the ISA kernel over the run of each image in [begin, end). */
static void grid_gradient_pixels_c1(int64_t begin, int64_t end, void *ctx)
{
    const struct sample_args *a = ctx;
    const int64_t pixels = a->out_h * a->out_w;
    for (int64_t p = begin; p < end;) {
        int64_t i = p / pixels, stop = cnnc_min_i64(end, (i + 1) * pixels);
        a->kernels->grid_gradient_c1(a->x + i * a->h * a->w, a->h, a->w, a->grid + 2 * p, a->dy + p,
                                     stop - p, a->dgrid + 2 * p);
        p = stop;
    }
}

/* dx of image task / blocks, channels of block task % blocks: zeroed, then
 * every output pixel adds its weighted dy into its four neighbours. */
static void input_gradient_block(int64_t task, void *ctx)
{
    const struct sample_args *a = ctx;
    const int64_t c = a->c, pixels = a->out_h * a->out_w, image = a->h * a->w;
    int64_t i = task / a->blocks;
    int64_t c0 = (task % a->blocks) * SPATIAL_CHANNEL_BLOCK;
    int64_t cn = cnnc_min_i64(SPATIAL_CHANNEL_BLOCK, c - c0);
    float *dx = a->dx + i * image * c + c0;
    for (int64_t q = 0; q < image; ++q)
        memset(dx + q * c, 0, (size_t)cn * sizeof(float));
    const float *grid = a->grid + i * pixels * 2;
    const float *dy = a->dy + i * pixels * c + c0;
    for (int64_t p = 0; p < pixels; ++p) {
        struct cnnc_taps t;
        if (!cnnc_find_taps(grid[2 * p], grid[2 * p + 1], a->h, a->w, &t))
            continue;
        const float *g = dy + p * c;
        for (int k = 0; k < 4; ++k) {
            if (!t.inside[k])
                continue;
            float *dst = dx + t.offset[k] * c;
            float wt = t.weight[k];
            for (int64_t j = 0; j < cn; ++j)
                dst[j] += wt * g[j];
        }
    }
}

cnnc_status cnnc_grid_sample_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float *x,
                                      int64_t out_h, int64_t out_w, const float *grid, const float *dy,
                                      float *dx, float *dgrid)
{
    int64_t x_count, y_count, grid_count;
    CNNC_TRY(check_sample(__func__, n, h, w, c, out_h, out_w, &x_count, &y_count, &grid_count));
    if (n == 0 || (dx == NULL && dgrid == NULL))
        return CNNC_OK;
    CNNC_CHECK_PTR(grid);
    CNNC_CHECK_PTR(dy);
    if (dgrid != NULL && x == NULL)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: x is NULL (dgrid needs it)", __func__);
    if (overlaps(dx, x_count, grid, grid_count) || overlaps(dx, x_count, dy, y_count) ||
        overlaps(dx, x_count, x, x_count) || overlaps(dgrid, grid_count, grid, grid_count) ||
        overlaps(dgrid, grid_count, dy, y_count) || overlaps(dgrid, grid_count, x, x_count) ||
        overlaps(dx, x_count, dgrid, grid_count))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: dx or dgrid overlaps an input or each other",
                          __func__);
    struct sample_args args = {.x = x, .grid = grid, .dy = dy, .dx = dx, .dgrid = dgrid, .h = h,
                               .w = w, .c = c, .out_h = out_h, .out_w = out_w,
                               .blocks = cnnc_ceil_div(c, SPATIAL_CHANNEL_BLOCK),
                               .kernels = CNNC_PICK(cnnc_spatial_kernels)};
    if (dgrid != NULL)
        cnnc_parallel_chunks(n * out_h * out_w, cnnc_max_i64(1, SPATIAL_GRAIN / c), 1,
                             one_channel(h, w, c) ? grid_gradient_pixels_c1 : grid_gradient_pixels,
                             &args);
    if (dx != NULL) {
        int64_t tasks = n * args.blocks;
        int64_t work = x_count > INT64_MAX - y_count ? INT64_MAX : x_count + y_count;
        cnnc_parallel_for(tasks, cnnc_threads_for(work, SPATIAL_GRAIN), input_gradient_block, &args);
    }
    return CNNC_OK;
}
