/* Repacked formats (ref/quant_r.c is the layout spec): dot_rows kernels for the decode GEMV and
 * the prefill tiles, included after quant_simd.h by avx2/quant.c and avx512/quant.c.
 * QS_VNNI = 1: 512-bit vectors, vpdpbusd / vpdpwssd (AVX-512 level); 0: 256-bit AVX2.
 *
 * Decode streams each weight row once from DRAM; at one thread these kernels must decode blocks
 * faster than the memory delivers them. Per 8 blocks of q4_0r (AVX-512): two 64-byte loads, 6
 * ops to split nibbles, 4 vpdpbusd accumulating into one vector (block b in lanes 2b, 2b + 1), one
 * conversion, one scale permute and one FMA; the scales of 16 blocks converted by one vcvtph2ps.
 * M >= 2 (prefill, decode_batch), AVX-512: register tiles of 2 weight rows x 4 activation rows
 * (gemm_tile), each decoded weight vector used by the 4 rows; the tile loops are fully unrolled so
 * that the accumulators stay in registers. AVX2 keeps dot_rows (1 x 4). Decode prefetches its
 * stream in software (QR_PF below); an earlier measurement on another machine (Zen 4) found the
 * hardware prefetcher enough there, so the AVX2 level, which that machine class also runs when
 * forced, is left without. */
#include <stddef.h>

#define QR_INLINE static inline __attribute__((always_inline))
/* Decode (one activation row) asks for the weight stream's lines QR_PF bytes ahead of its loads:
 * one stream's hardware prefetch does not keep enough lines in flight on every machine (measured
 * on this Xeon, 1 thread, 110M and 1.1B shapes: q4_0r 61% -> 85% of the read bandwidth, q8_0r
 * 84% -> 97%, q4_Kr/q6_Kr likewise; 4 KiB ahead beat 2 and 8). Tiles of several activation rows
 * (prefill) are compute bound and do not prefetch. */
#ifndef QR_PF
#define QR_PF 4096
#endif
QR_INLINE void qr_pf(const void *p, const int lines) {
    for (int t = 0; t < lines; t++) _mm_prefetch((const char *)p + QR_PF + 64 * t, _MM_HINT_T0);
}
/* the tile loops over rows fully unrolled: accumulators indexed by a loop variable stay in
 * registers only then (GCC keeps them on the stack otherwise, measured) */
#define QR_UNROLL _Pragma("GCC unroll 8")

/* q8_0s: Q8_0 (this table's quantizer, bit-identical to the _ref) split into codes, scales and
 * scaled sums */
static void QS_FN(qr_quantize_row_q8_0s)(void *vy, const float *x, int64_t k) {
    const int64_t nb = k / QK, n8 = nb / 8 * 8;
    int8_t *q = vy;
    float *d = (float *)(q + k), *sd = d + nb;
    for (int64_t i = 0; i < nb; i++) {
        blk_q8_0 b;
        QS_FN(qs_quantize_row_q8_0)(&b, x + i * QK, QK);
        if (i < n8) /* interleaved: element 8t + x of block b at 64t + 8b + x of its group */
            for (int t = 0; t < 4; t++) memcpy(q + (i / 8) * 256 + 64 * t + 8 * (i % 8), b.qs + 8 * t, 8);
        else
            memcpy(q + i * QK, b.qs, QK);
        /* sum of 32 int8: a u8 x s8 dot against ones */
        int32_t s = qs_hsum_i32(qs_dot_us8(_mm256_set1_epi8(1), _mm256_loadu_si256((const __m256i *)b.qs)));
        d[i] = qb_h2f(b.d);
        sd[i] = d[i] * (float)s;
    }
}

/* the (GGUF-form) tail block of q4_0r: 16 bytes, low nibbles elements 0..15 */
static inline int32_t qr_tail_q4(const uint8_t *qs16, const int8_t *a) {
    return qs_hsum_i32(qs_dot_us8(qs_nibbles32(qs16), _mm256_loadu_si256((const __m256i *)a)));
}

/* q4_1r / q5_0r / q5_1r tail block i (GGUF form: 16 bytes of nibbles, 4 bytes of fifth bits) dotted
 * with the activation's codes in element order: 32 codes (the fifth bit adds 16) in one u8 x s8 dot,
 * the exact integer sum of the scalar loop it replaced (a model whose rows end in tail blocks,
 * SmolLM2's 576 = 2 groups + 2 blocks, spent ~10x longer per element there) */
static inline int32_t qr_leg_tail(const uint8_t *qs16, const uint8_t *qh4, int has_high, const int8_t *a) {
    __m256i v = qs_nibbles32(qs16);
    if (has_high) v = _mm256_or_si256(v, _mm256_and_si256(qs_bits32(qh4), _mm256_set1_epi8(16)));
    return qs_hsum_i32(qs_dot_us8(v, _mm256_loadu_si256((const __m256i *)a)));
}

/* q4_Kr's 16 plain 6-bit fields (sc0..7, m0..7) as int16: each field's 2-byte window by a byte
 * shuffle, shifted into place by a multiply (2^(8 - bit offset)) and a shift right by 8. Reads 16
 * bytes at f: the 12 of the fields and 4 of the block's codes. */
static inline __m256i qr_k6_unpack(const uint8_t *f) {
    const __m256i x = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)f));
    const __m256i idx = _mm256_setr_epi8(0, 1, 0, 1, 1, 2, 2, 3, 3, 4, 3, 4, 4, 5, 5, 6,
                                         6, 7, 6, 7, 7, 8, 8, 9, 9, 10, 9, 10, 10, 11, 11, 12);
    const __m256i mul = _mm256_setr_epi16(256, 4, 16, 64, 256, 4, 16, 64, 256, 4, 16, 64, 256, 4, 16, 64);
    const __m256i v = _mm256_srli_epi16(_mm256_mullo_epi16(_mm256_shuffle_epi8(x, idx), mul), 8);
    return _mm256_and_si256(v, _mm256_set1_epi16(63));
}
/* the 8 mins as floats times dmin */
static inline __m256 qr_k6_mins(__m256i scm, float dmin) {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(scm, 1))), _mm256_set1_ps(dmin));
}

#if QS_VNNI
/* ---------------------------------------------------------------- AVX-512 */

static inline float qr_hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }
/* int32 lane l <- scale of block 8h + l/2 (the interleaved groups' lane order) */
static inline __m512i qr_ix8(int h) {
    return _mm512_add_epi32(_mm512_set1_epi32(8 * h), _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0));
}

/* The _0 formats (q4_0r, q8_0r) as register tiles: NW weight rows (w + j * rs) x NA activation
 * rows (a + r * as). Per group of 8 blocks each weight row's 4 code vectors are decoded once for
 * the NA rows; the 2 * NW * NA float accumulators stay in registers (the offset terms, one FMA
 * per 16 blocks, run in a pass of their own so that the tile fits 32 zmm). Every output element
 * gets exactly the float operations of a 1 x 1 tile, so vec_dot, gemv, dot_rows and the tiles
 * agree bit for bit (decode == decode_batch == prefill for a row). Q8: the code vectors are the
 * stored u8 codes (offset 128); else q4_0r's nibbles (offset 8). */
#ifndef QR_TNW /* the AVX-512 tile (-D to measure others: bench/quant/qgemm.c) */
#define QR_TNW 2 /* weight rows */
#define QR_TNA 8 /* activation rows (2 x 8: +8-30% over 2 x 4 once the scales became float multiplies, bench/quant/qgemm.c) */
#endif
#define QR_ANA (QR_TNA > 4 ? QR_TNA : 4) /* array bound: dot_rows takes up to 4 rows */
/* the formats of the tiles (compile-time F) */
#define QR_F_Q4_0R 0
#define QR_F_Q8_0R 1
#define QR_F_Q4_KR 2
#define QR_F_Q6_KR 3
#define QR_F_Q4_1R 4
#define QR_F_Q5_0R 5
#define QR_F_Q5_1R 6
#define QR_F_Q5_KR 7
/* chunk g's (up to 16) block scales d and the factors m of the offset term (the _1 formats' m,
 * else d) of a row of the _0/_1 formats (dm: d, or (d, m) pairs, per block) */
QR_INLINE __m512 qr_0r_scales(const uint16_t *dm, int64_t g, int n2, const int HAS_MIN, __m512 *mv) {
    if (HAS_MIN) { /* 16 (d, m) pairs -> d's and m's */
        const __m512 lo = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dm + 16 * g)));
        const __m512 hi = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(n2 == 2 ? (__mmask16)0xFFFF : 0, dm + 16 * g + 16));
        const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        *mv = _mm512_permutex2var_ps(lo, _mm512_add_epi32(ev, _mm512_set1_epi32(1)), hi);
        return _mm512_permutex2var_ps(lo, ev, hi);
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(n2 == 2 ? (__mmask16)0xFFFF : (__mmask16)0x00FF, dm + 8 * g));
    *mv = d;
    return d;
}
/* The _0/_1 formats (q4_0r, q8_0r, q4_1r, q5_0r, q5_1r, format F) as a tile of NW weight rows
 * (w + j * rs) x NA activation rows (a + r * as). Codes: q4_0r's nibbles, the fifth bits added as
 * 16 under 64-bit masks (5-bit formats), or q8_0r's stored u8 codes (offset 128). */
QR_INLINE void qr_0r_tile(float *y, int64_t ldy, const void *w, size_t rs, const void *a, size_t as, int64_t k,
                          const int NW, const int NA, const int F) {
    const int Q8 = F == QR_F_Q8_0R, HAS_MIN = F == QR_F_Q4_1R || F == QR_F_Q5_1R, HAS_HIGH = F == QR_F_Q5_0R || F == QR_F_Q5_1R;
    const int64_t nb = k / QK, ng = nb / 8, gs = Q8 ? 256 : HAS_HIGH ? 160 : 128, tbs = HAS_HIGH ? 20 : 16;
    const float off = Q8 ? 128.0f : HAS_HIGH ? 16.0f : 8.0f; /* the codes' offset (_0 formats) */
    const __m512i m4 = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(0x10);
    const uint16_t *dw[QR_TNW];
    const uint8_t *cs[QR_TNW];
    const int8_t *q[QR_ANA];
    const float *da[QR_ANA], *sd[QR_ANA];
    __m512 acc[QR_TNW][QR_ANA][2];
    QR_UNROLL for (int j = 0; j < NW; j++) {
        dw[j] = (const uint16_t *)((const char *)w + (size_t)j * rs);
        cs[j] = (const uint8_t *)(dw[j] + (HAS_MIN ? 2 : 1) * nb); /* groups of gs bytes, then tail blocks */
        QR_UNROLL for (int r = 0; r < NA; r++) acc[j][r][0] = acc[j][r][1] = _mm512_setzero_ps();
    }
    QR_UNROLL for (int r = 0; r < NA; r++) {
        q[r] = (const int8_t *)((const char *)a + (size_t)r * as);
        da[r] = (const float *)(q[r] + k);
        sd[r] = da[r] + nb;
    }
    for (int64_t g = 0; g < ng; g += 2) { /* chunks of up to 2 groups: 16 scales per vector */
        const int n2 = ng - g >= 2 ? 2 : 1;
        const __mmask16 mk = n2 == 2 ? (__mmask16)0xFFFF : (__mmask16)0x00FF;
        __m512 dwv[QR_TNW], dav[QR_ANA], unused;
        QR_UNROLL for (int j = 0; j < NW; j++) dwv[j] = qr_0r_scales(dw[j], g, n2, HAS_MIN, &unused);
        QR_UNROLL for (int r = 0; r < NA; r++) dav[r] = _mm512_maskz_loadu_ps(mk, da[r] + 8 * g);
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            if (h >= n2) break;
            /* block scale of lane l: block 8h + l/2; permuting the factors of S = dw * da
             * (once per row of the tile) gives S's permutation exactly */
            const __m512i ix = qr_ix8(h);
            __m512 dap[QR_ANA];
            QR_UNROLL for (int r = 0; r < NA; r++) dap[r] = _mm512_permutexvar_ps(ix, dav[r]);
            QR_UNROLL for (int j = 0; j < NW; j++) {
                const __m512 dwp = _mm512_permutexvar_ps(ix, dwv[j]);
                const uint8_t *p = cs[j] + (g + h) * gs;
                if (NA == 1) qr_pf(p, Q8 ? 4 : 2); /* decode: see QR_PF */
                __m512i V[4];
                if (Q8) {
                    QR_UNROLL for (int t = 0; t < 4; t++) V[t] = _mm512_loadu_si512(p + 64 * t);
                } else {
                    const __m512i v0 = _mm512_loadu_si512(p), v1 = _mm512_loadu_si512(p + 64);
                    V[0] = _mm512_and_si512(v0, m4);
                    V[1] = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4);
                    V[2] = _mm512_and_si512(v1, m4);
                    V[3] = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4);
                    if (HAS_HIGH)
                        QR_UNROLL for (int t = 0; t < 4; t++) {
                            uint64_t hb;
                            memcpy(&hb, p + 128 + 8 * t, 8);
                            V[t] = _mm512_mask_add_epi8(V[t], _cvtu64_mask64(hb), V[t], b16);
                        }
                }
                QR_UNROLL for (int r = 0; r < NA; r++) {
                    const int8_t *A = q[r] + (g + h) * 256;
                    __m512i pr = _mm512_dpbusd_epi32(_mm512_setzero_si512(), V[0], _mm512_loadu_si512(A));
                    pr = _mm512_dpbusd_epi32(pr, V[1], _mm512_loadu_si512(A + 64));
                    pr = _mm512_dpbusd_epi32(pr, V[2], _mm512_loadu_si512(A + 128));
                    pr = _mm512_dpbusd_epi32(pr, V[3], _mm512_loadu_si512(A + 192));
                    acc[j][r][h] = _mm512_fmadd_ps(_mm512_mul_ps(dwp, dap[r]), _mm512_cvtepi32_ps(pr), acc[j][r][h]);
                }
            }
        }
    }
    QR_UNROLL for (int j = 0; j < NW; j++) {
        __m512 accm[QR_ANA]; /* sum_b m_b * sd_b: the offset (_0) or min (_1) term, the row's m once for the NA rows */
        QR_UNROLL for (int r = 0; r < NA; r++) accm[r] = _mm512_setzero_ps();
        for (int64_t g = 0; g < ng; g += 2) {
            const int n2 = ng - g >= 2 ? 2 : 1;
            __m512 mv;
            (void)qr_0r_scales(dw[j], g, n2, HAS_MIN, &mv);
            QR_UNROLL for (int r = 0; r < NA; r++)
                accm[r] = _mm512_fmadd_ps(mv, _mm512_maskz_loadu_ps(n2 == 2 ? (__mmask16)0xFFFF : (__mmask16)0x00FF, sd[r] + 8 * g), accm[r]);
        }
        QR_UNROLL for (int r = 0; r < NA; r++) {
            float t = 0.0f, tm = 0.0f;
            for (int64_t i = 8 * ng; i < nb; i++) { /* tail blocks, GGUF's order, activations in order */
                const uint8_t *tb = cs[j] + ng * gs + (i - 8 * ng) * (Q8 ? 32 : tbs);
                const float d = qb_h2f(dw[j][HAS_MIN ? 2 * i : i]);
                const int32_t s = Q8 ? qs_hsum_i32(qs_dot_us8(_mm256_loadu_si256((const __m256i *)tb),
                                                              _mm256_loadu_si256((const __m256i *)(q[r] + i * QK))))
                                  : F == QR_F_Q4_0R ? qr_tail_q4(tb, q[r] + i * QK)
                                                    : qr_leg_tail(tb, tb + 16, HAS_HIGH, q[r] + i * QK);
                t += d * (da[r][i] * (float)s);
                tm += (HAS_MIN ? qb_h2f(dw[j][2 * i + 1]) : d) * sd[r][i];
            }
            /* one horizontal sum per output (the fixed cost matters for short rows) */
            const __m512 s2 = _mm512_add_ps(acc[j][r][0], acc[j][r][1]);
            y[(int64_t)r * ldy + j] = HAS_MIN ? qr_hsum512(_mm512_add_ps(s2, accm[r])) + (t + tm)
                                              : qr_hsum512(_mm512_fnmadd_ps(_mm512_set1_ps(off), accm[r], s2)) + (t - off * tm);
        }
    }
}
QR_INLINE void qr_q4_0r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    qr_0r_tile(y, ldy, w, 0, a, as, k, 1, NR, QR_F_Q4_0R);
}
QR_INLINE void qr_q8_0r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    qr_0r_tile(y, ldy, w, 0, a, as, k, 1, NR, QR_F_Q8_0R);
}
/* Q8_K's quantization of one super-block with 512-bit vectors, bit-identical to the _ref: the
 * first element of largest magnitude gives the scale, q = nearest_int(iscale * x) (vcvtps2dq
 * rounds half to even, as nearest_int does); codes in element order, sums per 16. Returns d
 * (0 for an all-zero block: zero codes and sums, as the _ref). */
static inline float qr_q8K_block(const float *xb, int8_t nat[QK_K], int32_t sum16[16]) {
    const __m512 absm = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    __m512 am = _mm512_setzero_ps();
    for (int c = 0; c < 16; c++) am = _mm512_max_ps(am, _mm512_and_ps(_mm512_loadu_ps(xb + 16 * c), absm));
    const float amax = _mm512_reduce_max_ps(am);
    if (!(amax > 0.0f)) {
        memset(nat, 0, QK_K);
        memset(sum16, 0, 16 * sizeof(int32_t));
        return 0.0f;
    }
    int first = 0;
    for (int c = 0; c < 16; c++) {
        const __mmask16 m = _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_loadu_ps(xb + 16 * c), absm), _mm512_set1_ps(amax), _CMP_EQ_OQ);
        if (m) { first = 16 * c + __builtin_ctz(m); break; }
    }
    const float iscale = -127.f / xb[first];
    for (int c = 0; c < 16; c++) {
        __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * c), _mm512_set1_ps(iscale)));
        qi = _mm512_min_epi32(qi, _mm512_set1_epi32(127));
        _mm_storeu_si128((__m128i *)(nat + 16 * c), _mm512_cvtsepi32_epi8(qi));
        sum16[c] = _mm512_reduce_add_epi32(qi);
    }
    return 1 / iscale;
}
static void QS_FN(qr_quantize_row_q8_Ki)(void *vy, const float *x, int64_t k) {
    const int64_t nsb = k / QK_K;
    int8_t *q = vy;
    float *d = (float *)(q + k), *sa = d + nsb;
    for (int64_t i = 0; i < nsb; i++) {
        int8_t nat[QK_K];
        int32_t s16[16];
        d[i] = qr_q8K_block(x + i * QK_K, nat, s16);
        for (int j = 0; j < 8; j++) {
            sa[8 * i + j] = d[i] * (float)(s16[2 * j] + s16[2 * j + 1]);
            for (int t = 0; t < 4; t++) memcpy(q + i * QK_K + 64 * t + 8 * j, nat + 32 * j + 8 * t, 8);
        }
    }
}
static void QS_FN(qr_quantize_row_q8_K16)(void *vy, const float *x, int64_t k) {
    const int64_t nsb = k / QK_K;
    int8_t *q = vy;
    float *d = (float *)(q + k);
    int32_t *bs = (int32_t *)(d + nsb);
    for (int64_t i = 0; i < nsb; i++) {
        int8_t nat[QK_K];
        d[i] = qr_q8K_block(x + i * QK_K, nat, bs + 16 * i);
        for (int b = 0; b < 16; b++) /* element 16b + 4t + x at 64t + 4b + x */
            for (int t = 0; t < 4; t++) memcpy(q + i * QK_K + 64 * t + 4 * b, nat + 16 * b + 4 * t, 4);
    }
}
#define QR_Q8KI_QUANTIZE QS_FN(qr_quantize_row_q8_Ki)
#define QR_Q8K16_QUANTIZE QS_FN(qr_quantize_row_q8_K16)

/* q4_Kr, two super-blocks per step: their scale fields unpacked together in one 512-bit vector,
 * each one's codes decoded like a q4_0r group (2 loads, 6 ops), 4 vpdpbusd leave sub-block j's
 * sum in lanes 2j, 2j + 1, one multiply (d * sc per lane, made once per weight row, times the
 * activation's d) and one FMA apply all the scales, and one 16-lane FMA takes off both
 * super-blocks' mins against the activation's sa (into the same accumulator) */
QR_INLINE __m512i qr_k4_codes(const uint8_t *qs, __m512i V[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i v0 = _mm512_loadu_si512(qs), v1 = _mm512_loadu_si512(qs + 64);
    V[0] = _mm512_and_si512(v0, m4);
    V[1] = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4);
    V[2] = _mm512_and_si512(v1, m4);
    V[3] = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4);
    return v0;
}
QR_INLINE __m512i qr_k4_dot(const __m512i V[4], const int8_t *a) {
    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), V[0], _mm512_loadu_si512(a));
    p = _mm512_dpbusd_epi32(p, V[1], _mm512_loadu_si512(a + 64));
    p = _mm512_dpbusd_epi32(p, V[2], _mm512_loadu_si512(a + 128));
    return _mm512_dpbusd_epi32(p, V[3], _mm512_loadu_si512(a + 192));
}
/* as a tile of NW weight rows (vw + j * rs) x NA activation rows: each row's scales and codes
 * unpacked once for the NA rows, every element dot_rows' operations */
QR_INLINE void qr_q4_Kr_tile(float *y, int64_t ldy, const void *vw, size_t rs, const void *va, size_t as, int64_t k,
                             const int NW, const int NA) {
    const int64_t nsb = k / QK_K;
    const uint8_t *ddp[QR_TNW], *scp[QR_TNW], *qsp[QR_TNW];
    const int8_t *q[QR_ANA];
    const float *da[QR_ANA], *sa[QR_ANA];
    __m512 acc[QR_TNW][QR_ANA];
    QR_UNROLL for (int j = 0; j < NW; j++) {
        ddp[j] = (const uint8_t *)vw + (size_t)j * rs;
        scp[j] = ddp[j] + 4 * nsb;
        qsp[j] = ddp[j] + 16 * nsb;
        QR_UNROLL for (int r = 0; r < NA; r++) acc[j][r] = _mm512_setzero_ps();
    }
    QR_UNROLL for (int r = 0; r < NA; r++) {
        q[r] = (const int8_t *)((const char *)va + (size_t)r * as);
        da[r] = (const float *)(q[r] + k);
        sa[r] = da[r] + nsb;
    }
    /* 32 words [sc0..7 m0..7 | sc'0..7 m'0..7] -> [sc0 sc0 .. sc7 sc7 | sc'0 sc'0 ..] and [m0..7 m'0..7] */
    const __m512i dup2 = _mm512_set_epi16(23, 23, 22, 22, 21, 21, 20, 20, 19, 19, 18, 18, 17, 17, 16, 16,
                                          7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i mix = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         31, 30, 29, 28, 27, 26, 25, 24, 15, 14, 13, 12, 11, 10, 9, 8);
    const __m512i idx6 = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 0, 1, 1, 2, 2, 3, 3, 4, 3, 4, 4, 5, 5, 6));
    const __m512i idx6h = _mm512_broadcast_i32x4(_mm_setr_epi8(6, 7, 6, 7, 7, 8, 8, 9, 9, 10, 9, 10, 10, 11, 11, 12));
    const __m512i idx = _mm512_mask_blend_epi64(0xCC, idx6, idx6h); /* 128-bit lanes: lo, hi, lo, hi */
    const __m512i mul = _mm512_set1_epi64(0x0040001000040100ll);
    const __m512i dmi = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    int64_t i = 0;
    for (; i + 2 <= nsb; i += 2) {
        QR_UNROLL for (int j = 0; j < NW; j++) {
            /* lanes: [fields of i | fields of i | fields of i+1 | fields of i+1] (16-byte windows) */
            const __m256i x0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(scp[j] + 12 * i)));
            const __m256i x1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(scp[j] + 12 * i + 12)));
            __m512i f = _mm512_inserti64x4(_mm512_castsi256_si512(x0), x1, 1);
            f = _mm512_and_si512(_mm512_srli_epi16(_mm512_mullo_epi16(_mm512_shuffle_epi8(f, idx), mul), 8), _mm512_set1_epi16(63));
            const __m512i t = _mm512_permutexvar_epi16(dup2, f);
            const __m128 dd = _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(ddp[j] + 4 * i))); /* d, dmin, d', dmin' */
            /* d * sc per lane, exact (11 x 6 significant bits): one multiply per row of the tile
             * (by the activation's scale) stands for the integer scale multiply and d * da */
            const __m512 sd0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(t))),
                                             _mm512_broadcastss_ps(dd));
            const __m512 sd1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(t, 1))),
                                             _mm512_broadcastss_ps(_mm_movehl_ps(dd, dd)));
            const __m512 mw = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(_mm512_permutexvar_epi16(mix, f)))),
                                            _mm512_permutexvar_ps(dmi, _mm512_castps128_ps512(dd)));
            __m512i V[4];
            if (NA == 1) qr_pf(qsp[j] + 128 * i, 4);
            /* one super-block's codes live at a time: 16 accumulators + 4 code vectors fit the
             * 32 registers of a 2 x 8 tile (both super-blocks' 8 vectors spilled them) */
            qr_k4_codes(qsp[j] + 128 * i, V);
            QR_UNROLL for (int r = 0; r < NA; r++)
                acc[j][r] = _mm512_fmadd_ps(_mm512_mul_ps(sd0, _mm512_set1_ps(da[r][i])), _mm512_cvtepi32_ps(qr_k4_dot(V, q[r] + 256 * i)), acc[j][r]);
            qr_k4_codes(qsp[j] + 128 * i + 128, V);
            QR_UNROLL for (int r = 0; r < NA; r++) {
                acc[j][r] = _mm512_fmadd_ps(_mm512_mul_ps(sd1, _mm512_set1_ps(da[r][i + 1])), _mm512_cvtepi32_ps(qr_k4_dot(V, q[r] + 256 * i + 256)), acc[j][r]);
                acc[j][r] = _mm512_fnmadd_ps(mw, _mm512_loadu_ps(sa[r] + 8 * i), acc[j][r]);
            }
        }
    }
    for (; i < nsb; i++) /* an odd last super-block */
        QR_UNROLL for (int j = 0; j < NW; j++) {
            const __m256i scm = qr_k6_unpack(scp[j] + 12 * i);
            const __m512i scv = _mm512_cvtepu16_epi32(_mm256_permutexvar_epi16(_mm512_castsi512_si256(dup2), scm));
            uint16_t dh, mh;
            memcpy(&dh, ddp[j] + 4 * i, 2);
            memcpy(&mh, ddp[j] + 4 * i + 2, 2);
            const __m256 mw = qr_k6_mins(scm, qb_h2f(mh));
            const __m512 sd = _mm512_mul_ps(_mm512_cvtepi32_ps(scv), _mm512_set1_ps(qb_h2f(dh)));
            __m512i V[4];
            qr_k4_codes(qsp[j] + 128 * i, V);
            QR_UNROLL for (int r = 0; r < NA; r++) {
                const __m512i p = qr_k4_dot(V, q[r] + 256 * i);
                acc[j][r] = _mm512_fmadd_ps(_mm512_mul_ps(sd, _mm512_set1_ps(da[r][i])), _mm512_cvtepi32_ps(p), acc[j][r]);
                acc[j][r] = _mm512_sub_ps(acc[j][r], _mm512_zextps256_ps512(_mm256_mul_ps(mw, _mm256_loadu_ps(sa[r] + 8 * i))));
            }
        }
    QR_UNROLL for (int j = 0; j < NW; j++)
        QR_UNROLL for (int r = 0; r < NA; r++) y[(int64_t)r * ldy + j] = qr_hsum512(acc[j][r]);
}
QR_INLINE void qr_q4_Kr(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int64_t k, const int NR) {
    qr_q4_Kr_tile(y, ldy, vw, 0, va, as, k, 1, NR);
}

/* q6_Kr: per super-block 3 loads (low nibbles x2, high bits), 11 ops rebuild the four 64-byte
 * code vectors, 4 vpdpbusd leave sub-block b's sum in lane b, the -32 offset through the
 * activation's sums, one multiply (d * sc per lane, made once per weight row, times the
 * activation's d) and one FMA all the scales; as a tile of NW weight rows x NA activation rows
 * like q4_Kr's */
QR_INLINE void qr_q6_Kr_tile(float *y, int64_t ldy, const void *vw, size_t rs, const void *va, size_t as, int64_t k,
                             const int NW, const int NA) {
    const int64_t nsb = k / QK_K;
    const int8_t *q[QR_ANA];
    const float *da[QR_ANA];
    const int32_t *bs[QR_ANA];
    __m512 acc[QR_TNW][QR_ANA];
    QR_UNROLL for (int r = 0; r < NA; r++) {
        q[r] = (const int8_t *)((const char *)va + (size_t)r * as);
        da[r] = (const float *)(q[r] + k);
        bs[r] = (const int32_t *)(da[r] + nsb);
        QR_UNROLL for (int j = 0; j < NW; j++) acc[j][r] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), m03 = _mm512_set1_epi8(0x03), m0c = _mm512_set1_epi8(0x0C);
    const __m512i m30 = _mm512_set1_epi8(0x30), mc0 = _mm512_set1_epi8((char)0xC0);
    for (int64_t i = 0; i < nsb; i++)
        QR_UNROLL for (int j = 0; j < NW; j++) {
            const uint8_t *ql = (const uint8_t *)vw + (size_t)j * rs + 210 * i;
            if (NA == 1) qr_pf(ql, 4);
            uint16_t dh;
            memcpy(&dh, ql + 208, 2);
            /* d * sc per lane, exact (11 x 8 significant bits) */
            const __m512 sd = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(ql + 192)))),
                                            _mm512_set1_ps(qb_h2f(dh)));
            const __m512i l0 = _mm512_loadu_si512(ql), l1 = _mm512_loadu_si512(ql + 64);
            const __m512i h = _mm512_loadu_si512(ql + 128);
            const __m512i V0 = _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_slli_epi16(_mm512_and_si512(h, m03), 4));
            const __m512i V1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), _mm512_slli_epi16(_mm512_and_si512(h, m0c), 2));
            const __m512i V2 = _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_and_si512(h, m30));
            const __m512i V3 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4), _mm512_srli_epi16(_mm512_and_si512(h, mc0), 2));
            QR_UNROLL for (int r = 0; r < NA; r++) {
                const int8_t *A = q[r] + 256 * i;
                __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), V0, _mm512_loadu_si512(A));
                p = _mm512_dpbusd_epi32(p, V1, _mm512_loadu_si512(A + 64));
                p = _mm512_dpbusd_epi32(p, V2, _mm512_loadu_si512(A + 128));
                p = _mm512_dpbusd_epi32(p, V3, _mm512_loadu_si512(A + 192));
                p = _mm512_sub_epi32(p, _mm512_slli_epi32(_mm512_loadu_si512(bs[r] + 16 * i), 5));
                acc[j][r] = _mm512_fmadd_ps(_mm512_mul_ps(sd, _mm512_set1_ps(da[r][i])), _mm512_cvtepi32_ps(p), acc[j][r]);
            }
        }
    QR_UNROLL for (int j = 0; j < NW; j++)
        QR_UNROLL for (int r = 0; r < NA; r++) y[(int64_t)r * ldy + j] = qr_hsum512(acc[j][r]);
}
QR_INLINE void qr_q6_Kr(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int64_t k, const int NR) {
    qr_q6_Kr_tile(y, ldy, vw, 0, va, as, k, 1, NR);
}


/* q5_Kr: q4_Kr's code vectors with the fifth bits or'ed in under 64-bit masks (kmovq), per
 * 176-byte super-block */
QR_INLINE void qr_q5_Kr_tile(float *y, int64_t ldy, const void *vw, size_t rs, const void *va, size_t as, int64_t k,
                             const int NW, const int NA) {
    const int64_t nsb = k / QK_K;
    const int8_t *q[QR_ANA];
    const float *da[QR_ANA], *sa[QR_ANA];
    __m512 acc[QR_TNW][QR_ANA];
    __m256 accm[QR_TNW][QR_ANA];
    QR_UNROLL for (int r = 0; r < NA; r++) {
        q[r] = (const int8_t *)((const char *)va + (size_t)r * as);
        da[r] = (const float *)(q[r] + k);
        sa[r] = da[r] + nsb;
        QR_UNROLL for (int j = 0; j < NW; j++) {
            acc[j][r] = _mm512_setzero_ps();
            accm[j][r] = _mm256_setzero_ps();
        }
    }
    const __m256i dupw = _mm256_setr_epi16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i b16 = _mm512_set1_epi8(0x10);
    for (int64_t i = 0; i < nsb; i++)
        QR_UNROLL for (int j = 0; j < NW; j++) {
            const uint8_t *sb = (const uint8_t *)vw + (size_t)j * rs + 176 * i;
            if (NA == 1) qr_pf(sb, 3);
            const __m256i scm = qr_k6_unpack(sb + 160); /* reads the 4 bytes of d, dmin after the fields */
            const __m512i scv = _mm512_cvtepu16_epi32(_mm256_permutexvar_epi16(dupw, scm));
            uint16_t dh, mh;
            memcpy(&dh, sb + 172, 2);
            memcpy(&mh, sb + 174, 2);
            const __m512 sd = _mm512_mul_ps(_mm512_cvtepi32_ps(scv), _mm512_set1_ps(qb_h2f(dh))); /* exact: see q4_Kr */
            const __m256 mw = qr_k6_mins(scm, qb_h2f(mh));
            __m512i V[4];
            qr_k4_codes(sb, V);
            QR_UNROLL for (int t = 0; t < 4; t++) {
                uint64_t hb;
                memcpy(&hb, sb + 128 + 8 * t, 8);
                V[t] = _mm512_mask_or_epi32(V[t], 0xFFFF, V[t], _mm512_maskz_mov_epi8(_cvtu64_mask64(hb), b16));
            }
            QR_UNROLL for (int r = 0; r < NA; r++) {
                const __m512i p = qr_k4_dot(V, q[r] + 256 * i);
                acc[j][r] = _mm512_fmadd_ps(_mm512_mul_ps(sd, _mm512_set1_ps(da[r][i])), _mm512_cvtepi32_ps(p), acc[j][r]);
                accm[j][r] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(sa[r] + 8 * i), accm[j][r]);
            }
        }
    QR_UNROLL for (int j = 0; j < NW; j++)
        QR_UNROLL for (int r = 0; r < NA; r++) acc[j][r] = _mm512_sub_ps(acc[j][r], _mm512_zextps256_ps512(accm[j][r]));
    QR_UNROLL for (int j = 0; j < NW; j++)
        QR_UNROLL for (int r = 0; r < NA; r++) y[(int64_t)r * ldy + j] = qr_hsum512(acc[j][r]);
}
QR_INLINE void qr_q5_Kr(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int64_t k, const int NR) {
    qr_q5_Kr_tile(y, ldy, vw, 0, va, as, k, 1, NR);
}

/* tiles of up to QR_TNW x QR_TNA, each shape a compile-time instance */
QR_INLINE void qr_tile_of(float *y, int64_t ldy, const void *w, size_t rs, const void *a, size_t as, int64_t k,
                          const int NW, const int NA, const int F) {
    if (F == QR_F_Q4_KR) qr_q4_Kr_tile(y, ldy, w, rs, a, as, k, NW, NA);
    else if (F == QR_F_Q6_KR) qr_q6_Kr_tile(y, ldy, w, rs, a, as, k, NW, NA);
    else if (F == QR_F_Q5_KR) qr_q5_Kr_tile(y, ldy, w, rs, a, as, k, NW, NA);
    else qr_0r_tile(y, ldy, w, rs, a, as, k, NW, NA, F);
}
QR_INLINE void qr_tiles(float *y, int64_t ldy, const void *w, size_t rs, int nw, const void *a, size_t as, int na, int64_t k, const int F) {
#define QR_T(NW, NA) if (nw == NW && na == NA) { qr_tile_of(y, ldy, w, rs, a, as, k, NW, NA, F); return; }
    QR_T(1, 1) QR_T(1, 2) QR_T(1, 3) QR_T(1, 4)
#if QR_TNA >= 5
    QR_T(1, 5)
#endif
#if QR_TNA >= 6
    QR_T(1, 6)
#endif
#if QR_TNA >= 7
    QR_T(1, 7)
#endif
#if QR_TNA >= 8
    QR_T(1, 8)
#endif
#if QR_TNW >= 2
    QR_T(2, 1) QR_T(2, 2) QR_T(2, 3) QR_T(2, 4)
#endif
#if QR_TNW >= 2 && QR_TNA >= 5
    QR_T(2, 5)
#endif
#if QR_TNW >= 2 && QR_TNA >= 6
    QR_T(2, 6)
#endif
#if QR_TNW >= 2 && QR_TNA >= 7
    QR_T(2, 7)
#endif
#if QR_TNW >= 2 && QR_TNA >= 8
    QR_T(2, 8)
#endif
#if QR_TNW >= 3
    QR_T(3, 1) QR_T(3, 2) QR_T(3, 3) QR_T(3, 4)
#endif
#if QR_TNW >= 3 && QR_TNA >= 5
    QR_T(3, 5)
#endif
#if QR_TNW >= 3 && QR_TNA >= 6
    QR_T(3, 6)
#endif
#if QR_TNW >= 3 && QR_TNA >= 7
    QR_T(3, 7)
#endif
#if QR_TNW >= 3 && QR_TNA >= 8
    QR_T(3, 8)
#endif
#if QR_TNW >= 4
    QR_T(4, 1) QR_T(4, 2) QR_T(4, 3) QR_T(4, 4)
#endif
#if QR_TNW >= 4 && QR_TNA >= 5
    QR_T(4, 5)
#endif
#if QR_TNW >= 4 && QR_TNA >= 6
    QR_T(4, 6)
#endif
#if QR_TNW >= 4 && QR_TNA >= 7
    QR_T(4, 7)
#endif
#if QR_TNW >= 4 && QR_TNA >= 8
    QR_T(4, 8)
#endif
#undef QR_T
}
#define QR_TILE_FN(t, F)                                                                           \
    static void QS_FN(qr_tile_##t)(float *y, int64_t ldy, const void *w, size_t rs, int nw, const void *a, size_t as, int na, int64_t k) { \
        qr_tiles(y, ldy, w, rs, nw, a, as, na, k, F);                                              \
    }
QR_TILE_FN(q4_0r, QR_F_Q4_0R)
QR_TILE_FN(q8_0r, QR_F_Q8_0R)
QR_TILE_FN(q4_Kr, QR_F_Q4_KR)
QR_TILE_FN(q6_Kr, QR_F_Q6_KR)
QR_TILE_FN(q4_1r, QR_F_Q4_1R)
QR_TILE_FN(q5_0r, QR_F_Q5_0R)
QR_TILE_FN(q5_1r, QR_F_Q5_1R)
QR_TILE_FN(q5_Kr, QR_F_Q5_KR)

/* q4_1r, q5_0r, q5_1r: the _0 tiles' code (qr_0r_tile) */
QR_INLINE void qr_leg(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR,
                      const int HAS_MIN, const int HAS_HIGH) {
    qr_0r_tile(y, ldy, w, 0, a, as, k, 1, NR, HAS_MIN ? (HAS_HIGH ? QR_F_Q5_1R : QR_F_Q4_1R) : QR_F_Q5_0R);
}


/* ---- column panels: prefill of q4_Kr, q6_Kr, q4_0r, q8_0r (M >= CKE_QPANEL_MIN_M rows) ----
 * The row tiles above give each output one 16-lane accumulator and a horizontal sum, and pay per
 * row of the tile for the weight row's scales: at K 768 they reach 37% of the vpdpbusd peak.
 * Here 32 weight rows are first rearranged (panel_pack, once per call, into the thread's
 * workspace) so that a 64-byte vector holds 4 consecutive codes of 16 weight rows: vpdpbusd
 * against one activation dword broadcast then leaves one output column per int32 lane, and the
 * sub-block scales of 16 columns are one vector. A tile of up to 4 activation rows x 32 columns
 * keeps 8 integer sums, 8 super-block and 8 output accumulators in registers; no horizontal sums.
 * Panel of super-block i at P + i * CKE_QPANEL_SB_BYTES, per sub-block:
 *   q4_Kr: 8 sub-blocks of 32 x 1280 bytes: codes [8 dword groups][32 columns][4] (group 2t + h
 *          holds stream bytes 64t + 8b + 4h.. of sub-block b, the activation's q8_Ki order),
 *          d * sc [32] f32, dmin * m [32] f32
 *   q6_Kr: 16 sub-blocks of 16 x 640 bytes: codes [4 groups t][32][4] (stream bytes 64t + 4b..),
 *          d * sc [32] f32; the -32 offset through the activation's sub-block sums
 *   q4_0r, q8_0r (K a multiple of 256): a group of 8 blocks as q4_Kr's super-block, d and
 *          off * d (off 8 or 128) as d * sc and dmin * m; the activation's scale per block
 * Columns past nw are packed as zeros. Per output: for each super-block, acc2 = sum over its
 * sub-blocks of int_dot * (d * sc) (in order), acc += acc2 * da, the q4_K mins subtracted as
 * dmin * m * sa per sub-block: a fixed order for every M, thread and K chunk (the accumulators
 * pass through y between chunks, exactly), but not dot_rows' order: prefill's rows differ from
 * decode's in the last bits (the tests bound the difference). */
#define QP4_SUB 1280
#define QP6_SUB 640
/* a 12-byte field array of q4_Kr: value t (sc 0..7, m 8..15) */
static inline int qp_k6(const uint8_t *f, int t) {
    const int bit = 6 * t;
    const unsigned w = (unsigned)f[bit / 8] | (bit / 8 + 1 < 12 ? (unsigned)f[bit / 8 + 1] << 8 : 0u);
    return (int)((w >> (bit % 8)) & 63);
}
/* the scatter indices of q4_Kr's code layout: dword lane L = 2b + h of code vector t -> sub-block
 * b, group 2t + h (dword units within a super-block's panel, column 0) */
static inline void qp_k4_index(__m512i ix[4]) {
    for (int t = 0; t < 4; t++) {
        int32_t v[16];
        for (int L = 0; L < 16; L++) v[L] = (L / 2) * (QP4_SUB / 4) + (2 * t + L % 2) * 32;
        ix[t] = _mm512_loadu_si512(v);
    }
}
/* q4_Kr, q4_0r, q8_0r (F 0, 1, 2; the _0 formats with K a multiple of 256) share one panel
 * layout: a q4_Kr super-block, or a group of 8 blocks with block b as sub-block b, d in place of
 * d * sc and off * d (off 8 or 128: the codes' offset) in place of dmin * m */
QR_INLINE void qp_pack_k4(void *vp, const void *w, size_t rs, int nw, int64_t k, const int F) {
    const int64_t nsb = k / QK_K, nb = k / QK;
    uint8_t *P = vp;
    __m512i ix[4];
    qp_k4_index(ix);
    for (int64_t i = 0; i < nsb; i++) {
        uint8_t *ps = P + i * CKE_QPANEL_SB_BYTES;
        for (int c = 0; c < 32; c++) {
            float *sd = (float *)(ps + 1024) + c, *mn = sd + 32;
            float sdv[8] = {0}, mnv[8] = {0};
            __m512i V[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
            const uint8_t *row = (const uint8_t *)w + (size_t)c * rs;
            if (c < nw && F == 0) {
                const uint8_t *f = row + 4 * nsb + 12 * i;
                uint16_t dh, mh;
                memcpy(&dh, row + 4 * i, 2);
                memcpy(&mh, row + 4 * i + 2, 2);
                qr_k4_codes(row + 16 * nsb + 128 * i, V);
                for (int j = 0; j < 8; j++) {
                    sdv[j] = qb_h2f(dh) * (float)qp_k6(f, j); /* exact, as the tiles' */
                    mnv[j] = qb_h2f(mh) * (float)qp_k6(f, 8 + j);
                }
            } else if (c < nw) {
                const uint16_t *dw = (const uint16_t *)row;
                const uint8_t *cs = (const uint8_t *)(dw + nb) + i * (F == 2 ? 256 : 128);
                if (F == 2)
                    for (int t = 0; t < 4; t++) V[t] = _mm512_loadu_si512(cs + 64 * t);
                else
                    qr_k4_codes(cs, V);
                for (int j = 0; j < 8; j++) {
                    sdv[j] = qb_h2f(dw[8 * i + j]);
                    mnv[j] = (F == 2 ? 128.0f : 8.0f) * sdv[j]; /* exact: a power of two times d */
                }
            }
            for (int t = 0; t < 4; t++) _mm512_i32scatter_epi32(ps + 4 * c, ix[t], V[t], 4);
            for (int j = 0; j < 8; j++) {
                sd[j * QP4_SUB / 4] = sdv[j];
                mn[j * QP4_SUB / 4] = mnv[j];
            }
        }
    }
}
static void QS_FN(qp_pack_q4_Kr)(void *vp, const void *w, size_t rs, int nw, int64_t k) { qp_pack_k4(vp, w, rs, nw, k, 0); }
static void QS_FN(qp_pack_q4_0r)(void *vp, const void *w, size_t rs, int nw, int64_t k) { qp_pack_k4(vp, w, rs, nw, k, 1); }
static void QS_FN(qp_pack_q8_0r)(void *vp, const void *w, size_t rs, int nw, int64_t k) { qp_pack_k4(vp, w, rs, nw, k, 2); }
static void QS_FN(qp_pack_q6_Kr)(void *vp, const void *w, size_t rs, int nw, int64_t k) {
    const int64_t nsb = k / QK_K;
    uint8_t *P = vp;
    const __m512i ix = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(QP6_SUB / 4));
    const __m512i m4 = _mm512_set1_epi8(0x0F), m03 = _mm512_set1_epi8(0x03), m0c = _mm512_set1_epi8(0x0C);
    const __m512i m30 = _mm512_set1_epi8(0x30), mc0 = _mm512_set1_epi8((char)0xC0);
    for (int64_t i = 0; i < nsb; i++) {
        uint8_t *ps = P + i * CKE_QPANEL_SB_BYTES;
        for (int c = 0; c < 32; c++) {
            float *sd = (float *)(ps + 512) + c;
            __m512i V[4];
            if (c >= nw) {
                V[0] = V[1] = V[2] = V[3] = _mm512_setzero_si512();
                for (int b = 0; b < 16; b++) sd[b * QP6_SUB / 4] = 0.0f;
            } else {
                const uint8_t *ql = (const uint8_t *)w + (size_t)c * rs + 210 * i;
                uint16_t dh;
                memcpy(&dh, ql + 208, 2);
                const float d = qb_h2f(dh);
                for (int b = 0; b < 16; b++) sd[b * QP6_SUB / 4] = d * (float)(int8_t)ql[192 + b];
                const __m512i l0 = _mm512_loadu_si512(ql), l1 = _mm512_loadu_si512(ql + 64), h = _mm512_loadu_si512(ql + 128);
                V[0] = _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_slli_epi16(_mm512_and_si512(h, m03), 4));
                V[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), _mm512_slli_epi16(_mm512_and_si512(h, m0c), 2));
                V[2] = _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_and_si512(h, m30));
                V[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4), _mm512_srli_epi16(_mm512_and_si512(h, mc0), 2));
            }
            for (int t = 0; t < 4; t++) _mm512_i32scatter_epi32(ps + 128 * t + 4 * c, ix, V[t], 4);
        }
    }
}
/* one broadcast activation dword */
QR_INLINE __m512i qp_bcast(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
/* NR (1..4) activation rows x the panel's 32 columns (nw valid), super-blocks [i0, i1) */
QR_INLINE void qp_gemm(float *y, int64_t ldy, int nw, const uint8_t *P, const void *va, size_t as, int64_t k,
                       int64_t i0, int64_t i1, const int NR, const int F) {
    /* F: 0 q4_Kr, 1 q6_Kr, 2 the _0 formats (activations q8_0s: a scale and a scaled sum per
     * block of 32, so each block's sum goes to acc directly: acc += p * (d * da) - off d * sd) */
    const int Q6 = F == 1, Q0 = F == 2;
    const int64_t nsb = k / QK_K;
    const __mmask16 mk[2] = {(__mmask16)(nw >= 16 ? 0xFFFF : (1u << nw) - 1),
                             (__mmask16)(nw >= 32 ? 0xFFFF : nw > 16 ? (1u << (nw - 16)) - 1 : 0)};
    const int8_t *q[4];
    const float *da[4], *sa[4];
    const int32_t *bs[4];
    __m512 acc[4][2];
    QR_UNROLL for (int r = 0; r < NR; r++) {
        q[r] = (const int8_t *)((const char *)va + (size_t)r * as);
        da[r] = (const float *)(q[r] + k);
        sa[r] = da[r] + (Q0 ? k / QK : nsb);
        bs[r] = (const int32_t *)(da[r] + nsb);
        QR_UNROLL for (int c = 0; c < 2; c++)
            acc[r][c] = i0 ? _mm512_maskz_loadu_ps(mk[c], y + r * ldy + 16 * c) : _mm512_setzero_ps();
    }
    const int NS = Q6 ? 16 : 8, NG = Q6 ? 4 : 8, SUB = Q6 ? QP6_SUB : QP4_SUB;
    for (int64_t i = i0; i < i1; i++) {
        const uint8_t *ps = P + i * CKE_QPANEL_SB_BYTES;
        __m512 acc2[4][2];
        for (int b = 0; b < NS; b++) {
            const uint8_t *pb = ps + b * SUB;
            __m512i p[4][2];
            QR_UNROLL for (int r = 0; r < NR; r++) {
                /* q6_K: the sums start at -32 * the sub-block's activation sum (the code offset) */
                const __m512i z = Q6 ? _mm512_set1_epi32(-32 * bs[r][16 * i + b]) : _mm512_setzero_si512();
                p[r][0] = p[r][1] = z;
            }
            QR_UNROLL for (int g = 0; g < NG; g++) {
                const __m512i W0 = _mm512_loadu_si512(pb + 128 * g), W1 = _mm512_loadu_si512(pb + 128 * g + 64);
                const int off = Q6 ? 64 * g + 4 * b : 64 * (g / 2) + 8 * b + 4 * (g % 2);
                QR_UNROLL for (int r = 0; r < NR; r++) {
                    const __m512i A = qp_bcast(q[r] + 256 * i + off);
                    p[r][0] = _mm512_dpbusd_epi32(p[r][0], W0, A);
                    p[r][1] = _mm512_dpbusd_epi32(p[r][1], W1, A);
                }
            }
            const float *sd = (const float *)(pb + 128 * NG);
            QR_UNROLL for (int c = 0; c < 2; c++) {
                const __m512 sdv = _mm512_loadu_ps(sd + 16 * c);
                QR_UNROLL for (int r = 0; r < NR; r++) {
                    const __m512 fp = _mm512_cvtepi32_ps(p[r][c]);
                    if (Q0) acc[r][c] = _mm512_fmadd_ps(fp, _mm512_mul_ps(sdv, _mm512_set1_ps(da[r][8 * i + b])), acc[r][c]);
                    else acc2[r][c] = b ? _mm512_fmadd_ps(fp, sdv, acc2[r][c]) : _mm512_mul_ps(fp, sdv);
                }
                if (!Q6) {
                    const __m512 mnv = _mm512_loadu_ps(sd + 32 + 16 * c);
                    QR_UNROLL for (int r = 0; r < NR; r++)
                        acc[r][c] = _mm512_fnmadd_ps(mnv, _mm512_set1_ps(sa[r][8 * i + b]), acc[r][c]);
                }
            }
        }
        if (!Q0)
            QR_UNROLL for (int r = 0; r < NR; r++) {
                const __m512 d = _mm512_set1_ps(da[r][i]);
                QR_UNROLL for (int c = 0; c < 2; c++) acc[r][c] = _mm512_fmadd_ps(acc2[r][c], d, acc[r][c]);
            }
    }
    QR_UNROLL for (int r = 0; r < NR; r++)
        QR_UNROLL for (int c = 0; c < 2; c++) _mm512_mask_storeu_ps(y + r * ldy + 16 * c, mk[c], acc[r][c]);
}
#define QP_GEMM_FN(t, F)                                                                           \
    static void QS_FN(qp_gemm_##t)(float *y, int64_t ldy, int nw, const void *P, const void *a, size_t as, int na, \
                                   int64_t k, int64_t i0, int64_t i1) {                            \
        switch (na) {                                                                              \
        case 1: qp_gemm(y, ldy, nw, P, a, as, k, i0, i1, 1, F); break;                            \
        case 2: qp_gemm(y, ldy, nw, P, a, as, k, i0, i1, 2, F); break;                            \
        case 3: qp_gemm(y, ldy, nw, P, a, as, k, i0, i1, 3, F); break;                            \
        default: qp_gemm(y, ldy, nw, P, a, as, k, i0, i1, 4, F); break;                           \
        }                                                                                          \
    }
QP_GEMM_FN(q4_Kr, 0)
QP_GEMM_FN(q6_Kr, 1)
QP_GEMM_FN(q4_0r, 2)
QP_GEMM_FN(q8_0r, 2)

#else
/* ---------------------------------------------------------------- AVX2 */

#define QR_Q8KI_QUANTIZE cke_quantize_row_q8_Ki_ref
#define QR_Q8K16_QUANTIZE cke_quantize_row_q8_K16_ref

/* per group of 8 blocks, two halves of 4 (hh): int32 lanes 2b', 2b' + 1 <- block 4hh + b' */
#define QR_0R_BODY256(DECODE, DOT, WITH_OFF)                                                       \
    const int64_t nb = k / QK, ng = nb / 8;                                                        \
    const uint16_t *dw = w;                                                                        \
    const int8_t *q[4];                                                                            \
    const float *da[4], *sd[4];                                                                    \
    __m256 acc[4][2], accm[4];                                                                     \
    QR_UNROLL for (int r = 0; r < NR; r++) {                                                                 \
        q[r] = (const int8_t *)((const char *)a + (size_t)r * as);                                 \
        da[r] = (const float *)(q[r] + k);                                                         \
        sd[r] = da[r] + nb;                                                                        \
        acc[r][0] = acc[r][1] = accm[r] = _mm256_setzero_ps();                                     \
    }                                                                                              \
    const __m256i ix0 = _mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0), ix1 = _mm256_set_epi32(7, 7, 6, 6, 5, 5, 4, 4); \
    for (int64_t g = 0; g < ng; g++) {                                                             \
        const __m256 dwv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(dw + 8 * g)));        \
        __m256 S[4];                                                                               \
        QR_UNROLL for (int r = 0; r < NR; r++) {                                                             \
            S[r] = _mm256_mul_ps(dwv, _mm256_loadu_ps(da[r] + 8 * g));                             \
            if (WITH_OFF) accm[r] = _mm256_fmadd_ps(dwv, _mm256_loadu_ps(sd[r] + 8 * g), accm[r]); \
        }                                                                                          \
        _Pragma("GCC unroll 2") for (int hh = 0; hh < 2; hh++) {                                   \
            __m256i V[4];                                                                          \
            DECODE(g, hh);                                                                         \
            QR_UNROLL for (int r = 0; r < NR; r++) {                                                         \
                const int8_t *A = q[r] + g * 256 + 32 * hh;                                        \
                __m256i p = DOT(V[0], _mm256_loadu_si256((const __m256i *)A));                     \
                p = _mm256_add_epi32(p, DOT(V[1], _mm256_loadu_si256((const __m256i *)(A + 64))));  \
                p = _mm256_add_epi32(p, DOT(V[2], _mm256_loadu_si256((const __m256i *)(A + 128)))); \
                p = _mm256_add_epi32(p, DOT(V[3], _mm256_loadu_si256((const __m256i *)(A + 192)))); \
                acc[r][hh] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(S[r], hh ? ix1 : ix0), _mm256_cvtepi32_ps(p), acc[r][hh]); \
            }                                                                                      \
        }                                                                                          \
    }

QR_INLINE void qr_q4_0r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const uint8_t *qs = (const uint8_t *)w + 2 * (k / QK);
#define QR_DEC_Q4(gi, hh)                                                                          \
    const __m256i v0 = _mm256_loadu_si256((const __m256i *)(qs + (gi) * 128 + 32 * (hh)));         \
    const __m256i v1 = _mm256_loadu_si256((const __m256i *)(qs + (gi) * 128 + 64 + 32 * (hh)));    \
    V[0] = _mm256_and_si256(v0, m4);                                                               \
    V[1] = _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4);                                         \
    V[2] = _mm256_and_si256(v1, m4);                                                               \
    V[3] = _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4)
    QR_0R_BODY256(QR_DEC_Q4, qs_dot_us8, 1)
#undef QR_DEC_Q4
    QR_UNROLL for (int r = 0; r < NR; r++) {
        float t = 0.0f, tm = 0.0f;
        for (int64_t i = 8 * ng; i < nb; i++) {
            const float d = qb_h2f(dw[i]);
            t += d * (da[r][i] * (float)qr_tail_q4(qs + ng * 128 + (i - 8 * ng) * 16, q[r] + i * QK));
            tm += d * sd[r][i];
        }
        y[(int64_t)r * ldy] = qs_hsum(_mm256_fnmadd_ps(_mm256_set1_ps(8.0f), accm[r], _mm256_add_ps(acc[r][0], acc[r][1]))) + (t - 8.0f * tm);
    }
}

/* maddubs would saturate on codes up to 255: the codes go back to signed q (xor 0x80) for the
 * sign trick; the dot is then q . a itself and the offset term drops out */
QR_INLINE void qr_q8_0r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    const uint8_t *u = (const uint8_t *)w + 2 * (k / QK);
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
#define QR_DEC_Q8(gi, hh)                                                                          \
    _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++)                                            \
        V[t] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(u + (gi) * 256 + 64 * t + 32 * (hh))), x80)
    QR_0R_BODY256(QR_DEC_Q8, qs_dot_ss8, 0)
#undef QR_DEC_Q8
    (void)accm;
    (void)sd;
    QR_UNROLL for (int r = 0; r < NR; r++) {
        float t = 0.0f;
        for (int64_t i = 8 * ng; i < nb; i++) {
            const __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(u + i * QK)), x80);
            t += qb_h2f(dw[i]) * (da[r][i] * (float)qs_hsum_i32(qs_dot_ss8(v, _mm256_loadu_si256((const __m256i *)(q[r] + i * QK)))));
        }
        y[(int64_t)r * ldy] = qs_hsum(_mm256_add_ps(acc[r][0], acc[r][1])) + t;
    }
}

/* q4_Kr: per half of a super-block (sub-blocks 4hh..4hh+3), 4 maddubs summed in int16 (at most
 * 4 * 2 * 15 * 127 < 2^15) and one madd with the sub-block scales as int16 */
QR_INLINE void qr_q4_Kr(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int64_t k, const int NR) {
    const int64_t nsb = k / QK_K;
    const uint8_t *ddp = vw, *scp = ddp + 4 * nsb, *qsp = ddp + 16 * nsb;
    const int8_t *q[4];
    const float *da[4], *sa[4];
    __m256 acc[4], accm[4];
    QR_UNROLL for (int r = 0; r < NR; r++) {
        q[r] = (const int8_t *)((const char *)va + (size_t)r * as);
        da[r] = (const float *)(q[r] + k);
        sa[r] = da[r] + nsb;
        acc[r] = accm[r] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    /* int16 lane m <- scale word 4hh + m/4 */
    const __m256i c0 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3,
                                        4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7);
    const __m256i c1 = _mm256_add_epi8(c0, _mm256_set1_epi8(8));
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *qs = qsp + 128 * i;
        const __m256i scm = qr_k6_unpack(scp + 12 * i);
        const __m256i scl = _mm256_permute2x128_si256(scm, scm, 0x00); /* the scales in both lanes */
        uint16_t dh, mh;
        memcpy(&dh, ddp + 4 * i, 2);
        memcpy(&mh, ddp + 4 * i + 2, 2);
        const float d = qb_h2f(dh);
        const __m256 mw = qr_k6_mins(scm, qb_h2f(mh));
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        _Pragma("GCC unroll 2") for (int hh = 0; hh < 2; hh++) {
            const __m256i sc16 = _mm256_shuffle_epi8(scl, hh ? c1 : c0);
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)(qs + 32 * hh));
            const __m256i v1 = _mm256_loadu_si256((const __m256i *)(qs + 64 + 32 * hh));
            const __m256i V[4] = {_mm256_and_si256(v0, m4), _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4),
                                  _mm256_and_si256(v1, m4), _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4)};
            QR_UNROLL for (int r = 0; r < NR; r++) {
                const int8_t *A = q[r] + 256 * i + 32 * hh;
                __m256i p16 = _mm256_add_epi16(qs_pairs16(V[0], _mm256_loadu_si256((const __m256i *)A)),
                                               qs_pairs16(V[1], _mm256_loadu_si256((const __m256i *)(A + 64))));
                p16 = _mm256_add_epi16(p16, qs_pairs16(V[2], _mm256_loadu_si256((const __m256i *)(A + 128))));
                p16 = _mm256_add_epi16(p16, qs_pairs16(V[3], _mm256_loadu_si256((const __m256i *)(A + 192))));
                sumi[r] = qs_madd_acc(sumi[r], p16, sc16);
            }
        }
        QR_UNROLL for (int r = 0; r < NR; r++) {
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * da[r][i]), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(sa[r] + 8 * i), accm[r]);
        }
    }
    QR_UNROLL for (int r = 0; r < NR; r++) y[(int64_t)r * ldy] = qs_hsum(_mm256_sub_ps(acc[r], accm[r]));
}
/* q6_Kr: per half of a super-block (sub-blocks 8hh..8hh+7, one int32 lane each) */
QR_INLINE void qr_q6_Kr(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int64_t k, const int NR) {
    const int64_t nsb = k / QK_K;
    const uint8_t *row = vw;
    const int8_t *q[4];
    const float *da[4];
    const int32_t *bs[4];
    __m256 acc[4];
    QR_UNROLL for (int r = 0; r < NR; r++) {
        q[r] = (const int8_t *)((const char *)va + (size_t)r * as);
        da[r] = (const float *)(q[r] + k);
        bs[r] = (const int32_t *)(da[r] + nsb);
        acc[r] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), m03 = _mm256_set1_epi8(0x03), m0c = _mm256_set1_epi8(0x0C);
    const __m256i m30 = _mm256_set1_epi8(0x30), mc0 = _mm256_set1_epi8((char)0xC0);
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *ql = row + 210 * i, *qh = ql + 128;
        uint16_t dh;
        memcpy(&dh, ql + 208, 2);
        const float d = qb_h2f(dh);
        _Pragma("GCC unroll 2") for (int hh = 0; hh < 2; hh++) {
            const __m256i sc = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(ql + 192 + 8 * hh)));
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 32 * hh)), l1 = _mm256_loadu_si256((const __m256i *)(ql + 64 + 32 * hh));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(qh + 32 * hh));
            const __m256i V[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m03), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(h, m0c), 2)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(h, m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_srli_epi16(_mm256_and_si256(h, mc0), 2))};
            QR_UNROLL for (int r = 0; r < NR; r++) {
                const int8_t *A = q[r] + 256 * i + 32 * hh;
                __m256i p = qs_dot_us8(V[0], _mm256_loadu_si256((const __m256i *)A));
                p = _mm256_add_epi32(p, qs_dot_us8(V[1], _mm256_loadu_si256((const __m256i *)(A + 64))));
                p = _mm256_add_epi32(p, qs_dot_us8(V[2], _mm256_loadu_si256((const __m256i *)(A + 128))));
                p = _mm256_add_epi32(p, qs_dot_us8(V[3], _mm256_loadu_si256((const __m256i *)(A + 192))));
                p = _mm256_sub_epi32(p, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(bs[r] + 16 * i + 8 * hh)), 5));
                p = _mm256_mullo_epi32(p, sc);
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * da[r][i]), _mm256_cvtepi32_ps(p), acc[r]);
            }
        }
    }
    QR_UNROLL for (int r = 0; r < NR; r++) y[(int64_t)r * ldy] = qs_hsum(acc[r]);
}
/* q5_Kr: q4_Kr's halves with the fifth bits (32 mask bits -> bytes) or'ed in */
QR_INLINE void qr_q5_Kr(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int64_t k, const int NR) {
    const int64_t nsb = k / QK_K;
    const int8_t *q[4];
    const float *da[4], *sa[4];
    __m256 acc[4], accm[4];
    QR_UNROLL for (int r = 0; r < NR; r++) {
        q[r] = (const int8_t *)((const char *)va + (size_t)r * as);
        da[r] = (const float *)(q[r] + k);
        sa[r] = da[r] + nsb;
        acc[r] = accm[r] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), b16 = _mm256_set1_epi8(0x10);
    const __m256i c0 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3,
                                        4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7);
    const __m256i c1 = _mm256_add_epi8(c0, _mm256_set1_epi8(8));
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *sb = (const uint8_t *)vw + 176 * i;
        const __m256i scm = qr_k6_unpack(sb + 160);
        const __m256i scl = _mm256_permute2x128_si256(scm, scm, 0x00);
        uint16_t dh, mh;
        memcpy(&dh, sb + 172, 2);
        memcpy(&mh, sb + 174, 2);
        const float d = qb_h2f(dh);
        const __m256 mw = qr_k6_mins(scm, qb_h2f(mh));
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        _Pragma("GCC unroll 2") for (int hh = 0; hh < 2; hh++) {
            const __m256i sc16 = _mm256_shuffle_epi8(scl, hh ? c1 : c0);
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)(sb + 32 * hh));
            const __m256i v1 = _mm256_loadu_si256((const __m256i *)(sb + 64 + 32 * hh));
            const __m256i V[4] = {
                _mm256_or_si256(_mm256_and_si256(v0, m4), _mm256_and_si256(qs_bits32(sb + 128 + 4 * hh), b16)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4), _mm256_and_si256(qs_bits32(sb + 136 + 4 * hh), b16)),
                _mm256_or_si256(_mm256_and_si256(v1, m4), _mm256_and_si256(qs_bits32(sb + 144 + 4 * hh), b16)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m4), _mm256_and_si256(qs_bits32(sb + 152 + 4 * hh), b16))};
            QR_UNROLL for (int r = 0; r < NR; r++) {
                /* u8 codes up to 31: 2 * 31 * 127 per pair, two pairs summed in int16 < 2^15 */
                const int8_t *A = q[r] + 256 * i + 32 * hh;
                __m256i p16a = _mm256_add_epi16(qs_pairs16(V[0], _mm256_loadu_si256((const __m256i *)A)),
                                                qs_pairs16(V[1], _mm256_loadu_si256((const __m256i *)(A + 64))));
                __m256i p16b = _mm256_add_epi16(qs_pairs16(V[2], _mm256_loadu_si256((const __m256i *)(A + 128))),
                                                qs_pairs16(V[3], _mm256_loadu_si256((const __m256i *)(A + 192))));
                sumi[r] = qs_madd_acc(sumi[r], p16a, sc16);
                sumi[r] = qs_madd_acc(sumi[r], p16b, sc16);
            }
        }
        QR_UNROLL for (int r = 0; r < NR; r++) {
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * da[r][i]), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(sa[r] + 8 * i), accm[r]);
        }
    }
    QR_UNROLL for (int r = 0; r < NR; r++) y[(int64_t)r * ldy] = qs_hsum(_mm256_sub_ps(acc[r], accm[r]));
}
/* q4_1r, q5_0r, q5_1r: q4_0r's halves, the fifth bits (32 mask bits -> bytes) or'ed in as 16 */
QR_INLINE void qr_leg(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR,
                      const int HAS_MIN, const int HAS_HIGH) {
    const int64_t nb = k / QK, ng = nb / 8, gs = HAS_HIGH ? 160 : 128, tbs = HAS_HIGH ? 20 : 16;
    const uint8_t *row = w;
    const uint16_t *dm = w;
    const uint8_t *cs = row + (HAS_MIN ? 4 : 2) * nb;
    const int8_t *q[4];
    const float *da[4], *sd[4];
    __m256 acc[4][2], accm[4];
    QR_UNROLL for (int r = 0; r < NR; r++) {
        q[r] = (const int8_t *)((const char *)a + (size_t)r * as);
        da[r] = (const float *)(q[r] + k);
        sd[r] = da[r] + nb;
        acc[r][0] = acc[r][1] = accm[r] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), b16 = _mm256_set1_epi8(0x10);
    const __m256i ix0 = _mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0), ix1 = _mm256_set_epi32(7, 7, 6, 6, 5, 5, 4, 4);
    for (int64_t g = 0; g < ng; g++) {
        __m256 dwv, mv;
        if (HAS_MIN) { /* 8 (d, m) pairs -> d's and m's (shuffles within 128-bit lanes, then a qword permute) */
            const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(dm + 16 * g)));
            const __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(dm + 16 * g + 8)));
            dwv = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
            mv = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
        } else {
            dwv = mv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(dm + 8 * g)));
        }
        __m256 S[4];
        QR_UNROLL for (int r = 0; r < NR; r++) {
            S[r] = _mm256_mul_ps(dwv, _mm256_loadu_ps(da[r] + 8 * g));
            accm[r] = _mm256_fmadd_ps(mv, _mm256_loadu_ps(sd[r] + 8 * g), accm[r]);
        }
        _Pragma("GCC unroll 2") for (int hh = 0; hh < 2; hh++) {
            const uint8_t *p = cs + g * gs;
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)(p + 32 * hh));
            const __m256i v1 = _mm256_loadu_si256((const __m256i *)(p + 64 + 32 * hh));
            __m256i V[4] = {_mm256_and_si256(v0, m4), _mm256_and_si256(_mm256_srli_epi16(v0, 4), m4),
                            _mm256_and_si256(v1, m4), _mm256_and_si256(_mm256_srli_epi16(v1, 4), m4)};
            if (HAS_HIGH)
                for (int t = 0; t < 4; t++)
                    V[t] = _mm256_or_si256(V[t], _mm256_and_si256(qs_bits32(p + 128 + 8 * t + 4 * hh), b16));
            QR_UNROLL for (int r = 0; r < NR; r++) {
                const int8_t *A = q[r] + g * 256 + 32 * hh;
                __m256i pr = qs_dot_us8(V[0], _mm256_loadu_si256((const __m256i *)A));
                pr = _mm256_add_epi32(pr, qs_dot_us8(V[1], _mm256_loadu_si256((const __m256i *)(A + 64))));
                pr = _mm256_add_epi32(pr, qs_dot_us8(V[2], _mm256_loadu_si256((const __m256i *)(A + 128))));
                pr = _mm256_add_epi32(pr, qs_dot_us8(V[3], _mm256_loadu_si256((const __m256i *)(A + 192))));
                acc[r][hh] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(S[r], hh ? ix1 : ix0), _mm256_cvtepi32_ps(pr), acc[r][hh]);
            }
        }
    }
    QR_UNROLL for (int r = 0; r < NR; r++) {
        float t = 0.0f, tm = 0.0f;
        for (int64_t i = 8 * ng; i < nb; i++) {
            const uint8_t *tb = cs + ng * gs + (i - 8 * ng) * tbs;
            const float d = qb_h2f(dm[HAS_MIN ? 2 * i : i]);
            t += d * (da[r][i] * (float)qr_leg_tail(tb, tb + 16, HAS_HIGH, q[r] + i * QK));
            tm += (HAS_MIN ? qb_h2f(dm[2 * i + 1]) : d) * sd[r][i];
        }
        const __m256 s2 = _mm256_add_ps(acc[r][0], acc[r][1]);
        y[(int64_t)r * ldy] = HAS_MIN ? qs_hsum(_mm256_add_ps(s2, accm[r])) + (t + tm)
                                      : qs_hsum(_mm256_fnmadd_ps(_mm256_set1_ps(16.0f), accm[r], s2)) + (t - 16.0f * tm);
    }
}
#endif

/* entry points: the row count as a compile-time constant */
#define QR_ENTRY(t)                                                                                \
    static void QS_FN(qr_dot_rows_##t)(float *y, int64_t ldy, const void *w, const void *a, size_t as, int nr, int64_t k) { \
        switch (nr) {                                                                              \
        case 1: qr_##t(y, ldy, w, a, as, k, 1); break;                                            \
        case 2: qr_##t(y, ldy, w, a, as, k, 2); break;                                            \
        case 3: qr_##t(y, ldy, w, a, as, k, 3); break;                                            \
        default: qr_##t(y, ldy, w, a, as, k, 4); break;                                           \
        }                                                                                          \
    }                                                                                              \
    static void QS_FN(qr_vec_dot_##t)(float *s, const void *w, const void *a, int64_t k) {         \
        qr_##t(s, 0, w, a, 0, k, 1);                                                               \
    }                                                                                              \
    static void QS_FN(qr_gemv_##t)(float *y, const void *w, size_t rs, int64_t nw, const void *a, int64_t k) { \
        for (int64_t n = 0; n < nw; n++) qr_##t(y + n, 0, (const char *)w + (size_t)n * rs, a, 0, k, 1); \
    }
QR_ENTRY(q8_0r)
QR_ENTRY(q4_0r)
QR_ENTRY(q4_Kr)
QR_ENTRY(q6_Kr)
QR_ENTRY(q5_Kr)
QR_INLINE void qr_q4_1r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    qr_leg(y, ldy, w, a, as, k, NR, 1, 0);
}
QR_INLINE void qr_q5_0r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    qr_leg(y, ldy, w, a, as, k, NR, 0, 1);
}
QR_INLINE void qr_q5_1r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    qr_leg(y, ldy, w, a, as, k, NR, 1, 1);
}
QR_ENTRY(q4_1r)
QR_ENTRY(q5_0r)
QR_ENTRY(q5_1r)

/* the trailing fields: a format's gemm_tile where this level has one */
#define QR_NOTILE .gemm_tile = NULL
#define QR_OPS(t, nm, b, sz, vdt, of, ...)                                                         \
    const cke_qtype_ops QS_CAT(cke_qops_##t, QS_SFX) = {                                           \
        .name = nm, .blck = b, .type_size = sz, .vec_dot_type = vdt,                               \
        .quantize_row = cke_quantize_row_##t##_ref, .dequantize_row = cke_dequantize_row_##t##_ref, \
        .vec_dot = QS_FN(qr_vec_dot_##t), .repack_of = of, .repack_row = cke_repack_row_##t##_ref,  \
        .dot_rows = QS_FN(qr_dot_rows_##t), .gemv = QS_FN(qr_gemv_##t), __VA_ARGS__}
#if QS_VNNI
#define QR_TILE(t) .gemm_tile = QS_FN(qr_tile_##t), .tile_nw = QR_TNW, .tile_na = QR_TNA
#define QR_PANEL(t) .panel_pack = QS_FN(qp_pack_##t), .panel_gemm = QS_FN(qp_gemm_##t)
#else /* AVX2: M >= 2 runs dot_rows (1 x 4 tiles) */
#define QR_TILE(t) QR_NOTILE
#define QR_PANEL(t) .panel_pack = NULL
#endif
QR_OPS(q8_0r, "q8_0r", QK, 34, QT_Q8_0S, QT_Q8_0, QR_TILE(q8_0r), QR_PANEL(q8_0r));
QR_OPS(q4_0r, "q4_0r", QK, 18, QT_Q8_0S, QT_Q4_0, QR_TILE(q4_0r), QR_PANEL(q4_0r));
QR_OPS(q4_Kr, "q4_Kr", QK_K, 144, QT_Q8_KI, QT_Q4_K, QR_TILE(q4_Kr), QR_PANEL(q4_Kr));
QR_OPS(q6_Kr, "q6_Kr", QK_K, 210, QT_Q8_K16, QT_Q6_K, QR_TILE(q6_Kr), QR_PANEL(q6_Kr));
QR_OPS(q5_Kr, "q5_Kr", QK_K, 176, QT_Q8_KI, QT_Q5_K, QR_TILE(q5_Kr));
QR_OPS(q4_1r, "q4_1r", QK, 20, QT_Q8_0S, QT_Q4_1, QR_TILE(q4_1r));
QR_OPS(q5_0r, "q5_0r", QK, 22, QT_Q8_0S, QT_Q5_0, QR_TILE(q5_0r));
QR_OPS(q5_1r, "q5_1r", QK, 24, QT_Q8_0S, QT_Q5_1, QR_TILE(q5_1r));
const cke_qtype_ops QS_CAT(cke_qops_q8_0s, QS_SFX) = {
    .name = "q8_0s", .blck = QK, .type_size = 40, .vec_dot_type = QT_Q8_0S,
    .quantize_row = QS_FN(qr_quantize_row_q8_0s), .dequantize_row = cke_dequantize_row_q8_0s_ref};
const cke_qtype_ops QS_CAT(cke_qops_q8_Ki, QS_SFX) = {
    .name = "q8_Ki", .blck = QK_K, .type_size = 292, .vec_dot_type = QT_Q8_KI,
    .quantize_row = QR_Q8KI_QUANTIZE, .dequantize_row = cke_dequantize_row_q8_Ki_ref};
const cke_qtype_ops QS_CAT(cke_qops_q8_K16, QS_SFX) = {
    .name = "q8_K16", .blck = QK_K, .type_size = 324, .vec_dot_type = QT_Q8_K16,
    .quantize_row = QR_Q8K16_QUANTIZE, .dequantize_row = cke_dequantize_row_q8_K16_ref};
