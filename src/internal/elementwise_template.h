/* The portable part of the elementwise micro-kernels, compiled once per ISA
 * by src/kernels/<isa>/elementwise_<isa>.c (which defines CNNC_SIMD first and
 * adds the dropout kernels, whose integer arithmetic is ISA specific). */
#ifndef CNNC_ELEMENTWISE_TEMPLATE_H
#define CNNC_ELEMENTWISE_TEMPLATE_H
#include "elementwise_kernels.h"
#include "simd.h"

#define CNNC_INLINE static inline __attribute__((always_inline))
#define EW_TILE 4       /* vectors per column tile of the reductions */
#define EW_BLOCK 64     /* rows summed in float before flushing into double */

static void ew_add(int64_t n, const float *a, const float *b, float *y)
{
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        vf_store(y + i, vf_add(vf_load(a + i), vf_load(b + i)));
    if (i < n)
        vf_store_part(y + i, vf_add(vf_load_part(a + i, n - i), vf_load_part(b + i, n - i)), n - i);
}

/* max(0, a + b): the ReLU kernel's operand order (NaN stays NaN, max(0, -0)
 * is -0), so the fused pass has the bits of the sum followed by the ReLU. */
static void ew_add_relu(int64_t n, const float *a, const float *b, float *y)
{
    const vf zero = vf_zero();
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        vf_store(y + i, vf_max(zero, vf_add(vf_load(a + i), vf_load(b + i))));
    if (i < n)
        vf_store_part(y + i, vf_max(zero, vf_add(vf_load_part(a + i, n - i), vf_load_part(b + i, n - i))), n - i);
}

static void ew_mul(int64_t n, const float *a, const float *b, float *y)
{
    int64_t i = 0;
    for (; i + VW <= n; i += VW)
        vf_store(y + i, vf_mul(vf_load(a + i), vf_load(b + i)));
    if (i < n)
        vf_store_part(y + i, vf_mul(vf_load_part(a + i, n - i), vf_load_part(b + i, n - i)), n - i);
}

CNNC_INLINE vf normalize(vf x, vf center, vf scale, vf shift, int relu)
{
    vf y = vf_fmadd(vf_sub(x, center), scale, shift);
    /* The ReLU kernel's operand order: the same bits as normalizing, then a
     * separate ReLU (NaN stays NaN, -0 stays -0). */
    return relu ? vf_max(vf_zero(), y) : y;
}

CNNC_INLINE void scale_shift_mode(int64_t rows, int64_t c, const float *x, const float *center,
                                  const float *scale, const float *shift, float *y, int relu)
{
    for (int64_t i = 0; i < rows; ++i, x += c, y += c) {
        int64_t j = 0;
        for (; j + VW <= c; j += VW)
            vf_store(y + j, normalize(vf_load(x + j), vf_load(center + j), vf_load(scale + j), vf_load(shift + j),
                                      relu));
        if (j < c) {
            int64_t r = c - j;
            vf_store_part(y + j, normalize(vf_load_part(x + j, r), vf_load_part(center + j, r),
                                           vf_load_part(scale + j, r), vf_load_part(shift + j, r), relu), r);
        }
    }
}

static void ew_scale_shift_rows(int64_t rows, int64_t c, const float *x, const float *center,
                                const float *scale, const float *shift, int relu, float *y)
{
    if (!scale) {
        for (int64_t i = 0; i < rows; ++i, x += c, y += c) {
            int64_t j = 0;
            for (; j + VW <= c; j += VW)
                vf_store(y + j, vf_add(vf_load(x + j), vf_load(shift + j)));
            if (j < c)
                vf_store_part(y + j, vf_add(vf_load_part(x + j, c - j), vf_load_part(shift + j, c - j)), c - j);
        }
    } else if (relu) {
        scale_shift_mode(rows, c, x, center, scale, shift, y, 1);
    } else {
        scale_shift_mode(rows, c, x, center, scale, shift, y, 0);
    }
}

CNNC_INLINE vf affine2(vf u, vf v, vf k, vf a, vf b, vf d) { return vf_fmadd(a, u, vf_fmadd(b, vf_sub(v, k), d)); }

static void ew_affine2_rows(int64_t rows, int64_t c, const float *u, const float *v, const float *k,
                            const float *a, const float *b, const float *d, float *y)
{
    for (int64_t i = 0; i < rows; ++i, u += c, v += c, y += c) {
        int64_t j = 0;
        for (; j + VW <= c; j += VW)
            vf_store(y + j, affine2(vf_load(u + j), vf_load(v + j), vf_load(k + j), vf_load(a + j),
                                    vf_load(b + j), vf_load(d + j)));
        if (j < c) {
            int64_t r = c - j;
            vf_store_part(y + j, affine2(vf_load_part(u + j, r), vf_load_part(v + j, r), vf_load_part(k + j, r),
                                         vf_load_part(a + j, r), vf_load_part(b + j, r), vf_load_part(d + j, r)),
                          r);
        }
    }
}

static void ew_broadcast_rows(int64_t rows, int64_t ld, int64_t c, const float *v, float *y)
{
    for (int64_t i = 0; i < rows; ++i, y += ld) {
        int64_t j = 0;
        for (; j + VW <= c; j += VW)
            vf_store(y + j, vf_load(v + j));
        if (j < c)
            vf_store_part(y + j, vf_load_part(v + j, c - j), c - j);
    }
}

/* Loads vector t of a tile of `full` full vectors and a final one of `rem`
 * lanes (rem == 0: none). */
CNNC_INLINE vf tile_load(const float *p, int t, int full, int64_t rem)
{
    return t < full ? vf_load(p + t * VW) : vf_load_part(p + t * VW, rem);
}

CNNC_INLINE void flush_block(const vf *s, int nvec, int64_t width, double *acc)
{
    float tmp[EW_TILE * VW];
    for (int t = 0; t < nvec; ++t)
        vf_store(tmp + t * VW, s[t]);
    for (int64_t u = 0; u < width; ++u)
        acc[u] += tmp[u];
}

/* The column reductions walk the rows block by block and, inside a block,
 * tile by tile, so that memory is read sequentially; each tile's float sums
 * over one block are flushed into the double accumulators. */
CNNC_INLINE void column_sum_tile(int64_t rows, int64_t ld, const float *x, double *acc, int full, int64_t rem)
{
    int nvec = full + (rem > 0);
    vf s[EW_TILE];
    for (int t = 0; t < nvec; ++t)
        s[t] = vf_zero();
    for (int64_t i = 0; i < rows; ++i)
        for (int t = 0; t < nvec; ++t)
            s[t] = vf_add(s[t], tile_load(x + i * ld, t, full, rem));
    flush_block(s, nvec, full * VW + rem, acc);
}

static void ew_column_sum(int64_t rows, int64_t ld, int64_t ncols, const float *x, double *acc)
{
    for (int64_t r0 = 0; r0 < rows; r0 += EW_BLOCK) {
        int64_t n = cnnc_min_i64(EW_BLOCK, rows - r0);
        const float *xb = x + r0 * ld;
        int64_t j = 0;
        for (; j + EW_TILE * VW <= ncols; j += EW_TILE * VW)
            column_sum_tile(n, ld, xb + j, acc + j, EW_TILE, 0);
        if (j < ncols)
            VF_TILE_REST(ncols - j, column_sum_tile(n, ld, xb + j, acc + j, FULL, REM));
    }
}

/* mode 0: d = a - k, sums d and d * d. mode 1: w = b, sums w and w * d.
 * mode 2: as 1 with w = 0 where m <= 0 (the gradient through a ReLU whose
 * output is m). mode 3: as 2, and w stored to wout (stride ld). */
CNNC_INLINE void column_moments_tile(int64_t rows, int64_t ld, const float *a, const float *b, const float *m,
                                     const float *k, float *wout, double *acc0, double *acc1, int mode,
                                     int full, int64_t rem)
{
    int nvec = full + (rem > 0);
    vf kv[EW_TILE], s0[EW_TILE], s1[EW_TILE];
    const vf zero = vf_zero();
    for (int t = 0; t < nvec; ++t) {
        kv[t] = tile_load(k, t, full, rem);
        s0[t] = s1[t] = zero;
    }
    for (int64_t i = 0; i < rows; ++i) {
        for (int t = 0; t < nvec; ++t) {
            vf d = vf_sub(tile_load(a + i * ld, t, full, rem), kv[t]);
            if (mode == 0) {
                s0[t] = vf_add(s0[t], d);
                s1[t] = vf_fmadd(d, d, s1[t]);
            } else {
                vf w = tile_load(b + i * ld, t, full, rem);
                if (mode >= 2)
                    w = vf_select(vf_gt(tile_load(m + i * ld, t, full, rem), zero), vf_keep(w), zero);
                if (mode == 3) {
                    if (t < full)
                        vf_store(wout + i * ld + t * VW, w);
                    else
                        vf_store_part(wout + i * ld + t * VW, w, rem);
                }
                s0[t] = vf_add(s0[t], w);
                s1[t] = vf_fmadd(w, d, s1[t]);
            }
        }
    }
    flush_block(s0, nvec, full * VW + rem, acc0);
    flush_block(s1, nvec, full * VW + rem, acc1);
}

CNNC_INLINE void column_moments_mode(int64_t rows, int64_t ld, int64_t ncols, const float *a, const float *b,
                                     const float *m, const float *k, float *wout, double *acc0, double *acc1,
                                     int mode)
{
    for (int64_t r0 = 0; r0 < rows; r0 += EW_BLOCK) {
        int64_t n = cnnc_min_i64(EW_BLOCK, rows - r0);
        const float *ab = a + r0 * ld, *bb = b ? b + r0 * ld : NULL, *mb = m ? m + r0 * ld : NULL;
        float *wb = wout ? wout + r0 * ld : NULL;
        int64_t j = 0;
        for (; j + EW_TILE * VW <= ncols; j += EW_TILE * VW)
            column_moments_tile(n, ld, ab + j, bb ? bb + j : NULL, mb ? mb + j : NULL, k + j, wb ? wb + j : NULL,
                                acc0 + j, acc1 + j, mode, EW_TILE, 0);
        if (j < ncols)
            VF_TILE_REST(ncols - j, column_moments_tile(n, ld, ab + j, bb ? bb + j : NULL, mb ? mb + j : NULL,
                                                        k + j, wb ? wb + j : NULL, acc0 + j, acc1 + j, mode,
                                                        FULL, REM));
    }
}

static void ew_column_moments(int64_t rows, int64_t ld, int64_t ncols, const float *a, const float *b,
                              const float *m, const float *k, float *wout, double *acc0, double *acc1)
{
    if (!b)
        column_moments_mode(rows, ld, ncols, a, NULL, NULL, k, NULL, acc0, acc1, 0);
    else if (!m)
        column_moments_mode(rows, ld, ncols, a, b, NULL, k, NULL, acc0, acc1, 1);
    else if (!wout)
        column_moments_mode(rows, ld, ncols, a, b, m, k, NULL, acc0, acc1, 2);
    else
        column_moments_mode(rows, ld, ncols, a, b, m, k, wout, acc0, acc1, 3);
}

CNNC_INLINE void column_max_tile(int64_t rows, int64_t ld, const float *x, float *y, int full, int64_t rem)
{
    int nvec = full + (rem > 0);
    vf m[EW_TILE];
    for (int t = 0; t < nvec; ++t)
        m[t] = tile_load(x, t, full, rem);
    for (int64_t i = 1; i < rows; ++i)
        for (int t = 0; t < nvec; ++t)
            m[t] = vf_max_nan(m[t], tile_load(x + i * ld, t, full, rem));
    for (int t = 0; t < full; ++t)
        vf_store(y + t * VW, m[t]);
    if (rem)
        vf_store_part(y + full * VW, m[full], rem);
}

static void ew_column_max(int64_t rows, int64_t ld, int64_t ncols, const float *x, float *y)
{
    int64_t j = 0;
    for (; j + EW_TILE * VW <= ncols; j += EW_TILE * VW)
        column_max_tile(rows, ld, x + j, y + j, EW_TILE, 0);
    if (j < ncols)
        VF_TILE_REST(ncols - j, column_max_tile(rows, ld, x + j, y + j, FULL, REM));
}

/* Row indices are tracked as floats: exact below 2^24 rows (the driver checks). */
CNNC_INLINE void column_max_backward_tile(int64_t rows, int64_t ld, const float *x, const float *dy,
                                          float *dx, int full, int64_t rem)
{
    int nvec = full + (rem > 0);
    vf m[EW_TILE], at[EW_TILE], g[EW_TILE];
    for (int t = 0; t < nvec; ++t) {
        m[t] = tile_load(x, t, full, rem);
        at[t] = vf_zero();
        g[t] = tile_load(dy, t, full, rem);
    }
    for (int64_t i = 1; i < rows; ++i) {
        vf row = vf_set1((float)i);
        for (int t = 0; t < nvec; ++t) {
            vf v = tile_load(x + i * ld, t, full, rem);
            vm better = vf_better(v, m[t]);
            m[t] = vf_select(better, v, m[t]);
            at[t] = vf_select(better, row, at[t]);
        }
    }
    const vf zero = vf_zero();
    for (int64_t i = 0; i < rows; ++i) {
        vf row = vf_set1((float)i);
        float *out = dx + i * ld;
        for (int t = 0; t < full; ++t)
            vf_store(out + t * VW, vf_select(vf_eq(at[t], row), g[t], zero));
        if (rem)
            vf_store_part(out + full * VW, vf_select(vf_eq(at[full], row), g[full], zero), rem);
    }
}

static void ew_column_max_backward(int64_t rows, int64_t ld, int64_t ncols, const float *x,
                                   const float *dy, float *dx)
{
    int64_t j = 0;
    for (; j + EW_TILE * VW <= ncols; j += EW_TILE * VW)
        column_max_backward_tile(rows, ld, x + j, dy + j, dx + j, EW_TILE, 0);
    if (j < ncols)
        VF_TILE_REST(ncols - j, column_max_backward_tile(rows, ld, x + j, dy + j, dx + j, FULL, REM));
}

#define CNNC_ELEMENTWISE_TEMPLATE_MEMBERS                 \
    .add = ew_add,                                        \
    .add_relu = ew_add_relu,                              \
    .mul = ew_mul,                                        \
    .scale_shift_rows = ew_scale_shift_rows,              \
    .affine2_rows = ew_affine2_rows,                      \
    .broadcast_rows = ew_broadcast_rows,                  \
    .column_sum = ew_column_sum,                          \
    .column_moments = ew_column_moments,                  \
    .column_max = ew_column_max,                          \
    .column_max_backward = ew_column_max_backward

#endif
