/* A monotonic clock cheap enough to read on every operation (the coarse
 * clock, a few nanoseconds): for settings that are re-read at most every so
 * often. */
#ifndef CNNC_COARSE_CLOCK_H
#define CNNC_COARSE_CLOCK_H
#include <stdint.h>
#include <time.h>

static inline int64_t cnnc_coarse_now_ns(void)
{
    struct timespec ts;
#if defined(CLOCK_MONOTONIC_COARSE)
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
#endif
        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
            return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
