/* Per-ISA micro-kernels of depthwise convolution (src/conv/depthwise.c is
 * the driver; src/internal/depthwise_template.h the kernels, compiled once
 * per ISA by src/kernels/<isa>/depthwise_<isa>.c).
 *
 * Every pass is cut by the driver into runs of output pixels that share one
 * list of kernel taps: pixel j of a run reads the source at
 * x + xoff[t] + j * xstep for tap t, so that one list serves a whole row
 * interior (all taps inside the image) and the border pixels get lists of
 * their own with the out-of-image taps left out. Backward-data is the same
 * gather over dy (taps reaching each dx pixel, one run per stride phase), so
 * no pass ever scatters and no output is written twice. */
#ifndef CNNC_DEPTHWISE_KERNELS_H
#define CNNC_DEPTHWISE_KERNELS_H
#include "cnnc_internal.h"
#include "gemm_kernels.h"

struct cnnc_dw_run {
    int64_t count;       /* output pixels */
    int64_t channels;    /* input channels C */
    int64_t multiplier;  /* M: output channel c * M + m reads input channel c */
    int64_t taps;        /* entries of xoff and woff */
    const float *x;      /* source (x, or dy for backward-data) at the run's first pixel */
    int64_t xstep;       /* floats between the sources of consecutive pixels */
    const int64_t *xoff; /* per tap: float offset from x */
    /* Sliding kernel rows (every pass, multiplier 1), when
     * row_taps > 0: the run is a whole output row; the taps (all of the
     * row's, none left out at the borders) come in kernel rows of row_taps
     * whose sources are consecutive columns; pixel j reads, through tap k
     * of a kernel row, source column col + j * stride + k, pix floats per
     * column (xstep = stride * pix), and the columns outside [0, src_w)
     * are skipped. */
    int64_t row_taps, stride, col, src_w, pix;
    /* ... and the run covers `rows` output rows with the same taps, whose
     * sources are xrow floats apart and whose outputs (backward-weights:
     * dy) orow floats apart. */
    int64_t rows, xrow, orow;
    /* Forward sliding runs: the output stage (its bias is not read), or
     * NULL. Its activation alone is applied to the accumulators before
     * they are stored; with a residual, the whole stage to each tile of
     * output pixels right after its stores, in L1: output pixel j of row q
     * of the run is row stage_row + q * stage_row_step + j of the stage's
     * matrix, its first channel column stage_col. Either way each output
     * gets the bits of the stage applied afterwards. */
    const struct cnnc_gemm_epilogue *stage;
    int64_t stage_row, stage_row_step, stage_col;
    const float *w;      /* forward / backward-data: kernel; backward-weights: dy at the first pixel */
    int64_t wstep;       /* backward-weights: floats between dy pixels */
    const int64_t *woff; /* per tap: float offset of the tap's (C * M) weights in w, or in out */
    const float *bias;   /* initial value of the outputs (C * M or C floats), NULL for zero */
    float *out;          /* forward / backward-data: first output pixel; backward-weights: dW sums */
    int64_t ostep;       /* floats between output pixels */
};

struct cnnc_depthwise_kernels {
    /* out[j][c * M + m] = bias + sum_t x[j][xoff[t] + c] * w[woff[t] + c * M + m] */
    void (*forward)(const struct cnnc_dw_run *r);
    /* out[j][c] = bias + sum_t sum_m x[j][xoff[t] + c * M + m] * w[woff[t] + c * M + m] */
    void (*backward_data)(const struct cnnc_dw_run *r);
    /* out[woff[t] + c * M + m] += sum_j x[j][xoff[t] + c] * dy[j][c * M + m] */
    void (*backward_weights)(const struct cnnc_dw_run *r);
    /* sum[c] += sum_j x[j * xstep + c] over j < count */
    void (*channel_sum)(int64_t count, int64_t channels, const float *x, int64_t xstep, float *sum);
    /* Whether the kernels slide kernel rows of kw taps at this stride. */
    int (*slides)(int64_t kw, int64_t stride);
};

extern CNNC_INTERNAL const struct cnnc_depthwise_kernels cnnc_depthwise_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_depthwise_kernels cnnc_depthwise_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_depthwise_kernels cnnc_depthwise_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_depthwise_kernels cnnc_depthwise_kernels_neon;

#endif
