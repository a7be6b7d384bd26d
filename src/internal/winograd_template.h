/* The Winograd transforms of F(2x2, 3x3) and F(4x4, 3x3) (see
 * winograd_kernels.h), compiled once per ISA by
 * src/kernels/<isa>/winograd_<isa>.c (which defines CNNC_SIMD first). Each
 * processes one vector of channels at a time, all planes of a tile in
 * registers (or the stack, where they outnumber the registers); the last
 * partial vector uses masked loads and stores, so nothing outside the
 * planes is touched. */
#ifndef CNNC_WINOGRAD_TEMPLATE_H
#define CNNC_WINOGRAD_TEMPLATE_H
#include "winograd_kernels.h"
#include "simd.h"

#define WINO_INLINE static inline __attribute__((always_inline))
/* Loops over the planes of a tile unrolled whole, so that the planes stay
 * in registers rather than in arrays on the stack. */
#define WINO_UNROLL _Pragma("GCC unroll 8")

WINO_INLINE vf wino_load(const float *p, int64_t rem) { return rem == VW ? vf_load(p) : vf_load_part(p, rem); }

WINO_INLINE void wino_store(float *p, vf v, int64_t rem)
{
    if (rem == VW)
        vf_store(p, v);
    else
        vf_store_part(p, v, rem);
}

/* fn(args..., i, rem) over `count` lanes: whole vectors, then the tail. */
#define WINO_SWEEP(count, fn, ...)                                                                    \
    do {                                                                                             \
        int64_t i_ = 0;                                                                              \
        for (; i_ + VW <= (count); i_ += VW)                                                         \
            fn(__VA_ARGS__, i_, VW);                                                                 \
        if (i_ < (count))                                                                            \
            fn(__VA_ARGS__, i_, (count) - i_);                                                       \
    } while (0)

/* ---- F(2x2, 3x3) ---------------------------------------------------------- */

/* G g G^T for the lanes at offset i; G's halves are applied once per pass
 * so that the rows and columns that need no scaling stay exact. */
WINO_INLINE void kernel2_vec(const float *g, int64_t gs, float *u, int64_t us, int64_t i, int64_t rem)
{
    const vf half = vf_set1(0.5f);
    vf t[4][3];
    for (int s = 0; s < 3; ++s) {
        const vf g0 = wino_load(g + s * gs + i, rem), g1 = wino_load(g + (3 + s) * gs + i, rem),
                 g2 = wino_load(g + (6 + s) * gs + i, rem);
        const vf even = vf_add(g0, g2);
        t[0][s] = g0;
        t[1][s] = vf_mul(half, vf_add(even, g1));
        t[2][s] = vf_mul(half, vf_sub(even, g1));
        t[3][s] = g2;
    }
    for (int r = 0; r < 4; ++r) {
        const vf even = vf_add(t[r][0], t[r][2]);
        wino_store(u + (4 * r + 0) * us + i, t[r][0], rem);
        wino_store(u + (4 * r + 1) * us + i, vf_mul(half, vf_add(even, t[r][1])), rem);
        wino_store(u + (4 * r + 2) * us + i, vf_mul(half, vf_sub(even, t[r][1])), rem);
        wino_store(u + (4 * r + 3) * us + i, t[r][2], rem);
    }
}

static void wino2_kernel(const float *g, int64_t gs, int64_t count, float *u, int64_t us)
{
    WINO_SWEEP(count, kernel2_vec, g, gs, u, us);
}

WINO_INLINE void input2_vec(const float *const *d, float *v, int64_t vs, int64_t c, int64_t rem)
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

static void wino2_input(const float *const *d, int64_t count, float *v, int64_t vs)
{
    WINO_SWEEP(count, input2_vec, d, v, vs);
}

WINO_INLINE void output2_vec(const float *m, int64_t ms, const float *bias, float *const *y, int64_t c,
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

static void wino2_output(const float *m, int64_t ms, int64_t count, const float *bias, float *const *y)
{
    WINO_SWEEP(count, output2_vec, m, ms, bias, y);
}

/* A dy A^T: rows (a, b) of dy become (a, a + b, a - b, -b), both ways. */
WINO_INLINE void grad_output2_vec(const float *const *dy, float *m, int64_t ms, int64_t c, int64_t rem)
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

static void wino2_grad_output(const float *const *dy, int64_t count, float *m, int64_t ms)
{
    WINO_SWEEP(count, grad_output2_vec, dy, m, ms);
}

/* G^T u G: rows (u0, u1, u2, u3) become (u0 + h, (u1 - u2) / 2, h + u3)
 * with h = (u1 + u2) / 2, both ways. */
WINO_INLINE void grad_kernel2_vec(const float *u, int64_t us, float *g, int64_t gs, int64_t i, int64_t rem)
{
    const vf half = vf_set1(0.5f);
    vf t[3][4];
    for (int q = 0; q < 4; ++q) {
        const vf u0 = wino_load(u + q * us + i, rem), u1 = wino_load(u + (4 + q) * us + i, rem),
                 u2 = wino_load(u + (8 + q) * us + i, rem), u3 = wino_load(u + (12 + q) * us + i, rem);
        const vf h = vf_mul(half, vf_add(u1, u2));
        t[0][q] = vf_add(u0, h);
        t[1][q] = vf_mul(half, vf_sub(u1, u2));
        t[2][q] = vf_add(h, u3);
    }
    for (int r = 0; r < 3; ++r) {
        const vf h = vf_mul(half, vf_add(t[r][1], t[r][2]));
        wino_store(g + (3 * r + 0) * gs + i, vf_add(t[r][0], h), rem);
        wino_store(g + (3 * r + 1) * gs + i, vf_mul(half, vf_sub(t[r][1], t[r][2])), rem);
        wino_store(g + (3 * r + 2) * gs + i, vf_add(h, t[r][3]), rem);
    }
}

static void wino2_grad_kernel(const float *u, int64_t us, int64_t count, float *g, int64_t gs)
{
    WINO_SWEEP(count, grad_kernel2_vec, u, us, g, gs);
}

/* ---- F(4x4, 3x3) ----------------------------------------------------------
 * Points 0, 1, -1, 2, -2 and infinity. G = D^-1 P with P integer and D =
 * diag(4, -6, -6, 24, 24, 1), so U = G g G^T is (P g P^T)[i][j] / (D_i D_j):
 * the integer combinations first, then one correctly rounded division by
 * the exact integer D_i D_j per value, where multiplying by the rounded
 * constants 1/6, 1/24, ... (twice) would round three or four times. The
 * weight gradient's G^T dU G = P^T (dU[i][j] / (D_i D_j)) P likewise. The
 * other transforms have integer coefficients (up to 5 in B^T, 8 in A^T),
 * applied with fused multiply-adds where a product is not exact. */

/* D_i D_j for plane 6 i + j. */
static const float wino4_scale[36] = {
    16, -24, -24, 96, 96, 4,
    -24, 36, 36, -144, -144, -6,
    -24, 36, 36, -144, -144, -6,
    96, -144, -144, 576, 576, 24,
    96, -144, -144, 576, 576, 24,
    4, -6, -6, 24, 24, 1,
};

/* P (g0, g1, g2): (g0, g0 + g1 + g2, g0 - g1 + g2, g0 + 2 g1 + 4 g2,
 * g0 - 2 g1 + 4 g2, g2). */
WINO_INLINE void wino4_p(vf g0, vf g1, vf g2, vf p[6])
{
    const vf two = vf_set1(2.0f), four = vf_set1(4.0f);
    const vf even = vf_add(g0, g2), even4 = vf_fmadd(four, g2, g0);
    p[0] = g0;
    p[1] = vf_add(even, g1);
    p[2] = vf_sub(even, g1);
    p[3] = vf_fmadd(two, g1, even4);
    p[4] = vf_fnmadd(two, g1, even4);
    p[5] = g2;
}

WINO_INLINE void kernel4_vec(const float *g, int64_t gs, float *u, int64_t us, int64_t i, int64_t rem)
{
    vf t[6][3];
    WINO_UNROLL
    for (int s = 0; s < 3; ++s) {
        vf p[6];
        wino4_p(wino_load(g + s * gs + i, rem), wino_load(g + (3 + s) * gs + i, rem),
                wino_load(g + (6 + s) * gs + i, rem), p);
        WINO_UNROLL
        for (int r = 0; r < 6; ++r)
            t[r][s] = p[r];
    }
    WINO_UNROLL
    for (int r = 0; r < 6; ++r) {
        vf p[6];
        wino4_p(t[r][0], t[r][1], t[r][2], p);
        WINO_UNROLL
        for (int q = 0; q < 6; ++q)
            wino_store(u + (6 * r + q) * us + i, vf_div(p[q], vf_set1(wino4_scale[6 * r + q])), rem);
    }
}

static void wino4_kernel(const float *g, int64_t gs, int64_t count, float *u, int64_t us)
{
    WINO_SWEEP(count, kernel4_vec, g, gs, u, us);
}

/* B^T (d0 .. d5): (4 d0 - 5 d2 + d4, (d3 + d4) - 4 (d1 + d2),
 * (d4 - d3) + 4 (d1 - d2), (d4 - d2) + 2 (d3 - d1), (d4 - d2) - 2 (d3 - d1),
 * 4 d1 - 5 d3 + d5). */
WINO_INLINE void wino4_bt(const vf d[6], vf b[6])
{
    const vf two = vf_set1(2.0f), four = vf_set1(4.0f), five = vf_set1(5.0f);
    const vf d12 = vf_add(d[1], d[2]), d34 = vf_add(d[3], d[4]);
    const vf e12 = vf_sub(d[1], d[2]), e43 = vf_sub(d[4], d[3]);
    const vf f42 = vf_sub(d[4], d[2]), f31 = vf_sub(d[3], d[1]);
    b[0] = vf_fnmadd(five, d[2], vf_fmadd(four, d[0], d[4]));
    b[1] = vf_fnmadd(four, d12, d34);
    b[2] = vf_fmadd(four, e12, e43);
    b[3] = vf_fmadd(two, f31, f42);
    b[4] = vf_fnmadd(two, f31, f42);
    b[5] = vf_fnmadd(five, d[3], vf_fmadd(four, d[1], d[5]));
}

WINO_INLINE void input4_vec(const float *const *d, float *v, int64_t vs, int64_t c, int64_t rem)
{
    vf t[6][6];
    WINO_UNROLL
    for (int s = 0; s < 6; ++s) {
        vf col[6], b[6];
        WINO_UNROLL
        for (int r = 0; r < 6; ++r)
            col[r] = wino_load(d[6 * r + s] + c, rem);
        wino4_bt(col, b);
        WINO_UNROLL
        for (int r = 0; r < 6; ++r)
            t[r][s] = b[r];
    }
    WINO_UNROLL
    for (int r = 0; r < 6; ++r) {
        vf b[6];
        wino4_bt(t[r], b);
        WINO_UNROLL
        for (int q = 0; q < 6; ++q)
            wino_store(v + (6 * r + q) * vs + c, b[q], rem);
    }
}

static void wino4_input(const float *const *d, int64_t count, float *v, int64_t vs)
{
    WINO_SWEEP(count, input4_vec, d, v, vs);
}

/* A^T (m0 .. m5) with a = m1 + m2, b = m1 - m2, c = m3 + m4, e = m3 - m4:
 * (m0 + a + c, b + 2 e, a + 4 c, b + 8 e + m5). */
WINO_INLINE void wino4_at(const vf m[6], vf y[4])
{
    const vf two = vf_set1(2.0f), four = vf_set1(4.0f), eight = vf_set1(8.0f);
    const vf a = vf_add(m[1], m[2]), b = vf_sub(m[1], m[2]), c = vf_add(m[3], m[4]), e = vf_sub(m[3], m[4]);
    y[0] = vf_add(vf_add(m[0], a), c);
    y[1] = vf_fmadd(two, e, b);
    y[2] = vf_fmadd(four, c, a);
    y[3] = vf_add(vf_fmadd(eight, e, b), m[5]);
}

WINO_INLINE void output4_vec(const float *m, int64_t ms, const float *bias, float *const *y, int64_t c,
                             int64_t rem)
{
    vf s[4][6];
    WINO_UNROLL
    for (int q = 0; q < 6; ++q) {
        vf col[6], a[4];
        WINO_UNROLL
        for (int r = 0; r < 6; ++r)
            col[r] = wino_load(m + (6 * r + q) * ms + c, rem);
        wino4_at(col, a);
        WINO_UNROLL
        for (int r = 0; r < 4; ++r)
            s[r][q] = a[r];
    }
    const vf b = bias ? wino_load(bias + c, rem) : vf_zero();
    WINO_UNROLL
    for (int r = 0; r < 4; ++r) {
        vf a[4];
        wino4_at(s[r], a);
        WINO_UNROLL
        for (int q = 0; q < 4; ++q)
            wino_store(y[4 * r + q] + c, vf_add(a[q], b), rem);
    }
}

static void wino4_output(const float *m, int64_t ms, int64_t count, const float *bias, float *const *y)
{
    WINO_SWEEP(count, output4_vec, m, ms, bias, y);
}

/* A (y0 .. y3): (y0, e + o, e - o, e4 + 2 o4, e4 - 2 o4, y3) with e = y0 + y2,
 * o = y1 + y3, e4 = y0 + 4 y2, o4 = y1 + 4 y3. */
WINO_INLINE void wino4_a(const vf y[4], vf m[6])
{
    const vf two = vf_set1(2.0f), four = vf_set1(4.0f);
    const vf e = vf_add(y[0], y[2]), o = vf_add(y[1], y[3]);
    const vf e4 = vf_fmadd(four, y[2], y[0]), o4 = vf_fmadd(four, y[3], y[1]);
    m[0] = y[0];
    m[1] = vf_add(e, o);
    m[2] = vf_sub(e, o);
    m[3] = vf_fmadd(two, o4, e4);
    m[4] = vf_fnmadd(two, o4, e4);
    m[5] = y[3];
}

WINO_INLINE void grad_output4_vec(const float *const *dy, float *m, int64_t ms, int64_t c, int64_t rem)
{
    vf t[6][4];
    WINO_UNROLL
    for (int s = 0; s < 4; ++s) {
        vf col[4], a[6];
        WINO_UNROLL
        for (int r = 0; r < 4; ++r)
            col[r] = wino_load(dy[4 * r + s] + c, rem);
        wino4_a(col, a);
        WINO_UNROLL
        for (int r = 0; r < 6; ++r)
            t[r][s] = a[r];
    }
    WINO_UNROLL
    for (int r = 0; r < 6; ++r) {
        vf a[6];
        wino4_a(t[r], a);
        WINO_UNROLL
        for (int q = 0; q < 6; ++q)
            wino_store(m + (6 * r + q) * ms + c, a[q], rem);
    }
}

static void wino4_grad_output(const float *const *dy, int64_t count, float *m, int64_t ms)
{
    WINO_SWEEP(count, grad_output4_vec, dy, m, ms);
}

/* P^T (u0 .. u5): (u0 + a + c, b + 2 e, a + 4 c + u5) with a = u1 + u2,
 * b = u1 - u2, c = u3 + u4, e = u3 - u4. */
WINO_INLINE void wino4_pt(const vf u[6], vf g[3])
{
    const vf two = vf_set1(2.0f), four = vf_set1(4.0f);
    const vf a = vf_add(u[1], u[2]), b = vf_sub(u[1], u[2]), c = vf_add(u[3], u[4]), e = vf_sub(u[3], u[4]);
    g[0] = vf_add(vf_add(u[0], a), c);
    g[1] = vf_fmadd(two, e, b);
    g[2] = vf_add(vf_fmadd(four, c, a), u[5]);
}

WINO_INLINE void grad_kernel4_vec(const float *u, int64_t us, float *g, int64_t gs, int64_t i, int64_t rem)
{
    vf t[3][6];
    WINO_UNROLL
    for (int q = 0; q < 6; ++q) {
        vf col[6], p[3];
        WINO_UNROLL
        for (int r = 0; r < 6; ++r)
            col[r] = vf_div(wino_load(u + (6 * r + q) * us + i, rem), vf_set1(wino4_scale[6 * r + q]));
        wino4_pt(col, p);
        WINO_UNROLL
        for (int r = 0; r < 3; ++r)
            t[r][q] = p[r];
    }
    WINO_UNROLL
    for (int r = 0; r < 3; ++r) {
        vf p[3];
        wino4_pt(t[r], p);
        WINO_UNROLL
        for (int s = 0; s < 3; ++s)
            wino_store(g + (3 * r + s) * gs + i, p[s], rem);
    }
}

static void wino4_grad_kernel(const float *u, int64_t us, int64_t count, float *g, int64_t gs)
{
    WINO_SWEEP(count, grad_kernel4_vec, u, us, g, gs);
}

#define CNNC_WINOGRAD_TEMPLATE_MEMBERS                                                                 \
    .f2x2 = {.kernel = wino2_kernel, .input = wino2_input, .output = wino2_output,                    \
             .grad_output = wino2_grad_output, .grad_kernel = wino2_grad_kernel},                     \
    .f4x4 = {.kernel = wino4_kernel, .input = wino4_input, .output = wino4_output,                    \
             .grad_output = wino4_grad_output, .grad_kernel = wino4_grad_kernel}

#endif
