/* Convolution through GEMM: im2col tiles (or the input itself for 1x1
 * stride-1 unpadded convolutions) times the weight matrix. See src/conv.c
 * for the choice of algorithm per case.
 *
 * im2col rows: one per output pixel, KH*KW*Cin floats ordered (group, kh,
 * kw, channel within the group), so group g's block, KH*KW*Cin/g floats at
 * offset g*KH*KW*Cin/g, multiplies the (KH*KW*Cin/g) x (Cout/g) block of w
 * at column g*Cout/g (leading dimension Cout). */
#include <stdlib.h>
#include <string.h>
#include "conv_internal.h"
#include "gemm_internal.h"
#include "gemm_kernels.h"

/* Floats in one thread's im2col tile: 512 KiB, half the L2, so that the tile
 * written by im2col is still cached when the GEMM packs it. */
#define COL_TILE_FLOATS ((int64_t)128 * 1024)
/* Pixels per tile of the copy-free 1x1 path: bounds the rows of C that the
 * bias pre-fill and the GEMM both touch. */
#define DIRECT_TILE_PIXELS 1024
/* Multiply-adds per thread below which a second thread does not pay. */
#define CONV_THREAD_GRAIN cnnc_work_grain(CNNC_WORK_CONV)

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

/* a * b * c, saturating: only used to decide how many threads to use. */
static int64_t work_of(int64_t a, int64_t b, int64_t c)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r) || __builtin_mul_overflow(r, c, &r))
        return INT64_MAX;
    return r;
}

static int is_pointwise(const struct cnnc_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pb == 0 && g->pl == 0 &&
           g->pr == 0;
}

static inline void copy_floats(float *dst, const float *src, int64_t n)
{
    if (n < 16) {
        for (int64_t i = 0; i < n; ++i)
            dst[i] = src[i];
    } else {
        memcpy(dst, src, (size_t)n * sizeof(float));
    }
}

static inline void zero_floats(float *dst, int64_t n)
{
    if (n < 16) {
        for (int64_t i = 0; i < n; ++i)
            dst[i] = 0.0f;
    } else {
        memset(dst, 0, (size_t)n * sizeof(float));
    }
}

static inline void add_floats(float *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; ++i)
        dst[i] += src[i];
}

/* Output pixel coordinates walked in flat order. */
struct pixel {
    int64_t n, oh, ow;
};

static inline struct pixel pixel_at(const struct cnnc_conv_geom *g, int64_t p)
{
    struct pixel px = {.ow = p % g->ow};
    p /= g->ow;
    px.oh = p % g->oh;
    px.n = p / g->oh;
    return px;
}

static inline void pixel_next(const struct cnnc_conv_geom *g, struct pixel *px)
{
    if (++px->ow == g->ow) {
        px->ow = 0;
        if (++px->oh == g->oh) {
            px->oh = 0;
            ++px->n;
        }
    }
}

void cnnc_conv_im2col(const struct cnnc_conv_geom *g, const float *x, int64_t p0, int64_t count, float *col)
{
    const int64_t row = g->kh * g->kw * g->cin, cg = g->cin_g;
    struct pixel px = pixel_at(g, p0);
    for (int64_t i = 0; i < count; ++i, pixel_next(g, &px)) {
        float *dst = col + i * row;
        const float *img = x + px.n * g->h * g->w * g->cin;
        const int64_t ih0 = px.oh * g->sh - g->pt, iw0 = px.ow * g->sw - g->pl;
        for (int64_t grp = 0; grp < g->groups; ++grp) {
            for (int64_t kh = 0; kh < g->kh; ++kh) {
                const int64_t ih = ih0 + kh * g->dh;
                if (ih < 0 || ih >= g->h) {
                    zero_floats(dst, g->kw * cg);
                    dst += g->kw * cg;
                    continue;
                }
                const float *src = img + ih * g->w * g->cin + grp * cg;
                if (g->groups == 1 && g->dw == 1 && iw0 >= 0 && iw0 + g->kw <= g->w) {
                    /* The whole kernel row is one contiguous run of x. */
                    copy_floats(dst, src + iw0 * g->cin, g->kw * cg);
                    dst += g->kw * cg;
                    continue;
                }
                for (int64_t kw = 0; kw < g->kw; ++kw, dst += cg) {
                    const int64_t iw = iw0 + kw * g->dw;
                    if (iw < 0 || iw >= g->w)
                        zero_floats(dst, cg);
                    else
                        copy_floats(dst, src + iw * g->cin, cg);
                }
            }
        }
    }
}

/* dx += the col rows of output pixels [p0, p0 + count), scattered back. */
static void col2im_add(const struct cnnc_conv_geom *g, const float *col, int64_t p0, int64_t count, float *dx)
{
    const int64_t row = g->kh * g->kw * g->cin, cg = g->cin_g;
    struct pixel px = pixel_at(g, p0);
    for (int64_t i = 0; i < count; ++i, pixel_next(g, &px)) {
        const float *src = col + i * row;
        float *img = dx + px.n * g->h * g->w * g->cin;
        const int64_t ih0 = px.oh * g->sh - g->pt, iw0 = px.ow * g->sw - g->pl;
        for (int64_t grp = 0; grp < g->groups; ++grp) {
            for (int64_t kh = 0; kh < g->kh; ++kh) {
                const int64_t ih = ih0 + kh * g->dh;
                if (ih < 0 || ih >= g->h) {
                    src += g->kw * cg;
                    continue;
                }
                float *dst = img + ih * g->w * g->cin + grp * cg;
                for (int64_t kw = 0; kw < g->kw; ++kw, src += cg) {
                    const int64_t iw = iw0 + kw * g->dw;
                    if (iw >= 0 && iw < g->w)
                        add_floats(dst + iw * g->cin, src, cg);
                }
            }
        }
    }
}

/* dx rows [r0, r1) of image n = bias (or 0) + the taps of one image's whole
 * dcol (rows indexed by the image's output pixels) that reach them. */
static void col2im_gather(const struct cnnc_conv_geom *g, const float *dcol, int64_t n, int64_t r0, int64_t r1,
                          const float *bias, float *dx)
{
    const int64_t row = g->kh * g->kw * g->cin, cg = g->cin_g;
    for (int64_t ih = r0; ih < r1; ++ih) {
        for (int64_t iw = 0; iw < g->w; ++iw) {
            float *dst = dx + ((n * g->h + ih) * g->w + iw) * g->cin;
            if (bias)
                copy_floats(dst, bias, g->cin);
            else
                zero_floats(dst, g->cin);
            for (int64_t kh = 0; kh < g->kh; ++kh) {
                const int64_t th = ih + g->pt - kh * g->dh;
                if (th < 0 || th % g->sh != 0 || th / g->sh >= g->oh)
                    continue;
                for (int64_t kw = 0; kw < g->kw; ++kw) {
                    const int64_t tw = iw + g->pl - kw * g->dw;
                    if (tw < 0 || tw % g->sw != 0 || tw / g->sw >= g->ow)
                        continue;
                    const float *src = dcol + ((th / g->sh) * g->ow + tw / g->sw) * row + (kh * g->kw + kw) * cg;
                    for (int64_t grp = 0; grp < g->groups; ++grp)
                        add_floats(dst + grp * cg, src + grp * g->kh * g->kw * cg, cg);
                }
            }
        }
    }
}

static void fill_rows(float *dst, int64_t rows, const float *values, int64_t channels)
{
    for (int64_t r = 0; r < rows; ++r)
        copy_floats(dst + r * channels, values, channels);
}

/* y[p0 : p0 + count] (= bias) + a * w, group by group. a holds count rows of
 * lda floats, group blocks of KH*KW*Cin/g floats. */
static cnnc_status gemm_rows(const struct cnnc_conv_geom *g, int64_t count, const float *a, int64_t lda,
                             const float *w, const float *bias, float *y)
{
    const int64_t kg = g->kh * g->kw * g->cin_g;
    float beta = 0.0f;
    if (bias) {
        fill_rows(y, count, bias, g->cout);
        beta = 1.0f;
    }
    for (int64_t grp = 0; grp < g->groups; ++grp)
        CNNC_TRY(cnnc_sgemm_serial(CNNC_NO_TRANS, CNNC_NO_TRANS, count, g->cout_g, kg, 1.0f, a + grp * kg, lda,
                                   w + grp * g->cout_g, g->cout, beta, y + grp * g->cout_g, g->cout));
    return CNNC_OK;
}

cnnc_status cnnc_conv_gemm_forward(const struct cnnc_conv_geom *g, const float *x, const float *w,
                                   const float *bias, float *y)
{
    const int64_t pixels = g->n * g->oh * g->ow, row = g->kh * g->kw * g->cin;
    const int direct = is_pointwise(g);
    const int64_t tile = direct ? DIRECT_TILE_PIXELS : tile_pixels(row);
    const int threads = cnnc_threads_for(work_of(pixels, row, g->cout_g), CONV_THREAD_GRAIN);
    if (!direct)
        return cnnc_conv_implicit_forward(g, threads, x, w, 0, bias, y);
    int failed = 0;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        int64_t p0, p1;
        cnnc_conv_split(pixels, cnnc_conv_thread_id(), cnnc_conv_team_size(), &p0, &p1);
        float *col = direct ? NULL : cnnc_workspace(CNNC_CONV_SLOT_COL, (size_t)(tile * row) * sizeof(float));
        if (!direct && !col)
            cnnc_conv_mark_failed(&failed);
        else
            for (int64_t p = p0; p < p1; p += tile) {
                const int64_t count = cnnc_min_i64(tile, p1 - p);
                const float *a = x + p * g->cin;
                if (!direct) {
                    cnnc_conv_im2col(g, x, p, count, col);
                    a = col;
                }
                if (gemm_rows(g, count, a, row, w, bias, y + p * g->cout) != CNNC_OK) {
                    cnnc_conv_mark_failed(&failed);
                    break;
                }
            }
        cnnc_fpu_restore(fpu);
    }
    if (failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d forward: cannot allocate the im2col workspace");
    return CNNC_OK;
}

/* Stride 1: dx is the stride-1 convolution of dy with w flipped in space
 * and transposed in channels, (KH, KW, Cout/g, Cin), padded k_eff - 1 - pad
 * (negative values crop); the implicit GEMM packs that kernel straight from
 * w. */
static cnnc_status backward_data_as_forward(const struct cnnc_conv_geom *g, int threads, const float *w,
                                            const float *dy, const float *bias, float *dx)
{
    const struct cnnc_conv_geom t = cnnc_conv_data_gradient_geom(g);
    return cnnc_conv_implicit_forward(&t, threads, dy, w, 1, bias, dx);
}

/* floor(a / b) and ceil(a / b) for b > 0 and a of any sign. */
static inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }
static inline int64_t ceil_div_signed(int64_t a, int64_t b) { return -floor_div(-a, b); }

/* Stride > 1 (dilation 1, kernel at least as large as the stride): the
 * sub-pixel decomposition. The input pixels with (ih + pad_top) mod sh == rh
 * and (iw + pad_left) mod sw == rw receive only the taps kh = rh + sh * j,
 * kw = rw + sw * i: each of the sh * sw phases is a stride-1 convolution of
 * dy with that sub-kernel, flipped and channel-transposed, which the
 * implicit-GEMM forward runs reading dy in place and writing the phase's
 * strided subset of dx directly. Same multiply-adds as dcol = dy * w^T, but
 * no dcol to store and scatter back. Each dx pixel belongs to exactly one
 * phase, which starts it from the bias. */
static cnnc_status backward_data_phases(const struct cnnc_conv_geom *g, int threads, const float *w,
                                        const float *dy, const float *bias, float *dx)
{
    for (int64_t rh = 0; rh < g->sh; ++rh) {
        /* dx rows ih = q * sh + rh - pad_top for q in [q0h, q1h]. */
        const int64_t q0h = ceil_div_signed(g->pt - rh, g->sh), q1h = floor_div(g->h - 1 + g->pt - rh, g->sh);
        const int64_t kjh = cnnc_ceil_div(g->kh - rh, g->sh);
        if (q1h < q0h)
            continue;
        for (int64_t rw = 0; rw < g->sw; ++rw) {
            const int64_t q0w = ceil_div_signed(g->pl - rw, g->sw), q1w = floor_div(g->w - 1 + g->pl - rw, g->sw);
            const int64_t kjw = cnnc_ceil_div(g->kw - rw, g->sw);
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
            const struct cnnc_conv_phase ph = {
                .rh = rh, .rw = rw, .sh = g->sh, .sw = g->sw, .kw = g->kw,
                .y_px = g->sw * g->cin, .y_row = g->sh * g->w * g->cin, .y_img = g->h * g->w * g->cin,
            };
            float *y = dx + ((q0h * g->sh + rh - g->pt) * g->w + q0w * g->sw + rw - g->pl) * g->cin;
            CNNC_TRY(cnnc_conv_implicit_phase(&t, threads, dy, w, 1, &ph, bias, y));
        }
    }
    return CNNC_OK;
}

/* w^T packed by the team at the top of a backward-data region. */
struct packed_wt {
    const struct cnnc_gemm_kernels *kern;
    float *bp;
};

static cnnc_status packed_wt_alloc(const struct cnnc_conv_geom *g, struct packed_wt *p)
{
    p->kern = CNNC_PICK(cnnc_gemm_kernels);
    p->bp = cnnc_workspace(CNNC_CONV_SLOT_PACKED_WT,
                           (size_t)cnnc_conv_packed_wt_floats(g, p->kern) * sizeof(float));
    if (!p->bp)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the packed weights");
    return CNNC_OK;
}

/* Stride > 1 with at least one image per thread: each thread owns whole
 * images of dx and scatter-adds its dcol tiles into them. */
static cnnc_status backward_data_scatter(const struct cnnc_conv_geom *g, int threads, const float *w,
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
        cnnc_conv_pack_wt(g, pw.kern, w, pw.bp, t, team);
        int64_t n0, n1;
        cnnc_conv_split(g->n, t, team, &n0, &n1);
        float *dcol = cnnc_workspace(CNNC_CONV_SLOT_COL,
                                     (size_t)(tile * row + pw.kern->mr * g->cout_g) * sizeof(float));
        if (!dcol)
            cnnc_conv_mark_failed(&failed);
        if (!cnnc_conv_team_failed(&failed)) {
            if (bias)
                fill_rows(dx + n0 * image_in, (n1 - n0) * g->h * g->w, bias, g->cin);
            else
                memset(dx + n0 * image_in, 0, (size_t)((n1 - n0) * image_in) * sizeof(float));
            for (int64_t p = n0 * image_px; p < n1 * image_px; p += tile) {
                const int64_t count = cnnc_min_i64(tile, n1 * image_px - p);
                cnnc_conv_dcol_packed(g, pw.kern, pw.bp, count, dy + p * g->cout, dcol, row, dcol + tile * row);
                col2im_add(g, dcol, p, count, dx);
            }
        }
        cnnc_fpu_restore(fpu);
    }
    if (failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the col2im workspace");
    return CNNC_OK;
}

/* Stride > 1 with fewer images than threads: per image, the threads split
 * its output pixels to compute the whole dcol, then its input rows to gather
 * it. */
static cnnc_status backward_data_shared(const struct cnnc_conv_geom *g, int threads, const float *w,
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
        cnnc_conv_pack_wt(g, pw.kern, w, pw.bp, t, team);
        float *ap = cnnc_workspace(CNNC_CONV_SLOT_COL, (size_t)(pw.kern->mr * g->cout_g) * sizeof(float));
        if (!ap)
            cnnc_conv_mark_failed(&failed);
        cnnc_conv_barrier();
        int64_t p0, p1, r0, r1;
        cnnc_conv_split(image_px, t, team, &p0, &p1);
        cnnc_conv_split(g->h, t, team, &r0, &r1);
        for (int64_t n = 0; n < g->n && !cnnc_conv_has_failed(&failed); ++n) {
            cnnc_conv_dcol_packed(g, pw.kern, pw.bp, p1 - p0, dy + (n * image_px + p0) * g->cout, dcol + p0 * row,
                                  row, ap);
            cnnc_conv_barrier();
            col2im_gather(g, dcol, n, r0, r1, bias, dx);
            cnnc_conv_barrier();
        }
        cnnc_fpu_restore(fpu);
    }
    if (failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the GEMM workspace");
    return CNNC_OK;
}

/* Phase output rows of width pw run in MR-pixel segments, and a partial
 * last segment costs a whole one: the phases win only where that waste is
 * small (measured at batch 8-32 with the 14 x 32 AVX-512 micro-kernel:
 * 1.05-1.25x faster with rows that are whole segments, up to 1.6x slower
 * with 15-pixel rows on 14-pixel segments), and only with enough dx
 * channels to fill the micro-kernel's columns (2.7x slower for 3). With the
 * smaller register tiles (AVX2's 6 x 16: 1.1-1.3x slower on ResNet-18's
 * 3x3 / 2 layers) each call's C tile and A rows weigh more, and the dcol
 * GEMM, which writes its tiles once without reading them, stays ahead.
 * CNNC_CONV_PHASES=1/0 in the environment forces the decomposition wherever
 * it applies, or disables it (tests run both). */
#define PHASES_MIN_TILE 256
static int phases_pay(const struct cnnc_conv_geom *g)
{
    if (g->dh != 1 || g->dw != 1 || g->kh < g->sh || g->kw < g->sw || (g->sh == 1 && g->sw == 1))
        return 0;
    const char *env = getenv("CNNC_CONV_PHASES");
    if (env && (env[0] == '0' || env[0] == '1'))
        return env[0] == '1';
    if (g->cin_g < 32)
        return 0;
    const struct cnnc_gemm_kernels *kern = CNNC_PICK(cnnc_gemm_kernels);
    const int64_t mr = kern->mr;
    if (mr * kern->nr < PHASES_MIN_TILE)
        return 0;
    for (int64_t rw = 0; rw < g->sw; ++rw) {
        const int64_t pw = floor_div(g->w - 1 + g->pl - rw, g->sw) - ceil_div_signed(g->pl - rw, g->sw) + 1;
        if (pw > 0 && cnnc_ceil_div(pw, mr) * mr * 8 > pw * 9)
            return 0;
    }
    return 1;
}

cnnc_status cnnc_conv_gemm_backward_data(const struct cnnc_conv_geom *g, const float *w, const float *dy,
                                         const float *bias, float *dx)
{
    if (is_pointwise(g)) {
        /* dx = dy * w^T: the forward GEMM with the roles of the channel
         * counts swapped and w read transposed. */
        const int64_t pixels = g->n * g->h * g->w;
        const int threads = cnnc_threads_for(work_of(pixels, g->cin, g->cout_g), CONV_THREAD_GRAIN);
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
                    fill_rows(c, count, bias, g->cin);
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
    const int64_t row = g->kh * g->kw * g->cin;
    const int threads = cnnc_threads_for(work_of(g->n * g->oh * g->ow, row, g->cout_g), CONV_THREAD_GRAIN);
    /* The gather form needs enough input channels to fill the GEMM's
     * columns; with few (the first layer of an image network) the dcol
     * product, whose columns are KH*KW*Cin/g, does better. */
    if (g->sh == 1 && g->sw == 1 && g->cin_g >= 64)
        return backward_data_as_forward(g, threads, w, dy, bias, dx);
    if (phases_pay(g))
        return backward_data_phases(g, threads, w, dy, bias, dx);
    if (threads <= g->n)
        return backward_data_scatter(g, threads, w, dy, bias, dx);
    return backward_data_shared(g, threads, w, dy, bias, dx);
}

/* The rule of conv_internal.h for the tiled weight gradient. Its bands copy
 * whole input rows, so with many channels a kernel smaller than its stride
 * (1x1 / 2 downsampling) would copy and stream pixels no tap reads, where
 * im2col gathers only the ones it needs. Bands never span images, so tiny
 * output images (a few pixels each) would pay a band and a pass over the
 * dW blocks per image, where im2col tiles span images. */
static int tiled_weights_pay(const struct cnnc_conv_geom *g)
{
    const int64_t kg = g->kh * g->kw * g->cin_g;
    if (kg > CNNC_CONV_WTILE_MAX_ROWS || g->oh * g->ow < CNNC_CONV_WTILE_MIN_PIXELS)
        return 0;
    if (g->cin_g < CNNC_CONV_WTILE_FEW_CIN)
        return 1;
    return g->cout_g <= CNNC_CONV_WTILE_MAX_COUT && g->kh >= g->sh && g->kw >= g->sw;
}

cnnc_status cnnc_conv_gemm_backward_weights(const struct cnnc_conv_geom *g, const float *x, const float *dy,
                                            float *dw, float *db)
{
    const int64_t pixels = g->n * g->oh * g->ow, row = g->kh * g->kw * g->cin, kg = g->kh * g->kw * g->cin_g;
    const int direct = is_pointwise(g);
    const int64_t tile = direct ? DIRECT_TILE_PIXELS : weight_tile_pixels(row);
    const int threads = cnnc_threads_for(work_of(pixels, row, g->cout_g), CONV_THREAD_GRAIN);
    if (tiled_weights_pay(g))
        return cnnc_conv_tiled_backward_weights(g, threads, x, dy, dw, db);
    float *buffers[threads];
    struct cnnc_conv_partials partials = {.out = dw, .buffers = buffers, .count = kg * g->cout};
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        int64_t p0, p1;
        cnnc_conv_split(pixels, cnnc_conv_thread_id(), cnnc_conv_team_size(), &p0, &p1);
        float *sum = cnnc_conv_partial_begin(&partials);
        float *col = direct ? NULL : cnnc_workspace(CNNC_CONV_SLOT_COL, (size_t)(tile * row) * sizeof(float));
        if (!direct && !col)
            cnnc_conv_mark_failed(&partials.failed);
        else if (sum)
            for (int64_t p = p0; p < p1; p += tile) {
                const int64_t count = cnnc_min_i64(tile, p1 - p);
                const float *a = x + p * g->cin;
                if (!direct) {
                    cnnc_conv_im2col(g, x, p, count, col);
                    a = col;
                }
                for (int64_t grp = 0; grp < g->groups; ++grp)
                    if (cnnc_sgemm_serial(CNNC_TRANS, CNNC_NO_TRANS, kg, g->cout_g, count, 1.0f, a + grp * kg, row,
                                          dy + p * g->cout + grp * g->cout_g, g->cout, 1.0f, sum + grp * g->cout_g,
                                          g->cout) != CNNC_OK)
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
