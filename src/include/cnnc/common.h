/* Conventions shared by every cnnc function: status codes, the last-error
 * message, threads, ISA selection and aligned memory. */
#ifndef CNNC_COMMON_H
#define CNNC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CNNC_STATIC)
#  define CNNC_API
#elif defined(_WIN32)
#  ifdef CNNC_BUILDING
#    define CNNC_API __declspec(dllexport)
#  else
#    define CNNC_API __declspec(dllimport)
#  endif
#else
#  define CNNC_API __attribute__((visibility("default")))
#endif

/* Every public function returns one of these. On failure a description of
 * the problem is available from cnnc_last_error() on the same thread. */
typedef enum cnnc_status {
    CNNC_OK = 0,
    CNNC_ERR_INVALID_ARGUMENT = 1, /* a size, stride, option or pointer is wrong */
    CNNC_ERR_SHAPE = 2,            /* shapes disagree with each other */
    CNNC_ERR_OVERFLOW = 3,         /* a size computation overflows int64/size_t */
    CNNC_ERR_OUT_OF_MEMORY = 4,
    CNNC_ERR_UNSUPPORTED = 5,      /* valid request this build cannot serve */
    CNNC_ERR_INTERNAL = 6,
    CNNC_ERR_FORMAT = 7,           /* a model file is corrupt, truncated or not a cnnc model */
    CNNC_ERR_IO = 8                /* a file cannot be opened or read */
} cnnc_status;

/* Instruction-set paths. On x86-64 they come in increasing order of
 * capability (scalar < AVX2 < AVX-512); on AArch64 the paths are scalar and
 * NEON. */
typedef enum cnnc_isa {
    CNNC_ISA_SCALAR = 0,
    CNNC_ISA_AVX2 = 1,   /* x86-64: AVX2 + FMA */
    CNNC_ISA_AVX512 = 2, /* x86-64: AVX-512 F/BW/DQ/VL */
    CNNC_ISA_NEON = 3    /* AArch64: Advanced SIMD (baseline there) */
} cnnc_isa;

CNNC_API const char *cnnc_version(void);
/* Message of the last failure on the calling thread ("" if none). */
CNNC_API const char *cnnc_last_error(void);
CNNC_API void cnnc_clear_error(void);
CNNC_API const char *cnnc_status_string(cnnc_status status);

/* The path in use: the best one the CPU and OS support, lowered by the
 * environment variable CNNC_ISA=scalar|avx2|avx512|neon or cnnc_set_isa(). */
CNNC_API cnnc_isa cnnc_get_isa(void);
CNNC_API const char *cnnc_isa_name(void);
/* Best path this CPU supports and this build contains. */
CNNC_API cnnc_isa cnnc_max_isa(void);
/* Fails with CNNC_ERR_UNSUPPORTED when this CPU or build cannot run isa
 * (above cnnc_max_isa(), or of another architecture). */
CNNC_API cnnc_status cnnc_set_isa(cnnc_isa isa);

/* Threads used by the parallel kernels: the user's cap on every team.
 * Defaults to the OpenMP default (OMP_NUM_THREADS or the cores this process
 * may run on). n must be in [1, cnnc_get_thread_limit()]:
 * CNNC_ERR_INVALID_ARGUMENT otherwise, and the setting is unchanged.
 * A team never takes more threads than the CPUs the process may run on
 * (cnnc_get_team_limit()), so a cap above that is accepted and lowered
 * per operation, not refused: more threads than CPUs only make the threads
 * wait for each other. cnnc_get_num_threads() returns the cap as set. */
CNNC_API cnnc_status cnnc_set_num_threads(int n);
CNNC_API int cnnc_get_num_threads(void);
/* CPUs the process may run on: the calling thread's affinity mask
 * (sched_getaffinity; with OMP_PROC_BIND, the processors of the OpenMP
 * places), else the online processors; at most cnnc_get_cpu_quota(NULL)
 * where the process's cgroup has a CPU quota. The mask is re-read at most
 * every 0.1 s and the quota every second, so a mask changed while the
 * process runs (taskset -p, a job scheduler) is followed. The default
 * thread count (no OMP_NUM_THREADS) is capped at the quota too. */
CNNC_API int cnnc_get_usable_cpus(void);
/* CPUs the CPU quota of the process's cgroup allows: ceil(quota / period)
 * of cgroup v2 cpu.max or of cgroup v1 cpu.cfs_quota_us and
 * cpu.cfs_period_us, the least over the cgroup and its ancestors (the
 * hierarchies found in /proc/self/mountinfo, the cgroup in
 * /proc/self/cgroup). 0 when there is no quota or nothing can be read, and
 * always 0 off Linux. `root` stands for "/" in every path read (a test's
 * fake tree, a chroot); NULL or "/" reads the system. */
CNNC_API int cnnc_get_cpu_quota(const char *root);
/* The most threads one operation takes now: min(cnnc_get_num_threads(),
 * cnnc_get_usable_cpus()), or cnnc_get_num_threads() alone while
 * oversubscription is allowed. */
CNNC_API int cnnc_get_team_limit(void);
/* Busy cores. A team waits at every barrier for its slowest thread, so a
 * thread that shares its core with another busy process holds the whole
 * team to that thread's time slices. By default (adaptive team on) cnnc
 * samples every 50 ms how long its threads waited for a CPU while runnable
 * (Linux schedstat) over 16 ms of its own operations (not while other code of
 * the process, such as another library's thread pool, runs between them)
 * and runs its teams on the CPUs the other processes leave free
 * (cnnc_threads_under_contention), growing back when they go (at once
 * when the machine's runnable-task count, /proc/loadavg, shows them gone);
 * operations of 64 grains per thread or more (milliseconds, as long as a
 * time slice) keep the whole team.
 * Only how many threads run changes: every work partition, and so every
 * result's bits, stays that of cnnc_get_team_limit() threads, and a smaller
 * team takes several parts per thread. CNNC_ADAPTIVE_TEAM=0 in the
 * environment or cnnc_set_adaptive_team(0) turns it off; it is off while
 * oversubscription is allowed, and where schedstat is missing (off Linux). */
CNNC_API void cnnc_set_adaptive_team(int enabled);
CNNC_API int cnnc_get_adaptive_team(void);
/* n >= 1: every team runs on at most n threads, whatever the load (its
 * partition, and so the bits, unchanged), instead of adapting; 0 (the
 * default) removes the limit. n < 0 is CNNC_ERR_INVALID_ARGUMENT. */
CNNC_API cnnc_status cnnc_set_running_limit(int n);
/* The most threads a team runs on now: cnnc_get_team_limit(), lowered by
 * cnnc_set_running_limit() or, adapting, by the load. */
CNNC_API int cnnc_get_running_limit(void);
/* The rule of the adaptive team: a team of at most `team` threads on `cpus`
 * usable CPUs, whose `count` active threads waited for a CPU these shares
 * (0..1) of their runnable time, runs on round(cpus - others) threads,
 * within [1, team], where others = sum of w / (1 - w) (w capped at 0.9) is
 * the number of other runnable tasks their cores held. */
CNNC_API int cnnc_threads_under_contention(int team, int cpus, const double *wait_shares, int count);
/* allowed != 0 lets teams take up to cnnc_get_num_threads() threads even on
 * fewer CPUs (off by default). For testing the work partitions of large
 * teams on a small machine; it is slower wherever it changes anything. */
CNNC_API void cnnc_set_oversubscription(int allowed);
CNNC_API int cnnc_get_oversubscription(void);
/* The most threads cnnc_set_num_threads() accepts: 8 per online processor
 * (64 at least), within OMP_THREAD_LIMIT and half of RLIMIT_NPROC. OpenMP
 * runtimes end the process when a thread cannot be created, so the limit is
 * kept well inside what the machine can create. */
CNNC_API int cnnc_get_thread_limit(void);

/* The thread-choice rule. Each kernel family measures its work in one unit
 * and has a least amount of work per thread (its grain, below which starting
 * a thread costs more than it saves); an operation of `work` units takes
 * min(cnnc_get_team_limit(), work / grain) threads, at least 1. So a small
 * operation stays on the calling thread and a large one takes every thread
 * allowed. Always 1 in a build without OpenMP. */
typedef enum cnnc_work_kind {
    CNNC_WORK_ELEMENTWISE = 0, /* activations, elementwise, dropout, norm, optimizer updates, loss: elements */
    CNNC_WORK_REDUCE = 1,      /* column/row sums: elements read */
    CNNC_WORK_POOL = 2,        /* pooling: window elements read */
    CNNC_WORK_AUGMENT = 3,     /* augmentation: output elements */
    CNNC_WORK_GEMM = 4,        /* matrix products: multiply-adds */
    CNNC_WORK_CONV = 5,        /* convolutions (GEMM, implicit, Winograd): multiply-adds */
    CNNC_WORK_DEPTHWISE = 6,   /* depthwise convolutions: multiply-adds */
    CNNC_WORK_BIAS_GRAD = 7    /* convolution bias gradients: elements summed */
} cnnc_work_kind;
/* The grain of a family (1 for an unknown kind). */
CNNC_API int64_t cnnc_work_grain(cnnc_work_kind kind);
/* Threads an operation of this family and size takes now: the parts its work
 * is split into, run on at most cnnc_get_running_limit() threads. */
CNNC_API int cnnc_threads_for_kind(cnnc_work_kind kind, int64_t work);

/* Determinism. Every result is the same bits from run to run at a fixed
 * team limit (cnnc_get_team_limit()), whatever threads run it. Across team sizes (thread counts, CPUs the process may use)
 * every kernel gives the same bits too, except two, whose work partition
 * follows the team unless deterministic mode is on: the weight (and bias)
 * gradients of convolutions, a sum over the batch's pixels split between the
 * threads, and the data gradients of strided convolutions. With
 * cnnc_set_deterministic(1) (off by default) those split their work into
 * parts fixed by the problem's shape alone and add the parts in a fixed
 * order, so every result is the same bits whatever the thread count, at
 * some cost in speed (README, "Threads"). Results still differ between ISA
 * paths. */
CNNC_API void cnnc_set_deterministic(int enabled);
CNNC_API int cnnc_get_deterministic(void);

/* 64-byte-aligned memory; cnnc_free(NULL) is a no-op. */
CNNC_API void *cnnc_malloc(size_t bytes);
CNNC_API void cnnc_free(void *ptr);
/* Frees the scratch buffers kept by the calling thread between calls. */
CNNC_API void cnnc_release_workspace(void);

#ifdef __cplusplus
}
#endif
#endif
