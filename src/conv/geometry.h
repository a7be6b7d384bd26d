/* The convolution family's bottom layer: a validated problem and the
 * geometry derived from it. Included by every file of src/conv/; includes
 * nothing of it. */
#ifndef CNNC_CONV_GEOMETRY_H
#define CNNC_CONV_GEOMETRY_H
#include "cnnc_internal.h"

/* A validated problem. Paddings may be negative here (cropping): the
 * stride-1 backward-data pass runs a forward convolution whose padding is
 * k_eff - 1 - pad. Everything else is as in cnnc_conv2d_desc. */
struct cnnc_conv_geom {
    int64_t n, h, w, cin, cout;
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t pt, pb, pl, pr;
    int64_t groups, cin_g, cout_g;
    int64_t oh, ow;
};

/* 1x1, stride 1, unpadded: x itself is the (N*H*W) x Cin matrix. */
static inline int cnnc_conv_is_pointwise(const struct cnnc_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pb == 0 && g->pl == 0 &&
           g->pr == 0;
}

/* One group per input channel (any multiplier). */
static inline int cnnc_conv_is_depthwise(const struct cnnc_conv_geom *g)
{
    return g->cin_g == 1 && g->groups == g->cin && g->cin > 1;
}

/* The stride-1 input gradient of g as a forward convolution: dy convolved
 * with the kernel flipped in space and transposed in channels, padded
 * k_eff - 1 - pad (negative values crop). */
static inline struct cnnc_conv_geom cnnc_conv_data_gradient_geom(const struct cnnc_conv_geom *g)
{
    const int64_t eh = (g->kh - 1) * g->dh, ew = (g->kw - 1) * g->dw;
    struct cnnc_conv_geom t = {
        .n = g->n, .h = g->oh, .w = g->ow, .cin = g->cout, .cout = g->cin,
        .kh = g->kh, .kw = g->kw, .sh = 1, .sw = 1, .dh = g->dh, .dw = g->dw,
        .pt = eh - g->pt, .pb = eh - g->pb, .pl = ew - g->pl, .pr = ew - g->pr,
        .groups = g->groups, .cin_g = g->cout_g, .cout_g = g->cin_g, .oh = g->h, .ow = g->w,
    };
    return t;
}

/* floor(a / b) and ceil(a / b) for b > 0 and a of any sign. */
static inline int64_t cnnc_conv_floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }
static inline int64_t cnnc_conv_ceil_div_signed(int64_t a, int64_t b) { return -cnnc_conv_floor_div(-a, b); }

/* The dx indices q * s + r - pad (q in [*q0, *q1]) of stride phase r along
 * an axis of `in` pixels: the pixels that only the taps r + s * j reach.
 * Empty when *q1 < *q0. */
static inline void cnnc_conv_phase_range(int64_t in, int64_t pad, int64_t s, int64_t r, int64_t *q0, int64_t *q1)
{
    *q0 = cnnc_conv_ceil_div_signed(pad - r, s);
    *q1 = cnnc_conv_floor_div(in - 1 + pad - r, s);
}

#endif
