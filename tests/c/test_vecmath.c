/* The vector math of src/internal/vecmath.h (exp, expm1, erfc, log, log1p)
 * on every ISA path this CPU has, against libm in double: relative error over
 * wide sweeps and the special values. vecmath_eval_<isa>.c compile the same
 * evaluation loop (vecmath_eval.h) once per ISA. */
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include "check.h"
#include "vecmath_eval.h"

static const char *const names[F_COUNT] = {"exp", "expm1", "erfc", "log", "log1p"};

static double reference(int f, double x)
{
    switch (f) {
    case F_EXP: return exp(x);
    case F_EXPM1: return expm1(x);
    case F_ERFC: return erfc(x);
    case F_LOG: return log(x);
    default: return log1p(x);
    }
}

/* Sweep [lo, hi] and check the relative error. Results below FLT_MIN may be
 * flushed (the kernels run with FTZ), so they only need to be tiny. */
static void sweep(const char *isa, eval_fn eval, int f, double lo, double hi, double max_rel)
{
    enum { N = 20001 };
    static float x[N], y[N];
    for (int i = 0; i < N; ++i)
        x[i] = (float)(lo + (hi - lo) * i / (N - 1));
    eval(f, N, x, y);
    double worst = 0;
    int worst_i = 0;
    for (int i = 0; i < N; ++i) {
        double want = reference(f, x[i]);
        double err;
        if (fabs(want) < 1.2e-38)
            err = fabs(y[i]) < 1.2e-38 ? 0 : 1;
        else if (isinf(want))
            err = y[i] == want ? 0 : 1;
        else
            err = fabs(y[i] - want) / fabs(want);
        if (!(err <= worst)) {
            worst = err;
            worst_i = i;
        }
    }
    if (!(worst <= max_rel)) {
        fprintf(stderr, "%s %s on [%g, %g]: rel err %g at x = %.9g (got %.9g, want %.9g)\n", isa, names[f],
                lo, hi, worst, x[worst_i], y[worst_i], reference(f, x[worst_i]));
        ++check_failures;
    }
}

static void specials(const char *isa, eval_fn eval)
{
    const float inf = INFINITY;
    float x[4] = {-inf, inf, NAN, 0.0f}, y[4];
    eval(F_EXP, 4, x, y);
    CHECK(y[0] == 0.0f && y[1] == inf && isnan(y[2]) && y[3] == 1.0f);
    eval(F_EXPM1, 4, x, y);
    CHECK(y[0] == -1.0f && y[1] == inf && isnan(y[2]) && y[3] == 0.0f);
    eval(F_ERFC, 4, x, y);
    CHECK(y[0] == 2.0f && y[1] == 0.0f && isnan(y[2]));
    CHECK_NEAR(y[3], 1.0, 2e-7);
    float lx[5] = {0.0f, -1.0f, inf, NAN, 1.0f}, ly[5];
    eval(F_LOG, 5, lx, ly);
    CHECK(ly[0] == -inf && isnan(ly[1]) && ly[2] == inf && isnan(ly[3]) && ly[4] == 0.0f);
    float px[5] = {-1.0f, -2.0f, inf, NAN, 1e-30f}, py[5];
    eval(F_LOG1P, 5, px, py);
    CHECK(py[0] == -inf && isnan(py[1]) && py[2] == inf && isnan(py[3]) && py[4] == 1e-30f);
    (void)isa;
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The vocabulary operations the backends implement in their own way
 * (copysign by a bitwise select, masked adds, unordered compares), bit for
 * bit against their definitions, signed zeros and NaN included. */
static void vocabulary_ops(const char *isa, eval_fn eval)
{
    enum { N = 11 };
    const float inf = INFINITY;
    float x[N] = {-2.5f, -0.0f, 0.0f, 3.0f, NAN, -NAN, -inf, inf, 1e-30f, -1e30f, 0.75f}, y[N];
    for (int f = F_SIGN; f <= F_SELECT_ZERO_NGE; ++f) {
        eval(f, N, x, y);
        for (int i = 0; i < N; ++i) {
            float v = x[i], want;
            switch (f) {
            case F_SIGN: want = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f); break;
            case F_COPYSIGN: want = copysignf(1.5f, v); break;
            case F_NEG_ABS: want = -fabsf(v); break;
            case F_ADD_IF: want = v > 0.0f ? v + 1.0f : v; break;
            default: want = !(v >= 0.0f) ? v : 0.0f; break;
            }
            /* NaN results: any NaN of the expected sign; vf_add_if may
             * turn a -0 outside its mask into +0. */
            int ok = isnan(want) ? isnan(y[i]) && signbit(y[i]) == signbit(want)
                     : f == F_ADD_IF && want == 0.0f ? y[i] == 0.0f
                                                     : bits_of(y[i]) == bits_of(want);
            if (!ok) {
                fprintf(stderr, "%s vocabulary op %d at x = %g: got %g, want %g\n", isa, f, v, y[i], want);
                ++check_failures;
            }
        }
    }
}

static void check_path(const char *isa, eval_fn eval)
{
    vocabulary_ops(isa, eval);
    sweep(isa, eval, F_EXP, -87.0, 88.7, 2e-7);
    sweep(isa, eval, F_EXP, -1.0, 1.0, 2e-7);
    sweep(isa, eval, F_EXP, -110.0, -80.0, 2e-7);
    sweep(isa, eval, F_EXPM1, -0.6, 0.6, 2e-7);
    sweep(isa, eval, F_EXPM1, -1e-4, 1e-4, 2e-7);
    sweep(isa, eval, F_EXPM1, -30.0, 30.0, 2e-7);
    sweep(isa, eval, F_ERFC, -5.0, 5.0, 5e-7);
    sweep(isa, eval, F_ERFC, 3.0, 9.0, 5e-7);
    sweep(isa, eval, F_LOG, 1e-37, 1e-30, 2e-7);
    sweep(isa, eval, F_LOG, 0.5, 2.0, 3e-7);
    sweep(isa, eval, F_LOG, 1e-3, 1e6, 2e-7);
    sweep(isa, eval, F_LOG1P, -0.9, 3.0, 3e-7);
    sweep(isa, eval, F_LOG1P, -1e-5, 1e-5, 3e-7);
    specials(isa, eval);
}

static void flush_denormals_to_zero(void)
{
#if defined(__x86_64__)
    _mm_setcsr(_mm_getcsr() | 0x8040);
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (UINT64_C(1) << 24)));
#endif
}

int main(void)
{
    /* The kernels run with flush-to-zero, as cnnc's drivers set it. */
    flush_denormals_to_zero();
    check_path("scalar", vecmath_eval_scalar);
#if defined(CNNC_HAVE_AVX2)
    if (cnnc_max_isa() == CNNC_ISA_AVX2 || cnnc_max_isa() == CNNC_ISA_AVX512)
        check_path("avx2", vecmath_eval_avx2);
#endif
#if defined(CNNC_HAVE_AVX512)
    if (cnnc_max_isa() == CNNC_ISA_AVX512)
        check_path("avx512", vecmath_eval_avx512);
#endif
#if defined(CNNC_HAVE_NEON)
    if (cnnc_max_isa() == CNNC_ISA_NEON)
        check_path("neon", vecmath_eval_neon);
#endif
    return check_finish("test_vecmath");
}
