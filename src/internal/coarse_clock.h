/* Monotonic clocks in nanoseconds: the coarse one, cheap enough to read on
 * every operation (a few nanoseconds), for settings that are re-read at most
 * every so often; the fine one for measured stretches of work. */
#ifndef CNNC_COARSE_CLOCK_H
#define CNNC_COARSE_CLOCK_H
#include <stdint.h>
#include <time.h>

/* 0 when the clock cannot be read. */
static inline int64_t cnnc_clock_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t cnnc_now_ns(void)
{
    return cnnc_clock_ns(CLOCK_MONOTONIC);
}

static inline int64_t cnnc_coarse_now_ns(void)
{
#if defined(CLOCK_MONOTONIC_COARSE)
    int64_t now = cnnc_clock_ns(CLOCK_MONOTONIC_COARSE);
    if (now != 0)
        return now;
#endif
    return cnnc_now_ns();
}

#endif
