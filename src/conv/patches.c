/* Copies between images and the patches of the GEMM-based convolutions:
 * im2col and its adjoints, bias rows, and zero-padded bands of input rows. */
#include <string.h>
#include "patches.h"

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

int64_t cnnc_conv_indirect_rows(const struct cnnc_conv_geom *g, const float *x, int64_t p0, int64_t count,
                                const float *zeros, float *patches, const float **table)
{
    float *next = patches;
    struct pixel px = pixel_at(g, p0);
    for (int64_t i = 0; i < count; ++i, pixel_next(g, &px)) {
        const float *img = x + px.n * g->h * g->w * g->cin;
        const int64_t ih0 = px.oh * g->sh - g->pt, iw0 = px.ow * g->sw - g->pl;
        const int inside = iw0 >= 0 && iw0 + g->kw <= g->w;
        for (int64_t kh = 0; kh < g->kh; ++kh) {
            const int64_t ih = ih0 + kh * g->dh;
            const float **slot = table + kh * count + i;
            if (ih < 0 || ih >= g->h) {
                *slot = zeros;
                continue;
            }
            const float *src = img + ih * g->w * g->cin;
            if (inside) {
                *slot = src + iw0 * g->cin;
                continue;
            }
            *slot = next;
            for (int64_t kw = 0, iw = iw0; kw < g->kw; ++kw, ++iw, next += g->cin) {
                if (iw < 0 || iw >= g->w)
                    zero_floats(next, g->cin);
                else
                    copy_floats(next, src + iw * g->cin, g->cin);
            }
        }
    }
    return next - patches;
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

void cnnc_conv_im2col_slice(const struct cnnc_conv_geom *g, const float *x, int64_t p0, int64_t count, int64_t grp,
                            int64_t k0, int64_t kc, float *col, int64_t ldcol)
{
    const int64_t cg = g->cin_g, t0 = k0 / cg, t1 = (k0 + kc - 1) / cg;
    struct pixel px = pixel_at(g, p0);
    for (int64_t i = 0; i < count; ++i, pixel_next(g, &px)) {
        float *dst = col + i * ldcol;
        const float *img = x + px.n * g->h * g->w * g->cin + grp * cg;
        const int64_t ih0 = px.oh * g->sh - g->pt, iw0 = px.ow * g->sw - g->pl;
        for (int64_t tap = t0; tap <= t1; ++tap) {
            const int64_t c0 = tap == t0 ? k0 - tap * cg : 0, c1 = tap == t1 ? k0 + kc - tap * cg : cg;
            const int64_t ih = ih0 + tap / g->kw * g->dh, iw = iw0 + tap % g->kw * g->dw;
            if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
                zero_floats(dst, c1 - c0);
            else
                copy_floats(dst, img + (ih * g->w + iw) * g->cin + c0, c1 - c0);
            dst += c1 - c0;
        }
    }
}

void cnnc_conv_col2im_add(const struct cnnc_conv_geom *g, const float *col, int64_t p0, int64_t count, float *dx)
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

void cnnc_conv_col2im_gather(const struct cnnc_conv_geom *g, const float *dcol, int64_t n, int64_t r0, int64_t r1,
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

void cnnc_conv_fill_rows(float *dst, int64_t rows, const float *values, int64_t channels)
{
    for (int64_t r = 0; r < rows; ++r)
        copy_floats(dst + r * channels, values, channels);
}

void cnnc_conv_band_fill(const struct cnnc_conv_geom *g, const float *x, const struct cnnc_conv_band *b, int64_t n,
                         int64_t oh0, int64_t rows)
{
    const int64_t in_rows = (rows - 1) * g->sh + (g->kh - 1) * g->dh + 1, ih0 = oh0 * g->sh - g->pt;
    const int64_t c_lo = cnnc_max_i64(0, g->pl), c_hi = cnnc_min_i64(b->width, g->pl + g->w);
    for (int64_t r = 0; r < in_rows; ++r) {
        float *dst = b->buf + r * b->width * g->cin;
        const int64_t ih = ih0 + r;
        if (ih < 0 || ih >= g->h || c_hi <= c_lo) {
            memset(dst, 0, (size_t)(b->width * g->cin) * sizeof(float));
            continue;
        }
        memset(dst, 0, (size_t)(c_lo * g->cin) * sizeof(float));
        memcpy(dst + c_lo * g->cin, x + ((n * g->h + ih) * g->w + (c_lo - g->pl)) * g->cin,
               (size_t)((c_hi - c_lo) * g->cin) * sizeof(float));
        memset(dst + c_hi * g->cin, 0, (size_t)((b->width - c_hi) * g->cin) * sizeof(float));
    }
}
