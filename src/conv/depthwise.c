/* Depthwise convolution drivers: tap lists, row interiors and threads around
 * the per-ISA micro-kernels (src/internal/depthwise_template.h; why direct
 * kernels: see src/conv/select.c).
 *
 * Each output row (forward, weights) or dx row (backward-data, one list per
 * stride phase) is one list of taps, the kernel positions whose source row
 * lies inside the image. When the taps form kernel rows of consecutive
 * source columns (multiplier 1, no dilation along the row, the strides the
 * kernels support), the sliding kernels take the whole row, borders
 * included, and rows with all kernel rows inside the image go by bands.
 * Otherwise the pixels whose every tap lies inside the image (the interior)
 * form one run; the few border pixels run alone with the taps that fall
 * outside left out. Padding thus costs nothing and never needs a padded
 * copy. Threads take contiguous ranges of rows over (image, row), which
 * keeps the source rows of consecutive output rows in L1/L2 and splits a
 * single image as well as a batch; the forward pass also splits the
 * channels when the rows alone do not split evenly (channel_groups). */
#include <string.h>
#include "depthwise.h"
#include "depthwise_kernels.h"
#include "gemm_kernels.h"
#include "partials.h"
#include "team.h"

/* Multiply-adds per thread below which a second thread does not pay. */
#define DEPTHWISE_THREAD_GRAIN cnnc_work_grain(CNNC_WORK_DEPTHWISE)
/* The weight gradient's parts: each adds a partial copy of dW to reduce
 * and their count sets dW's bits, so a part takes twice as much work. */
#define DEPTHWISE_WEIGHTS_GRAIN (2 * DEPTHWISE_THREAD_GRAIN)
/* Source bytes that one weight-gradient run should keep in L1: the kernel
 * rereads them once per channel vector and tap chunk. */
#define DEPTHWISE_WEIGHTS_RUN_BYTES (24 * 1024)
/* Source bytes of a band of rows run together by the sliding kernels,
 * which walk down the band before moving along the row: the band stays in
 * L2 while the rows shared by consecutive output rows are reread from L1. */
#define DEPTHWISE_BAND_BYTES (256 * 1024)
/* Widest source pixel (bytes) for bands: walking down a band, a tile reads
 * kernel-rows x tile-width lines at multiples of the pixel size, and from
 * 2 KiB on they crowd into too few L1 sets to survive until the next row. */
#define DEPTHWISE_BAND_MAX_PIXEL 1024
/* Shortest weight-gradient run: each run adds its sums into dW once. */
#define DEPTHWISE_WEIGHTS_MIN_RUN 8

typedef void (*dw_kernel)(const struct cnnc_dw_run *r);

/* The taps of one row, and scratch for the kernels' offset lists. */
struct dw_taps {
    int64_t n;
    int64_t row; /* taps per kernel row (the list is row-major) */
    int64_t *roff; /* float offset of the tap's source row */
    int64_t *dcol; /* source column of the tap for output pixel 0 (may be < 0) */
    int64_t *woff; /* float offset of the tap's weights */
    int64_t *xoff; /* roff + dcol * pixel floats */
    int64_t *bxoff, *bwoff;
};

/* One row of output pixels: pixel t reads source columns t * xs + dcol. */
struct dw_line {
    const float *src;
    int64_t src_w, pix; /* source columns, floats per source pixel */
    int64_t xs;
    int64_t count;
    float *out; /* forward / backward-data: output pixel 0 */
    int64_t ostep;
    const float *dy; /* backward-weights: dy of output pixel 0 */
    int64_t dystep;
};

static void place(struct cnnc_dw_run *r, const struct dw_line *l, int64_t t)
{
    r->x = l->src + t * l->xs * l->pix;
    if (l->dy)
        r->w = l->dy + t * l->dystep;
    else
        r->out = l->out + t * l->ostep;
}

/* Whether the row's taps are kernel rows of tp->row consecutive source
 * columns, all starting at the same column (the sliding kernels' form). */
static int rows_slide(const struct dw_taps *tp)
{
    if (tp->n == 0 || tp->row < 1 || tp->n % tp->row != 0)
        return 0;
    for (int64_t k = 0; k < tp->n; ++k)
        if (tp->dcol[k] != tp->dcol[0] + k % tp->row)
            return 0;
    return 1;
}

/* Runs kernel over one row: in one sliding run when r->row_taps is set,
 * else the interior in runs of at most `block` pixels, then each border
 * pixel alone. Without taps, gathers still write their initial values and
 * gradients have nothing to add. */
static void run_line(dw_kernel kernel, struct cnnc_dw_run *r, const struct dw_line *l, struct dw_taps *tp,
                     int64_t block)
{
    int64_t lo = 0, hi = l->count;
    if (r->row_taps) {
        for (int64_t k = 0; k < tp->n; ++k)
            tp->xoff[k] = tp->roff[k] + tp->dcol[k] * l->pix;
        r->count = l->count;
        place(r, l, 0);
        r->xstep = l->xs * l->pix;
        r->xoff = tp->xoff;
        r->woff = tp->woff;
        r->taps = tp->n;
        r->stride = l->xs;
        r->col = tp->dcol[0];
        r->src_w = l->src_w;
        r->pix = l->pix;
        kernel(r);
        r->row_taps = 0;
        return;
    }
    if (tp->n > 0) {
        int64_t dmin = tp->dcol[0], dmax = tp->dcol[0];
        for (int64_t k = 0; k < tp->n; ++k) {
            dmin = cnnc_min_i64(dmin, tp->dcol[k]);
            dmax = cnnc_max_i64(dmax, tp->dcol[k]);
            tp->xoff[k] = tp->roff[k] + tp->dcol[k] * l->pix;
        }
        lo = cnnc_min_i64(dmin < 0 ? cnnc_ceil_div(-dmin, l->xs) : 0, l->count);
        hi = cnnc_max_i64(lo, cnnc_min_i64(cnnc_conv_floor_div(l->src_w - 1 - dmax, l->xs) + 1, l->count));
    } else if (l->dy) {
        return;
    }
    r->xstep = l->xs * l->pix;
    r->xoff = tp->xoff;
    r->woff = tp->woff;
    r->taps = tp->n;
    for (int64_t t = lo; t < hi; t += block) {
        r->count = cnnc_min_i64(block, hi - t);
        place(r, l, t);
        kernel(r);
    }
    r->count = 1;
    r->xoff = tp->bxoff;
    r->woff = tp->bwoff;
    for (int64_t t = 0; t < l->count; ++t) {
        if (t == lo)
            t = hi;
        if (t >= l->count)
            break;
        int64_t nb = 0;
        for (int64_t k = 0; k < tp->n; ++k) {
            const int64_t col = t * l->xs + tp->dcol[k];
            if (col >= 0 && col < l->src_w) {
                tp->bxoff[nb] = tp->xoff[k];
                tp->bwoff[nb++] = tp->woff[k];
            }
        }
        if (nb == 0 && l->dy)
            continue;
        r->taps = nb;
        place(r, l, t);
        kernel(r);
    }
}

/* Output rows, from `row` on (before `end`, in row's image), that one
 * sliding run can take: rows o whose kernel rows all read source rows
 * o * step + off .. + span inside [0, src_h), so that they share one tap
 * list shifted by whole rows, and whose sources stay within L2. */
static int64_t band_rows(int64_t row, int64_t end, int64_t per_image, int64_t step, int64_t off, int64_t span,
                         int64_t src_h, int64_t row_floats, int64_t pixel_floats)
{
    const int64_t o = row % per_image;
    if (pixel_floats * (int64_t)sizeof(float) > DEPTHWISE_BAND_MAX_PIXEL)
        return 1;
    const int64_t cap = cnnc_max_i64(1, DEPTHWISE_BAND_BYTES / (step * row_floats * (int64_t)sizeof(float)));
    int64_t band = 0;
    while (band < cap && row + band < end && o + band < per_image) {
        const int64_t first = (o + band) * step + off;
        if (first < 0 || first + span >= src_h)
            break;
        ++band;
    }
    return cnnc_max_i64(band, 1);
}

/* The weight gradient streams x and dy without writing anything, and the
 * hardware prefetchers lag behind its band-wise walk: the next band's new
 * rows are requested while this one is computed (1.1x to 2x at batch 32). */
static void prefetch_span(const float *p, int64_t floats)
{
    const char *c = (const char *)p;
    for (int64_t b = 0; b < floats * (int64_t)sizeof(float); b += 64)
        __builtin_prefetch(c + b);
}

/* The source rows that output row `row` reads and row - 1 did not. */
static void prefetch_next_rows(const struct cnnc_conv_geom *g, const float *x, int64_t row)
{
    const int64_t n = row / g->oh, last = (row % g->oh) * g->sh - g->pt + (g->kh - 1) * g->dh;
    for (int64_t ih = cnnc_max_i64(last - g->sh + 1, 0); ih <= last && ih < g->h; ++ih)
        prefetch_span(x + (n * g->h + ih) * g->w * g->cin, g->w * g->cin);
}

/* Taps of output row oh of image n (forward and weights). */
static void forward_taps(const struct cnnc_conv_geom *g, int64_t n, int64_t oh, struct dw_taps *tp)
{
    tp->n = 0;
    tp->row = g->kw;
    for (int64_t kh = 0; kh < g->kh; ++kh) {
        const int64_t ih = oh * g->sh - g->pt + kh * g->dh;
        if (ih < 0 || ih >= g->h)
            continue;
        for (int64_t kw = 0; kw < g->kw; ++kw) {
            tp->roff[tp->n] = (n * g->h + ih) * g->w * g->cin;
            tp->dcol[tp->n] = kw * g->dw - g->pl;
            tp->woff[tp->n++] = (kh * g->kw + kw) * g->cout;
        }
    }
}

/* Per-thread tap scratch, or NULL (failure recorded in *failed). */
static struct dw_taps thread_taps(const struct cnnc_conv_geom *g, int *failed)
{
    struct dw_taps tp = {0};
    const int64_t taps = g->kh * g->kw;
    int64_t *s = cnnc_workspace(CNNC_CONV_SLOT_COL, (size_t)taps * 6 * sizeof(int64_t));
    if (!s) {
        cnnc_conv_mark_failed(failed);
        return tp;
    }
    tp.roff = s;
    tp.dcol = s + taps;
    tp.woff = s + 2 * taps;
    tp.xoff = s + 3 * taps;
    tp.bxoff = s + 4 * taps;
    tp.bwoff = s + 5 * taps;
    return tp;
}

static int64_t work_of_rows(const struct cnnc_conv_geom *g, int64_t rows, int64_t row_len)
{
    int64_t work;
    if (__builtin_mul_overflow(rows, row_len, &work) || __builtin_mul_overflow(work, g->kh * g->kw, &work))
        work = INT64_MAX;
    return work;
}

static int threads_for_rows(const struct cnnc_conv_geom *g, int64_t rows, int64_t row_len)
{
    return cnnc_threads_for(work_of_rows(g, rows, row_len), DEPTHWISE_THREAD_GRAIN);
}

static cnnc_status scratch_error(void)
{
    return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "depthwise convolution: cannot allocate the tap lists");
}

/* Channel groups of the forward split. Rows alone leave a thread up to one
 * row more than another: 4 and 3 of a 7x7 output at batch 1 on 2 threads,
 * 14% of the layer waiting at the barrier. So the units are (channel group,
 * row), the groups whole cache lines of channels: the fewest groups
 * (at most DEPTHWISE_MAX_GROUPS) whose units split within 3% of evenly.
 * Every output is still computed whole, with the same taps in the same
 * order, by one thread: the split never changes a bit. */
#define DEPTHWISE_MAX_GROUPS 8
#define DEPTHWISE_GROUP_FLOATS 16 /* one cache line */

static int64_t channel_groups(int64_t rows, int64_t channels, int team)
{
    const int64_t lines = (channels + DEPTHWISE_GROUP_FLOATS - 1) / DEPTHWISE_GROUP_FLOATS;
    int64_t best = 1, best_most = INT64_MAX;
    for (int64_t k = 1; k <= lines && k <= DEPTHWISE_MAX_GROUPS; ++k) {
        const int64_t units = rows * k, most = (units + team - 1) / team;
        if (most * team * 100 <= units * 103)
            return k;
        /* Else the least work on the busiest thread, in rows: most / k. */
        if (most * best < best_most * k) {
            best = k;
            best_most = most;
        }
    }
    return best;
}

/* Input channels [c0, c1) of group `group` of `groups`. */
static void group_channels(int64_t channels, int64_t groups, int64_t group, int64_t *c0, int64_t *c1)
{
    const int64_t lines = (channels + DEPTHWISE_GROUP_FLOATS - 1) / DEPTHWISE_GROUP_FLOATS;
    *c0 = cnnc_min_i64(lines * group / groups * DEPTHWISE_GROUP_FLOATS, channels);
    *c1 = cnnc_min_i64(lines * (group + 1) / groups * DEPTHWISE_GROUP_FLOATS, channels);
}

cnnc_status cnnc_conv_depthwise_forward(const struct cnnc_conv_geom *g, const float *x, const float *w,
                                        const float *bias, const struct cnnc_gemm_epilogue *stage, float *y)
{
    const struct cnnc_depthwise_kernels *k = CNNC_PICK(cnnc_depthwise_kernels);
    const cnnc_gemm_epilogue_fn epilogue = CNNC_PICK(cnnc_gemm_kernels)->epilogue;
    /* The kernels start each output from the bias. */
    struct cnnc_gemm_epilogue rest;
    stage = cnnc_gemm_epilogue_after_bias(stage, &rest);
    const int64_t rows = g->n * g->oh;
    const int threads = threads_for_rows(g, rows, g->ow * g->cout);
    int failed = 0;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        struct dw_taps tp = thread_taps(g, &failed);
        if (tp.roff) {
            const int team = cnnc_conv_team_size();
            const int64_t groups = channel_groups(rows, g->cin, team), m = g->cout / g->cin;
            int64_t u0, u1;
            cnnc_conv_split(rows * groups, cnnc_conv_thread_id(), team, &u0, &u1);
            /* Units group by group: a contiguous run of rows in each. */
            for (int64_t u = u0; u < u1;) {
                const int64_t group = u / rows, r0 = u % rows, r1 = cnnc_min_i64(u1 - group * rows, rows);
                int64_t c0, c1;
                group_channels(g->cin, groups, group, &c0, &c1);
                u = group * rows + r1;
                if (c1 <= c0)
                    continue;
                struct cnnc_dw_run run = {.channels = c1 - c0, .multiplier = m, .w = w + c0 * m,
                                          .bias = bias ? bias + c0 * m : NULL, .ostep = g->cout,
                                          .xrow = g->sh * g->w * g->cin, .orow = g->ow * g->cout};
                for (int64_t row = r0; row < r1; row += run.rows) {
                    forward_taps(g, row / g->oh, row % g->oh, &tp);
                    struct dw_line line = {.src = x + c0, .src_w = g->w, .pix = g->cin, .xs = g->sw,
                                           .count = g->ow, .out = y + row * g->ow * g->cout + c0 * m,
                                           .ostep = g->cout};
                    run.rows = 1;
                    run.stage = NULL;
                    if (m == 1 && k->slides(tp.row, g->sw) && rows_slide(&tp)) {
                        run.row_taps = tp.row;
                        run.rows = band_rows(row, r1, g->oh, g->sh, -g->pt, (g->kh - 1) * g->dh, g->h,
                                             g->w * g->cin, g->cin);
                        /* The sliding kernels apply the stage tile by tile. */
                        run.stage = stage;
                        run.stage_row = row * g->ow;
                        run.stage_row_step = g->ow;
                        run.stage_col = c0;
                    }
                    run_line(k->forward, &run, &line, &tp, g->ow);
                    /* Else over the rows just written, still in cache. */
                    if (stage && !run.stage)
                        epilogue(stage, line.out, g->cout, run.rows * g->ow, (c1 - c0) * m, row * g->ow, c0 * m);
                }
            }
        }
        cnnc_fpu_restore(fpu);
    }
    (void)threads;
    return failed ? scratch_error() : CNNC_OK;
}

/* dx column iw = phase + t * sw receives tap (kh, kw) from dy column
 * (phase + pl - kw * dw) / sw + t when that division is exact. */
static void backward_data_taps(const struct cnnc_conv_geom *g, int64_t n, int64_t ih, int64_t phase,
                               struct dw_taps *tp)
{
    tp->n = 0;
    tp->row = 0;
    for (int64_t kw = 0; kw < g->kw; ++kw)
        tp->row += ((phase + g->pl - kw * g->dw) % g->sw + g->sw) % g->sw == 0;
    /* kh and kw descending: the sources then ascend, down the image and
     * along the row, as in the forward pass. */
    for (int64_t kh = g->kh - 1; kh >= 0; --kh) {
        const int64_t th = ih + g->pt - kh * g->dh;
        if (th < 0 || th % g->sh != 0 || th / g->sh >= g->oh)
            continue;
        for (int64_t kw = g->kw - 1; kw >= 0; --kw) {
            const int64_t tw = phase + g->pl - kw * g->dw;
            if (((tw % g->sw) + g->sw) % g->sw != 0)
                continue;
            tp->roff[tp->n] = (n * g->oh + th / g->sh) * g->ow * g->cout;
            tp->dcol[tp->n] = tw / g->sw;
            tp->woff[tp->n++] = (kh * g->kw + kw) * g->cout;
        }
    }
}

cnnc_status cnnc_conv_depthwise_backward_data(const struct cnnc_conv_geom *g, const float *w, const float *dy,
                                              const float *bias, float *dx)
{
    const struct cnnc_depthwise_kernels *k = CNNC_PICK(cnnc_depthwise_kernels);
    const int64_t rows = g->n * g->h;
    const int threads = threads_for_rows(g, rows, g->w * g->cout);
    int failed = 0;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        struct dw_taps tp = thread_taps(g, &failed);
        if (tp.roff) {
            int64_t r0, r1;
            cnnc_conv_split(rows, cnnc_conv_thread_id(), cnnc_conv_team_size(), &r0, &r1);
            struct cnnc_dw_run run = {.channels = g->cin, .multiplier = g->cout / g->cin, .w = w, .bias = bias,
                                      .ostep = g->sw * g->cin, .xrow = g->ow * g->cout, .orow = g->w * g->cin};
            for (int64_t row = r0; row < r1;) {
                int64_t band = 1;
                for (int64_t phase = 0; phase < g->sw && phase < g->w; ++phase) {
                    backward_data_taps(g, row / g->h, row % g->h, phase, &tp);
                    struct dw_line line = {.src = dy, .src_w = g->ow, .pix = g->cout, .xs = 1,
                                           .count = (g->w - phase + g->sw - 1) / g->sw,
                                           .out = dx + (row * g->w + phase) * g->cin, .ostep = g->sw * g->cin};
                    run.rows = 1;
                    if (run.multiplier == 1 && k->slides(tp.row, 1) && rows_slide(&tp)) {
                        run.row_taps = tp.row;
                        /* Stride 1: consecutive dx rows read consecutive dy rows. */
                        if (g->sh == 1 && g->sw == 1)
                            run.rows = band = band_rows(row, r1, g->h, 1, g->pt - (g->kh - 1) * g->dh,
                                                        (g->kh - 1) * g->dh, g->oh, g->ow * g->cout, g->cout);
                    }
                    run_line(k->backward_data, &run, &line, &tp, line.count);
                }
                row += band;
            }
        }
        cnnc_fpu_restore(fpu);
    }
    (void)threads;
    return failed ? scratch_error() : CNNC_OK;
}

cnnc_status cnnc_conv_depthwise_backward_weights(const struct cnnc_conv_geom *g, const float *x, const float *dy,
                                                 float *dw, float *db)
{
    const struct cnnc_depthwise_kernels *k = CNNC_PICK(cnnc_depthwise_kernels);
    const int64_t rows = g->n * g->oh, dw_count = g->kh * g->kw * g->cout;
    const int64_t work = work_of_rows(g, rows, g->ow * g->cout);
    const int threads = cnnc_threads_for(work, DEPTHWISE_WEIGHTS_GRAIN);
    const int parts = cnnc_conv_partial_parts(cnnc_partition_threads_for(work, DEPTHWISE_WEIGHTS_GRAIN),
                                              cnnc_parts_for(work, DEPTHWISE_WEIGHTS_GRAIN), dw_count + g->cout);
    float *buffers[parts];
    /* db from the same pass: dy is read once for both. */
    struct cnnc_conv_partials partials = {.out = dw, .buffers = buffers, .count = dw_count, .parts = parts,
                                          .out2 = db, .count2 = db ? g->cout : 0};
    int failed = 0;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(cnnc_conv_partial_team(threads, parts))
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        struct cnnc_conv_part part = {.index = -1};
        struct dw_taps tp = thread_taps(g, &failed);
        if (!tp.roff)
            cnnc_conv_mark_failed(&partials.failed);
        while (tp.roff && cnnc_conv_partial_next(&partials, rows, &part)) {
            float *sum = part.sum, *dbsum = part.sum2;
            const int64_t r0 = part.begin, r1 = part.end;
            struct cnnc_dw_run run = {.channels = g->cin, .multiplier = g->cout / g->cin, .out = sum,
                                      .wstep = g->cout, .xrow = g->sh * g->w * g->cin, .orow = g->ow * g->cout};
            for (int64_t row = r0; row < r1; row += run.rows) {
                forward_taps(g, row / g->oh, row % g->oh, &tp);
                const float *dy_row = dy + row * g->ow * g->cout;
                struct dw_line line = {.src = x, .src_w = g->w, .pix = g->cin, .xs = g->sw, .count = g->ow,
                                       .dy = dy_row, .dystep = g->cout};
                run.rows = 1;
                if (run.multiplier == 1 && k->slides(tp.row, g->sw) && rows_slide(&tp)) {
                    run.row_taps = tp.row;
                    run.rows = band_rows(row, r1, g->oh, g->sh, -g->pt, (g->kh - 1) * g->dh, g->h, g->w * g->cin,
                                         g->cin);
                }
                if (row + run.rows < r1) {
                    prefetch_span(dy_row + run.rows * g->ow * g->cout, g->ow * g->cout);
                    prefetch_next_rows(g, x, row + run.rows);
                }
                const int64_t rows_read = cnnc_max_i64(tp.n / g->kw, 1);
                const int64_t run_bytes = rows_read * g->sw * g->cin * (int64_t)sizeof(float);
                const int64_t block = cnnc_max_i64(DEPTHWISE_WEIGHTS_MIN_RUN, DEPTHWISE_WEIGHTS_RUN_BYTES / run_bytes);
                run_line(k->backward_weights, &run, &line, &tp, block);
                /* The band's dy rows are contiguous. */
                if (dbsum)
                    k->channel_sum(run.rows * g->ow, g->cout, dy_row, g->cout, dbsum);
            }
        }
        cnnc_conv_partial_reduce(&partials);
        cnnc_fpu_restore(fpu);
    }
    if (partials.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "depthwise conv backward: cannot allocate the partial sums");
    if (failed)
        return scratch_error();
    return CNNC_OK;
}
