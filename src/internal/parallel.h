/* Splitting a flat range [0, n) into contiguous chunks across threads, for
 * the elementwise drivers. */
#ifndef CNNC_PARALLEL_H
#define CNNC_PARALLEL_H
#include "cnnc_internal.h"

/* Below this many elements per thread, threading costs more than it saves. */
#define CNNC_ELEMENTWISE_GRAIN cnnc_work_grain(CNNC_WORK_ELEMENTWISE)

/* Runs body(begin, end, ctx) over [0, n) in chunks, on as many threads as
 * the size warrants; chunk boundaries are multiples of 64 elements so that
 * each thread's vector loop starts aligned to the arrays' alignment. */
typedef void (*cnnc_range_fn)(int64_t begin, int64_t end, void *ctx);
CNNC_INTERNAL void cnnc_parallel_range(int64_t n, int64_t grain, cnnc_range_fn body, void *ctx);
/* The same over [0, n) of any unit (rows, images, ...), with chunk
 * boundaries at multiples of align (>= 1). */
CNNC_INTERNAL void cnnc_parallel_chunks(int64_t n, int64_t grain, int64_t align, cnnc_range_fn body,
                                        void *ctx);

/* Runs body(i, ctx) for every i in [0, count) on `threads` threads (a
 * static split, FTZ/DAZ on in each): for work cut into tasks of fixed extent,
 * whose results therefore do not depend on the thread count. */
typedef void (*cnnc_index_fn)(int64_t i, void *ctx);
CNNC_INTERNAL void cnnc_parallel_for(int64_t count, int threads, cnnc_index_fn body, void *ctx);

/* Runs body(ctx) once on each thread of a team of `threads` (FTZ/DAZ on in
 * each), for drivers that split their own work by omp thread number. */
typedef void (*cnnc_team_fn)(void *ctx);
CNNC_INTERNAL void cnnc_parallel_team(int threads, cnnc_team_fn body, void *ctx);

#endif
