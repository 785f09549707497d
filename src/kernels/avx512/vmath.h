/* Vector math for the AVX-512 kernels (header-only, static inline; shared by act/norm/attn).
 * Accuracy (scanned against double libm over the float range when written;
 * tests/kernels/t_act.c checks every kernel built on them against the double-precision ref):
 *   v16_exp ~1-2 ulp; exp(x) -> +inf above ~88.72, -> 0 below ~-103.9, subnormals in between.
 *   v16_sigmoid, v16_tanh ~2-3 ulp; v16_ncdf (normal CDF, relative error < 5e-7 on both tails),
 *   v16_erf (absolute error < 3e-7, relative < 5e-7).
 * Names are stable: other kernel families include this file. */
#ifndef CKE_AVX512_VMATH_H
#define CKE_AVX512_VMATH_H

#include <immintrin.h>
#include <stdint.h>

/* Lanes [0, n) set, n clamped to [0, 16]: masked loads/stores for row tails. */
static inline __mmask16 v16_tailmask(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* Load/store the first n (<= 16) floats; n >= 16 is a plain full-width access, so call sites
 * with a constant 16 compile to ordinary loads/stores. Masked lanes load as 0 (or fill). */
static inline __m512 v16_load_n(const float *p, int64_t n) {
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(v16_tailmask(n), p);
}
static inline __m512 v16_load_n_fill(const float *p, int64_t n, float fill) {
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_mask_loadu_ps(_mm512_set1_ps(fill), v16_tailmask(n), p);
}
static inline void v16_store_n(float *p, __m512 v, int64_t n) {
    if (n >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, v16_tailmask(n), v);
}

static inline float v16_hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
static inline float v16_hmax(__m512 v) { return _mm512_reduce_max_ps(v); }

/* exp(x): n = round(x log2 e), r = x - n ln2 (two-constant Cody-Waite, FMA), Cephes degree-6
 * polynomial on |r| <= ln2/2, then scalef, which gives +inf / subnormals / 0 correctly.
 * The clamp keeps r finite; min/max take x as the second operand so NaN propagates. */
static inline __m512 v16_exp(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606820309417232e-06f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* 1 / (1 + exp(-x)), from e = exp(-|x|) so nothing overflows: 1/(1+e) for x >= 0,
 * e/(1+e) for x < 0 (keeps relative accuracy down to the subnormal range). ~2 ulp. */
static inline __m512 v16_sigmoid(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = v16_exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
    __m512 r = _mm512_div_ps(one, _mm512_add_ps(one, e));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(r, neg, r, e);
}

/* s = sigmoid(x) and 1 - s = sigmoid(-x), both to full relative accuracy (1 - s computed
 * directly, not by subtraction): for derivatives such as s (1 - s). */
static inline void v16_sigmoid_pair(__m512 x, __m512 *s, __m512 *oms) {
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = v16_exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
    __m512 r = _mm512_div_ps(one, _mm512_add_ps(one, e)), er = _mm512_mul_ps(e, r);
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    *s = _mm512_mask_blend_ps(neg, r, er);
    *oms = _mm512_mask_blend_ps(neg, er, r);
}

/* tanh: odd minimax polynomial x P(x^2) for |x| < 0.625 (where 1 - 2/(e^2x + 1) cancels),
 * else sign(x) (1 - 2 / (exp(2|x|) + 1)), which saturates to +-1 for large |x|. */
static inline __m512 v16_tanh(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(-5.660337408e-03f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.059136261e-02f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.372121417e-02f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.333113003e-01f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.333326070e-01f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = v16_exp(_mm512_add_ps(ax, ax));
    __m512 big = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
    /* copy the sign of x onto big */
    big = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(big),
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
    __mmask16 m = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(m, big, small);
}

/* exp(-x^2/2) with x^2 split exactly (FMA) into hi + lo, so the large exponent carries no
 * rounding error: exp(-hi/2) (1 - lo/2). */
static inline __m512 v16_exp_mhalfsq(__m512 x) {
    __m512 hi = _mm512_mul_ps(x, x);
    __m512 lo = _mm512_fmsub_ps(x, x, hi);
    __m512 e = v16_exp(_mm512_mul_ps(hi, _mm512_set1_ps(-0.5f)));
    return _mm512_fnmadd_ps(e, _mm512_mul_ps(lo, _mm512_set1_ps(0.5f)), e);
}

/* Standard normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2, accurate on both tails.
 * |x| <= 1: 1/2 + x P(x^2), P a degree-6 minimax fit (rel. error 1e-11).
 * |x| > 1: Phi(-|x|) = exp(-x^2/2) Q(t), t = 1 / (1 + |x|/4), Q degree 9 (rel. error 2e-9),
 * and Phi(|x|) = 1 - Phi(-|x|). Coefficients: Lawson-weighted least-squares fits done for cke (numpy, double
 * targets from libm erfc); float evaluation error peaks at 4.4e-7 relative near |x| = 1. */
static inline __m512 v16_ncdf(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(5.368589363e-07f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-9.273181788e-06f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.153193699e-04f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-1.187288029e-03f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(9.973550302e-03f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-6.649037965e-02f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(3.989422804e-01f));
    __m512 small = _mm512_fmadd_ps(x, p, _mm512_set1_ps(0.5f));
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(ax, _mm512_set1_ps(0.25f), one));
    __m512 q = _mm512_set1_ps(1.997479296e-02f);
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.322152369e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(2.677931277e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.894093952e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(2.022377747e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(2.673460254e-02f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.074820737e-01f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(9.745300747e-02f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(9.994987176e-02f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-8.808139299e-06f));
    __m512 tail = _mm512_mul_ps(v16_exp_mhalfsq(ax), q); /* Phi(-|x|) */
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 big = _mm512_mask_blend_ps(neg, _mm512_sub_ps(one, tail), tail);
    __mmask16 m = _mm512_cmp_ps_mask(ax, one, _CMP_LE_OQ);
    return _mm512_mask_blend_ps(m, big, small);
}

/* erf(z) = 2 Phi(z sqrt 2) - 1; near 0 the centred form 2 x P(x^2) avoids the cancellation. */
static inline __m512 v16_erf(__m512 z) {
    __m512 x = _mm512_mul_ps(z, _mm512_set1_ps(1.41421356237309505f));
    __m512 ax = _mm512_abs_ps(x);
    __m512 xx = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(5.368589363e-07f);
    p = _mm512_fmadd_ps(p, xx, _mm512_set1_ps(-9.273181788e-06f));
    p = _mm512_fmadd_ps(p, xx, _mm512_set1_ps(1.153193699e-04f));
    p = _mm512_fmadd_ps(p, xx, _mm512_set1_ps(-1.187288029e-03f));
    p = _mm512_fmadd_ps(p, xx, _mm512_set1_ps(9.973550302e-03f));
    p = _mm512_fmadd_ps(p, xx, _mm512_set1_ps(-6.649037965e-02f));
    p = _mm512_fmadd_ps(p, xx, _mm512_set1_ps(3.989422804e-01f));
    /* 2 x P = z * (2 sqrt2 P): multiply by z, not the rounded x, to keep tiny z exact-ish */
    __m512 small = _mm512_mul_ps(z, _mm512_mul_ps(p, _mm512_set1_ps(2.82842712474619010f)));
    __m512 c = v16_ncdf(ax); /* Phi(|x|) for |x| > 1 */
    __m512 big = _mm512_fmsub_ps(c, _mm512_set1_ps(2.0f), _mm512_set1_ps(1.0f));
    big = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(big),
        _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000u))));
    __mmask16 m = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(1.0f), _CMP_LE_OQ);
    return _mm512_mask_blend_ps(m, big, small);
}

#endif
