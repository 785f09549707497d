/* ggml block layouts (GGUF tensor data, bit for bit) and the scalar helpers every ISA's quant.c
 * shares. Sizes are checked at compile time against the type sizes GGUF files declare. */
#ifndef CKE_QUANT_BLOCKS_H
#define CKE_QUANT_BLOCKS_H

#include <stdint.h>
#include <string.h>

#define QK 32    /* elements per block of the _0/_1 formats */
#define QK_K 256 /* elements per super-block of the K formats */

/* ggml type ids (formats/dtype.h; repeated here: the kernel library does not link libcke) */
enum {
    QT_F32 = 0, QT_F16 = 1, QT_Q4_0 = 2, QT_Q4_1 = 3, QT_Q5_0 = 6, QT_Q5_1 = 7, QT_Q8_0 = 8,
    QT_Q8_1 = 9, QT_Q2_K = 10, QT_Q3_K = 11, QT_Q4_K = 12, QT_Q5_K = 13, QT_Q6_K = 14,
    QT_Q8_K = 15, QT_BF16 = 30,
    /* cke's repacked formats (ref/quant_r.c) and their split activation format */
    QT_Q8_0R = 40, QT_Q4_0R = 41, QT_Q4_KR = 42, QT_Q8_0S = 43, QT_Q8_KI = 44, QT_Q6_KR = 45, QT_Q8_K16 = 46, QT_Q5_KR = 47, QT_Q4_1R = 48, QT_Q5_0R = 49, QT_Q5_1R = 50
};

typedef struct { uint16_t d; int8_t qs[QK]; } blk_q8_0;                     /* x = d * q */
typedef struct { uint16_t d, s; int8_t qs[QK]; } blk_q8_1;                  /* s = d * sum(q) */
typedef struct { uint16_t d; uint8_t qs[QK / 2]; } blk_q4_0;                /* x = d * (q - 8) */
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } blk_q4_1;             /* x = d * q + m */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } blk_q5_0; /* x = d * (q - 16) */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } blk_q5_1;
/* K formats: 8 sub-blocks of 32 with 6-bit scales and mins packed in 12 bytes */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } blk_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } blk_q5_K;
/* 16 sub-blocks of 16 with int8 scales; q in 0..63 stored as 4 low bits + 2 high bits */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } blk_q6_K;
/* activations of the K formats: float scale, bsums = sums of 16 consecutive q */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } blk_q8_K;

_Static_assert(sizeof(blk_q8_0) == 34, "q8_0");
_Static_assert(sizeof(blk_q8_1) == 36, "q8_1");
_Static_assert(sizeof(blk_q4_0) == 18, "q4_0");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1");
_Static_assert(sizeof(blk_q4_K) == 144, "q4_K");
_Static_assert(sizeof(blk_q5_K) == 176, "q5_K");
_Static_assert(sizeof(blk_q6_K) == 210, "q6_K");
_Static_assert(sizeof(blk_q8_K) == 292, "q8_K");

static inline uint32_t qb_f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float qb_u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* IEEE half -> float, exact. */
static inline float qb_h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return qb_u2f(sign | 0x7f800000u | (man << 13));
    if (exp == 0) return qb_u2f(sign | qb_f2u((float)man * qb_u2f(0x33800000u)));
    return qb_u2f(sign | ((exp + 112) << 23) | (man << 13));
}

/* float -> IEEE half, round to nearest even (what ggml's GGML_FP32_TO_FP16 / F16C do). */
static inline uint16_t qb_f2h(float f) {
    uint32_t u = qb_f2u(f), sign = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) {
        float v = qb_u2f(a) * qb_u2f(0x4b800000u);
        uint32_t m = (uint32_t)v;
        float r = v - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t h = (((a >> 23) - 112) << 10) | ((a >> 13) & 0x3ff), rest = a & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline float qb_bf2f(uint16_t h) { return qb_u2f((uint32_t)h << 16); }
static inline uint16_t qb_f2bf(float f) {
    uint32_t u = qb_f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* The rounding of AVX512_BF16's vcvtneps2bf16: nearest even, NaN made quiet, and (unlike
 * qb_f2bf) denormal inputs flushed to signed zero, as the instruction does. The BF16 GEMM packs
 * (ref, generic and AVX-512) all round with it, so they feed the same bf16 values. */
static inline uint16_t qb_f2bf_daz(float f) {
    uint32_t u = qb_f2u(f);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    return qb_f2bf(f);
}

/* ggml's nearest_int: round half to even through the float adder (|x| < 2^22). */
static inline int qb_nearest_int(float x) {
    float v = x + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* 6-bit scale and min j (0..7) of a Q4_K/Q5_K super-block's 12 packed bytes. */
static inline void qb_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
