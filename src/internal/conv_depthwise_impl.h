/* Depthwise convolution micro-kernels, written once and compiled per ISA:
 * src/kernels/<isa>/conv_<isa>.c includes this file, so each copy is
 * vectorized with that ISA's flags. The
 * inner loops run over contiguous channels (NHWC), which the compiler turns
 * into full-width FMAs; with a channel multiplier M > 1 output channel
 * c * M + m reads input channel c. */
#include "conv_internal.h"

/* acc[co] += xp[co / M] * wp[co] over one tap. */
static inline void dw_tap(int64_t c, int64_t m, const float *restrict xp, const float *restrict wp,
                          float *restrict acc)
{
    if (m == 1) {
        for (int64_t i = 0; i < c; ++i)
            acc[i] += xp[i] * wp[i];
    } else {
        for (int64_t i = 0; i < c; ++i) {
            const float xv = xp[i];
            for (int64_t j = 0; j < m; ++j)
                acc[i * m + j] += xv * wp[i * m + j];
        }
    }
}

/* Channel block kept in registers: accumulating straight into y would
 * store and reload the same lines once per tap, and those stores alias
 * (modulo 4 KiB) the loads of x when x and y are laid out alike. */
#define DW_BLOCK 64

static void depthwise_forward(const struct cnnc_conv_geom *g, int64_t r0, int64_t r1, const float *x,
                              const float *w, const float *bias, float *y)
{
    const int64_t c = g->cin, m = g->cout / g->cin, co = g->cout;
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / g->oh, oh = r % g->oh;
        const float *img = x + n * g->h * g->w * c;
        for (int64_t ow = 0; ow < g->ow; ++ow) {
            float *restrict acc = y + (r * g->ow + ow) * co;
            int64_t c0 = 0;
            if (m == 1) {
                for (; c0 + DW_BLOCK <= c; c0 += DW_BLOCK) {
                    float block[DW_BLOCK];
                    for (int i = 0; i < DW_BLOCK; ++i)
                        block[i] = bias ? bias[c0 + i] : 0.0f;
                    for (int64_t kh = 0; kh < g->kh; ++kh) {
                        const int64_t ih = oh * g->sh - g->pt + kh * g->dh;
                        if (ih < 0 || ih >= g->h)
                            continue;
                        for (int64_t kw = 0; kw < g->kw; ++kw) {
                            const int64_t iw = ow * g->sw - g->pl + kw * g->dw;
                            if (iw < 0 || iw >= g->w)
                                continue;
                            const float *restrict xp = img + (ih * g->w + iw) * c + c0;
                            const float *restrict wp = w + (kh * g->kw + kw) * co + c0;
                            for (int i = 0; i < DW_BLOCK; ++i)
                                block[i] += xp[i] * wp[i];
                        }
                    }
                    for (int i = 0; i < DW_BLOCK; ++i)
                        acc[c0 + i] = block[i];
                }
            }
            if (c0 == c)
                continue;
            /* Remaining channels (all of them with a multiplier). */
            const int64_t rest = c - c0;
            for (int64_t i = c0 * m; i < co; ++i)
                acc[i] = bias ? bias[i] : 0.0f;
            for (int64_t kh = 0; kh < g->kh; ++kh) {
                const int64_t ih = oh * g->sh - g->pt + kh * g->dh;
                if (ih < 0 || ih >= g->h)
                    continue;
                for (int64_t kw = 0; kw < g->kw; ++kw) {
                    const int64_t iw = ow * g->sw - g->pl + kw * g->dw;
                    if (iw < 0 || iw >= g->w)
                        continue;
                    dw_tap(rest, m, img + (ih * g->w + iw) * c + c0, w + (kh * g->kw + kw) * co + c0 * m,
                           acc + c0 * m);
                }
            }
        }
    }
}

static void depthwise_backward_data(const struct cnnc_conv_geom *g, int64_t r0, int64_t r1, const float *w,
                                    const float *dy, const float *bias, float *dx)
{
    const int64_t c = g->cin, m = g->cout / g->cin, co = g->cout;
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / g->h, ih = r % g->h;
        const float *dimg = dy + n * g->oh * g->ow * co;
        for (int64_t iw = 0; iw < g->w; ++iw) {
            float *restrict acc = dx + (r * g->w + iw) * c;
            int64_t c0 = 0;
            if (m == 1) {
                for (; c0 + DW_BLOCK <= c; c0 += DW_BLOCK) {
                    float block[DW_BLOCK];
                    for (int i = 0; i < DW_BLOCK; ++i)
                        block[i] = bias ? bias[c0 + i] : 0.0f;
                    for (int64_t kh = 0; kh < g->kh; ++kh) {
                        const int64_t th = ih + g->pt - kh * g->dh;
                        if (th < 0 || th % g->sh != 0 || th / g->sh >= g->oh)
                            continue;
                        for (int64_t kw = 0; kw < g->kw; ++kw) {
                            const int64_t tw = iw + g->pl - kw * g->dw;
                            if (tw < 0 || tw % g->sw != 0 || tw / g->sw >= g->ow)
                                continue;
                            const float *restrict dp = dimg + ((th / g->sh) * g->ow + tw / g->sw) * co + c0;
                            const float *restrict wp = w + (kh * g->kw + kw) * co + c0;
                            for (int i = 0; i < DW_BLOCK; ++i)
                                block[i] += dp[i] * wp[i];
                        }
                    }
                    for (int i = 0; i < DW_BLOCK; ++i)
                        acc[c0 + i] = block[i];
                }
            }
            if (c0 == c)
                continue;
            for (int64_t i = c0; i < c; ++i)
                acc[i] = bias ? bias[i] : 0.0f;
            for (int64_t kh = 0; kh < g->kh; ++kh) {
                const int64_t th = ih + g->pt - kh * g->dh;
                if (th < 0 || th % g->sh != 0 || th / g->sh >= g->oh)
                    continue;
                for (int64_t kw = 0; kw < g->kw; ++kw) {
                    const int64_t tw = iw + g->pl - kw * g->dw;
                    if (tw < 0 || tw % g->sw != 0 || tw / g->sw >= g->ow)
                        continue;
                    const float *restrict dp = dimg + ((th / g->sh) * g->ow + tw / g->sw) * co;
                    const float *restrict wp = w + (kh * g->kw + kw) * co;
                    if (m == 1) {
                        for (int64_t i = c0; i < c; ++i)
                            acc[i] += dp[i] * wp[i];
                    } else {
                        for (int64_t i = c0; i < c; ++i) {
                            float s = 0.0f;
                            for (int64_t j = 0; j < m; ++j)
                                s += dp[i * m + j] * wp[i * m + j];
                            acc[i] += s;
                        }
                    }
                }
            }
        }
    }
}

static void depthwise_backward_weights(const struct cnnc_conv_geom *g, int64_t r0, int64_t r1, const float *x,
                                       const float *dy, float *dw)
{
    const int64_t c = g->cin, m = g->cout / g->cin, co = g->cout;
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / g->oh, oh = r % g->oh;
        const float *img = x + n * g->h * g->w * c;
        for (int64_t kh = 0; kh < g->kh; ++kh) {
            const int64_t ih = oh * g->sh - g->pt + kh * g->dh;
            if (ih < 0 || ih >= g->h)
                continue;
            for (int64_t kw = 0; kw < g->kw; ++kw) {
                float *restrict acc = dw + (kh * g->kw + kw) * co;
                for (int64_t ow = 0; ow < g->ow; ++ow) {
                    const int64_t iw = ow * g->sw - g->pl + kw * g->dw;
                    if (iw < 0 || iw >= g->w)
                        continue;
                    dw_tap(c, m, img + (ih * g->w + iw) * c, dy + (r * g->ow + ow) * co, acc);
                }
            }
        }
    }
}

#define CNNC_CONV_DEPTHWISE_MEMBERS                          \
    .depthwise_forward = depthwise_forward,                  \
    .depthwise_backward_data = depthwise_backward_data,      \
    .depthwise_backward_weights = depthwise_backward_weights
