/* Quantized dot products with 256-bit integer SIMD, shared by avx2/quant.c and avx512/quant.c.
 * The includer defines QS_SFX (function suffix) and QS_VNNI (1: AVX-512 VNNI dpbusd replaces
 * the maddubs + madd pair for the u8 x s8 products; 256-bit VL form because the blocks are 32
 * elements and Zen 4 runs a 512-bit op as two 256-bit halves anyway).
 *
 * Every kernel sums the same integer products per block as its _ref (exact), then scales in
 * float with FMAs in a different order: results match the _ref to float rounding. */
#include "kdecl.h"
#include "quant_blocks.h"

#include <immintrin.h>

#define QS_CAT2(a, b) a##_##b
#define QS_CAT(a, b) QS_CAT2(a, b)
#define QS_FN(name) QS_CAT(name, QS_SFX)

/* F16C conversion: one instruction instead of qb_h2f's branches (per-block scales are on the
 * decode critical path); exact, like qb_h2f */
#define qb_h2f(h) _cvtsh_ss(h)

static inline float qs_hsum(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}
static inline int32_t qs_hsum_i32(__m256i v) {
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
    return _mm_cvtsi128_si32(r);
}

/* 8 lanes of int32 sums of u8 x s8 products (4 adjacent bytes per lane). u must be < 128 or the
 * pair sum must fit int16 (maddubs saturates): true for every use below. */
static inline __m256i qs_dot_us8(__m256i u, __m256i s) {
#if QS_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}
/* s8 x s8: |x| as u8 times y with x's sign */
static inline __m256i qs_dot_ss8(__m256i x, __m256i y) {
    return qs_dot_us8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* 16 packed bytes -> 32 nibbles: low nibbles in bytes 0..15, high nibbles in 16..31 (the
 * element order of the _0/_1 formats) */
static inline __m256i qs_nibbles32(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}
/* 32 bits -> 32 bytes, 0xFF where the bit is set (byte j <- bit j) */
static inline __m256i qs_bits32(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)); /* all bits but bit (j%8) */
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

#if QS_VNNI
/* AVX-512: 64 weights per step (16-bit weights to floats 16 at a time: CVT), 4 accumulators */
static inline __m512 qs_f16x16(const uint16_t *h) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h)); }
static inline __m512 qs_bf16x16(const uint16_t *h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)h)), 16));
}
/* Decode streams 16-bit rows from DRAM at 2 bytes a weight, and one stream's hardware prefetch
 * does not run far enough ahead: every loop asks for the line QS_PF16 bytes ahead of its loads
 * (measured on the 110M and 1.1B shapes, 1 thread: 9.9 -> 13.4 GB/s against 16.5 measured; 2 KiB
 * to 16 KiB ahead all within 3%; a prefetch past the matrix end is harmless). */
#define QS_PF16 4096
#define QS_DOT16(NAME, CVT, SCALAR)                                                                \
    void QS_FN(NAME)(float *s, const void *w, const void *a, int64_t k) {                          \
        const uint16_t *h = w;                                                                     \
        const float *x = a;                                                                        \
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()}; \
        int64_t i = 0;                                                                             \
        for (; i + 64 <= k; i += 64) {                                                             \
            _mm_prefetch((const char *)(h + i) + QS_PF16, _MM_HINT_T0);                            \
            _mm_prefetch((const char *)(h + i) + QS_PF16 + 64, _MM_HINT_T0);                       \
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++)                                    \
                acc[j] = _mm512_fmadd_ps(CVT(h + i + 16 * j), _mm512_loadu_ps(x + i + 16 * j), acc[j]); \
        }                                                                                          \
        for (; i + 16 <= k; i += 16) acc[0] = _mm512_fmadd_ps(CVT(h + i), _mm512_loadu_ps(x + i), acc[0]); \
        float r = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]))); \
        for (; i < k; i++) r += SCALAR(h[i]) * x[i];                                              \
        *s = r;                                                                                    \
    }
QS_DOT16(cke_vec_dot_f16, qs_f16x16, qb_h2f)
QS_DOT16(cke_vec_dot_bf16, qs_bf16x16, qb_bf2f)

/* F16 / BF16 decode GEMV: rows up to 4 KiB walked one after another (the dot above); longer rows
 * in tiles of 8 that share each activation load (as the f32 GEMV: for long rows, 8 streams beat
 * one), each stream prefetched 1 KiB ahead (8 streams: 14.9 GB/s on the 1.1B shapes, 12.9 without) */
#define QS_GEMV16(NAME, CVT, DOT)                                                                  \
    static void QS_FN(NAME)(float *y, const void *w, size_t rs, int64_t nw, const void *a, int64_t k) { \
        const float *x = a;                                                                        \
        int64_t n = 0;                                                                             \
        if (k > 2048 && k % 32 == 0)                                                               \
            for (; n + 8 <= nw; n += 8) {                                                          \
                const uint16_t *h = (const uint16_t *)((const char *)w + (size_t)n * rs);          \
                const size_t ld = rs / 2;                                                          \
                __m512 acc[8];                                                                     \
                for (int j = 0; j < 8; j++) acc[j] = _mm512_setzero_ps();                          \
                for (int64_t i = 0; i < k; i += 32) {                                              \
                    const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);    \
                    _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {                          \
                        _mm_prefetch((const char *)(h + j * ld + i) + 1024, _MM_HINT_T0);          \
                        acc[j] = _mm512_fmadd_ps(CVT(h + j * ld + i), x0, acc[j]);                 \
                        acc[j] = _mm512_fmadd_ps(CVT(h + j * ld + i + 16), x1, acc[j]);            \
                    }                                                                              \
                }                                                                                  \
                for (int j = 0; j < 8; j++) y[n + j] = _mm512_reduce_add_ps(acc[j]);               \
            }                                                                                      \
        for (; n < nw; n++) QS_FN(DOT)(y + n, (const char *)w + (size_t)n * rs, a, k);             \
    }
QS_GEMV16(qs_gemv_f16, qs_f16x16, cke_vec_dot_f16)
QS_GEMV16(qs_gemv_bf16, qs_bf16x16, cke_vec_dot_bf16)
#else
void QS_FN(cke_vec_dot_f16)(float *s, const void *w, const void *a, int64_t k) {
    const uint16_t *h = w;
    const float *x = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))), _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 8))), _mm256_loadu_ps(x + i + 8), acc1);
    }
    float r = qs_hsum(_mm256_add_ps(acc0, acc1));
    for (; i < k; i++) r += qb_h2f(h[i]) * x[i];
    *s = r;
}

void QS_FN(cke_vec_dot_bf16)(float *s, const void *w, const void *a, int64_t k) {
    const uint16_t *h = w;
    const float *x = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        __m256i w0 = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i))), 16);
        __m256i w1 = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i + 8))), 16);
        acc0 = _mm256_fmadd_ps(_mm256_castsi256_ps(w0), _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_castsi256_ps(w1), _mm256_loadu_ps(x + i + 8), acc1);
    }
    float r = qs_hsum(_mm256_add_ps(acc0, acc1));
    for (; i < k; i++) r += qb_bf2f(h[i]) * x[i];
    *s = r;
}
#endif

/* u8 (0..31) x s8 products of 32 values -> 16 int16 pair sums (no saturation: 2*31*127) */
static inline __m256i qs_pairs16(__m256i u, __m256i s) { return _mm256_maddubs_epi16(u, s); }

/* Q4_K and Q5_K: sum_j sc_j * (q_j . a_j) as int32 via madd with the scale, then one float
 * scale per super-block; the mins through the activation's bsums. */
static inline void qs_k4_scales(const uint8_t *sc12, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 8; j++) qb_scale_min_k4(j, sc12, &sc[j], &mn[j]);
}


void QS_FN(cke_vec_dot_q5_K)(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q5_K *w = vw;
    const blk_q8_K *a = va;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b16 = _mm256_set1_epi8(0x10);
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        uint8_t sc[8], mn[8];
        qs_k4_scales(w[i].scales, sc, mn);
        int32_t summ = 0;
        for (int j = 0; j < 8; j++) summ += mn[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        __m256i hb = _mm256_loadu_si256((const __m256i *)w[i].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * c));
            /* bit 2c of qh[l] -> bit 4 of the low value, bit 2c+1 -> bit 4 of the high value */
            __m256i hl = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hb, 2 * c), 4), b16);
            __m256i hh = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hb, 2 * c + 1), 4), b16);
            __m256i ql = _mm256_or_si256(_mm256_and_si256(q, m4), hl);
            __m256i qh = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hh);
            __m256i pl = qs_pairs16(ql, _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * c)));
            __m256i ph = qs_pairs16(qh, _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * c + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pl, _mm256_set1_epi16(sc[2 * c])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(ph, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        acc += a[i].d * qb_h2f(w[i].d) * (float)qs_hsum_i32(sumi) - a[i].d * qb_h2f(w[i].dmin) * (float)summ;
    }
    *s = acc;
}

/* Q6_K: q in 0..63 dotted as u8, minus 32 * sum(a) per 16-group through bsums */
void QS_FN(cke_vec_dot_q6_K)(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q6_K *w = vw;
    const blk_q8_K *a = va;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        int32_t corr = 0;
        for (int g = 0; g < 16; g++) corr += w[i].scales[g] * a[i].bsums[g];
        __m256i sumi = _mm256_setzero_si256();
        for (int n = 0; n < 2; n++) {
            const uint8_t *ql = w[i].ql + 64 * n, *qhp = w[i].qh + 32 * n;
            const int8_t *sc = w[i].scales + 8 * n, *q8 = a[i].qs + 128 * n;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i h = _mm256_loadu_si256((const __m256i *)qhp);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
            for (int r = 0; r < 4; r++) {
                __m256i p = qs_pairs16(q[r], _mm256_loadu_si256((const __m256i *)(q8 + 32 * r)));
                /* int16 lanes 0..7 hold values 0..15 of this run (scale sc[2r]), 8..15 the rest */
                __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * r + 1]), _mm_set1_epi16(sc[2 * r]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scv));
            }
        }
        acc += a[i].d * qb_h2f(w[i].d) * (float)(qs_hsum_i32(sumi) - 32 * corr);
    }
    *s = acc;
}

/* Q8_0 quantizer, bit-identical to the _ref: amax, d = amax/127 (scalar, same division), id =
 * 1/d, q = roundf(x * id) (half away from zero: trunc, then +-1 where |t - trunc(t)| >= 0.5,
 * both exact), d stored through F16C's round-to-nearest-even (qb_f2h's rounding). The decode
 * path quantizes each activation row with it (the _ref's roundf calls cost ~10% of a layer). */
static void QS_FN(qs_quantize_row_q8_0)(void *vy, const float *x, int64_t k) {
    blk_q8_0 *y = vy;
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), half = _mm256_set1_ps(0.5f);
    const __m256 sgn = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)), one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < k / QK; i++, x += QK) {
        __m256 v[4];
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(x + 8 * j);
            m = _mm256_max_ps(_mm256_and_ps(v[j], absm), m); /* a NaN x is skipped, like fmaxf */
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT), 0);
        const __m256 idv = _mm256_set1_ps(id);
        __m256i qi[4];
        for (int j = 0; j < 4; j++) {
            __m256 t = _mm256_mul_ps(v[j], idv);
            __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m256 up = _mm256_cmp_ps(_mm256_and_ps(_mm256_sub_ps(t, r), absm), half, _CMP_GE_OQ);
            r = _mm256_add_ps(r, _mm256_and_ps(up, _mm256_or_ps(one, _mm256_and_ps(t, sgn))));
            qi[j] = _mm256_cvttps_epi32(r);
        }
        /* int32 -> int8 in element order: packs interleave 128-bit lanes, a permute restores it */
        __m256i p16a = _mm256_packs_epi32(qi[0], qi[1]), p16b = _mm256_packs_epi32(qi[2], qi[3]);
        __m256i p8 = _mm256_packs_epi16(p16a, p16b);
        p8 = _mm256_permutevar8x32_epi32(p8, _mm256_set_epi32(7, 3, 6, 2, 5, 1, 4, 0));
        _mm256_storeu_si256((__m256i *)y[i].qs, p8);
    }
}

/* ---- Q8_0, Q4_0, Q4_K: the decode GEMV's kernels, tuned to stream a weight row at the memory
 * bandwidth. (Kernels over 4 interleaved rows, which share the activation loads, run faster
 * from cache but slower from DRAM: one sequential stream per thread is what the prefetchers
 * serve best.) */

/* the loops below must be unrolled: their accumulator arrays then live in registers */
#define QS_UNROLL4 _Pragma("GCC unroll 4")
#define QS_UNROLL8 _Pragma("GCC unroll 8")

/* the f16 scale h in all 8 lanes */
static inline __m256 qs_bcast_h(uint16_t h) { return _mm256_cvtph_ps(_mm_set1_epi16((short)h)); }

/* acc + 8 lanes of int32 sums of u8 x s8 products (as qs_dot_us8) */
static inline __m256i qs_dot_us8_acc(__m256i acc, __m256i u, __m256i s) {
#if QS_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
/* acc + int16 pair products summed to int32 (madd) */
static inline __m256i qs_madd_acc(__m256i acc, __m256i x, __m256i y) {
#if QS_VNNI
    return _mm256_dpwssd_epi32(acc, x, y);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
#endif
}

/* 8 f16 values at p, p + stride, ... (stride even, 7 * stride + 2 <= 256) as 8 floats */
static inline __m256 qs_h8(const void *p, size_t stride) {
#if QS_VNNI
    /* AVX-512 BW: the words picked by vpermt2w out of 2 or 4 64-byte loads (2 ops or 6 instead of
     * ~16 inserts); masked loads (faults suppressed) read only the n words up to the 8th value */
    const char *c = p;
    const int64_t n = (int64_t)(7 * stride / 2 + 1);
    const __m128i idx = _mm_mullo_epi16(_mm_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7), _mm_set1_epi16((short)(stride / 2)));
    const __m512i ix = _mm512_castsi128_si512(idx);
#define QS_WMASK(lo) ((__mmask32)(n - (lo) >= 32 ? 0xFFFFFFFFu : n - (lo) <= 0 ? 0u : (1u << (n - (lo))) - 1))
    __m512i g = _mm512_permutex2var_epi16(_mm512_maskz_loadu_epi16(QS_WMASK(0), c), ix,
                                          _mm512_maskz_loadu_epi16(QS_WMASK(32), c + 64));
    __m128i h = _mm512_castsi512_si128(g);
    if (n > 64) {
        __m512i g2 = _mm512_permutex2var_epi16(_mm512_maskz_loadu_epi16(QS_WMASK(64), c + 128), ix,
                                               _mm512_maskz_loadu_epi16(QS_WMASK(96), c + 192));
        h = _mm_mask_blend_epi16(_mm_cmpge_epu16_mask(idx, _mm_set1_epi16(64)), h, _mm512_castsi512_si128(g2));
    }
#undef QS_WMASK
    return _mm256_cvtph_ps(h);
#else
    const char *c = p;
    uint16_t h[8];
    for (int j = 0; j < 8; j++) memcpy(&h[j], c + (size_t)j * stride, 2);
    /* built in registers (8 word stores reloaded as one vector would stall store forwarding) */
    return _mm256_cvtph_ps(_mm_set_epi16((short)h[7], (short)h[6], (short)h[5], (short)h[4], (short)h[3],
                                         (short)h[2], (short)h[1], (short)h[0]));
#endif
}

/* Driver of the Q8_0 and Q4_0 kernels: blocks in groups of 8, whose scale products d_w * d_a are
 * converted 8 at a time (one vcvtph2ps per group: a conversion per block costs about as much
 * as the block's dot) and broadcast to each block's FMA by a lane permute; 4 accumulators
 * (block j % 4) so the FMA chains overlap. PREP computes values of activation quants av; DOT
 * is the int32 dot vector of weight block b. */
#define QS_DOT_0(WT, AT, MIN, PREP, DOT)                                                           \
    const AT *a = va;                                                                              \
    const WT *w = vw;                                                                              \
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
    MIN##_DECL;                                                                                    \
    const int64_t nb = k / QK;                                                                     \
    int64_t i = 0;                                                                                 \
    for (; i + 8 <= nb; i += 8) {                                                                  \
        __m256 s8 = _mm256_mul_ps(qs_h8(&w[i].d, sizeof(WT)), qs_h8(&a[i].d, sizeof(AT)));         \
        MIN##_GROUP(&w[i], &a[i], sizeof(WT), sizeof(AT));                                         \
        QS_UNROLL8 for (int j = 0; j < 8; j++) {                                                   \
            __m256i av = _mm256_loadu_si256((const __m256i *)a[i + j].qs);                         \
            const WT *b = &w[i + j];                                                               \
            PREP;                                                                                  \
            __m256i p = DOT;                                                                       \
            __m256 sc = _mm256_permutevar8x32_ps(s8, _mm256_set1_epi32(j));                        \
            acc[j & 3] = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(p), acc[j & 3]);                   \
        }                                                                                          \
    }                                                                                              \
    for (; i < nb; i++) {                                                                          \
        __m256i av = _mm256_loadu_si256((const __m256i *)a[i].qs);                                 \
        const WT *b = &w[i];                                                                       \
        PREP;                                                                                      \
        __m256i p = DOT;                                                                           \
        acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(qb_h2f(b->d) * qb_h2f(a[i].d)), _mm256_cvtepi32_ps(p), acc[0]); \
        MIN##_TAIL(b, &a[i]);                                                                      \
    }                                                                                              \
    *s = qs_hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) + MIN##_FINAL

/* MIN of the driver: QS_MIN0 for the _0 formats; QS_MIN1 adds the _1 formats' sum of m_w * s_a
 * (weight min times the Q8_1 activation's s = d * sum(q)), 8 blocks per FMA */
#define QS_MIN0_DECL (void)0
#define QS_MIN0_GROUP(w, a, ws, as) (void)0
#define QS_MIN0_TAIL(b, a) (void)0
#define QS_MIN0_FINAL 0.0f
#define QS_MIN1_DECL                                                                               \
    __m256 accm = _mm256_setzero_ps();                                                             \
    float summ = 0.0f
#define QS_MIN1_GROUP(w, a, ws, as) accm = _mm256_fmadd_ps(qs_h8(&(w)->m, ws), qs_h8(&(a)->s, as), accm)
#define QS_MIN1_TAIL(b, a) summ += qb_h2f((b)->m) * qb_h2f((a)->s)
#define QS_MIN1_FINAL (qs_hsum(accm) + summ)

/* Q8_0: |a| x (w with a's sign) */
void QS_FN(cke_vec_dot_q8_0)(float *s, const void *vw, const void *va, int64_t k) {
    QS_DOT_0(blk_q8_0, blk_q8_0, QS_MIN0, (void)0,
             qs_dot_us8(_mm256_sign_epi8(av, av), _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)b->qs), av)));
}

/* Q4_0: the nibbles q (0..15) dotted as u8 with a (low nibbles in the low 128-bit lane, high
 * ones shifted down in the high lane), minus 8 . a (a second u8 x s8 dot) */
void QS_FN(cke_vec_dot_q4_0)(float *s, const void *vw, const void *va, int64_t k) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), eights = _mm256_set1_epi8(8), shr = _mm256_set_epi64x(4, 4, 0, 0);
    QS_DOT_0(blk_q4_0, blk_q8_0, QS_MIN0, (void)0,
             _mm256_sub_epi32(qs_dot_us8(_mm256_and_si256(_mm256_srlv_epi64(_mm256_broadcastsi128_si256(
                                                              _mm_loadu_si128((const __m128i *)b->qs)), shr), m4), av),
                              qs_dot_us8(eights, av)));
}

/* Q4_1: nibbles (0..15) x a, plus m * s per block */
void QS_FN(cke_vec_dot_q4_1)(float *s, const void *vw, const void *va, int64_t k) {
    QS_DOT_0(blk_q4_1, blk_q8_1, QS_MIN1, (void)0, qs_dot_us8(qs_nibbles32(b->qs), av));
}

/* Q5_0: q - 16 = nibble when bit 4 is set, else nibble - 16 = nibble | 0xF0 as int8 */
void QS_FN(cke_vec_dot_q5_0)(float *s, const void *vw, const void *va, int64_t k) {
    const __m256i f0 = _mm256_set1_epi8((char)0xF0);
    QS_DOT_0(blk_q5_0, blk_q8_0, QS_MIN0, (void)0,
             qs_dot_ss8(_mm256_or_si256(qs_nibbles32(b->qs), _mm256_andnot_si256(qs_bits32(b->qh), f0)), av));
}

/* Q5_1: q (0..31) x a, plus m * s per block */
void QS_FN(cke_vec_dot_q5_1)(float *s, const void *vw, const void *va, int64_t k) {
    const __m256i b16 = _mm256_set1_epi8(0x10);
    QS_DOT_0(blk_q5_1, blk_q8_1, QS_MIN1, (void)0,
             qs_dot_us8(_mm256_or_si256(qs_nibbles32(b->qs), _mm256_and_si256(qs_bits32(b->qh), b16)), av));
}

/* Q4_K: the 12 packed scale bytes -> bytes 0..7 scales, 8..15 mins (ggml's kmask unpacking) */
static inline __m128i qs_k4_unpack(const uint8_t *sc12) {
    uint32_t u[4];
    memcpy(u, sc12, 12);
    const uint32_t km1 = 0x3f3f3f3f, km2 = 0x0f0f0f0f, km3 = 0x03030303;
    u[3] = ((u[2] >> 4) & km2) | (((u[1] >> 6) & km3) << 4);
    const uint32_t aux = u[1] & km1;
    u[1] = (u[2] & km2) | (((u[0] >> 6) & km3) << 4);
    u[2] = aux;
    u[0] &= km1;
    return _mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]);
}

/* Q4_K: sum_j sc_j * (q_j . a_j) in int32 (maddubs, then madd / dpwssd with the scale broadcast
 * by a byte shuffle), the mins through the activation's bsums in the same madd, one float
 * scaling per super-block */
void QS_FN(cke_vec_dot_q4_K)(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q4_K *w = vw;
    const blk_q8_K *a = va;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int64_t i = 0; i < k / QK_K; i++) {
        const blk_q4_K *b = &w[i];
        __m256i scm = _mm256_cvtepu8_epi16(qs_k4_unpack(b->scales)); /* sc0..7 | m0..7 as int16 */
        /* pair sums of bsums (sub-block j's sum of a) in the high lane, zeros in the low: the
         * madd with [scales | mins] is the mins term alone */
        __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)a[i].bsums), _mm_loadu_si128((const __m128i *)(a[i].bsums + 8)));
        __m256i summ = _mm256_madd_epi16(scm, _mm256_inserti128_si256(_mm256_setzero_si256(), bs, 1));
        __m256i scb = _mm256_permute2x128_si256(scm, scm, 0x00); /* scales in both lanes */
        __m256i sumi = _mm256_setzero_si256();
        QS_UNROLL4 for (int c = 0; c < 4; c++) {
            /* vpshufb controls: int16 word 2c (2c+1) of each lane in all its words */
            const __m256i bl = _mm256_set1_epi16((short)(0x0100 * (4 * c + 1) + 4 * c));
            const __m256i bh = _mm256_set1_epi16((short)(0x0100 * (4 * c + 3) + 4 * c + 2));
            __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
            __m256i ql = _mm256_and_si256(q, m4), qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            __m256i pl = qs_pairs16(ql, _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * c)));
            __m256i ph = qs_pairs16(qh, _mm256_loadu_si256((const __m256i *)(a[i].qs + 64 * c + 32)));
            sumi = qs_madd_acc(sumi, pl, _mm256_shuffle_epi8(scb, bl));
            sumi = qs_madd_acc(sumi, ph, _mm256_shuffle_epi8(scb, bh));
        }
        /* [d, dmin] (adjacent f16) -> d*da and dmin*da in all lanes */
        uint32_t ddm;
        memcpy(&ddm, &b->d, 4);
        __m256 dd = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi32((int)ddm)), _mm256_set1_ps(a[i].d));
        acc0 = _mm256_fmadd_ps(_mm256_permute_ps(dd, 0x00), _mm256_cvtepi32_ps(sumi), acc0);
        acc1 = _mm256_fnmadd_ps(_mm256_permute_ps(dd, 0x55), _mm256_cvtepi32_ps(summ), acc1);
    }
    *s = qs_hsum(_mm256_add_ps(acc0, acc1));
}

/* ---- prefill tile: 1 weight row x up to 4 activation rows. The activations are stored as u8
 * (Q8_0 quant + 128), so each pair of blocks is one u8 x s8 dpbusd of the weight's s8 values v;
 * the +128 offset is removed by starting the accumulator at -128 * sum(v), computed once per
 * weight block. The weight block's decode and correction are shared by the 4 rows. VNNI only
 * (maddubs would saturate on 255 * 127 pairs). Integer sums exact; float scaling order differs
 * from the _ref (float rounding). */
#if QS_VNNI
#define QS_TILE4(WT, DECODE)                                                                       \
    const WT *w = vw;                                                                              \
    const int64_t nb = k / QK;                                                                     \
    const uint8_t *ar[4];                                                                          \
    const float *dr[4];                                                                            \
    for (int r = 0; r < 4; r++) {                                                                  \
        int rr = r < nr ? r : nr - 1;                                                              \
        ar[r] = aq + (size_t)rr * (size_t)k;                                                       \
        dr[r] = ad + (size_t)rr * (size_t)nb;                                                      \
    }                                                                                              \
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()}; \
    const __m256i c80 = _mm256_set1_epi8((char)0x80);                                              \
    for (int64_t i = 0; i < nb; i++) {                                                             \
        const WT *b = &w[i];                                                                       \
        __m256i v = DECODE;                                                                        \
        __m256i corr = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), c80, v)); \
        __m256 dw = _mm256_set1_ps(qb_h2f(b->d));                                                  \
        QS_UNROLL4 for (int r = 0; r < 4; r++) {                                                   \
            __m256i p = _mm256_dpbusd_epi32(corr, _mm256_loadu_si256((const __m256i *)(ar[r] + 32 * i)), v); \
            acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(dr[r][i])), _mm256_cvtepi32_ps(p), acc[r]); \
        }                                                                                          \
    }                                                                                              \
    for (int r = 0; r < nr; r++) y[r * ldy] = qs_hsum(acc[r])

static void QS_FN(qs_tile4_q8_0)(float *y, int64_t ldy, const void *vw, const uint8_t *aq, const float *ad, int nr, int64_t k) {
    QS_TILE4(blk_q8_0, _mm256_loadu_si256((const __m256i *)b->qs));
}
static void QS_FN(qs_tile4_q4_0)(float *y, int64_t ldy, const void *vw, const uint8_t *aq, const float *ad, int nr, int64_t k) {
    const __m256i eights = _mm256_set1_epi8(8);
    QS_TILE4(blk_q4_0, _mm256_sub_epi8(qs_nibbles32(b->qs), eights));
}
static void QS_FN(qs_tile4_q5_0)(float *y, int64_t ldy, const void *vw, const uint8_t *aq, const float *ad, int nr, int64_t k) {
    const __m256i f0 = _mm256_set1_epi8((char)0xF0);
    QS_TILE4(blk_q5_0, _mm256_or_si256(qs_nibbles32(b->qs), _mm256_andnot_si256(qs_bits32(b->qh), f0)));
}
#define QS_T4(t) QS_FN(qs_tile4_##t)
#else
#define QS_T4(t) NULL
#endif

#define QS_OPS(t, nm, b, sz, vdt, vd)                                                              \
    const cke_qtype_ops QS_CAT(cke_qops_##t, QS_SFX) = {                                           \
        .name = nm, .blck = b, .type_size = sz, .vec_dot_type = vdt,                               \
        .quantize_row = cke_quantize_row_##t##_ref, .dequantize_row = cke_dequantize_row_##t##_ref, \
        .vec_dot = vd}
/* quantize/dequantize are the _ref's (Q8_0 quantize aside): they run once per model or per weight panel (prefill
 * dequantizes panels, see qlinear.c), and Q8_0/Q8_K activation quantization of one decode row
 * is ~K operations against the N*K of the product */
#if QS_VNNI
const cke_qtype_ops QS_CAT(cke_qops_f16, QS_SFX) = {
    .name = "f16", .blck = 1, .type_size = 2, .vec_dot_type = QT_F32, .quantize_row = cke_quantize_row_f16_ref,
    .dequantize_row = cke_dequantize_row_f16_ref, .vec_dot = QS_FN(cke_vec_dot_f16), .gemv = QS_FN(qs_gemv_f16)};
#else
QS_OPS(f16, "f16", 1, 2, QT_F32, QS_FN(cke_vec_dot_f16));
#endif
#if QS_VNNI
const cke_qtype_ops QS_CAT(cke_qops_bf16, QS_SFX) = {
    .name = "bf16", .blck = 1, .type_size = 2, .vec_dot_type = QT_F32, .quantize_row = cke_quantize_row_bf16_ref,
    .dequantize_row = cke_dequantize_row_bf16_ref, .vec_dot = QS_FN(cke_vec_dot_bf16), .gemv = QS_FN(qs_gemv_bf16)};
#else
QS_OPS(bf16, "bf16", 1, 2, QT_F32, QS_FN(cke_vec_dot_bf16));
#endif
const cke_qtype_ops QS_CAT(cke_qops_q8_0, QS_SFX) = {
    .name = "q8_0", .blck = QK, .type_size = 34, .vec_dot_type = QT_Q8_0,
    .quantize_row = QS_FN(qs_quantize_row_q8_0), .dequantize_row = cke_dequantize_row_q8_0_ref,
    .vec_dot = QS_FN(cke_vec_dot_q8_0), .vec_dot_4 = QS_T4(q8_0)};
QS_OPS(q8_1, "q8_1", QK, 36, QT_Q8_1, NULL);
const cke_qtype_ops QS_CAT(cke_qops_q4_0, QS_SFX) = {
    .name = "q4_0", .blck = QK, .type_size = 18, .vec_dot_type = QT_Q8_0,
    .quantize_row = cke_quantize_row_q4_0_ref, .dequantize_row = cke_dequantize_row_q4_0_ref,
    .vec_dot = QS_FN(cke_vec_dot_q4_0), .vec_dot_4 = QS_T4(q4_0)};
QS_OPS(q4_1, "q4_1", QK, 20, QT_Q8_1, QS_FN(cke_vec_dot_q4_1));
const cke_qtype_ops QS_CAT(cke_qops_q5_0, QS_SFX) = {
    .name = "q5_0", .blck = QK, .type_size = 22, .vec_dot_type = QT_Q8_0,
    .quantize_row = cke_quantize_row_q5_0_ref, .dequantize_row = cke_dequantize_row_q5_0_ref,
    .vec_dot = QS_FN(cke_vec_dot_q5_0), .vec_dot_4 = QS_T4(q5_0)};
QS_OPS(q5_1, "q5_1", QK, 24, QT_Q8_1, QS_FN(cke_vec_dot_q5_1));
QS_OPS(q8_K, "q8_K", QK_K, 292, QT_Q8_K, NULL);
QS_OPS(q4_K, "q4_K", QK_K, 144, QT_Q8_K, QS_FN(cke_vec_dot_q4_K));
QS_OPS(q5_K, "q5_K", QK_K, 176, QT_Q8_K, QS_FN(cke_vec_dot_q5_K));
QS_OPS(q6_K, "q6_K", QK_K, 210, QT_Q8_K, QS_FN(cke_vec_dot_q6_K));
