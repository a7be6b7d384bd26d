/* SGEMM driver in the BLIS structure:
 *
 *   for jc in N by NC        B block (KC x NC) lives in L3
 *     for pc in K by KC        pack op(B)[pc:, jc:] once, shared by the threads
 *       for ic in M by MC        pack op(A)[ic:, pc:] per thread, lives in L2
 *         for jr in NC by NR       B micro-panel (KC x NR) lives in L1
 *           for ir in MC by MR       micro-kernel: MR x NR tile of C in registers
 *
 * The kernel table of the active ISA (src/kernels/<isa>/gemm_<isa>.c)
 * provides MR, NR, MC, KC, NC, the micro-kernel and the packing routines.
 * Threads split the ic range (each packs its own A block) and, when op(A) is
 * too short for that, the jr range; K is never split, so every element of C
 * is summed in the same order whatever the thread count. */
#include <string.h>
#include "gemm_kernels.h"
#include "gemm_internal.h"
#include "gemv_kernels.h"
#include "parallel.h"
#ifdef CNNC_OPENMP
#include <omp.h>
#endif

/* Work (M * N * K multiply-adds) per thread below which an extra thread
 * costs more than it saves: about 20 microseconds of one core's work. */
#define GEMM_THREAD_GRAIN cnnc_work_grain(CNNC_WORK_GEMM)

/* op(B) with at most this many NR panels counts as skinny (strips_inplace);
 * its packed K x N block is kept under GEMM_SKINNY_B_BYTES (a slice of L3). */
#define GEMM_SKINNY_PANELS 4
#define GEMM_SKINNY_B_BYTES ((int64_t)4 << 20)
/* The inference runtime's products (cnnc_sgemm_fused) read op(A) in place
 * whenever a KC block of op(B) packed takes at most this much: it is then
 * read from L2 for every strip of A. */
#define GEMM_INPLACE_B_BYTES ((int64_t)256 << 10)
/* Bytes per cache line, the step of the prefetches. */
#define GEMM_LINE_BYTES 64
/* Strips of MR rows per unit of work on the skinny path. */
#define GEMM_STRIP_UNIT 16
/* Columns of C per output stage with a residual, in bytes of a row:
 * sixteen cache lines of each residual row read in sequence. */
#define STAGE_ROW_BYTES 1024

struct gemm_plan {
    const struct cnnc_gemm_kernels *kern;
    int64_t M, N, K;
    float alpha, beta;
    const float *A; int64_t a_rs, a_cs; /* op(A)(i, p) = A[i * a_rs + p * a_cs] */
    const float *B; int64_t b_rs, b_cs; /* op(B)(p, j) = B[p * b_rs + j * b_cs] */
    float *C; int64_t ldc;
    int64_t mc, kc, nc;                 /* block sizes used for this call */
    int threads, tm, tn;                /* threads = tm (over rows) x tn (over NR panels) */
    int a_inplace;                      /* op(A) read in place, see strips_inplace */
    int dynamic;                        /* threads take MC-row units from next_unit */
    int64_t next_unit[2];               /* per (jc, pc) iteration, alternating */
    float *bp;                          /* packed B block, shared */
    const float *prepacked;             /* op(B) packed once (cnnc_gemm_pack_b_once), or NULL */
    const struct cnnc_gemm_epilogue *ep; /* output stage, or NULL */
    int failed;
};

static inline void team_barrier(int threads)
{
#ifdef CNNC_OPENMP
    if (threads > 1) {
#pragma omp barrier
    }
#else
    (void)threads;
#endif
}

/* [begin, end) of `count` units split into `parts` near-equal chunks. */
static inline void split_range(int64_t count, int parts, int index, int64_t *begin, int64_t *end)
{
    int64_t per = cnnc_ceil_div(count, parts);
    *begin = cnnc_min_i64(count, per * index);
    *end = cnnc_min_i64(count, *begin + per);
}

/* The BLIS inner loops: A packed per MC block (kept in L2), jr outside ir
 * so that each B micro-panel stays in L1 while the A micro-panels stream. */
static void blocks_packed(const struct gemm_plan *plan, const float *bp, float *ap, int64_t row_begin,
                          int64_t row_end, int64_t jb, int64_t je, int64_t jc, int64_t pc, int64_t kc, float beta)
{
    const struct cnnc_gemm_epilogue *ep = pc + kc == plan->K ? plan->ep : NULL;
    const struct cnnc_gemm_kernels *kern = plan->kern;
    const int64_t MR = kern->mr, NR = kern->nr;
    /* With a residual the stage runs on the block's rows after every
     * STAGE_ROW_BYTES of columns: per tile it read the residual in pieces
     * of one tile row, rows apart, a pattern the hardware prefetchers do
     * not follow (a 1x1 convolution of 64 -> 256 channels with its
     * residual add took 1.9x its time without; 1.2x so). Those columns of
     * the block's C are still in L2. */
    const int64_t stage_panels = ep && ep->residual ? cnnc_max_i64(1, STAGE_ROW_BYTES / (NR * (int64_t)sizeof(float))) : 0;
    for (int64_t ic = row_begin; ic < row_end && jb < je; ic += plan->mc) {
        const int64_t mc = cnnc_min_i64(plan->mc, row_end - ic);
        kern->pack_a(mc, kc, plan->A + ic * plan->a_rs + pc * plan->a_cs, plan->a_rs, plan->a_cs, ap);
        for (int64_t jr = jb; jr < je; ++jr) {
            const float *bpanel = bp + jr * NR * kc;
            const int64_t j = jc + jr * NR;
            const int64_t n = cnnc_min_i64(NR, plan->N - j);
            for (int64_t ir = 0; ir < mc; ir += MR) {
                float *c = plan->C + (ic + ir) * plan->ldc + j;
                const int64_t m = cnnc_min_i64(MR, mc - ir);
                if (ep && !stage_panels)
                    kern->ukernel_staged(kc, ap + ir * kc, 1, MR, bpanel, c, plan->ldc, m, n, plan->alpha, beta, ep,
                                         ic + ir, j);
                else
                    kern->ukernel(kc, ap + ir * kc, 1, MR, bpanel, c, plan->ldc, m, n, plan->alpha, beta);
            }
            if (ep && stage_panels && ((jr - jb + 1) % stage_panels == 0 || jr + 1 == je)) {
                const int64_t j0 = jc + (jr - (jr - jb) % stage_panels) * NR;
                kern->epilogue(ep, plan->C + ic * plan->ldc + j0, plan->ldc, mc, j + n - j0, ic, j0);
            }
        }
    }
}

/* Prefetches the m x n corner of a row-major matrix at p (row stride ld). */
static inline void prefetch_rows(const float *p, int64_t ld, int64_t m, int64_t n)
{
    const int64_t bytes = n * (int64_t)sizeof(float);
    for (int64_t i = 0; i < m; ++i) {
        const char *row = (const char *)(p + i * ld);
        for (int64_t b = 0; b < bytes; b += GEMM_LINE_BYTES)
            __builtin_prefetch(row + b, 0, 3);
        if ((uintptr_t)row % GEMM_LINE_BYTES) /* the row's last line too */
            __builtin_prefetch(row + bytes - 1, 0, 3);
    }
}

/* Skinny op(B) (few NR panels, or in the inference runtime's products a
 * KC block of op(B) that fits in L2: see gemm) with row-major op(A):
 * packing A would cost about as much as the product, so the micro-kernel
 * reads MR rows of A in place, and ir runs outside jr so that those rows
 * are fetched from memory once and reused from L1 for every panel. Only a
 * last strip of fewer than MR rows is packed (zero-padded), so nothing past
 * A is read.
 *
 * The rows of the next strip are prefetched while this one is computed, a
 * share before each panel: the hardware prefetchers do not run ahead of
 * MR rows read side by side, so each strip began with its rows' misses to
 * L3 or memory (1x1 convolutions over 32 to 128 channels at 56 x 56 to
 * 112 x 112 pixels ran 1.2-1.3x faster prefetched). So are a tile's rows
 * of the residual, read by its output stage after the tile's products. */
static void strips_inplace(const struct gemm_plan *plan, const float *bp, float *ap, int64_t row_begin,
                           int64_t row_end, int64_t jb, int64_t je, int64_t jc, int64_t pc, int64_t kc, float beta)
{
    const struct cnnc_gemm_epilogue *ep = pc + kc == plan->K ? plan->ep : NULL;
    const struct cnnc_gemm_kernels *kern = plan->kern;
    const int64_t MR = kern->mr, NR = kern->nr;
    const int64_t row_bytes = kc * (int64_t)sizeof(float);
    if (jb >= je)
        return;
    for (int64_t ir = row_begin; ir < row_end; ir += MR) {
        const int64_t m = cnnc_min_i64(MR, row_end - ir);
        const float *a = plan->A + ir * plan->a_rs + pc;
        int64_t rs = plan->a_rs, cs = 1;
        if (m < MR) {
            kern->pack_a(m, kc, a, plan->a_rs, 1, ap);
            a = ap, rs = 1, cs = MR;
        }
        /* The next strip's rows, in cache lines, a share per panel. */
        const int64_t next_rows = cnnc_max_i64(0, cnnc_min_i64(MR, row_end - ir - MR));
        const int64_t share = cnnc_ceil_div(next_rows * row_bytes, (je - jb) * GEMM_LINE_BYTES) * GEMM_LINE_BYTES;
        const char *next = (const char *)(plan->A + (ir + MR) * plan->a_rs + pc);
        int64_t next_row = 0, next_byte = 0;
        for (int64_t jr = jb; jr < je; ++jr) {
            const int64_t j = jc + jr * NR, n = cnnc_min_i64(NR, plan->N - j);
            float *c = plan->C + ir * plan->ldc + j;
            for (int64_t done = 0; done < share && next_row < next_rows; done += GEMM_LINE_BYTES) {
                __builtin_prefetch(next + next_byte, 0, 3);
                next_byte += GEMM_LINE_BYTES;
                if (next_byte >= row_bytes) {
                    next += plan->a_rs * (int64_t)sizeof(float);
                    next_byte = 0;
                    ++next_row;
                }
            }
            if (ep && ep->residual)
                prefetch_rows(ep->residual + ir * ep->ldr + j, ep->ldr, m, n);
            if (ep)
                kern->ukernel_staged(kc, a, rs, cs, bp + jr * NR * kc, c, plan->ldc, m, n, plan->alpha, beta, ep,
                                     ir, j);
            else
                kern->ukernel(kc, a, rs, cs, bp + jr * NR * kc, c, plan->ldc, m, n, plan->alpha, beta);
        }
    }
}

static void gemm_thread(struct gemm_plan *plan, int tid)
{
    const struct cnnc_gemm_kernels *kern = plan->kern;
    const int64_t MR = kern->mr, NR = kern->nr;
    const int threads = plan->threads;
    const int ti = tid / plan->tn, tj = tid % plan->tn;

    float *ap = cnnc_workspace(0, (size_t)(plan->a_inplace ? MR : plan->mc) * (size_t)plan->kc * sizeof(float));
    /* A failure is seen by every thread after the first barrier below, so
     * that they all leave at the same point. */
    if (!ap)
        __atomic_store_n(&plan->failed, 1, __ATOMIC_RELAXED);

    /* Static split: rows [row_begin, row_end) of this thread's row group. */
    int64_t row_begin, row_end;
    split_range(cnnc_ceil_div(plan->M, MR), plan->tm, ti, &row_begin, &row_end);
    row_begin *= MR;
    row_end = cnnc_min_i64(plan->M, row_end * MR);
    const int64_t units = cnnc_ceil_div(plan->M, plan->mc);
    int64_t iteration = 0;
    const float *prepacked = plan->prepacked;  /* advances block by block */

    for (int64_t jc = 0; jc < plan->N; jc += plan->nc) {
        const int64_t nc = cnnc_min_i64(plan->nc, plan->N - jc);
        const int64_t n_panels = cnnc_ceil_div(nc, NR);
        for (int64_t pc = 0; pc < plan->K; pc += plan->kc) {
            const int64_t kc = cnnc_min_i64(plan->kc, plan->K - pc);
            const float beta = pc == 0 ? plan->beta : 1.0f;

            const float *bp = prepacked;
            if (prepacked) {
                prepacked += n_panels * NR * kc;
            } else {
                int64_t pb, pe;
                split_range(n_panels, threads, tid, &pb, &pe);
                if (pb < pe)
                    kern->pack_b(kc, cnnc_min_i64(nc, pe * NR) - pb * NR,
                                 plan->B + pc * plan->b_rs + (jc + pb * NR) * plan->b_cs,
                                 plan->b_rs, plan->b_cs, plan->bp + pb * NR * kc);
                bp = plan->bp;
            }
            team_barrier(threads);
            if (__atomic_load_n(&plan->failed, __ATOMIC_RELAXED))
                return;

            int64_t jb, je;
            split_range(n_panels, plan->tn, tj, &jb, &je);
            int64_t *next = &plan->next_unit[iteration & 1];
            for (;;) {
                int64_t rb = row_begin, re = row_end;
                if (plan->dynamic) {
                    int64_t u = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
                    if (u >= units)
                        break;
                    rb = u * plan->mc;
                    re = cnnc_min_i64(plan->M, rb + plan->mc);
                }
                if (plan->a_inplace)
                    strips_inplace(plan, bp, ap, rb, re, jb, je, jc, pc, kc, beta);
                else
                    blocks_packed(plan, bp, ap, rb, re, jb, je, jc, pc, kc, beta);
                if (!plan->dynamic)
                    break;
            }
            /* The other counter was last used before the barrier above;
             * ready it for the next iteration. */
            if (tid == 0)
                __atomic_store_n(&plan->next_unit[(iteration + 1) & 1], 0, __ATOMIC_RELAXED);
            ++iteration;
            /* The B block is overwritten next; after the last one, the end of
             * the parallel region waits for everybody. */
            if (!plan->prepacked && (pc + kc < plan->K || jc + nc < plan->N))
                team_barrier(threads);
        }
    }
}

/* Block size near `block` that splits `total` into equal parts, rounded up
 * to a multiple of `unit`, so that no last block is a sliver. */
static int64_t balanced_block(int64_t total, int64_t block, int64_t unit)
{
    int64_t parts = cnnc_ceil_div(total, block);
    return cnnc_min_i64(block, cnnc_ceil_div(cnnc_ceil_div(total, parts), unit) * unit);
}

/* Micro-kernel calls' worth of `rows` rows of C per NR panel: whole MR-row
 * tiles count 1, a last tile of at most MR / 2 rows 1/2 (the micro-kernels
 * run only its rows' FMAs, or two rows' for one or two). */
static double row_tiles(int64_t rows, int64_t mr)
{
    const int64_t rest = rows % mr;
    return (double)(rows / mr) + (rest == 0 ? 0.0 : rest <= mr / 2 ? 0.5 : 1.0);
}

/* The most micro-kernel calls any thread makes when the M rows of C are
 * split in tm runs of whole MR-row panels (as gemm_thread splits them) and
 * the n_panels NR panels in tn runs. */
static double split_cost(int64_t M, int64_t mr, int64_t n_panels, int tm, int tn)
{
    double most = 0.0;
    for (int t = 0; t < tm; ++t) {
        int64_t begin, end;
        split_range(cnnc_ceil_div(M, mr), tm, t, &begin, &end);
        const double tiles = row_tiles(cnnc_max_i64(0, cnnc_min_i64(M, end * mr) - begin * mr), mr);
        most = tiles > most ? tiles : most;
    }
    return most * (double)cnnc_ceil_div(n_panels, tn);
}

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc)
{
    if (beta == 1.0f)
        return;
    for (int64_t i = 0; i < M; ++i) {
        float *row = C + i * ldc;
        if (beta == 0.0f)
            memset(row, 0, (size_t)N * sizeof(float));
        else
            for (int64_t j = 0; j < N; ++j)
                row[j] *= beta;
    }
}

static cnnc_status check_args(const char *fn, cnnc_transpose ta, cnnc_transpose tb, int64_t M,
                              int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc)
{
    if (ta != CNNC_NO_TRANS && ta != CNNC_TRANS)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: trans_a = %d is not CNNC_NO_TRANS or CNNC_TRANS", fn, (int)ta);
    if (tb != CNNC_NO_TRANS && tb != CNNC_TRANS)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: trans_b = %d is not CNNC_NO_TRANS or CNNC_TRANS", fn, (int)tb);
    if (M < 0 || N < 0 || K < 0)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: sizes must be >= 0, got M = %lld, N = %lld, K = %lld",
                          fn, (long long)M, (long long)N, (long long)K);
    int64_t a_cols = ta == CNNC_NO_TRANS ? K : M, b_cols = tb == CNNC_NO_TRANS ? N : K;
    if (lda < cnnc_max_i64(1, a_cols))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: lda = %lld is smaller than a row of A (%lld)",
                          fn, (long long)lda, (long long)cnnc_max_i64(1, a_cols));
    if (ldb < cnnc_max_i64(1, b_cols))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: ldb = %lld is smaller than a row of B (%lld)",
                          fn, (long long)ldb, (long long)cnnc_max_i64(1, b_cols));
    if (ldc < cnnc_max_i64(1, N))
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: ldc = %lld is smaller than a row of C (%lld)",
                          fn, (long long)ldc, (long long)cnnc_max_i64(1, N));
    return CNNC_OK;
}

/* *count = floats spanned by a row-major matrix of rows x cols with leading
 * dimension ld, CNNC_ERR_OVERFLOW if that or its byte size does not fit. */
static cnnc_status matrix_extent(const char *fn, const char *name, int64_t rows, int64_t cols, int64_t ld,
                                 int64_t *count)
{
    size_t bytes;
    *count = 0;
    if (rows == 0 || cols == 0)
        return CNNC_OK;
    if (cnnc_mul_sizes(count, 2, rows - 1, ld) != CNNC_OK || __builtin_add_overflow(*count, cols, count) ||
        cnnc_float_bytes(*count, &bytes) != CNNC_OK)
        return cnnc_error(CNNC_ERR_OVERFLOW, "%s: %s (%lld x %lld, leading dimension %lld) does not fit in memory",
                          fn, name, (long long)rows, (long long)cols, (long long)ld);
    return CNNC_OK;
}

/* The cache blocks of a product: NC columns of op(B) and KC rows per packed
 * block, and whether op(A) is read in place (see strips_inplace). They
 * depend only on the kernels, K, N and whether A is transposed, so B can be
 * packed ahead of the call (cnnc_gemm_pack_b_once). */
static void block_sizes(const struct cnnc_gemm_kernels *kern, cnnc_transpose ta, int64_t K, int64_t N,
                        int64_t *kc, int64_t *nc, int *a_inplace)
{
    const int64_t NR = kern->nr;
    *nc = balanced_block(N, kern->nc, NR);
    /* Skinny op(B): see strips_inplace. K is then blocked only to bound the
     * packed B (GEMM_SKINNY_B_BYTES), so that C is written about once. */
    const int64_t n_pad = cnnc_ceil_div(N, NR) * NR;
    *a_inplace = ta == CNNC_NO_TRANS && n_pad <= GEMM_SKINNY_PANELS * NR;
    if (*a_inplace)
        *kc = balanced_block(K, cnnc_max_i64(kern->kc, GEMM_SKINNY_B_BYTES / (n_pad * (int64_t)sizeof(float))), 1);
    else
        *kc = balanced_block(K, kern->kc, 1);
}

/* Threads for an M x N x K product with micro-tiles of mr rows: as many as
 * the work warrants, up to max_threads; one inside another kernel's
 * parallel region. Rows short of half a micro-tile take about as long as
 * half a tile: the loads of B bound them (a dense layer at batch 1 or 2:
 * its whole weight matrix streams from L3 or memory for a few FMAs per
 * element, and more threads stream it faster). */
static int product_threads(int max_threads, int64_t M, int64_t mr, int64_t N, int64_t K)
{
#ifdef CNNC_OPENMP
    if (omp_in_parallel())
        return 1;
#endif
    if (max_threads <= 1)
        return 1;
    int64_t work;
    if (cnnc_mul_sizes(&work, 3, cnnc_max_i64(M, mr / 2), N, K) != CNNC_OK)
        work = INT64_MAX;
    const int threads = cnnc_threads_for(work, GEMM_THREAD_GRAIN);
    return threads > max_threads ? max_threads : threads;
}

static cnnc_status gemm(const char *fn, int max_threads, cnnc_transpose ta, cnnc_transpose tb,
                        int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float beta, float *C, int64_t ldc, int fused,
                        const struct cnnc_gemm_packed_b *packed, const struct cnnc_gemm_epilogue *ep)
{
    CNNC_TRY(check_args(fn, ta, tb, M, N, K, lda, ldb, ldc));
    int64_t a_count, b_count, c_count;
    CNNC_TRY(matrix_extent(fn, "A", ta == CNNC_NO_TRANS ? M : K, ta == CNNC_NO_TRANS ? K : M, lda, &a_count));
    CNNC_TRY(matrix_extent(fn, "B", tb == CNNC_NO_TRANS ? K : N, tb == CNNC_NO_TRANS ? N : K, ldb, &b_count));
    CNNC_TRY(matrix_extent(fn, "C", M, N, ldc, &c_count));
    if (M == 0 || N == 0)
        return CNNC_OK;
    if (C == NULL)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: C is NULL", fn);
    if (alpha == 0.0f || K == 0) {
        scale_c(M, N, beta, C, ldc);
        if (ep)
            CNNC_PICK(cnnc_gemm_kernels)->epilogue(ep, C, ldc, M, N, 0, 0);
        return CNNC_OK;
    }
    if (A == NULL)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: A is NULL", fn);
    /* B packed once for this product is read from there alone: B may be NULL. */
    const int use_packed = packed && packed->data && packed->kern == CNNC_PICK(cnnc_gemm_kernels) &&
                           packed->K == K && packed->N == N && ta == CNNC_NO_TRANS;
    if (B == NULL && !use_packed)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: B is NULL", fn);
    /* C is written block by block while A and B are still being read. */
    CNNC_TRY(cnnc_check_disjoint(fn, "C", C, c_count, "A", A, a_count, 0));
    CNNC_TRY(cnnc_check_disjoint(fn, "C", C, c_count, "B", B, b_count, 0));

    const struct cnnc_gemm_kernels *kern = CNNC_PICK(cnnc_gemm_kernels);
    const int64_t MR = kern->mr, NR = kern->nr;
    struct gemm_plan plan = {
        .kern = kern, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
        .A = A, .a_rs = ta == CNNC_NO_TRANS ? lda : 1, .a_cs = ta == CNNC_NO_TRANS ? 1 : lda,
        .B = B, .b_rs = tb == CNNC_NO_TRANS ? ldb : 1, .b_cs = tb == CNNC_NO_TRANS ? 1 : ldb,
        .C = C, .ldc = ldc,
    };
    block_sizes(kern, ta, K, N, &plan.kc, &plan.nc, &plan.a_inplace);
    /* The inference runtime's products also read A in place where a KC
     * block of B stays in L2, with the blocks of K that packing A would
     * have (1x1 convolutions of up to 256 channels at 28 x 28 and above:
     * 1.03-1.08x over packing A, whose copy costs a pass over A; with a
     * residual add, ResNet-50's 64 -> 256 and 128 -> 512 layers, 1.3-1.5x
     * at batch 8 over the packed path's stage on runs of columns). */
    const int64_t n_pad = cnnc_ceil_div(N, NR) * NR;
    if (fused && ta == CNNC_NO_TRANS &&
        plan.kc <= GEMM_INPLACE_B_BYTES / (n_pad * (int64_t)sizeof(float)))
        plan.a_inplace = 1;
    plan.ep = ep;
    if (use_packed)
        plan.prepacked = packed->data;

    /* Threads: as many as the work warrants, arranged as tm x tn to split
     * the rows of C (preferred: B stays shared, A is packed once) or its NR
     * panels (for short op(A)), whichever leaves the busiest thread fewer
     * micro-kernel calls. */
    int threads = product_threads(max_threads, M, MR, N, K);
    const int64_t m_panels = cnnc_ceil_div(M, MR), n_panels = cnnc_ceil_div(plan.nc, NR);
    int tm = threads, tn = 1;
    if (threads > 1 && m_panels < 4 * (int64_t)threads) {
        /* Few row panels per thread: the static tm x tn split whose busiest
         * thread makes the fewest micro-kernel calls, a last tile of few rows
         * counted at its cost (49 rows, a 7 x 7 image, on 2 threads: 2
         * panels each cost 2 and 1.5 tiles per NR panel, half the NR panels
         * each 1.75); ties go to more row runs. */
        double best = -1.0;
        for (int d = threads; d >= 1; --d) {
            if (threads % d || d > m_panels)
                continue;
            const double cost = split_cost(M, MR, n_panels, d, threads / d);
            if (best < 0.0 || cost < best - 1e-9) {
                best = cost;
                tm = d;
                tn = threads / d;
            }
        }
        if (tn > n_panels) /* more column runs than panels: the rest would idle */
            tn = (int)n_panels;
    }
    if (tm > 1 && tn == 1 && m_panels >= 2 * (int64_t)tm) {
        /* Enough rows: threads take row units of MC (or fewer) rows from a
         * shared counter, about four per thread at least, so that a thread
         * slowed by anything else on its core does less of the work. Which
         * thread computes a tile does not change its value. */
        plan.dynamic = 1;
        int64_t unit = cnnc_ceil_div(m_panels, 4 * (int64_t)tm) * MR;
        plan.mc = cnnc_min_i64(plan.a_inplace ? GEMM_STRIP_UNIT * MR : kern->mc, unit);
    } else {
        /* A static split of the rows and the NR panels of C (B stays shared;
         * threads splitting panels pack the same small A). */
        plan.mc = balanced_block(cnnc_ceil_div(m_panels, tm) * MR, kern->mc, MR);
    }
    plan.threads = threads = tm * tn;
    plan.tm = tm;
    plan.tn = tn;

    if (!plan.prepacked) {
        plan.bp = cnnc_workspace(1, (size_t)plan.kc * (size_t)(cnnc_ceil_div(plan.nc, NR) * NR) * sizeof(float));
        if (!plan.bp)
            return CNNC_ERR_OUT_OF_MEMORY;
    }

    if (threads == 1) {
        unsigned fpu = cnnc_fpu_enter();
        gemm_thread(&plan, 0);
        cnnc_fpu_restore(fpu);
    } else {
#ifdef CNNC_OPENMP
        /* The runtime may grant fewer threads than asked (thread limits);
         * the plan's split needs them all, so then one thread does it all. */
        struct gemm_plan alone = plan;
        alone.threads = alone.tm = alone.tn = 1;
        alone.dynamic = 0;
#pragma omp parallel num_threads(threads)
        {
            unsigned fpu = cnnc_fpu_enter();
            if (omp_get_num_threads() == threads)
                gemm_thread(&plan, omp_get_thread_num());
            else if (omp_get_thread_num() == 0)
                gemm_thread(&alone, 0);
            cnnc_fpu_restore(fpu);
        }
        plan.failed |= alone.failed;
#endif
    }
    if (plan.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "%s: cannot allocate the packing buffers", fn);
    return CNNC_OK;
}

cnnc_status cnnc_sgemm(cnnc_transpose trans_a, cnnc_transpose trans_b, int64_t M, int64_t N, int64_t K,
                       float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                       float beta, float *C, int64_t ldc)
{
    return gemm(__func__, cnnc_get_num_threads(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                beta, C, ldc, 0, NULL, NULL);
}

cnnc_status cnnc_sgemm_serial(cnnc_transpose trans_a, cnnc_transpose trans_b, int64_t M, int64_t N,
                              int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                              int64_t ldb, float beta, float *C, int64_t ldc)
{
    return gemm(__func__, 1, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, NULL, NULL);
}

cnnc_status cnnc_gemm_pack_b_once(cnnc_transpose trans_b, int64_t K, int64_t N, const float *B, int64_t ldb,
                                  struct cnnc_gemm_packed_b *packed)
{
    memset(packed, 0, sizeof *packed);
    CNNC_TRY(check_args(__func__, CNNC_NO_TRANS, trans_b, 1, N, K, cnnc_max_i64(1, K), ldb, cnnc_max_i64(1, N)));
    int64_t b_count;
    CNNC_TRY(matrix_extent(__func__, "B", trans_b == CNNC_NO_TRANS ? K : N, trans_b == CNNC_NO_TRANS ? N : K, ldb,
                           &b_count));
    if (K == 0 || N == 0)
        return CNNC_OK;
    CNNC_CHECK_PTR(B);
    const struct cnnc_gemm_kernels *kern = CNNC_PICK(cnnc_gemm_kernels);
    const int64_t NR = kern->nr;
    int64_t kc, nc, floats;
    int a_inplace;
    block_sizes(kern, CNNC_NO_TRANS, K, N, &kc, &nc, &a_inplace);
    size_t bytes;
    /* Every block together: K rows of N columns rounded up to whole panels. */
    if (cnnc_mul_sizes(&floats, 2, K, cnnc_ceil_div(N, NR) * NR) != CNNC_OK || cnnc_float_bytes(floats, &bytes) != CNNC_OK)
        return cnnc_error(CNNC_ERR_OVERFLOW, "%s: a packed %lld x %lld B does not fit in memory", __func__,
                          (long long)K, (long long)N);
    float *data = cnnc_malloc(bytes);
    if (!data)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", __func__, bytes);
    const int64_t rs = trans_b == CNNC_NO_TRANS ? ldb : 1, cs = trans_b == CNNC_NO_TRANS ? 1 : ldb;
    float *dst = data;
    for (int64_t jc = 0; jc < N; jc += nc) {
        const int64_t n = cnnc_min_i64(nc, N - jc);
        for (int64_t pc = 0; pc < K; pc += kc) {
            const int64_t k = cnnc_min_i64(kc, K - pc);
            kern->pack_b(k, n, B + pc * rs + jc * cs, rs, cs, dst);
            dst += cnnc_ceil_div(n, NR) * NR * k;
        }
    }
    packed->kern = kern;
    packed->K = K;
    packed->N = N;
    packed->data = data;
    return CNNC_OK;
}

size_t cnnc_gemm_packed_b_bytes(const struct cnnc_gemm_packed_b *packed)
{
    if (!packed->data)
        return 0;
    /* K rows of N columns rounded up to whole panels, as packed above. */
    return (size_t)packed->K * (size_t)(cnnc_ceil_div(packed->N, packed->kern->nr) * packed->kern->nr) * sizeof(float);
}

void cnnc_gemm_unpack_b(const struct cnnc_gemm_packed_b *packed, float *B, int64_t ldb)
{
    const int64_t K = packed->K, N = packed->N, NR = packed->kern->nr;
    int64_t kc, nc;
    int a_inplace;
    block_sizes(packed->kern, CNNC_NO_TRANS, K, N, &kc, &nc, &a_inplace);
    const float *src = packed->data;
    /* The blocks and panels in the order cnnc_gemm_pack_b_once wrote them. */
    for (int64_t jc = 0; jc < N; jc += nc) {
        const int64_t n = cnnc_min_i64(nc, N - jc);
        for (int64_t pc = 0; pc < K; pc += kc) {
            const int64_t k = cnnc_min_i64(kc, K - pc);
            for (int64_t j0 = 0; j0 < n; j0 += NR, src += k * NR)
                for (int64_t p = 0; p < k; ++p)
                    memcpy(B + (pc + p) * ldb + jc + j0, src + p * NR,
                           (size_t)cnnc_min_i64(NR, n - j0) * sizeof(float));
        }
    }
}

void cnnc_gemm_packed_b_free(struct cnnc_gemm_packed_b *packed)
{
    if (!packed)
        return;
    cnnc_free(packed->data);
    memset(packed, 0, sizeof *packed);
}

/* The residual of a fused product's stage: M x N (ldr) and apart from C. */
static cnnc_status check_residual(const char *fn, int64_t M, int64_t N, const struct cnnc_gemm_epilogue *epilogue,
                                  const float *C, int64_t ldc)
{
    if (!epilogue || !epilogue->residual)
        return CNNC_OK;
    int64_t r_count, c_count;
    CNNC_TRY(matrix_extent(fn, "the residual", M, N, epilogue->ldr, &r_count));
    CNNC_TRY(matrix_extent(fn, "C", M, N, ldc, &c_count));
    if (epilogue->ldr < N)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: ldr = %lld is smaller than a row of C (%lld)", fn,
                          (long long)epilogue->ldr, (long long)N);
    /* Tiles of C are written before the residual under them is read. */
    return cnnc_check_disjoint(fn, "C", C, c_count, "the residual", epilogue->residual, r_count, 0);
}

cnnc_status cnnc_sgemm_fused(int max_threads, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                             const float *B, int64_t ldb, const struct cnnc_gemm_packed_b *packed,
                             const struct cnnc_gemm_epilogue *epilogue, float *C, int64_t ldc)
{
    CNNC_TRY(check_residual(__func__, M, N, epilogue, C, ldc));
    return gemm(__func__, max_threads, CNNC_NO_TRANS, CNNC_NO_TRANS, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, 1,
                packed, epilogue);
}

struct gemv_call {
    const struct cnnc_gemv_kernels *kern;
    int64_t M, N, K, kc, cols;
    const float *A, *B;
    int64_t lda, ldb, ldc;
    const double *fold;
    const struct cnnc_gemm_epilogue *ep;
    float *C;
    int failed;
};

/* The few-row product's per-thread scratch: the convolutions' tile slot,
 * never in use while a dense product runs (it is not nested in them). */
#define GEMV_SLOT 2

static void gemv_run(int64_t index, void *ctx)
{
    struct gemv_call *g = ctx;
    float *scratch = cnnc_workspace(GEMV_SLOT, CNNC_GEMV_SCRATCH_FLOATS * sizeof(float));
    if (!scratch) {
        __atomic_store_n(&g->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    const int64_t j0 = index * g->cols;
    g->kern->rows(g->M, j0, cnnc_min_i64(g->cols, g->N - j0), g->K, g->kc, g->A, g->lda, g->B, g->ldb, g->fold,
                  g->ep, g->C, g->ldc, scratch);
}

cnnc_status cnnc_sgemv_fused(int max_threads, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                             const float *B, int64_t ldb, const double *fold,
                             const struct cnnc_gemm_epilogue *epilogue, float *C, int64_t ldc)
{
    CNNC_TRY(check_args(__func__, CNNC_NO_TRANS, CNNC_NO_TRANS, M, N, K, lda, ldb, ldc));
    if (M > CNNC_GEMV_MAX_ROWS)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: M = %lld rows, at most %d", __func__, (long long)M,
                          CNNC_GEMV_MAX_ROWS);
    CNNC_TRY(check_residual(__func__, M, N, epilogue, C, ldc));
    if (M == 0 || N == 0 || K == 0) /* no sum to take: the GEMM's fill and stage */
        return cnnc_sgemm_fused(max_threads, M, N, K, A, lda, B, ldb, NULL, epilogue, C, ldc);
    int64_t a_count, b_count, c_count;
    CNNC_TRY(matrix_extent(__func__, "A", M, K, lda, &a_count));
    CNNC_TRY(matrix_extent(__func__, "B", K, N, ldb, &b_count));
    CNNC_TRY(matrix_extent(__func__, "C", M, N, ldc, &c_count));
    if (!A || !B || !C)
        return cnnc_error(CNNC_ERR_INVALID_ARGUMENT, "%s: A, B and C must not be NULL", __func__);
    /* C is written while A and B are still being read. */
    CNNC_TRY(cnnc_check_disjoint(__func__, "C", C, c_count, "A", A, a_count, 0));
    CNNC_TRY(cnnc_check_disjoint(__func__, "C", C, c_count, "B", B, b_count, 0));

    const struct cnnc_gemm_kernels *gk = CNNC_PICK(cnnc_gemm_kernels);
    struct gemv_call call = {.kern = CNNC_PICK(cnnc_gemv_kernels), .M = M, .N = N, .K = K, .A = A, .B = B,
                             .lda = lda, .ldb = ldb, .ldc = ldc, .fold = fold, .ep = epilogue, .C = C};
    /* The packed GEMM's KC blocks: the same sums, so the same bits. */
    int64_t nc;
    int a_inplace;
    block_sizes(gk, CNNC_NO_TRANS, K, N, &call.kc, &nc, &a_inplace);
    /* Runs of whole cache lines whose M rows of accumulators fit the
     * kernel's L1 block. */
    const int64_t line = GEMM_LINE_BYTES / (int64_t)sizeof(float);
    int64_t cols = cnnc_min_i64(fold ? CNNC_GEMV_FOLD_COLS : CNNC_GEMV_MAX_COLS, CNNC_GEMV_ACC_FLOATS / M / line * line);
    const int threads = product_threads(max_threads, M, gk->mr, N, K);
    /* At least a run per thread: B streams on every core. */
    if (threads > 1 && cnnc_ceil_div(N, cols) < threads)
        cols = cnnc_max_i64(line, cnnc_ceil_div(cnnc_ceil_div(N, threads), line) * line);
    call.cols = cols;
    cnnc_parallel_for(cnnc_ceil_div(N, cols), threads, gemv_run, &call);
    if (call.failed)
        return cnnc_error(CNNC_ERR_OUT_OF_MEMORY, "%s: cannot allocate the scratch", __func__);
    return CNNC_OK;
}
