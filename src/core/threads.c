#include "cnnc_internal.h"
#ifdef CNNC_OPENMP
#include <omp.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

static volatile int num_threads = 0; /* 0: not chosen yet */

cnnc_status cnnc_set_num_threads(int n)
{
    if (n < 1)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "number of threads must be >= 1, got %d", n);
    num_threads = n;
    return CNNC_OK;
}

int cnnc_get_num_threads(void)
{
    if (num_threads <= 0) {
#ifdef CNNC_OPENMP
        num_threads = omp_get_max_threads();
#else
        num_threads = 1;
#endif
    }
    return num_threads;
}

int cnnc_threads_for(int64_t work, int64_t grain)
{
#ifndef CNNC_OPENMP
    /* Without OpenMP there is no team to split work over, whatever
     * cnnc_set_num_threads() said: drivers must run on the calling thread. */
    (void)work;
    (void)grain;
    return 1;
#endif
    int max = cnnc_get_num_threads();
    if (grain < 1)
        grain = 1;
    int64_t useful = work / grain;
    if (useful < 1)
        return 1;
    return useful < max ? (int)useful : max;
}

unsigned cnnc_fpu_enter(void)
{
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
#if defined(__SSE__) || defined(__x86_64__)
    _mm_setcsr(state);
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" : : "r"((uint64_t)state));
#else
    (void)state;
#endif
}
