/* Convolution through explicit GEMMs on the GEMM micro-kernels: x itself
 * (1x1, stride 1, unpadded) or im2col tiles of its patches (the weight
 * gradient) times the weight matrix, and the input gradient as dcol = dy *
 * w^T scattered back by col2im. src/conv/select.c says where each runs. */
#include <string.h>
#include "im2col_gemm.h"
#include "gemm_internal.h"
#include "gemm_kernels.h"
#include "partials.h"
#include "patches.h"
#include "team.h"

/* Floats in one thread's im2col tile: 512 KiB, half the L2, so that the tile
 * written by im2col is still cached when the GEMM packs it. */
#define COL_TILE_FLOATS ((int64_t)128 * 1024)
/* Pixels per tile of the copy-free 1x1 path: bounds the rows of C that the
 * bias pre-fill and the GEMM both touch. */
#define DIRECT_TILE_PIXELS 1024
/* Bytes of packed w^T panels that all the rows of dy pass over before the
 * next panels: they stay in L2 meanwhile. */
#define DCOL_BLOCK_BYTES ((int64_t)512 * 1024)

static int64_t tile_pixels(int64_t row)
{
    return cnnc_max_i64(64, cnnc_min_i64(4096, COL_TILE_FLOATS / row));
}

/* Pixels per tile of the weight gradient: the GEMM's inner dimension, so
 * each call reads and writes the whole partial dW once; at least 256 pixels
 * keeps that traffic small next to the multiply-adds even for the largest
 * kernels, while the tile stays under 16 MiB (256 measured best on the
 * ResNet-18 shapes). */
static int64_t weight_tile_pixels(int64_t row)
{
    return cnnc_max_i64(tile_pixels(row), cnnc_max_i64(64, cnnc_min_i64(256, ((int64_t)4 << 20) / row)));
}

/* y[p0 : p0 + count] (= bias) + a * w, group by group. a holds count rows of
 * lda floats, group blocks of KH*KW*Cin/g floats. */
static cnnc_status gemm_rows(const struct cnnc_conv_geom *g, int64_t count, const float *a, int64_t lda,
                             const float *w, const float *bias, float *y)
{
    const int64_t kg = g->kh * g->kw * g->cin_g;
    float beta = 0.0f;
    if (bias) {
        cnnc_conv_fill_rows(y, count, bias, g->cout);
        beta = 1.0f;
    }
    for (int64_t grp = 0; grp < g->groups; ++grp)
        CNNC_TRY(cnnc_sgemm_serial(CNNC_NO_TRANS, CNNC_NO_TRANS, count, g->cout_g, kg, 1.0f, a + grp * kg, lda,
                                   w + grp * g->cout_g, g->cout, beta, y + grp * g->cout_g, g->cout));
    return CNNC_OK;
}

/* One chunk of the pixels of a pointwise forward: y rows [p, p + count). */
struct pointwise_job {
    const struct cnnc_conv_geom *g;
    const float *x, *w, *bias;
    const struct cnnc_gemm_packed_b *packed;
    const struct cnnc_gemm_epilogue *stage;  /* NULL: bias pre-filled, as cnnc_conv_gemm_pointwise_forward */
    float *y;
};

/* The fused chunk's GEMM on up to `threads` threads. */
static cnnc_status pointwise_chunk_on(const struct pointwise_job *job, int64_t p, int64_t count, int threads)
{
    const struct cnnc_conv_geom *g = job->g;
    struct cnnc_gemm_epilogue rows = *job->stage;
    if (rows.residual)
        rows.residual += p * rows.ldr;
    return cnnc_sgemm_fused(threads, count, g->cout, g->cin, job->x + p * g->cin, g->cin, job->w, g->cout,
                            job->packed, &rows, job->y + p * g->cout, g->cout);
}

static cnnc_status pointwise_chunk(const struct pointwise_job *job, int64_t p, int64_t count)
{
    const struct cnnc_conv_geom *g = job->g;
    if (!job->stage)
        return gemm_rows(g, count, job->x + p * g->cin, g->cin, job->w, job->bias, job->y + p * g->cout);
    return pointwise_chunk_on(job, p, count, 1);
}

/* The pixels split over the team, in chunks of DIRECT_TILE_PIXELS. */
static cnnc_status pointwise_pixels(const struct pointwise_job *job, int threads)
{
    const struct cnnc_conv_geom *g = job->g;
    const int64_t pixels = g->n * g->oh * g->ow;
    /* Few micro-tiles of pixels per thread (a 7 x 7 image at batch 1): one
     * GEMM over them all, which may split the output channels too where
     * whole pixel tiles split badly (49 pixels on 2 threads: 25 and 24 cost
     * two 14-pixel tiles each, the 49 pixels with half the channels each
     * 3.5 tiles' worth for half as many panels). Every element is summed
     * as in a pixel chunk. */
    if (job->stage && threads > 1 && cnnc_ceil_div(pixels, CNNC_PICK(cnnc_gemm_kernels)->mr) < 4 * (int64_t)threads)
        return pointwise_chunk_on(job, 0, pixels, threads);
    int failed = 0;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        int64_t p0, p1;
        cnnc_conv_split(pixels, cnnc_conv_thread_id(), cnnc_conv_team_size(), &p0, &p1);
        for (int64_t p = p0; p < p1; p += DIRECT_TILE_PIXELS) {
            if (pointwise_chunk(job, p, cnnc_min_i64(DIRECT_TILE_PIXELS, p1 - p)) != CNNC_OK) {
                cnnc_conv_mark_failed(&failed);
                break;
            }
        }
        cnnc_fpu_restore(fpu);
    }
    if (failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d forward: cannot allocate the GEMM workspace");
    return CNNC_OK;
}

cnnc_status cnnc_conv_gemm_pointwise_forward(const struct cnnc_conv_geom *g, int threads, const float *x,
                                             const float *w, const float *bias, float *y)
{
    const struct pointwise_job job = {.g = g, .x = x, .w = w, .bias = bias, .y = y};
    return pointwise_pixels(&job, threads);
}

cnnc_status cnnc_conv_gemm_pointwise_forward_fused(const struct cnnc_conv_geom *g, int threads, const float *x,
                                                   const float *w, const struct cnnc_gemm_packed_b *packed,
                                                   const struct cnnc_gemm_epilogue *stage, float *y)
{
    const struct pointwise_job job = {.g = g, .x = x, .w = w, .packed = packed, .stage = stage, .y = y};
    return pointwise_pixels(&job, threads);
}

cnnc_status cnnc_conv_gemm_pointwise_backward_data(const struct cnnc_conv_geom *g, int threads, const float *w,
                                                   const float *dy, const float *bias, float *dx)
{
    /* dx = dy * w^T: the forward GEMM with the roles of the channel
     * counts swapped and w read transposed. */
    const int64_t pixels = g->n * g->h * g->w;
    int failed = 0;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        int64_t p0, p1;
        cnnc_conv_split(pixels, cnnc_conv_thread_id(), cnnc_conv_team_size(), &p0, &p1);
        for (int64_t p = p0; p < p1; p += DIRECT_TILE_PIXELS) {
            const int64_t count = cnnc_min_i64(DIRECT_TILE_PIXELS, p1 - p);
            float *c = dx + p * g->cin;
            float beta = 0.0f;
            if (bias) {
                cnnc_conv_fill_rows(c, count, bias, g->cin);
                beta = 1.0f;
            }
            for (int64_t grp = 0; grp < g->groups; ++grp)
                if (cnnc_sgemm_serial(CNNC_NO_TRANS, CNNC_TRANS, count, g->cin_g, g->cout_g, 1.0f,
                                      dy + p * g->cout + grp * g->cout_g, g->cout, w + grp * g->cout_g, g->cout,
                                      beta, c + grp * g->cin_g, g->cin) != CNNC_OK)
                    cnnc_conv_mark_failed(&failed);
        }
        cnnc_fpu_restore(fpu);
    }
    if (failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the GEMM workspace");
    return CNNC_OK;
}

/* ---- dcol = dy * w^T with w^T packed once per call ------------------------
 * pack_wt (thread t of the team packs its share) fills packed_wt_floats
 * floats; dcol_packed computes `count` rows (group blocks as in im2col, ldc
 * floats apart) using ap (MR * Cout/g floats) for partial row blocks. */
static int64_t packed_wt_floats(const struct cnnc_conv_geom *g, const struct cnnc_gemm_kernels *kern)
{
    const int64_t kg = g->kh * g->kw * g->cin_g;
    return g->groups * cnnc_ceil_div(kg, kern->nr) * kern->nr * g->cout_g;
}

static void pack_wt(const struct cnnc_conv_geom *g, const struct cnnc_gemm_kernels *kern, const float *w, float *bp,
                    int t, int team)
{
    const int64_t kg = g->kh * g->kw * g->cin_g, nr = kern->nr, panels = cnnc_ceil_div(kg, nr);
    /* Row co, column k of group grp's w^T is w[k][grp * Cout/g + co]. */
    for (int64_t q = t; q < g->groups * panels; q += team) {
        const int64_t grp = q / panels, j = q % panels;
        kern->pack_b(g->cout_g, cnnc_min_i64(nr, kg - j * nr), w + (j * nr) * g->cout + grp * g->cout_g, 1, g->cout,
                     bp + q * g->cout_g * nr);
    }
}

static void dcol_packed(const struct cnnc_conv_geom *g, const struct cnnc_gemm_kernels *kern, const float *bp,
                        int64_t count, const float *dy, float *dcol, int64_t ldc, float *ap)
{
    const int64_t kg = g->kh * g->kw * g->cin_g, mr = kern->mr, nr = kern->nr, panels = cnnc_ceil_div(kg, nr);
    const int64_t block = cnnc_max_i64(1, DCOL_BLOCK_BYTES / (g->cout_g * nr * (int64_t)sizeof(float)));
    for (int64_t grp = 0; grp < g->groups; ++grp) {
        const float *bg = bp + grp * panels * g->cout_g * nr;
        for (int64_t j0 = 0; j0 < panels; j0 += block) {
            const int64_t j1 = cnnc_min_i64(panels, j0 + block);
            for (int64_t i0 = 0; i0 < count; i0 += mr) {
                const int64_t rows = cnnc_min_i64(mr, count - i0);
                const float *a = dy + i0 * g->cout + grp * g->cout_g;
                int64_t rs = g->cout, cs = 1;
                if (rows < mr) {
                    kern->pack_a(rows, g->cout_g, a, g->cout, 1, ap);
                    a = ap;
                    rs = 1;
                    cs = mr;
                }
                for (int64_t j = j0; j < j1; ++j)
                    kern->ukernel(g->cout_g, a, rs, cs, bg + j * g->cout_g * nr, dcol + i0 * ldc + grp * kg + j * nr,
                                  ldc, rows, cnnc_min_i64(nr, kg - j * nr), 1.0f, 0.0f);
            }
        }
    }
}

/* w^T packed by the team at the top of a backward-data region. */
struct packed_wt {
    const struct cnnc_gemm_kernels *kern;
    float *bp;
};

static cnnc_status packed_wt_alloc(const struct cnnc_conv_geom *g, struct packed_wt *p)
{
    p->kern = CNNC_PICK(cnnc_gemm_kernels);
    p->bp = cnnc_workspace(CNNC_CONV_SLOT_PACKED_WT, (size_t)packed_wt_floats(g, p->kern) * sizeof(float));
    if (!p->bp)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the packed weights");
    return CNNC_OK;
}

cnnc_status cnnc_conv_gemm_backward_data_scatter(const struct cnnc_conv_geom *g, int threads, const float *w,
                                                 const float *dy, const float *bias, float *dx)
{
    const int64_t row = g->kh * g->kw * g->cin, tile = tile_pixels(row);
    const int64_t image_in = g->h * g->w * g->cin, image_px = g->oh * g->ow;
    struct packed_wt pw;
    CNNC_TRY(packed_wt_alloc(g, &pw));
    int failed = 0;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        const int t = cnnc_conv_thread_id(), team = cnnc_conv_team_size();
        pack_wt(g, pw.kern, w, pw.bp, t, team);
        int64_t n0, n1;
        cnnc_conv_split(g->n, t, team, &n0, &n1);
        float *dcol = cnnc_workspace(CNNC_CONV_SLOT_COL,
                                     (size_t)(tile * row + pw.kern->mr * g->cout_g) * sizeof(float));
        if (!dcol)
            cnnc_conv_mark_failed(&failed);
        if (!cnnc_conv_team_failed(&failed)) {
            if (bias)
                cnnc_conv_fill_rows(dx + n0 * image_in, (n1 - n0) * g->h * g->w, bias, g->cin);
            else
                memset(dx + n0 * image_in, 0, (size_t)((n1 - n0) * image_in) * sizeof(float));
            for (int64_t p = n0 * image_px; p < n1 * image_px; p += tile) {
                const int64_t count = cnnc_min_i64(tile, n1 * image_px - p);
                dcol_packed(g, pw.kern, pw.bp, count, dy + p * g->cout, dcol, row, dcol + tile * row);
                cnnc_conv_col2im_add(g, dcol, p, count, dx);
            }
        }
        cnnc_fpu_restore(fpu);
    }
    if (failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the col2im workspace");
    return CNNC_OK;
}

cnnc_status cnnc_conv_gemm_backward_data_shared(const struct cnnc_conv_geom *g, int threads, const float *w,
                                                const float *dy, const float *bias, float *dx)
{
    const int64_t row = g->kh * g->kw * g->cin, image_px = g->oh * g->ow;
    struct packed_wt pw;
    CNNC_TRY(packed_wt_alloc(g, &pw));
    float *dcol = cnnc_workspace(CNNC_CONV_SLOT_SHARED, (size_t)(image_px * row) * sizeof(float));
    if (!dcol)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the col2im buffer");
    int failed = 0;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        const int t = cnnc_conv_thread_id(), team = cnnc_conv_team_size();
        pack_wt(g, pw.kern, w, pw.bp, t, team);
        float *ap = cnnc_workspace(CNNC_CONV_SLOT_COL, (size_t)(pw.kern->mr * g->cout_g) * sizeof(float));
        if (!ap)
            cnnc_conv_mark_failed(&failed);
        cnnc_conv_barrier();
        int64_t p0, p1, r0, r1;
        cnnc_conv_split(image_px, t, team, &p0, &p1);
        cnnc_conv_split(g->h, t, team, &r0, &r1);
        for (int64_t n = 0; n < g->n && !cnnc_conv_has_failed(&failed); ++n) {
            dcol_packed(g, pw.kern, pw.bp, p1 - p0, dy + (n * image_px + p0) * g->cout, dcol + p0 * row, row,
                        ap);
            cnnc_conv_barrier();
            cnnc_conv_col2im_gather(g, dcol, n, r0, r1, bias, dx);
            cnnc_conv_barrier();
        }
        cnnc_fpu_restore(fpu);
    }
    if (failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the GEMM workspace");
    return CNNC_OK;
}

cnnc_status cnnc_conv_gemm_backward_weights(const struct cnnc_conv_geom *g, int threads, const float *x,
                                            const float *dy, float *dw, float *db)
{
    const int64_t pixels = g->n * g->oh * g->ow, row = g->kh * g->kw * g->cin, kg = g->kh * g->kw * g->cin_g;
    const int direct = cnnc_conv_is_pointwise(g);
    const int64_t tile = direct ? DIRECT_TILE_PIXELS : weight_tile_pixels(row);
    const int parts = cnnc_conv_partial_parts(cnnc_conv_partition_threads(g), cnnc_conv_fixed_parts(g), kg * g->cout);
    float *buffers[parts];
    struct cnnc_conv_partials partials = {.out = dw, .buffers = buffers, .count = kg * g->cout, .parts = parts};
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(cnnc_conv_partial_team(threads, parts))
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        struct cnnc_conv_part part = {.index = -1};
        float *col = direct ? NULL : cnnc_workspace(CNNC_CONV_SLOT_COL, (size_t)(tile * row) * sizeof(float));
        if (!direct && !col)
            cnnc_conv_mark_failed(&partials.failed);
        else
            while (cnnc_conv_partial_next(&partials, pixels, &part))
                for (int64_t p = part.begin, p1 = part.end; p < p1; p += tile) {
                    float *sum = part.sum;
                    const int64_t count = cnnc_min_i64(tile, p1 - p);
                    const float *a = x + p * g->cin;
                    if (!direct) {
                        cnnc_conv_im2col(g, x, p, count, col);
                        a = col;
                    }
                    for (int64_t grp = 0; grp < g->groups; ++grp)
                        if (cnnc_sgemm_serial(CNNC_TRANS, CNNC_NO_TRANS, kg, g->cout_g, count, 1.0f, a + grp * kg,
                                              row, dy + p * g->cout + grp * g->cout_g, g->cout, 1.0f,
                                              sum + grp * g->cout_g, g->cout) != CNNC_OK)
                            cnnc_conv_mark_failed(&partials.failed);
                }
        cnnc_conv_partial_reduce(&partials);
        cnnc_fpu_restore(fpu);
    }
    if (partials.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the weight-gradient workspace");
    if (db)
        return cnnc_conv_channel_sum(pixels, g->cout, dy, db);
    return CNNC_OK;
}
