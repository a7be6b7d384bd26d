/* The convolution family's bottom layer: copies between the input (or its
 * gradient) and the patches the GEMM-based paths read (src/conv/patches.c).
 *
 * im2col rows: one per output pixel, KH*KW*Cin floats ordered (group, kh,
 * kw, channel within the group), so group g's block, KH*KW*Cin/g floats at
 * offset g*KH*KW*Cin/g, multiplies the (KH*KW*Cin/g) x (Cout/g) block of w
 * at column g*Cout/g (leading dimension Cout). */
#ifndef CNNC_CONV_PATCHES_H
#define CNNC_CONV_PATCHES_H
#include "geometry.h"

/* im2col rows of the output pixels [p0, p0 + count), flat over (n, oh, ow). */
CNNC_INTERNAL void cnnc_conv_im2col(const struct cnnc_conv_geom *g, const float *x, int64_t p0, int64_t count,
                                    float *col);
/* Columns [k0, k0 + kc) of group grp's block of the im2col rows of output
 * pixels [p0, p0 + count), row i at col + i * ldcol. */
CNNC_INTERNAL void cnnc_conv_im2col_slice(const struct cnnc_conv_geom *g, const float *x, int64_t p0, int64_t count,
                                          int64_t grp, int64_t k0, int64_t kc, float *col, int64_t ldcol);
/* dx += the col rows of output pixels [p0, p0 + count), scattered back. */
CNNC_INTERNAL void cnnc_conv_col2im_add(const struct cnnc_conv_geom *g, const float *col, int64_t p0, int64_t count,
                                        float *dx);
/* dx rows [r0, r1) of image n = bias (or 0) + the taps of one image's whole
 * dcol (rows indexed by the image's output pixels) that reach them. */
CNNC_INTERNAL void cnnc_conv_col2im_gather(const struct cnnc_conv_geom *g, const float *dcol, int64_t n, int64_t r0,
                                           int64_t r1, const float *bias, float *dx);
/* Each of `rows` rows of `channels` floats at dst = values. */
CNNC_INTERNAL void cnnc_conv_fill_rows(float *dst, int64_t rows, const float *values, int64_t channels);

/* The indirection table of output pixels [p0, p0 + count) for kernels whose
 * rows are one run of x (groups 1, dilation_w 1): table[kh * count + i]
 * points at the KW*Cin floats that pixel p0 + i multiplies with kernel row
 * kh: in x where they all lie inside it, at `zeros` (KW*Cin zeros) where
 * the input row is padding, else at a zero-padded copy written to patches.
 * Returns the floats of patches used (at most count * KH*KW*Cin). */
CNNC_INTERNAL int64_t cnnc_conv_indirect_rows(const struct cnnc_conv_geom *g, const float *x, int64_t p0,
                                              int64_t count, const float *zeros, float *patches,
                                              const float **table);

/* Bytes of zero-padded input rows per band: a quarter of L2, re-read KH
 * times per panel (forward) or once per block of dW (weight gradient). */
#define CNNC_CONV_BAND_BYTES ((int64_t)256 * 1024)

/* Input rows a band of output rows reads, zero-padded: column c holds input
 * column c - pad_left, rows and columns outside x are zeros, and the rows
 * are `width` pixels wide (wide enough for whole segments of the reader). */
struct cnnc_conv_band {
    float *buf;
    const float *data; /* what the readers read: buf, or x itself */
    int64_t width;     /* columns per buffer row */
    int64_t max_rows;
};

/* Fills b->buf with the input rows of output rows [oh0, oh0 + rows) of
 * image n. */
CNNC_INTERNAL void cnnc_conv_band_fill(const struct cnnc_conv_geom *g, const float *x, const struct cnnc_conv_band *b,
                                       int64_t n, int64_t oh0, int64_t rows);

#endif
