/* The few-row product reading B in place (cnnc_gemv_rows_fn, contract in
 * gemv_kernels.h), written once over the SIMD vocabulary and compiled into
 * each ISA's table by src/kernels/<isa>/gemv_<isa>.c, which defines
 * CNNC_SIMD first.
 *
 * A dense layer at batch 1 reads each weight once for one multiply-add:
 * its speed is the speed at which B streams from memory. B is read in its
 * own row-major layout, GEMV_UNROLL rows at a time over a run of up to
 * CNNC_GEMV_MAX_COLS columns (eight streams of up to 16 KiB, each used
 * whole, which the hardware prefetchers follow: asking for the next rows
 * by software prefetches was slower, by up to a third where B sits in L3),
 * into accumulators of the m rows of C that stay in L1 for a KC block of
 * rows. A register tile of up to GEMV_TILE_ROWS rows of C and GEMV_J
 * vectors takes the GEMV_UNROLL rows of B at once, so each accumulator is
 * loaded and stored once per GEMV_UNROLL multiply-adds and each vector of
 * B serves the tile's rows. Each element is summed exactly as the GEMM
 * micro-kernel sums it (from zero, in p order, per KC block, blocks added
 * in order), so the product has the packed GEMM's bits. */
#ifndef CNNC_GEMV_TEMPLATE_H
#define CNNC_GEMV_TEMPLATE_H
#include "gemv_kernels.h"
#include "gemm_epilogue_template.h"

#define GEMV_UNROLL CNNC_GEMV_UNROLL

/* dst[j] = (float)(src[j] * fold[j]) for j < n: plan.c's fold, in double
 * (here under the team's flush-to-zero, which reads a kernel value below
 * FLT_MIN as zero where the fold at load scales it first: the one case in
 * which the bits may differ from the packed product's). */
static inline void gemv_fold_row(const float *src, const double *fold, int64_t n, float *dst)
{
    for (int64_t j = 0; j < n; ++j)
        dst[j] = (float)(src[j] * fold[j]);
}

/* Vectors of columns per register tile: GEMV_TILE_ROWS x GEMV_J
 * accumulators, GEMV_J vectors of a row of B and a broadcast of A fit the
 * registers (16 on AVX2, 32 on AVX-512 and NEON). */
#define GEMV_TILE_ROWS 4
#if VW == 8
#define GEMV_J 2
#else
#define GEMV_J 4
#endif

/* acc[i * np + j + v] += sum over the `rows` rows r[t] (t < rows, in order)
 * of a[i * lda + t] * r[t][j + v], for i < mi, v < jv * VW, in registers:
 * each vector of B loaded serves mi rows of C. part: the last vector ends
 * at column n (a partial load of B; acc is padded to whole vectors). */
static inline __attribute__((always_inline)) void gemv_tile(const int mi, const int jv, const int rows,
                                                            const int part, const float *a, int64_t lda,
                                                            const float *const *r, int64_t j, int64_t n, float *acc,
                                                            int64_t np)
{
    vf c[GEMV_TILE_ROWS][GEMV_J];
    for (int i = 0; i < mi; ++i)
        for (int v = 0; v < jv; ++v)
            c[i][v] = vf_load(acc + i * np + j + v * VW);
    for (int t = 0; t < rows; ++t) {
        vf w[GEMV_J];
        for (int v = 0; v < jv; ++v)
            w[v] = part && v == jv - 1 ? vf_load_part(r[t] + j + v * VW, n - j - v * VW) : vf_load(r[t] + j + v * VW);
        for (int i = 0; i < mi; ++i) {
            const vf x = vf_set1(a[i * lda + t]);
            for (int v = 0; v < jv; ++v)
                c[i][v] = vf_fmadd(x, w[v], c[i][v]);
        }
    }
    for (int i = 0; i < mi; ++i)
        for (int v = 0; v < jv; ++v)
            vf_store(acc + i * np + j + v * VW, c[i][v]);
}

/* The tiles of m rows over the n columns (np padded) for `rows` rows of B. */
static inline __attribute__((always_inline)) void gemv_rows_mi(const int mi, const int rows, const float *a,
                                                               int64_t lda, const float *const *r, int64_t n,
                                                               int64_t np, float *acc)
{
    const int64_t full = n / VW * VW;
    int64_t j = 0;
    for (; j + GEMV_J * VW <= full; j += GEMV_J * VW)
        gemv_tile(mi, GEMV_J, rows, 0, a, lda, r, j, n, acc, np);
    for (; j < full; j += VW)
        gemv_tile(mi, 1, rows, 0, a, lda, r, j, n, acc, np);
    if (j < n)
        gemv_tile(mi, 1, rows, 1, a, lda, r, j, n, acc, np);
}

/* acc[i * np + j] += sum over the `rows` rows r[t] of a[i * lda + t] *
 * r[t][j], i < m, j < n: blocks of GEMV_TILE_ROWS rows of C (a block of
 * B's rows stays in L1 across them). */
static inline __attribute__((always_inline)) void gemv_rows_step(int64_t m, const int rows, const float *a,
                                                                 int64_t lda, const float *const *r, int64_t n,
                                                                 int64_t np, float *acc)
{
    for (int64_t i0 = 0; i0 < m; i0 += GEMV_TILE_ROWS) {
        const float *ai = a + i0 * lda;
        float *ci = acc + i0 * np;
        switch (m - i0 < GEMV_TILE_ROWS ? m - i0 : GEMV_TILE_ROWS) {
        case 1: gemv_rows_mi(1, rows, ai, lda, r, n, np, ci); break;
        case 2: gemv_rows_mi(2, rows, ai, lda, r, n, np, ci); break;
        case 3: gemv_rows_mi(3, rows, ai, lda, r, n, np, ci); break;
        default: gemv_rows_mi(4, rows, ai, lda, r, n, np, ci); break;
        }
    }
}

static void gemv_rows_simd(int64_t m, int64_t j0, int64_t n, int64_t k, int64_t kc, const float *a, int64_t lda,
                           const float *b, int64_t ldb, const double *fold, const struct cnnc_gemm_epilogue *ep,
                           float *c, int64_t ldc, float *scratch)
{
    const int64_t np = (n + VW - 1) / VW * VW;
    float *acc = scratch;
    /* Rows of B with the fold applied, when one waits. */
    float *folded[GEMV_UNROLL];
    for (int t = 0; t < GEMV_UNROLL; ++t)
        folded[t] = scratch + CNNC_GEMV_ACC_FLOATS + t * CNNC_GEMV_FOLD_COLS;
    for (int64_t pc = 0; pc < k; pc += kc) {
        const int64_t kb = kc < k - pc ? kc : k - pc;
        memset(acc, 0, (size_t)(m * np) * sizeof *acc);
        int64_t p = 0;
        for (; p + GEMV_UNROLL <= kb; p += GEMV_UNROLL) {
            const float *r[GEMV_UNROLL];
            for (int t = 0; t < GEMV_UNROLL; ++t) {
                r[t] = b + (pc + p + t) * ldb + j0;
                if (fold) {
                    gemv_fold_row(r[t], fold + j0, n, folded[t]);
                    r[t] = folded[t];
                }
            }
            gemv_rows_step(m, GEMV_UNROLL, a + pc + p, lda, r, n, np, acc);
        }
        for (; p < kb; ++p) {
            const float *r[1] = {b + (pc + p) * ldb + j0};
            if (fold) {
                gemv_fold_row(r[0], fold + j0, n, folded[0]);
                r[0] = folded[0];
            }
            gemv_rows_step(m, 1, a + pc + p, lda, r, n, np, acc);
        }
        /* The block's sums into C: stored (first block) or added, as the
         * micro-kernel stores a tile with beta 0, then 1. */
        for (int64_t i = 0; i < m; ++i) {
            float *ci = c + i * ldc + j0;
            const float *ai = acc + i * np;
            int64_t j = 0;
            for (; j + VW <= n; j += VW)
                vf_store(ci + j, pc ? vf_add(vf_load(ci + j), vf_load(ai + j)) : vf_load(ai + j));
            if (j < n)
                vf_store_part(ci + j, pc ? vf_add(vf_load_part(ci + j, n - j), vf_load(ai + j)) : vf_load(ai + j),
                              n - j);
        }
    }
    /* The stage on the run, still in L1: the bits of the staged
     * micro-kernel (its stage follows the same store). */
    if (ep)
        gemm_epilogue_simd(ep, c + j0, ldc, m, n, 0, j0);
}

#endif
