/* Busy cores: how many threads a team runs on while other processes compete
 * for the CPUs.
 *
 * A team waits at every barrier for its slowest thread. When another
 * CPU-bound process shares a core with one of the team's threads, that
 * thread gets a time slice of milliseconds now and then, while a layer's
 * parallel region lasts tens of microseconds: the whole team then runs at
 * the pace of the time-sliced thread, and on 2 cores with one busy neighbour
 * 2 threads made a third of their idle speed, less than 1 thread alone.
 *
 * So the threads that run cnnc's work report how long they waited for a CPU
 * while runnable (the run delay in /proc/self/task/TID/schedstat, next to
 * their CPU time), sampled every SAMPLE_NS. A thread that waited a share w
 * of its runnable time shares its core with about w / (1 - w) other
 * runnable tasks; their sum over the team's active threads is the load of
 * the others, and the team runs on the CPUs it leaves free
 * (cnnc_threads_under_contention). Threads that are not running cannot see
 * the load on their cores, so when the running threads wait for nothing the
 * team grows back, judged by a sample PROBE_NS later; a growth that sample
 * undoes waits twice as long before it is tried again, unless the machine's
 * count of runnable tasks (/proc/loadavg, read with the counters) shows the
 * neighbour gone (src/internal/team_growth.h).
 *
 * The counters are read only around runs of cnnc's own operations
 * (src/internal/own_work_stretch.h): another thread pool of the process
 * running between them makes cnnc's threads wait too, for CPUs that cnnc's
 * next operations find free again.
 *
 * Only how many threads run changes, never how the work is split: each
 * operation's partition (and so its bits) follows the team limit
 * (cnnc_partition_threads_for), and a smaller team takes several parts per
 * thread. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall */
#endif
#include "cnnc_internal.h"
#include "coarse_clock.h"
#include "own_work_stretch.h"
#include "team_growth.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif
#ifdef CNNC_OPENMP
#include <omp.h>
#endif

#define SAMPLE_NS 50000000        /* 50 ms: tens of training steps of a small network */
#define PROBE_NS 10000000         /* a growth is judged sooner: it is tried where it may not pay */
#define MIN_ACTIVE_NS 500000      /* runnable time in a sample's stretches below which a thread's wait share is noise */
#define MAX_WAIT_SHARE 0.9        /* one thread never counts for more than 9 other tasks */
#define TRACKED_THREADS 64

int cnnc_threads_under_contention(int team, int cpus, const double *wait_shares, int count)
{
    if (team < 1)
        team = 1;
    if (cpus < 1)
        cpus = 1;
    double others = 0.0;
    for (int i = 0; wait_shares && i < count; ++i) {
        double w = wait_shares[i];
        if (!(w > 0.0)) /* also NaN */
            continue;
        if (w > MAX_WAIT_SHARE)
            w = MAX_WAIT_SHARE;
        others += w / (1.0 - w);
    }
    /* Round half up: one thread's core shared half the time costs that
     * thread, a few spurious microseconds of waiting cost nothing. */
    double free_cpus = (double)cpus - others + 0.5;
    int threads = free_cpus < 1.0 ? 1 : free_cpus >= (double)team ? team : (int)free_cpus;
    return threads;
}

#if defined(__linux__) && defined(CNNC_OPENMP)

static int adaptive = -1; /* -1: not read from CNNC_ADAPTIVE_TEAM yet */
static int fixed_limit = 0;
static int tracked_tid[TRACKED_THREADS];
static __thread int registered;

/* The sampler's state, touched only by the thread holding `sampling`. */
static int sampling;
static int measuring; /* a stretch is open: the first thread of each region reports its start and end */
static int64_t next_sample_at;
static int adapted;   /* threads the last sample chose; 0: none yet (the whole team) */
static team_growth growth;
static double runnable_sum; /* the machine's runnable tasks, summed over the sample's reads */
static int runnable_reads;
static int sample_team = 1, sample_cpus = 1;
static own_work_stretch stretch;
static struct {
    int tid;
    int64_t cpu_ns, delay_ns;
} baseline[TRACKED_THREADS];
static struct {
    int tid;
    int64_t ran_ns, waited_ns;
} sums[TRACKED_THREADS];

void cnnc_contention_register_thread(void)
{
    if (registered)
        return;
    registered = 1; /* also when every slot is taken: then it stays unseen */
    int tid = (int)syscall(SYS_gettid);
    for (int i = 0; i < TRACKED_THREADS; ++i) {
        int expected = 0;
        if (__atomic_compare_exchange_n(&tracked_tid[i], &expected, tid, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return;
    }
}

/* The text of a small /proc file, NUL-terminated in text (size bytes):
 * 1, or 0 when it cannot be opened or read. */
static int read_proc_text(const char *path, char *text, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t got = read(fd, text, size - 1);
    close(fd);
    if (got <= 0)
        return 0;
    text[got] = '\0';
    return 1;
}

/* The CPU time and run delay (ns) of a thread of this process; 0 when it
 * has ended or /proc cannot be read. */
static int read_schedstat(int tid, int64_t *cpu_ns, int64_t *delay_ns)
{
    char path[64], text[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    if (!read_proc_text(path, text, sizeof text))
        return 0;
    char *end;
    long long cpu = strtoll(text, &end, 10);
    if (end == text)
        return 0;
    const char *rest = end;
    long long delay = strtoll(rest, &end, 10);
    if (end == rest || cpu < 0 || delay < 0)
        return 0;
    *cpu_ns = cpu;
    *delay_ns = delay;
    return 1;
}

/* The machine's runnable tasks now (the 4th field of /proc/loadavg,
 * "runnable/all"), or -1. */
static int read_runnable(void)
{
    char text[128];
    return read_proc_text("/proc/loadavg", text, sizeof text) ? team_growth_parse_loadavg(text) : -1;
}

/* Reads the tracked threads' counters, which become the next stretch's
 * baseline; with `add`, first adds their change since the baseline (the
 * stretch just read) to the sample's sums. */
static void read_counters(int add)
{
    int runnable = read_runnable();
    if (runnable >= 0) {
        runnable_sum += runnable;
        ++runnable_reads;
    }
    for (int i = 0; i < TRACKED_THREADS; ++i) {
        int tid = __atomic_load_n(&tracked_tid[i], __ATOMIC_RELAXED);
        int64_t cpu, delay;
        if (tid == 0 || !read_schedstat(tid, &cpu, &delay)) {
            if (tid != 0) /* ended: free the slot */
                __atomic_compare_exchange_n(&tracked_tid[i], &tid, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            baseline[i].tid = 0;
            continue;
        }
        if (add && baseline[i].tid == tid) {
            int64_t ran = cpu - baseline[i].cpu_ns, waited = delay - baseline[i].delay_ns;
            if (sums[i].tid != tid) {
                sums[i].tid = tid;
                sums[i].ran_ns = sums[i].waited_ns = 0;
            }
            if (ran >= 0 && waited >= 0) {
                sums[i].ran_ns += ran;
                sums[i].waited_ns += waited;
            }
        }
        baseline[i].tid = tid;
        baseline[i].cpu_ns = cpu;
        baseline[i].delay_ns = delay;
    }
}

/* The sample ends: the wait shares of the threads that ran cnnc's work in
 * its stretches give the threads to run on until the next. */
static void decide(void)
{
    double shares[TRACKED_THREADS];
    int count = 0;
    for (int i = 0; i < TRACKED_THREADS; ++i) {
        if (sums[i].tid != 0 && sums[i].ran_ns + sums[i].waited_ns >= MIN_ACTIVE_NS)
            shares[count++] = (double)sums[i].waited_ns / (double)(sums[i].ran_ns + sums[i].waited_ns);
        sums[i].tid = 0;
    }
    if (count == 0)
        return; /* cnnc did not run: nothing learned */
    int team = sample_team, cpus = sample_cpus;
    growth.adapted = __atomic_load_n(&adapted, __ATOMIC_RELAXED); /* cnnc_set_adaptive_team may reset it */
    int free_cpus = team_growth_free_cpus(runnable_reads ? runnable_sum / runnable_reads : -1.0,
                                          team_growth_running(&growth, team), cpus, team);
    int chosen = team_growth_decide(&growth, team, cnnc_threads_under_contention(team, cpus, shares, count), free_cpus);
    __atomic_store_n(&adapted, chosen, __ATOMIC_RELAXED);
}

/* What the stretch logic asks for; the caller holds `sampling`. */
static void act(int action)
{
    switch (action) {
    case OWN_WORK_BASELINE:
        read_counters(0);
        __atomic_store_n(&measuring, 1, __ATOMIC_RELAXED);
        return;
    case OWN_WORK_ADD:
        read_counters(1);
        return;
    case OWN_WORK_ADD_SAMPLE:
        read_counters(1);
        /* fall through */
    case OWN_WORK_GIVE_UP:
        decide();
        __atomic_store_n(&measuring, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&next_sample_at, cnnc_coarse_now_ns() + (growth.last_grew ? PROBE_NS : SAMPLE_NS),
                         __ATOMIC_RELAXED);
        return;
    default:
        return;
    }
}

/* The first thread of a region (or the caller of a single-threaded
 * operation) starts or ends cnnc's work while a stretch is open. */
static void report_operation(int end)
{
    if (!__atomic_load_n(&measuring, __ATOMIC_RELAXED))
        return;
#ifdef CNNC_OPENMP
    if (omp_get_thread_num() != 0)
        return;
#endif
    if (__atomic_exchange_n(&sampling, 1, __ATOMIC_ACQUIRE))
        return;
    int64_t now = cnnc_now_ns();
    act(end ? own_work_operation_end(&stretch, now) : own_work_operation_start(&stretch, now));
    __atomic_store_n(&sampling, 0, __ATOMIC_RELEASE);
}

void cnnc_contention_region_start(void)
{
    report_operation(0);
}

void cnnc_contention_region_end(void)
{
    report_operation(1);
}

static int adaptive_enabled(void)
{
    int on = __atomic_load_n(&adaptive, __ATOMIC_RELAXED);
    if (on < 0) {
        const char *env = getenv("CNNC_ADAPTIVE_TEAM");
        on = !(env && env[0] == '0' && env[1] == '\0');
        __atomic_store_n(&adaptive, on, __ATOMIC_RELAXED);
    }
    return on;
}

int cnnc_running_limit(int team, int cpus)
{
    int fixed = __atomic_load_n(&fixed_limit, __ATOMIC_RELAXED);
    if (fixed > 0)
        return fixed < team ? fixed : team;
    if (team <= 1 || cnnc_get_oversubscription() || !adaptive_enabled())
        return team;
    int64_t now = cnnc_coarse_now_ns();
    if (!__atomic_load_n(&measuring, __ATOMIC_RELAXED) && now >= __atomic_load_n(&next_sample_at, __ATOMIC_RELAXED) &&
        !__atomic_exchange_n(&sampling, 1, __ATOMIC_ACQUIRE)) {
        if (!stretch.open) {
            sample_team = team;
            sample_cpus = cpus;
            runnable_sum = 0.0;
            runnable_reads = 0;
            act(own_work_begin(&stretch, cnnc_now_ns()));
        }
        __atomic_store_n(&sampling, 0, __ATOMIC_RELEASE);
    }
    int chosen = __atomic_load_n(&adapted, __ATOMIC_RELAXED);
    return chosen > 0 && chosen < team ? chosen : team;
}

void cnnc_set_adaptive_team(int enabled)
{
    __atomic_store_n(&adaptive, enabled != 0, __ATOMIC_RELAXED);
    __atomic_store_n(&adapted, 0, __ATOMIC_RELAXED); /* start again from the whole team */
}

int cnnc_get_adaptive_team(void)
{
    return adaptive_enabled();
}

#else /* no /proc schedstat or no team: nothing to adapt */

static int fixed_limit = 0;

void cnnc_contention_register_thread(void)
{
}

void cnnc_contention_region_start(void)
{
}

void cnnc_contention_region_end(void)
{
}

int cnnc_running_limit(int team, int cpus)
{
    (void)cpus;
    int fixed = __atomic_load_n(&fixed_limit, __ATOMIC_RELAXED);
    return fixed > 0 && fixed < team ? fixed : team;
}

void cnnc_set_adaptive_team(int enabled)
{
    (void)enabled;
}

int cnnc_get_adaptive_team(void)
{
    return 0;
}

#endif

cnnc_status cnnc_set_running_limit(int n)
{
    if (n < 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "running thread limit must be >= 0 (0: none), got %d", n);
    __atomic_store_n(&fixed_limit, n, __ATOMIC_RELAXED);
    return CNNC_OK;
}

int cnnc_get_running_limit(void)
{
    return cnnc_running_limit(cnnc_get_team_limit(), cnnc_get_usable_cpus());
}
