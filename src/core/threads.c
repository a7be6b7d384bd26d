#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT_S */
#endif
#include "cnnc_internal.h"
#include "coarse_clock.h"
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef CNNC_OPENMP
#include <omp.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

static volatile int num_threads = 0; /* 0: not chosen yet */
static volatile int oversubscription = 0;
static volatile int deterministic = 0;

/* libgomp ends the whole process when it cannot create a thread it was asked
 * for, so the count is bounded by what the machine can be expected to honour:
 * a generous oversubscription of the online processors (64 at least, so that
 * tests of odd team sizes run anywhere), OpenMP's thread limit, and half the
 * user's process limit (other processes of the user need some). */
int cnnc_get_thread_limit(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    int64_t limit = cnnc_max_i64(64, 8 * (int64_t)cpus);
#ifdef CNNC_OPENMP
    int omp_limit = omp_get_thread_limit();
    if (omp_limit >= 1)
        limit = cnnc_min_i64(limit, omp_limit);
#endif
    struct rlimit nproc;
    if (getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_cur != RLIM_INFINITY)
        limit = cnnc_min_i64(limit, cnnc_max_i64(1, (int64_t)(nproc.rlim_cur / 2)));
    return (int)cnnc_min_i64(limit, 1 << 20);
}

cnnc_status cnnc_set_num_threads(int n)
{
    if (n < 1)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "number of threads must be >= 1, got %d", n);
    int limit = cnnc_get_thread_limit();
    if (n > limit)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT,
                          "number of threads %d is above the limit of %d on this machine "
                          "(cnnc_get_thread_limit())", n, limit);
    num_threads = n;
    return CNNC_OK;
}

int cnnc_get_num_threads(void)
{
    if (num_threads <= 0) {
#ifdef CNNC_OPENMP
        /* OMP_NUM_THREADS may ask for more than the machine can create.
         * Without it, OpenMP's default is the affinity mask; a CPU quota
         * lowers it further (what the user sets is kept as set). */
        int64_t count = cnnc_min_i64(omp_get_max_threads(), cnnc_get_thread_limit());
        const char *asked = getenv("OMP_NUM_THREADS");
        int quota = asked && *asked ? 0 : cnnc_get_cpu_quota(NULL);
        if (quota > 0)
            count = cnnc_min_i64(count, quota);
        num_threads = (int)count;
#else
        num_threads = 1;
#endif
    }
    return num_threads;
}

/* CPUs in the affinity mask of the calling thread, which (unless a runtime
 * pinned it) is the process's. 0 when it cannot be read. */
static int affinity_cpus(void)
{
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    /* More CPUs than a cpu_set_t holds (1024): a larger mask. */
    for (int cpus = 2 * CPU_SETSIZE; errno == EINVAL && cpus <= (1 << 20); cpus *= 2) {
        cpu_set_t *big = CPU_ALLOC(cpus);
        if (!big)
            return 0;
        size_t size = CPU_ALLOC_SIZE(cpus);
        int count = sched_getaffinity(0, size, big) == 0 ? CPU_COUNT_S(size, big) : 0;
        CPU_FREE(big);
        if (count > 0)
            return count;
    }
#endif
    return 0;
}

/* The mask can change while the process runs (taskset -p, a job scheduler, a
 * runtime that pins its threads), so the count is re-read when older than
 * this. Reading the coarse clock costs nanoseconds; the system call, about a
 * microsecond, so it is not made on every operation. */
#define USABLE_CPUS_REFRESH_NS 100000000 /* 0.1 s */

static int usable_cpus_cached = 0;
static int64_t usable_cpus_read_at = 0;

/* The quota files change even more rarely, and finding them means reading
 * the mount table, so the quota is re-read at most every second. */
#define CPU_QUOTA_REFRESH_NS 1000000000 /* 1 s */
static int cpu_quota_cached = -1; /* -1: not read yet; 0: none */
static int64_t cpu_quota_read_at = 0;

static int current_cpu_quota(int64_t now)
{
    int cached = __atomic_load_n(&cpu_quota_cached, __ATOMIC_RELAXED);
    if (cached >= 0 && now - __atomic_load_n(&cpu_quota_read_at, __ATOMIC_RELAXED) < CPU_QUOTA_REFRESH_NS)
        return cached;
    int quota = cnnc_get_cpu_quota(NULL);
    __atomic_store_n(&cpu_quota_cached, quota, __ATOMIC_RELAXED);
    __atomic_store_n(&cpu_quota_read_at, now, __ATOMIC_RELAXED);
    return quota;
}

/* With OMP_PROC_BIND, libgomp pins the initial thread to one place, so the
 * calling thread's mask says 1; the team is spread over the places, whose
 * processors are then the CPUs cnnc may use. */
static int bound_places_cpus(void)
{
#ifdef CNNC_OPENMP
    if (omp_get_proc_bind() == omp_proc_bind_false)
        return 0;
    int cpus = 0;
    for (int place = 0; place < omp_get_num_places(); ++place)
        cpus += omp_get_place_num_procs(place);
    return cpus;
#else
    return 0;
#endif
}

int cnnc_get_usable_cpus(void)
{
    int64_t now = cnnc_coarse_now_ns();
    int cached = __atomic_load_n(&usable_cpus_cached, __ATOMIC_RELAXED);
    if (cached > 0 && now - __atomic_load_n(&usable_cpus_read_at, __ATOMIC_RELAXED) < USABLE_CPUS_REFRESH_NS)
        return cached;
    int cpus = bound_places_cpus();
    if (cpus < 1)
        cpus = affinity_cpus();
    if (cpus < 1) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = online >= 1 ? (int)cnnc_min_i64(online, 1 << 20) : 1;
    }
    int quota = current_cpu_quota(now);
    if (quota > 0 && quota < cpus)
        cpus = quota;
    /* Concurrent refreshes store the same kind of value; either is fine. */
    __atomic_store_n(&usable_cpus_cached, cpus, __ATOMIC_RELAXED);
    __atomic_store_n(&usable_cpus_read_at, now, __ATOMIC_RELAXED);
    return cpus;
}

void cnnc_set_oversubscription(int allowed)
{
    oversubscription = allowed != 0;
}

int cnnc_get_oversubscription(void)
{
    return oversubscription;
}

int cnnc_get_team_limit(void)
{
    int cap = cnnc_get_num_threads();
    if (oversubscription)
        return cap;
    int cpus = cnnc_get_usable_cpus();
    return cpus < cap ? cpus : cap;
}

/* Grains per thread from which an operation keeps its whole team on busy
 * cores: it runs for milliseconds, as long as a scheduler's time slice, so
 * its threads get their share of busy cores as they come (2 threads beside 3
 * busy processes on 2 cores get 0.8 of a core, 1 thread gets 0.5). Shorter
 * regions wait whole time slices for a thread that shares its core, and run
 * on cnnc_running_limit's threads. */
#define LONG_REGION_GRAINS 64

/* work / grain threads, at least 1, within the team limit and, `running`,
 * for an operation too short to keep its team on busy cores, within the
 * threads that may run now. */
static int threads_for_work(int64_t work, int64_t grain, int running)
{
#ifndef CNNC_OPENMP
    /* Without OpenMP there is no team to split work over, whatever
     * cnnc_set_num_threads() said: drivers must run on the calling thread. */
    (void)work;
    (void)grain;
    (void)running;
    return 1;
#else
    if (grain < 1)
        grain = 1;
    int64_t useful = work / grain;
    if (useful <= 1)
        return 1; /* the common small operation: no look at the team */
    int max = cnnc_get_team_limit();
    if (running && useful < LONG_REGION_GRAINS * (int64_t)max)
        max = cnnc_running_limit(max, cnnc_get_usable_cpus());
    return useful < max ? (int)useful : max;
#endif
}

int cnnc_partition_threads_for(int64_t work, int64_t grain)
{
    return threads_for_work(work, grain, 0);
}

int cnnc_threads_for(int64_t work, int64_t grain)
{
    return threads_for_work(work, grain, 1);
}

int cnnc_parts_for(int64_t work, int64_t grain)
{
    if (grain < 1)
        grain = 1;
    int64_t useful = work / grain;
    return useful <= 1 ? 1 : useful < CNNC_DETERMINISTIC_PARTS ? (int)useful : CNNC_DETERMINISTIC_PARTS;
}

void cnnc_set_deterministic(int enabled)
{
    deterministic = enabled != 0;
}

int cnnc_get_deterministic(void)
{
    return deterministic;
}

/* The least work per thread of each kernel family, in its unit of work:
 * below it, starting and joining a team costs more than splitting saves.
 * A team costs some microseconds to start and join (more when its threads
 * sleep between regions), so each thread needs tens of microseconds of work:
 * about this much for each family's kernels (benchmarks/bench_threads.py
 * shows the effect). */
static const int64_t work_grain[] = {
    [CNNC_WORK_ELEMENTWISE] = 32768,     /* elements, memory-bound */
    [CNNC_WORK_REDUCE] = 32768,          /* elements read */
    [CNNC_WORK_POOL] = 65536,            /* window elements read */
    [CNNC_WORK_AUGMENT] = 16384,         /* output elements, resampled */
    [CNNC_WORK_GEMM] = (int64_t)1 << 21, /* multiply-adds */
    [CNNC_WORK_CONV] = (int64_t)1 << 21, /* multiply-adds */
    /* multiply-adds, memory-bound: about 7 us each at one thread, so a
     * MobileNet layer of 20 us (28x28 -> 14x14, 256 channels, batch 1)
     * takes 2 threads */
    [CNNC_WORK_DEPTHWISE] = (int64_t)1 << 17,
    [CNNC_WORK_BIAS_GRAD] = (int64_t)1 << 16, /* elements summed */
};

int64_t cnnc_work_grain(cnnc_work_kind kind)
{
    if ((unsigned)kind >= sizeof work_grain / sizeof work_grain[0])
        return 1;
    return work_grain[kind];
}

int cnnc_threads_for_kind(cnnc_work_kind kind, int64_t work)
{
    return cnnc_partition_threads_for(work, cnnc_work_grain(kind));
}

unsigned cnnc_fpu_enter(void)
{
    cnnc_contention_register_thread();
    cnnc_contention_region_start();
#if defined(__SSE__) || defined(__x86_64__)
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ | DAZ */
    return old;
#elif defined(__aarch64__)
    /* FPCR.FZ (bit 24): flush denormal inputs and results to zero, as FTZ|DAZ do on x86. */
    uint64_t old;
    __asm__ volatile("mrs %0, fpcr" : "=r"(old));
    __asm__ volatile("msr fpcr, %0" : : "r"(old | (UINT64_C(1) << 24)));
    return (unsigned)old;
#else
    return 0;
#endif
}

void cnnc_fpu_restore(unsigned state)
{
    cnnc_contention_region_end();
#if defined(__SSE__) || defined(__x86_64__)
    _mm_setcsr(state);
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" : : "r"((uint64_t)state));
#else
    (void)state;
#endif
}
