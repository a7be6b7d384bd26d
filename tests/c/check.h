/* A minimal assertion harness for the C tests: each failed check prints its
 * location and the test exits non-zero at the end. */
#ifndef CNNC_TEST_CHECK_H
#define CNNC_TEST_CHECK_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cnnc.h"

static int check_failures = 0;

#define CHECK(cond) \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); ++check_failures; } } while (0)
#define CHECK_OK(expr) \
    do { cnnc_status s_ = (expr); if (s_ != CNNC_OK) { fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr, cnnc_status_string(s_), cnnc_last_error()); ++check_failures; } } while (0)
#define CHECK_STATUS(expr, want) \
    do { cnnc_status s_ = (expr); if (s_ != (want)) { fprintf(stderr, "%s:%d: %s -> %s, wanted %s\n", __FILE__, __LINE__, #expr, cnnc_status_string(s_), cnnc_status_string(want)); ++check_failures; } } while (0)
#define CHECK_NEAR(a, b, tol) \
    do { double a_ = (a), b_ = (b); if (!(fabs(a_ - b_) <= (tol) * (1.0 + fabs(b_)))) { fprintf(stderr, "%s:%d: %s = %g, wanted %g\n", __FILE__, __LINE__, #a, a_, b_); ++check_failures; } } while (0)

/* ctest runs every test once per ISA path (CNNC_ISA); on a CPU without the
 * path asked for, the library would quietly use a lower one, so the run
 * reports itself skipped instead (exit code 77, SKIP_RETURN_CODE in
 * tests/c/CMakeLists.txt) rather than passing for a path it never ran. */
#define CHECK_SKIP_CODE 77
__attribute__((constructor)) static void check_skip_missing_isa(void)
{
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    const char *want = getenv("CNNC_ISA");
    if (!want)
        return;
    for (int i = 0; i < 3; ++i)
        if (strcmp(want, names[i]) == 0 && (int)cnnc_max_isa() < i) {
            printf("skipped: this CPU (or build) lacks %s (best: %s)\n", want, names[cnnc_max_isa()]);
            exit(CHECK_SKIP_CODE);
        }
}

static inline int check_finish(const char *name)
{
    printf("%s [%s]: %s\n", name, cnnc_isa_name(), check_failures ? "FAILED" : "ok");
    return check_failures ? 1 : 0;
}

/* Deterministic uniform numbers in [-1, 1). */
static inline float check_uniform(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) * (1.0 / 8388608.0) - 1.0);
}
#endif
