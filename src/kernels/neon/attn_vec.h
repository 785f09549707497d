/* 4-lane float vector layer (Advanced SIMD, 128-bit) for the shared templates (attn_simd.h,
 * loss_simd.h, optim_simd.h, act_simd.h, norm_simd.h, rope_simd.h): the same functions as
 * avx2/attn_vec.h + vec_ext.h; exp/tanh/sigmoid/ncdf come from vmath.h. Masks are per-lane
 * all-ones words; NEON has no masked loads, so masked accesses go lane by lane (tails only).
 * Compiled only with the neon folder's flags (Makefile). */
#ifndef CKE_NEON_ATTN_VEC_H
#define CKE_NEON_ATTN_VEC_H
#include <arm_neon.h>
#include <stdint.h>

#include "vmath.h"

#define VL 4
typedef float32x4_t vf;
typedef uint32x4_t vmk; /* all-ones / all-zeros lanes */
#define KA_MR 4         /* 4 x 4 tiles: 16 accumulators + 4 loads + broadcasts in 32 registers */
#define KA_NV 4
#define KB_MR 4
#define KB_NV 4
#define ISA_FN(x) x##_neon

static inline vf vzero(void) { return vdupq_n_f32(0.0f); }
static inline vf vset1(float x) { return vdupq_n_f32(x); }
static inline vf vld(const float *p) { return vld1q_f32(p); }
static inline void vst(float *p, vf v) { vst1q_f32(p, v); }
static inline uint32x4_t v4_iota(void) { const uint32_t i[4] = {0, 1, 2, 3}; return vld1q_u32(i); }
static inline vmk vmk_n(int64_t n) { return vcltq_u32(v4_iota(), vdupq_n_u32((uint32_t)(n > 4 ? 4 : n < 0 ? 0 : n))); }
static inline vf vldm(const float *p, vmk m) {
    uint32_t b[4];
    float t[4];
    vst1q_u32(b, m);
    for (int i = 0; i < 4; i++) t[i] = b[i] ? p[i] : 0.0f;
    return vld1q_f32(t);
}
static inline void vstm(float *p, vmk m, vf v) {
    uint32_t b[4];
    float t[4];
    vst1q_u32(b, m);
    vst1q_f32(t, v);
    for (int i = 0; i < 4; i++)
        if (b[i]) p[i] = t[i];
}
static inline vf vfma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vmul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vadd(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vsub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vdiv(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vsqrt(vf a) { return vsqrtq_f32(a); }
static inline vf vmax(vf a, vf b) { return vmaxq_f32(a, b); }
static inline float vhmax(vf a) { return vmaxvq_f32(a); }
static inline float vhsum(vf a) { return vaddvq_f32(a); }
/* lanes i with a <= col0 + i < b */
static inline vmk vmk_range(int64_t col0, int64_t a, int64_t b) {
    int32x4_t c = vaddq_s32(vdupq_n_s32((int32_t)col0), vreinterpretq_s32_u32(v4_iota()));
    return vandq_u32(vcgeq_s32(c, vdupq_n_s32((int32_t)a)), vcltq_s32(c, vdupq_n_s32((int32_t)b)));
}
static inline vf vsel(vmk m, vf if0, vf if1) { return vbslq_f32(m, if1, if0); }
typedef float64x2_t vd;
static inline void vacc_d(vd *acc, vf x) {
    *acc = vaddq_f64(*acc, vcvt_f64_f32(vget_low_f32(x)));
    *acc = vaddq_f64(*acc, vcvt_high_f64_f32(x));
}
static inline vd vdzero(void) { return vdupq_n_f64(0.0); }
static inline double vdhsum(vd a) { return vaddvq_f64(a); }
static inline vmk vlt(vf a, vf b) { return vcltq_f32(a, b); }
static inline vf vabs(vf a) { return vabsq_f32(a); }

/* exp and tanh from vmath.h (v4_exp ~1-2 ulp, v4_tanh ~2-3 ulp) */
static inline vf vexp(vf x) { return v4_exp(x); }
static inline vf vtanh(vf x) { return v4_tanh(x); }

/* ---- what x86 gets from ../vec_ext.h ---- */
static inline vf vld_n(const float *p, int64_t n) { return v4_load_n(p, n); }
static inline vf vld_n_fill(const float *p, int64_t n, float fill) { return v4_load_n_fill(p, n, fill); }
static inline void vst_n(float *p, vf v, int64_t n) { v4_store_n(p, v, n); }
static inline vf vfms(vf a, vf b, vf c) { return v4_fmsub(a, b, c); }  /* a b - c */
static inline vf vfnma(vf a, vf b, vf c) { return v4_fnmadd(a, b, c); } /* c - a b */
static inline vf vsigmoid(vf x) { return v4_sigmoid(x); }
static inline void vsigmoid_pair(vf x, vf *s, vf *oms) { v4_sigmoid_pair(x, s, oms); }
static inline vf vncdf(vf x) { return v4_ncdf(x); }
static inline vf vexp_mhalfsq(vf x) { return v4_exp_mhalfsq(x); }
/* RoPE, interleaved pairs: (x1, x0, x3, x2); even / odd lanes duplicated */
static inline vf vswap_pairs(vf x) { return vrev64q_f32(x); }
static inline vf vdup_even(vf x) { return vtrn1q_f32(x, x); }
static inline vf vdup_odd(vf x) { return vtrn2q_f32(x, x); }
/* even lanes a b - c, odd lanes a b + c (x86 fmaddsub), and the converse: c's sign flipped per
 * lane (exact), then one fused multiply-add */
static inline vf v4_alt_sign(vf c, int neg_even) {
    const uint32_t e[4] = {0x80000000u, 0, 0x80000000u, 0}, o[4] = {0, 0x80000000u, 0, 0x80000000u};
    return vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(c), vld1q_u32(neg_even ? e : o)));
}
static inline vf vfmaddsub(vf a, vf b, vf c) { return vfmaq_f32(v4_alt_sign(c, 1), a, b); }
static inline vf vfmsubadd(vf a, vf b, vf c) { return vfmaq_f32(v4_alt_sign(c, 0), a, b); }

/* cos / sin of pairs [0, n), n <= VL, from interleaved (cos, sin) c */
static inline void vcs_split(vf *co, vf *si, const float *c, int64_t n) {
    vf a = v4_load_n(c, 2 * n), b = v4_load_n(c + VL, 2 * n - VL);
    *co = vuzp1q_f32(a, b);
    *si = vuzp2q_f32(a, b);
}

/* ---- the attention template's conversions and K-pack transposes (x86: ../attn_x86.h) ---- */
static inline void v4_tr4x4(float *dst, int64_t ld, float32x4_t r0, float32x4_t r1, float32x4_t r2,
                            float32x4_t r3, float32x4_t sc) {
    float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1);
    float32x4_t t2 = vtrn1q_f32(r2, r3), t3 = vtrn2q_f32(r2, r3);
    float64x2_t u0 = vreinterpretq_f64_f32(t0), u1 = vreinterpretq_f64_f32(t1);
    float64x2_t u2 = vreinterpretq_f64_f32(t2), u3 = vreinterpretq_f64_f32(t3);
    vst1q_f32(dst + 0 * ld, vmulq_f32(sc, vreinterpretq_f32_f64(vtrn1q_f64(u0, u2))));
    vst1q_f32(dst + 1 * ld, vmulq_f32(sc, vreinterpretq_f32_f64(vtrn1q_f64(u1, u3))));
    vst1q_f32(dst + 2 * ld, vmulq_f32(sc, vreinterpretq_f32_f64(vtrn2q_f64(u0, u2))));
    vst1q_f32(dst + 3 * ld, vmulq_f32(sc, vreinterpretq_f32_f64(vtrn2q_f64(u1, u3))));
}
static inline float32x4_t v4_ld4h(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
/* dst[d][j] = scale * src[j][d0 + d], d, j < 8: four 4x4 transposes */
static inline void vtr8x8(float *dst, int64_t ld, const float *const *src, int64_t d0, float scale) {
    float32x4_t sc = vdupq_n_f32(scale);
    for (int j = 0; j < 8; j += 4)
        for (int d = 0; d < 8; d += 4)
            v4_tr4x4(dst + d * ld + j, ld, vld1q_f32(src[j] + d0 + d), vld1q_f32(src[j + 1] + d0 + d),
                     vld1q_f32(src[j + 2] + d0 + d), vld1q_f32(src[j + 3] + d0 + d), sc);
}
/* the same from f16 rows, widened exactly (fcvtl) */
static inline void vtr8x8h(float *dst, int64_t ld, const uint16_t *const *src, int64_t d0, float scale) {
    float32x4_t sc = vdupq_n_f32(scale);
    for (int j = 0; j < 8; j += 4)
        for (int d = 0; d < 8; d += 4)
            v4_tr4x4(dst + d * ld + j, ld, v4_ld4h(src[j] + d0 + d), v4_ld4h(src[j + 1] + d0 + d),
                     v4_ld4h(src[j + 2] + d0 + d), v4_ld4h(src[j + 3] + d0 + d), sc);
}
static inline float vh2f(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
static inline void vwiden8h(float *dst, const uint16_t *p) {
    vst1q_f32(dst, v4_ld4h(p));
    vst1q_f32(dst + 4, v4_ld4h(p + 4));
}
/* dst[0..8) = d * q[0..8): a Q8_0 block's values, one multiply as the format defines */
static inline void vdequant8_q8(float *dst, const int8_t *q, float d) {
    int16x8_t w = vmovl_s8(vld1_s8(q));
    float32x4_t dv = vdupq_n_f32(d);
    vst1q_f32(dst, vmulq_f32(dv, vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)))));
    vst1q_f32(dst + 4, vmulq_f32(dv, vcvtq_f32_s32(vmovl_high_s16(w))));
}
/* f32 -> f16, round to nearest even (fcvtn under the default FPCR rounding) */
static inline void vnarrow8h(uint16_t *dst, const float *src) {
    vst1_u16(dst, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src))));
    vst1_u16(dst + 4, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + 4))));
}
static inline uint16_t vf2h(float x) { return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(x))), 0); }
#endif
