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

/* The accumulators of a tile's first `rows` rows, `nv` vectors wide, set
 * to the bias (or 0). */
#define FT_INIT(acc, bias, n, rows, nv)                                                              \
    do {                                                                                             \
        _Pragma("GCC unroll 8") for (int v_ = 0; v_ < FT_NV; ++v_)                                   \
        {                                                                                            \
            const vf b0_ = v_ < (nv) && (bias) ? vf_load_part((bias) + v_ * VW, ct_lanes(n, v_)) : vf_zero(); \
            _Pragma("GCC unroll 14") for (int i_ = 0; i_ < (rows); ++i_) (acc)[i_][v_] = b0_;        \
        }                                                                                            \
    } while (0)

/* acc += the products of cw columns of the first `rows` rows of A, row i
 * read at a_i (an lvalue expression in i), with the next cw rows of the
 * packed panel *bp, which is advanced past them; `advance` moves the row
 * reads to the next column. */
#define FT_STEPS(acc, a_i, advance, cw, bp, rows, nv)                                                \
    for (int64_t q_ = 0; q_ < (cw); ++q_, (bp) += FT_NR) {                                           \
        vf b_[FT_NV];                                                                                \
        _Pragma("GCC unroll 8") for (int v_ = 0; v_ < FT_NV; ++v_) if (v_ < (nv)) b_[v_] = vf_load((bp) + v_ * VW); \
        _Pragma("GCC unroll 14") for (int i = 0; i < (rows); ++i)                                    \
        {                                                                                            \
            const vf ai_ = vf_set1(a_i);                                                             \
            _Pragma("GCC unroll 8") for (int v_ = 0; v_ < FT_NV; ++v_) if (v_ < (nv))                \
                (acc)[i][v_] = vf_fmadd(ai_, b_[v_], (acc)[i][v_]);                                  \
        }                                                                                            \
        advance;                                                                                     \
    }

/* Stores the first m (<= rows) rows and n columns of the tile: row i at
 * crow[i] + col where row pointers crow are given, else at c + i * ldc. */
CT_INLINE void ft_store(vf acc[FT_MR][FT_NV], float *const *crow, int64_t col, float *c, int64_t ldc, int64_t m,
                        int64_t n, const int rows, const int nv)
{
#pragma GCC unroll 14
    for (int i = 0; i < rows; ++i) {
        if (i >= m)
            break;
        float *ci = crow ? crow[i] + col : c + i * ldc;
#pragma GCC unroll 8
        for (int v = 0; v < FT_NV; ++v) {
            if (v >= nv || v * VW >= n)
                break;
            if ((v + 1) * VW <= n)
                vf_store(ci + v * VW, acc[i][v]);
            else
                vf_store_part(ci + v * VW, acc[i][v], n - v * VW);
        }
    }
}

/* The first `rows` (>= m) rows of the tile, `nv` vectors wide. */
CT_INLINE void forward_tile_rows(const struct cnnc_conv_tile *t, const float *a, const float *bp,
                                 const float *bias, float *c, int64_t m, int64_t n, const int rows, const int nv)
{
    vf acc[FT_MR][FT_NV];
    FT_INIT(acc, bias, n, rows, nv);
    const int64_t rs = t->rs;
    for (int64_t kh = 0; kh < t->nkh; ++kh) {
        for (int64_t kw = 0; kw < t->nkw; ++kw) {
            const float *base[FT_BASES];
#pragma GCC unroll 5
            for (int s = 0; s < (rows + 2) / 3; ++s)
                base[s] = a + kh * t->hs + kw * t->ws + 3 * s * rs;
            FT_STEPS(acc, base[i / 3][(i % 3) * rs], _Pragma("GCC unroll 5") for (int s = 0; s < (rows + 2) / 3; ++s) base[s] += 1,
                     t->cw, bp, rows, nv)
        }
    }
    ft_store(acc, NULL, 0, c, t->ldc, m, n, rows, nv);
}

/* Runs call(r) with r = m as a constant (a tile's rows must be known at
 * compile time for its accumulators to live in registers): a row's last
 * segment (26 = 14 + 12, 32 = 14 + 14 + 4) and rows narrower than a tile
 * compute only the rows they keep. */
#define FT_ROWS_CASE(call, r_) \
    case r_:                   \
        call(r_);              \
        return;
#if FT_MR > 6
#define FT_ROWS_CASES_WIDE(call)                                                                     \
    FT_ROWS_CASE(call, 6) FT_ROWS_CASE(call, 7) FT_ROWS_CASE(call, 8) FT_ROWS_CASE(call, 9)         \
    FT_ROWS_CASE(call, 10) FT_ROWS_CASE(call, 11) FT_ROWS_CASE(call, 12) FT_ROWS_CASE(call, 13)
#else
#define FT_ROWS_CASES_WIDE(call)
#endif
#if FT_MR > 4
#define FT_ROWS_CASES_MID(call) FT_ROWS_CASE(call, 4) FT_ROWS_CASE(call, 5) FT_ROWS_CASES_WIDE(call)
#else
#define FT_ROWS_CASES_MID(call)
#endif
#define FT_DISPATCH_ROWS(m, call)                                                                              \
    switch (m) {                                                                                              \
        FT_ROWS_CASE(call, 1)                                                                                 \
        FT_ROWS_CASE(call, 2)                                                                                 \
        FT_ROWS_CASE(call, 3)                                                                                 \
        FT_ROWS_CASES_MID(call)                                                                               \
    default:                                                                                                  \
        call(FT_MR);                                                                                          \
    }

CT_INLINE void forward_tile_nv(const struct cnnc_conv_tile *t, const float *a, const float *bp,
                               const float *bias, float *c, int64_t m, int64_t n, const int nv)
{
#define FT_DIRECT(r_) forward_tile_rows(t, a, bp, bias, c, m, n, r_, nv)
    FT_DISPATCH_ROWS(m, FT_DIRECT)
#undef FT_DIRECT
}

/* fn(args..., nv) with nv the vectors that n columns need, as a constant. */
#if FT_NV == 2
#define FT_DISPATCH_NV(n, fn, ...)         \
    do {                                   \
        if ((n) <= VW)                     \
            fn(__VA_ARGS__, 1);            \
        else                               \
            fn(__VA_ARGS__, FT_NV);        \
    } while (0)
#else
#define FT_DISPATCH_NV(n, fn, ...) fn(__VA_ARGS__, FT_NV)
#endif

static void forward_tile(const struct cnnc_conv_tile *t, const float *a, const float *bp, const float *bias,
                         float *c, int64_t m, int64_t n)
{
    FT_DISPATCH_NV(n, forward_tile_nv, t, a, bp, bias, c, m, n);
}

/* The indirect tile needs a register per row pointer: with more rows than
 * about half the general registers (AVX-512's 14) they would spill. */
#if FT_MR <= 6
/* The first `rows` (>= m) rows of an indirect tile, `nv` vectors wide. */
CT_INLINE void indirect_tile_rows(const struct cnnc_conv_tile *t, const float *const *a, const float *bp,
                                  const float *bias, float *const *c, int64_t col, int64_t m, int64_t n,
                                  const int rows, const int nv)
{
    vf acc[FT_MR][FT_NV];
    FT_INIT(acc, bias, n, rows, nv);
    for (int64_t kh = 0; kh < t->nkh; ++kh, a += t->rs) {
        const float *row[FT_MR];
#pragma GCC unroll 14
        for (int i = 0; i < rows; ++i)
            row[i] = a[i];
        FT_STEPS(acc, row[i][q_], (void)0, t->cw, bp, rows, nv)
    }
    ft_store(acc, c, col, NULL, 0, m, n, rows, nv);
}

CT_INLINE void indirect_tile_nv(const struct cnnc_conv_tile *t, const float *const *a, const float *bp,
                                const float *bias, float *const *c, int64_t col, int64_t m, int64_t n, const int nv)
{
#define FT_INDIRECT(r_) indirect_tile_rows(t, a, bp, bias, c, col, m, n, r_, nv)
    FT_DISPATCH_ROWS(m, FT_INDIRECT)
#undef FT_INDIRECT
}

static void forward_tile_indirect(const struct cnnc_conv_tile *t, const float *const *a, const float *bp,
                                  const float *bias, float *const *c, int64_t col, int64_t m, int64_t n)
{
    FT_DISPATCH_NV(n, indirect_tile_nv, t, a, bp, bias, c, col, m, n);
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
