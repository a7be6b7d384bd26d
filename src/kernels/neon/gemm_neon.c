/* AArch64 NEON GEMM micro-kernel: an 8 x 12 tile of C in 24 q-register
 * accumulators, a packed B row in 3 registers and 8 A values in 2: 29 of
 * the 32 vector registers, 24 FMAs per 5 loads. */
#include <arm_neon.h>
#define GEMM_MR 8
#define GEMM_NR 12
#include "gemm_pack.h"
#define CNNC_SIMD 3
#include "gemm_epilogue_template.h"

/* The 24 accumulators are named variables, not an array: GCC keeps an array
 * that is indexed after the loop in memory and reloads it every step. */
#define ACC_ROW(i) float32x4_t c##i##0 = vdupq_n_f32(0.0f), c##i##1 = c##i##0, c##i##2 = c##i##0
#define FMA_ROW(i, ai)                           \
    do {                                         \
        c##i##0 = vfmaq_f32(c##i##0, b0, ai);    \
        c##i##1 = vfmaq_f32(c##i##1, b1, ai);    \
        c##i##2 = vfmaq_f32(c##i##2, b2, ai);    \
    } while (0)
#define FMA_ROW_LANE(i, av, l)                          \
    do {                                                \
        c##i##0 = vfmaq_laneq_f32(c##i##0, b0, av, l);  \
        c##i##1 = vfmaq_laneq_f32(c##i##1, b1, av, l);  \
        c##i##2 = vfmaq_laneq_f32(c##i##2, b2, av, l);  \
    } while (0)
#define STORE_ROW(i, dst)              \
    do {                               \
        vst1q_f32((dst), c##i##0);     \
        vst1q_f32((dst) + 4, c##i##1); \
        vst1q_f32((dst) + 8, c##i##2); \
    } while (0)

/* C = alpha * A * Bp + beta * C over k steps. A(i, p) = a[i * rs_a + p * cs_a]:
 * rs_a == 1 is a packed micro-panel (MR consecutive values per step, taken
 * by lane: fmla v.4s, v.4s, v.s[l]); otherwise MR rows of A are read in
 * place (m == MR), one broadcast per row and step. The output stage ep (or
 * none: NULL) is applied to the tile in L1 before it is written to C. */
static inline __attribute__((always_inline)) void
ukernel_body(int64_t k, const float *a, int64_t rs_a, int64_t cs_a, const float *bp, float *c, int64_t ldc,
             int64_t m, int64_t n, float alpha, float beta, const struct cnnc_gemm_epilogue *ep, int64_t i0,
             int64_t j0)
{
    ACC_ROW(0); ACC_ROW(1); ACC_ROW(2); ACC_ROW(3);
    ACC_ROW(4); ACC_ROW(5); ACC_ROW(6); ACC_ROW(7);
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
            FMA_ROW(0, vld1q_dup_f32(a));
            FMA_ROW(1, vld1q_dup_f32(a + rs_a));
            FMA_ROW(2, vld1q_dup_f32(a + 2 * rs_a));
            FMA_ROW(3, vld1q_dup_f32(a + 3 * rs_a));
            FMA_ROW(4, vld1q_dup_f32(a + 4 * rs_a));
            FMA_ROW(5, vld1q_dup_f32(a + 5 * rs_a));
            FMA_ROW(6, vld1q_dup_f32(a + 6 * rs_a));
            FMA_ROW(7, vld1q_dup_f32(a + 7 * rs_a));
        }
    }
    float t[GEMM_MR * GEMM_NR] __attribute__((aligned(16)));
    STORE_ROW(0, t);
    STORE_ROW(1, t + GEMM_NR);
    STORE_ROW(2, t + 2 * GEMM_NR);
    STORE_ROW(3, t + 3 * GEMM_NR);
    STORE_ROW(4, t + 4 * GEMM_NR);
    STORE_ROW(5, t + 5 * GEMM_NR);
    STORE_ROW(6, t + 6 * GEMM_NR);
    STORE_ROW(7, t + 7 * GEMM_NR);
    if (m == GEMM_MR && n == GEMM_NR) {
        /* With a stage, the tile is combined with C in t, staged there in
         * L1 and then written. */
        for (int i = 0; i < GEMM_MR; ++i) {
            float *ci = c + i * ldc, *out = ep ? t + i * GEMM_NR : ci;
            for (int j = 0; j < GEMM_NR; j += 4) {
                float32x4_t r = vmulq_n_f32(vld1q_f32(t + i * GEMM_NR + j), alpha);
                if (beta != 0.0f)
                    r = vfmaq_n_f32(r, vld1q_f32(ci + j), beta);
                vst1q_f32(out + j, r);
            }
        }
        if (ep) {
            gemm_epilogue_simd(ep, t, GEMM_NR, GEMM_MR, GEMM_NR, i0, j0);
            for (int i = 0; i < GEMM_MR; ++i)
                for (int j = 0; j < GEMM_NR; j += 4)
                    vst1q_f32(c + i * ldc + j, vld1q_f32(t + i * GEMM_NR + j));
        }
    } else if (ep) {
        gemm_store_tile_staged(t, c, ldc, m, n, alpha, beta, ep, i0, j0);
    } else {
        gemm_store_tile(t, c, ldc, m, n, alpha, beta);
    }
}

GEMM_UKERNEL_ENTRIES

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
    .epilogue = gemm_epilogue_simd,
    .ukernel_staged = ukernel_staged,
};
