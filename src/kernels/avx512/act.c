/* Softmax, activations and elementwise ops, AVX-512 (see ref/act.c for the definitions).
 * Transcendentals come from vmath.h (exp ~1-2 ulp, normal CDF for the erf GELU ~5e-7 rel.).
 * Tails use masked loads/stores. Memory-bound or nearly so: single-threaded. */
#include "../kdecl.h"
#include "vmath.h"

#include <math.h>
#include <string.h>

#define W 16
#define INV_SQRT_2PI 0.39894228040143267794f
#define GELU_C 0.79788456080286535588f /* sqrt(2/pi) */
#define GELU_A 0.044715f

static int64_t visible(int64_t r, int64_t C, int64_t causal_pos0) {
    if (causal_pos0 < 0) return C;
    int64_t n = causal_pos0 + r + 1;
    return n < 0 ? 0 : n > C ? C : n;
}

/* Three passes per row (max; exp, store and sum; scale): the row stays in L1/L2 after the
 * first, so memory traffic is one read and one write. */
void cke_softmax_fwd_avx512(float *out /* [R,C] */, const float *in /* [R,C] */, int64_t R,
                            int64_t C, int64_t causal_pos0) {
    for (int64_t r = 0; r < R; r++) {
        const float *x = in + r * C;
        float *y = out + r * C;
        int64_t n = visible(r, C, causal_pos0);
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int64_t i = 0; i < n; i += W) mx = _mm512_max_ps(mx, v16_load_n_fill(x + i, n - i, -INFINITY));
        __m512 m = _mm512_set1_ps(v16_hmax(mx));
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 2 * W <= n; i += 2 * W) {
            __m512 e0 = v16_exp(_mm512_sub_ps(_mm512_loadu_ps(x + i), m));
            __m512 e1 = v16_exp(_mm512_sub_ps(_mm512_loadu_ps(x + i + W), m));
            _mm512_storeu_ps(y + i, e0);
            _mm512_storeu_ps(y + i + W, e1);
            s0 = _mm512_add_ps(s0, e0);
            s1 = _mm512_add_ps(s1, e1);
        }
        for (; i < n; i += W) { /* masked lanes load -inf: exp gives 0 */
            __m512 e = v16_exp(_mm512_sub_ps(v16_load_n_fill(x + i, n - i, -INFINITY), m));
            v16_store_n(y + i, e, n - i);
            s0 = _mm512_add_ps(s0, e);
        }
        __m512 inv = _mm512_set1_ps((float)(1.0 / (double)v16_hsum(_mm512_add_ps(s0, s1))));
        for (i = 0; i < n; i += W) v16_store_n(y + i, _mm512_mul_ps(v16_load_n(y + i, n - i), inv), n - i);
        if (n < C) memset(y + n, 0, (size_t)(C - n) * sizeof(float));
    }
}

void cke_softmax_bwd_avx512(float *din /* [R,C] += */, const float *dout /* [R,C] */,
                            const float *out /* [R,C] */, int64_t R, int64_t C) {
    for (int64_t r = 0; r < R; r++) {
        const float *dy = dout + r * C, *y = out + r * C;
        float *dx = din + r * C;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 2 * W <= C; i += 2 * W) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(dy + i), _mm512_loadu_ps(y + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(dy + i + W), _mm512_loadu_ps(y + i + W), a1);
        }
        for (; i < C; i += W) a0 = _mm512_fmadd_ps(v16_load_n(dy + i, C - i), v16_load_n(y + i, C - i), a0);
        __m512 dot = _mm512_set1_ps(v16_hsum(_mm512_add_ps(a0, a1)));
        for (i = 0; i < C; i += W) {
            int64_t k = C - i;
            __m512 d = _mm512_mul_ps(v16_load_n(y + i, k), _mm512_sub_ps(v16_load_n(dy + i, k), dot));
            v16_store_n(dx + i, _mm512_add_ps(v16_load_n(dx + i, k), d), k);
        }
    }
}

static inline __m512 silu_v(__m512 x) { return _mm512_mul_ps(x, v16_sigmoid(x)); }
/* s (1 + x (1 - s)), with 1 - s from the sigmoid pair (no cancellation for large x) */
static inline __m512 dsilu_v(__m512 x) {
    __m512 s, oms;
    v16_sigmoid_pair(x, &s, &oms);
    return _mm512_mul_ps(s, _mm512_fmadd_ps(x, oms, _mm512_set1_ps(1.0f)));
}
/* erf: x Phi(x). tanh: 0.5 x (1 + tanh u) = x sigmoid(2u), u = c x (1 + a x^2): the sigmoid
 * form has no 1 + tanh cancellation for negative x. */
static inline __m512 gelu_v(__m512 x, cke_gelu_kind k) {
    if (k == CKE_GELU_ERF) return _mm512_mul_ps(x, v16_ncdf(x));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 u2 = _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(2.0f * GELU_C)),
                              _mm512_fmadd_ps(x2, _mm512_set1_ps(GELU_A), _mm512_set1_ps(1.0f)));
    return _mm512_mul_ps(x, v16_sigmoid(u2));
}
/* erf: Phi(x) + x phi(x). tanh: s + 2 x s (1 - s) du, s = sigmoid(2u), du = c (1 + 3a x^2). */
static inline __m512 dgelu_v(__m512 x, cke_gelu_kind k) {
    if (k == CKE_GELU_ERF)
        return _mm512_fmadd_ps(_mm512_mul_ps(x, _mm512_set1_ps(INV_SQRT_2PI)), v16_exp_mhalfsq(x), v16_ncdf(x));
    __m512 one = _mm512_set1_ps(1.0f), x2 = _mm512_mul_ps(x, x);
    __m512 u2 = _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(2.0f * GELU_C)),
                              _mm512_fmadd_ps(x2, _mm512_set1_ps(GELU_A), one));
    __m512 s, oms;
    v16_sigmoid_pair(u2, &s, &oms);
    __m512 du2 = _mm512_fmadd_ps(x2, _mm512_set1_ps(2.0f * GELU_C * 3.0f * GELU_A), _mm512_set1_ps(2.0f * GELU_C));
    __m512 q = _mm512_mul_ps(_mm512_mul_ps(s, oms), _mm512_mul_ps(x, du2));
    return _mm512_add_ps(s, q);
}

void cke_silu_fwd_avx512(float *out /* [n] */, const float *in /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i += W) v16_store_n(out + i, silu_v(v16_load_n(in + i, n - i)), n - i);
}
void cke_silu_bwd_avx512(float *din /* [n] += */, const float *dout /* [n] */, const float *in /* [n] */,
                         int64_t n) {
    for (int64_t i = 0; i < n; i += W) {
        int64_t k = n - i;
        __m512 d = _mm512_fmadd_ps(v16_load_n(dout + i, k), dsilu_v(v16_load_n(in + i, k)), v16_load_n(din + i, k));
        v16_store_n(din + i, d, k);
    }
}
void cke_gelu_fwd_avx512(float *out /* [n] */, const float *in /* [n] */, int64_t n, cke_gelu_kind kind) {
    for (int64_t i = 0; i < n; i += W) v16_store_n(out + i, gelu_v(v16_load_n(in + i, n - i), kind), n - i);
}
void cke_gelu_bwd_avx512(float *din /* [n] += */, const float *dout /* [n] */, const float *in /* [n] */,
                         int64_t n, cke_gelu_kind kind) {
    for (int64_t i = 0; i < n; i += W) {
        int64_t k = n - i;
        __m512 d = _mm512_fmadd_ps(v16_load_n(dout + i, k), dgelu_v(v16_load_n(in + i, k), kind),
                                   v16_load_n(din + i, k));
        v16_store_n(din + i, d, k);
    }
}
void cke_swiglu_fwd_avx512(float *out /* [n] */, const float *gate /* [n] */, const float *up /* [n] */,
                           int64_t n) {
    for (int64_t i = 0; i < n; i += W) {
        int64_t k = n - i;
        v16_store_n(out + i, _mm512_mul_ps(silu_v(v16_load_n(gate + i, k)), v16_load_n(up + i, k)), k);
    }
}
void cke_swiglu_bwd_avx512(float *dgate /* [n] += */, float *dup /* [n] += */, const float *dout /* [n] */,
                           const float *gate /* [n] */, const float *up /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i += W) {
        int64_t k = n - i;
        __m512 g = v16_load_n(gate + i, k), dy = v16_load_n(dout + i, k);
        __m512 dg = _mm512_mul_ps(_mm512_mul_ps(dy, v16_load_n(up + i, k)), dsilu_v(g));
        v16_store_n(dgate + i, _mm512_add_ps(v16_load_n(dgate + i, k), dg), k);
        v16_store_n(dup + i, _mm512_fmadd_ps(dy, silu_v(g), v16_load_n(dup + i, k)), k);
    }
}
void cke_geglu_fwd_avx512(float *out /* [n] */, const float *gate /* [n] */, const float *up /* [n] */,
                          int64_t n, cke_gelu_kind kind) {
    for (int64_t i = 0; i < n; i += W) {
        int64_t k = n - i;
        v16_store_n(out + i, _mm512_mul_ps(gelu_v(v16_load_n(gate + i, k), kind), v16_load_n(up + i, k)), k);
    }
}
void cke_geglu_bwd_avx512(float *dgate /* [n] += */, float *dup /* [n] += */, const float *dout /* [n] */,
                          const float *gate /* [n] */, const float *up /* [n] */, int64_t n,
                          cke_gelu_kind kind) {
    for (int64_t i = 0; i < n; i += W) {
        int64_t k = n - i;
        __m512 g = v16_load_n(gate + i, k), dy = v16_load_n(dout + i, k);
        __m512 dg = _mm512_mul_ps(_mm512_mul_ps(dy, v16_load_n(up + i, k)), dgelu_v(g, kind));
        v16_store_n(dgate + i, _mm512_add_ps(v16_load_n(dgate + i, k), dg), k);
        v16_store_n(dup + i, _mm512_fmadd_ps(dy, gelu_v(g, kind), v16_load_n(dup + i, k)), k);
    }
}

void cke_add_fwd_avx512(float *out /* [n], may alias a or b */, const float *a /* [n] */,
                        const float *b /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i += W)
        v16_store_n(out + i, _mm512_add_ps(v16_load_n(a + i, n - i), v16_load_n(b + i, n - i)), n - i);
}
void cke_axpy_avx512(float *y /* [n] += a x */, float a, const float *x /* [n] */, int64_t n) {
    __m512 av = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += W)
        v16_store_n(y + i, _mm512_fmadd_ps(av, v16_load_n(x + i, n - i), v16_load_n(y + i, n - i)), n - i);
}
void cke_scale_fwd_avx512(float *out /* [n], may alias in */, const float *in /* [n] */, float s,
                          int64_t n) {
    __m512 sv = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += W) v16_store_n(out + i, _mm512_mul_ps(sv, v16_load_n(in + i, n - i)), n - i);
}
