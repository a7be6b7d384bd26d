/* Internal helpers shared by the drivers: errors, argument checks, size
 * arithmetic, kernel-table dispatch, threading and scratch memory. */
#ifndef CNNC_INTERNAL_H
#define CNNC_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include "cnnc.h"

#define CNNC_INTERNAL __attribute__((visibility("hidden")))
#define CNNC_ALIGN 64

/* ---- errors ------------------------------------------------------------ */
/* Records a printf-style message for cnnc_last_error() and returns status,
 * so that drivers can write `return cnnc_error(CNNC_ERR_SHAPE, "...")`. */
CNNC_INTERNAL cnnc_status cnnc_error(cnnc_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define CNNC_CHECK_PTR(p) \
    do { if ((p) == NULL) return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", __func__, #p); } while (0)
#define CNNC_CHECK_NONNEG(v) \
    do { if ((v) < 0) return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s = %lld must be >= 0", __func__, #v, (long long)(v)); } while (0)
#define CNNC_CHECK_POS(v) \
    do { if ((v) <= 0) return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: %s = %lld must be > 0", __func__, #v, (long long)(v)); } while (0)
#define CNNC_TRY(expr) \
    do { cnnc_status cnnc_try_status_ = (expr); if (cnnc_try_status_ != CNNC_OK) return cnnc_try_status_; } while (0)

/* ---- size arithmetic ---------------------------------------------------- */
/* *out = a * b (then * c ...) with overflow detection; sets the error. */
CNNC_INTERNAL cnnc_status cnnc_mul_sizes(int64_t *out, int count, ...);
/* Bytes for count floats, checking that it fits size_t. */
CNNC_INTERNAL cnnc_status cnnc_float_bytes(int64_t count, size_t *bytes);

/* ---- aliasing ----------------------------------------------------------- */
/* CNNC_ERR_INVALID_ARGUMENT (naming both arrays) if the output of out_count
 * floats shares memory with the input of in_count floats. With same_ok, an
 * output at exactly the input's address passes (in place: functions that
 * read each element before writing that element and no other). NULL
 * pointers and empty arrays overlap nothing. */
CNNC_INTERNAL cnnc_status cnnc_check_disjoint(const char *fn, const char *out_name, const float *out,
                                              int64_t out_count, const char *in_name, const float *in,
                                              int64_t in_count, int same_ok);
#define CNNC_CHECK_DISJOINT(out, out_count, in, in_count) \
    CNNC_TRY(cnnc_check_disjoint(__func__, #out, (out), (out_count), #in, (in), (in_count), 0))
#define CNNC_CHECK_IN_PLACE_OK(out, in, count) \
    CNNC_TRY(cnnc_check_disjoint(__func__, #out, (out), (count), #in, (in), (count), 1))

/* ---- dispatch ----------------------------------------------------------- */
/* Each kernel family defines one table type and one table per ISA, in
 * src/kernels/<isa>/. The driver picks one with CNNC_PICK, which returns the
 * best table not above the active ISA. Tables missing from the build are NULL. */
CNNC_INTERNAL const void *cnnc_pick_table(const void *scalar, const void *avx2, const void *avx512,
                                          const void *neon);
#if defined(CNNC_HAVE_AVX2)
#  define CNNC_IF_AVX2(x) (&(x))
#else
#  define CNNC_IF_AVX2(x) ((const void *)0)
#endif
#if defined(CNNC_HAVE_AVX512)
#  define CNNC_IF_AVX512(x) (&(x))
#else
#  define CNNC_IF_AVX512(x) ((const void *)0)
#endif
#if defined(CNNC_HAVE_NEON)
#  define CNNC_IF_NEON(x) (&(x))
#else
#  define CNNC_IF_NEON(x) ((const void *)0)
#endif
/* Usage: const struct cnnc_foo_kernels *k = CNNC_PICK(cnnc_foo_kernels); with
 * tables named cnnc_foo_kernels_scalar / _avx2 / _avx512 / _neon. */
#define CNNC_PICK(name)                                                                      \
    ((const struct name *)cnnc_pick_table(&name##_scalar, CNNC_IF_AVX2(name##_avx2),         \
                                          CNNC_IF_AVX512(name##_avx512), CNNC_IF_NEON(name##_neon)))

/* ---- threads ------------------------------------------------------------ */
/* Threads to run `work` units of roughly `grain` units each on now, at
 * least 1: small problems stay on the calling thread, and while other
 * processes hold the CPUs fewer threads run (cnnc_get_running_limit). Always
 * 1 in a build without OpenMP, so drivers size their teams with this, not
 * cnnc_get_num_threads(). A driver whose bits follow its team size (a sum cut
 * into one part per thread) cuts its parts by cnnc_partition_threads_for
 * and runs them on this many threads. */
CNNC_INTERNAL int cnnc_threads_for(int64_t work, int64_t grain);
/* The same within cnnc_get_team_limit() alone: what cnnc_threads_for gives
 * on idle CPUs. Work partitions that set a result's bits follow this, so
 * that they never depend on the load of the machine. */
CNNC_INTERNAL int cnnc_partition_threads_for(int64_t work, int64_t grain);
/* Threads a team of at most `team` runs on now, on `cpus` usable CPUs
 * (src/core/contention.c). */
CNNC_INTERNAL int cnnc_running_limit(int team, int cpus);
/* Lets the contention monitor see the calling thread's waits (from
 * cnnc_fpu_enter, which every thread of a team calls). */
CNNC_INTERNAL void cnnc_contention_register_thread(void);
/* The start and end of a region's work on the calling thread (from
 * cnnc_fpu_enter and cnnc_fpu_restore): the monitor measures only while
 * cnnc's operations run (src/internal/own_work_stretch.h). */
CNNC_INTERNAL void cnnc_contention_region_start(void);
CNNC_INTERNAL void cnnc_contention_region_end(void);
/* In deterministic mode (cnnc_set_deterministic) a sum split between threads
 * is cut into parts fixed by the problem, not the team: as many as a team
 * of this many threads would take (cnnc_parts_for), added in part order. */
#define CNNC_DETERMINISTIC_PARTS 16
/* min(CNNC_DETERMINISTIC_PARTS, work / grain), at least 1: cnnc_threads_for
 * for a team of CNNC_DETERMINISTIC_PARTS on any machine. */
CNNC_INTERNAL int cnnc_parts_for(int64_t work, int64_t grain);
/* Flush-to-zero / denormals-are-zero for the calling thread, returning the
 * previous state for cnnc_fpu_restore. Called at the top of every parallel
 * region so that backward passes never crawl through denormals. */
CNNC_INTERNAL unsigned cnnc_fpu_enter(void);
CNNC_INTERNAL void cnnc_fpu_restore(unsigned state);

/* ---- memory ------------------------------------------------------------- */
/* Per-thread scratch buffer `slot` (0 <= slot < CNNC_WORKSPACE_SLOTS) of at
 * least `bytes` bytes, 64-byte aligned, kept between calls and grown as
 * needed. NULL (with the error set) if allocation fails. Contents are not
 * preserved when it grows. */
#define CNNC_WORKSPACE_SLOTS 8
CNNC_INTERNAL void *cnnc_workspace(int slot, size_t bytes);

static inline int64_t cnnc_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t cnnc_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
/* ceil(a / b) for a >= 0, b > 0, without overflow near INT64_MAX. */
static inline int64_t cnnc_ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

#endif
