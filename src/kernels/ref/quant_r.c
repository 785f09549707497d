/* Repacked formats, scalar reference: the spec of cke's SIMD-friendly rearrangements of GGUF
 * weight rows. A row keeps its GGUF byte count and values (dequantize(repack(x)) ==
 * dequantize(x), exactly); only the order of the bytes within the row changes, so that the decode
 * kernels read it in whole 64-byte vectors with no per-block shuffles.
 *
 * The _0 formats interleave groups of 8 blocks (256 elements) by 8: in a group's code stream,
 * byte 64t + 8b + x holds element 32b + 8t + x (block b, t = 0..3, x = 0..7). One 64-byte vector
 * t then holds 8 consecutive elements of each of the 8 blocks, so a u8 x s8 dot (vpdpbusd) of it
 * leaves block b's partial sums in int32 lanes 2b and 2b + 1, the 4 vectors of a group accumulate
 * into the same lanes, and one conversion and one FMA per 8 blocks apply their 8 scales. The
 * activations (q8_0s) use the same order. Blocks after the last whole group stay in element order.
 *
 *   q8_0r  row of nb = k/32 blocks: [d f16 x nb][codes u = q + 128 (u8), 32 x nb, interleaved]
 *          x = d * (u - 128)
 *   q4_0r  [d f16 x nb][nb/8 groups of 128 bytes: byte 64L + j (L = 0, 1; j < 64) holds the codes
 *          of stream bytes 128L + j (low nibble) and 128L + 64 + j (high nibble)][nb%8 tail
 *          blocks in GGUF's 16-byte form]  x = d * (q - 8)
 *   q4_Kr  GGUF's Q4_K super-blocks as three arrays per row of nsb = k/256 of them:
 *          [(d f16, dmin f16) x nsb][scales: 12 bytes x nsb][codes: 128 bytes x nsb]; the 256
 *          codes of a super-block interleaved like a group of 8 blocks (sub-block j in the place
 *          of block j) and packed like q4_0r's groups (byte 64L + i: stream bytes 128L + i low,
 *          128L + 64 + i high); the 8 scales and 8 mins (6 bits each) as plain fields: value t
 *          (sc_0..7, then m_0..7) in bits 6t..6t+5 of the 12 bytes (little-endian), which 4
 *          vector ops unpack (GGUF's packing takes ~15 scalar ones). The code array starts at
 *          16 * nsb bytes: 64-byte loads stay within cache lines when nsb is a multiple of 4.
 *   q8_Ki  the activations of q4_Kr, per row: [q s8 x k, interleaved per super-block][d f32 x nsb]
 *          [sa f32 x 8 nsb], Q8_K's quantization; sa_j = d * sum of sub-block j's q (one rounding)
 * q4_Kr's dot: y = sum_SB [(d * da) * sum_j sc_j * dot_j  -  sum_j (dmin * m_j) * sa_j], the first
 * sum in integers as GGUF's, the mins in float (one FMA of 8 lanes per super-block).
 *   q6_Kr  GGUF's Q6_K (16 sub-blocks of 16, int8 scales, 6-bit codes), 210-byte super-blocks
 *          {low 4 bits[128], high 2 bits[64], scales[16], d f16} (one sequential stream: as
 *          arrays per row, the hardware prefetcher lost the code arrays, measured); the codes
 *          interleaved by 16: stream byte 64t + 4b + x holds element 16b + 4t + x (sub-block b,
 *          t = 0..3, x = 0..3), so one vpdpbusd lane is one sub-block; low nibbles packed like
 *          q4_0r's groups (byte 64L + i: stream bytes 128L + i low, 128L + 64 + i high), high bits
 *          byte i: bits 2t, 2t+1 of stream byte 64t + i.  x = d * sc_b * (code - 32)
 *   q8_K16 the activations of q6_Kr: [q s8 x k interleaved like q6_Kr's codes][d f32 x nsb]
 *          [sums of each sub-block's 16 q, int32, 16 x nsb]; Q8_K's quantization
 * q6_Kr's dot: y = sum_SB (d * da) * sum_b sc_b * (dot_b - 32 * sum_b(q)), in integers as GGUF's.
 *   q4_1r, q5_0r, q5_1r  the other _0/_1 formats the way q4_0r is: [d f16 (and m f16: the _1
 *          formats store the pairs d, m) per block][per group of 8 blocks: q4_0r's 128 bytes of
 *          low 4 bits, then (5-bit formats) 32 bytes of fifth bits, bit s of the group's field for
 *          stream byte s][tail blocks: GGUF's 16 bytes of nibbles (and 4 of fifth bits)]. Scales
 *          and codes each in one array: a third array per row (m, or the fifth bits) made the
 *          hardware prefetcher lose the stream (measured).
 *          x = d * q + m (_1), d * (q - 16) (q5_0); activations q8_0s; the dot adds
 *          sum_b m_b * sd_b (_1) or subtracts 16 * sum_b d_b * sd_b (q5_0)
 *   q5_Kr  GGUF's Q5_K as q4_Kr's codes (low 4 bits interleaved and packed the same way) plus the
 *          fifth bits, in 176-byte super-blocks {low bits[128], high bits[32], scales[12] (plain
 *          6-bit fields as q4_Kr's), d f16, dmin f16}: high-bit byte s/8, bit s%8 belongs to stream
 *          byte s, so 8 bytes are a 64-bit mask over one 64-byte code vector. Activations: q8_Ki;
 *          the dot as q4_Kr's.
 *
 * The _0 dots compute y = sum_b dw_b * (da_b * dot(u_b, a_b)) - off * sum_b dw_b * sd_b with u the
 * stored unsigned codes (off = 8 or 128): the integer dot per block is exact, and the offset
 * term is one FMA per block instead of a second integer dot. Its float rounding is relative to
 * the size of the two terms, which for these codes is within a few times |y|'s terms. */
#include "../kdecl.h"
#include "../quant_blocks.h"

#include <string.h>

/* position of element e in the interleaved stream of a row of nb blocks */
static int64_t r8_pos(int64_t nb, int64_t e) {
    if (e >= nb / 8 * 256) return e;
    const int64_t g = e / 256, r = e % 256, b = r / 32, t = (r % 32) / 8, x = r % 8;
    return g * 256 + 64 * t + 8 * b + x;
}

/* ------------------------------------------------------------------ q8_0s (activations) */

void cke_quantize_row_q8_0s_ref(void *vy, const float *x, int64_t k) {
    const int64_t nb = k / QK;
    int8_t *q = vy;
    float *d = (float *)(q + k), *sd = d + nb;
    for (int64_t i = 0; i < nb; i++) {
        blk_q8_0 b;
        cke_quantize_row_q8_0_ref(&b, x + i * QK, QK);
        int32_t s = 0;
        for (int j = 0; j < QK; j++) {
            q[r8_pos(nb, i * QK + j)] = b.qs[j];
            s += b.qs[j];
        }
        d[i] = qb_h2f(b.d);
        sd[i] = d[i] * (float)s;
    }
}
void cke_dequantize_row_q8_0s_ref(float *y, const void *vx, int64_t k) {
    const int64_t nb = k / QK;
    const int8_t *q = vx;
    const float *d = (const float *)(q + k);
    for (int64_t e = 0; e < k; e++) y[e] = d[e / QK] * q[r8_pos(nb, e)];
}

/* ------------------------------------------------------------------ q8_0r */

void cke_repack_row_q8_0r_ref(void *vy, const void *vx, int64_t k) {
    const blk_q8_0 *x = vx;
    const int64_t nb = k / QK;
    uint16_t *d = vy;
    uint8_t *u = (uint8_t *)(d + nb);
    for (int64_t i = 0; i < nb; i++) {
        d[i] = x[i].d;
        for (int j = 0; j < QK; j++) u[r8_pos(nb, i * QK + j)] = (uint8_t)(x[i].qs[j] + 128);
    }
}
void cke_quantize_row_q8_0r_ref(void *vy, const float *x, int64_t k) {
    const int64_t nb = k / QK;
    uint16_t *d = vy;
    uint8_t *u = (uint8_t *)(d + nb);
    for (int64_t i = 0; i < nb; i++) { /* one block at a time: GGUF's quantizer, then its repacking */
        blk_q8_0 b;
        cke_quantize_row_q8_0_ref(&b, x + i * QK, QK);
        d[i] = b.d;
        for (int j = 0; j < QK; j++) u[r8_pos(nb, i * QK + j)] = (uint8_t)(b.qs[j] + 128);
    }
}
/* ------------------------------------------------------------------ q4_Kr */

/* GGUF qs byte 32c + l: low nibble = element 64c + l, high = 64c + 32 + l */
static int gguf_q4_K_code(const uint8_t *qs, int e) {
    const int c = e / 64, l = e % 32;
    return (e % 64) < 32 ? qs[32 * c + l] & 0x0F : qs[32 * c + l] >> 4;
}
/* position of element e of a super-block in the interleaved stream (r8_pos of one group) */
static int k8_pos(int e) { return (int)r8_pos(8, e); }
static int q4_Kr_code(const uint8_t *qs, int e) {
    const int r = k8_pos(e);
    return (qs[64 * (r / 128) + r % 64] >> ((r % 128) < 64 ? 0 : 4)) & 0x0F;
}
/* the plain 6-bit fields of q4_Kr's scales */
static int k6_get(const uint8_t *f, int t) {
    const int bit = 6 * t;
    const unsigned w = (unsigned)f[bit / 8] | (bit / 8 + 1 < 12 ? (unsigned)f[bit / 8 + 1] << 8 : 0u);
    return (int)((w >> (bit % 8)) & 63);
}
static void k6_set(uint8_t *f, int t, int v) {
    for (int i = 0; i < 6; i++)
        if (v >> i & 1) f[(6 * t + i) / 8] |= (uint8_t)(1u << ((6 * t + i) % 8));
}
/* one GGUF super-block into super-block i of a q4_Kr row of nsb */
static void q4_Kr_put(uint8_t *row, int64_t nsb, int64_t i, const blk_q4_K *b) {
    uint8_t *dd = row + 4 * i, *sc = row + 4 * nsb + 12 * i, *qs = row + 16 * nsb + 128 * i;
    memcpy(dd, &b->d, 2);
    memcpy(dd + 2, &b->dmin, 2);
    memset(sc, 0, 12);
    for (int j = 0; j < 8; j++) {
        uint8_t s6, m6;
        qb_scale_min_k4(j, b->scales, &s6, &m6);
        k6_set(sc, j, s6);
        k6_set(sc, 8 + j, m6);
    }
    memset(qs, 0, 128);
    for (int e = 0; e < QK_K; e++) {
        const int r = k8_pos(e);
        qs[64 * (r / 128) + r % 64] |= (uint8_t)(gguf_q4_K_code(b->qs, e) << ((r % 128) < 64 ? 0 : 4));
    }
}
void cke_repack_row_q4_Kr_ref(void *vy, const void *vx, int64_t k) {
    const blk_q4_K *x = vx;
    for (int64_t i = 0; i < k / QK_K; i++) q4_Kr_put(vy, k / QK_K, i, &x[i]);
}
void cke_quantize_row_q4_Kr_ref(void *vy, const float *x, int64_t k) {
    for (int64_t i = 0; i < k / QK_K; i++) { /* GGUF's quantizer one super-block at a time */
        blk_q4_K b;
        cke_quantize_row_q4_K_ref(&b, x + i * QK_K, QK_K);
        q4_Kr_put(vy, k / QK_K, i, &b);
    }
}
/* q8_Ki: Q8_K's quantization, qs interleaved, sub-block sums scaled */
void cke_quantize_row_q8_Ki_ref(void *vy, const float *x, int64_t k) {
    const int64_t nsb = k / QK_K;
    int8_t *q = vy;
    float *d = (float *)(q + k), *sa = d + nsb;
    for (int64_t i = 0; i < nsb; i++) {
        blk_q8_K b;
        cke_quantize_row_q8_K_ref(&b, x + i * QK_K, QK_K);
        d[i] = b.d;
        for (int e = 0; e < QK_K; e++) q[i * QK_K + k8_pos(e)] = b.qs[e];
        for (int j = 0; j < 8; j++) sa[8 * i + j] = b.d * (float)(b.bsums[2 * j] + b.bsums[2 * j + 1]);
    }
}
void cke_dequantize_row_q8_Ki_ref(float *y, const void *vx, int64_t k) {
    const int8_t *q = vx;
    const float *d = (const float *)(q + k);
    for (int64_t i = 0; i < k / QK_K; i++)
        for (int e = 0; e < QK_K; e++) y[i * QK_K + e] = d[i] * q[i * QK_K + k8_pos(e)];
}
void cke_dequantize_row_q4_Kr_ref(float *y, const void *vx, int64_t k) {
    const int64_t nsb = k / QK_K;
    const uint8_t *row = vx;
    for (int64_t i = 0; i < nsb; i++) {
        const uint8_t *dd = row + 4 * i, *sc = row + 4 * nsb + 12 * i, *qs = row + 16 * nsb + 128 * i;
        uint16_t dh, mh;
        memcpy(&dh, dd, 2);
        memcpy(&mh, dd + 2, 2);
        const float d = qb_h2f(dh), min = qb_h2f(mh);
        for (int j = 0; j < 8; j++) {
            const float d1 = d * (float)k6_get(sc, j), m1 = min * (float)k6_get(sc, 8 + j);
            for (int l = 0; l < 32; l++) y[i * QK_K + 32 * j + l] = d1 * (float)q4_Kr_code(qs, 32 * j + l) - m1;
        }
    }
}
static void cke_dot_rows_q4_Kr_ref(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int nr, int64_t k) {
    const int64_t nsb = k / QK_K;
    const uint8_t *row = vw;
    for (int r = 0; r < nr; r++) {
        const int8_t *q = (const int8_t *)((const char *)va + (size_t)r * as);
        const float *da = (const float *)(q + k), *sa = da + nsb;
        float acc = 0.0f, accm = 0.0f;
        for (int64_t i = 0; i < nsb; i++) {
            const uint8_t *dd = row + 4 * i, *sc = row + 4 * nsb + 12 * i, *qs = row + 16 * nsb + 128 * i;
            uint16_t dh, mh;
            memcpy(&dh, dd, 2);
            memcpy(&mh, dd + 2, 2);
            const float dmin = qb_h2f(mh);
            int32_t sumi = 0;
            for (int j = 0; j < 8; j++) {
                int32_t p = 0;
                for (int l = 0; l < 32; l++) p += q4_Kr_code(qs, 32 * j + l) * q[i * QK_K + k8_pos(32 * j + l)];
                sumi += k6_get(sc, j) * p;
                accm += (dmin * (float)k6_get(sc, 8 + j)) * sa[8 * i + j];
            }
            acc += (qb_h2f(dh) * da[i]) * (float)sumi;
        }
        y[(int64_t)r * ldy] = acc - accm;
    }
}
static void cke_vec_dot_q4_Kr_ref(float *s, const void *w, const void *a, int64_t k) { cke_dot_rows_q4_Kr_ref(s, 0, w, a, 0, 1, k); }

/* ------------------------------------------------------------------ q6_Kr */

/* position of element e of a super-block in the interleaved-by-16 stream */
static int k16_pos(int e) { return 64 * ((e % 16) / 4) + 4 * (e / 16) + e % 4; }
/* GGUF Q6_K code (0..63) of element e */
static int gguf_q6_K_code(const blk_q6_K *b, int e) {
    const int n = e / 128, r = e % 128, l = r % 32, quarter = r / 32;
    const uint8_t ql = b->ql[64 * n + (quarter & 1) * 32 + l], qh = b->qh[32 * n + l];
    return ((quarter < 2 ? ql & 0xF : ql >> 4) | (((qh >> (2 * quarter)) & 3) << 4));
}
static int q6_Kr_code(const uint8_t *ql, const uint8_t *qh, int e) {
    const int s = k16_pos(e);
    const int low = (ql[64 * (s / 128) + s % 64] >> ((s % 128) < 64 ? 0 : 4)) & 0xF;
    return low | (((qh[s % 64] >> (2 * (s / 64))) & 3) << 4);
}
static void q6_Kr_put(uint8_t *row, int64_t nsb, int64_t i, const blk_q6_K *b) {
    (void)nsb;
    uint8_t *ql = row + 210 * i, *qh = ql + 128, *sc = ql + 192;
    memcpy(ql + 208, &b->d, 2);
    memcpy(sc, b->scales, 16);
    memset(ql, 0, 128);
    memset(qh, 0, 64);
    for (int e = 0; e < QK_K; e++) {
        const int c = gguf_q6_K_code(b, e), s = k16_pos(e);
        ql[64 * (s / 128) + s % 64] |= (uint8_t)((c & 0xF) << ((s % 128) < 64 ? 0 : 4));
        qh[s % 64] |= (uint8_t)((c >> 4) << (2 * (s / 64)));
    }
}
void cke_repack_row_q6_Kr_ref(void *vy, const void *vx, int64_t k) {
    const blk_q6_K *x = vx;
    for (int64_t i = 0; i < k / QK_K; i++) q6_Kr_put(vy, k / QK_K, i, &x[i]);
}
void cke_quantize_row_q6_Kr_ref(void *vy, const float *x, int64_t k) {
    for (int64_t i = 0; i < k / QK_K; i++) {
        blk_q6_K b;
        cke_quantize_row_q6_K_ref(&b, x + i * QK_K, QK_K);
        q6_Kr_put(vy, k / QK_K, i, &b);
    }
}
void cke_dequantize_row_q6_Kr_ref(float *y, const void *vx, int64_t k) {
    const int64_t nsb = k / QK_K;
    const uint8_t *row = vx;
    for (int64_t i = 0; i < nsb; i++) {
        uint16_t dh;
        const uint8_t *ql = row + 210 * i, *qh = ql + 128;
        const int8_t *sc = (const int8_t *)(ql + 192);
        memcpy(&dh, ql + 208, 2);
        const float d = qb_h2f(dh);
        for (int e = 0; e < QK_K; e++) y[i * QK_K + e] = d * (float)sc[e / 16] * (float)(q6_Kr_code(ql, qh, e) - 32);
    }
}
void cke_quantize_row_q8_K16_ref(void *vy, const float *x, int64_t k) {
    const int64_t nsb = k / QK_K;
    int8_t *q = vy;
    float *d = (float *)(q + k);
    int32_t *bs = (int32_t *)(d + nsb);
    for (int64_t i = 0; i < nsb; i++) {
        blk_q8_K b;
        cke_quantize_row_q8_K_ref(&b, x + i * QK_K, QK_K);
        d[i] = b.d;
        for (int e = 0; e < QK_K; e++) q[i * QK_K + k16_pos(e)] = b.qs[e];
        for (int j = 0; j < 16; j++) bs[16 * i + j] = b.bsums[j];
    }
}
void cke_dequantize_row_q8_K16_ref(float *y, const void *vx, int64_t k) {
    const int8_t *q = vx;
    const float *d = (const float *)(q + k);
    for (int64_t i = 0; i < k / QK_K; i++)
        for (int e = 0; e < QK_K; e++) y[i * QK_K + e] = d[i] * q[i * QK_K + k16_pos(e)];
}
static void cke_dot_rows_q6_Kr_ref(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int nr, int64_t k) {
    const int64_t nsb = k / QK_K;
    const uint8_t *row = vw;
    for (int r = 0; r < nr; r++) {
        const int8_t *q = (const int8_t *)((const char *)va + (size_t)r * as);
        const float *da = (const float *)(q + k);
        const int32_t *bs = (const int32_t *)(da + nsb);
        float acc = 0.0f;
        for (int64_t i = 0; i < nsb; i++) {
            uint16_t dh;
            const uint8_t *ql = row + 210 * i, *qh = ql + 128;
            const int8_t *sc = (const int8_t *)(ql + 192);
            memcpy(&dh, ql + 208, 2);
            int32_t sumi = 0;
            for (int b = 0; b < 16; b++) {
                int32_t p = 0;
                for (int l = 0; l < 16; l++) p += q6_Kr_code(ql, qh, 16 * b + l) * q[i * QK_K + k16_pos(16 * b + l)];
                sumi += sc[b] * (p - 32 * bs[16 * i + b]);
            }
            acc += (qb_h2f(dh) * da[i]) * (float)sumi;
        }
        y[(int64_t)r * ldy] = acc;
    }
}
static void cke_vec_dot_q6_Kr_ref(float *s, const void *w, const void *a, int64_t k) { cke_dot_rows_q6_Kr_ref(s, 0, w, a, 0, 1, k); }

/* ------------------------------------------------------------------ q5_Kr */

static int gguf_q5_K_code(const blk_q5_K *b, int e) {
    const int c = e / 64, l = e % 32, hi = (e % 64) >= 32;
    const int low = hi ? b->qs[32 * c + l] >> 4 : b->qs[32 * c + l] & 0xF;
    return low | (((b->qh[l] >> (2 * c + hi)) & 1) << 4);
}
static int q5_Kr_code(const uint8_t *sb, int e) {
    const int s = k8_pos(e);
    const int low = (sb[64 * (s / 128) + s % 64] >> ((s % 128) < 64 ? 0 : 4)) & 0xF;
    return low | (((sb[128 + s / 8] >> (s % 8)) & 1) << 4);
}
static void q5_Kr_put(uint8_t *sb, const blk_q5_K *b) {
    memset(sb, 0, 176);
    for (int e = 0; e < QK_K; e++) {
        const int c = gguf_q5_K_code(b, e), s = k8_pos(e);
        sb[64 * (s / 128) + s % 64] |= (uint8_t)((c & 0xF) << ((s % 128) < 64 ? 0 : 4));
        sb[128 + s / 8] |= (uint8_t)((c >> 4) << (s % 8));
    }
    for (int j = 0; j < 8; j++) {
        uint8_t s6, m6;
        qb_scale_min_k4(j, b->scales, &s6, &m6);
        k6_set(sb + 160, j, s6);
        k6_set(sb + 160, 8 + j, m6);
    }
    memcpy(sb + 172, &b->d, 2);
    memcpy(sb + 174, &b->dmin, 2);
}
void cke_repack_row_q5_Kr_ref(void *vy, const void *vx, int64_t k) {
    const blk_q5_K *x = vx;
    for (int64_t i = 0; i < k / QK_K; i++) q5_Kr_put((uint8_t *)vy + 176 * i, &x[i]);
}
void cke_quantize_row_q5_Kr_ref(void *vy, const float *x, int64_t k) {
    for (int64_t i = 0; i < k / QK_K; i++) {
        blk_q5_K b;
        cke_quantize_row_q5_K_ref(&b, x + i * QK_K, QK_K);
        q5_Kr_put((uint8_t *)vy + 176 * i, &b);
    }
}
void cke_dequantize_row_q5_Kr_ref(float *y, const void *vx, int64_t k) {
    for (int64_t i = 0; i < k / QK_K; i++) {
        const uint8_t *sb = (const uint8_t *)vx + 176 * i;
        uint16_t dh, mh;
        memcpy(&dh, sb + 172, 2);
        memcpy(&mh, sb + 174, 2);
        const float d = qb_h2f(dh), min = qb_h2f(mh);
        for (int j = 0; j < 8; j++) {
            const float d1 = d * (float)k6_get(sb + 160, j), m1 = min * (float)k6_get(sb + 160, 8 + j);
            for (int l = 0; l < 32; l++) y[i * QK_K + 32 * j + l] = d1 * (float)q5_Kr_code(sb, 32 * j + l) - m1;
        }
    }
}
static void cke_dot_rows_q5_Kr_ref(float *y, int64_t ldy, const void *vw, const void *va, size_t as, int nr, int64_t k) {
    const int64_t nsb = k / QK_K;
    for (int r = 0; r < nr; r++) {
        const int8_t *q = (const int8_t *)((const char *)va + (size_t)r * as);
        const float *da = (const float *)(q + k), *sa = da + nsb;
        float acc = 0.0f, accm = 0.0f;
        for (int64_t i = 0; i < nsb; i++) {
            const uint8_t *sb = (const uint8_t *)vw + 176 * i;
            uint16_t dh, mh;
            memcpy(&dh, sb + 172, 2);
            memcpy(&mh, sb + 174, 2);
            const float dmin = qb_h2f(mh);
            int32_t sumi = 0;
            for (int j = 0; j < 8; j++) {
                int32_t p = 0;
                for (int l = 0; l < 32; l++) p += q5_Kr_code(sb, 32 * j + l) * q[i * QK_K + k8_pos(32 * j + l)];
                sumi += k6_get(sb + 160, j) * p;
                accm += (dmin * (float)k6_get(sb + 160, 8 + j)) * sa[8 * i + j];
            }
            acc += (qb_h2f(dh) * da[i]) * (float)sumi;
        }
        y[(int64_t)r * ldy] = acc - accm;
    }
}
static void cke_vec_dot_q5_Kr_ref(float *s, const void *w, const void *a, int64_t k) { cke_dot_rows_q5_Kr_ref(s, 0, w, a, 0, 1, k); }

/* ------------------------------------------------------------------ q8_0r, q4_0r, q4_1r, q5_0r, q5_1r */

/* The formats with Q8_0 activations, one spec: codes (bytes for q8_0r; low nibbles, with fifth
 * bits for the 5-bit formats), a scale d per block and either a min m (the _1 formats) or a
 * fixed offset (x = d * (q - off)). */
typedef struct { int byte_codes, has_min, has_high, off; } leg_fmt;
static const leg_fmt LEG_Q8_0 = {1, 0, 0, 128}, LEG_Q4_0 = {0, 0, 0, 8}, LEG_Q4_1 = {0, 1, 0, 0},
                     LEG_Q5_0 = {0, 0, 1, 16}, LEG_Q5_1 = {0, 1, 1, 0};
/* scale block i: d at leg_sc(i), m 2 bytes later (_1); codes from leg_c, groups of leg_gs bytes,
 * then tail blocks of leg_tb bytes */
static int64_t leg_sc(leg_fmt f, int64_t i) { return (f.has_min ? 4 : 2) * i; }
static int64_t leg_c(leg_fmt f, int64_t nb) { return (f.has_min ? 4 : 2) * nb; }
static int64_t leg_gs(leg_fmt f) { return f.has_high ? 160 : 128; }
static int64_t leg_tb(leg_fmt f) { return f.has_high ? 20 : 16; }
/* the byte and bit of element e's low nibble (sh 0 or 4) and of its fifth bit */
static void leg_at(leg_fmt f, int64_t nb, int64_t e, int64_t *lo, int *sh, int64_t *hi, int *bit) {
    const int64_t ng = nb / 8, c = leg_c(f, nb);
    if (e < ng * 256) {
        const int64_t p = r8_pos(nb, e), g = p / 256, r = p % 256;
        *lo = c + g * leg_gs(f) + 64 * (r / 128) + r % 64;
        *sh = (r % 128) < 64 ? 0 : 4;
        *hi = c + g * leg_gs(f) + 128 + r / 8;
        *bit = (int)(r % 8);
    } else {
        const int64_t i = e / QK, j = e % QK, tb = c + ng * leg_gs(f) + (i - ng * 8) * leg_tb(f);
        *lo = tb + j % 16;
        *sh = j < 16 ? 0 : 4;
        *hi = tb + 16 + j / 8;
        *bit = (int)(j % 8);
    }
}
static int leg_code(leg_fmt f, const uint8_t *row, int64_t nb, int64_t e) {
    if (f.byte_codes) return row[leg_c(f, nb) + r8_pos(nb, e)];
    int64_t lo, hi;
    int sh, bit;
    leg_at(f, nb, e, &lo, &sh, &hi, &bit);
    return ((row[lo] >> sh) & 0xF) | (f.has_high ? ((row[hi] >> bit) & 1) << 4 : 0);
}
static void leg_set(leg_fmt f, uint8_t *row, int64_t nb, int64_t e, int c) {
    int64_t lo, hi;
    int sh, bit;
    leg_at(f, nb, e, &lo, &sh, &hi, &bit);
    row[lo] |= (uint8_t)((c & 0xF) << sh);
    if (f.has_high && (c >> 4)) row[hi] |= (uint8_t)(1u << bit);
}
/* d and the block's min term (m, or -off * d) */
static void leg_scales(leg_fmt f, const uint8_t *row, int64_t i, float *d, float *min) {
    uint16_t dh, mh;
    memcpy(&dh, row + leg_sc(f, i), 2);
    *d = qb_h2f(dh);
    if (f.has_min) {
        memcpy(&mh, row + leg_sc(f, i) + 2, 2);
        *min = qb_h2f(mh);
    } else {
        *min = -(float)f.off * *d; /* a power of two: exact */
    }
}
/* one GGUF 4/5-bit block ({d, [m], [qh 4], qs 16}) into block i of a repacked row */
static void leg_put(leg_fmt f, uint8_t *row, int64_t nb, int64_t i, const uint8_t *blk) {
    memcpy(row + leg_sc(f, i), blk, f.has_min ? 4 : 2); /* d (and m) */
    const uint8_t *qh = blk + (f.has_min ? 4 : 2), *qs = qh + (f.has_high ? 4 : 0);
    uint32_t h = 0;
    if (f.has_high) memcpy(&h, qh, 4);
    for (int j = 0; j < QK; j++) {
        const int low = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
        leg_set(f, row, nb, i * QK + j, low | (int)(((h >> j) & 1u) << 4));
    }
}
static size_t leg_ts(leg_fmt f) { return 18 + (f.has_min ? 2 : 0) + (f.has_high ? 4 : 0); }
static void leg_repack(leg_fmt f, void *vy, const void *vx, int64_t k) {
    const int64_t nb = k / QK;
    memset(vy, 0, (size_t)nb * leg_ts(f));
    for (int64_t i = 0; i < nb; i++) leg_put(f, vy, nb, i, (const uint8_t *)vx + (size_t)i * leg_ts(f));
}
static void leg_dequant(leg_fmt f, float *y, const void *vx, int64_t k) {
    const int64_t nb = k / QK;
    for (int64_t e = 0; e < k; e++) {
        float d, min;
        leg_scales(f, vx, e / QK, &d, &min);
        const int c = leg_code(f, vx, nb, e);
        /* d * (q - off) as one product: the sum d * q + min would turn a -0 into +0 */
        y[e] = f.has_min ? d * (float)c + min : d * (float)(c - f.off);
    }
}
/* y = sum_b dw_b (da_b dot_b) + sum_b min_b sd_b, min_b = m_b (_1) or -off dw_b */
static void leg_dot_rows(leg_fmt f, float *y, int64_t ldy, const void *w, const void *a, size_t as, int nr, int64_t k) {
    const int64_t nb = k / QK;
    for (int r = 0; r < nr; r++) {
        const int8_t *q = (const int8_t *)((const char *)a + (size_t)r * as);
        const float *da = (const float *)(q + k), *sd = da + nb;
        float acc = 0.0f, accm = 0.0f;
        for (int64_t i = 0; i < nb; i++) {
            int32_t s = 0;
            for (int j = 0; j < QK; j++) s += leg_code(f, w, nb, i * QK + j) * q[r8_pos(nb, i * QK + j)];
            float d, min;
            leg_scales(f, w, i, &d, &min);
            acc += d * (da[i] * (float)s);
            accm += min * sd[i];
        }
        y[(int64_t)r * ldy] = acc + accm;
    }
}
#define LEG_FNS(t, F, T)                                                                            \
    void cke_repack_row_##t##_ref(void *y, const void *x, int64_t k) { leg_repack(F, y, x, k); }     \
    void cke_dequantize_row_##t##_ref(float *y, const void *x, int64_t k) { leg_dequant(F, y, x, k); } \
    void cke_quantize_row_##t##_ref(void *vy, const float *x, int64_t k) {                          \
        const int64_t nb = k / QK;                                                                  \
        memset(vy, 0, (size_t)nb * leg_ts(F));                                                      \
        for (int64_t i = 0; i < nb; i++) { /* GGUF's quantizer one block at a time */              \
            T b;                                                                                    \
            cke_quantize_row_##t##_gguf(&b, x + i * QK, QK);                                        \
            leg_put(F, vy, nb, i, (const uint8_t *)&b);                                             \
        }                                                                                           \
    }                                                                                               \
    static void cke_dot_rows_##t##_ref(float *y, int64_t ldy, const void *w, const void *a, size_t as, int nr, int64_t k) { \
        leg_dot_rows(F, y, ldy, w, a, as, nr, k);                                                   \
    }                                                                                               \
    static void cke_vec_dot_##t##_ref(float *s, const void *w, const void *a, int64_t k) { cke_dot_rows_##t##_ref(s, 0, w, a, 0, 1, k); }
#define cke_quantize_row_q4_0r_gguf cke_quantize_row_q4_0_ref
#define cke_quantize_row_q4_1r_gguf cke_quantize_row_q4_1_ref
#define cke_quantize_row_q5_0r_gguf cke_quantize_row_q5_0_ref
#define cke_quantize_row_q5_1r_gguf cke_quantize_row_q5_1_ref
LEG_FNS(q4_0r, LEG_Q4_0, blk_q4_0)
LEG_FNS(q4_1r, LEG_Q4_1, blk_q4_1)
LEG_FNS(q5_0r, LEG_Q5_0, blk_q5_0)
LEG_FNS(q5_1r, LEG_Q5_1, blk_q5_1)
/* q8_0r: its own repack and quantizer (byte codes), the shared dequantization and dot */
void cke_dequantize_row_q8_0r_ref(float *y, const void *x, int64_t k) { leg_dequant(LEG_Q8_0, y, x, k); }
static void cke_dot_rows_q8_0r_ref(float *y, int64_t ldy, const void *w, const void *a, size_t as, int nr, int64_t k) {
    leg_dot_rows(LEG_Q8_0, y, ldy, w, a, as, nr, k);
}
static void cke_vec_dot_q8_0r_ref(float *s, const void *w, const void *a, int64_t k) { cke_dot_rows_q8_0r_ref(s, 0, w, a, 0, 1, k); }

/* ------------------------------------------------------------------ ops tables */

#define OPS_R(nm, t, b, sz, vdt, of)                                                                \
    static void gemv_##t(float *y, const void *w, size_t rs, int64_t nw, const void *a, int64_t k) {  \
        for (int64_t n = 0; n < nw; n++) cke_dot_rows_##t##_ref(y + n, 0, (const char *)w + (size_t)n * rs, a, 0, 1, k); \
    }                                                                                               \
    const cke_qtype_ops cke_qops_##t##_ref = {                                                      \
        .name = nm, .blck = b, .type_size = sz, .vec_dot_type = vdt, .quantize_row = cke_quantize_row_##t##_ref, \
        .dequantize_row = cke_dequantize_row_##t##_ref, .vec_dot = cke_vec_dot_##t##_ref, .repack_of = of,       \
        .repack_row = cke_repack_row_##t##_ref, .dot_rows = cke_dot_rows_##t##_ref, .gemv = gemv_##t}
OPS_R("q8_0r", q8_0r, QK, 34, QT_Q8_0S, QT_Q8_0);
OPS_R("q4_0r", q4_0r, QK, 18, QT_Q8_0S, QT_Q4_0);
OPS_R("q4_Kr", q4_Kr, QK_K, 144, QT_Q8_KI, QT_Q4_K);
OPS_R("q6_Kr", q6_Kr, QK_K, 210, QT_Q8_K16, QT_Q6_K);
OPS_R("q5_Kr", q5_Kr, QK_K, 176, QT_Q8_KI, QT_Q5_K);
OPS_R("q4_1r", q4_1r, QK, 20, QT_Q8_0S, QT_Q4_1);
OPS_R("q5_0r", q5_0r, QK, 22, QT_Q8_0S, QT_Q5_0);
OPS_R("q5_1r", q5_1r, QK, 24, QT_Q8_0S, QT_Q5_1);
const cke_qtype_ops cke_qops_q8_0s_ref = {.name = "q8_0s", .blck = QK, .type_size = 40, .vec_dot_type = QT_Q8_0S,
                                          .quantize_row = cke_quantize_row_q8_0s_ref,
                                          .dequantize_row = cke_dequantize_row_q8_0s_ref}; /* activations only */
const cke_qtype_ops cke_qops_q8_Ki_ref = {.name = "q8_Ki", .blck = QK_K, .type_size = 292, .vec_dot_type = QT_Q8_KI,
                                          .quantize_row = cke_quantize_row_q8_Ki_ref,
                                          .dequantize_row = cke_dequantize_row_q8_Ki_ref}; /* activations only */
const cke_qtype_ops cke_qops_q8_K16_ref = {.name = "q8_K16", .blck = QK_K, .type_size = 324, .vec_dot_type = QT_Q8_K16,
                                           .quantize_row = cke_quantize_row_q8_K16_ref,
                                           .dequantize_row = cke_dequantize_row_q8_K16_ref}; /* activations only */

int cke_qtype_repacked(int qtype) {
    static const int map[][2] = {{QT_Q8_0, QT_Q8_0R}, {QT_Q4_0, QT_Q4_0R}, {QT_Q4_K, QT_Q4_KR}, {QT_Q5_K, QT_Q5_KR}, {QT_Q6_K, QT_Q6_KR},
                                 {QT_Q4_1, QT_Q4_1R}, {QT_Q5_0, QT_Q5_0R}, {QT_Q5_1, QT_Q5_1R}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i][0] == qtype) return map[i][1];
    return qtype;
}
