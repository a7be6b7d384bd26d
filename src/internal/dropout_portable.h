/* Dropout loops in plain C over the counter-based bits of
 * cnnc_dropout_bits, for the element-wise tables without hand-written vector
 * dropout (scalar, NEON): the mask is the same on every path. */
#ifndef CNNC_DROPOUT_PORTABLE_H
#define CNNC_DROPOUT_PORTABLE_H
#include "elementwise_kernels.h"

/* y = x * (keep ? scale : 0), so that NaN and infinity propagate through
 * dropped elements exactly as a multiplication by the mask would. */
static void dropout_forward(int64_t n, uint64_t index, const struct cnnc_dropout_key *key,
                            const float *x, float *y, uint8_t *mask)
{
    for (int64_t i = 0; i < n; ++i) {
        int keep = cnnc_dropout_bits(key, index + (uint64_t)i) >= key->threshold;
        mask[i] = (uint8_t)keep;
        y[i] = x[i] * (keep ? key->scale : 0.0f);
    }
}

static void dropout_backward(int64_t n, const float *dy, const uint8_t *mask, float scale, float *dx)
{
    for (int64_t i = 0; i < n; ++i)
        dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
}

#endif
