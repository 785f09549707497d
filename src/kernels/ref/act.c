/* Softmax, activations and elementwise ops, forward and backward: the spec for every ISA.
 * Transcendentals are evaluated in double and rounded once, so the ref is (nearly) correctly
 * rounded and the SIMD variants are judged against the true function. Memory-bound or nearly
 * so; single-threaded. */
#include "../kdecl.h"

#include <math.h>

#define SQRT1_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
#define GELU_C 0.79788456080286535588 /* sqrt(2/pi) */
#define GELU_A 0.044715

/* Columns row r may see: all, or [0, pos0 + r] under the causal mask (clamped to [0, C]). */
static int64_t visible(int64_t r, int64_t C, int64_t causal_pos0) {
    if (causal_pos0 < 0) return C;
    int64_t n = causal_pos0 + r + 1;
    return n < 0 ? 0 : n > C ? C : n;
}

/* out = exp(x - max) / sum over the visible columns; masked columns are exactly 0. */
void cke_softmax_fwd_ref(float *out /* [R,C] */, const float *in /* [R,C] */, int64_t R, int64_t C,
                         int64_t causal_pos0) {
    for (int64_t r = 0; r < R; r++) {
        const float *x = in + r * C;
        float *y = out + r * C;
        int64_t n = visible(r, C, causal_pos0);
        float m = -INFINITY;
        for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += exp((double)x[i] - m);
        for (int64_t i = 0; i < n; i++) y[i] = (float)(exp((double)x[i] - m) / s);
        for (int64_t i = n; i < C; i++) y[i] = 0.0f;
    }
}

/* din += out (dout - sum(dout out)); masked entries have out = 0 and get nothing. */
void cke_softmax_bwd_ref(float *din /* [R,C] += */, const float *dout /* [R,C] */,
                         const float *out /* [R,C] */, int64_t R, int64_t C) {
    for (int64_t r = 0; r < R; r++) {
        const float *dy = dout + r * C, *y = out + r * C;
        float *dx = din + r * C;
        double dot = 0;
        for (int64_t i = 0; i < C; i++) dot += (double)dy[i] * y[i];
        for (int64_t i = 0; i < C; i++) dx[i] += (float)(y[i] * ((double)dy[i] - dot));
    }
}

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }
static double silu(double x) { return x * sigm(x); }
static double dsilu(double x) { double s = sigm(x); return s * (1.0 + x * (1.0 - s)); }

/* erf form: x Phi(x) with Phi(x) = erfc(-x/sqrt2)/2 (no cancellation for x < 0).
 * tanh form: 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3). */
static double gelu(double x, cke_gelu_kind k) {
    if (k == CKE_GELU_ERF) return x * 0.5 * erfc(-x * SQRT1_2);
    double u = GELU_C * (x + GELU_A * x * x * x);
    return x * sigm(2.0 * u);
}
static double dgelu(double x, cke_gelu_kind k) {
    if (k == CKE_GELU_ERF) return 0.5 * erfc(-x * SQRT1_2) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
    double u = GELU_C * (x + GELU_A * x * x * x), du = GELU_C * (1.0 + 3.0 * GELU_A * x * x);
    double s = sigm(2.0 * u); /* = (1 + tanh u) / 2; 1 - tanh^2 = 4 s (1 - s) */
    return s + 2.0 * x * s * (1.0 - s) * du;
}

void cke_silu_fwd_ref(float *out /* [n] */, const float *in /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)silu(in[i]);
}
/* d silu = s (1 + x (1 - s)) */
void cke_silu_bwd_ref(float *din /* [n] += */, const float *dout /* [n] */, const float *in /* [n] */,
                      int64_t n) {
    for (int64_t i = 0; i < n; i++) din[i] += (float)(dout[i] * dsilu(in[i]));
}
void cke_gelu_fwd_ref(float *out /* [n] */, const float *in /* [n] */, int64_t n, cke_gelu_kind k) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)gelu(in[i], k);
}
void cke_gelu_bwd_ref(float *din /* [n] += */, const float *dout /* [n] */, const float *in /* [n] */,
                      int64_t n, cke_gelu_kind k) {
    for (int64_t i = 0; i < n; i++) din[i] += (float)(dout[i] * dgelu(in[i], k));
}
void cke_swiglu_fwd_ref(float *out /* [n] */, const float *gate /* [n] */, const float *up /* [n] */,
                        int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)(silu(gate[i]) * up[i]);
}
/* dgate += dout up silu'(gate); dup += dout silu(gate) */
void cke_swiglu_bwd_ref(float *dgate /* [n] += */, float *dup /* [n] += */, const float *dout /* [n] */,
                        const float *gate /* [n] */, const float *up /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        dgate[i] += (float)((double)dout[i] * up[i] * dsilu(gate[i]));
        dup[i] += (float)(dout[i] * silu(gate[i]));
    }
}
void cke_geglu_fwd_ref(float *out /* [n] */, const float *gate /* [n] */, const float *up /* [n] */,
                       int64_t n, cke_gelu_kind k) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)(gelu(gate[i], k) * up[i]);
}
void cke_geglu_bwd_ref(float *dgate /* [n] += */, float *dup /* [n] += */, const float *dout /* [n] */,
                       const float *gate /* [n] */, const float *up /* [n] */, int64_t n,
                       cke_gelu_kind k) {
    for (int64_t i = 0; i < n; i++) {
        dgate[i] += (float)((double)dout[i] * up[i] * dgelu(gate[i], k));
        dup[i] += (float)(dout[i] * gelu(gate[i], k));
    }
}

void cke_add_fwd_ref(float *out /* [n], may alias a or b */, const float *a /* [n] */,
                     const float *b /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
void cke_axpy_ref(float *y /* [n] += a x */, float a, const float *x /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
void cke_scale_fwd_ref(float *out /* [n], may alias in */, const float *in /* [n] */, float s,
                       int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = s * in[i];
}

/* Logit soft-capping (Gemma 2 final logits): out = cap * tanh(in / cap), evaluated in double
 * like the other transcendentals of the _ref; d/din = 1 - tanh^2(in / cap). */
void cke_softcap_fwd_ref(float *out /* [n], may alias in */, const float *in /* [n] */, float cap,
                         int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)((double)cap * tanh((double)in[i] / cap));
}
void cke_softcap_bwd_ref(float *din /* [n] += */, const float *dout /* [n] */, const float *in /* [n] */,
                         float cap, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double t = tanh((double)in[i] / cap);
        din[i] += (float)((double)dout[i] * (1.0 - t * t));
    }
}
