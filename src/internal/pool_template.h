/* The pooling micro-kernels, compiled once per ISA by
 * src/kernels/<isa>/pool_<isa>.c (which defines CNNC_SIMD first). Channels
 * are contiguous in NHWC, so every window element is a run of channel
 * vectors; a tile of up to POOL_TILE vectors stays in registers while the
 * window is scanned. */
#ifndef CNNC_POOL_TEMPLATE_H
#define CNNC_POOL_TEMPLATE_H
#include <string.h>
#include "pool_kernels.h"
#include "simd.h"

#define POOL_INLINE static inline __attribute__((always_inline))
#define POOL_TILE 4

POOL_INLINE vf pool_load(const float *p, int t, int full, int64_t rem)
{
    return t < full ? vf_load(p + t * VW) : vf_load_part(p + t * VW, rem);
}

POOL_INLINE void pool_store(float *p, vf v, int t, int full, int64_t rem)
{
    if (t < full)
        vf_store(p + t * VW, v);
    else
        vf_store_part(p + t * VW, v, rem);
}

/* Columns [*j0, *j1) of output column o's window inside the input. */
POOL_INLINE void window_cols(const struct cnnc_pool_row *r, int64_t o, int64_t *j0, int64_t *j1)
{
    int64_t start = o * r->sw - r->pad_left;
    *j0 = start < 0 ? 0 : start;
    *j1 = cnnc_min_i64(start + r->kw, r->w);
}

/* ---- forward ---------------------------------------------------------- */

POOL_INLINE void max_tile(const struct cnnc_pool_row *r, const float *x, int64_t j0, int64_t j1, float *y,
                          int full, int64_t rem)
{
    int nvec = full + (rem > 0);
    int64_t rs = r->w * r->c;
    vf m[POOL_TILE];
    for (int t = 0; t < nvec; ++t)
        m[t] = pool_load(x + j0 * r->c, t, full, rem);
    for (int64_t i = 0; i < r->rows; ++i)
        for (int64_t j = j0; j < j1; ++j)
            for (int t = 0; t < nvec; ++t)
                m[t] = vf_max_nan(m[t], pool_load(x + i * rs + j * r->c, t, full, rem));
    for (int t = 0; t < nvec; ++t)
        pool_store(y, m[t], t, full, rem);
}

POOL_INLINE void avg_tile(const struct cnnc_pool_row *r, const float *x, int64_t j0, int64_t j1, float *y,
                          int full, int64_t rem)
{
    int nvec = full + (rem > 0);
    int64_t rs = r->w * r->c;
    vf s[POOL_TILE];
    for (int t = 0; t < nvec; ++t)
        s[t] = vf_zero();
    for (int64_t i = 0; i < r->rows; ++i)
        for (int64_t j = j0; j < j1; ++j)
            for (int t = 0; t < nvec; ++t)
                s[t] = vf_add(s[t], pool_load(x + i * rs + j * r->c, t, full, rem));
    vf inv = vf_set1(1.0f / (float)(r->rows * (j1 - j0)));
    for (int t = 0; t < nvec; ++t)
        pool_store(y, vf_mul(s[t], inv), t, full, rem);
}

/* ---- backward --------------------------------------------------------- */

/* The gradient v of one window element: added to dx, or stored. */
POOL_INLINE void put(float *out, vf v, int t, int full, int64_t rem, int accumulate)
{
    pool_store(out, accumulate ? vf_add(pool_load(out, t, full, rem), v) : v, t, full, rem);
}

POOL_INLINE void max_backward_tile(const struct cnnc_pool_row *r, const float *x, int64_t j0, int64_t j1,
                                   const float *dy, float *dx, int full, int64_t rem)
{
    int nvec = full + (rem > 0);
    int64_t rs = r->w * r->c;
    vf m[POOL_TILE], at[POOL_TILE], g[POOL_TILE];
    for (int t = 0; t < nvec; ++t) {
        m[t] = pool_load(x + j0 * r->c, t, full, rem);
        at[t] = vf_zero();
    }
    /* Window positions are numbered row-major from 0 as floats (exact: a
     * window has far fewer than 2^24 elements). */
    float pos = 0.0f;
    for (int64_t i = 0; i < r->rows; ++i)
        for (int64_t j = j0; j < j1; ++j, pos += 1.0f) {
            vf p = vf_set1(pos);
            for (int t = 0; t < nvec; ++t) {
                vf v = pool_load(x + i * rs + j * r->c, t, full, rem);
                vm better = vf_better(v, m[t]);
                m[t] = vf_select(better, v, m[t]);
                at[t] = vf_select(better, p, at[t]);
            }
        }
    for (int t = 0; t < nvec; ++t)
        g[t] = pool_load(dy, t, full, rem);
    const vf zero = vf_zero();
    pos = 0.0f;
    for (int64_t i = 0; i < r->rows; ++i)
        for (int64_t j = j0; j < j1; ++j, pos += 1.0f) {
            vf p = vf_set1(pos);
            float *out = dx + i * rs + j * r->c;
            for (int t = 0; t < nvec; ++t)
                put(out, vf_select(vf_eq(at[t], p), g[t], zero), t, full, rem, r->accumulate);
        }
}

POOL_INLINE void avg_backward_tile(const struct cnnc_pool_row *r, int64_t j0, int64_t j1, const float *dy,
                                   float *dx, int full, int64_t rem)
{
    int nvec = full + (rem > 0);
    int64_t rs = r->w * r->c;
    vf g[POOL_TILE];
    vf inv = vf_set1(1.0f / (float)(r->rows * (j1 - j0)));
    for (int t = 0; t < nvec; ++t)
        g[t] = vf_mul(pool_load(dy, t, full, rem), inv);
    for (int64_t i = 0; i < r->rows; ++i)
        for (int64_t j = j0; j < j1; ++j) {
            float *out = dx + i * rs + j * r->c;
            for (int t = 0; t < nvec; ++t)
                put(out, g[t], t, full, rem, r->accumulate);
        }
}

/* ---- row drivers: output columns, then channel tiles ------------------ */

/* Runs the tile call over the channels [c0, c0 + cn): whole tiles, then
 * the remainder with compile-time FULL. */
#define POOL_CHANNEL_TILES(...)                                                   \
    do {                                                                          \
        int64_t cc = r->c0, cend = r->c0 + r->cn;                                 \
        for (; cc + POOL_TILE * VW <= cend; cc += POOL_TILE * VW) {               \
            enum { FULL = POOL_TILE };                                            \
            const int64_t REM = 0;                                                \
            __VA_ARGS__;                                                          \
        }                                                                         \
        if (cc < cend)                                                            \
            VF_TILE_REST(cend - cc, __VA_ARGS__);                                 \
    } while (0)

static void pool_max_row(const struct cnnc_pool_row *r, float *y)
{
    for (int64_t o = 0; o < r->ow; ++o) {
        int64_t j0, j1;
        window_cols(r, o, &j0, &j1);
        float *yo = y + o * r->c;
        POOL_CHANNEL_TILES(max_tile(r, r->x + cc, j0, j1, yo + cc, FULL, REM));
    }
}

static void pool_avg_row(const struct cnnc_pool_row *r, float *y)
{
    for (int64_t o = 0; o < r->ow; ++o) {
        int64_t j0, j1;
        window_cols(r, o, &j0, &j1);
        float *yo = y + o * r->c;
        POOL_CHANNEL_TILES(avg_tile(r, r->x + cc, j0, j1, yo + cc, FULL, REM));
    }
}

/* Overwrite mode: zero the channels of columns [j0, j1) in every window row. */
static void zero_columns(const struct cnnc_pool_row *r, float *dx, int64_t j0, int64_t j1)
{
    for (int64_t i = 0; i < r->rows; ++i)
        for (int64_t j = j0; j < j1; ++j)
            memset(dx + i * r->w * r->c + j * r->c + r->c0, 0, sizeof(float) * (size_t)r->cn);
}

static void pool_max_row_backward(const struct cnnc_pool_row *r, const float *dy, float *dx)
{
    int64_t covered = 0;
    for (int64_t o = 0; o < r->ow; ++o) {
        int64_t j0, j1;
        window_cols(r, o, &j0, &j1);
        if (!r->accumulate && covered < j0)
            zero_columns(r, dx, covered, j0);
        covered = j1;
        const float *g = dy + o * r->c;
        POOL_CHANNEL_TILES(max_backward_tile(r, r->x + cc, j0, j1, g + cc, dx + cc, FULL, REM));
    }
    if (!r->accumulate && covered < r->w)
        zero_columns(r, dx, covered, r->w);
}

static void pool_avg_row_backward(const struct cnnc_pool_row *r, const float *dy, float *dx)
{
    int64_t covered = 0;
    for (int64_t o = 0; o < r->ow; ++o) {
        int64_t j0, j1;
        window_cols(r, o, &j0, &j1);
        if (!r->accumulate && covered < j0)
            zero_columns(r, dx, covered, j0);
        covered = j1;
        const float *g = dy + o * r->c;
        POOL_CHANNEL_TILES(avg_backward_tile(r, j0, j1, g + cc, dx + cc, FULL, REM));
    }
    if (!r->accumulate && covered < r->w)
        zero_columns(r, dx, covered, r->w);
}

#define CNNC_POOL_TEMPLATE_MEMBERS                      \
    .max_row = pool_max_row,                            \
    .avg_row = pool_avg_row,                            \
    .max_row_backward = pool_max_row_backward,          \
    .avg_row_backward = pool_avg_row_backward

#endif
