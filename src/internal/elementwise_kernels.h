/* Per-ISA micro-kernels of the elementwise family, also used by pooling and
 * batch normalization: flat binary operations, per-row operations with a
 * per-column operand (rows of `c` contiguous floats), column reductions and
 * the dropout mask. Each works on one chunk; drivers split the work. */
#ifndef CNNC_ELEMENTWISE_KERNELS_H
#define CNNC_ELEMENTWISE_KERNELS_H
#include "cnnc_internal.h"

/* The workspace slot of the elementwise, pooling and normalization drivers. */
#define CNNC_ELEMENTWISE_WORKSPACE 5

struct cnnc_dropout_key {
    uint32_t k0, k1;      /* derived from the seed */
    uint32_t threshold;   /* element kept when its 32 random bits are >= threshold */
    float scale;          /* 1 / (1 - rate) */
};

struct cnnc_elementwise_kernels {
    void (*add)(int64_t n, const float *a, const float *b, float *y);
    /* y = max(0, a + b), bit for bit the add followed by the ReLU kernel. */
    void (*add_relu)(int64_t n, const float *a, const float *b, float *y);
    void (*mul)(int64_t n, const float *a, const float *b, float *y);
    /* y[i, j] = (x[i, j] - center[j]) * scale[j] + shift[j], then max(y, 0)
     * if relu; or x[i, j] + shift[j] when scale is NULL (center and relu
     * are then unused). */
    void (*scale_shift_rows)(int64_t rows, int64_t c, const float *x, const float *center,
                             const float *scale, const float *shift, int relu, float *y);
    /* y[i, j] = a[j] * u[i, j] + b[j] * (v[i, j] - k[j]) + d[j]; y may be u. */
    void (*affine2_rows)(int64_t rows, int64_t c, const float *u, const float *v, const float *k,
                         const float *a, const float *b, const float *d, float *y);
    /* y[i * ld + j] = v[j] for j < c */
    void (*broadcast_rows)(int64_t rows, int64_t ld, int64_t c, const float *v, float *y);
    /* Column sums over `rows` rows of leading dimension ld, added to acc (double). */
    void (*column_sum)(int64_t rows, int64_t ld, int64_t ncols, const float *x, double *acc);
    /* With d = a - k[j]: acc0 += sum d, acc1 += sum d * d when b is NULL;
     * otherwise acc0 += sum w, acc1 += sum w * d with w = b, or w = b where
     * m > 0 and 0 elsewhere when m is given (m, like a and b, has stride ld),
     * and then w is also stored to wout unless it is NULL (stride ld; it
     * may be b itself). */
    void (*column_moments)(int64_t rows, int64_t ld, int64_t ncols, const float *a, const float *b,
                           const float *m, const float *k, float *wout, double *acc0, double *acc1);
    /* y[j] = max over rows (NaN propagates). */
    void (*column_max)(int64_t rows, int64_t ld, int64_t ncols, const float *x, float *y);
    /* dx[i, j] = dy[j] at the first row i holding the column maximum, else 0. */
    void (*column_max_backward)(int64_t rows, int64_t ld, int64_t ncols, const float *x,
                                const float *dy, float *dx);
    /* Dropout of elements [index, index + n): y = x * keep * scale, mask = keep. */
    void (*dropout_forward)(int64_t n, uint64_t index, const struct cnnc_dropout_key *key,
                            const float *x, float *y, uint8_t *mask);
    /* dx = dy * scale where mask != 0, else 0. */
    void (*dropout_backward)(int64_t n, const float *dy, const uint8_t *mask, float scale, float *dx);
};

/* The random bits of element `index` (the scalar reference every path matches). */
static inline uint32_t cnnc_mix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}
static inline uint32_t cnnc_dropout_bits(const struct cnnc_dropout_key *key, uint64_t index)
{
    return cnnc_mix32(cnnc_mix32((uint32_t)index ^ key->k0) + ((uint32_t)(index >> 32) ^ key->k1));
}

extern CNNC_INTERNAL const struct cnnc_elementwise_kernels cnnc_elementwise_kernels_scalar;
extern CNNC_INTERNAL const struct cnnc_elementwise_kernels cnnc_elementwise_kernels_avx2;
extern CNNC_INTERNAL const struct cnnc_elementwise_kernels cnnc_elementwise_kernels_avx512;
extern CNNC_INTERNAL const struct cnnc_elementwise_kernels cnnc_elementwise_kernels_neon;

#endif
