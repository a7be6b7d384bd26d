#include "parallel.h"

void cnnc_parallel_range(int64_t n, int64_t grain, cnnc_range_fn body, void *ctx)
{
    cnnc_parallel_chunks(n, grain, 64, body, ctx);
}

void cnnc_parallel_chunks(int64_t n, int64_t grain, int64_t align, cnnc_range_fn body, void *ctx)
{
    int threads = cnnc_threads_for(n, grain);
    if (threads <= 1) {
        unsigned fpu = cnnc_fpu_enter();
        body(0, n, ctx);
        cnnc_fpu_restore(fpu);
        return;
    }
    if (align < 1)
        align = 1;
    int64_t per_thread = cnnc_ceil_div(cnnc_ceil_div(n, threads), align) * align;
#ifdef CNNC_OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int t = 0; t < threads; ++t) {
        int64_t begin = (int64_t)t * per_thread;
        int64_t end = cnnc_min_i64(n, begin + per_thread);
        if (begin < end) {
            unsigned fpu = cnnc_fpu_enter();
            body(begin, end, ctx);
            cnnc_fpu_restore(fpu);
        }
    }
}

void cnnc_parallel_for(int64_t count, int threads, cnnc_index_fn body, void *ctx)
{
    if (threads > count)
        threads = (int)count;
    if (threads < 1)
        threads = 1;
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
#ifdef CNNC_OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t i = 0; i < count; ++i)
            body(i, ctx);
        cnnc_fpu_restore(fpu);
    }
}

void cnnc_parallel_team(int threads, cnnc_team_fn body, void *ctx)
{
#ifdef CNNC_OPENMP
#pragma omp parallel num_threads(threads > 1 ? threads : 1)
#endif
    {
        unsigned fpu = cnnc_fpu_enter();
        body(ctx);
        cnnc_fpu_restore(fpu);
    }
}
