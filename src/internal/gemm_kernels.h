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

struct cnnc_gemm_kernels {
    int mr, nr;
    /* Cache blocks: KC columns of A / rows of B per packed panel, MC rows of
     * A per packed block (a multiple of MR), NC columns of B per packed block
     * (a multiple of NR). */
    int64_t mc, kc, nc;
    cnnc_gemm_ukernel_fn ukernel;
    cnnc_gemm_pack_a_fn pack_a;
    cnnc_gemm_pack_b_fn pack_b;
};

extern CNNC_INTERNAL const struct cnnc_gemm_kernels cnnc_gemm_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_gemm_kernels cnnc_gemm_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_gemm_kernels cnnc_gemm_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_gemm_kernels cnnc_gemm_kernels_neon;

#endif
