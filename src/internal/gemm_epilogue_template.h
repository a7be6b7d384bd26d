/* The GEMM output stage (cnnc_gemm_epilogue_fn, contract in gemm_kernels.h)
 * written once over the SIMD vocabulary and compiled into each ISA's GEMM
 * table by src/kernels/<isa>/gemm_<isa>.c, which defines CNNC_SIMD first.
 *
 * The stage runs on every MR x NR tile right after the micro-kernel (with
 * a residual, on runs of tiles: rows of up to 1 KiB), so a row is a few
 * vectors: the terms present are chosen once per call
 * (a constant in each expansion) and a row's last partial vector is one
 * masked load and store, where a generic loop paid its setup and remainder
 * on every row (the stage took 8% of a MobileNet's GEMM time at batch 1).
 * Each term is added in the contract's order and the activation is the
 * activation kernels' rule (src/internal/activation_template.h), so every
 * ISA writes the bits of the layers run one by one. */
#ifndef CNNC_GEMM_EPILOGUE_TEMPLATE_H
#define CNNC_GEMM_EPILOGUE_TEMPLATE_H
#include "gemm_kernels.h"
#include "simd.h"

#define GE_INLINE static inline __attribute__((always_inline))

/* act(v + bias[j..] + residual[j..]) over `lanes` lanes (all when full). */
GE_INLINE vf epilogue_vector(vf v, const float *bias, const float *residual, int64_t j, int64_t lanes, const int full,
                             const int has_bias, const int has_residual, const int activate, int plain, vf slope,
                             vf cap)
{
    if (has_bias)
        v = vf_add(v, full ? vf_load(bias + j) : vf_load_part(bias + j, lanes));
    if (has_residual)
        v = vf_add(v, full ? vf_load(residual + j) : vf_load_part(residual + j, lanes));
    if (activate) {
        /* Without a slope, max(0, v) as the ReLU layers: 0 * v would turn
         * -inf into NaN and negatives into -0. */
        v = plain ? vf_max(vf_zero(), v) : vf_select(vf_gt(v, vf_zero()), v, vf_mul(slope, v));
        v = vf_min(cap, v); /* v when v is NaN */
    }
    return v;
}

GE_INLINE void epilogue_rows(const struct cnnc_gemm_epilogue *ep, float *c, int64_t ldc, int64_t m, int64_t n,
                             int64_t i0, int64_t j0, const int has_bias, const int has_residual, const int activate)
{
    const float *bias = has_bias ? ep->bias + j0 : NULL;
    const vf slope = vf_set1(ep->slope), cap = vf_set1(ep->max_value);
    const int plain = ep->slope == 0.0f;
    for (int64_t i = 0; i < m; ++i) {
        float *row = c + i * ldc;
        const float *residual = has_residual ? ep->residual + (i0 + i) * ep->ldr + j0 : NULL;
        int64_t j = 0;
        for (; j + VW <= n; j += VW)
            vf_store(row + j, epilogue_vector(vf_load(row + j), bias, residual, j, VW, 1, has_bias, has_residual,
                                              activate, plain, slope, cap));
        if (j < n)
            vf_store_part(row + j, epilogue_vector(vf_load_part(row + j, n - j), bias, residual, j, n - j, 0,
                                                   has_bias, has_residual, activate, plain, slope, cap),
                          n - j);
    }
}

static void gemm_epilogue_simd(const struct cnnc_gemm_epilogue *ep, float *c, int64_t ldc, int64_t m, int64_t n,
                               int64_t i0, int64_t j0)
{
    switch ((ep->bias != NULL) | (ep->residual != NULL) << 1 | (ep->activate != 0) << 2) {
    case 1: epilogue_rows(ep, c, ldc, m, n, i0, j0, 1, 0, 0); break;
    case 2: epilogue_rows(ep, c, ldc, m, n, i0, j0, 0, 1, 0); break;
    case 3: epilogue_rows(ep, c, ldc, m, n, i0, j0, 1, 1, 0); break;
    case 4: epilogue_rows(ep, c, ldc, m, n, i0, j0, 0, 0, 1); break;
    case 5: epilogue_rows(ep, c, ldc, m, n, i0, j0, 1, 0, 1); break;
    case 6: epilogue_rows(ep, c, ldc, m, n, i0, j0, 0, 1, 1); break;
    case 7: epilogue_rows(ep, c, ldc, m, n, i0, j0, 1, 1, 1); break;
    default: break;
    }
}

/* The terms of a stage as one number, for micro-kernels that apply it to a
 * tile in registers with the terms as constants (a test per term and
 * vector branched all over the store of a tile): bit 0 the bias, bit 1 the
 * residual, then the activation (0 none, 1 max(0, v) then the cap, 2 the
 * slope then the cap). GEMM_STAGE_KINDS(X) expands X(kind) for each. */
static inline int gemm_stage_kind(const struct cnnc_gemm_epilogue *ep)
{
    return (ep->bias != NULL) | (ep->residual != NULL) << 1 | (!ep->activate ? 0 : ep->slope == 0.0f ? 1 : 2) << 2;
}
#define GEMM_STAGE_KINDS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* A stage's operands for the tile whose first element is C(i0, j0), taken
 * once per tile into locals (read through ep, they were read again after
 * every store to C, which the compiler cannot tell apart from ep). */
struct gemm_tile_stage {
    const float *bias, *residual; /* at the tile's first column (and row) */
    int64_t ldr;
    vf slope, cap;
};

GE_INLINE struct gemm_tile_stage gemm_tile_stage(const struct cnnc_gemm_epilogue *ep, int64_t i0, int64_t j0)
{
    return (struct gemm_tile_stage){ep->bias ? ep->bias + j0 : NULL,
                                    ep->residual ? ep->residual + i0 * ep->ldr + j0 : NULL, ep->ldr,
                                    vf_set1(ep->slope), vf_set1(ep->max_value)};
}

/* The stage of `kind` on v: row i of the tile, its `lanes` lanes from
 * column j (all of them when full). */
GE_INLINE vf gemm_stage_vector(const struct gemm_tile_stage *st, vf v, int64_t i, int64_t j, int64_t lanes,
                               const int full, const int kind)
{
    return epilogue_vector(v, st->bias, kind & 2 ? st->residual + i * st->ldr : NULL, j, lanes, full, kind & 1,
                           kind & 2, kind >> 2 != 0, kind >> 2 == 1, st->slope, st->cap);
}

/* The table's two micro-kernel entries over a kernel file's ukernel_body
 * (its micro-kernel with the output stage ep, or none: NULL, as a
 * parameter), each inlined with its stage or without. */
#define GEMM_UKERNEL_ENTRIES                                                                                      \
    static void ukernel(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp, float *c,         \
                        int64_t ldc, int64_t m, int64_t n, float alpha, float beta)                               \
    {                                                                                                             \
        ukernel_body(k, a, rs_a, cs_a, bp, c, ldc, m, n, alpha, beta, NULL, 0, 0);                                \
    }                                                                                                             \
    static void ukernel_staged(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp, float *c,  \
                               int64_t ldc, int64_t m, int64_t n, float alpha, float beta,                        \
                               const struct cnnc_gemm_epilogue *ep, int64_t i0, int64_t j0)                       \
    {                                                                                                             \
        ukernel_body(k, a, rs_a, cs_a, bp, c, ldc, m, n, alpha, beta, ep, i0, j0);                                \
    }

#ifdef GEMM_NR
/* cnnc_gemm_ukernel_staged_fn's store for a kernel that holds its tile in
 * memory (t, row stride GEMM_NR): gemm_store_tile, then the stage, on a
 * copy of C's m x n corner in L1, which is then written to C. */
static inline void gemm_store_tile_staged(const float *t, float *c, int64_t ldc, int64_t m, int64_t n, float alpha,
                                          float beta, const struct cnnc_gemm_epilogue *ep, int64_t i0, int64_t j0)
{
    float s[GEMM_MR * GEMM_NR];
    if (beta != 0.0f)
        for (int64_t i = 0; i < m; ++i)
            memcpy(s + i * GEMM_NR, c + i * ldc, (size_t)n * sizeof(float));
    gemm_store_tile(t, s, GEMM_NR, m, n, alpha, beta);
    gemm_epilogue_simd(ep, s, GEMM_NR, m, n, i0, j0);
    for (int64_t i = 0; i < m; ++i)
        memcpy(c + i * ldc, s + i * GEMM_NR, (size_t)n * sizeof(float));
}
#endif

#endif
