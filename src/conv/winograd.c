/* Winograd convolutions F(2x2, 3x3) and F(4x4, 3x3): 3x3 kernels, stride
 * 1, dilation 1, groups 1 (src/conv/select.c says when each is chosen). One
 * driver serves both, parametrised by the variant (struct wino_variant).
 *
 * Each m x m output tile comes from the alpha x alpha input tile that
 * covers it (alpha = m + 2) through alpha^2 products of transformed values
 * (the transforms are in winograd_kernels.h): per tile and per transformed
 * position xi, M[xi][tile][co] = sum_ci V[xi][tile][ci] * U[xi][ci][co], so
 * the multiply-adds are alpha^2 GEMMs of Cin inner dimension: 16 per 4
 * outputs for F(2x2) and 36 per 16 for F(4x4), 2.25 and 4 times fewer than
 * the direct convolution's 9 per output (fewer than that where the output
 * is not a multiple of m, since edge tiles are computed whole and partly
 * discarded).
 *
 * - U = G g G^T is computed once per call straight into the GEMM
 *   micro-kernel's packed B panels (alpha^2 x ceil(Cout / NR) panels of Cin
 *   rows), shared by all threads; with `flipped`, g is the kernel of the
 *   convolution whose stride-1 input gradient this is, flipped in space and
 *   transposed in channels on the way. The model runtime computes U once at
 *   load instead (cnnc_conv_winograd_pack): per call it is 16/9 (F(2x2)) or
 *   4 (F(4x4)) times the weights written and read again, as much memory
 *   traffic as a small layer's whole product.
 * - Tiles are taken in blocks of TB (a multiple of MR) that each thread
 *   owns: the input transform writes V[alpha^2][TB][KC] for a block of KC
 *   input channels, the micro-kernel reads each V[xi] in place (MR tiles at
 *   a row stride of KC floats) against U[xi]'s panels and accumulates
 *   M[alpha^2][TB][Cout] over the channel blocks, then the output transform
 *   adds the bias and writes the block's pixels of y, and the output stage
 *   (residual, activation) runs on each pixel while it is in L1. TB is
 *   chosen so that V and M stay in L2 where the channel counts allow it.
 * Every output value is computed by one thread in a fixed order, so results
 * do not depend on the thread count. The weight gradient (at the end of the
 * file) runs the same transforms backward. */
#include <string.h>
#include "winograd.h"
#include "gemm_kernels.h"
#include "partials.h"
#include "team.h"
#include "winograd_kernels.h"

/* The most planes of a variant (F(4x4): 6 x 6). */
#define MAX_PLANES 36
/* Per-thread bytes of V and M for one tile block: a quarter of L2, which
 * leaves the rest to the streamed U panels (one MR row of tiles per block
 * measured best on the ResNet-18 shapes, even with U in L3). */
#define BLOCK_BYTES ((int64_t)256 * 1024)
#define MAX_BLOCK_ROWS 8
/* Each block streams all of U past its tiles: where U outgrows L2 (16 MiB
 * at 512 channels for F(2x2), 36 MiB for F(4x4)) the blocks grow to at
 * least U / U_PER_BLOCK bytes, so that U's traffic stays small next to the
 * block's multiply-adds (measured for F(2x2) on AVX2's 6-row tiles at 512
 * channels, batch 8-32: 1.2x at 7x7 and 14x14 outputs, 1.5-2x at 28x28; the
 * blocks then leave L2 for L3). */
#define U_PER_BLOCK 6
/* Where U is a few times L2 (1-7 MiB: 128 channels for F(4x4)), blocks of
 * U / 2, up to about one L2, stream U a third as often as U / 6 does:
 * measured 1.1-1.2x for F(4x4) at 128 channels @7 (batch 128) and @28
 * (batch 8) on one thread; blocks of several MiB (256 channels @14 at
 * U / 2) lost 3-5%. */
#define U_PER_L2_BLOCK 2
#define L2_BLOCK_BYTES ((int64_t)1280 * 1024)
/* Input channels per task of the kernel transform: few for the plain
 * kernel, whose rows it reads whole across tasks; more for the flipped one,
 * of whose rows (Cin long) a task reads a KERNEL_CHUNK_FLIPPED-float run. */
#define KERNEL_CHUNK 16
#define KERNEL_CHUNK_FLIPPED 128
/* Floats of padding (one cache line) against cache-set aliasing. */
#define PAD 16
/* One F(m x m, 3x3): its tile sizes and transforms. */
struct wino_variant {
    int m, alpha, planes;
    const struct cnnc_winograd_transforms *t;
};

static struct wino_variant wino_variant(enum cnnc_winograd_tile tile)
{
    const struct cnnc_winograd_kernels *k = CNNC_PICK(cnnc_winograd_kernels);
    const int m = tile == CNNC_WINOGRAD_F4 ? 4 : 2;
    return (struct wino_variant){.m = m, .alpha = m + 2, .planes = (m + 2) * (m + 2),
                                 .t = m == 4 ? &k->f4x4 : &k->f2x2};
}

struct wino_plan {
    const struct cnnc_conv_geom *g;
    const struct cnnc_gemm_kernels *gk;
    struct wino_variant vt;
    const float *x, *w, *bias;
    const struct cnnc_gemm_epilogue *stage; /* residual and activation after the bias, or NULL */
    struct cnnc_gemm_epilogue rest;         /* what stage points to */
    float *y;
    int flipped;
    int prepacked;             /* up was made by cnnc_conv_winograd_pack */
    float *up;                 /* packed U: panel (xi, j) holds Cin rows of NR */
    int64_t th, tw, tiles;     /* tiles per image column and row, in all */
    int64_t panels, u_stride;  /* NR panels of Cout, floats per plane xi of U */
    int64_t ldv, v_stride;     /* floats per row (tile) and per plane of V */
    int64_t ldm, m_stride;     /* the same for M */
    int64_t kc, tb, blocks;    /* input channels per block, tiles per block, blocks (weight gradient) */
    int failed;
};

int cnnc_conv_winograd_applies(const struct cnnc_conv_geom *g)
{
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->groups == 1;
}

/* Panels (xi, j) of U for input channels [c0, c1), columns past Cout zero.
 * The plain kernel is transformed along its rows (Cout contiguous) straight
 * into the panels; the flipped one along its columns (its Cin contiguous)
 * into a staging block, which the GEMM's B packing then transposes. */
static void transform_kernel(const struct wino_plan *pl, int64_t j, int64_t c0, int64_t c1, float *stage)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int64_t nr = pl->gk->nr, co0 = j * nr, cols = cnnc_min_i64(nr, g->cout - co0), rows = c1 - c0;
    const int64_t taps = g->cin * g->cout, u_stride = pl->u_stride;
    float *u = pl->up + (j * g->cin + c0) * nr;
    if (!pl->flipped) {
        for (int64_t ci = c0; ci < c1; ++ci)
            pl->vt.t->kernel(pl->w + ci * g->cout + co0, taps, cols, u + (ci - c0) * nr, u_stride);
        if (cols < nr)
            for (int64_t xi = 0; xi < pl->vt.planes; ++xi)
                for (int64_t ci = c0; ci < c1; ++ci)
                    memset(u + xi * u_stride + (ci - c0) * nr + cols, 0, (size_t)(nr - cols) * sizeof(float));
        return;
    }
    /* The original kernel is (3, 3, Cout, Cin) in this geometry's terms:
     * tap 8 - tap, row co, column ci, so its taps run backwards. */
    const int64_t plane = cols * rows + PAD;
    for (int64_t q = 0; q < cols; ++q)
        pl->vt.t->kernel(pl->w + 8 * taps + (co0 + q) * g->cin + c0, -taps, rows, stage + q * rows, plane);
    for (int64_t xi = 0; xi < pl->vt.planes; ++xi)
        pl->gk->pack_b(rows, cols, stage + xi * plane, 1, rows, u + xi * u_stride);
}

/* The offsets in y (or dy) of the m x m output pixels of tile t, -1 for
 * those past the output's edge. */
static void tile_pixels(const struct wino_plan *pl, int64_t t, int64_t *offset)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int m = pl->vt.m;
    const int64_t tx = t % pl->tw, ty = (t / pl->tw) % pl->th, n = t / (pl->tw * pl->th);
    for (int r = 0; r < m; ++r)
        for (int s = 0; s < m; ++s) {
            const int64_t oh = m * ty + r, ow = m * tx + s;
            offset[m * r + s] = oh < g->oh && ow < g->ow ? ((n * g->oh + oh) * g->ow + ow) * g->cout : -1;
        }
}

/* The dy pixels of tile t (zeros past the output's edge). */
static void grad_output_pixels(const struct wino_plan *pl, int64_t t, const float *dy, const float *zeros,
                               const float **d)
{
    int64_t offset[MAX_PLANES];
    tile_pixels(pl, t, offset);
    for (int k = 0; k < pl->vt.m * pl->vt.m; ++k)
        d[k] = offset[k] >= 0 ? dy + offset[k] : zeros;
}

/* The input pixels of tile t at channel k0 (zeros past x's edge). */
static void input_pixels(const struct wino_plan *pl, int64_t t, int64_t k0, const float *zeros, const float **d)
{
    const struct cnnc_conv_geom *g = pl->g;
    const int m = pl->vt.m, alpha = pl->vt.alpha;
    const int64_t tx = t % pl->tw, ty = (t / pl->tw) % pl->th, n = t / (pl->tw * pl->th);
    const int64_t ih0 = m * ty - g->pt, iw0 = m * tx - g->pl;
    for (int r = 0; r < alpha; ++r)
        for (int s = 0; s < alpha; ++s) {
            const int64_t ih = ih0 + r, iw = iw0 + s;
            d[alpha * r + s] = ih >= 0 && ih < g->h && iw >= 0 && iw < g->w
                                   ? pl->x + ((n * g->h + ih) * g->w + iw) * g->cin + k0
                                   : zeros;
        }
}

/* The transforms wait on x and dy (which the layer before, or the pass
 * before, left in L3 or memory) rather than on their arithmetic: each asks
 * for the next tile's pixels while it transforms one (measured 8-17% per
 * pass of the 64- and 128-channel layers of batch 128, one thread, input
 * and gradient transforms together). */
static void prefetch_pixels(const float *const *d, int count, int64_t floats, const float *zeros)
{
    for (int k = 0; k < count; ++k)
        if (d[k] != zeros)
            for (int64_t c = 0; c < floats; c += 16)
                __builtin_prefetch(d[k] + c, 0, 3);
}

/* Where a transform reads its tiles: x from channel k0 (dy NULL: the input
 * transform) or dy, `floats` floats per pixel. */
struct pixel_source {
    const float *dy;
    int64_t k0, floats;
};

/* The pixel pointers of tile t0 + i of the tiles [t0, t0 + count), i <
 * count, in d[i & 1] (filled by the call for i - 1, or by this one for i =
 * 0), after filling d[(i + 1) & 1] with the next tile's and asking for
 * their pixels: call for i = 0, 1, ... in turn. */
static const float **tile_ahead(const struct wino_plan *pl, const struct pixel_source *src, int64_t t0, int64_t i,
                                int64_t count, const float *zeros, const float *d[2][MAX_PLANES])
{
    const int pixels = src->dy ? pl->vt.m * pl->vt.m : pl->vt.planes;
    for (int64_t j = i == 0 ? 0 : i + 1; j <= i + 1 && j < count; ++j) {
        if (src->dy)
            grad_output_pixels(pl, t0 + j, src->dy, zeros, d[j & 1]);
        else
            input_pixels(pl, t0 + j, src->k0, zeros, d[j & 1]);
        if (j > i)
            prefetch_pixels(d[j & 1], pixels, src->floats, zeros);
    }
    return d[i & 1];
}

/* Input channels [k0, k0 + kcb) of the tiles [t0, t0 + count) into V
 * (`rows` rows of kcb floats per xi); rows past count are zeros. */
static void transform_input(const struct wino_plan *pl, int64_t t0, int64_t count, int64_t rows, int64_t k0,
                            int64_t kcb, const float *zeros, float *v)
{
    const struct pixel_source src = {.dy = NULL, .k0 = k0, .floats = kcb};
    const float *d[2][MAX_PLANES], *none[MAX_PLANES];
    for (int k = 0; k < pl->vt.planes; ++k)
        none[k] = zeros;
    for (int64_t i = 0; i < rows; ++i)
        pl->vt.t->input(i < count ? tile_ahead(pl, &src, t0, i, count, zeros, d) : none, kcb, v + i * pl->ldv,
                        pl->v_stride);
}

/* y pixels of tiles [t0, t0 + count) from M; pixels past the output's edge
 * go to a scratch row. The next tile's pixels of y are asked for, for
 * writing, while one is written (as the inputs: 3-10% per pass of the
 * recipe's layers). */
static void transform_output(const struct wino_plan *pl, int64_t t0, int64_t count, const float *m, float *scratch)
{
    const int pixels = pl->vt.m * pl->vt.m;
    const int64_t cout = pl->g->cout;
    int64_t offsets[2][MAX_PLANES];
    float *y[MAX_PLANES];
    if (count > 0)
        tile_pixels(pl, t0, offsets[0]);
    for (int64_t i = 0; i < count; ++i) {
        const int64_t *offset = offsets[i & 1], *next = offsets[(i + 1) & 1];
        if (i + 1 < count) {
            tile_pixels(pl, t0 + i + 1, offsets[(i + 1) & 1]);
            for (int k = 0; k < pixels; ++k)
                if (next[k] >= 0)
                    for (int64_t c = 0; c < cout; c += 16)
                        __builtin_prefetch(pl->y + next[k] + c, 1, 3);
        }
        for (int k = 0; k < pixels; ++k)
            y[k] = offset[k] >= 0 ? pl->y + offset[k] : scratch;
        pl->vt.t->output(m + i * pl->ldm, pl->m_stride, cout, pl->bias, y);
        if (pl->stage)
            for (int k = 0; k < pixels; ++k)
                if (offset[k] >= 0)
                    pl->gk->epilogue(pl->stage, y[k], cout, 1, cout, offset[k] / cout, 0);
    }
}

/* The tiles [t0, t0 + count), count <= TB. */
static void run_block(const struct wino_plan *pl, int64_t t0, int64_t count, float *v, float *m, float *zeros,
                      float *scratch)
{
    const struct cnnc_conv_geom *g = pl->g;
    const struct cnnc_gemm_kernels *gk = pl->gk;
    const int64_t mr = gk->mr, nr = gk->nr;
    /* Only the MR-row groups that hold real tiles are multiplied. */
    const int64_t rows = cnnc_ceil_div(count, mr) * mr;
    for (int64_t k0 = 0; k0 < g->cin; k0 += pl->kc) {
        const int64_t kcb = cnnc_min_i64(pl->kc, g->cin - k0);
        const float beta = k0 == 0 ? 0.0f : 1.0f;
        transform_input(pl, t0, count, pl->tb, k0, kcb, zeros, v);
        for (int64_t xi = 0; xi < pl->vt.planes; ++xi) {
            const float *a = v + xi * pl->v_stride;
            float *c = m + xi * pl->m_stride;
            for (int64_t j = 0; j < pl->panels; ++j) {
                const float *bpanel = pl->up + xi * pl->u_stride + (j * g->cin + k0) * nr;
                for (int64_t i0 = 0; i0 < rows; i0 += mr)
                    gk->ukernel(kcb, a + i0 * pl->ldv, pl->ldv, 1, bpanel, c + i0 * pl->ldm + j * nr, pl->ldm, mr, nr, 1.0f,
                                beta);
            }
        }
    }
    transform_output(pl, t0, count, m, scratch);
}

static void wino_thread(void *ctx)
{
    struct wino_plan *pl = ctx;
    const struct cnnc_conv_geom *g = pl->g;
    const int t = cnnc_conv_thread_id(), team = cnnc_conv_team_size();
    const int64_t nr = pl->gk->nr;
    const int64_t chunk = pl->flipped ? KERNEL_CHUNK_FLIPPED : KERNEL_CHUNK;
    const int64_t stage_floats = pl->vt.planes * (chunk * nr + PAD);
    const int64_t v_floats = pl->vt.planes * pl->v_stride, m_floats = pl->vt.planes * pl->m_stride;
    const int64_t work_floats = v_floats + m_floats + cnnc_ceil_div(pl->kc, 16) * 16 + pl->ldm;
    float *buf = cnnc_workspace(CNNC_CONV_SLOT_COL,
                                (size_t)cnnc_max_i64(stage_floats, work_floats) * sizeof(float));
    if (!buf)
        cnnc_conv_mark_failed(&pl->failed);
    const int64_t chunks = cnnc_ceil_div(g->cin, chunk);
    if (buf && !pl->prepacked)
        for (int64_t q = t; q < pl->panels * chunks; q += team) {
            /* Along the rows of the kernel as stored: Cout (panels) fastest
             * for the plain one, its Cin (input-channel chunks) for the
             * flipped one. */
            const int64_t j = pl->flipped ? q / chunks : q % pl->panels;
            const int64_t c0 = (pl->flipped ? q % chunks : q / pl->panels) * chunk;
            transform_kernel(pl, j, c0, cnnc_min_i64(g->cin, c0 + chunk), buf);
        }
    if (cnnc_conv_team_failed(&pl->failed))
        return;
    float *v = buf, *m = v + v_floats, *zeros = m + m_floats, *scratch = zeros + cnnc_ceil_div(pl->kc, 16) * 16;
    memset(zeros, 0, (size_t)pl->kc * sizeof(float));
    /* Threads take equal runs of MR-row groups (the micro-kernel's unit of
     * work), in blocks of up to TB tiles: whole blocks per thread would
     * leave one thread a block more than the other (10 against 9 of the
     * 19 two-group blocks of 512 tiles), equal groups at most one group. */
    const int64_t mr = pl->gk->mr;
    int64_t g0, g1;
    cnnc_conv_split(cnnc_ceil_div(pl->tiles, mr), t, team, &g0, &g1);
    const int64_t end = cnnc_min_i64(g1 * mr, pl->tiles);
    for (int64_t t0 = g0 * mr; t0 < end; t0 += pl->tb)
        run_block(pl, t0, cnnc_min_i64(pl->tb, end - t0), v, m, zeros, scratch);
}

/* The layout of U for g and the variant on the active ISA's micro-kernel:
 * the same for every batch. */
static struct wino_plan kernel_layout(const struct cnnc_conv_geom *g, enum cnnc_winograd_tile tile)
{
    const struct cnnc_gemm_kernels *gk = CNNC_PICK(cnnc_gemm_kernels);
    const struct wino_variant vt = wino_variant(tile);
    struct wino_plan pl = {
        .g = g, .gk = gk, .vt = vt,
        .th = cnnc_ceil_div(g->oh, vt.m), .tw = cnnc_ceil_div(g->ow, vt.m), .panels = cnnc_ceil_div(g->cout, gk->nr),
    };
    pl.u_stride = pl.panels * g->cin * gk->nr + 2 * PAD;
    return pl;
}

static cnnc_status kernel_bytes(const struct wino_plan *pl, size_t *bytes)
{
    int64_t u_floats;
    CNNC_TRY(cnnc_mul_sizes(&u_floats, 2, (int64_t)pl->vt.planes, pl->u_stride));
    return cnnc_float_bytes(u_floats, bytes);
}

cnnc_status cnnc_conv_winograd_pack(const struct cnnc_conv_geom *g, enum cnnc_winograd_tile tile, const float *w,
                                    float **u, size_t *u_bytes)
{
    struct wino_plan pl = kernel_layout(g, tile);
    pl.w = w;
    size_t bytes;
    CNNC_TRY(kernel_bytes(&pl, &bytes));
    *u_bytes = bytes;
    pl.up = *u = cnnc_malloc(bytes);
    if (!pl.up)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %zu bytes of transformed weights", bytes);
    for (int64_t j = 0; j < pl.panels; ++j)
        transform_kernel(&pl, j, 0, g->cin, NULL);
    return CNNC_OK;
}

cnnc_status cnnc_conv_winograd_forward(const struct cnnc_conv_geom *g, enum cnnc_winograd_tile tile, const float *x,
                                       const float *w, int flipped, const float *u, const float *bias,
                                       const struct cnnc_gemm_epilogue *stage, float *y)
{
    struct wino_plan pl = kernel_layout(g, tile);
    const struct cnnc_gemm_kernels *gk = pl.gk;
    pl.x = x, pl.w = w, pl.bias = bias, pl.y = y, pl.flipped = flipped;
    /* The output transform adds the bias. */
    pl.stage = cnnc_gemm_epilogue_after_bias(stage, &pl.rest);
    const int64_t mr = gk->mr, planes = pl.vt.planes;
    pl.tiles = g->n * pl.th * pl.tw;
    const int64_t kblocks = cnnc_ceil_div(g->cin, gk->kc);
    pl.kc = cnnc_ceil_div(g->cin, kblocks);
    /* Rows and planes are padded off multiples of 4 KiB, which would map
     * the planes (and the micro-kernel's MR rows) onto the same cache
     * sets. */
    pl.ldv = cnnc_ceil_div(pl.kc, 16) * 16 + PAD;
    pl.ldm = pl.panels * gk->nr + PAD;
    const int64_t per_tile = planes * (pl.ldv + pl.ldm) * (int64_t)sizeof(float);
    const int64_t u_est = planes * g->cin * g->cout * (int64_t)sizeof(float);
    const int64_t budget = cnnc_max_i64(cnnc_max_i64(BLOCK_BYTES, u_est / U_PER_BLOCK),
                                        cnnc_min_i64(u_est / U_PER_L2_BLOCK, L2_BLOCK_BYTES));
    int64_t block_rows = cnnc_max_i64(1, cnnc_min_i64(MAX_BLOCK_ROWS, budget / (per_tile * mr)));
    int threads = cnnc_conv_threads(g);
    /* Every thread gets blocks, even if they are then smaller. */
    block_rows = cnnc_max_i64(1, cnnc_min_i64(block_rows, cnnc_ceil_div(pl.tiles, mr * threads)));
    pl.tb = block_rows * mr;
    pl.v_stride = pl.tb * pl.ldv + 2 * PAD;
    pl.m_stride = pl.tb * pl.ldm + 2 * PAD;
    threads = (int)cnnc_min_i64(threads, cnnc_ceil_div(pl.tiles, mr));
    size_t u_bytes;
    CNNC_TRY(kernel_bytes(&pl, &u_bytes));
    /* The packed U is only read (a cast, not a copy). */
    pl.prepacked = u != NULL && !flipped;
    pl.up = pl.prepacked ? (float *)u : cnnc_workspace(CNNC_CONV_SLOT_SHARED, u_bytes);
    if (!pl.up)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate the transformed kernel");
    cnnc_parallel_team(threads, wino_thread, &pl);
    if (pl.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate the Winograd workspace");
    return CNNC_OK;
}

/* ---- weight gradient -------------------------------------------------------
 * dU[xi] (Cin x Cout) = sum over tiles of V[xi]^T dM[xi], with V the input
 * transform of x's tiles (as in the forward pass) and dM = A dy A^T of the
 * m x m tiles of dy (zero past the output's edge, whose pixels the forward
 * pass discards); then dw = G^T dU G. Threads split the tiles in blocks of
 * TB (the GEMMs' inner dimension) and accumulate private dU partials, summed
 * in thread order (deterministic for a fixed thread count); where those
 * partials would pass GRAD_MAX_PARTIAL_BYTES, the threads split dU's planes
 * instead (deterministic for any thread count). */

/* Tiles per block (the GEMMs' inner dimension): bounds of the choice in
 * cnnc_conv_winograd_backward_weights. */
#define GRAD_MIN_TILES 32
#define GRAD_MAX_TILES 256
/* Most bytes of private dU partials a team may hold (dU is 16 MiB at 512
 * channels for F(2x2), 36 MiB for F(4x4)). Beyond it the threads split dU's
 * planes instead of the tiles: each adds every tile block into its own
 * planes, straight into the shared dU, so no partial exists; the team
 * transforms each block together first (each thread a slice of its tiles),
 * so that no transform is done twice. */
#define GRAD_MAX_PARTIAL_BYTES ((int64_t)16 << 20)

/* dM of the tiles [t0, t0 + count): tile i's columns [c0, c0 + cols) at
 * m + (c0 / cols) * panel + i * row (one panel of all columns, or the
 * micro-kernel's B panels). */
static void transform_grad_output(const struct wino_plan *pl, int64_t t0, int64_t count, const float *dy,
                                  const float *zeros, float *m, int64_t row, int64_t panel, int64_t cols)
{
    const int pixels = pl->vt.m * pl->vt.m;
    const int64_t cout = pl->g->cout;
    const struct pixel_source src = {.dy = dy, .k0 = 0, .floats = cout};
    const float *d[2][MAX_PLANES], *shifted[MAX_PLANES];
    for (int64_t i = 0; i < count; ++i) {
        const float **now = tile_ahead(pl, &src, t0, i, count, zeros, d);
        for (int64_t c0 = 0, q = 0; c0 < cout; c0 += cols, ++q) {
            /* zeros has room for every column too. */
            for (int k = 0; k < pixels; ++k)
                shifted[k] = now[k] + c0;
            pl->vt.t->grad_output(shifted, cnnc_min_i64(cols, cout - c0), m + q * panel + i * row, pl->m_stride);
        }
    }
}

struct wino_grad {
    struct wino_plan pl;
    const float *dy;
    float *dw;
    /* The GEMMs compute dU^T (Cout rows): fewer padded rows and columns of
     * the micro-kernel's tiles for this shape. */
    int transposed;
    /* Every thread adds every block into its own planes of the shared dU
     * (see GRAD_MAX_PARTIAL_BYTES), not its tiles into a partial dU. */
    int split_planes;
    /* With split_planes: the block's V and dM, which the team transforms
     * together (each thread a slice of the tiles) before each thread
     * multiplies its planes. */
    float *shared_v, *shared_m;
    /* dM is the GEMMs' B (not transposed): its transform writes the
     * micro-kernel's packed panels (TB rows of NR floats, then the next
     * NR columns) instead of rows of Cout for pack_b to copy. */
    int packed_m;
    int64_t m_row, m_panel, m_cols; /* dM's layout, as transform_grad_output takes it */
    struct cnnc_conv_partials partials;
};

/* Zeroes columns [used, ld) of rows [i0, i1) of each plane: the padding of
 * V's and dM's rows, which the transforms never write and the micro-kernel
 * reads past the last rows of A (into rows of its tile that it does not
 * store). */
static void zero_row_tails(float *base, int64_t stride, int planes, int64_t i0, int64_t i1, int64_t ld, int64_t used)
{
    for (int xi = 0; xi < planes; ++xi)
        for (int64_t i = i0; i < i1; ++i)
            memset(base + xi * stride + i * ld + used, 0, (size_t)(ld - used) * sizeof(float));
}

/* The same for dM: the columns of its last B panel past Cout, or of its rows. */
static void zero_m_tails(const struct wino_grad *gr, float *m, int64_t i0, int64_t i1)
{
    const struct wino_plan *pl = &gr->pl;
    const int64_t cout = pl->g->cout;
    if (!gr->packed_m) {
        zero_row_tails(m, pl->m_stride, pl->vt.planes, i0, i1, pl->ldm, cout);
        return;
    }
    const int64_t last = (cnnc_ceil_div(cout, gr->m_cols) - 1) * gr->m_cols;
    zero_row_tails(m + last / gr->m_cols * gr->m_panel, pl->m_stride, pl->vt.planes, i0, i1, gr->m_cols,
                   cout - last);
}

/* V and dM rows [i0, i1) of block b: its tiles t0 + i0 .. (only the GEMMs'
 * inner dimension reads them, so none past the block's last tile). */
static void grad_transforms(const struct wino_grad *gr, int64_t b, int64_t i0, int64_t i1, const float *zeros,
                            float *v, float *m)
{
    const struct wino_plan *pl = &gr->pl;
    const int64_t t0 = b * pl->tb + i0, count = cnnc_min_i64(i1, pl->tiles - b * pl->tb) - i0;
    if (count <= 0)
        return;
    transform_input(pl, t0, count, count, 0, pl->g->cin, zeros, v + i0 * pl->ldv);
    transform_grad_output(pl, t0, count, gr->dy, zeros, m + i0 * gr->m_row, gr->m_row, gr->m_panel, gr->m_cols);
}

/* dU = beta dU + block b's products (its V and dM), for dU's planes
 * [x0, x1). beta 0 gives the bits of beta 1 on a zeroed dU without the
 * zeroing pass: the micro-kernel's sums start from +0, so one can be -0
 * (where 0 + sum makes +0) only if every product of it underflows to a
 * negative denormal, flushed to -0. Each value of dU is summed over the
 * block's tiles in tile order by one micro-kernel call, whichever planes a
 * thread takes. */
static void grad_products(const struct wino_grad *gr, int64_t b, const float *v, const float *m, float *bp,
                          float *du, int64_t x0, int64_t x1, float beta)
{
    const struct wino_plan *pl = &gr->pl;
    const struct cnnc_gemm_kernels *gk = pl->gk;
    const int64_t mr = gk->mr, nr = gk->nr;
    const int64_t count = cnnc_min_i64(pl->tb, pl->tiles - b * pl->tb);
    /* dU[xi] = V^T dM (rows Cin), or dU[xi]^T = dM^T V (rows Cout). */
    const int64_t rows = gr->transposed ? pl->g->cout : pl->g->cin, cols = gr->transposed ? pl->g->cin : pl->g->cout;
    for (int64_t xi = x0; xi < x1; ++xi) {
        const float *vx = v + xi * pl->v_stride, *mx = m + xi * pl->m_stride;
        /* The micro-kernel reads A in place: a row of V (or dM) holds the
         * MR consecutive values of one step of its inner dimension, as a
         * packed panel does, at a stride of a row instead of MR; the last
         * MR rows may run into the row's zeroed padding (ld >= rows + 16). */
        const float *a = gr->transposed ? mx : vx;
        const int64_t lda = gr->transposed ? pl->ldm : pl->ldv;
        /* B's panels: dM's own, or V packed (TB or count rows apart). */
        const float *b_panels = mx;
        int64_t b_panel = gr->m_panel;
        if (!gr->packed_m) {
            gk->pack_b(count, cols, vx, pl->ldv, 1, bp);
            b_panels = bp;
            b_panel = count * nr;
        }
        float *c = du + xi * rows * cols;
        for (int64_t j = 0; j * nr < cols; ++j)
            for (int64_t i = 0; i * mr < rows; ++i)
                gk->ukernel(count, a + i * mr, 1, lda, b_panels + j * b_panel, c + i * mr * cols + j * nr, cols,
                            cnnc_min_i64(mr, rows - i * mr), cnnc_min_i64(nr, cols - j * nr), 1.0f, beta);
    }
}

static void grad_thread(void *ctx)
{
    struct wino_grad *gr = ctx;
    struct wino_plan *pl = &gr->pl;
    const struct cnnc_conv_geom *g = pl->g;
    const int t = cnnc_conv_thread_id(), team = cnnc_conv_team_size();
    const int64_t nr = pl->gk->nr;
    /* Each buffer starts on a cache line: the micro-kernels load packed
     * panels with aligned loads. */
    const int64_t cols = gr->transposed ? g->cin : g->cout;
    const int64_t bp_floats = gr->packed_m ? 0 : cnnc_ceil_div(cnnc_ceil_div(cols, nr) * nr * pl->tb, 16) * 16;
    const int64_t zero_floats = cnnc_ceil_div(cnnc_max_i64(g->cin, g->cout), 16) * 16;
    const int64_t planes = pl->vt.planes, own_vm = gr->split_planes ? 0 : planes * (pl->v_stride + pl->m_stride);
    float *buf = cnnc_workspace(CNNC_CONV_SLOT_COL,
                                (size_t)(own_vm + bp_floats + zero_floats) * sizeof(float));
    float *zeros = buf ? buf + own_vm + bp_floats : NULL;
    if (zeros)
        memset(zeros, 0, (size_t)zero_floats * sizeof(float));
    else
        cnnc_conv_mark_failed(&gr->partials.failed);
    if (gr->split_planes) {
        /* Every block is transformed by the whole team (a slice of its
         * tiles each), then every thread adds it into its own planes of dU:
         * each value is summed over the blocks in order, by one thread. */
        if (cnnc_conv_team_failed(&gr->partials.failed))
            return;
        float *bp = buf;
        int64_t x0, x1, i0, i1;
        cnnc_conv_split(planes, t, team, &x0, &x1);
        cnnc_conv_split(pl->tb, t, team, &i0, &i1);
        zero_row_tails(gr->shared_v, pl->v_stride, (int)planes, i0, i1, pl->ldv, g->cin);
        zero_m_tails(gr, gr->shared_m, i0, i1);
        for (int64_t b = 0; b < pl->blocks; ++b) {
            grad_transforms(gr, b, i0, i1, zeros, gr->shared_v, gr->shared_m);
            cnnc_conv_barrier();
            grad_products(gr, b, gr->shared_v, gr->shared_m, bp, gr->partials.out, x0, x1, b == 0 ? 0.0f : 1.0f);
            /* The next block's transforms overwrite V and dM. */
            cnnc_conv_barrier();
        }
    } else {
        if (buf) {
            float *v = buf, *m = v + planes * pl->v_stride, *bp = m + planes * pl->m_stride;
            zero_row_tails(v, pl->v_stride, (int)planes, 0, pl->tb, pl->ldv, g->cin);
            zero_m_tails(gr, m, 0, pl->tb);
            struct cnnc_conv_part part = {.index = -1};
            while (cnnc_conv_partial_next(&gr->partials, pl->blocks, &part))
                for (int64_t b = part.begin; b < part.end; ++b) {
                    grad_transforms(gr, b, 0, pl->tb, zeros, v, m);
                    grad_products(gr, b, v, m, bp, part.sum, 0, planes, b == part.begin ? 0.0f : 1.0f);
                }
        }
        cnnc_conv_partial_reduce(&gr->partials);
        if (cnnc_conv_team_failed(&gr->partials.failed))
            return;
    }
    /* dw = G^T dU G, over slices of the (ci, co) pairs. */
    const int64_t pairs = g->cin * g->cout;
    if (gr->transposed) {
        /* Row co of dU^T gives column co of each tap of dw, through a
         * staging row (buf is far larger than 9 * Cin floats). */
        int64_t o0, o1;
        cnnc_conv_split(g->cout, t, team, &o0, &o1);
        for (int64_t co = o0; co < o1; ++co) {
            pl->vt.t->grad_kernel(gr->partials.out + co * g->cin, pairs, g->cin, buf, g->cin);
            for (int64_t tap = 0; tap < 9; ++tap)
                for (int64_t ci = 0; ci < g->cin; ++ci)
                    gr->dw[tap * pairs + ci * g->cout + co] = buf[tap * g->cin + ci];
        }
        return;
    }
    int64_t q0, q1;
    cnnc_conv_split(cnnc_ceil_div(pairs, 16), t, team, &q0, &q1);
    q0 *= 16;
    q1 = cnnc_min_i64(q1 * 16, pairs);
    if (q1 > q0)
        pl->vt.t->grad_kernel(gr->partials.out + q0, pairs, q1 - q0, gr->dw + q0, pairs);
}

cnnc_status cnnc_conv_winograd_backward_weights(const struct cnnc_conv_geom *g, enum cnnc_winograd_tile tile,
                                                const float *x, const float *dy, float *dw)
{
    const struct cnnc_gemm_kernels *gk = CNNC_PICK(cnnc_gemm_kernels);
    const struct wino_variant vt = wino_variant(tile);
    struct wino_grad gr = {
        .pl = {
            .g = g, .gk = gk, .vt = vt, .x = x,
            .th = cnnc_ceil_div(g->oh, vt.m), .tw = cnnc_ceil_div(g->ow, vt.m),
        },
        .dy = dy, .dw = dw,
    };
    struct wino_plan *pl = &gr.pl;
    const int64_t planes = vt.planes;
    pl->tiles = g->n * pl->th * pl->tw;
    pl->kc = g->cin;
    pl->ldv = cnnc_ceil_div(g->cin, 16) * 16 + PAD;
    pl->ldm = cnnc_ceil_div(g->cout, 16) * 16 + PAD;
    /* Micro-kernel tiles are MR x NR: pick the orientation that pads less
     * (e.g. 32 input and 64 output channels on 14 x 32 tiles: 42 x 64
     * computed for 32 x 64 one way, 70 x 32 for 64 x 32 the other). */
    const int64_t padded = cnnc_ceil_div(g->cin, gk->mr) * gk->mr * cnnc_ceil_div(g->cout, gk->nr) * gk->nr;
    const int64_t padded_t = cnnc_ceil_div(g->cout, gk->mr) * gk->mr * cnnc_ceil_div(g->cin, gk->nr) * gk->nr;
    gr.transposed = 10 * padded_t < 9 * padded;
    const int64_t per_tile = planes * (pl->ldv + pl->ldm) * (int64_t)sizeof(float);
    const int64_t useful = cnnc_max_i64(1, pl->tiles / GRAD_MIN_TILES);
    int threads = (int)cnnc_min_i64(cnnc_conv_threads(g), useful);
    int64_t du_floats;
    CNNC_TRY(cnnc_mul_sizes(&du_floats, 3, planes, g->cin, g->cout));
    /* The blocks below are sized for the parts of the sum (the threads,
     * unless in deterministic mode), so they too depend on nothing else. */
    const int parts = cnnc_conv_partial_parts((int)cnnc_min_i64(cnnc_conv_partition_threads(g), useful),
                                              (int)cnnc_min_i64(cnnc_conv_fixed_parts(g), useful), du_floats);
    threads = cnnc_conv_partial_team(threads, parts);
    /* Each block reads and writes the thread's whole dU once: blocks whose
     * V and dM are about as large as dU balance that traffic against
     * keeping them in cache (measured on the ResNet-18 shapes). */
    const int64_t du_bytes_est = planes * g->cin * g->cout * (int64_t)sizeof(float);
    /* As many partial dU as parts (threads, unless in deterministic mode):
     * the choice then depends on nothing else either. */
    gr.split_planes = (parts - 1) * du_bytes_est > GRAD_MAX_PARTIAL_BYTES;
    pl->tb = cnnc_max_i64(GRAD_MIN_TILES, cnnc_min_i64(GRAD_MAX_TILES, du_bytes_est / per_tile));
    if (!gr.split_planes) {
        /* Every thread runs every block when they split the planes; here
         * each part has its blocks, in whole rounds: with 3 blocks on 2
         * threads one thread would do two thirds of the work (512 channels
         * @7 had no 2-thread speedup). */
        pl->tb = cnnc_min_i64(pl->tb, cnnc_ceil_div(pl->tiles, parts));
        pl->tb = cnnc_ceil_div(pl->tiles, cnnc_ceil_div(cnnc_ceil_div(pl->tiles, pl->tb), parts) * parts);
    }
    pl->v_stride = pl->tb * pl->ldv + 2 * PAD;
    gr.packed_m = !gr.transposed;
    if (gr.packed_m) {
        gr.m_row = gr.m_cols = gk->nr;
        gr.m_panel = pl->tb * gk->nr;
        pl->m_stride = cnnc_ceil_div(g->cout, gk->nr) * gr.m_panel + 2 * PAD;
    } else {
        gr.m_row = pl->ldm;
        gr.m_panel = 0;
        gr.m_cols = g->cout;
        pl->m_stride = pl->tb * pl->ldm + 2 * PAD;
    }
    pl->blocks = cnnc_ceil_div(pl->tiles, pl->tb);
    /* dU, then (split_planes) the team's V and dM of one block. */
    int64_t vm_floats = 0, shared_floats;
    if (gr.split_planes)
        CNNC_TRY(cnnc_mul_sizes(&vm_floats, 2, planes, pl->v_stride + pl->m_stride));
    const int64_t du_room = cnnc_ceil_div(du_floats, 16) * 16;
    size_t shared_bytes;
    if (__builtin_add_overflow(du_room, vm_floats, &shared_floats))
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: the transformed gradient is too large");
    CNNC_TRY(cnnc_float_bytes(shared_floats, &shared_bytes));
    float *du = cnnc_workspace(CNNC_CONV_SLOT_SHARED, shared_bytes);
    if (!du)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the transformed gradient");
    gr.shared_v = du + du_room;
    gr.shared_m = gr.shared_v + planes * pl->v_stride;
    float *buffers[parts];
    gr.partials = (struct cnnc_conv_partials){
        .out = du, .buffers = buffers, .count = du_floats, .parts = parts, .first_item_writes = 1};
    cnnc_parallel_team(threads, grad_thread, &gr);
    if (gr.partials.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the Winograd workspace");
    return CNNC_OK;
}
