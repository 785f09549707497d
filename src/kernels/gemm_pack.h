/* GEMM panel packing shared by the SIMD GEMM files (src/kernels/avx2/gemm.c, avx512/gemm.c).
 * Static inline AVX code: include it only from files compiled with -mavx2 (the ISA folders). */
#ifndef CKE_GEMM_PACK_H
#define CKE_GEMM_PACK_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* In-register 8x8 transpose: r[i][k] -> r[k][i]. */
static inline void gemm_tr8x8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* The first 6 lanes of v to d: a 16-byte and an 8-byte store (masked stores are slow on AMD). */
static inline void gemm_store6(float *d, __m256 v) {
    _mm_storeu_ps(d, _mm256_castps256_ps128(v));
    _mm_storel_pi((__m64 *)(void *)(d + 4), _mm256_extractf128_ps(v, 1));
}

/* gemm_tpack for 6-wide panels (the AVX2 A panels, rows <= 6): the rows, and zero rows up to 8,
 * through the 8x8 transpose, 6 lanes of each k stored. (The loop for P < 8 below is scalar: it
 * was ~6% of a training GEMM's time on a Zen 3.) */
static inline void gemm_tpack6(float *dst /* [kc][6] */, const float *src /* [rows, lds] */, int64_t lds, int rows,
                               int64_t kc) {
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++) r[i] = i < rows ? _mm256_loadu_ps(src + i * lds + k) : _mm256_setzero_ps();
        gemm_tr8x8(r);
        for (int i = 0; i < 8; i++) gemm_store6(dst + (k + i) * 6, r[i]);
    }
    for (; k < kc; k++)
        for (int r = 0; r < 6; r++) dst[k * 6 + r] = r < rows ? src[r * lds + k] : 0.0f;
}

/* Transposing pack: dst[k*P + r] = src[r*lds + k] for r < rows, 0 for rows <= r < P.
 * Groups of 8 rows go through 8x8 register transposes; a ragged last group is shifted back to
 * overlap the previous one (rewriting equal values) instead of falling to scalar code. */
static inline void gemm_tpack(float *dst /* [kc][P] */, int P, const float *src /* [rows, lds] */,
                              int64_t lds, int rows, int64_t kc) {
    if (P == 6) { gemm_tpack6(dst, src, lds, rows, kc); return; }
    if (rows < P) memset(dst, 0, (size_t)(kc * P) * sizeof(float));
    if (rows < 8) {
        for (int64_t k = 0; k < kc; k++)
            for (int r = 0; r < rows; r++) dst[k * P + r] = src[r * lds + k];
        return;
    }
    for (int g = 0; g < rows; g += 8) {
        int r0 = g + 8 <= rows ? g : rows - 8;
        const float *s = src + r0 * lds;
        int64_t k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(s + i * lds + k);
            gemm_tr8x8(r);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (k + i) * P + r0, r[i]);
        }
        for (; k < kc; k++)
            for (int i = 0; i < 8; i++) dst[k * P + r0 + i] = s[i * lds + k];
    }
}

/* Copying pack: dst[k*P + c] = src[k*lds + c] for c < cols, 0 for cols <= c < P. */
static inline void gemm_cpack(float *dst /* [kc][P] */, int P, const float *src /* [kc, lds] */,
                              int64_t lds, int cols, int64_t kc) {
    for (int64_t k = 0; k < kc; k++) {
        const float *s = src + k * lds;
        float *d = dst + k * P;
        int c = 0;
        if (P == 6 && cols == 6) { /* the AVX2 A panels of a transposed A (weight gradients) */
            _mm_storeu_ps(d, _mm_loadu_ps(s));
            d[4] = s[4], d[5] = s[5];
            continue;
        }
        for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(d + c, _mm256_loadu_ps(s + c));
        for (; c < cols; c++) d[c] = s[c];
        for (; c < P; c++) d[c] = 0.0f;
    }
}

/* Whole-block packs: panels of width P over n rows/cols of op(X). */
static inline void gemm_pack_panels(float *dst /* [ceil(n/P)][kc][P] */, int P, const float *X,
                                    int64_t ldx, int transposing, int64_t n, int64_t kc) {
    for (int64_t j = 0; j < n; j += P) {
        int w = (int)(n - j < P ? n - j : P);
        float *d = dst + j * kc;
        if (transposing) gemm_tpack(d, P, X + j * ldx, ldx, w, kc);
        else gemm_cpack(d, P, X + j, ldx, w, kc);
    }
}
#endif
