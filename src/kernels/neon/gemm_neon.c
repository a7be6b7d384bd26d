/* AArch64 NEON GEMM micro-kernel: an 8 x 12 tile of C in 24 q-register
 * accumulators, a packed B row in 3 registers and 8 A values in 2: 29 of
 * the 32 vector registers, 24 FMAs per 5 loads. The FMAs take their A
 * factor by lane (fmla v.4s, v.4s, v.s[l]), so A needs no broadcasts. */
#include <arm_neon.h>
#define GEMM_MR 8
#define GEMM_NR 12
#include "gemm_pack.h"

#define FMA_ROW_LANE(i, av, l)                                 \
    do {                                                       \
        acc[i][0] = vfmaq_laneq_f32(acc[i][0], b0, av, l);     \
        acc[i][1] = vfmaq_laneq_f32(acc[i][1], b1, av, l);     \
        acc[i][2] = vfmaq_laneq_f32(acc[i][2], b2, av, l);     \
    } while (0)

#define FMA_ROW_DUP(i, ptr)                                    \
    do {                                                       \
        const float32x4_t ai = vld1q_dup_f32(ptr);             \
        acc[i][0] = vfmaq_f32(acc[i][0], b0, ai);              \
        acc[i][1] = vfmaq_f32(acc[i][1], b1, ai);              \
        acc[i][2] = vfmaq_f32(acc[i][2], b2, ai);              \
    } while (0)

/* acc += A * Bp over k steps. rs_a == 1: A is a packed micro-panel (or A
 * transposed), MR consecutive values per step; otherwise MR rows of A read
 * in place, one step along each row. */
static void accumulate(float32x4_t acc[GEMM_MR][3], int64_t k, const float *a, int64_t rs_a,
                       int64_t cs_a, const float *bp)
{
    if (rs_a == 1) {
        for (int64_t p = 0; p < k; ++p, bp += GEMM_NR, a += cs_a) {
            const float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4), b2 = vld1q_f32(bp + 8);
            const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
            FMA_ROW_LANE(0, a0, 0);
            FMA_ROW_LANE(1, a0, 1);
            FMA_ROW_LANE(2, a0, 2);
            FMA_ROW_LANE(3, a0, 3);
            FMA_ROW_LANE(4, a1, 0);
            FMA_ROW_LANE(5, a1, 1);
            FMA_ROW_LANE(6, a1, 2);
            FMA_ROW_LANE(7, a1, 3);
        }
    } else {
        for (int64_t p = 0; p < k; ++p, bp += GEMM_NR, a += cs_a) {
            const float32x4_t b0 = vld1q_f32(bp), b1 = vld1q_f32(bp + 4), b2 = vld1q_f32(bp + 8);
            FMA_ROW_DUP(0, a);
            FMA_ROW_DUP(1, a + rs_a);
            FMA_ROW_DUP(2, a + 2 * rs_a);
            FMA_ROW_DUP(3, a + 3 * rs_a);
            FMA_ROW_DUP(4, a + 4 * rs_a);
            FMA_ROW_DUP(5, a + 5 * rs_a);
            FMA_ROW_DUP(6, a + 6 * rs_a);
            FMA_ROW_DUP(7, a + 7 * rs_a);
        }
    }
}

static void ukernel(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp,
                    float *c, int64_t ldc, int64_t m, int64_t n, float alpha, float beta)
{
    float32x4_t acc[GEMM_MR][3];
    for (int i = 0; i < GEMM_MR; ++i)
        acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.0f);
    accumulate(acc, k, a, rs_a, cs_a, bp);
    if (m == GEMM_MR && n == GEMM_NR) {
        for (int i = 0; i < GEMM_MR; ++i) {
            float *ci = c + i * ldc;
            for (int j = 0; j < 3; ++j) {
                float32x4_t r = vmulq_n_f32(acc[i][j], alpha);
                if (beta != 0.0f)
                    r = vfmaq_n_f32(r, vld1q_f32(ci + 4 * j), beta);
                vst1q_f32(ci + 4 * j, r);
            }
        }
    } else {
        float t[GEMM_MR * GEMM_NR] __attribute__((aligned(16)));
        for (int i = 0; i < GEMM_MR; ++i)
            for (int j = 0; j < 3; ++j)
                vst1q_f32(t + i * GEMM_NR + 4 * j, acc[i][j]);
        gemm_store_tile(t, c, ldc, m, n, alpha, beta);
    }
}

/* Blocking for a typical Arm server core (64 KiB L1d, 1 MiB L2): KC = 256
 * puts the 256 x 12 B micro-panel (12 KiB) in L1 beside two 8 x 256 A
 * micro-panels (8 KiB each); MC = 192 rows make a 192 KiB packed A block in
 * L2; NC = 3072 columns make a 3 MiB packed B block shared in L3. */
const struct cnnc_gemm_kernels cnnc_gemm_kernels_neon = {
    .mr = GEMM_MR, .nr = GEMM_NR,
    .mc = 192, .kc = 256, .nc = 3072,
    .ukernel = ukernel,
    .pack_a = gemm_pack_a,
    .pack_b = gemm_pack_b,
};
