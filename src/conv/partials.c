/* Deterministic parallel sums for the gradient passes: per-thread partial
 * buffers added in thread order, so the result depends on the thread count
 * but never on scheduling. */
#include <string.h>
#include "partials.h"

float *cnnc_conv_partial_begin(struct cnnc_conv_partials *p)
{
    int t = cnnc_conv_thread_id();
    float *buffer = p->out;
    if (t > 0) {
        size_t bytes = 0;
        if (cnnc_float_bytes(p->count + p->count2, &bytes) == CNNC_OK)
            buffer = cnnc_workspace(CNNC_CONV_SLOT_PARTIAL, bytes);
        else
            buffer = NULL;
    }
    p->buffers[t] = buffer;
    if (!buffer) {
        cnnc_conv_mark_failed(&p->failed);
        return NULL;
    }
    memset(buffer, 0, (size_t)(t > 0 ? p->count + p->count2 : p->count) * sizeof(float));
    if (t == 0 && p->count2)
        memset(p->out2, 0, (size_t)p->count2 * sizeof(float));
    return buffer;
}

float *cnnc_conv_partial_second(struct cnnc_conv_partials *p, float *buffer)
{
    return buffer == p->out ? p->out2 : buffer + p->count;
}

/* out[i] += the other threads' buffers[t][offset + i] for i in [begin, end). */
static void reduce_slice(const struct cnnc_conv_partials *p, float *out, int64_t offset, int64_t begin, int64_t end)
{
    for (int t = 1; t < cnnc_conv_team_size(); ++t) {
        const float *src = p->buffers[t] + offset;
        for (int64_t i = begin; i < end; ++i)
            out[i] += src[i];
    }
}

void cnnc_conv_partial_reduce(struct cnnc_conv_partials *p)
{
    const int failed = cnnc_conv_team_failed(&p->failed);
    int team = cnnc_conv_team_size();
    if (failed || team == 1)
        return;
    /* Slices are multiples of 16 floats so that threads never share a
     * cache line of out. */
    int64_t blocks = cnnc_ceil_div(p->count, 16), b0, b1;
    cnnc_conv_split(blocks, cnnc_conv_thread_id(), team, &b0, &b1);
    reduce_slice(p, p->out, 0, b0 * 16, cnnc_min_i64(b1 * 16, p->count));
    if (p->count2) {
        blocks = cnnc_ceil_div(p->count2, 16);
        cnnc_conv_split(blocks, cnnc_conv_thread_id(), team, &b0, &b1);
        reduce_slice(p, p->out2, p->count, b0 * 16, cnnc_min_i64(b1 * 16, p->count2));
    }
}

cnnc_status cnnc_conv_channel_sum(int64_t rows, int64_t channels, const float *data, float *out)
{
    int threads = cnnc_threads_for_kind(CNNC_WORK_BIAS_GRAD, rows * channels);
    float *buffers[threads];
    struct cnnc_conv_partials partials = {.out = out, .buffers = buffers, .count = channels};
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        float *sum = cnnc_conv_partial_begin(&partials);
        if (sum) {
            int64_t r0, r1;
            cnnc_conv_split(rows, cnnc_conv_thread_id(), cnnc_conv_team_size(), &r0, &r1);
            for (int64_t r = r0; r < r1; ++r) {
                const float *row = data + r * channels;
                for (int64_t c = 0; c < channels; ++c)
                    sum[c] += row[c];
            }
        }
        cnnc_conv_partial_reduce(&partials);
        cnnc_fpu_restore(fpu);
    }
    if (partials.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "cannot allocate the partial sums of the bias gradient");
    return CNNC_OK;
}
