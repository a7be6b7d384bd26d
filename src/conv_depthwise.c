/* Depthwise convolution drivers: thread splitting around the per-ISA direct
 * kernels (why direct: see src/conv.c). */
#include "conv_internal.h"

/* Multiply-adds per thread below which a second thread does not pay. */
#define DEPTHWISE_THREAD_GRAIN ((int64_t)1 << 18)

static int threads_for_rows(const struct cnnc_conv_geom *g, int64_t rows, int64_t row_len)
{
    int64_t work;
    if (__builtin_mul_overflow(rows, row_len, &work) || __builtin_mul_overflow(work, g->kh * g->kw, &work))
        work = INT64_MAX;
    return cnnc_threads_for(work, DEPTHWISE_THREAD_GRAIN);
}

/* Forward and backward-data both write whole rows of their output from two
 * inputs and an optional bias: each thread takes a contiguous block of rows. */
typedef void (*depthwise_rows_fn)(const struct cnnc_conv_geom *g, int64_t r0, int64_t r1, const float *a,
                                  const float *b, const float *bias, float *out);

static void run_rows(depthwise_rows_fn kernel, const struct cnnc_conv_geom *g, int64_t rows, int64_t row_len,
                     const float *a, const float *b, const float *bias, float *out)
{
    const int threads = threads_for_rows(g, rows, row_len);
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        int64_t r0, r1;
        cnnc_conv_split(rows, cnnc_conv_thread_id(), cnnc_conv_team_size(), &r0, &r1);
        kernel(g, r0, r1, a, b, bias, out);
        cnnc_fpu_restore(fpu);
    }
    (void)threads;
}

cnnc_status cnnc_conv_depthwise_forward(const struct cnnc_conv_geom *g, const float *x, const float *w,
                                        const float *bias, float *y)
{
    run_rows(CNNC_PICK(cnnc_conv_kernels)->depthwise_forward, g, g->n * g->oh, g->ow * g->cout, x, w, bias, y);
    return CNNC_OK;
}

cnnc_status cnnc_conv_depthwise_backward_data(const struct cnnc_conv_geom *g, const float *w, const float *dy,
                                              const float *bias, float *dx)
{
    run_rows(CNNC_PICK(cnnc_conv_kernels)->depthwise_backward_data, g, g->n * g->h, g->w * g->cout, w, dy,
             bias, dx);
    return CNNC_OK;
}

cnnc_status cnnc_conv_depthwise_backward_weights(const struct cnnc_conv_geom *g, const float *x, const float *dy,
                                                 float *dw)
{
    const struct cnnc_conv_kernels *k = CNNC_PICK(cnnc_conv_kernels);
    const int64_t rows = g->n * g->oh;
    const int threads = threads_for_rows(g, rows, g->ow * g->cout);
    float *buffers[threads];
    struct cnnc_conv_partials partials = {.out = dw, .buffers = buffers, .count = g->kh * g->kw * g->cout};
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        float *sum = cnnc_conv_partial_begin(&partials);
        if (sum) {
            int64_t r0, r1;
            cnnc_conv_split(rows, cnnc_conv_thread_id(), cnnc_conv_team_size(), &r0, &r1);
            k->depthwise_backward_weights(g, r0, r1, x, dy, sum);
        }
        cnnc_conv_partial_reduce(&partials);
        cnnc_fpu_restore(fpu);
    }
    if (partials.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "depthwise conv backward: cannot allocate the partial sums");
    return CNNC_OK;
}
