/* Deterministic parallel sums for the gradient passes: partial buffers of
 * fixed parts added in part order, so the result never depends on
 * scheduling, and in deterministic mode not on the thread count either. */
#include <string.h>
#include "partials.h"

/* Floats that the partial buffers of one deterministic sum may take (256
 * MiB): the parts beyond it are merged, so sums of huge weight gradients
 * split into fewer parts than the threads could use. */
#define DETERMINISTIC_BUFFER_FLOATS ((int64_t)64 << 20)

int cnnc_conv_partial_parts(int partition_threads, int fixed_parts, int64_t count)
{
    if (!cnnc_get_deterministic())
        return partition_threads;
    int64_t affordable = 1 + DETERMINISTIC_BUFFER_FLOATS / cnnc_max_i64(1, count);
    return (int)cnnc_max_i64(1, cnnc_min_i64(fixed_parts, affordable));
}

int cnnc_conv_partial_next(struct cnnc_conv_partials *p, int64_t items, struct cnnc_conv_part *part)
{
    const int64_t stride = p->count + p->count2;
    if (part->index < 0) {
        int64_t first, last;
        cnnc_conv_split(p->parts, cnnc_conv_thread_id(), cnnc_conv_team_size(), &first, &last);
        part->index = (int)first - 1;
        part->last = (int)last;
        part->block = NULL;
        part->base = first + (first == 0);
        /* Buffers for every part but part 0, which sums into out. */
        int64_t own = last - first - (first == 0 && last > 0);
        size_t bytes = 0;
        if (own > 0 && (__builtin_mul_overflow(own, stride, &own) || cnnc_float_bytes(own, &bytes) != CNNC_OK ||
                        !(part->block = cnnc_workspace(CNNC_CONV_SLOT_PARTIAL, bytes)))) {
            cnnc_conv_mark_failed(&p->failed);
            part->index = part->last;
            return 0;
        }
    }
    if (++part->index >= part->last || cnnc_conv_has_failed(&p->failed))
        return 0;
    const int i = part->index;
    if (i == 0) {
        part->sum = p->out;
        part->sum2 = p->out2;
    } else {
        part->sum = part->block + (i - part->base) * stride;
        part->sum2 = p->count2 ? part->sum + p->count : NULL;
    }
    p->buffers[i] = part->sum;
    cnnc_conv_split(items, i, p->parts, &part->begin, &part->end);
    if (!p->first_item_writes || part->begin == part->end) {
        memset(part->sum, 0, (size_t)p->count * sizeof(float));
        if (p->count2)
            memset(part->sum2, 0, (size_t)p->count2 * sizeof(float));
    }
    return 1;
}

/* Floats of out summed over every part before the next run of them: a
 * run stays in L1 while the parts pass over it, where a whole slice (a
 * weight gradient's, megabytes) would be read and written once per part. */
#define REDUCE_RUN 1024

/* out[i] += the other parts' buffers[t][offset + i] for i in [begin, end),
 * in part order for each i. */
static void reduce_slice(const struct cnnc_conv_partials *p, float *out, int64_t offset, int64_t begin, int64_t end)
{
    for (int64_t r0 = begin; r0 < end; r0 += REDUCE_RUN) {
        const int64_t r1 = cnnc_min_i64(end, r0 + REDUCE_RUN);
        for (int t = 1; t < p->parts; ++t) {
            const float *src = p->buffers[t] + offset;
            for (int64_t i = r0; i < r1; ++i)
                out[i] += src[i];
        }
    }
}

void cnnc_conv_partial_reduce(struct cnnc_conv_partials *p)
{
    const int failed = cnnc_conv_team_failed(&p->failed);
    int team = cnnc_conv_team_size();
    if (failed || p->parts == 1)
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
    const int64_t work = rows * channels, grain = cnnc_work_grain(CNNC_WORK_BIAS_GRAD);
    const int threads = cnnc_threads_for(work, grain);
    const int parts = cnnc_conv_partial_parts(cnnc_partition_threads_for(work, grain), cnnc_parts_for(work, grain),
                                              channels);
    float *buffers[parts];
    struct cnnc_conv_partials partials = {.out = out, .buffers = buffers, .count = channels, .parts = parts};
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(cnnc_conv_partial_team(threads, parts))
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        struct cnnc_conv_part part = {.index = -1};
        while (cnnc_conv_partial_next(&partials, rows, &part))
            for (int64_t r = part.begin; r < part.end; ++r) {
                const float *row = data + r * channels;
                for (int64_t c = 0; c < channels; ++c)
                    part.sum[c] += row[c];
            }
        cnnc_conv_partial_reduce(&partials);
        cnnc_fpu_restore(fpu);
    }
    if (partials.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "cannot allocate the partial sums of the bias gradient");
    return CNNC_OK;
}
