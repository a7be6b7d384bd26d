/* The weight gradient through weights_tile: a register block of dW (a run
 * of its KH*KW*Cin/g rows times a few vectors of Cout) accumulates while
 * the pixels of a zero-padded band of input rows and the matching dy rows
 * stream by, with the bias gradient summed in the same pass. im2col + GEMM
 * copies the patches, pads the rows of dW up to the GEMM's MR and packs all
 * of dy; the tiles avoid all three. Partial sums over ranges of output
 * rows, reduced in part order (src/conv/partials.h). */
#include "tiled_weights.h"
#include "conv_kernels.h"
#include "partials.h"
#include "patches.h"
#include "team.h"

cnnc_status cnnc_conv_tiled_backward_weights(const struct cnnc_conv_geom *g, int threads, const float *x,
                                             const float *dy, float *dw, float *db)
{
    const struct cnnc_conv_kernels *ck = CNNC_PICK(cnnc_conv_kernels);
    const int64_t kg = g->kh * g->kw * g->cin_g, eh = (g->kh - 1) * g->dh + 1;
    struct cnnc_conv_band b;
    b.width = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    const int64_t row_floats = b.width * g->cin;
    /* A band's input rows and the dy rows they meet share the budget: both
     * are re-read once per block of dW. */
    const int64_t per_row = (g->sh * row_floats + g->ow * g->cout) * (int64_t)sizeof(float);
    const int64_t band_rows =
        cnnc_max_i64(1, (CNNC_CONV_BAND_BYTES - eh * row_floats * (int64_t)sizeof(float)) / per_row + 1);
    b.max_rows = (band_rows - 1) * g->sh + eh;
    int64_t *off = cnnc_workspace(CNNC_CONV_SLOT_SHARED, (size_t)kg * sizeof(int64_t));
    if (!off)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the tap offsets");
    for (int64_t kh = 0, k = 0; kh < g->kh; ++kh)
        for (int64_t kw = 0; kw < g->kw; ++kw)
            for (int64_t c = 0; c < g->cin_g; ++c)
                off[k++] = (kh * g->dh * b.width + kw * g->dw) * g->cin + c;
    const int parts =
        cnnc_conv_partial_parts(cnnc_conv_partition_threads(g), cnnc_conv_fixed_parts(g), kg * g->cout + g->cout);
    float *buffers[parts];
    struct cnnc_conv_partials partials = {
        .out = dw, .buffers = buffers, .count = kg * g->cout, .parts = parts, .out2 = db,
        .count2 = db ? g->cout : 0,
    };
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(cnnc_conv_partial_team(threads, parts))
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        struct cnnc_conv_part part = {.index = -1};
        float *buf = cnnc_workspace(CNNC_CONV_SLOT_COL, (size_t)(b.max_rows * row_floats) * sizeof(float));
        if (!buf)
            cnnc_conv_mark_failed(&partials.failed);
        struct cnnc_conv_band own = b;
        own.buf = buf;
        while (buf && cnnc_conv_partial_next(&partials, g->n * g->oh, &part)) {
            float *sum = part.sum, *dbsum = part.sum2;
            const int64_t r1 = part.end;
            for (int64_t r = part.begin; r < r1;) {
                const int64_t n = r / g->oh, oh0 = r % g->oh;
                const int64_t rows = cnnc_min_i64(band_rows, cnnc_min_i64(r1 - r, g->oh - oh0));
                cnnc_conv_band_fill(g, x, &own, n, oh0, rows);
                for (int64_t grp = 0; grp < g->groups; ++grp) {
                    const struct cnnc_conv_wtile t = {
                        .rows = rows, .cols = g->ow, .a = buf + grp * g->cin_g, .ars = g->sh * row_floats,
                        .rs = g->sw * g->cin, .off = off, .b = dy + r * g->ow * g->cout + grp * g->cout_g,
                        .brs = g->ow * g->cout, .ldb = g->cout,
                    };
                    ck->weights_tile(&t, kg, g->cout_g, sum + grp * g->cout_g, g->cout,
                                     dbsum ? dbsum + grp * g->cout_g : NULL);
                }
                r += rows;
            }
        }
        cnnc_conv_partial_reduce(&partials);
        cnnc_fpu_restore(fpu);
    }
    if (partials.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "conv2d backward: cannot allocate the weight-gradient workspace");
    return CNNC_OK;
}
