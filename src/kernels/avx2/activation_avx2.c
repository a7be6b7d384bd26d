#include <immintrin.h>
#include "activation_kernels.h"

static void relu_forward(int64_t n, const float *x, float *y)
{
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_max_ps(_mm256_loadu_ps(x + i), zero));
    for (; i < n; ++i)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_backward(int64_t n, const float *x, const float *dy, float *dx)
{
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 positive = _mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_GT_OQ);
        _mm256_storeu_ps(dx + i, _mm256_and_ps(positive, _mm256_loadu_ps(dy + i)));
    }
    for (; i < n; ++i)
        dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

const struct cnnc_activation_kernels cnnc_activation_kernels_avx2 = {
    .relu_forward = relu_forward,
    .relu_backward = relu_backward,
};
