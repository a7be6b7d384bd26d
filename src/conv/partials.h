/* The convolution family's bottom layer: deterministic parallel sums for
 * the gradient passes (src/conv/partials.c). */
#ifndef CNNC_CONV_PARTIALS_H
#define CNNC_CONV_PARTIALS_H
#include "team.h"

/* A sum over `items` units of work cut into `parts` contiguous parts: each
 * part accumulates into its own zeroed buffer of `count` floats (part 0's
 * is `out` itself), then, after a barrier, the team adds the others into
 * `out` slice by slice, in part order. An optional second output (out2,
 * count2 floats) is summed the same way. Normally there is one part per
 * thread of the team limit, so the bits depend on that only (a team running
 * on fewer threads under load takes several parts each); in deterministic mode
 * the parts are fixed by the problem (cnnc_conv_partial_parts), so they do
 * not depend on it at all. */
struct cnnc_conv_partials {
    float *out;
    float **buffers; /* `parts` pointers */
    int64_t count;
    int parts;
    int failed;
    float *out2;
    int64_t count2;
    /* Set when the first item of a part writes its whole buffer (a GEMM
     * with beta 0): the part is then zeroed only if it has no item. */
    int first_item_writes;
};

/* The parts for a sum the team limit would split over `partition_threads`
 * threads (cnnc_partition_threads_for, never the threads running now, which
 * follow the machine's load) and that a team of CNNC_DETERMINISTIC_PARTS
 * would split into `fixed_parts` (its cnnc_parts_for): `partition_threads`
 * normally; in deterministic mode `fixed_parts`, fewer when their buffers of
 * `count` floats would take too much memory. */
CNNC_INTERNAL int cnnc_conv_partial_parts(int partition_threads, int fixed_parts, int64_t count);
/* Threads worth starting for `parts` parts where `threads` were meant. */
static inline int cnnc_conv_partial_team(int threads, int parts)
{
    return threads < parts ? threads : parts;
}

/* One part of a sum, as cnnc_conv_partial_next gives it: its buffers
 * (zeroed unless first_item_writes) and its items [begin, end). Start with
 * index = -1. */
struct cnnc_conv_part {
    int index, last;
    float *block; /* the buffers of parts base, base + 1, ... */
    int64_t base;
    float *sum, *sum2;
    int64_t begin, end;
};
/* The calling thread's next part of `items` (every thread of the team takes
 * a contiguous run of the parts); 0 when none is left or after failing to
 * get a buffer (then p->failed is set). */
CNNC_INTERNAL int cnnc_conv_partial_next(struct cnnc_conv_partials *p, int64_t items, struct cnnc_conv_part *part);
/* Barrier, then the ordered reduction into p->out (and p->out2). Must be
 * called by every thread of the team. */
CNNC_INTERNAL void cnnc_conv_partial_reduce(struct cnnc_conv_partials *p);

/* out[c] = sum over rows of data[row * channels + c], deterministic for a
 * fixed thread count, and for any in deterministic mode. */
CNNC_INTERNAL cnnc_status cnnc_conv_channel_sum(int64_t rows, int64_t channels, const float *data, float *out);

#endif
