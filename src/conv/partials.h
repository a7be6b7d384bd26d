/* The convolution family's bottom layer: deterministic parallel sums for
 * the gradient passes (src/conv/partials.c). */
#ifndef CNNC_CONV_PARTIALS_H
#define CNNC_CONV_PARTIALS_H
#include "team.h"

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
