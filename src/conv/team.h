/* The convolution family's bottom layer: threads of a team, their work
 * split and failure flag, and the workspace slots the family owns. */
#ifndef CNNC_CONV_TEAM_H
#define CNNC_CONV_TEAM_H
#include "cnnc_internal.h"
#include "parallel.h"
#include "geometry.h"
#ifdef CNNC_OPENMP
#include <omp.h>
#endif

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

/* Threads for g's direct multiply-adds (output pixels x KH*KW*Cin x
 * Cout/g, saturating): the one sizing rule of every GEMM-based path, so
 * that each gives the same split for the same problem. */
static inline int64_t cnnc_conv_work(const struct cnnc_conv_geom *g)
{
    int64_t work;
    if (__builtin_mul_overflow(g->n * g->oh * g->ow, g->kh * g->kw * g->cin, &work) ||
        __builtin_mul_overflow(work, g->cout_g, &work))
        work = INT64_MAX;
    return work;
}

static inline int cnnc_conv_threads(const struct cnnc_conv_geom *g)
{
    return cnnc_threads_for(cnnc_conv_work(g), cnnc_work_grain(CNNC_WORK_CONV));
}

/* The team whose split sets the bits of g's partial sums and algorithm
 * choices (cnnc_partition_threads_for): cnnc_conv_threads on idle CPUs. */
static inline int cnnc_conv_partition_threads(const struct cnnc_conv_geom *g)
{
    return cnnc_partition_threads_for(cnnc_conv_work(g), cnnc_work_grain(CNNC_WORK_CONV));
}

/* The same for a team of CNNC_DETERMINISTIC_PARTS, whatever the machine:
 * the parts of the deterministic sums. */
static inline int cnnc_conv_fixed_parts(const struct cnnc_conv_geom *g)
{
    return cnnc_parts_for(cnnc_conv_work(g), cnnc_work_grain(CNNC_WORK_CONV));
}

#endif
