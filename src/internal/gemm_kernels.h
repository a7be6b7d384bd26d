/* Per-ISA pieces of the GEMM (BLIS structure): a register-blocked
 * micro-kernel computing an MR x NR tile of C from packed panels, the
 * routines that pack A and B into those panels, and the cache-blocking
 * parameters that suit that micro-kernel. The driver (src/gemm.c) owns the
 * loops, the buffers and the threads. */
#ifndef CNNC_GEMM_KERNELS_H
#define CNNC_GEMM_KERNELS_H
#include "cnnc_internal.h"

/* Packed layouts. A block of m rows and k columns of op(A) is stored as
 * ceil(m / MR) panels of k * MR floats; in a panel, element (i, p) is at
 * p * MR + i, and rows past m are zero. A block of k rows and n columns of
 * op(B) is stored as ceil(n / NR) panels of k * NR floats, element (p, j) at
 * p * NR + j, columns past n zero. */

/* C[i][j] (0 <= i < m <= MR, 0 <= j < n <= NR) =
 *     alpha * sum_p A(i, p) * Bp[p * NR + j] + beta * C[i][j]
 * where A(i, p) = a[i * rs_a + p * cs_a]: either a packed panel (rs_a = 1,
 * cs_a = MR) or op(A) read in place (rs_a = lda, cs_a = 1; then m == MR).
 * beta == 0 does not read C. Only the m x n corner of C is touched. */
typedef void (*cnnc_gemm_ukernel_fn)(int64_t k, const float *a, int64_t rs_a, int64_t cs_a,
                                     const float *bp, float *c, int64_t ldc,
                                     int64_t m, int64_t n, float alpha, float beta);
/* Packs rows [0, m) and columns [0, k) of the matrix whose element (i, p) is
 * a[i * rs + p * cs] into ceil(m / MR) panels at ap. */
typedef void (*cnnc_gemm_pack_a_fn)(int64_t m, int64_t k, const float *a, int64_t rs, int64_t cs,
                                    float *ap);
/* Packs rows [0, k) and columns [0, n) of the matrix whose element (p, j) is
 * b[p * rs + j * cs] into ceil(n / NR) panels at bp. */
typedef void (*cnnc_gemm_pack_b_fn)(int64_t k, int64_t n, const float *b, int64_t rs, int64_t cs,
                                    float *bp);

/* The output stage of a fused GEMM, applied to each MR x NR tile of C right
 * after its last K block, while the tile is in registers (ukernel_staged;
 * with a residual on packed blocks of A, to runs of columns of a block of
 * rows once their last K block is done, still in L2, so that the residual
 * is read row by row):
 *   c = act(c + bias[j] + residual[i * ldr + j])
 * in that order (each term optional), with act(v) = max(0, v) when slope
 * is 0 (NaN and -0 kept, -inf gives 0, as the ReLU kernel), else
 * v > 0 ? v : slope * v, then capped at max_value, when `activate` is set
 * (ReLU: slope 0, max_value INFINITY; ReLU6: max_value 6; leaky ReLU: its
 * slope). NaN stays NaN. residual must not overlap C. */
struct cnnc_gemm_epilogue {
    const float *bias;
    const float *residual;
    int64_t ldr;
    int activate;
    float slope, max_value;
};

/* What is left of `stage` for a kernel that adds the bias itself while it
 * computes the output: its residual and activation in *rest (bias NULL),
 * or NULL when neither is set. Applying `stage` whole there would add the
 * bias twice. */
static inline const struct cnnc_gemm_epilogue *cnnc_gemm_epilogue_after_bias(const struct cnnc_gemm_epilogue *stage,
                                                                            struct cnnc_gemm_epilogue *rest)
{
    if (!stage || (!stage->residual && !stage->activate))
        return NULL;
    *rest = *stage;
    rest->bias = NULL;
    return rest;
}

/* Applies the output stage to the m x n tile at c (row stride ldc), whose
 * first element is C(i0, j0). */
typedef void (*cnnc_gemm_epilogue_fn)(const struct cnnc_gemm_epilogue *ep, float *c, int64_t ldc, int64_t m,
                                      int64_t n, int64_t i0, int64_t j0);

/* The micro-kernel followed by the output stage on its tile, C(i0, j0)
 * being the tile's first element: C[i][j] = stage(alpha * sum + beta *
 * C[i][j]), the bits of ukernel then epilogue on the same tile, with C
 * written once, the stage applied while the tile is still in registers
 * (a 1x1 convolution over few input channels spent up to a quarter of its
 * time storing its tiles, loading them back for the stage and storing
 * them again). */
typedef void (*cnnc_gemm_ukernel_staged_fn)(int64_t k, const float *a, int64_t rs_a, int64_t cs_a,
                                            const float *bp, float *c, int64_t ldc, int64_t m, int64_t n,
                                            float alpha, float beta, const struct cnnc_gemm_epilogue *ep,
                                            int64_t i0, int64_t j0);

struct cnnc_gemm_kernels {
    int mr, nr;
    /* Cache blocks: KC columns of A / rows of B per packed panel, MC rows of
     * A per packed block (a multiple of MR), NC columns of B per packed block
     * (a multiple of NR). */
    int64_t mc, kc, nc;
    cnnc_gemm_ukernel_fn ukernel;
    cnnc_gemm_pack_a_fn pack_a;
    cnnc_gemm_pack_b_fn pack_b;
    cnnc_gemm_epilogue_fn epilogue;
    cnnc_gemm_ukernel_staged_fn ukernel_staged;
};

extern CNNC_INTERNAL const struct cnnc_gemm_kernels cnnc_gemm_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_gemm_kernels cnnc_gemm_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_gemm_kernels cnnc_gemm_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_gemm_kernels cnnc_gemm_kernels_neon;

#endif
