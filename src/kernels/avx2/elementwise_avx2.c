#define CNNC_SIMD 1
#include <string.h>
#include "elementwise_template.h"

static inline __m256i mix32(__m256i h)
{
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x85ebca6bu));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0xc2b2ae35u));
    return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

/* The 32 random bits of elements index .. index + 7. */
static inline __m256i dropout_bits8(const struct cnnc_dropout_key *key, uint64_t index)
{
    uint32_t lo = (uint32_t)index;
    if (lo > UINT32_MAX - 7) { /* the high word changes inside this vector */
        uint32_t bits[8];
        for (int l = 0; l < 8; ++l)
            bits[l] = cnnc_dropout_bits(key, index + (uint64_t)l);
        return _mm256_loadu_si256((const __m256i *)bits);
    }
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i v = _mm256_add_epi32(_mm256_set1_epi32((int)lo), iota);
    __m256i h = mix32(_mm256_xor_si256(v, _mm256_set1_epi32((int)key->k0)));
    h = _mm256_add_epi32(h, _mm256_set1_epi32((int)((uint32_t)(index >> 32) ^ key->k1)));
    return mix32(h);
}

static void dropout_forward(int64_t n, uint64_t index, const struct cnnc_dropout_key *key,
                            const float *x, float *y, uint8_t *mask)
{
    /* Unsigned comparison through the signed one, both sides offset by 2^31. */
    const __m256i bias = _mm256_set1_epi32((int)0x80000000u);
    const __m256i threshold = _mm256_xor_si256(_mm256_set1_epi32((int)key->threshold), bias);
    const __m256 scale = _mm256_set1_ps(key->scale);
    const __m256i one = _mm256_set1_epi32(1);
    for (int64_t i = 0; i < n; i += 8) {
        int64_t count = n - i < 8 ? n - i : 8;
        __m256i bits = _mm256_xor_si256(dropout_bits8(key, index + (uint64_t)i), bias);
        __m256i drop = _mm256_cmpgt_epi32(threshold, bits);
        __m256 factor = _mm256_andnot_ps(_mm256_castsi256_ps(drop), scale);
        __m256i keep = _mm256_andnot_si256(drop, one);
        __m256i p16 = _mm256_packs_epi32(keep, keep);
        __m256i p8 = _mm256_packus_epi16(p16, p16);
        uint64_t bytes = (uint32_t)_mm_cvtsi128_si32(_mm256_castsi256_si128(p8)) |
                         ((uint64_t)(uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(p8, 1)) << 32);
        if (count == 8) {
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), factor));
            memcpy(mask + i, &bytes, 8);
        } else {
            vf_store_part(y + i, _mm256_mul_ps(vf_load_part(x + i, count), factor), count);
            memcpy(mask + i, &bytes, (size_t)count);
        }
    }
}

static void dropout_backward(int64_t n, const float *dy, const uint8_t *mask, float scale, float *dx)
{
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i zero = _mm256_setzero_si256();
    for (int64_t i = 0; i < n; i += 8) {
        int64_t count = n - i < 8 ? n - i : 8;
        uint64_t bytes = 0;
        memcpy(&bytes, mask + i, (size_t)count);
        __m256i m = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)bytes));
        __m256 factor = _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(m, zero)), s);
        if (count == 8)
            _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), factor));
        else
            vf_store_part(dx + i, _mm256_mul_ps(vf_load_part(dy + i, count), factor), count);
    }
}

const struct cnnc_elementwise_kernels cnnc_elementwise_kernels_avx2 = {
    CNNC_ELEMENTWISE_TEMPLATE_MEMBERS,
    .dropout_forward = dropout_forward,
    .dropout_backward = dropout_backward,
};
