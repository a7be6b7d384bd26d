#include <immintrin.h>
#include "activation_kernels.h"

/* Masked loads and stores handle the tail without a scalar loop. */
static void relu_forward(int64_t n, const float *x, float *y)
{
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_max_ps(_mm512_maskz_loadu_ps(m, x + i), zero));
    }
}

static void relu_backward(int64_t n, const float *x, const float *dy, float *dx)
{
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __mmask16 positive = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, x + i), zero, _CMP_GT_OQ);
        _mm512_mask_storeu_ps(dx + i, m, _mm512_maskz_loadu_ps(positive, dy + i));
    }
}

const struct cnnc_activation_kernels cnnc_activation_kernels_avx512 = {
    .relu_forward = relu_forward,
    .relu_backward = relu_backward,
};
