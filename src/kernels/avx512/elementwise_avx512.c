#define CNNC_SIMD 2
#include <string.h>
#include "elementwise_template.h"

static inline __m512i mix32(__m512i h)
{
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x85ebca6bu));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0xc2b2ae35u));
    return _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
}

/* The 32 random bits of elements index .. index + 15. */
static inline __m512i dropout_bits16(const struct cnnc_dropout_key *key, uint64_t index)
{
    uint32_t lo = (uint32_t)index;
    if (lo > UINT32_MAX - 15) { /* the high word changes inside this vector */
        uint32_t bits[16];
        for (int l = 0; l < 16; ++l)
            bits[l] = cnnc_dropout_bits(key, index + (uint64_t)l);
        return _mm512_loadu_si512(bits);
    }
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i v = _mm512_add_epi32(_mm512_set1_epi32((int)lo), iota);
    __m512i h = mix32(_mm512_xor_si512(v, _mm512_set1_epi32((int)key->k0)));
    h = _mm512_add_epi32(h, _mm512_set1_epi32((int)((uint32_t)(index >> 32) ^ key->k1)));
    return mix32(h);
}

static void dropout_forward(int64_t n, uint64_t index, const struct cnnc_dropout_key *key,
                            const float *x, float *y, uint8_t *mask)
{
    const __m512i threshold = _mm512_set1_epi32((int)key->threshold);
    const __m512 scale = _mm512_set1_ps(key->scale);
    const __m128i one = _mm_set1_epi8(1);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 tail = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __mmask16 keep = _mm512_cmpge_epu32_mask(dropout_bits16(key, index + (uint64_t)i), threshold);
        __m512 factor = _mm512_maskz_mov_ps(keep, scale);
        _mm512_mask_storeu_ps(y + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, x + i), factor));
        _mm_mask_storeu_epi8(mask + i, tail, _mm_maskz_mov_epi8(keep, one));
    }
}

static void dropout_backward(int64_t n, const float *dy, const uint8_t *mask, float scale, float *dx)
{
    const __m512 s = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 tail = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m128i m = _mm_maskz_loadu_epi8(tail, mask + i);
        __m512 factor = _mm512_maskz_mov_ps(_mm_test_epi8_mask(m, m), s);
        _mm512_mask_storeu_ps(dx + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, dy + i), factor));
    }
}

const struct cnnc_elementwise_kernels cnnc_elementwise_kernels_avx512 = {
    CNNC_ELEMENTWISE_TEMPLATE_MEMBERS,
    .dropout_forward = dropout_forward,
    .dropout_backward = dropout_backward,
};
