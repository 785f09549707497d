/* Vector math for the AVX2+FMA kernels (header-only, static inline; shared by act/norm/attn).
 * Same algorithms and coefficients as avx512/vmath.h (see there), 8 lanes:
 *   v8_exp ~1-2 ulp; exp(x) -> +inf above ~88.72, -> 0 below ~-103.9, subnormals in between.
 *   v8_sigmoid, v8_tanh ~2-3 ulp; v8_ncdf (normal CDF, rel. error < 5e-7 on both tails), v8_erf.
 * Names are stable: other kernel families include this file. */
#ifndef CKE_AVX2_VMATH_H
#define CKE_AVX2_VMATH_H

#include <immintrin.h>
#include <stdint.h>

/* Lanes [0, n) all-ones, n clamped to [0, 8]: for _mm256_maskload_ps / _mm256_maskstore_ps. */
static inline __m256i v8_tailmask(int64_t n) {
    int k = n >= 8 ? 8 : n <= 0 ? 0 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Load/store the first n (<= 8) floats; n >= 8 is a plain full-width access, so call sites
 * with a constant 8 compile to ordinary loads/stores. Masked lanes load as 0 (or fill). */
static inline __m256 v8_load_n(const float *p, int64_t n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, v8_tailmask(n));
}
static inline __m256 v8_load_n_fill(const float *p, int64_t n, float fill) {
    if (n >= 8) return _mm256_loadu_ps(p);
    __m256i m = v8_tailmask(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void v8_store_n(float *p, __m256 v, int64_t n) {
    if (n >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, v8_tailmask(n), v);
}

static inline float v8_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float v8_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 v8_abs(__m256 x) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}
/* |a| with the sign of s */
static inline __m256 v8_copysign(__m256 a, __m256 s) {
    __m256 sg = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sg, a), _mm256_and_ps(sg, s));
}

/* exp(x): as v16_exp; without scalef, 2^n is applied as two exponent-built factors
 * 2^(n/2) 2^(n - n/2), each a normal float for n in [-150, 129], so overflow gives +inf and
 * the subnormal range rounds once more at most (results there are < 1.2e-38). */
static inline __m256 v8_exp(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606820309417232e-06f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
/* 1 / (1 + exp(-x)), from e = exp(-|x|) so nothing overflows: 1/(1+e) for x >= 0,
 * e/(1+e) for x < 0 (keeps relative accuracy down to the subnormal range). ~2 ulp. */
static inline __m256 v8_sigmoid(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = v8_exp(_mm256_sub_ps(_mm256_setzero_ps(), v8_abs(x)));
    __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, e));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(r, _mm256_mul_ps(r, e), neg);
}

/* s = sigmoid(x) and 1 - s = sigmoid(-x), both to full relative accuracy (1 - s computed
 * directly, not by subtraction): for derivatives such as s (1 - s). */
static inline void v8_sigmoid_pair(__m256 x, __m256 *s, __m256 *oms) {
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = v8_exp(_mm256_sub_ps(_mm256_setzero_ps(), v8_abs(x)));
    __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, e)), er = _mm256_mul_ps(e, r);
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    *s = _mm256_blendv_ps(r, er, neg);
    *oms = _mm256_blendv_ps(er, r, neg);
}

/* tanh: odd minimax polynomial x P(x^2) for |x| < 0.625 (where 1 - 2/(e^2x + 1) cancels),
 * else sign(x) (1 - 2 / (exp(2|x|) + 1)), which saturates to +-1 for large |x|. */
static inline __m256 v8_tanh(__m256 x) {
    __m256 ax = v8_abs(x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.660337408e-03f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.059136261e-02f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.372121417e-02f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.333113003e-01f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.333326070e-01f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = v8_exp(_mm256_add_ps(ax, ax));
    __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    /* copy the sign of x onto big */
    big = v8_copysign(big, x);
    __m256 m = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
    return _mm256_blendv_ps(big, small, m);
}

/* exp(-x^2/2) with x^2 split exactly (FMA) into hi + lo, so the large exponent carries no
 * rounding error: exp(-hi/2) (1 - lo/2). */
static inline __m256 v8_exp_mhalfsq(__m256 x) {
    __m256 hi = _mm256_mul_ps(x, x);
    __m256 lo = _mm256_fmsub_ps(x, x, hi);
    __m256 e = v8_exp(_mm256_mul_ps(hi, _mm256_set1_ps(-0.5f)));
    return _mm256_fnmadd_ps(e, _mm256_mul_ps(lo, _mm256_set1_ps(0.5f)), e);
}

/* Standard normal CDF Phi(x) = (1 + erf(x / sqrt 2)) / 2, accurate on both tails.
 * |x| <= 1: 1/2 + x P(x^2), P a degree-6 minimax fit (rel. error 1e-11).
 * |x| > 1: Phi(-|x|) = exp(-x^2/2) Q(t), t = 1 / (1 + |x|/4), Q degree 9 (rel. error 2e-9),
 * and Phi(|x|) = 1 - Phi(-|x|). Coefficients: Lawson-weighted least-squares fits done for cke (numpy, double
 * targets from libm erfc); float evaluation error peaks at 4.4e-7 relative near |x| = 1. */
static inline __m256 v8_ncdf(__m256 x) {
    __m256 ax = v8_abs(x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(5.368589363e-07f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-9.273181788e-06f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.153193699e-04f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-1.187288029e-03f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(9.973550302e-03f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-6.649037965e-02f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(3.989422804e-01f));
    __m256 small = _mm256_fmadd_ps(x, p, _mm256_set1_ps(0.5f));
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(ax, _mm256_set1_ps(0.25f), one));
    __m256 q = _mm256_set1_ps(1.997479296e-02f);
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-1.322152369e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.677931277e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-1.894093952e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.022377747e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(2.673460254e-02f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(1.074820737e-01f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(9.745300747e-02f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(9.994987176e-02f));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(-8.808139299e-06f));
    __m256 tail = _mm256_mul_ps(v8_exp_mhalfsq(ax), q); /* Phi(-|x|) */
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 big = _mm256_blendv_ps(_mm256_sub_ps(one, tail), tail, neg);
    __m256 m = _mm256_cmp_ps(ax, one, _CMP_LE_OQ);
    return _mm256_blendv_ps(big, small, m);
}

/* erf(z) = 2 Phi(z sqrt 2) - 1; near 0 the centred form 2 x P(x^2) avoids the cancellation. */
static inline __m256 v8_erf(__m256 z) {
    __m256 x = _mm256_mul_ps(z, _mm256_set1_ps(1.41421356237309505f));
    __m256 ax = v8_abs(x);
    __m256 xx = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(5.368589363e-07f);
    p = _mm256_fmadd_ps(p, xx, _mm256_set1_ps(-9.273181788e-06f));
    p = _mm256_fmadd_ps(p, xx, _mm256_set1_ps(1.153193699e-04f));
    p = _mm256_fmadd_ps(p, xx, _mm256_set1_ps(-1.187288029e-03f));
    p = _mm256_fmadd_ps(p, xx, _mm256_set1_ps(9.973550302e-03f));
    p = _mm256_fmadd_ps(p, xx, _mm256_set1_ps(-6.649037965e-02f));
    p = _mm256_fmadd_ps(p, xx, _mm256_set1_ps(3.989422804e-01f));
    /* 2 x P = z * (2 sqrt2 P): multiply by z, not the rounded x, to keep tiny z exact-ish */
    __m256 small = _mm256_mul_ps(z, _mm256_mul_ps(p, _mm256_set1_ps(2.82842712474619010f)));
    __m256 c = v8_ncdf(ax); /* Phi(|x|) for |x| > 1 */
    __m256 big = _mm256_fmsub_ps(c, _mm256_set1_ps(2.0f), _mm256_set1_ps(1.0f));
    big = v8_copysign(big, z);
    __m256 m = _mm256_cmp_ps(ax, _mm256_set1_ps(1.0f), _CMP_LE_OQ);
    return _mm256_blendv_ps(big, small, m);
}

#endif
