/* Convolution as an implicit GEMM on the GEMM micro-kernels: the forward
 * pass, and the input gradients that are forward convolutions of dy.
 *
 * The weights are packed once per call into the micro-kernel's B panels
 * (K = KH*KW*Cin/g rows, NR columns each), shared by all threads. Output
 * pixels are then processed in segments of MR:
 * - a segment of MR pixels of one output row whose taps all land inside the
 *   input horizontally is read IN PLACE: for a fixed kernel row kh (and
 *   kernel column kw, unless dilation_w == 1 and groups == 1 make the whole
 *   kernel row one contiguous run of x), pixel i's patch is the run of x at
 *   a constant stride stride_w * Cin from pixel i - 1, which is exactly the
 *   micro-kernel's unpacked-A form (row stride, unit column stride). Each
 *   (kh[, kw]) adds its partial product into the output tile (beta = 1).
 *   No copy of the input at all.
 * - the other pixels (borders, row tails, rows narrower than MR) are
 *   gathered MR at a time, possibly across rows, im2col'd into a small tile
 *   and packed: one copy, no tile ever half empty.
 * Threads split the flat output pixels; each thread sweeps blocks of pixels
 * whose packed segments fit in L2, and runs every B panel over a block.
 * Rows at least MR wide go through zero-padded bands of input rows instead
 * (sweep_bands); with few channels per kernel row, so do all rows, through
 * the conv tile kernel, which runs all the taps of a segment at once.
 *
 * The stride-1 input gradient, and each stride phase of a strided one, run
 * the same sweeps with the flipped, channel-transposed kernel packed
 * straight from w. The weight gradient for few input channels reads the
 * same zero-padded bands (src/conv/tiled_weights.c). */
#include <stdlib.h>
#include <string.h>
#include "implicit.h"
#include "conv_kernels.h"
#include "gemm_kernels.h"
#include "patches.h"
#include "team.h"

/* Where the taps and the output pixels of a flipped forward lie (one phase
 * of a strided input gradient, see cnnc_conv_implicit_backward_data_phases):
 * tap (jh, jw) of g's kernel is tap (rh + sh * (g->kh - 1 - jh), rw + sw *
 * (g->kw - 1 - jw)) of w, whose rows have kw taps; output pixels, rows and
 * images are y_px, y_row and y_img floats apart. */
struct phase {
    int64_t rh, rw, sh, sw, kw;
    int64_t y_px, y_row, y_img;
};

struct implicit_plan {
    const struct cnnc_conv_geom *g;
    const struct cnnc_gemm_kernels *kern;
    const struct cnnc_conv_kernels *ck;
    /* Band segments go through ck->forward_tile: all the taps in one call. */
    int tiled;
    const float *x, *w, *bias;
    /* Residual and activation after the bias (or NULL), applied to each
     * block of output pixels once computed, while it is in cache; only
     * with the forward's own output layout. */
    const struct cnnc_gemm_epilogue *stage;
    struct cnnc_gemm_epilogue rest; /* what stage points to */
    float *y, *bp;
    int prepacked;       /* bp came packed: nothing to pack per call */
    int64_t kg, panels;  /* rows of B per group, NR panels per group */
    int merged;          /* one micro-kernel call per kernel row */
    /* B is packed from the kernel of the convolution this one is the
     * stride-1 gradient of: flipped in space, channels transposed, the taps
     * and the output layout as ph says. */
    int flipped;
    struct phase ph;
    /* How every thread walks the output pixels (choose_sweep). */
    void (*sweep)(struct implicit_plan *pl, int t, int team);
    int failed;
};

/* True when the output pixels are the flat NHWC array y. */
static inline int y_contiguous(const struct implicit_plan *pl)
{
    const struct cnnc_conv_geom *g = pl->g;
    return pl->ph.y_px == g->cout && pl->ph.y_row == g->ow * g->cout && pl->ph.y_img == g->oh * g->ow * g->cout;
}

/* Output row r (flat over images and rows). */
static inline float *y_row(const struct implicit_plan *pl, int64_t r)
{
    return pl->y + (r / pl->g->oh) * pl->ph.y_img + (r % pl->g->oh) * pl->ph.y_row;
}

/* True when output pixels [ow, ow + MR) of a row read only columns inside x. */
static inline int interior(const struct cnnc_conv_geom *g, int64_t ow, int64_t mr)
{
    const int64_t first = ow * g->sw - g->pl, last = (ow + mr - 1) * g->sw - g->pl + (g->kw - 1) * g->dw;
    return ow + mr <= g->ow && first >= 0 && last < g->w;
}

static void fill_bias(const struct cnnc_conv_geom *g, const float *bias, int64_t p, int64_t count, float *y)
{
    float *dst = y + p * g->cout;
    if (!bias) {
        memset(dst, 0, (size_t)(count * g->cout) * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < count; ++i)
        memcpy(dst + i * g->cout, bias, (size_t)g->cout * sizeof(float));
}

/* fill_bias over output rows [r, r + rows), in the plan's output layout. */
static void fill_bias_rows(const struct implicit_plan *pl, int64_t r, int64_t rows)
{
    const struct cnnc_conv_geom *g = pl->g;
    if (y_contiguous(pl)) {
        fill_bias(g, pl->bias, r * g->ow, rows * g->ow, pl->y);
        return;
    }
    for (int64_t i = r; i < r + rows; ++i) {
        float *dst = y_row(pl, i);
        for (int64_t q = 0; q < g->ow; ++q)
            fill_bias(g, pl->bias, 0, 1, dst + q * pl->ph.y_px);
    }
}

/* The output stage over the flat output pixels [p, p + count), all of
 * whose sums are complete. */
static void stage_pixels(const struct implicit_plan *pl, int64_t p, int64_t count)
{
    const int64_t cout = pl->g->cout;
    if (pl->stage)
        pl->kern->epilogue(pl->stage, pl->y + p * cout, cout, count, cout, p, 0);
}

/* Output pixels [p, p + MR) of one row, panel j of group grp. */
static void segment_in_place(const struct implicit_plan *pl, int64_t p, int64_t grp, int64_t j)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int64_t mr = pl->kern->mr, nr = pl->kern->nr;
    const int64_t ow = p % g->ow, oh = (p / g->ow) % g->oh, n = p / (g->ow * g->oh);
    const int64_t rs = g->sw * g->cin, iw0 = ow * g->sw - g->pl;
    const float *bpanel = pl->bp + (grp * pl->panels + j) * pl->kg * nr;
    const int64_t col = grp * g->cout_g + j * nr, cols = cnnc_min_i64(nr, g->cout_g - j * nr);
    float *y = pl->y + p * g->cout + col;
    for (int64_t kh = 0; kh < g->kh; ++kh) {
        const int64_t ih = oh * g->sh - g->pt + kh * g->dh;
        if (ih < 0 || ih >= g->h)
            continue;
        const float *row = pl->x + ((n * g->h + ih) * g->w + iw0) * g->cin + grp * g->cin_g;
        if (pl->merged) {
            pl->kern->ukernel(g->kw * g->cin, row, rs, 1, bpanel + kh * g->kw * g->cin * nr, y, g->cout, mr, cols,
                              1.0f, 1.0f);
            continue;
        }
        for (int64_t kw = 0; kw < g->kw; ++kw)
            pl->kern->ukernel(g->cin_g, row + kw * g->dw * g->cin, rs, 1, bpanel + (kh * g->kw + kw) * g->cin_g * nr,
                              y, g->cout, mr, cols, 1.0f, 1.0f);
    }
}

/* A segment of a pixel block: MR pixels of one row read in place (packed ==
 * NULL), or up to MR pixels packed (per group, MR * KH*KW*Cin/g floats). */
struct segment {
    int64_t p, count;
    const float *packed;
};

/* Pixels per block: the packed segments of a block (at most all of it) stay
 * in L2 while every B panel passes over them. */
#define A_BLOCK_BYTES ((int64_t)512 * 1024)
/* Per-call K (kernel row, or tap) below which band segments use
 * forward_tile: with one GEMM call per kernel row, the load and store of the
 * C tile and the bias pre-fill weigh on the multiply-adds of each call, most
 * with few of them (measured: 2.5x faster for 1 -> 32 3x3, 1.25x for the
 * 3 -> 64 7x7 ResNet stem), but still 1.1-1.3x for 64 to 256 channels of
 * 1x1 stride 2 and a few percent for 3x3 stride 2 up to 256 channels (K
 * 768), on AVX-512 and AVX2 alike. */
#define TILED_MAX_CALL_K 1025
/* Output row width (pixels) from which band rows narrower than MR use the
 * tiles (measured: on par at 3, 1.6x slower at 1). */
#define TILED_MIN_ROW 4
static int64_t block_pixels(const struct implicit_plan *pl)
{
    const int64_t mr = pl->kern->mr, row = pl->g->kh * pl->g->kw * pl->g->cin;
    return cnnc_max_i64(1, A_BLOCK_BYTES / (row * mr * (int64_t)sizeof(float))) * mr;
}

/* Packs this thread's share of the B panels (all groups). */
static void pack_weights(const struct implicit_plan *pl, int t, int team)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int64_t nr = pl->kern->nr;
    for (int64_t q = t; q < g->groups * pl->panels; q += team) {
        const int64_t grp = q / pl->panels, j = q % pl->panels, cols = cnnc_min_i64(nr, g->cout_g - j * nr);
        float *dst = pl->bp + q * pl->kg * nr;
        if (!pl->flipped) {
            pl->kern->pack_b(pl->kg, cols, pl->w + grp * g->cout_g + j * nr, g->cout, 1, dst);
            continue;
        }
        /* Row (tap, co) column ci of this B is the original kernel's
         * w[tap'][ci][co] (original Cin/g = cout_g here), tap' as ph says. */
        const struct phase *ph = &pl->ph;
        for (int64_t jh = 0, tap = 0; jh < g->kh; ++jh)
            for (int64_t jw = 0; jw < g->kw; ++jw, ++tap) {
                const int64_t orig = (ph->rh + ph->sh * (g->kh - 1 - jh)) * ph->kw + ph->rw + ph->sw * (g->kw - 1 - jw);
                pl->kern->pack_b(g->cin_g, cols, pl->w + orig * g->cout_g * g->cin + (j * nr) * g->cin + grp * g->cin_g,
                                 1, g->cin, dst + tap * g->cin_g * nr);
            }
    }
}

static int claim_workspace(struct implicit_plan *pl, size_t bytes, float **buffer)
{
    *buffer = cnnc_workspace(CNNC_CONV_SLOT_COL, bytes);
    if (!*buffer)
        cnnc_conv_mark_failed(&pl->failed);
    return !cnnc_conv_team_failed(&pl->failed);
}

/* Output rows narrower than MR: flat pixel blocks, see the file comment. */
static void sweep_flat(struct implicit_plan *pl, int t, int team)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int64_t mr = pl->kern->mr, nr = pl->kern->nr;
    const int64_t row = g->kh * g->kw * g->cin, block = block_pixels(pl);
    /* im2col rows of one segment, then the packed segments of a block, then
     * the segment list. */
    const size_t bytes = (size_t)(mr * row + block * row) * sizeof(float) +
                         (size_t)block * sizeof(struct segment);
    float *col;
    if (!claim_workspace(pl, bytes, &col))
        return;
    float *packed = col + mr * row;
    struct segment *segs = (struct segment *)(packed + block * row);

    int64_t p0, p1;
    cnnc_conv_split(g->n * g->oh * g->ow, t, team, &p0, &p1);
    for (int64_t b0 = p0; b0 < p1; b0 += block) {
        const int64_t b1 = cnnc_min_i64(p1, b0 + block);
        fill_bias(g, pl->bias, b0, b1 - b0, pl->y);
        /* Plan the block: in-place runs where possible; the rest gathered
         * up to MR at a time (across rows if need be) and packed now. */
        int64_t nseg = 0;
        float *next_packed = packed;
        for (int64_t p = b0; p < b1;) {
            if (p + mr <= b1 && interior(g, p % g->ow, mr)) {
                segs[nseg++] = (struct segment){p, mr, NULL};
                p += mr;
                continue;
            }
            int64_t count = 1;
            while (count < mr && p + count < b1 && !(p + count + mr <= b1 && interior(g, (p + count) % g->ow, mr)))
                ++count;
            cnnc_conv_im2col(g, pl->x, p, count, col);
            for (int64_t grp = 0; grp < g->groups; ++grp)
                pl->kern->pack_a(count, pl->kg, col + grp * pl->kg, row, 1, next_packed + grp * mr * pl->kg);
            segs[nseg++] = (struct segment){p, count, next_packed};
            next_packed += mr * row;
            p += count;
        }
        for (int64_t grp = 0; grp < g->groups; ++grp)
            for (int64_t j = 0; j < pl->panels; ++j) {
                const float *bpanel = pl->bp + (grp * pl->panels + j) * pl->kg * nr;
                const int64_t c0 = grp * g->cout_g + j * nr, cols = cnnc_min_i64(nr, g->cout_g - j * nr);
                for (int64_t s = 0; s < nseg; ++s) {
                    if (!segs[s].packed)
                        segment_in_place(pl, segs[s].p, grp, j);
                    else
                        pl->kern->ukernel(pl->kg, segs[s].packed + grp * mr * pl->kg, 1, mr, bpanel,
                                          pl->y + segs[s].p * g->cout + c0, g->cout, segs[s].count, cols, 1.0f,
                                          1.0f);
                }
            }
        stage_pixels(pl, b0, b1 - b0);
    }
}

/* Flat pixel blocks fully packed, cache-blocked as the GEMM itself: per
 * block of MC output pixels and KC columns of their im2col rows, the block
 * is gathered and packed once (it stays in L2), then every B panel's KC
 * rows (which stay in L1) pass over its MR-row panels. Output pixels that
 * are not the flat NHWC array (a stride phase of an input gradient) are
 * accumulated in a contiguous block first, then copied to their places. */
static void sweep_packed(struct implicit_plan *pl, int t, int team)
{
    const struct cnnc_conv_geom *g = pl->g;
    const struct cnnc_gemm_kernels *kern = pl->kern;
    const int64_t mr = kern->mr, nr = kern->nr, kg = pl->kg;
    const int64_t mc = kern->mc, kc = cnnc_min_i64(kern->kc, kg);
    const int direct = y_contiguous(pl);
    float *col;
    if (!claim_workspace(pl, (size_t)(2 * mc * kc + (direct ? 0 : mc * g->cout)) * sizeof(float), &col))
        return;
    float *ap = col + mc * kc, *block = direct ? NULL : ap + mc * kc;
    int64_t p0, p1;
    cnnc_conv_split(g->n * g->oh * g->ow, t, team, &p0, &p1);
    for (int64_t b0 = p0; b0 < p1; b0 += mc) {
        const int64_t m = cnnc_min_i64(mc, p1 - b0);
        float *c = direct ? pl->y + b0 * g->cout : block;
        if (pl->bias)
            fill_bias(g, pl->bias, 0, m, c);
        for (int64_t grp = 0; grp < g->groups; ++grp)
            for (int64_t k0 = 0; k0 < kg; k0 += kc) {
                const int64_t kk = cnnc_min_i64(kc, kg - k0);
                const float beta = k0 > 0 || pl->bias ? 1.0f : 0.0f;
                cnnc_conv_im2col_slice(g, pl->x, b0, m, grp, k0, kk, col, kk);
                kern->pack_a(m, kk, col, kk, 1, ap);
                for (int64_t j = 0; j < pl->panels; ++j) {
                    const float *bpanel = pl->bp + ((grp * pl->panels + j) * kg + k0) * nr;
                    const int64_t c0 = grp * g->cout_g + j * nr, cols = cnnc_min_i64(nr, g->cout_g - j * nr);
                    for (int64_t i0 = 0; i0 < m; i0 += mr)
                        kern->ukernel(kk, ap + i0 * kk, 1, mr, bpanel, c + i0 * g->cout + c0, g->cout,
                                      cnnc_min_i64(mr, m - i0), cols, 1.0f, beta);
                }
            }
        if (!direct)
            for (int64_t i = 0; i < m; ++i)
                memcpy(y_row(pl, (b0 + i) / g->ow) + (b0 + i) % g->ow * pl->ph.y_px, block + i * g->cout,
                       (size_t)g->cout * sizeof(float));
        else
            stage_pixels(pl, b0, m);
    }
}

/* out[i] = where output pixel p0 + i (flat over images, rows and columns)
 * goes, for i < count: one division per row, not per pixel. */
static void output_pixels(const struct implicit_plan *pl, int64_t p0, int64_t count, float **out)
{
    const int64_t ow = pl->g->ow, px = pl->ph.y_px;
    int64_t r = p0 / ow, q = p0 % ow;
    float *row = y_row(pl, r);
    for (int64_t i = 0; i < count; ++i) {
        out[i] = row + q * px;
        if (++q == ow) {
            q = 0;
            row = y_row(pl, ++r);
        }
    }
}

/* Pixels in the next tile of an indirect sweep with `left` pixels left: a
 * whole MR, or the last 1 to 2 MR split in two near halves, so that no
 * tile is left with a few rows whose accumulators wait on the FMA latency
 * (7 pixels: 4 + 3 rather than 6 + 1). */
static int64_t indirect_tile_pixels(int64_t left, int64_t mr)
{
    if (left >= 2 * mr || left == mr)
        return mr;
    return left > mr ? (left + 1) / 2 : left;
}

/* All output pixels as one flat run through forward_tile_indirect (see
 * indirect_pays): tiles of MR consecutive pixels, across rows and images,
 * read x in place through an indirection table; padded taps read zeros or
 * a zero-padded patch of their kernel row. Per block of pixels (whose
 * input rows take about a band's bytes): where all of B stays in L2, each
 * tile runs every panel while its rows stay in L1; else every panel passes
 * over all the block's tiles, so that it is read from L2, not memory, and
 * the block's rows stream from L2. */
#define B_RESIDENT_BYTES ((int64_t)512 * 1024)
#define INDIRECT_MAX_BLOCK 1024
static void sweep_indirect(struct implicit_plan *pl, int t, int team)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int64_t mr = pl->kern->mr, nr = pl->kern->nr, run = g->kw * g->cin;
    int64_t p0, p1;
    cnnc_conv_split(g->n * g->oh * g->ow, t, team, &p0, &p1);
    if (p1 <= p0)
        return;
    /* Blocks of whole output rows whose input rows (read in place, shared
     * by neighbouring pixels) take about as much as a band, at most
     * INDIRECT_MAX_BLOCK pixels (the tables' size stays small however thin
     * the rows) and no more than this thread's. */
    const int64_t in_rows = CNNC_CONV_BAND_BYTES / (g->w * g->cin * (int64_t)sizeof(float));
    const int64_t out_rows = cnnc_max_i64(1, (in_rows - (g->kh - 1) * g->dh - 1) / g->sh + 1);
    const int64_t pixels = cnnc_min_i64(cnnc_min_i64(out_rows, g->oh) * g->ow, INDIRECT_MAX_BLOCK);
    const int64_t block = cnnc_ceil_div(cnnc_min_i64(pixels, p1 - p0), mr) * mr;
    /* Patches: the kernel rows of the pixels of a row that reach past its
     * sides, in every output row a block touches. */
    int64_t edge = 0;
    for (int64_t q = 0; q < g->ow; ++q)
        edge += q * g->sw - g->pl < 0 || q * g->sw - g->pl + g->kw > g->w;
    const int64_t patch_floats = (cnnc_ceil_div(block, g->ow) + 1) * edge * pl->kg;
    /* The tables first (the workspace is aligned for them): the kernel rows
     * and the output pixels of the block. */
    const size_t table_bytes = (size_t)(block * (g->kh + 1)) * sizeof(float *);
    float *buffer;
    if (!claim_workspace(pl, table_bytes + (size_t)(run + patch_floats) * sizeof(float), &buffer))
        return;
    const float **table = (const float **)buffer;
    float **out = (float **)(table + block * g->kh);
    float *zeros = (float *)((char *)buffer + table_bytes), *patches = zeros + run;
    memset(zeros, 0, (size_t)run * sizeof(float));
    const int panels_outer = pl->panels * pl->kg * nr * (int64_t)sizeof(float) > B_RESIDENT_BYTES;
    for (int64_t b0 = p0; b0 < p1; b0 += block) {
        const int64_t m = cnnc_min_i64(block, p1 - b0);
        cnnc_conv_indirect_rows(g, pl->x, b0, m, zeros, patches, table);
        output_pixels(pl, b0, m, out);
        const struct cnnc_conv_tile tile = {.rs = m, .nkh = g->kh, .cw = run};
        const int64_t tiles = panels_outer ? pl->panels : 1, inner = panels_outer ? 1 : pl->panels;
        for (int64_t jo = 0; jo < tiles; ++jo)
            for (int64_t s0 = 0, len; s0 < m; s0 += len) {
                len = indirect_tile_pixels(m - s0, mr);
                for (int64_t j = jo; j < jo + inner; ++j) {
                    const int64_t c0 = j * nr;
                    pl->ck->forward_tile_indirect(&tile, table + s0, pl->bp + j * pl->kg * nr,
                                                  pl->bias ? pl->bias + c0 : NULL, out + s0, c0, len,
                                                  cnnc_min_i64(nr, g->cout - c0));
                }
            }
        stage_pixels(pl, b0, m);
    }
}

/* Adds the products of MR band pixels starting at buffer row `brow`, column
 * `bcol` into c (ldc), storing m rows, panel j of group grp; with beta 0
 * the first product overwrites c instead (which is then never read). */
static void band_segment(const struct implicit_plan *pl, const struct cnnc_conv_band *b, int64_t brow, int64_t bcol,
                         int64_t grp, int64_t j, float *c, int64_t ldc, int64_t m, float beta)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int64_t nr = pl->kern->nr, rs = g->sw * g->cin;
    const float *bpanel = pl->bp + (grp * pl->panels + j) * pl->kg * nr;
    const int64_t cols = cnnc_min_i64(nr, g->cout_g - j * nr);
    for (int64_t kh = 0; kh < g->kh; ++kh) {
        const float *a = b->data + ((brow + kh * g->dh) * b->width + bcol) * g->cin + grp * g->cin_g;
        if (pl->merged) {
            pl->kern->ukernel(g->kw * g->cin, a, rs, 1, bpanel + kh * g->kw * g->cin * nr, c, ldc, m, cols, 1.0f,
                              beta);
            beta = 1.0f;
            continue;
        }
        for (int64_t kw = 0; kw < g->kw; ++kw, beta = 1.0f)
            pl->kern->ukernel(g->cin_g, a + kw * g->dw * g->cin, rs, 1, bpanel + (kh * g->kw + kw) * g->cin_g * nr,
                              c, ldc, m, cols, 1.0f, beta);
    }
}

/* Output rows [r, r + rows) of a filled band through forward_tile: each
 * tile starts from the bias; a row's last partial segment computes only
 * its own pixels. */
static void band_tiles(const struct implicit_plan *pl, const struct cnnc_conv_band *b, int64_t r, int64_t rows)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int64_t mr = pl->kern->mr, nr = pl->kern->nr;
    const int merged = pl->merged;
    const struct cnnc_conv_tile tile = {
        .rs = g->sw * g->cin, .nkh = g->kh, .hs = g->dh * b->width * g->cin,
        .nkw = merged ? 1 : g->kw, .ws = g->dw * g->cin, .cw = merged ? g->kw * g->cin : g->cin_g,
        .ldc = pl->ph.y_px,
    };
    for (int64_t i = 0; i < rows; ++i) {
        const float *arow = b->data + i * g->sh * b->width * g->cin;
        float *yrow = y_row(pl, r + i);
        for (int64_t s0 = 0; s0 < g->ow; s0 += mr) {
            const int64_t m = cnnc_min_i64(mr, g->ow - s0);
            for (int64_t grp = 0; grp < g->groups; ++grp)
                for (int64_t j = 0; j < pl->panels; ++j) {
                    const int64_t c0 = grp * g->cout_g + j * nr;
                    pl->ck->forward_tile(&tile, arow + s0 * g->sw * g->cin + grp * g->cin_g,
                                         pl->bp + (grp * pl->panels + j) * pl->kg * nr, pl->bias ? pl->bias + c0 : NULL,
                                         yrow + s0 * pl->ph.y_px + c0, m, cnnc_min_i64(nr, g->cout_g - j * nr));
                }
        }
    }
}

/* Output rows at least MR wide: bands of whole output rows of one image,
 * read in place from a zero-padded copy of their input rows, so that no
 * pixel needs im2col; a row's last partial segment goes through an MR x NR
 * tile. */
/* True when the bands can be x itself: no tap of an output pixel needs
 * padding, and the MR rows of a row's partial segment, read past the row's
 * end into the next rows (their extra products are dropped), stay inside x.
 * Then nothing is copied, which matters most when the kernel is smaller than
 * its stride (1x1 / 2 downsampling): a copied band would hold every input
 * row and column, most of which no tap reads. */
static int band_in_place(const struct cnnc_conv_geom *g, int64_t mr)
{
    const int64_t last_row = (g->oh - 1) * g->sh - g->pt + (g->kh - 1) * g->dh;
    const int64_t full = g->ow / mr * mr, reach_w = (g->kw - 1) * g->dw - g->pl;
    if (g->pt > 0 || g->pl > 0 || last_row >= g->h || (g->ow - 1) * g->sw + reach_w >= g->w)
        return 0;
    if (full == g->ow)
        return 1;
    /* Floats from the start of the last image's last read row to the end
     * of x, against the reach of the last partial segment. */
    const int64_t end = (g->h - last_row) * g->w * g->cin;
    return ((full + mr - 1) * g->sw + reach_w + 1) * g->cin <= end;
}

static void sweep_bands(struct implicit_plan *pl, int t, int team)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int64_t mr = pl->kern->mr, nr = pl->kern->nr;
    const int64_t eh = (g->kh - 1) * g->dh + 1;
    const int in_place = band_in_place(g, mr);
    struct cnnc_conv_band b;
    b.width = in_place ? g->w : (cnnc_ceil_div(g->ow, mr) * mr - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    const int64_t row_floats = b.width * g->cin;
    const int64_t fit = cnnc_max_i64(eh, CNNC_CONV_BAND_BYTES / (row_floats * (int64_t)sizeof(float)));
    const int64_t band_rows = cnnc_max_i64(1, (fit - eh) / g->sh + 1);
    b.max_rows = (band_rows - 1) * g->sh + eh;
    const int64_t band_floats = in_place ? 0 : b.max_rows * row_floats;
    float *buffer;
    if (!claim_workspace(pl, (size_t)(band_floats + mr * nr) * sizeof(float), &buffer))
        return;
    b.buf = buffer;
    b.data = buffer;
    float *tile = buffer + band_floats;

    int64_t r0, r1;
    cnnc_conv_split(g->n * g->oh, t, team, &r0, &r1);
    const int64_t full = g->ow / mr * mr;
    for (int64_t r = r0; r < r1;) {
        const int64_t n = r / g->oh, oh0 = r % g->oh;
        const int64_t rows = cnnc_min_i64(band_rows, cnnc_min_i64(r1 - r, g->oh - oh0));
        if (in_place)
            b.data = pl->x + ((n * g->h + oh0 * g->sh - g->pt) * g->w - g->pl) * g->cin;
        else
            cnnc_conv_band_fill(g, pl->x, &b, n, oh0, rows);
        if (pl->tiled) {
            band_tiles(pl, &b, r, rows);
            stage_pixels(pl, r * g->ow, rows * g->ow);
            r += rows;
            continue;
        }
        /* Without a bias the first product of each tile initializes it. */
        const float beta = pl->bias ? 1.0f : 0.0f;
        if (beta != 0.0f)
            fill_bias_rows(pl, r, rows);
        const int64_t px = pl->ph.y_px;
        for (int64_t grp = 0; grp < g->groups; ++grp)
            for (int64_t j = 0; j < pl->panels; ++j) {
                const int64_t c0 = grp * g->cout_g + j * nr, cols = cnnc_min_i64(nr, g->cout_g - j * nr);
                for (int64_t i = 0; i < rows; ++i) {
                    float *yrow = y_row(pl, r + i) + c0;
                    for (int64_t s0 = 0; s0 < full; s0 += mr)
                        band_segment(pl, &b, i * g->sh, s0 * g->sw, grp, j, yrow + s0 * px, px, mr, beta);
                    if (full == g->ow)
                        continue;
                    /* Partial segment: all MR rows are computed (the band
                     * is wide enough), only the real ones are kept. */
                    const int64_t m = g->ow - full;
                    if (beta != 0.0f) {
                        memset(tile, 0, (size_t)(mr * nr) * sizeof(float));
                        for (int64_t q = 0; q < m; ++q)
                            memcpy(tile + q * nr, yrow + (full + q) * px, (size_t)cols * sizeof(float));
                    }
                    band_segment(pl, &b, i * g->sh, full * g->sw, grp, j, tile, nr, mr, beta);
                    for (int64_t q = 0; q < m; ++q)
                        memcpy(yrow + (full + q) * px, tile + q * nr, (size_t)cols * sizeof(float));
                }
            }
        stage_pixels(pl, r * g->ow, rows * g->ow);
        r += rows;
    }
}

/* Kernel columns (KH*KW*Cin/g) below which the tiles keep short rows: a
 * micro-kernel call over a few columns loads and stores its C tile for a
 * handful of multiply-adds. */
#define PACKED_MIN_K 256

/* Whether sweep_packed beats the bands. A band row runs in MR-pixel
 * segments, and its last partial one costs a whole MR tile, or with the
 * tiles (which compute only the pixels they keep) about MR / 2 rows' time
 * even for fewer rows (they then wait on the FMA latency). Where that
 * wastes over a sixth of the row (7-pixel rows on AVX2's 6-row tiles:
 * ResNet's last stage), packing every pixel, with the GEMM's cache blocks
 * over long kernels, wins (measured on AVX2 at 7x7 outputs: 1.3x for
 * 3x3 / 2 256 -> 512, 1.6x for 3x3 512 -> 512, 1.2x for 1x1 / 2 1024 ->
 * 2048); with rows of whole segments, or two and more segments before a
 * partial one, the bands, which read x in place, stay ahead (0.8-0.9x).
 * CNNC_CONV_PACKED=1/0 in the environment forces it or disables it (tests
 * run both). */
static int packed_pays(const struct implicit_plan *pl)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int64_t mr = pl->kern->mr;
    const char *env = getenv("CNNC_CONV_PACKED");
    if (env && (env[0] == '0' || env[0] == '1'))
        return env[0] == '1';
    const int64_t partial = g->ow % mr;
    if (partial == 0 || pl->kg < PACKED_MIN_K)
        return 0;
    /* Narrow rows: packed across rows by sweep_flat, or computed exactly by
     * the tiles, unless neither can take them. */
    if (g->ow < mr)
        return !pl->tiled && !y_contiguous(pl);
    const int64_t last = pl->tiled ? cnnc_max_i64(partial, mr / 2) : mr;
    return (g->ow - partial + last) * 6 > g->ow * 7;
}

/* Whether sweep_indirect runs: where the ISA has the indirect tile (on
 * AVX2 and the scalar path; AVX-512's 14 row pointers would spill), kernel
 * rows are runs of x (groups 1, dilation_w 1) of at least
 * INDIRECT_MIN_CALL_K floats, and output rows end in a short partial
 * segment (cnnc_conv_implicit_indirect_rows). Against the bands it copies
 * no padded input rows, and its tiles cross rows, so that no 14-pixel row
 * runs as 6 + 6 + 2 on AVX2's 6-pixel tiles (the 2-pixel tile at half
 * speed) and 7-pixel rows need not go through the packed sweep. Measured
 * on AVX2, one thread, batch 32: 1.12-1.17x on ResNet's 3x3 / 2 and 1x1 / 2
 * layers with 14-pixel output rows, 1.03-1.07x with 7-pixel rows, 1.1x on
 * 5x5 and 7x7 layers of 32 and 64 channels at 14x14. Rows whose partial
 * segment is long enough (28 pixels: 4 x 6 + 4) gain nothing, and where
 * the bands copy their input rows, the copy streams them into L2 faster
 * than the tiles read them from memory (0.85x for the 1x1 / 2 input
 * gradient of 64 channels at 56x56). With shorter kernel rows (3x3 on 8
 * or 16 channels, the 3-channel 7x7 stem: 0.83-0.94x) the per-tile table
 * reads and the edge patches outweigh the gain. CNNC_CONV_INDIRECT=1/0 in
 * the environment forces it wherever the ISA has the tile and the kernel
 * rows are runs, or disables it; CNNC_CONV_PACKED=1 forces the packed
 * sweep before it (tests run all three). */
#define INDIRECT_MIN_CALL_K 64
static int indirect_pays(const struct implicit_plan *pl)
{
    if (!pl->merged || !cnnc_conv_implicit_has_indirect())
        return 0;
    const char *packed = getenv("CNNC_CONV_PACKED"), *env = getenv("CNNC_CONV_INDIRECT");
    if (packed && packed[0] == '1')
        return 0;
    if (env && (env[0] == '0' || env[0] == '1'))
        return env[0] == '1';
    return pl->g->kw * pl->g->cin >= INDIRECT_MIN_CALL_K && cnnc_conv_implicit_indirect_rows(pl->g->ow);
}

int cnnc_conv_implicit_has_indirect(void)
{
    const struct cnnc_conv_kernels *ck = CNNC_PICK(cnnc_conv_kernels);
    const struct cnnc_gemm_kernels *kern = CNNC_PICK(cnnc_gemm_kernels);
    return ck->forward_tile_indirect && ck->tile_mr == kern->mr && ck->tile_nr == kern->nr;
}

int cnnc_conv_implicit_indirect_rows(int64_t ow)
{
    const int64_t mr = CNNC_PICK(cnnc_conv_kernels)->tile_mr, partial = ow % mr;
    return cnnc_conv_implicit_has_indirect() && (ow < mr || (partial != 0 && 3 * partial < 2 * mr));
}

/* The sweep of a call, the same for all its threads. The tiles compute
 * exactly the rows they keep, so with them narrow rows do better in bands
 * too (2x to 4x on 8 to 14 pixel rows), down to rows of about 4 pixels:
 * below, tiles of so few rows leave the FMA pipes waiting on their
 * latency, and the packed segments that cross rows win. Segments that
 * cross rows need contiguous output rows. */
static void choose_sweep(struct implicit_plan *pl)
{
    if (indirect_pays(pl))
        pl->sweep = sweep_indirect;
    else if (packed_pays(pl))
        pl->sweep = sweep_packed;
    else if (pl->g->ow >= pl->kern->mr || (pl->tiled && pl->g->ow >= TILED_MIN_ROW) || !y_contiguous(pl))
        pl->sweep = sweep_bands;
    else
        pl->sweep = sweep_flat;
}

static void implicit_thread(void *ctx)
{
    struct implicit_plan *pl = ctx;
    const int t = cnnc_conv_thread_id(), team = cnnc_conv_team_size();
    if (!pl->prepacked)
        pack_weights(pl, t, team);
    pl->sweep(pl, t, team);
}

/* g computed on `threads` threads: w as stored, or with `flipped` the
 * kernel of the convolution whose stride-1 input gradient this is, with
 * the taps and the output layout as ph says. */
static cnnc_status run(const struct cnnc_conv_geom *g, int threads, const float *x, const float *w, int flipped,
                       const struct phase *ph, const float *bias, const struct cnnc_gemm_epilogue *stage, float *y,
                       const float *panels)
{
    const struct cnnc_gemm_kernels *kern = CNNC_PICK(cnnc_gemm_kernels);
    const struct cnnc_conv_kernels *ck = CNNC_PICK(cnnc_conv_kernels);
    struct implicit_plan pl = {
        .g = g, .kern = kern, .ck = ck, .x = x, .w = w, .bias = bias, .y = y,
        .kg = g->kh * g->kw * g->cin_g, .panels = cnnc_ceil_div(g->cout_g, kern->nr),
        .merged = g->groups == 1 && g->dw == 1, .flipped = flipped, .ph = *ph,
    };
    const int64_t call_k = pl.merged ? g->kw * g->cin : g->cin_g;
    pl.tiled = ck->tile_mr == kern->mr && ck->tile_nr == kern->nr && call_k < TILED_MAX_CALL_K;
    pl.prepacked = panels != NULL;
    pl.stage = cnnc_gemm_epilogue_after_bias(stage, &pl.rest);
    choose_sweep(&pl);
    /* The packed panels are only read (a cast, not a copy). */
    pl.bp = panels ? (float *)panels
                   : cnnc_workspace(CNNC_CONV_SLOT_SHARED, (size_t)(g->groups * pl.panels * pl.kg * kern->nr) * sizeof(float));
    if (!pl.bp)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate the packed weights");
    cnnc_parallel_team(threads, implicit_thread, &pl);
    if (pl.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate the im2col tile");
    return CNNC_OK;
}

/* Output pixels of g as the flat NHWC array y, taps of w as stored. */
static struct phase whole(const struct cnnc_conv_geom *g)
{
    const struct phase ph = {
        .rh = 0, .rw = 0, .sh = 1, .sw = 1, .kw = g->kw,
        .y_px = g->cout, .y_row = g->ow * g->cout, .y_img = g->oh * g->ow * g->cout,
    };
    return ph;
}

cnnc_status cnnc_conv_implicit_forward(const struct cnnc_conv_geom *g, int threads, const float *x, const float *w,
                                       const float *bias, float *y)
{
    const struct phase ph = whole(g);
    return run(g, threads, x, w, 0, &ph, bias, NULL, y, NULL);
}

cnnc_status cnnc_conv_implicit_backward_data(const struct cnnc_conv_geom *g, int threads, const float *w,
                                             const float *dy, const float *bias, float *dx)
{
    const struct cnnc_conv_geom t = cnnc_conv_data_gradient_geom(g);
    const struct phase ph = whole(&t);
    return run(&t, threads, dy, w, 1, &ph, bias, NULL, dx, NULL);
}

/* The pixels of a stride phase that no tap reaches (kernel smaller than
 * the stride): rows x cols of them per image from y on, sh rows and sw
 * pixels apart, set to the bias (or 0). */
struct empty_phase {
    const struct cnnc_conv_geom *g;
    int64_t rows, cols;
    const float *bias;
    float *y;
};

static void fill_empty_phase(void *ctx)
{
    const struct empty_phase *e = ctx;
    const struct cnnc_conv_geom *g = e->g;
    int64_t r0, r1;
    cnnc_conv_split(g->n * e->rows, cnnc_conv_thread_id(), cnnc_conv_team_size(), &r0, &r1);
    for (int64_t r = r0; r < r1; ++r) {
        float *row = e->y + ((r / e->rows) * g->h + (r % e->rows) * g->sh) * g->w * g->cin;
        for (int64_t q = 0; q < e->cols; ++q) {
            if (e->bias)
                memcpy(row + q * g->sw * g->cin, e->bias, (size_t)g->cin * sizeof(float));
            else
                memset(row + q * g->sw * g->cin, 0, (size_t)g->cin * sizeof(float));
        }
    }
}

cnnc_status cnnc_conv_implicit_backward_data_phases(const struct cnnc_conv_geom *g, int threads, const float *w,
                                                    const float *dy, const float *bias, float *dx)
{
    for (int64_t rh = 0; rh < g->sh; ++rh) {
        /* dx rows ih = q * sh + rh - pad_top for q in [q0h, q1h]. */
        int64_t q0h, q1h;
        cnnc_conv_phase_range(g->h, g->pt, g->sh, rh, &q0h, &q1h);
        const int64_t kjh = rh < g->kh ? cnnc_ceil_div(g->kh - rh, g->sh) : 0; /* taps of this phase */
        if (q1h < q0h)
            continue;
        for (int64_t rw = 0; rw < g->sw; ++rw) {
            int64_t q0w, q1w;
            cnnc_conv_phase_range(g->w, g->pl, g->sw, rw, &q0w, &q1w);
            const int64_t kjw = rw < g->kw ? cnnc_ceil_div(g->kw - rw, g->sw) : 0;
            if (q1w < q0w)
                continue;
            /* Output q - q0 reads dy rows q - j for taps j < kj: padding
             * kj - 1 - q0 (negative crops). */
            const int64_t pt = kjh - 1 - q0h, pl = kjw - 1 - q0w;
            const struct cnnc_conv_geom t = {
                .n = g->n, .h = g->oh, .w = g->ow, .cin = g->cout, .cout = g->cin,
                .kh = kjh, .kw = kjw, .sh = 1, .sw = 1, .dh = 1, .dw = 1,
                .pt = pt, .pb = q1h - q0h + kjh - 1 - g->oh - pt + 1, .pl = pl, .pr = q1w - q0w + kjw - 1 - g->ow - pl + 1,
                .groups = g->groups, .cin_g = g->cout_g, .cout_g = g->cin_g, .oh = q1h - q0h + 1, .ow = q1w - q0w + 1,
            };
            const struct phase ph = {
                .rh = rh, .rw = rw, .sh = g->sh, .sw = g->sw, .kw = g->kw,
                .y_px = g->sw * g->cin, .y_row = g->sh * g->w * g->cin, .y_img = g->h * g->w * g->cin,
            };
            float *y = dx + ((q0h * g->sh + rh - g->pt) * g->w + q0w * g->sw + rw - g->pl) * g->cin;
            if (kjh == 0 || kjw == 0) {
                struct empty_phase e = {.g = g, .rows = q1h - q0h + 1, .cols = q1w - q0w + 1, .bias = bias, .y = y};
                cnnc_parallel_team(threads, fill_empty_phase, &e);
                continue;
            }
            CNNC_TRY(run(&t, threads, dy, w, 1, &ph, bias, NULL, y, NULL));
        }
    }
    return CNNC_OK;
}

cnnc_status cnnc_conv_implicit_pack(const struct cnnc_conv_geom *g, const float *w, float **panels, int64_t *floats)
{
    const struct cnnc_gemm_kernels *kern = CNNC_PICK(cnnc_gemm_kernels);
    struct implicit_plan pl = {
        .g = g, .kern = kern, .w = w, .kg = g->kh * g->kw * g->cin_g, .panels = cnnc_ceil_div(g->cout_g, kern->nr),
    };
    size_t bytes;
    CNNC_TRY(cnnc_mul_sizes(floats, 4, g->groups, pl.panels, pl.kg, (int64_t)kern->nr));
    CNNC_TRY(cnnc_float_bytes(*floats, &bytes));
    *panels = pl.bp = cnnc_malloc(bytes ? bytes : 64);
    if (!pl.bp)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %zu bytes of packed weights", bytes);
    pack_weights(&pl, 0, 1);
    return CNNC_OK;
}

cnnc_status cnnc_conv_implicit_forward_fused(const struct cnnc_conv_geom *g, int threads, const float *x,
                                             const float *w, const float *panels, const float *bias,
                                             const struct cnnc_gemm_epilogue *stage, float *y)
{
    const struct phase ph = whole(g);
    return run(g, threads, x, w, 0, &ph, bias, stage, y, panels);
}
