/* The attention template's conversions and K-pack transposes on x86 (AVX + F16C; both x86 ISA
 * folders have them), included by avx2/attn_vec.h and avx512/attn_vec.h. neon/attn_vec.h has
 * the same functions for aarch64. */
#ifndef CKE_ATTN_X86_H
#define CKE_ATTN_X86_H
#include <immintrin.h>
#include <stdint.h>

/* 8x8 transpose of 256-bit rows (AVX; both ISA folders have it), scaled. */
static inline void tr8x8r(float *dst /* 8 rows, stride ld */, int64_t ld, __m256 r0, __m256 r1, __m256 r2,
                          __m256 r3, __m256 r4, __m256 r5, __m256 r6, __m256 r7, __m256 sc) {
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * ld, _mm256_mul_ps(sc, _mm256_permute2f128_ps(u0, u4, 0x20)));
    _mm256_storeu_ps(dst + 1 * ld, _mm256_mul_ps(sc, _mm256_permute2f128_ps(u1, u5, 0x20)));
    _mm256_storeu_ps(dst + 2 * ld, _mm256_mul_ps(sc, _mm256_permute2f128_ps(u2, u6, 0x20)));
    _mm256_storeu_ps(dst + 3 * ld, _mm256_mul_ps(sc, _mm256_permute2f128_ps(u3, u7, 0x20)));
    _mm256_storeu_ps(dst + 4 * ld, _mm256_mul_ps(sc, _mm256_permute2f128_ps(u0, u4, 0x31)));
    _mm256_storeu_ps(dst + 5 * ld, _mm256_mul_ps(sc, _mm256_permute2f128_ps(u1, u5, 0x31)));
    _mm256_storeu_ps(dst + 6 * ld, _mm256_mul_ps(sc, _mm256_permute2f128_ps(u2, u6, 0x31)));
    _mm256_storeu_ps(dst + 7 * ld, _mm256_mul_ps(sc, _mm256_permute2f128_ps(u3, u7, 0x31)));
}

static inline void vtr8x8(float *dst, int64_t ld, const float *const *src, int64_t d0, float scale) {
    const __m256 sc = _mm256_set1_ps(scale);
    tr8x8r(dst, ld, _mm256_loadu_ps(src[0] + d0), _mm256_loadu_ps(src[1] + d0), _mm256_loadu_ps(src[2] + d0),
           _mm256_loadu_ps(src[3] + d0), _mm256_loadu_ps(src[4] + d0), _mm256_loadu_ps(src[5] + d0),
           _mm256_loadu_ps(src[6] + d0), _mm256_loadu_ps(src[7] + d0), sc);
}

/* 8 halves widened (vcvtph2ps: exact) */
static inline __m256 ld8h(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline float vh2f(uint16_t h) { return _cvtsh_ss(h); }

/* vtr8x8 of f16 rows (the f16 KV cache) */
static inline void vtr8x8h(float *dst, int64_t ld, const uint16_t *const *src, int64_t d0, float scale) {
    const __m256 sc = _mm256_set1_ps(scale);
    tr8x8r(dst, ld, ld8h(src[0] + d0), ld8h(src[1] + d0), ld8h(src[2] + d0), ld8h(src[3] + d0),
           ld8h(src[4] + d0), ld8h(src[5] + d0), ld8h(src[6] + d0), ld8h(src[7] + d0), sc);
}

/* dst[0..8) = the 8 halves at p, widened */
static inline void vwiden8h(float *dst, const uint16_t *p) { _mm256_storeu_ps(dst, ld8h(p)); }
/* dst[0..8) = d * q[0..8): a Q8_0 block's values, one multiply as the format defines */
static inline void vdequant8_q8(float *dst, const int8_t *q, float d) {
    __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q));
    _mm256_storeu_ps(dst, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(v)));
}
/* f32 -> f16, round to nearest even (vcvtps2ph) */
static inline void vnarrow8h(uint16_t *dst, const float *src) {
    _mm_storeu_si128((__m128i *)dst, _mm256_cvtps_ph(_mm256_loadu_ps(src), _MM_FROUND_TO_NEAREST_INT));
}
static inline uint16_t vf2h(float x) { return _cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT); }
#endif
