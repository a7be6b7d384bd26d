#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity */
#endif
#include <string.h>
#include "check.h"
#if defined(__linux__)
#include <sched.h>
#include <time.h>
#endif

static void test_conventions(void)
{
    CHECK(strlen(cnnc_version()) > 0);
    cnnc_isa best = cnnc_max_isa(), active = cnnc_get_isa();
    CHECK(active == CNNC_ISA_SCALAR || active == best ||
          (best != CNNC_ISA_NEON && active != CNNC_ISA_NEON && active < best));
    /* Paths of the other architecture are refused, whatever the numbers. */
    if (best == CNNC_ISA_NEON) {
        CHECK_STATUS(cnnc_set_isa(CNNC_ISA_AVX2), CNNC_ERR_UNSUPPORTED);
        CHECK_STATUS(cnnc_set_isa(CNNC_ISA_AVX512), CNNC_ERR_UNSUPPORTED);
    } else {
        CHECK_STATUS(cnnc_set_isa(CNNC_ISA_NEON), CNNC_ERR_UNSUPPORTED);
    }
    CHECK(cnnc_get_isa() == active);
    CHECK_OK(cnnc_set_isa(CNNC_ISA_SCALAR));
    CHECK(cnnc_get_isa() == CNNC_ISA_SCALAR);
    CHECK_OK(cnnc_set_isa(active));
    CHECK_STATUS(cnnc_set_num_threads(0), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "threads") != NULL);
    CHECK_OK(cnnc_set_num_threads(2));
    CHECK(cnnc_get_num_threads() == 2);
    CHECK_STATUS(cnnc_set_num_threads(-5), CNNC_ERR_INVALID_ARGUMENT);
    const int limit = cnnc_get_thread_limit();
    CHECK(limit >= 1);
    CHECK_STATUS(cnnc_set_num_threads(limit + 1), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(cnnc_last_error(), "limit") != NULL);
    CHECK_STATUS(cnnc_set_num_threads(1000000000), CNNC_ERR_INVALID_ARGUMENT);
    CHECK(cnnc_get_num_threads() == 2); /* unchanged by the refused calls */
    const int cap = limit < 16 ? limit : 16;
    CHECK_OK(cnnc_set_num_threads(cap));
    CHECK(cnnc_get_num_threads() == cap); /* the cap as set, whatever the CPUs */
    const int cpus = cnnc_get_usable_cpus();
    CHECK(cpus >= 1);
    CHECK(!cnnc_get_oversubscription());
    CHECK(cnnc_get_team_limit() == (cpus < cap ? cpus : cap));
    /* The thread-choice rule: a tiny operation on one thread, a large one on
     * every thread the team limit allows. */
    for (int allowed = 0; allowed <= 1; ++allowed) {
        cnnc_set_oversubscription(allowed);
        CHECK(cnnc_get_team_limit() == (allowed ? cap : (cpus < cap ? cpus : cap)));
        for (int kind = CNNC_WORK_ELEMENTWISE; kind <= CNNC_WORK_BIAS_GRAD; ++kind) {
            const int64_t grain = cnnc_work_grain((cnnc_work_kind)kind);
            CHECK(grain >= 1);
            CHECK(cnnc_threads_for_kind((cnnc_work_kind)kind, 0) == 1);
            CHECK(cnnc_threads_for_kind((cnnc_work_kind)kind, grain - 1) == 1);
            CHECK(cnnc_threads_for_kind((cnnc_work_kind)kind, INT64_MAX) == cnnc_get_team_limit());
        }
    }
    cnnc_set_oversubscription(0);
    CHECK_OK(cnnc_set_num_threads(2));
    const int deterministic = cnnc_get_deterministic();
    cnnc_set_deterministic(1);
    CHECK(cnnc_get_deterministic() == 1);
    cnnc_set_deterministic(0);
    CHECK(cnnc_get_deterministic() == 0);
    cnnc_set_deterministic(deterministic);
    CHECK_STATUS(cnnc_set_isa((cnnc_isa)7), CNNC_ERR_INVALID_ARGUMENT);
    void *p = cnnc_malloc(100);
    CHECK(p != NULL && ((uintptr_t)p % 64) == 0);
    cnnc_free(p);
    cnnc_free(NULL);
}

static void test_relu(void)
{
    enum { N = 1027 };
    float x[N], y[N], dy[N], dx[N];
    unsigned seed = 1;
    for (int i = 0; i < N; ++i) { x[i] = check_uniform(&seed); dy[i] = check_uniform(&seed); }
    CHECK_OK(cnnc_relu_forward(N, x, y));
    CHECK_OK(cnnc_relu_backward(N, x, dy, dx));
    for (int i = 0; i < N; ++i) {
        CHECK(y[i] == (x[i] > 0 ? x[i] : 0.0f));
        CHECK(dx[i] == (x[i] > 0 ? dy[i] : 0.0f));
    }
    CHECK_STATUS(cnnc_relu_forward(-1, x, y), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(cnnc_relu_forward(4, NULL, y), CNNC_ERR_INVALID_ARGUMENT);
    CHECK_OK(cnnc_relu_forward(0, NULL, NULL));
}

/* A process's CPU mask changed while it runs (taskset -p) limits its teams
 * once the cached count is re-read (at most 0.1 s later). */
static void test_affinity_followed(void)
{
#if defined(__linux__)
    cpu_set_t all;
    if (getenv("OMP_PROC_BIND") || sched_getaffinity(0, sizeof all, &all) != 0)
        return;
    const struct timespec refresh = {0, 150000000};
    const int quota = cnnc_get_cpu_quota(NULL);
    if (quota > 0 && quota < CPU_COUNT(&all)) /* the quota, not the mask, decides here */
        return;
    CHECK(cnnc_get_usable_cpus() == CPU_COUNT(&all));
    int first = 0;
    while (!CPU_ISSET(first, &all))
        ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0)
        return;
    nanosleep(&refresh, NULL);
    CHECK(cnnc_get_usable_cpus() == 1);
    CHECK_OK(cnnc_set_num_threads(4));
    CHECK(cnnc_get_num_threads() == 4 && cnnc_get_team_limit() == 1);
    CHECK(cnnc_threads_for_kind(CNNC_WORK_GEMM, INT64_MAX) == 1);
    CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
    nanosleep(&refresh, NULL);
    CHECK(cnnc_get_usable_cpus() == CPU_COUNT(&all));
    CHECK(cnnc_get_team_limit() == (CPU_COUNT(&all) < 4 ? CPU_COUNT(&all) : 4));
    CHECK_OK(cnnc_set_num_threads(2));
#endif
}

/* The adaptive team's rule (cnnc_threads_under_contention) and the running
 * limit, which lowers the threads that run but never the work partition
 * that cnnc_threads_for_kind reports. */
static void test_busy_cores(void)
{
    const double idle[4] = {0.0, 0.001, 0.0, 0.02};
    CHECK(cnnc_threads_under_contention(4, 4, idle, 4) == 4);
    CHECK(cnnc_threads_under_contention(2, 2, NULL, 0) == 2);
    /* 2 cores, one busy neighbour sharing a thread's core: 1 thread. */
    const double one_shared[2] = {0.0, 0.5};
    CHECK(cnnc_threads_under_contention(2, 2, one_shared, 2) == 1);
    /* 3 neighbours on 2 cores: every core holds 1.5 other tasks. */
    const double all_shared[2] = {0.6, 0.6};
    CHECK(cnnc_threads_under_contention(2, 2, all_shared, 2) == 1);
    /* 16 cores, 4 other tasks spread over the team's 16 threads. */
    double spread[16];
    for (int i = 0; i < 16; ++i)
        spread[i] = 0.2;
    CHECK(cnnc_threads_under_contention(16, 16, spread, 16) == 12);
    /* A wait share of 1 (or NaN, or below 0) does not blow up the estimate. */
    const double odd[3] = {1.0, -0.5, 0.0 / 0.0};
    CHECK(cnnc_threads_under_contention(16, 16, odd, 3) == 7);
    CHECK(cnnc_threads_under_contention(0, 0, NULL, 0) == 1);
    /* The free CPUs, never more than the team. */
    CHECK(cnnc_threads_under_contention(3, 8, one_shared, 2) == 3);

    CHECK_OK(cnnc_set_num_threads(2));
    CHECK_STATUS(cnnc_set_running_limit(-1), CNNC_ERR_INVALID_ARGUMENT);
    const int team = cnnc_get_team_limit();
    CHECK(cnnc_get_running_limit() >= 1 && cnnc_get_running_limit() <= team);
    CHECK_OK(cnnc_set_running_limit(1));
    CHECK(cnnc_get_running_limit() == 1);
    CHECK(cnnc_threads_for_kind(CNNC_WORK_GEMM, INT64_MAX) == team);
    CHECK_OK(cnnc_set_running_limit(0));
    const int adaptive = cnnc_get_adaptive_team();
    cnnc_set_adaptive_team(0);
    CHECK(!cnnc_get_adaptive_team());
    CHECK(cnnc_get_running_limit() == team);
    cnnc_set_adaptive_team(adaptive);
}

int main(void)
{
    test_conventions();
    test_affinity_followed();
    test_busy_cores();
    test_relu();
    cnnc_release_workspace();
    return check_finish("test_core");
}
