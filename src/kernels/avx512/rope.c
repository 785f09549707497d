/* Rotary position embedding, AVX-512, both layouts (see ref/rope.c for the definition).
 * INTERLEAVED: a vector of 16 floats holds 8 pairs and the matching 8 (cos, sin) entries of cs
 * line up lane for lane: y = x * cos_dup -+ swap(x) * sin_dup in one fmaddsub.
 * HALVES: cs is split into cos / sin vectors (two permutes per 16 pairs) and the two halves
 * rotate as plain vectors. Memory-bound, single-threaded. */
#include "../kdecl.h"
#include "vmath.h"

#include <string.h>

#define W 16

/* cos / sin of pairs [0, n), n <= 16, from interleaved (cos, sin) c */
static inline void cs_split(__m512 *co, __m512 *si, const float *c, int64_t n) {
    __m512 a = v16_load_n(c, 2 * n), b = v16_load_n(c + W, 2 * n - W);
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    *co = _mm512_permutex2var_ps(a, ie, b);
    *si = _mm512_permutex2var_ps(a, io, b);
}

/* x -> pairs swapped: (x1, x0, x3, x2, ...) */
static inline __m512 swap_pairs(__m512 x) { return _mm512_permute_ps(x, 0xB1); }

void cke_rope_fwd_avx512(float *out /* [T,H,hd], may alias in */, const float *in /* [T,H,hd] */,
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
                    __m512 xv = v16_load_n(x + i, n), cv = v16_load_n(c + i, n);
                    __m512 s = _mm512_mul_ps(swap_pairs(xv), _mm512_movehdup_ps(cv));
                    /* even lanes a c - b s, odd lanes b c + a s */
                    v16_store_n(y + i, _mm512_fmaddsub_ps(xv, _mm512_moveldup_ps(cv), s), n);
                }
            } else {
                for (int64_t k = 0; k < half; k += W) {
                    int64_t n = half - k;
                    __m512 co, si;
                    cs_split(&co, &si, c + 2 * k, n);
                    __m512 a = v16_load_n(x + k, n), b = v16_load_n(x + half + k, n);
                    v16_store_n(y + k, _mm512_fmsub_ps(a, co, _mm512_mul_ps(b, si)), n);
                    v16_store_n(y + half + k, _mm512_fmadd_ps(a, si, _mm512_mul_ps(b, co)), n);
                }
            }
            if (y != x) memcpy(y + rot, x + rot, (size_t)(hd - rot) * sizeof(float));
        }
    }
}

void cke_rope_bwd_avx512(float *din /* [T,H,hd] += */, const float *dout /* [T,H,hd] */,
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
                    __m512 g = v16_load_n(dy + i, n), cv = v16_load_n(c + i, n);
                    __m512 s = _mm512_mul_ps(swap_pairs(g), _mm512_movehdup_ps(cv));
                    /* even lanes a c + b s, odd lanes b c - a s */
                    __m512 d = _mm512_fmsubadd_ps(g, _mm512_moveldup_ps(cv), s);
                    v16_store_n(dx + i, _mm512_add_ps(v16_load_n(dx + i, n), d), n);
                }
            } else {
                for (int64_t k = 0; k < half; k += W) {
                    int64_t n = half - k;
                    __m512 co, si;
                    cs_split(&co, &si, c + 2 * k, n);
                    __m512 a = v16_load_n(dy + k, n), b = v16_load_n(dy + half + k, n);
                    __m512 da = _mm512_fmadd_ps(a, co, _mm512_mul_ps(b, si));
                    __m512 db = _mm512_fmsub_ps(b, co, _mm512_mul_ps(a, si));
                    v16_store_n(dx + k, _mm512_add_ps(v16_load_n(dx + k, n), da), n);
                    v16_store_n(dx + half + k, _mm512_add_ps(v16_load_n(dx + half + k, n), db), n);
                }
            }
            for (int64_t i = rot; i < hd; i += W)
                v16_store_n(dx + i, _mm512_add_ps(v16_load_n(dx + i, hd - i), v16_load_n(dy + i, hd - i)), hd - i);
        }
    }
}
