#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cnnc_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/* The CPU must report the instructions and the OS must save the wider
 * registers on context switch (XCR0), or using them faults. */
static cnnc_isa detect_cpu_isa(void)
{
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return CNNC_ISA_SCALAR;
    int has_osxsave = (ecx >> 27) & 1, has_fma = (ecx >> 12) & 1, has_avx = (ecx >> 28) & 1;
    if (!has_osxsave || !has_avx)
        return CNNC_ISA_SCALAR;
    uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6)
        return CNNC_ISA_SCALAR;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return CNNC_ISA_SCALAR;
    int has_avx2 = (ebx >> 5) & 1;
    int has_avx512 = ((ebx >> 16) & 1) /* F */ && ((ebx >> 17) & 1) /* DQ */ &&
                     ((ebx >> 30) & 1) /* BW */ && ((ebx >> 31) & 1) /* VL */;
    if (!(has_avx2 && has_fma))
        return CNNC_ISA_SCALAR;
    if (has_avx512 && (xcr0 & 0xe6) == 0xe6)
        return CNNC_ISA_AVX512;
    return CNNC_ISA_AVX2;
}
#elif defined(__aarch64__)
static cnnc_isa detect_cpu_isa(void) { return CNNC_ISA_NEON; }
#else
static cnnc_isa detect_cpu_isa(void) { return CNNC_ISA_SCALAR; }
#endif

static cnnc_isa build_cap(cnnc_isa isa)
{
#if !defined(CNNC_HAVE_NEON)
    if (isa == CNNC_ISA_NEON) isa = CNNC_ISA_SCALAR;
#endif
#if !defined(CNNC_HAVE_AVX512)
    if (isa >= CNNC_ISA_AVX512) isa = CNNC_ISA_AVX2;
#endif
#if !defined(CNNC_HAVE_AVX2)
    if (isa >= CNNC_ISA_AVX2) isa = CNNC_ISA_SCALAR;
#endif
    return isa;
}

static const char *const isa_names[] = {"scalar", "avx2", "avx512", "neon"};

/* Whether a path may run here: scalar always; on x86-64 anything up to the
 * best path; on AArch64 NEON when it is the best path. */
static int isa_runs_here(cnnc_isa isa, cnnc_isa best)
{
    if (isa == CNNC_ISA_SCALAR || isa == best)
        return 1;
    return best != CNNC_ISA_NEON && isa != CNNC_ISA_NEON && isa < best;
}

/* -1 until first use; then the active ISA. Benign race: every thread
 * computes the same value. */
static volatile int active_isa = -1;
static volatile int max_isa = -1;

static void init_isa(void)
{
    cnnc_isa best = build_cap(detect_cpu_isa());
    cnnc_isa chosen = best;
    const char *env = getenv("CNNC_ISA");
    if (env && *env) {
        for (int i = 0; i <= CNNC_ISA_NEON; ++i)
            if (strcasecmp(env, isa_names[i]) == 0 && isa_runs_here((cnnc_isa)i, best))
                chosen = (cnnc_isa)i;
    }
    max_isa = (int)best;
    active_isa = (int)chosen;
}

cnnc_isa cnnc_max_isa(void)
{
    if (max_isa < 0)
        init_isa();
    return (cnnc_isa)max_isa;
}

cnnc_isa cnnc_get_isa(void)
{
    if (active_isa < 0)
        init_isa();
    return (cnnc_isa)active_isa;
}

const char *cnnc_isa_name(void) { return isa_names[cnnc_get_isa()]; }

cnnc_status cnnc_set_isa(cnnc_isa isa)
{
    if ((int)isa < 0 || isa > CNNC_ISA_NEON)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "unknown ISA %d", (int)isa);
    if (!isa_runs_here(isa, cnnc_max_isa()))
        return cnnc_error(CNNC_ERR_UNSUPPORTED, "ISA %s is not supported here (best: %s)",
                          isa_names[isa], isa_names[cnnc_max_isa()]);
    active_isa = (int)isa;
    return CNNC_OK;
}

const void *cnnc_pick_table(const void *scalar, const void *avx2, const void *avx512, const void *neon)
{
    cnnc_isa isa = cnnc_get_isa();
    if (isa == CNNC_ISA_NEON)
        return neon ? neon : scalar;
    if (isa >= CNNC_ISA_AVX512 && avx512)
        return avx512;
    if (isa >= CNNC_ISA_AVX2 && avx2)
        return avx2;
    return scalar;
}
