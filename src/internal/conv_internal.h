/* Shared definitions of the convolution drivers (src/conv*.c) and of the
 * per-ISA conv tile kernels (src/kernels/<isa>/conv_<isa>.c). */
#ifndef CNNC_CONV_INTERNAL_H
#define CNNC_CONV_INTERNAL_H
#include "cnnc_internal.h"
#include "parallel.h"
#ifdef CNNC_OPENMP
#include <omp.h>
#endif

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

/* Workspace slots owned by the convolution family. */
enum {
    CNNC_CONV_SLOT_COL = 2,     /* per-thread im2col / dcol tile */
    CNNC_CONV_SLOT_PARTIAL = 3, /* per-thread partial dW (team threads > 0) */
    /* The caller is always thread 0 of its team, so its own slot 3 is free
     * for the packed w^T of the backward-data passes, whose shared dcol
     * buffer is in slot 4. */
    CNNC_CONV_SLOT_PACKED_WT = 3,
    CNNC_CONV_SLOT_SHARED = 4   /* caller-thread buffers shared by a parallel region */
};

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

/* Register-tiled kernels for convolutions with few channels, per ISA
 * (src/internal/conv_tile_template.h). */
struct cnnc_conv_kernels {
    /* The GEMM micro-kernel tile forward_tile shares (the driver checks). */
    int tile_mr, tile_nr;
    /* c (m <= tile_mr rows, n <= tile_nr columns) = bias (or 0) + the
     * products of all the taps, of the m rows of a only; bp is a
     * GEMM-packed B panel (tile_nr columns). */
    void (*forward_tile)(const struct cnnc_conv_tile *t, const float *a, const float *bp, const float *bias,
                         float *c, int64_t m, int64_t n);
    /* dw[k * ldw + j] += sum over pixels of A(pixel, k) * B(pixel, j) for
     * k < m, j < n (see cnnc_conv_wtile), and db[j] += sum of B(pixel, j)
     * when db; made for small m. */
    void (*weights_tile)(const struct cnnc_conv_wtile *t, int64_t m, int64_t n, float *dw, int64_t ldw, float *db);
};

extern CNNC_INTERNAL const struct cnnc_conv_kernels cnnc_conv_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_conv_kernels cnnc_conv_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_conv_kernels cnnc_conv_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_conv_kernels cnnc_conv_kernels_neon;

/* ---- threading helpers -------------------------------------------------- */
static inline int cnnc_conv_thread_id(void)
{
#ifdef CNNC_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int cnnc_conv_team_size(void)
{
#ifdef CNNC_OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* A failure flag shared by a team: any thread may raise it; after a barrier
 * every thread reads the same value, so all leave together. */
static inline void cnnc_conv_mark_failed(int *failed)
{
#ifdef CNNC_OPENMP
#pragma omp atomic write
#endif
    *failed = 1;
}

static inline int cnnc_conv_has_failed(int *failed)
{
    int value;
#ifdef CNNC_OPENMP
#pragma omp atomic read
#endif
    value = *failed;
    return value;
}

static inline void cnnc_conv_barrier(void)
{
#ifdef CNNC_OPENMP
#pragma omp barrier
#endif
}

/* Barrier, then the flag as every thread of the team sees it. */
static inline int cnnc_conv_team_failed(int *failed)
{
    cnnc_conv_barrier();
    return cnnc_conv_has_failed(failed);
}

/* Part t of n items split as evenly as possible into parts contiguous chunks. */
static inline void cnnc_conv_split(int64_t n, int t, int parts, int64_t *begin, int64_t *end)
{
    int64_t q = n / parts, r = n % parts;
    *begin = q * t + (t < r ? t : r);
    *end = *begin + q + (t < r ? 1 : 0);
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

/* ---- drivers (src/conv_gemm.c, src/conv_depthwise.c) -------------------- */
CNNC_INTERNAL cnnc_status cnnc_conv_gemm_forward(const struct cnnc_conv_geom *g, const float *x, const float *w,
                                                 const float *bias, float *y);
CNNC_INTERNAL cnnc_status cnnc_conv_gemm_backward_data(const struct cnnc_conv_geom *g, const float *w,
                                                       const float *dy, const float *bias, float *dx);
/* db (the column sums of dy), when not NULL, comes along in the same pass
 * where that saves one. */
CNNC_INTERNAL cnnc_status cnnc_conv_gemm_backward_weights(const struct cnnc_conv_geom *g, const float *x,
                                                          const float *dy, float *dw, float *db);
CNNC_INTERNAL cnnc_status cnnc_conv_depthwise_forward(const struct cnnc_conv_geom *g, const float *x,
                                                      const float *w, const float *bias, float *y);
CNNC_INTERNAL cnnc_status cnnc_conv_depthwise_backward_data(const struct cnnc_conv_geom *g, const float *w,
                                                            const float *dy, const float *bias, float *dx);
/* db (Cout), unless NULL, gets the channel sums of dy from the same pass. */
CNNC_INTERNAL cnnc_status cnnc_conv_depthwise_backward_weights(const struct cnnc_conv_geom *g, const float *x,
                                                               const float *dy, float *dw, float *db);

/* The weight gradient (and db, when not NULL) through weights_tile, reading
 * x in place from zero-padded bands (src/conv_implicit.c). im2col + GEMM
 * copies the patches, pads the rows of dW (KH*KW*Cin/g) up to the GEMM's MR
 * and packs all of dy; the tiles avoid all three, and win (measured, batch
 * 8 to 32) for few input channels (5x for 1 -> 32 3x3, 1.5x for the
 * 3 -> 64 7x7 ResNet stem) and for up to 128 outputs per group (1.2x for
 * 64 -> 64 3x3), as long as dW has at most CNNC_CONV_WTILE_MAX_ROWS rows.
 * With more rows or outputs, each pixel's broadcast operands are re-read
 * once per block of dW, and the GEMM's packed panels do better (the exact
 * rule, with one more case, is tiled_weights_pay in src/conv_gemm.c). */
#define CNNC_CONV_WTILE_MAX_ROWS 576
#define CNNC_CONV_WTILE_FEW_CIN 32
#define CNNC_CONV_WTILE_MAX_COUT 128
#define CNNC_CONV_WTILE_MIN_PIXELS 8
CNNC_INTERNAL cnnc_status cnnc_conv_tiled_backward_weights(const struct cnnc_conv_geom *g, int threads,
                                                           const float *x, const float *dy, float *dw, float *db);

/* Winograd F(2x2, 3x3) (src/conv_winograd.c). applies: the geometry is one
 * it computes (3x3, stride 1, dilation 1, groups 1); chosen: it applies and
 * is faster there, or forced by the environment variable CNNC_WINOGRAD
 * ("1" wherever it applies, "0" never). flipped as for
 * cnnc_conv_implicit_forward. */
CNNC_INTERNAL int cnnc_conv_winograd_applies(const struct cnnc_conv_geom *g);
enum cnnc_conv_pass { CNNC_CONV_PASS_FORWARD, CNNC_CONV_PASS_BACKWARD_DATA, CNNC_CONV_PASS_BACKWARD_WEIGHTS };
/* For backward-data, g is the forward convolution that computes it
 * (cnnc_conv_data_gradient_geom). */
CNNC_INTERNAL int cnnc_conv_winograd_chosen(const struct cnnc_conv_geom *g, enum cnnc_conv_pass pass);
CNNC_INTERNAL cnnc_status cnnc_conv_winograd_forward(const struct cnnc_conv_geom *g, const float *x,
                                                     const float *w, int flipped, const float *bias, float *y);
/* dw of a geometry Winograd applies to, from x and dy. */
CNNC_INTERNAL cnnc_status cnnc_conv_winograd_backward_weights(const struct cnnc_conv_geom *g, const float *x,
                                                              const float *dy, float *dw);

/* im2col rows (KH*KW*Cin floats, (group, kh, kw, channel) order) of the
 * output pixels [p0, p0 + count), flat over (n, oh, ow). */
CNNC_INTERNAL void cnnc_conv_im2col(const struct cnnc_conv_geom *g, const float *x, int64_t p0, int64_t count,
                                    float *col);
/* Forward pass of a non-pointwise convolution on `threads` threads
 * (src/conv_implicit.c). With flipped, w is the kernel of the convolution
 * whose stride-1 input gradient this is: (KH, KW, g->cout / groups,
 * g->cin), used flipped in space and transposed in channels. */
CNNC_INTERNAL cnnc_status cnnc_conv_implicit_forward(const struct cnnc_conv_geom *g, int threads, const float *x,
                                                     const float *w, int flipped, const float *bias, float *y);
/* One phase of a strided input gradient as a flipped forward (see
 * backward_data_phases in src/conv_gemm.c): tap (jh, jw) of g's kernel is
 * tap (rh + sh * (g->kh - 1 - jh), rw + sw * (g->kw - 1 - jw)) of w, whose
 * rows have kw taps; output pixels, rows and images are y_px, y_row and
 * y_img floats apart. */
struct cnnc_conv_phase {
    int64_t rh, rw, sh, sw, kw;
    int64_t y_px, y_row, y_img;
};
CNNC_INTERNAL cnnc_status cnnc_conv_implicit_phase(const struct cnnc_conv_geom *g, int threads, const float *x,
                                                   const float *w, int flipped, const struct cnnc_conv_phase *ph,
                                                   const float *bias, float *y);
/* dcol = dy * w^T through the GEMM micro-kernel with w^T packed once:
 * cnnc_conv_pack_wt (thread t of team packs its share) fills
 * cnnc_conv_packed_wt_floats floats; cnnc_conv_dcol_packed computes `count`
 * rows (group blocks as in im2col, ldc floats apart) using ap (MR * Cout/g
 * floats) for partial row blocks. */
struct cnnc_gemm_kernels;
CNNC_INTERNAL int64_t cnnc_conv_packed_wt_floats(const struct cnnc_conv_geom *g,
                                                 const struct cnnc_gemm_kernels *kern);
CNNC_INTERNAL void cnnc_conv_pack_wt(const struct cnnc_conv_geom *g, const struct cnnc_gemm_kernels *kern,
                                     const float *w, float *bp, int t, int team);
CNNC_INTERNAL void cnnc_conv_dcol_packed(const struct cnnc_conv_geom *g, const struct cnnc_gemm_kernels *kern,
                                         const float *bp, int64_t count, const float *dy, float *dcol, int64_t ldc,
                                         float *ap);

/* Per-thread partial sums reduced in a fixed order: each thread of a team
 * accumulates into its own buffer of `count` floats (thread 0's is `out`
 * itself), then, after a barrier, adds the others into `out` slice by slice.
 * Must be called by every thread of the team. An optional second output
 * (out2, count2 floats) is summed the same way. */
struct cnnc_conv_partials {
    float *out;
    float **buffers; /* team-size pointers */
    int64_t count;
    int failed;
    float *out2;
    int64_t count2;
};
/* Returns this thread's buffer, zeroed, or NULL (after marking failure). */
CNNC_INTERNAL float *cnnc_conv_partial_begin(struct cnnc_conv_partials *p);
/* This thread's zeroed buffer for out2 (after a successful begin). */
CNNC_INTERNAL float *cnnc_conv_partial_second(struct cnnc_conv_partials *p, float *buffer);
/* Barrier, then the ordered reduction into p->out. */
CNNC_INTERNAL void cnnc_conv_partial_reduce(struct cnnc_conv_partials *p);

/* out[c] = sum over rows of data[row * channels + c], deterministic for a
 * fixed thread count. */
CNNC_INTERNAL cnnc_status cnnc_conv_channel_sum(int64_t rows, int64_t channels, const float *data, float *out);

#endif
