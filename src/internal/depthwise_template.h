/* The depthwise convolution micro-kernels (contract in depthwise_kernels.h),
 * compiled once per ISA by src/kernels/<isa>/depthwise_<isa>.c, which
 * defines CNNC_SIMD first.
 *
 * Channels are contiguous (NHWC), so a channel vector of one pixel is one
 * load. Two families of kernels:
 * - sliding kernel rows (the common case: stride 1 or 2, no dilation along
 *   the row, multiplier 1): register tiles of DW_PX output pixels (forward,
 *   backward-data) or DW_WB dy pixels (weights) that load each source
 *   vector of a kernel row once and use it for every tap that reads it;
 * - general tap lists (any stride, dilation, multiplier): forward and
 *   backward-data keep DW_PX output pixels of one channel vector in
 *   registers while the taps are scanned, each tap's weight vector loaded
 *   once for DW_PX pixels; the weight gradient keeps up to DW_TB taps of
 *   one channel vector in registers while the pixels of a run stream by.
 * Either way nothing is stored before the last tap: stores into y between
 * taps would reload the same lines and stall on 4 KiB aliasing with the
 * loads of x, laid out alike. */
#ifndef CNNC_DEPTHWISE_TEMPLATE_H
#define CNNC_DEPTHWISE_TEMPLATE_H
#include "depthwise_kernels.h"
#include "gemm_epilogue_template.h"
#include "simd.h"

#define DW_INLINE static inline __attribute__((always_inline))
#define DW_PX 8
/* The register tiles index their accumulator arrays with the loop
 * counters: unless every such loop is unrolled the arrays live in memory. */
#define DW_UNROLL _Pragma("GCC unroll 32")
#define DW_TB 9

/* Channel vectors are whole (part 0) or the last `lanes` < VW channels. */
DW_INLINE vf dw_load(const float *p, int part, int64_t lanes) { return part ? vf_load_part(p, lanes) : vf_load(p); }

DW_INLINE void dw_store(float *p, vf v, int part, int64_t lanes)
{
    if (part)
        vf_store_part(p, v, lanes);
    else
        vf_store(p, v);
}

/* A loaded vector the compiler must keep in a register: otherwise GCC folds
 * the load back into every FMA that uses it as a memory operand, which
 * undoes the reuse and leaves the kernel bound by loads. */
DW_INLINE vf dw_keep(vf v) { return vf_keep(v); }

/* case 1 .. 8 of a switch, each calling CALL with a constant. */
#define DW_CASES_8(CALL)                                                                \
    case 1: CALL(1); break;                                                             \
    case 2: CALL(2); break;                                                             \
    case 3: CALL(3); break;                                                             \
    case 4: CALL(4); break;                                                             \
    case 5: CALL(5); break;                                                             \
    case 6: CALL(6); break;                                                             \
    case 7: CALL(7); break;                                                             \
    case 8: CALL(8); break;

/* ---- forward / backward-data, multiplier 1 ------------------------------ */

DW_INLINE void gather_tile(const int np, const int part, int64_t lanes, const struct cnnc_dw_run *r,
                           const float *x, float *out, int64_t c)
{
    const int64_t taps = r->taps, xstep = r->xstep, ostep = r->ostep;
    const int64_t *xoff = r->xoff, *woff = r->woff;
    const float *w = r->w + c;
    vf acc[DW_PX];
    const vf init = r->bias ? dw_load(r->bias + c, part, lanes) : vf_zero();
    DW_UNROLL
    for (int j = 0; j < np; ++j)
        acc[j] = init;
    /* One pointer per pixel: the loads then address base + tap offset
     * independently instead of through a chain of additions of xstep. */
    const float *xj[DW_PX];
    DW_UNROLL
    for (int j = 0; j < np; ++j)
        xj[j] = x + c + j * xstep;
    for (int64_t t = 0; t < taps; ++t) {
        const int64_t off = xoff[t];
        const vf wv = dw_load(w + woff[t], part, lanes);
        DW_UNROLL
        for (int j = 0; j < np; ++j)
            acc[j] = vf_fmadd(dw_load(xj[j] + off, part, lanes), wv, acc[j]);
    }
    DW_UNROLL
    for (int j = 0; j < np; ++j)
        dw_store(out + j * ostep + c, acc[j], part, lanes);
}

/* ---- sliding kernel rows ------------------------------------------------
 * When the taps come in kernel rows of kw sources one column apart (see
 * cnnc_dw_run.row_taps), a tile of DW_PX pixels needs only
 * (DW_PX - 1) * S + kw source vectors per kernel row, each loaded once and
 * fed to every (pixel, tap) that reads it: a third of the loads of
 * gather_tile for 3x3 at stride 1. Edge tiles skip the source columns
 * outside the image, so one tile list covers a whole row, borders
 * included; a last partial tile is shifted back to overlap its neighbour
 * (recomputing identical values) or, on rows narrower than a tile, stores
 * only the row's pixels. Two channel vectors per tile where registers
 * allow: each accumulator receives kw dependent FMAs per kernel row, so 8
 * of them would leave the FMA units waiting. */
DW_INLINE void slide_tile(const int kw, const int S, const int ncv, const int part, const int edge, int64_t lanes,
                          const struct cnnc_dw_run *r, int64_t j0, int64_t nstore, int64_t c, int64_t xo,
                          float *out)
{
    const int ni = (DW_PX - 1) * S + kw;
    const int64_t taps = r->taps, pix = r->pix, ostep = r->ostep;
    const int64_t col = r->col + j0 * S, src_w = r->src_w;
    const int64_t *xoff = r->xoff, *woff = r->woff;
    const float *w = r->w + c;
    vf acc[2][DW_PX];
    DW_UNROLL
    for (int v = 0; v < ncv; ++v) {
        const vf init = r->bias ? dw_load(r->bias + c + v * VW, part, lanes) : vf_zero();
        DW_UNROLL
        for (int j = 0; j < DW_PX; ++j)
            acc[v][j] = init;
    }
    for (int64_t t = 0; t < taps; t += kw) {
        /* Offset of source index 0; the address of an index outside the
         * image is never formed. */
        const int64_t base = xoff[t] + xo + j0 * S * pix + c;
        vf wv[2][7];
        DW_UNROLL
        for (int v = 0; v < ncv; ++v)
            DW_UNROLL
            for (int k = 0; k < kw; ++k)
                wv[v][k] = dw_load(w + woff[t + k] + v * VW, part, lanes);
        DW_UNROLL
        for (int i = 0; i < ni; ++i) {
            if (edge && (col + i < 0 || col + i >= src_w))
                continue;
            DW_UNROLL
            for (int v = 0; v < ncv; ++v) {
                const vf xv = dw_keep(dw_load(r->x + base + i * pix + v * VW, part, lanes));
                DW_UNROLL
                for (int k = 0; k < kw; ++k)
                    if (i - k >= 0 && (i - k) % S == 0 && (i - k) / S < DW_PX)
                        acc[v][(i - k) / S] = vf_fmadd(xv, wv[v][k], acc[v][(i - k) / S]);
            }
        }
    }
    const struct cnnc_gemm_epilogue *act = r->stage && !r->stage->residual && r->stage->activate ? r->stage : NULL;
    if (act) {
        /* The output stage's own rule (gemm_epilogue_template.h), in registers. */
        const vf slope = vf_set1(act->slope), cap = vf_set1(act->max_value);
        const int plain = act->slope == 0.0f;
        DW_UNROLL
        for (int v = 0; v < ncv; ++v)
            DW_UNROLL
            for (int j = 0; j < DW_PX; ++j)
                acc[v][j] = epilogue_vector(acc[v][j], NULL, NULL, 0, lanes, !part, 0, 0, 1, plain, slope, cap);
    }
    DW_UNROLL
    for (int v = 0; v < ncv; ++v)
        DW_UNROLL
        for (int j = 0; j < DW_PX; ++j)
            if (!edge || j < nstore)
                dw_store(out + (j0 + j) * ostep + c + v * VW, acc[v][j], part, lanes);
}

/* Two vectors per tile need 16 accumulators and 2 kw weights in registers. */
#define DW_SLIDE_PAIRS(kw) (VW == 16 && (kw) <= 5)

DW_INLINE void slide_run(const int kw, const int S, const struct cnnc_dw_run *r)
{
    const int64_t count = r->count, channels = r->channels;
    for (int64_t j0 = 0;; j0 += DW_PX) {
        if (j0 + DW_PX > count)
            j0 = cnnc_max_i64(count - DW_PX, 0);
        const int64_t nstore = cnnc_min_i64(DW_PX, count - j0);
        const int64_t first = r->col + j0 * S, last = first + (DW_PX - 1) * S + kw - 1;
        /* Rows innermost: the source rows shared by consecutive output
         * rows are then still in L1, so each source line comes from L2
         * about once instead of once per kernel row. */
#define DW_ROWS(call)                                                           \
    for (int64_t q = 0; q < r->rows; ++q) {                                     \
        const int64_t xo = q * r->xrow;                                         \
        float *out = r->out + q * r->orow;                                      \
        call;                                                                   \
    }
        int64_t c = 0;
        if (first >= 0 && last < r->src_w && nstore == DW_PX) {
            if (DW_SLIDE_PAIRS(kw))
                for (; c + 2 * VW <= channels; c += 2 * VW)
                    DW_ROWS(slide_tile(kw, S, 2, 0, 0, VW, r, j0, nstore, c, xo, out));
            for (; c + VW <= channels; c += VW)
                DW_ROWS(slide_tile(kw, S, 1, 0, 0, VW, r, j0, nstore, c, xo, out));
            if (c < channels)
                DW_ROWS(slide_tile(kw, S, 1, 1, 0, channels - c, r, j0, nstore, c, xo, out));
        } else {
            if (DW_SLIDE_PAIRS(kw))
                for (; c + 2 * VW <= channels; c += 2 * VW)
                    DW_ROWS(slide_tile(kw, S, 2, 0, 1, VW, r, j0, nstore, c, xo, out));
            for (; c + VW <= channels; c += VW)
                DW_ROWS(slide_tile(kw, S, 1, 0, 1, VW, r, j0, nstore, c, xo, out));
            if (c < channels)
                DW_ROWS(slide_tile(kw, S, 1, 1, 1, channels - c, r, j0, nstore, c, xo, out));
        }
#undef DW_ROWS
        /* A residual is added in memory, to the tile just stored. */
        if (r->stage && r->stage->residual)
            for (int64_t q = 0; q < r->rows; ++q)
                gemm_epilogue_simd(r->stage, r->out + q * r->orow + j0 * r->ostep, r->ostep, nstore, channels,
                                   r->stage_row + q * r->stage_row_step + j0, r->stage_col);
        if (j0 + DW_PX >= count)
            break;
    }
}

/* The (kernel row width, stride) pairs with a sliding kernel. */
#define DW_SLIDE_SHAPES(X) X(2, 1) X(3, 1) X(5, 1) X(7, 1) X(3, 2) X(5, 2)

static int depthwise_slides(int64_t kw, int64_t stride)
{
#define DW_SLIDE_MATCH(k, s) if (kw == (k) && stride == (s)) return 1;
    DW_SLIDE_SHAPES(DW_SLIDE_MATCH)
#undef DW_SLIDE_MATCH
    return 0;
}

static void slide(const struct cnnc_dw_run *r)
{
#define DW_SLIDE_CALL(k, s)                                 \
    if (r->row_taps == (k) && r->stride == (s)) {           \
        slide_run(k, s, r);                                 \
        return;                                             \
    }
    DW_SLIDE_SHAPES(DW_SLIDE_CALL)
#undef DW_SLIDE_CALL
}

DW_INLINE void gather_pixels(const int np, const struct cnnc_dw_run *r, const float *x, float *out)
{
    int64_t c = 0;
    for (; c + VW <= r->channels; c += VW)
        gather_tile(np, 0, VW, r, x, out, c);
    if (c < r->channels)
        gather_tile(np, 1, r->channels - c, r, x, out, c);
}

static void gather(const struct cnnc_dw_run *r)
{
    const float *x = r->x;
    float *out = r->out;
    int64_t j = 0;
    for (; j + DW_PX <= r->count; j += DW_PX, x += DW_PX * r->xstep, out += DW_PX * r->ostep)
        gather_pixels(DW_PX, r, x, out);
#define DW_GATHER_REST(n) gather_pixels(n, r, x, out)
    switch (r->count - j) {
        DW_CASES_8(DW_GATHER_REST)
    default:
        break;
    }
#undef DW_GATHER_REST
}

/* ---- multiplier > 1 ------------------------------------------------------
 * Output channel vectors would need each input channel repeated M times
 * across lanes; these plain loops leave that to the compiler. */

static void forward_multiplier(const struct cnnc_dw_run *r)
{
    const int64_t c = r->channels, m = r->multiplier, co = c * m;
    for (int64_t j = 0; j < r->count; ++j) {
        float *restrict o = r->out + j * r->ostep;
        for (int64_t i = 0; i < co; ++i)
            o[i] = r->bias ? r->bias[i] : 0.0f;
        for (int64_t t = 0; t < r->taps; ++t) {
            const float *restrict xp = r->x + j * r->xstep + r->xoff[t];
            const float *restrict wp = r->w + r->woff[t];
            for (int64_t i = 0; i < c; ++i) {
                const float xv = xp[i];
                for (int64_t k = 0; k < m; ++k)
                    o[i * m + k] += xv * wp[i * m + k];
            }
        }
    }
}

static void backward_data_multiplier(const struct cnnc_dw_run *r)
{
    const int64_t c = r->channels, m = r->multiplier;
    for (int64_t j = 0; j < r->count; ++j) {
        float *restrict o = r->out + j * r->ostep;
        for (int64_t i = 0; i < c; ++i)
            o[i] = r->bias ? r->bias[i] : 0.0f;
        for (int64_t t = 0; t < r->taps; ++t) {
            const float *restrict dp = r->x + j * r->xstep + r->xoff[t];
            const float *restrict wp = r->w + r->woff[t];
            for (int64_t i = 0; i < c; ++i) {
                float s = 0.0f;
                for (int64_t k = 0; k < m; ++k)
                    s += dp[i * m + k] * wp[i * m + k];
                o[i] += s;
            }
        }
    }
}

static void weights_multiplier(const struct cnnc_dw_run *r)
{
    const int64_t c = r->channels, m = r->multiplier;
    for (int64_t j = 0; j < r->count; ++j) {
        const float *restrict dy = r->w + j * r->wstep;
        for (int64_t t = 0; t < r->taps; ++t) {
            const float *restrict xp = r->x + j * r->xstep + r->xoff[t];
            float *restrict o = r->out + r->woff[t];
            for (int64_t i = 0; i < c; ++i) {
                const float xv = xp[i];
                for (int64_t k = 0; k < m; ++k)
                    o[i * m + k] += xv * dy[i * m + k];
            }
        }
    }
}

static void depthwise_forward(const struct cnnc_dw_run *r)
{
    if (r->row_taps)
        slide(r);
    else if (r->multiplier == 1)
        gather(r);
    else
        forward_multiplier(r);
}

static void depthwise_backward_data(const struct cnnc_dw_run *r)
{
    if (r->row_taps)
        slide(r);
    else if (r->multiplier == 1)
        gather(r);
    else
        backward_data_multiplier(r);
}

/* ---- weight gradient, multiplier 1 -------------------------------------- */

DW_INLINE void weights_tile(const int nt, const int part, int64_t lanes, const struct cnnc_dw_run *r, int64_t t0,
                            int64_t c)
{
    const int64_t count = r->count, xstep = r->xstep, dystep = r->wstep;
    const float *dy = r->w + c;
    const float *x = r->x + c;
    int64_t xo[DW_TB];
    vf acc[DW_TB];
    DW_UNROLL
    for (int t = 0; t < nt; ++t) {
        xo[t] = r->xoff[t0 + t];
        acc[t] = vf_zero();
    }
    for (int64_t j = 0; j < count; ++j) {
        const vf g = dw_load(dy + j * dystep, part, lanes);
        const float *xj = x + j * xstep;
        DW_UNROLL
        for (int t = 0; t < nt; ++t)
            acc[t] = vf_fmadd(dw_load(xj + xo[t], part, lanes), g, acc[t]);
    }
    DW_UNROLL
    for (int t = 0; t < nt; ++t) {
        float *o = r->out + r->woff[t0 + t] + c;
        dw_store(o, vf_add(dw_load(o, part, lanes), acc[t]), part, lanes);
    }
}

/* Taps in near-equal chunks of at most DW_TB: 3x3 is one chunk of 9, 5x5
 * three of 9, 8, 8, never a lone tap paying a dy load per multiply-add. */
DW_INLINE void weights_vector(const int part, int64_t lanes, const struct cnnc_dw_run *r, int64_t c)
{
    int64_t chunks = (r->taps + DW_TB - 1) / DW_TB;
    for (int64_t t0 = 0; t0 < r->taps; --chunks) {
        const int64_t nt = (r->taps - t0 + chunks - 1) / chunks;
#define DW_WEIGHTS_TILE(n) weights_tile(n, part, lanes, r, t0, c)
        switch (nt) {
            DW_CASES_8(DW_WEIGHTS_TILE)
        default:
            DW_WEIGHTS_TILE(DW_TB);
            break;
        }
#undef DW_WEIGHTS_TILE
        t0 += nt;
    }
}

/* ---- weight gradient, sliding kernel rows -------------------------------
 * The transposed tile: DW_WB pixels of dy in registers, the sums of R
 * kernel rows (R * kw taps) in registers over the whole output row, and
 * each source vector loaded once per kernel row and multiplied into every
 * tap that reads it. Edge tiles skip the columns outside the image and the
 * pixels past the row's end. */
#define DW_WB (VW == 16 ? 8 : 4)
/* Kernel rows per group: R * kw sums, DW_WB dy and one source vector fit
 * the 16 registers of AVX2 as well as the 32 of AVX-512. */
#define DW_WROWS(kw) ((kw) == 2 ? 4 : (kw) == 3 ? 3 : (kw) == 5 ? 2 : 1)

DW_INLINE void wslide_tile(const int kw, const int S, const int R, const int part, const int edge, int64_t lanes,
                           const struct cnnc_dw_run *r, int64_t t0, int64_t j0, int64_t nvalid, int64_t c,
                           int64_t q, vf acc[4][7])
{
    const int ni = (DW_WB - 1) * S + kw;
    const int64_t pix = r->pix, col = r->col + j0 * S, src_w = r->src_w;
    vf g[DW_WB];
    DW_UNROLL
    for (int j = 0; j < DW_WB; ++j)
        g[j] = !edge || j < nvalid ? dw_load(r->w + q * r->orow + (j0 + j) * r->wstep + c, part, lanes) : vf_zero();
    DW_UNROLL
    for (int u = 0; u < R; ++u) {
        const int64_t base = r->xoff[t0 + u * kw] + q * r->xrow + j0 * S * pix + c;
        DW_UNROLL
        for (int i = 0; i < ni; ++i) {
            if (edge && (col + i < 0 || col + i >= src_w))
                continue;
            const vf xv = dw_keep(dw_load(r->x + base + i * pix, part, lanes));
            DW_UNROLL
            for (int k = 0; k < kw; ++k)
                if (i - k >= 0 && (i - k) % S == 0 && (i - k) / S < DW_WB && (!edge || (i - k) / S < nvalid))
                    acc[u][k] = vf_fmadd(xv, g[(i - k) / S], acc[u][k]);
        }
    }
}

DW_INLINE void wslide_group(const int kw, const int S, const int R, const int part, int64_t lanes,
                            const struct cnnc_dw_run *r, int64_t t0, int64_t c)
{
    vf acc[4][7];
    DW_UNROLL
    for (int q = 0; q < R; ++q)
        DW_UNROLL
        for (int k = 0; k < kw; ++k)
            acc[q][k] = vf_zero();
    for (int64_t j0 = 0; j0 < r->count; j0 += DW_WB) {
        const int64_t nvalid = cnnc_min_i64(DW_WB, r->count - j0);
        const int64_t first = r->col + j0 * S, last = first + (DW_WB - 1) * S + kw - 1;
        /* Rows innermost, as in slide_run. */
        for (int64_t q = 0; q < r->rows; ++q) {
            if (nvalid == DW_WB && first >= 0 && last < r->src_w)
                wslide_tile(kw, S, R, part, 0, lanes, r, t0, j0, nvalid, c, q, acc);
            else
                wslide_tile(kw, S, R, part, 1, lanes, r, t0, j0, nvalid, c, q, acc);
        }
    }
    DW_UNROLL
    for (int q = 0; q < R; ++q)
        DW_UNROLL
        for (int k = 0; k < kw; ++k) {
            float *o = r->out + r->woff[t0 + q * kw + k] + c;
            dw_store(o, vf_add(dw_load(o, part, lanes), acc[q][k]), part, lanes);
        }
}

DW_INLINE void wslide_vector(const int kw, const int S, const int part, int64_t lanes, const struct cnnc_dw_run *r,
                             int64_t c)
{
    const int64_t rows = r->taps / kw;
    for (int64_t q0 = 0; q0 < rows;) {
        const int64_t n = cnnc_min_i64(DW_WROWS(kw), rows - q0);
        if (n >= DW_WROWS(kw))
            wslide_group(kw, S, DW_WROWS(kw), part, lanes, r, q0 * kw, c);
        else if (n == 3)
            wslide_group(kw, S, 3, part, lanes, r, q0 * kw, c);
        else if (n == 2)
            wslide_group(kw, S, 2, part, lanes, r, q0 * kw, c);
        else
            wslide_group(kw, S, 1, part, lanes, r, q0 * kw, c);
        q0 += n;
    }
}

DW_INLINE void wslide_run(const int kw, const int S, const struct cnnc_dw_run *r)
{
    int64_t c = 0;
    for (; c + VW <= r->channels; c += VW)
        wslide_vector(kw, S, 0, VW, r, c);
    if (c < r->channels)
        wslide_vector(kw, S, 1, r->channels - c, r, c);
}

static void depthwise_backward_weights(const struct cnnc_dw_run *r)
{
    if (r->row_taps) {
#define DW_WSLIDE_CALL(k, s)                                \
        if (r->row_taps == (k) && r->stride == (s)) {       \
            wslide_run(k, s, r);                            \
            return;                                         \
        }
        DW_SLIDE_SHAPES(DW_WSLIDE_CALL)
#undef DW_WSLIDE_CALL
    }
    if (r->multiplier != 1) {
        weights_multiplier(r);
        return;
    }
    int64_t c = 0;
    for (; c + VW <= r->channels; c += VW)
        weights_vector(0, VW, r, c);
    if (c < r->channels)
        weights_vector(1, r->channels - c, r, c);
}

DW_INLINE void sum_vector(const int part, int64_t lanes, int64_t count, const float *x, int64_t xstep, float *sum)
{
    vf acc = vf_zero();
    for (int64_t j = 0; j < count; ++j)
        acc = vf_add(acc, dw_load(x + j * xstep, part, lanes));
    dw_store(sum, vf_add(dw_load(sum, part, lanes), acc), part, lanes);
}

static void depthwise_channel_sum(int64_t count, int64_t channels, const float *x, int64_t xstep, float *sum)
{
    int64_t c = 0;
    for (; c + VW <= channels; c += VW)
        sum_vector(0, VW, count, x + c, xstep, sum + c);
    if (c < channels)
        sum_vector(1, channels - c, count, x + c, xstep, sum + c);
}

#define CNNC_DEPTHWISE_TEMPLATE_MEMBERS                    \
    .forward = depthwise_forward,                          \
    .backward_data = depthwise_backward_data,              \
    .backward_weights = depthwise_backward_weights,        \
    .channel_sum = depthwise_channel_sum,                  \
    .slides = depthwise_slides

#endif
