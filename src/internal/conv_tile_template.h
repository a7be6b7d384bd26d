/* Register-tiled convolution micro-kernels for convolutions with few input
 * channels, compiled once per ISA by src/kernels/<isa>/conv_<isa>.c (which
 * defines CNNC_SIMD first).
 *
 * - forward_tile: one MR x NR output tile over ALL the taps of a kernel,
 *   reading the input in place (like the GEMM micro-kernel's unpacked A, but
 *   walking the kernel rows and columns itself). With one GEMM call per
 *   kernel row, a 3x3 kernel on one channel gives K = 3 per call and the
 *   load and store of the C tile costs more than the multiply-adds; here the
 *   tile stays in registers for all KH*KW*Cin steps and starts from the
 *   bias, so C is written once and never read. MR x NR is the GEMM
 *   micro-kernel's, so that the weights use the GEMM's packed B panels.
 * - weights_tile: dW = col^T * dY with few rows (KH*KW*Cin/g): a block of
 *   dW rows times a few vectors of Cout stays in registers while the pixels
 *   stream by, each pixel's dY vectors loaded once per block, the col
 *   element broadcast; the bias gradient (column sums of dY) rides along.
 *   A GEMM would pad the few rows up to its MR and pack all of dY. */
#ifndef CNNC_CONV_TILE_TEMPLATE_H
#define CNNC_CONV_TILE_TEMPLATE_H
#include "conv_kernels.h"
#include "simd.h"

#define CT_INLINE static inline __attribute__((always_inline))

/* Tile shapes: FT_MR x FT_NV vectors match the GEMM micro-kernel of the
 * same ISA (src/kernels/<isa>/gemm_<isa>.c); WT_MB x WT_NV vectors leave
 * room for the bias-gradient sums, the dY vectors and one broadcast. */
#if CNNC_SIMD == 2
#define FT_MR 14
#define FT_NV 2
#define WT_MB 12
#define WT_NV 2
#elif CNNC_SIMD == 1
#define FT_MR 6
#define FT_NV 2
#define WT_MB 5
#define WT_NV 2
#else
#define FT_MR 4
#define FT_NV 8
#define WT_MB 4
#define WT_NV 2
#endif
#define FT_NR (FT_NV * VW)
/* Bases of the rows of A, each covering three rows as base + {0, 1, 2} *
 * rs: x86 addressing (base + index * scale) then reaches every row without
 * a register per row. */
#define FT_BASES ((FT_MR + 2) / 3)

/* Lanes of vector v holding some of the first n columns (0..VW). */
CT_INLINE int64_t ct_lanes(int64_t n, int v) { return cnnc_max_i64(0, cnnc_min_i64(VW, n - (int64_t)v * VW)); }

/* Every accumulator of the first `rows` rows starts at the bias (or 0):
 * vectors v < nv of it, lanes past column n zero. */
CT_INLINE void ct_start_rows(vf acc[FT_MR][FT_NV], const float *bias, int64_t n, const int rows, const int nv)
{
#pragma GCC unroll 8
    for (int v = 0; v < FT_NV; ++v) {
        const vf b0 = v < nv && bias ? vf_load_part(bias + v * VW, ct_lanes(n, v)) : vf_zero();
#pragma GCC unroll 14
        for (int i = 0; i < rows; ++i)
            acc[i][v] = b0;
    }
}

/* The first n columns (within nv vectors) of one tile row to dst. */
CT_INLINE void ct_store_row(float *dst, const vf acc_row[FT_NV], int64_t n, const int nv)
{
#pragma GCC unroll 8
    for (int v = 0; v < FT_NV; ++v) {
        if (v >= nv || v * VW >= n)
            break;
        if ((v + 1) * VW <= n)
            vf_store(dst + v * VW, acc_row[v]);
        else
            vf_store_part(dst + v * VW, acc_row[v], n - v * VW);
    }
}

/* The first `rows` (>= m) rows of the tile, `nv` vectors wide. */
CT_INLINE void forward_tile_rows(const struct cnnc_conv_tile *t, const float *a, const float *bp,
                                 const float *bias, float *c, int64_t m, int64_t n, const int rows, const int nv)
{
    vf acc[FT_MR][FT_NV];
    ct_start_rows(acc, bias, n, rows, nv);
    const int64_t rs = t->rs;
    for (int64_t kh = 0; kh < t->nkh; ++kh) {
        for (int64_t kw = 0; kw < t->nkw; ++kw) {
            const float *base[FT_BASES];
#pragma GCC unroll 5
            for (int s = 0; s < (rows + 2) / 3; ++s)
                base[s] = a + kh * t->hs + kw * t->ws + 3 * s * rs;
            for (int64_t q = 0; q < t->cw; ++q, bp += FT_NR) {
                vf b[FT_NV];
#pragma GCC unroll 8
                for (int v = 0; v < FT_NV; ++v)
                    if (v < nv)
                        b[v] = vf_load(bp + v * VW);
#pragma GCC unroll 14
                for (int i = 0; i < rows; ++i) {
                    const vf ai = vf_set1(base[i / 3][(i % 3) * rs]);
#pragma GCC unroll 8
                    for (int v = 0; v < FT_NV; ++v)
                        if (v < nv)
                            acc[i][v] = vf_fmadd(ai, b[v], acc[i][v]);
                }
#pragma GCC unroll 5
                for (int s = 0; s < (rows + 2) / 3; ++s)
                    base[s] += 1;
            }
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < rows; ++i) {
        if (i >= m)
            break;
        ct_store_row(c + i * t->ldc, acc[i], n, nv);
    }
}

#define FT_ROWS_CASE(r_)                                          \
    case r_:                                                      \
        forward_tile_rows(t, a, bp, bias, c, m, n, r_, nv);       \
        return;

/* Exactly m rows: a row's last segment (26 = 14 + 12, 32 = 14 + 14 + 4) and
 * rows narrower than a tile compute only the rows they keep. */
CT_INLINE void forward_tile_nv(const struct cnnc_conv_tile *t, const float *a, const float *bp,
                               const float *bias, float *c, int64_t m, int64_t n, const int nv)
{
    switch (m) {
        FT_ROWS_CASE(1)
        FT_ROWS_CASE(2)
        FT_ROWS_CASE(3)
#if FT_MR > 4
        FT_ROWS_CASE(4)
        FT_ROWS_CASE(5)
#if FT_MR > 6
        FT_ROWS_CASE(6)
        FT_ROWS_CASE(7)
        FT_ROWS_CASE(8)
        FT_ROWS_CASE(9)
        FT_ROWS_CASE(10)
        FT_ROWS_CASE(11)
        FT_ROWS_CASE(12)
        FT_ROWS_CASE(13)
#endif
#endif
    default:
        forward_tile_rows(t, a, bp, bias, c, m, n, FT_MR, nv);
    }
}

static void forward_tile(const struct cnnc_conv_tile *t, const float *a, const float *bp, const float *bias,
                         float *c, int64_t m, int64_t n)
{
#if FT_NV == 2
    if (n <= VW) {
        forward_tile_nv(t, a, bp, bias, c, m, n, 1);
        return;
    }
#endif
    forward_tile_nv(t, a, bp, bias, c, m, n, FT_NV);
}


/* The indirect tile needs a register per row pointer: with more rows than
 * about half the general registers (AVX-512's 14) they would spill. */
#if FT_MR <= 6
/* The first `rows` (>= m) rows of an indirect tile, `nv` vectors wide:
 * the direct tile's loops with each row's kernel-row run and output row
 * taken from the tables. */
CT_INLINE void indirect_tile_rows(const struct cnnc_conv_tile *t, const float *const *a, const float *bp,
                                  const float *bias, float *const *c, int64_t col, int64_t m, int64_t n,
                                  const int rows, const int nv)
{
    vf acc[FT_MR][FT_NV];
    ct_start_rows(acc, bias, n, rows, nv);
    for (int64_t kh = 0; kh < t->nkh; ++kh, a += t->rs) {
        const float *run[FT_MR];
#pragma GCC unroll 6
        for (int i = 0; i < rows; ++i)
            run[i] = a[i];
        for (int64_t q = 0; q < t->cw; ++q, bp += FT_NR) {
            vf b[FT_NV];
#pragma GCC unroll 8
            for (int v = 0; v < nv; ++v)
                b[v] = vf_load(bp + v * VW);
#pragma GCC unroll 6
            for (int i = 0; i < rows; ++i) {
                const vf ai = vf_set1(run[i][q]);
#pragma GCC unroll 8
                for (int v = 0; v < nv; ++v)
                    acc[i][v] = vf_fmadd(ai, b[v], acc[i][v]);
            }
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < rows; ++i) {
        if (i >= m)
            break;
        ct_store_row(c[i] + col, acc[i], n, nv);
    }
}

#define FT_INDIRECT_CASE(r_)                                                 \
    case r_:                                                                 \
        indirect_tile_rows(t, a, bp, bias, c, col, m, n, r_, nv);            \
        return;

/* m (<= FT_MR) rows and nv vectors as constants. */
CT_INLINE void indirect_tile_nv(const struct cnnc_conv_tile *t, const float *const *a, const float *bp,
                                const float *bias, float *const *c, int64_t col, int64_t m, int64_t n, const int nv)
{
    switch (m) {
        FT_INDIRECT_CASE(1)
        FT_INDIRECT_CASE(2)
        FT_INDIRECT_CASE(3)
#if FT_MR > 4
        FT_INDIRECT_CASE(4)
        FT_INDIRECT_CASE(5)
#endif
    default:
        indirect_tile_rows(t, a, bp, bias, c, col, m, n, FT_MR, nv);
    }
}

static void forward_tile_indirect(const struct cnnc_conv_tile *t, const float *const *a, const float *bp,
                                  const float *bias, float *const *c, int64_t col, int64_t m, int64_t n)
{
    if (FT_NV == 2 && n <= VW)
        indirect_tile_nv(t, a, bp, bias, c, col, m, n, 1);
    else
        indirect_tile_nv(t, a, bp, bias, c, col, m, n, FT_NV);
}
#define FT_INDIRECT_ENTRY forward_tile_indirect
#else
#define FT_INDIRECT_ENTRY NULL
#endif

/* Rows [0, mb) x vectors [0, nv) of the weight gradient; the last vector
 * holds `last` (1..VW) columns, a and b point at the block's first row and
 * column. */
CT_INLINE void weights_block(const struct cnnc_conv_wtile *t, const float *a, const int64_t *off, const float *b,
                             float *dw, int64_t ldw, float *db, int64_t last, const int mb, const int nv,
                             const int with_db)
{
    int64_t o[WT_MB];
    vf acc[WT_MB][WT_NV], sum[WT_NV];
#pragma GCC unroll 12
    for (int i = 0; i < WT_MB; ++i)
        o[i] = i < mb ? off[i] : 0;
#pragma GCC unroll 4
    for (int v = 0; v < WT_NV; ++v) {
        sum[v] = vf_zero();
#pragma GCC unroll 12
        for (int i = 0; i < WT_MB; ++i)
            acc[i][v] = vf_zero();
    }
    for (int64_t r = 0; r < t->rows; ++r) {
        const float *ap = a + r * t->ars, *bp = b + r * t->brs;
        for (int64_t p = 0; p < t->cols; ++p, ap += t->rs, bp += t->ldb) {
            vf bv[WT_NV];
#pragma GCC unroll 4
            for (int v = 0; v < WT_NV; ++v) {
                if (v + 1 < nv)
                    bv[v] = vf_load(bp + v * VW);
                else if (v + 1 == nv)
                    bv[v] = vf_load_part(bp + v * VW, last);
                if (with_db && v < nv)
                    sum[v] = vf_add(sum[v], bv[v]);
            }
#pragma GCC unroll 12
            for (int i = 0; i < WT_MB; ++i) {
                if (i < mb) {
                    const vf ai = vf_set1(ap[o[i]]);
#pragma GCC unroll 4
                    for (int v = 0; v < WT_NV; ++v)
                        if (v < nv)
                            acc[i][v] = vf_fmadd(ai, bv[v], acc[i][v]);
                }
            }
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < WT_MB; ++i) {
        if (i >= mb)
            break;
#pragma GCC unroll 4
        for (int v = 0; v < WT_NV; ++v) {
            if (v >= nv)
                break;
            const int64_t cols = v + 1 < nv ? VW : last;
            float *d = dw + i * ldw + v * VW;
            vf_store_part(d, vf_add(vf_load_part(d, cols), acc[i][v]), cols);
        }
    }
    if (with_db) {
#pragma GCC unroll 4
        for (int v = 0; v < WT_NV; ++v) {
            if (v >= nv)
                break;
            const int64_t cols = v + 1 < nv ? VW : last;
            vf_store_part(db + v * VW, vf_add(vf_load_part(db + v * VW, cols), sum[v]), cols);
        }
    }
}

#define WT_CASE_NV(mb_, nv_)                                                       \
    case nv_:                                                                      \
        if (db)                                                                    \
            weights_block(t, a, off, b, dw, ldw, db, last, mb_, nv_, 1);           \
        else                                                                       \
            weights_block(t, a, off, b, dw, ldw, NULL, last, mb_, nv_, 0);         \
        return;

#if WT_NV != 2
#error "the dispatch below expects WT_NV == 2"
#endif
#define WT_CASE_MB(mb_)                 \
    case mb_:                           \
        switch (nv) {                   \
            WT_CASE_NV(mb_, 1)          \
        default:                        \
            WT_CASE_NV(mb_, 2)          \
        }

/* One block of at most WT_MB rows and WT_NV vectors, its sizes made
 * compile-time constants so that the accumulators live in registers. */
static void weights_dispatch(const struct cnnc_conv_wtile *t, const float *a, const int64_t *off, const float *b,
                             int64_t mb, int64_t nv, float *dw, int64_t ldw, float *db, int64_t last)
{
    switch (mb) {
        WT_CASE_MB(1)
        WT_CASE_MB(2)
        WT_CASE_MB(3)
#if WT_MB > 4
        WT_CASE_MB(4)
#if WT_MB > 5
        WT_CASE_MB(5)
        WT_CASE_MB(6)
        WT_CASE_MB(7)
        WT_CASE_MB(8)
        WT_CASE_MB(9)
        WT_CASE_MB(10)
        WT_CASE_MB(11)
#endif
#endif
    default:
        switch (nv) {
            WT_CASE_NV(WT_MB, 1)
        default:
            WT_CASE_NV(WT_MB, 2)
        }
    }
}

static void weights_tile(const struct cnnc_conv_wtile *t, int64_t m, int64_t n, float *dw, int64_t ldw, float *db)
{
    /* Row blocks of near-equal size: 9 rows are one block of 9, not 5 + 4
     * or 12 with a quarter of it wasted. */
    const int64_t blocks = cnnc_ceil_div(m, WT_MB), width = WT_NV * VW;
    for (int64_t j0 = 0; j0 < n; j0 += width) {
        const int64_t cols = cnnc_min_i64(width, n - j0), nv = cnnc_ceil_div(cols, VW);
        const int64_t last = cols - (nv - 1) * VW;
        int64_t r0 = 0;
        for (int64_t q = 0; q < blocks; ++q) {
            const int64_t r1 = m * (q + 1) / blocks;
            weights_dispatch(t, t->a, t->off + r0, t->b + j0, r1 - r0, nv, dw + r0 * ldw + j0, ldw,
                             q == 0 && db ? db + j0 : NULL, last);
            r0 = r1;
        }
    }
}

#define CNNC_CONV_TILE_MEMBERS              \
    .tile_mr = FT_MR, .tile_nr = FT_NR,     \
    .forward_tile = forward_tile,           \
    .forward_tile_indirect = FT_INDIRECT_ENTRY, \
    .weights_tile = weights_tile

#endif
