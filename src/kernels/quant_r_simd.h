/* Repacked formats (ref/quant_r.c is the layout spec): dot_rows kernels for the decode GEMV and
 * the prefill tiles, included after quant_simd.h by avx2/quant.c and avx512/quant.c.
 * QS_VNNI = 1: 512-bit vectors, vpdpbusd / vpdpwssd (AVX-512 level); 0: 256-bit AVX2.
 *
 * Decode streams each weight row once from DRAM; at one thread these kernels must decode blocks
 * faster than the memory delivers them. Per 8 blocks of q4_0r (AVX-512): two 64-byte loads, 6
 * ops to split nibbles, 4 vpdpbusd accumulating into one vector (block b in lanes 2b, 2b + 1), one
 * conversion, one scale permute and one FMA; the scales of 16 blocks converted by one vcvtph2ps.
 * Up to 4 activation rows share each decoded weight vector (prefill). No software prefetch:
 * measured, it slows the sequential stream the hardware prefetcher already serves. */
#include <stddef.h>

#define QR_INLINE static inline __attribute__((always_inline))

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

#if QS_VNNI
/* ---------------------------------------------------------------- AVX-512 */

static inline float qr_hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }
/* int32 lane l <- scale of block 8h + l/2 (the interleaved groups' lane order) */
static inline __m512i qr_ix8(int h) {
    return _mm512_add_epi32(_mm512_set1_epi32(8 * h), _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0));
}

/* the _0 formats, shared: per chunk of up to 2 groups (16 blocks) the scale products S = dw * da
 * and the offset term; DECODE(p, h) sets the 4 code vectors V[4] of group g + h */
#define QR_0R_BODY(DECODE)                                                                         \
    const int64_t nb = k / QK, ng = nb / 8;                                                        \
    const uint16_t *dw = w;                                                                        \
    const int8_t *q[4];                                                                            \
    const float *da[4], *sd[4];                                                                    \
    __m512 acc[4][2], accm[4];                                                                     \
    for (int r = 0; r < NR; r++) {                                                                 \
        q[r] = (const int8_t *)((const char *)a + (size_t)r * as);                                 \
        da[r] = (const float *)(q[r] + k);                                                         \
        sd[r] = da[r] + nb;                                                                        \
        acc[r][0] = acc[r][1] = accm[r] = _mm512_setzero_ps();                                     \
    }                                                                                              \
    for (int64_t g = 0; g < ng; g += 2) {                                                          \
        const int n2 = ng - g >= 2 ? 2 : 1;                                                        \
        const __mmask16 mk = n2 == 2 ? (__mmask16)0xFFFF : (__mmask16)0x00FF;                      \
        const __m512 dwv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, dw + 8 * g));              \
        __m512 S[4];                                                                               \
        for (int r = 0; r < NR; r++) {                                                             \
            S[r] = _mm512_mul_ps(dwv, _mm512_maskz_loadu_ps(mk, da[r] + 8 * g));                   \
            accm[r] = _mm512_fmadd_ps(dwv, _mm512_maskz_loadu_ps(mk, sd[r] + 8 * g), accm[r]);     \
        }                                                                                          \
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {                                      \
            if (h >= n2) break;                                                                    \
            __m512i V[4];                                                                          \
            DECODE(g + h);                                                                         \
            const __m512i ix = qr_ix8(h);                                                          \
            for (int r = 0; r < NR; r++) {                                                         \
                const int8_t *A = q[r] + (g + h) * 256;                                            \
                __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), V[0], _mm512_loadu_si512(A)); \
                p = _mm512_dpbusd_epi32(p, V[1], _mm512_loadu_si512(A + 64));                      \
                p = _mm512_dpbusd_epi32(p, V[2], _mm512_loadu_si512(A + 128));                     \
                p = _mm512_dpbusd_epi32(p, V[3], _mm512_loadu_si512(A + 192));                     \
                acc[r][h] = _mm512_fmadd_ps(_mm512_permutexvar_ps(ix, S[r]), _mm512_cvtepi32_ps(p), acc[r][h]); \
            }                                                                                      \
        }                                                                                          \
    }

QR_INLINE void qr_q4_0r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const uint8_t *qs = (const uint8_t *)w + 2 * (k / QK);
#define QR_DEC_Q4(gi)                                                                              \
    const __m512i v0 = _mm512_loadu_si512(qs + (gi) * 128), v1 = _mm512_loadu_si512(qs + (gi) * 128 + 64); \
    V[0] = _mm512_and_si512(v0, m4);                                                               \
    V[1] = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4);                                         \
    V[2] = _mm512_and_si512(v1, m4);                                                               \
    V[3] = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4)
    QR_0R_BODY(QR_DEC_Q4)
#undef QR_DEC_Q4
    for (int r = 0; r < NR; r++) {
        float t = 0.0f, tm = 0.0f;
        for (int64_t i = 8 * ng; i < nb; i++) { /* tail blocks, GGUF form, activations in order */
            const float d = qb_h2f(dw[i]);
            t += d * (da[r][i] * (float)qr_tail_q4(qs + ng * 128 + (i - 8 * ng) * 16, q[r] + i * QK));
            tm += d * sd[r][i];
        }
        y[(int64_t)r * ldy] = (qr_hsum512(_mm512_add_ps(acc[r][0], acc[r][1])) + t) - 8.0f * (qr_hsum512(accm[r]) + tm);
    }
}

QR_INLINE void qr_q8_0r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    const uint8_t *u = (const uint8_t *)w + 2 * (k / QK);
#define QR_DEC_Q8(gi)                                                                              \
    for (int t = 0; t < 4; t++) V[t] = _mm512_loadu_si512(u + (gi) * 256 + 64 * t)
    QR_0R_BODY(QR_DEC_Q8)
#undef QR_DEC_Q8
    for (int r = 0; r < NR; r++) {
        float t = 0.0f, tm = 0.0f;
        for (int64_t i = 8 * ng; i < nb; i++) {
            const float d = qb_h2f(dw[i]);
            const int32_t s = qs_hsum_i32(qs_dot_us8(_mm256_loadu_si256((const __m256i *)(u + i * QK)),
                                                     _mm256_loadu_si256((const __m256i *)(q[r] + i * QK))));
            t += d * (da[r][i] * (float)s);
            tm += d * sd[r][i];
        }
        y[(int64_t)r * ldy] = (qr_hsum512(_mm512_add_ps(acc[r][0], acc[r][1])) + t) - 128.0f * (qr_hsum512(accm[r]) + tm);
    }
}

/* q4_Kr: per super-block, 2 loads of 64 bytes (elements 0..127 / 128..255 as low | high nibbles),
 * u8 x s8 pair sums (maddubs) times the sub-block scales as int16 (dpwssd) into int32, the mins
 * through the activation's bsums, one float scaling per super-block */
QR_INLINE void qr_q4_Kr(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int64_t k, const int NR) {
    const blk_q4_K *w = vw;
    const blk_q8_K *a[4];
    __m512 acc[4];
    __m256 accm[4];
    for (int r = 0; r < NR; r++) {
        a[r] = (const blk_q8_K *)((const char *)va + (size_t)r * as);
        acc[r] = _mm512_setzero_ps();
        accm[r] = _mm256_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* int16 lanes 0..15 <- word 2s of scm, 16..31 <- word 2s + 1 */
    const __m512i ix0 = _mm512_set_epi64(0x0001000100010001, 0x0001000100010001, 0x0001000100010001, 0x0001000100010001, 0, 0, 0, 0);
    for (int64_t i = 0; i < k / QK_K; i++) {
        const blk_q4_K *b = &w[i];
        const __m256i scm = _mm256_cvtepu8_epi16(qs_k4_unpack(b->scales)); /* sc0..7 | m0..7 */
        const __m512i scz = _mm512_castsi256_si512(scm);
        __m512i sv[4];
        for (int s = 0; s < 4; s++) sv[s] = _mm512_permutexvar_epi16(_mm512_add_epi16(ix0, _mm512_set1_epi16((short)(2 * s))), scz);
        const __m512i v0 = _mm512_loadu_si512(b->qs), v1 = _mm512_loadu_si512(b->qs + 64);
        const __m512i l0 = _mm512_and_si512(v0, m4), h0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), m4);
        const __m512i l1 = _mm512_and_si512(v1, m4), h1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), m4);
        uint32_t ddm;
        memcpy(&ddm, &b->d, 4);
        const __m128 dd = _mm_cvtph_ps(_mm_set1_epi32((int)ddm)); /* d, dmin, d, dmin */
        for (int r = 0; r < NR; r++) {
            const blk_q8_K *ar = &a[r][i];
            __m512i sumi = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(l0, _mm512_loadu_si512(ar->qs)), sv[0]);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(h0, _mm512_loadu_si512(ar->qs + 64)), sv[1]);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(l1, _mm512_loadu_si512(ar->qs + 128)), sv[2]);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(h1, _mm512_loadu_si512(ar->qs + 192)), sv[3]);
            __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)ar->bsums), _mm_loadu_si128((const __m128i *)(ar->bsums + 8)));
            __m256i summ = _mm256_madd_epi16(scm, _mm256_inserti128_si256(_mm256_setzero_si256(), bs, 1));
            const __m128 ddr = _mm_mul_ps(dd, _mm_set1_ps(ar->d));
            acc[r] = _mm512_fmadd_ps(_mm512_broadcastss_ps(ddr), _mm512_cvtepi32_ps(sumi), acc[r]);
            accm[r] = _mm256_fmadd_ps(_mm256_set1_ps(_mm_cvtss_f32(_mm_movehdup_ps(ddr))), _mm256_cvtepi32_ps(summ), accm[r]);
        }
    }
    for (int r = 0; r < NR; r++) y[(int64_t)r * ldy] = qr_hsum512(acc[r]) - qs_hsum(accm[r]);
}

#else
/* ---------------------------------------------------------------- AVX2 */

/* per group of 8 blocks, two halves of 4 (hh): int32 lanes 2b', 2b' + 1 <- block 4hh + b' */
#define QR_0R_BODY256(DECODE, DOT, WITH_OFF)                                                       \
    const int64_t nb = k / QK, ng = nb / 8;                                                        \
    const uint16_t *dw = w;                                                                        \
    const int8_t *q[4];                                                                            \
    const float *da[4], *sd[4];                                                                    \
    __m256 acc[4][2], accm[4];                                                                     \
    for (int r = 0; r < NR; r++) {                                                                 \
        q[r] = (const int8_t *)((const char *)a + (size_t)r * as);                                 \
        da[r] = (const float *)(q[r] + k);                                                         \
        sd[r] = da[r] + nb;                                                                        \
        acc[r][0] = acc[r][1] = accm[r] = _mm256_setzero_ps();                                     \
    }                                                                                              \
    const __m256i ix0 = _mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0), ix1 = _mm256_set_epi32(7, 7, 6, 6, 5, 5, 4, 4); \
    for (int64_t g = 0; g < ng; g++) {                                                             \
        const __m256 dwv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(dw + 8 * g)));        \
        __m256 S[4];                                                                               \
        for (int r = 0; r < NR; r++) {                                                             \
            S[r] = _mm256_mul_ps(dwv, _mm256_loadu_ps(da[r] + 8 * g));                             \
            if (WITH_OFF) accm[r] = _mm256_fmadd_ps(dwv, _mm256_loadu_ps(sd[r] + 8 * g), accm[r]); \
        }                                                                                          \
        for (int hh = 0; hh < 2; hh++) {                                                           \
            __m256i V[4];                                                                          \
            DECODE(g, hh);                                                                         \
            for (int r = 0; r < NR; r++) {                                                         \
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
    for (int r = 0; r < NR; r++) {
        float t = 0.0f, tm = 0.0f;
        for (int64_t i = 8 * ng; i < nb; i++) {
            const float d = qb_h2f(dw[i]);
            t += d * (da[r][i] * (float)qr_tail_q4(qs + ng * 128 + (i - 8 * ng) * 16, q[r] + i * QK));
            tm += d * sd[r][i];
        }
        y[(int64_t)r * ldy] = (qs_hsum(_mm256_add_ps(acc[r][0], acc[r][1])) + t) - 8.0f * (qs_hsum(accm[r]) + tm);
    }
}

/* maddubs would saturate on codes up to 255: the codes go back to signed q (xor 0x80) for the
 * sign trick; the dot is then q . a itself and the offset term drops out */
QR_INLINE void qr_q8_0r(float *y, int64_t ldy, const void *w, const void *a, size_t as, int64_t k, const int NR) {
    const uint8_t *u = (const uint8_t *)w + 2 * (k / QK);
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
#define QR_DEC_Q8(gi, hh)                                                                          \
    for (int t = 0; t < 4; t++)                                                                    \
        V[t] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(u + (gi) * 256 + 64 * t + 32 * (hh))), x80)
    QR_0R_BODY256(QR_DEC_Q8, qs_dot_ss8, 0)
#undef QR_DEC_Q8
    (void)accm;
    (void)sd;
    for (int r = 0; r < NR; r++) {
        float t = 0.0f;
        for (int64_t i = 8 * ng; i < nb; i++) {
            const __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(u + i * QK)), x80);
            t += qb_h2f(dw[i]) * (da[r][i] * (float)qs_hsum_i32(qs_dot_ss8(v, _mm256_loadu_si256((const __m256i *)(q[r] + i * QK)))));
        }
        y[(int64_t)r * ldy] = qs_hsum(_mm256_add_ps(acc[r][0], acc[r][1])) + t;
    }
}

QR_INLINE void qr_q4_Kr(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int64_t k, const int NR) {
    const blk_q4_K *w = vw;
    const blk_q8_K *a[4];
    __m256 acc[4], accm[4];
    for (int r = 0; r < NR; r++) {
        a[r] = (const blk_q8_K *)((const char *)va + (size_t)r * as);
        acc[r] = accm[r] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < k / QK_K; i++) {
        const blk_q4_K *b = &w[i];
        const __m256i scm = _mm256_cvtepu8_epi16(qs_k4_unpack(b->scales));
        const __m256i scb = _mm256_permute2x128_si256(scm, scm, 0x00);
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) { /* 32 bytes: low nibbles sub-block j0, high j0 + 2 */
            const int h = c / 2, hf = c % 2, j0 = 4 * h + hf, j1 = j0 + 2;
            const __m256i s0 = _mm256_shuffle_epi8(scb, _mm256_set1_epi16((short)(0x0100 * (2 * j0 + 1) + 2 * j0)));
            const __m256i s1 = _mm256_shuffle_epi8(scb, _mm256_set1_epi16((short)(0x0100 * (2 * j1 + 1) + 2 * j1)));
            const __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
            const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            for (int r = 0; r < NR; r++) {
                const int8_t *aq = a[r][i].qs;
                __m256i p0 = qs_pairs16(lo, _mm256_loadu_si256((const __m256i *)(aq + 32 * j0)));
                __m256i p1 = qs_pairs16(hi, _mm256_loadu_si256((const __m256i *)(aq + 32 * j1)));
                sumi[r] = qs_madd_acc(sumi[r], p0, s0);
                sumi[r] = qs_madd_acc(sumi[r], p1, s1);
            }
        }
        uint32_t ddm;
        memcpy(&ddm, &b->d, 4);
        const __m256 dd = _mm256_cvtph_ps(_mm_set1_epi32((int)ddm));
        for (int r = 0; r < NR; r++) {
            const blk_q8_K *ar = &a[r][i];
            __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)ar->bsums), _mm_loadu_si128((const __m128i *)(ar->bsums + 8)));
            __m256i summ = _mm256_madd_epi16(scm, _mm256_inserti128_si256(_mm256_setzero_si256(), bs, 1));
            const __m256 ddr = _mm256_mul_ps(dd, _mm256_set1_ps(ar->d));
            acc[r] = _mm256_fmadd_ps(_mm256_permute_ps(ddr, 0x00), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            accm[r] = _mm256_fmadd_ps(_mm256_permute_ps(ddr, 0x55), _mm256_cvtepi32_ps(summ), accm[r]);
        }
    }
    for (int r = 0; r < NR; r++) y[(int64_t)r * ldy] = qs_hsum(acc[r]) - qs_hsum(accm[r]);
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
    }
QR_ENTRY(q8_0r)
QR_ENTRY(q4_0r)
QR_ENTRY(q4_Kr)

#define QR_OPS(t, nm, b, sz, vdt, of)                                                              \
    const cke_qtype_ops QS_CAT(cke_qops_##t, QS_SFX) = {                                           \
        .name = nm, .blck = b, .type_size = sz, .vec_dot_type = vdt,                               \
        .quantize_row = cke_quantize_row_##t##_ref, .dequantize_row = cke_dequantize_row_##t##_ref, \
        .vec_dot = QS_FN(qr_vec_dot_##t), .repack_of = of, .repack_row = cke_repack_row_##t##_ref,  \
        .dot_rows = QS_FN(qr_dot_rows_##t)}
QR_OPS(q8_0r, "q8_0r", QK, 34, QT_Q8_0S, QT_Q8_0);
QR_OPS(q4_0r, "q4_0r", QK, 18, QT_Q8_0S, QT_Q4_0);
QR_OPS(q4_Kr, "q4_Kr", QK_K, 144, QT_Q8_K, QT_Q4_K);
const cke_qtype_ops QS_CAT(cke_qops_q8_0s, QS_SFX) = {
    .name = "q8_0s", .blck = QK, .type_size = 40, .vec_dot_type = QT_Q8_0S,
    .quantize_row = QS_FN(qr_quantize_row_q8_0s), .dequantize_row = cke_dequantize_row_q8_0s_ref};
