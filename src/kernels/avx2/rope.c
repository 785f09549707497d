/* Rotary position embedding, AVX2 + FMA, both layouts (see ref/rope.c for the definition).
 * INTERLEAVED: a vector of 8 floats holds 4 pairs and the matching 4 (cos, sin) entries of cs
 * line up lane for lane: y = x * cos_dup -+ swap(x) * sin_dup in one fmaddsub.
 * HALVES: cs is split into cos / sin vectors (two permutes per 8 pairs) and the two halves
 * rotate as plain vectors. Memory-bound, single-threaded. */
#include "../kdecl.h"
#include "vmath.h"

#include <string.h>

#define W 8

/* cos / sin of pairs [0, n), n <= 8, from interleaved (cos, sin) c */
static inline void cs_split(__m256 *co, __m256 *si, const float *c, int64_t n) {
    __m256 a = v8_load_n(c, 2 * n), b = v8_load_n(c + W, 2 * n - W);
    /* in-lane shuffles give (c0 c1 c4 c5 | c2 c3 c6 c7); the 64-bit permute fixes the order */
    __m256 ce = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    __m256 so = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    *co = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ce), _MM_SHUFFLE(3, 1, 2, 0)));
    *si = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(so), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* x -> pairs swapped: (x1, x0, x3, x2, ...) */
static inline __m256 swap_pairs(__m256 x) { return _mm256_permute_ps(x, 0xB1); }

void cke_rope_fwd_avx2(float *out /* [T,H,hd], may alias in */, const float *in /* [T,H,hd] */,
                         const float *cs /* [P, rot/2, 2] */, const int32_t *pos /* [T] */,
                         int64_t T, int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout) {
    int64_t half = rot / 2;
    for (int64_t t = 0; t < T; t++) {
        const float *c = cs + (int64_t)pos[t] * rot;
        for (int64_t h = 0; h < H; h++) {
            const float *x = in + (t * H + h) * hd;
            float *y = out + (t * H + h) * hd;
            if (layout == CKE_ROPE_INTERLEAVED) {
                for (int64_t i = 0; i < rot; i += W) {
                    int64_t n = rot - i;
                    __m256 xv = v8_load_n(x + i, n), cv = v8_load_n(c + i, n);
                    __m256 s = _mm256_mul_ps(swap_pairs(xv), _mm256_movehdup_ps(cv));
                    /* even lanes a c - b s, odd lanes b c + a s */
                    v8_store_n(y + i, _mm256_fmaddsub_ps(xv, _mm256_moveldup_ps(cv), s), n);
                }
            } else {
                for (int64_t k = 0; k < half; k += W) {
                    int64_t n = half - k;
                    __m256 co, si;
                    cs_split(&co, &si, c + 2 * k, n);
                    __m256 a = v8_load_n(x + k, n), b = v8_load_n(x + half + k, n);
                    v8_store_n(y + k, _mm256_fmsub_ps(a, co, _mm256_mul_ps(b, si)), n);
                    v8_store_n(y + half + k, _mm256_fmadd_ps(a, si, _mm256_mul_ps(b, co)), n);
                }
            }
            if (y != x) memcpy(y + rot, x + rot, (size_t)(hd - rot) * sizeof(float));
        }
    }
}

void cke_rope_bwd_avx2(float *din /* [T,H,hd] += */, const float *dout /* [T,H,hd] */,
                         const float *cs /* [P, rot/2, 2] */, const int32_t *pos /* [T] */,
                         int64_t T, int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout) {
    int64_t half = rot / 2;
    for (int64_t t = 0; t < T; t++) {
        const float *c = cs + (int64_t)pos[t] * rot;
        for (int64_t h = 0; h < H; h++) {
            const float *dy = dout + (t * H + h) * hd;
            float *dx = din + (t * H + h) * hd;
            if (layout == CKE_ROPE_INTERLEAVED) {
                for (int64_t i = 0; i < rot; i += W) {
                    int64_t n = rot - i;
                    __m256 g = v8_load_n(dy + i, n), cv = v8_load_n(c + i, n);
                    __m256 s = _mm256_mul_ps(swap_pairs(g), _mm256_movehdup_ps(cv));
                    /* even lanes a c + b s, odd lanes b c - a s */
                    __m256 d = _mm256_fmsubadd_ps(g, _mm256_moveldup_ps(cv), s);
                    v8_store_n(dx + i, _mm256_add_ps(v8_load_n(dx + i, n), d), n);
                }
            } else {
                for (int64_t k = 0; k < half; k += W) {
                    int64_t n = half - k;
                    __m256 co, si;
                    cs_split(&co, &si, c + 2 * k, n);
                    __m256 a = v8_load_n(dy + k, n), b = v8_load_n(dy + half + k, n);
                    __m256 da = _mm256_fmadd_ps(a, co, _mm256_mul_ps(b, si));
                    __m256 db = _mm256_fmsub_ps(b, co, _mm256_mul_ps(a, si));
                    v8_store_n(dx + k, _mm256_add_ps(v8_load_n(dx + k, n), da), n);
                    v8_store_n(dx + half + k, _mm256_add_ps(v8_load_n(dx + half + k, n), db), n);
                }
            }
            for (int64_t i = rot; i < hd; i += W)
                v8_store_n(dx + i, _mm256_add_ps(v8_load_n(dx + i, hd - i), v8_load_n(dy + i, hd - i)), hd - i);
        }
    }
}
