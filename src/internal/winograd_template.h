/* The Winograd F(2x2, 3x3) transforms (see winograd_kernels.h), compiled once
 * per ISA by src/kernels/<isa>/winograd_<isa>.c (which defines CNNC_SIMD
 * first). Each processes one vector of channels at a time, all 16 (or 9)
 * planes in registers; the last partial vector uses masked loads and
 * stores, so nothing outside the planes is touched. */
#ifndef CNNC_WINOGRAD_TEMPLATE_H
#define CNNC_WINOGRAD_TEMPLATE_H
#include "winograd_kernels.h"
#include "simd.h"

#define WINO_INLINE static inline __attribute__((always_inline))

WINO_INLINE vf wino_load(const float *p, int64_t rem) { return rem == VW ? vf_load(p) : vf_load_part(p, rem); }

WINO_INLINE void wino_store(float *p, vf v, int64_t rem)
{
    if (rem == VW)
        vf_store(p, v);
    else
        vf_store_part(p, v, rem);
}

/* G g G^T for the lanes at offset i; G's halves are applied once per pass
 * so that the rows and columns that need no scaling stay exact. */
WINO_INLINE void kernel_vec(const float *g, int64_t gs, float *u, int64_t us, int64_t rem)
{
    const vf half = vf_set1(0.5f);
    vf t[4][3];
    for (int s = 0; s < 3; ++s) {
        const vf g0 = wino_load(g + s * gs, rem), g1 = wino_load(g + (3 + s) * gs, rem),
                 g2 = wino_load(g + (6 + s) * gs, rem);
        const vf even = vf_add(g0, g2);
        t[0][s] = g0;
        t[1][s] = vf_mul(half, vf_add(even, g1));
        t[2][s] = vf_mul(half, vf_sub(even, g1));
        t[3][s] = g2;
    }
    for (int r = 0; r < 4; ++r) {
        const vf even = vf_add(t[r][0], t[r][2]);
        wino_store(u + (4 * r + 0) * us, t[r][0], rem);
        wino_store(u + (4 * r + 1) * us, vf_mul(half, vf_add(even, t[r][1])), rem);
        wino_store(u + (4 * r + 2) * us, vf_mul(half, vf_sub(even, t[r][1])), rem);
        wino_store(u + (4 * r + 3) * us, t[r][2], rem);
    }
}

static void wino_kernel(const float *g, int64_t gs, int64_t count, float *u, int64_t us)
{
    int64_t i = 0;
    for (; i + VW <= count; i += VW)
        kernel_vec(g + i, gs, u + i, us, VW);
    if (i < count)
        kernel_vec(g + i, gs, u + i, us, count - i);
}

WINO_INLINE void input_vec(const float *const d[16], int64_t c, float *v, int64_t vs, int64_t rem)
{
    vf t[4][4];
    for (int s = 0; s < 4; ++s) {
        const vf d0 = wino_load(d[s] + c, rem), d1 = wino_load(d[4 + s] + c, rem),
                 d2 = wino_load(d[8 + s] + c, rem), d3 = wino_load(d[12 + s] + c, rem);
        t[0][s] = vf_sub(d0, d2);
        t[1][s] = vf_add(d1, d2);
        t[2][s] = vf_sub(d2, d1);
        t[3][s] = vf_sub(d1, d3);
    }
    for (int r = 0; r < 4; ++r) {
        wino_store(v + (4 * r + 0) * vs + c, vf_sub(t[r][0], t[r][2]), rem);
        wino_store(v + (4 * r + 1) * vs + c, vf_add(t[r][1], t[r][2]), rem);
        wino_store(v + (4 * r + 2) * vs + c, vf_sub(t[r][2], t[r][1]), rem);
        wino_store(v + (4 * r + 3) * vs + c, vf_sub(t[r][1], t[r][3]), rem);
    }
}

static void wino_input(const float *const d[16], int64_t count, float *v, int64_t vs)
{
    int64_t c = 0;
    for (; c + VW <= count; c += VW)
        input_vec(d, c, v, vs, VW);
    if (c < count)
        input_vec(d, c, v, vs, count - c);
}

WINO_INLINE void output_vec(const float *m, int64_t ms, int64_t c, const float *bias, float *const y[4],
                            int64_t rem)
{
    vf s[2][4];
    for (int q = 0; q < 4; ++q) {
        const vf m0 = wino_load(m + q * ms + c, rem), m1 = wino_load(m + (4 + q) * ms + c, rem),
                 m2 = wino_load(m + (8 + q) * ms + c, rem), m3 = wino_load(m + (12 + q) * ms + c, rem);
        s[0][q] = vf_add(vf_add(m0, m1), m2);
        s[1][q] = vf_sub(vf_sub(m1, m2), m3);
    }
    const vf b = bias ? wino_load(bias + c, rem) : vf_zero();
    for (int r = 0; r < 2; ++r) {
        wino_store(y[2 * r] + c, vf_add(vf_add(vf_add(s[r][0], s[r][1]), s[r][2]), b), rem);
        wino_store(y[2 * r + 1] + c, vf_add(vf_sub(vf_sub(s[r][1], s[r][2]), s[r][3]), b), rem);
    }
}

static void wino_output(const float *m, int64_t ms, int64_t count, const float *bias, float *const y[4])
{
    int64_t c = 0;
    for (; c + VW <= count; c += VW)
        output_vec(m, ms, c, bias, y, VW);
    if (c < count)
        output_vec(m, ms, c, bias, y, count - c);
}

/* A dy A^T: rows (a, b) of dy become (a, a + b, a - b, -b), both ways. */
WINO_INLINE void grad_output_vec(const float *const dy[4], int64_t c, float *m, int64_t ms, int64_t rem)
{
    vf t[4][2];
    for (int s = 0; s < 2; ++s) {
        const vf a = wino_load(dy[s] + c, rem), b = wino_load(dy[2 + s] + c, rem);
        t[0][s] = a;
        t[1][s] = vf_add(a, b);
        t[2][s] = vf_sub(a, b);
        t[3][s] = vf_sub(vf_zero(), b);
    }
    for (int r = 0; r < 4; ++r) {
        wino_store(m + (4 * r + 0) * ms + c, t[r][0], rem);
        wino_store(m + (4 * r + 1) * ms + c, vf_add(t[r][0], t[r][1]), rem);
        wino_store(m + (4 * r + 2) * ms + c, vf_sub(t[r][0], t[r][1]), rem);
        wino_store(m + (4 * r + 3) * ms + c, vf_sub(vf_zero(), t[r][1]), rem);
    }
}

static void wino_grad_output(const float *const dy[4], int64_t count, float *m, int64_t ms)
{
    int64_t c = 0;
    for (; c + VW <= count; c += VW)
        grad_output_vec(dy, c, m, ms, VW);
    if (c < count)
        grad_output_vec(dy, c, m, ms, count - c);
}

/* G^T u G: rows (u0, u1, u2, u3) become (u0 + h, (u1 - u2) / 2, h + u3)
 * with h = (u1 + u2) / 2, both ways. */
WINO_INLINE void grad_kernel_vec(const float *u, int64_t us, float *g, int64_t gs, int64_t rem)
{
    const vf half = vf_set1(0.5f);
    vf t[3][4];
    for (int q = 0; q < 4; ++q) {
        const vf u0 = wino_load(u + q * us, rem), u1 = wino_load(u + (4 + q) * us, rem),
                 u2 = wino_load(u + (8 + q) * us, rem), u3 = wino_load(u + (12 + q) * us, rem);
        const vf h = vf_mul(half, vf_add(u1, u2));
        t[0][q] = vf_add(u0, h);
        t[1][q] = vf_mul(half, vf_sub(u1, u2));
        t[2][q] = vf_add(h, u3);
    }
    for (int r = 0; r < 3; ++r) {
        const vf h = vf_mul(half, vf_add(t[r][1], t[r][2]));
        wino_store(g + (3 * r + 0) * gs, vf_add(t[r][0], h), rem);
        wino_store(g + (3 * r + 1) * gs, vf_mul(half, vf_sub(t[r][1], t[r][2])), rem);
        wino_store(g + (3 * r + 2) * gs, vf_add(h, t[r][3]), rem);
    }
}

static void wino_grad_kernel(const float *u, int64_t us, int64_t count, float *g, int64_t gs)
{
    int64_t i = 0;
    for (; i + VW <= count; i += VW)
        grad_kernel_vec(u + i, us, g + i, gs, VW);
    if (i < count)
        grad_kernel_vec(u + i, us, g + i, gs, count - i);
}

#define CNNC_WINOGRAD_TEMPLATE_MEMBERS                                                        \
    .kernel = wino_kernel, .input = wino_input, .output = wino_output,                       \
    .grad_output = wino_grad_output, .grad_kernel = wino_grad_kernel

#endif
