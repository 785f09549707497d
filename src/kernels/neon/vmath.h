/* Vector math for the NEON kernels (header-only, static inline; shared by act/norm/attn/loss).
 * Same algorithms and coefficients as avx2/vmath.h and avx512/vmath.h (see there), 4 lanes,
 * with the same accuracy: FMA is fused on both (vfmaq_f32), rounding to nearest even
 * (vrndnq_f32) as _MM_FROUND_TO_NEAREST_INT:
 *   v4_exp ~1-2 ulp; exp(x) -> +inf above ~88.72, -> 0 below ~-103.9, subnormals in between.
 *   v4_sigmoid, v4_tanh ~2-3 ulp; v4_ncdf (normal CDF, rel. error < 5e-7 on both tails), v4_erf.
 * Compiled only with the neon folder's flags (Makefile). */
#ifndef CKE_NEON_VMATH_H
#define CKE_NEON_VMATH_H

#include <arm_neon.h>
#include <stdint.h>

/* Load/store the first n (<= 4) floats; n >= 4 is a plain full-width access. Lanes past n load
 * as 0 (or fill) and are never touched in memory: NEON has no masked access, the tail goes
 * through a small buffer. */
static inline float32x4_t v4_load_n_fill(const float *p, int64_t n, float fill) {
    if (n >= 4) return vld1q_f32(p);
    float t[4] = {fill, fill, fill, fill};
    for (int64_t i = 0; i < n; i++) t[i] = p[i];
    return vld1q_f32(t);
}
static inline float32x4_t v4_load_n(const float *p, int64_t n) { return v4_load_n_fill(p, n, 0.0f); }
static inline void v4_store_n(float *p, float32x4_t v, int64_t n) {
    if (n >= 4) { vst1q_f32(p, v); return; }
    float t[4];
    vst1q_f32(t, v);
    for (int64_t i = 0; i < n; i++) p[i] = t[i];
}

static inline float32x4_t v4_abs(float32x4_t x) { return vabsq_f32(x); }
/* |a| with the sign of s */
static inline float32x4_t v4_copysign(float32x4_t a, float32x4_t s) {
    return vbslq_f32(vdupq_n_u32(0x80000000u), s, vabsq_f32(a));
}
/* c - a b and a b - c, each one rounding (negation is exact) */
static inline float32x4_t v4_fnmadd(float32x4_t a, float32x4_t b, float32x4_t c) { return vfmsq_f32(c, a, b); }
static inline float32x4_t v4_fmsub(float32x4_t a, float32x4_t b, float32x4_t c) { return vfmaq_f32(vnegq_f32(c), a, b); }
static inline float32x4_t v4_fmadd(float32x4_t a, float32x4_t b, float32x4_t c) { return vfmaq_f32(c, a, b); }
static inline float32x4_t v4_set1(float x) { return vdupq_n_f32(x); }

/* exp(x): as v8_exp (2^n applied as two exponent-built factors 2^(n/2) 2^(n - n/2)) */
static inline float32x4_t v4_exp(float32x4_t x) {
    x = vminq_f32(v4_set1(89.0f), x);
    x = vmaxq_f32(v4_set1(-104.0f), x);
    float32x4_t n = vrndnq_f32(vmulq_f32(x, v4_set1(1.44269504088896341f)));
    float32x4_t r = v4_fnmadd(n, v4_set1(0.693145751953125f), x);
    r = v4_fnmadd(n, v4_set1(1.428606820309417232e-06f), r);
    float32x4_t p = v4_set1(1.9875691500e-4f);
    p = v4_fmadd(p, r, v4_set1(1.3981999507e-3f));
    p = v4_fmadd(p, r, v4_set1(8.3334519073e-3f));
    p = v4_fmadd(p, r, v4_set1(4.1665795894e-2f));
    p = v4_fmadd(p, r, v4_set1(1.6666665459e-1f));
    p = v4_fmadd(p, r, v4_set1(5.0000001201e-1f));
    p = v4_fmadd(p, vmulq_f32(r, r), vaddq_f32(r, v4_set1(1.0f)));
    int32x4_t ni = vcvtq_s32_f32(n); /* n is integral: truncation is exact */
    int32x4_t n1 = vshrq_n_s32(ni, 1);
    int32x4_t n2 = vsubq_s32(ni, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    return vmulq_f32(vmulq_f32(p, s1), s2);
}
/* 1 / (1 + exp(-x)) from e = exp(-|x|): 1/(1+e) for x >= 0, e/(1+e) for x < 0. ~2 ulp. */
static inline float32x4_t v4_sigmoid(float32x4_t x) {
    float32x4_t one = v4_set1(1.0f);
    float32x4_t e = v4_exp(vnegq_f32(v4_abs(x)));
    float32x4_t r = vdivq_f32(one, vaddq_f32(one, e));
    return vbslq_f32(vcltzq_f32(x), vmulq_f32(r, e), r);
}
/* s = sigmoid(x) and 1 - s = sigmoid(-x), both to full relative accuracy */
static inline void v4_sigmoid_pair(float32x4_t x, float32x4_t *s, float32x4_t *oms) {
    float32x4_t one = v4_set1(1.0f);
    float32x4_t e = v4_exp(vnegq_f32(v4_abs(x)));
    float32x4_t r = vdivq_f32(one, vaddq_f32(one, e)), er = vmulq_f32(e, r);
    uint32x4_t neg = vcltzq_f32(x);
    *s = vbslq_f32(neg, er, r);
    *oms = vbslq_f32(neg, r, er);
}
/* tanh: odd minimax polynomial for |x| < 0.625, else sign(x) (1 - 2 / (exp(2|x|) + 1)) */
static inline float32x4_t v4_tanh(float32x4_t x) {
    float32x4_t ax = v4_abs(x);
    float32x4_t z = vmulq_f32(x, x);
    float32x4_t p = v4_set1(-5.660337408e-03f);
    p = v4_fmadd(p, z, v4_set1(2.059136261e-02f));
    p = v4_fmadd(p, z, v4_set1(-5.372121417e-02f));
    p = v4_fmadd(p, z, v4_set1(1.333113003e-01f));
    p = v4_fmadd(p, z, v4_set1(-3.333326070e-01f));
    float32x4_t small = v4_fmadd(vmulq_f32(p, z), x, x);
    float32x4_t one = v4_set1(1.0f);
    float32x4_t e = v4_exp(vaddq_f32(ax, ax));
    float32x4_t big = vsubq_f32(one, vdivq_f32(v4_set1(2.0f), vaddq_f32(e, one)));
    big = v4_copysign(big, x);
    return vbslq_f32(vcltq_f32(ax, v4_set1(0.625f)), small, big);
}
/* exp(-x^2/2) with x^2 split exactly (FMA) into hi + lo: exp(-hi/2) (1 - lo/2) */
static inline float32x4_t v4_exp_mhalfsq(float32x4_t x) {
    float32x4_t hi = vmulq_f32(x, x);
    float32x4_t lo = v4_fmsub(x, x, hi);
    float32x4_t e = v4_exp(vmulq_f32(hi, v4_set1(-0.5f)));
    return v4_fnmadd(e, vmulq_f32(lo, v4_set1(0.5f)), e);
}
/* Standard normal CDF, the coefficients of avx2/vmath.h's v8_ncdf (see there) */
static inline float32x4_t v4_ncdf(float32x4_t x) {
    float32x4_t ax = v4_abs(x);
    float32x4_t z = vmulq_f32(x, x);
    float32x4_t p = v4_set1(5.368589363e-07f);
    p = v4_fmadd(p, z, v4_set1(-9.273181788e-06f));
    p = v4_fmadd(p, z, v4_set1(1.153193699e-04f));
    p = v4_fmadd(p, z, v4_set1(-1.187288029e-03f));
    p = v4_fmadd(p, z, v4_set1(9.973550302e-03f));
    p = v4_fmadd(p, z, v4_set1(-6.649037965e-02f));
    p = v4_fmadd(p, z, v4_set1(3.989422804e-01f));
    float32x4_t small = v4_fmadd(x, p, v4_set1(0.5f));
    float32x4_t one = v4_set1(1.0f);
    float32x4_t t = vdivq_f32(one, v4_fmadd(ax, v4_set1(0.25f), one));
    float32x4_t q = v4_set1(1.997479296e-02f);
    q = v4_fmadd(q, t, v4_set1(-1.322152369e-01f));
    q = v4_fmadd(q, t, v4_set1(2.677931277e-01f));
    q = v4_fmadd(q, t, v4_set1(-1.894093952e-01f));
    q = v4_fmadd(q, t, v4_set1(2.022377747e-01f));
    q = v4_fmadd(q, t, v4_set1(2.673460254e-02f));
    q = v4_fmadd(q, t, v4_set1(1.074820737e-01f));
    q = v4_fmadd(q, t, v4_set1(9.745300747e-02f));
    q = v4_fmadd(q, t, v4_set1(9.994987176e-02f));
    q = v4_fmadd(q, t, v4_set1(-8.808139299e-06f));
    float32x4_t tail = vmulq_f32(v4_exp_mhalfsq(ax), q); /* Phi(-|x|) */
    float32x4_t big = vbslq_f32(vcltzq_f32(x), tail, vsubq_f32(one, tail));
    return vbslq_f32(vcleq_f32(ax, one), small, big);
}
/* erf(z) = 2 Phi(z sqrt 2) - 1; near 0 the centred form 2 x P(x^2) */
static inline float32x4_t v4_erf(float32x4_t z) {
    float32x4_t x = vmulq_f32(z, v4_set1(1.41421356237309505f));
    float32x4_t ax = v4_abs(x);
    float32x4_t xx = vmulq_f32(x, x);
    float32x4_t p = v4_set1(5.368589363e-07f);
    p = v4_fmadd(p, xx, v4_set1(-9.273181788e-06f));
    p = v4_fmadd(p, xx, v4_set1(1.153193699e-04f));
    p = v4_fmadd(p, xx, v4_set1(-1.187288029e-03f));
    p = v4_fmadd(p, xx, v4_set1(9.973550302e-03f));
    p = v4_fmadd(p, xx, v4_set1(-6.649037965e-02f));
    p = v4_fmadd(p, xx, v4_set1(3.989422804e-01f));
    float32x4_t small = vmulq_f32(z, vmulq_f32(p, v4_set1(2.82842712474619010f)));
    float32x4_t c = v4_ncdf(ax);
    float32x4_t big = v4_copysign(v4_fmsub(c, v4_set1(2.0f), v4_set1(1.0f)), z);
    return vbslq_f32(vcleq_f32(ax, v4_set1(1.0f)), small, big);
}
#endif
