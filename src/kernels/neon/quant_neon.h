/* Quantized dot products for aarch64, written once for the two NEON levels:
 *   QN_DOT 0 (neon/quant.c, armv8-a):        16 int8 products by vmull_s8 + vpadalq_s16
 *   QN_DOT 1 (neon/dot/quant.c, +dotprod):   vdotq_s32 (sdot), 4 products per int32 lane
 * GGUF layouts only (vec_dot against Q8_0 / Q8_K activations): the repacked layouts are built
 * for AVX-512's vpdpbusd, so models compiled for aarch64 keep the GGUF layout (compile.c) and
 * the neon tables point the repacked formats at the _ref. Every block's integer sum is exact
 * and the float steps are the _ref's, in the _ref's order: results equal the _ref's bit for bit
 * (F16 aside: 4-lane float accumulators). Formats without a NEON dot here (Q4_1, Q5_x, Q5_K,
 * BF16) use the _ref's vec_dot: decode of those formats is rare on the small boards this is for. */
#include "../kdecl.h"
#include "../quant_blocks.h"
#include "ndecl.h"

#include <arm_neon.h>

#define QN_CAT2(a, b) a##_##b
#define QN_CAT(a, b) QN_CAT2(a, b)
#define QN_FN(name) QN_CAT(name, QN_SFX)

/* sum of the 16 products a[i] * b[i] (int8 x int8: exact in int32) */
static inline int32_t QN_FN(dot16)(int8x16_t a, int8x16_t b) {
#if QN_DOT
    return vaddvq_s32(vdotq_s32(vdupq_n_s32(0), a, b));
#else
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    s = vpadalq_s16(s, vmull_high_s8(a, b));
    return vaddvq_s32(s);
#endif
}
/* the 32 products of two 16-lane pairs */
static inline int32_t QN_FN(dot32)(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
#if QN_DOT
    return vaddvq_s32(vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, b0), a1, b1));
#else
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(a0), vget_low_s8(b0)));
    s = vpadalq_s16(s, vmull_high_s8(a0, b0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(a1), vget_low_s8(b1)));
    s = vpadalq_s16(s, vmull_high_s8(a1, b1));
    return vaddvq_s32(s);
#endif
}

/* F16 weights against f32 activations: widened by fcvtl (exact), 2 x 4 float accumulators */
void QN_FN(cke_vec_dot_f16)(float *s, const void *vw, const void *va, int64_t k) {
    const uint16_t *w = vw; /* [k] */
    const float *a = va;    /* [k] */
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(w + i));
        acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vget_low_f16(h)), vld1q_f32(a + i));
        acc1 = vfmaq_f32(acc1, vcvt_high_f32_f16(h), vld1q_f32(a + i + 4));
    }
    float t = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < k; i++) t += qb_h2f(w[i]) * a[i];
    *s = t;
}

void QN_FN(cke_vec_dot_q8_0)(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q8_0 *w = vw, *a = va;
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        int32_t sumi = QN_FN(dot32)(vld1q_s8(w[i].qs), vld1q_s8(w[i].qs + 16), vld1q_s8(a[i].qs),
                                    vld1q_s8(a[i].qs + 16));
        acc += (float)sumi * (qb_h2f(w[i].d) * qb_h2f(a[i].d));
    }
    *s = acc;
}

/* Q4_0: low nibbles are elements 0..15, high nibbles 16..31, each minus 8 */
void QN_FN(cke_vec_dot_q4_0)(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q4_0 *w = vw;
    const blk_q8_0 *a = va;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        uint8x16_t q = vld1q_u8(w[i].qs);
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), eight);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
        int32_t sumi = QN_FN(dot32)(lo, hi, vld1q_s8(a[i].qs), vld1q_s8(a[i].qs + 16));
        acc += (float)sumi * (qb_h2f(w[i].d) * qb_h2f(a[i].d));
    }
    *s = acc;
}

/* Q4_K: chunk c of 32 bytes holds sub-block 2c (low nibbles) and 2c + 1 (high nibbles); q in
 * 0..15 fits int8. sum_j (d sc_j sum q a - dmin m_j sum a), sum a from the bsums (the _ref's) */
void QN_FN(cke_vec_dot_q4_K)(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q4_K *w = vw;
    const blk_q8_K *a = va;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        int32_t sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            uint8x16_t q0 = vld1q_u8(w[i].qs + 32 * c), q1 = vld1q_u8(w[i].qs + 32 * c + 16);
            const int8_t *ac = a[i].qs + 64 * c;
            int32_t plo = QN_FN(dot32)(vreinterpretq_s8_u8(vandq_u8(q0, m4)), vreinterpretq_s8_u8(vandq_u8(q1, m4)),
                                       vld1q_s8(ac), vld1q_s8(ac + 16));
            int32_t phi = QN_FN(dot32)(vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)),
                                       vld1q_s8(ac + 32), vld1q_s8(ac + 48));
            uint8_t sc0, mn0, sc1, mn1;
            qb_scale_min_k4(2 * c, w[i].scales, &sc0, &mn0);
            qb_scale_min_k4(2 * c + 1, w[i].scales, &sc1, &mn1);
            sumi += sc0 * plo + sc1 * phi;
            summ += mn0 * (a[i].bsums[4 * c] + a[i].bsums[4 * c + 1]) + mn1 * (a[i].bsums[4 * c + 2] + a[i].bsums[4 * c + 3]);
        }
        acc += a[i].d * qb_h2f(w[i].d) * (float)sumi - a[i].d * qb_h2f(w[i].dmin) * (float)summ;
    }
    *s = acc;
}

/* Q6_K: per half n (128 elements), 16 lanes l of ql[0..64) / qh[0..32) give four runs of 16:
 * q = (4 low bits | 2 high bits << 4) - 32; each run of 16 is one sub-block with its scale */
void QN_FN(cke_vec_dot_q6_K)(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q6_K *w = vw;
    const blk_q8_K *a = va;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03);
    const int8x16_t m32 = vdupq_n_s8(32);
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        int32_t sumi = 0;
        for (int n = 0; n < 2; n++) {
            const uint8_t *ql = w[i].ql + 64 * n, *qh = w[i].qh + 32 * n;
            const int8_t *ac = a[i].qs + 128 * n;
            const int8_t *sc = w[i].scales + 8 * n;
            for (int h = 0; h < 2; h++) { /* lanes l = 16 h .. 16 h + 15 */
                uint8x16_t l0 = vld1q_u8(ql + 16 * h), l1 = vld1q_u8(ql + 32 + 16 * h), hb = vld1q_u8(qh + 16 * h);
                int8x16_t q0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4))), m32);
                int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4))), m32);
                int8x16_t q2 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4))), m32);
                int8x16_t q3 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4))), m32);
                /* element offsets 16 h + {0, 32, 64, 96}: sub-blocks h, 2 + h, 4 + h, 6 + h */
                sumi += sc[h] * QN_FN(dot16)(q0, vld1q_s8(ac + 16 * h));
                sumi += sc[2 + h] * QN_FN(dot16)(q1, vld1q_s8(ac + 32 + 16 * h));
                sumi += sc[4 + h] * QN_FN(dot16)(q2, vld1q_s8(ac + 64 + 16 * h));
                sumi += sc[6 + h] * QN_FN(dot16)(q3, vld1q_s8(ac + 96 + 16 * h));
            }
        }
        acc += a[i].d * qb_h2f(w[i].d) * (float)sumi;
    }
    *s = acc;
}

/* The ops of the formats with a NEON dot; quantize/dequantize are the _ref's (once per model,
 * per weight panel, or ~K per decode row against the N*K of the product). */
#define QN_OPS(t, nm, b, sz, vdt)                                                                  \
    const cke_qtype_ops QN_CAT(cke_qops_##t, QN_SFX) = {                                           \
        .name = nm, .blck = b, .type_size = sz, .vec_dot_type = vdt,                               \
        .quantize_row = cke_quantize_row_##t##_ref, .dequantize_row = cke_dequantize_row_##t##_ref, \
        .vec_dot = QN_FN(cke_vec_dot_##t)}
QN_OPS(f16, "f16", 1, 2, QT_F32);
QN_OPS(q8_0, "q8_0", QK, 34, QT_Q8_0);
QN_OPS(q4_0, "q4_0", QK, 18, QT_Q8_0);
QN_OPS(q4_K, "q4_K", QK_K, 144, QT_Q8_K);
QN_OPS(q6_K, "q6_K", QK_K, 210, QT_Q8_K);
