/* Per-ISA register-tiled kernels of the convolution drivers (src/conv/),
 * for convolutions with few channels per call: the templates are in
 * src/internal/conv_tile_template.h, compiled once per ISA by
 * src/kernels/<isa>/conv_<isa>.c. */
#ifndef CNNC_CONV_KERNELS_H
#define CNNC_CONV_KERNELS_H
#include "cnnc_internal.h"

/* Where forward_tile finds its A operand: tile row i (an output pixel)
 * reads a[i * rs + kh * hs + kw * ws + q] for kh < nkh, kw < nkw, q < cw,
 * which multiplies row (kh * nkw + kw) * cw + q of the packed B panel. The
 * output tile rows are ldc floats apart. */
struct cnnc_conv_tile {
    int64_t rs, nkh, hs, nkw, ws, cw, ldc;
};

/* The operands of weights_tile: `rows` runs of `cols` pixels; pixel (r, p)
 * has A(pixel, k) = a[r * ars + p * rs + off[k]] and B(pixel, j) =
 * b[r * brs + p * ldb + j]. */
struct cnnc_conv_wtile {
    int64_t rows, cols;
    const float *a;
    int64_t ars, rs;
    const int64_t *off;
    const float *b;
    int64_t brs, ldb;
};

struct cnnc_conv_kernels {
    /* The GEMM micro-kernel tile forward_tile shares (the driver checks). */
    int tile_mr, tile_nr;
    /* c (m <= tile_mr rows, n <= tile_nr columns) = bias (or 0) + the
     * products of all the taps, of the m rows of a only; bp is a
     * GEMM-packed B panel (tile_nr columns). */
    void (*forward_tile)(const struct cnnc_conv_tile *t, const float *a, const float *bp, const float *bias,
                         float *c, int64_t m, int64_t n);
    /* forward_tile with the rows of A and C given by pointers (an
     * indirection table, so that a tile can take pixels from several output
     * rows and images, and padded taps can read zeros or a patch instead of
     * a padded copy of x): tile row i reads kernel row kh < t->nkh (t->cw
     * floats, multiplying rows kh * cw + q of bp) at a[kh * t->rs + i] and
     * writes its n outputs at c[i] + col; t->hs, nkw, ws and ldc are unused.
     * NULL where the row pointers would not fit in registers. */
    void (*forward_tile_indirect)(const struct cnnc_conv_tile *t, const float *const *a, const float *bp,
                                  const float *bias, float *const *c, int64_t col, int64_t m, int64_t n);
    /* dw[k * ldw + j] += sum over pixels of A(pixel, k) * B(pixel, j) for
     * k < m, j < n (see cnnc_conv_wtile), and db[j] += sum of B(pixel, j)
     * when db; made for small m. */
    void (*weights_tile)(const struct cnnc_conv_wtile *t, int64_t m, int64_t n, float *dw, int64_t ldw, float *db);
};

extern CNNC_INTERNAL const struct cnnc_conv_kernels cnnc_conv_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_conv_kernels cnnc_conv_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_conv_kernels cnnc_conv_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_conv_kernels cnnc_conv_kernels_neon;

#endif
