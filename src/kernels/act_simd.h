/* Softmax, activations and elementwise ops, written once over the vector layer of one ISA
 * (included by avx2/act.c and avx512/act.c after attn_vec.h; see ref/act.c for the definitions).
 * Transcendentals come from vmath.h via the layer (exp ~1-2 ulp, normal CDF for the erf GELU
 * ~5e-7 rel.). Tails use masked loads/stores (vld_n / vst_n: one per row or array).
 * Memory-bound or nearly so: single-threaded. */
#include <math.h>
#include <string.h>

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
void ISA_FN(cke_softmax_fwd)(float *out /* [R,C] */, const float *in /* [R,C] */, int64_t R,
                             int64_t C, int64_t causal_pos0) {
    for (int64_t r = 0; r < R; r++) {
        const float *x = in + r * C;
        float *y = out + r * C;
        int64_t n = visible(r, C, causal_pos0);
        vf mx = vset1(-INFINITY);
        for (int64_t i = 0; i < n; i += VL) mx = vmax(mx, vld_n_fill(x + i, n - i, -INFINITY));
        vf m = vset1(vhmax(mx));
        vf s0 = vzero(), s1 = vzero();
        int64_t i = 0;
        for (; i + 2 * VL <= n; i += 2 * VL) {
            vf e0 = vexp(vsub(vld(x + i), m));
            vf e1 = vexp(vsub(vld(x + i + VL), m));
            vst(y + i, e0);
            vst(y + i + VL, e1);
            s0 = vadd(s0, e0);
            s1 = vadd(s1, e1);
        }
        for (; i < n; i += VL) { /* masked lanes load -inf: exp gives 0 */
            vf e = vexp(vsub(vld_n_fill(x + i, n - i, -INFINITY), m));
            vst_n(y + i, e, n - i);
            s0 = vadd(s0, e);
        }
        vf inv = vset1((float)(1.0 / (double)vhsum(vadd(s0, s1))));
        for (i = 0; i < n; i += VL) vst_n(y + i, vmul(vld_n(y + i, n - i), inv), n - i);
        if (n < C) memset(y + n, 0, (size_t)(C - n) * sizeof(float));
    }
}

void ISA_FN(cke_softmax_bwd)(float *din /* [R,C] += */, const float *dout /* [R,C] */,
                             const float *out /* [R,C] */, int64_t R, int64_t C) {
    for (int64_t r = 0; r < R; r++) {
        const float *dy = dout + r * C, *y = out + r * C;
        float *dx = din + r * C;
        vf a0 = vzero(), a1 = vzero();
        int64_t i = 0;
        for (; i + 2 * VL <= C; i += 2 * VL) {
            a0 = vfma(vld(dy + i), vld(y + i), a0);
            a1 = vfma(vld(dy + i + VL), vld(y + i + VL), a1);
        }
        for (; i < C; i += VL) a0 = vfma(vld_n(dy + i, C - i), vld_n(y + i, C - i), a0);
        vf dot = vset1(vhsum(vadd(a0, a1)));
        for (i = 0; i < C; i += VL) {
            int64_t k = C - i;
            vf d = vmul(vld_n(y + i, k), vsub(vld_n(dy + i, k), dot));
            vst_n(dx + i, vadd(vld_n(dx + i, k), d), k);
        }
    }
}

static inline vf silu_v(vf x) { return vmul(x, vsigmoid(x)); }
/* s (1 + x (1 - s)), with 1 - s from the sigmoid pair (no cancellation for large x) */
static inline vf dsilu_v(vf x) {
    vf s, oms;
    vsigmoid_pair(x, &s, &oms);
    return vmul(s, vfma(x, oms, vset1(1.0f)));
}
/* erf: x Phi(x). tanh: 0.5 x (1 + tanh u) = x sigmoid(2u), u = c x (1 + a x^2): the sigmoid
 * form has no 1 + tanh cancellation for negative x. */
static inline vf gelu_v(vf x, cke_gelu_kind k) {
    if (k == CKE_GELU_ERF) return vmul(x, vncdf(x));
    vf x2 = vmul(x, x);
    vf u2 = vmul(vmul(x, vset1(2.0f * GELU_C)),
                              vfma(x2, vset1(GELU_A), vset1(1.0f)));
    return vmul(x, vsigmoid(u2));
}
/* erf: Phi(x) + x phi(x). tanh: s + 2 x s (1 - s) du, s = sigmoid(2u), du = c (1 + 3a x^2). */
static inline vf dgelu_v(vf x, cke_gelu_kind k) {
    if (k == CKE_GELU_ERF)
        return vfma(vmul(x, vset1(INV_SQRT_2PI)), vexp_mhalfsq(x), vncdf(x));
    vf one = vset1(1.0f), x2 = vmul(x, x);
    vf u2 = vmul(vmul(x, vset1(2.0f * GELU_C)),
                              vfma(x2, vset1(GELU_A), one));
    vf s, oms;
    vsigmoid_pair(u2, &s, &oms);
    vf du2 = vfma(x2, vset1(2.0f * GELU_C * 3.0f * GELU_A), vset1(2.0f * GELU_C));
    vf q = vmul(vmul(s, oms), vmul(x, du2));
    return vadd(s, q);
}

void ISA_FN(cke_silu_fwd)(float *out /* [n] */, const float *in /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i += VL) vst_n(out + i, silu_v(vld_n(in + i, n - i)), n - i);
}
void ISA_FN(cke_silu_bwd)(float *din /* [n] += */, const float *dout /* [n] */, const float *in /* [n] */,
                          int64_t n) {
    for (int64_t i = 0; i < n; i += VL) {
        int64_t k = n - i;
        vf d = vfma(vld_n(dout + i, k), dsilu_v(vld_n(in + i, k)), vld_n(din + i, k));
        vst_n(din + i, d, k);
    }
}
void ISA_FN(cke_gelu_fwd)(float *out /* [n] */, const float *in /* [n] */, int64_t n, cke_gelu_kind kind) {
    for (int64_t i = 0; i < n; i += VL) vst_n(out + i, gelu_v(vld_n(in + i, n - i), kind), n - i);
}
void ISA_FN(cke_gelu_bwd)(float *din /* [n] += */, const float *dout /* [n] */, const float *in /* [n] */,
                          int64_t n, cke_gelu_kind kind) {
    for (int64_t i = 0; i < n; i += VL) {
        int64_t k = n - i;
        vf d = vfma(vld_n(dout + i, k), dgelu_v(vld_n(in + i, k), kind),
                                   vld_n(din + i, k));
        vst_n(din + i, d, k);
    }
}
void ISA_FN(cke_swiglu_fwd)(float *out /* [n] */, const float *gate /* [n] */, const float *up /* [n] */,
                            int64_t n) {
    for (int64_t i = 0; i < n; i += VL) {
        int64_t k = n - i;
        vst_n(out + i, vmul(silu_v(vld_n(gate + i, k)), vld_n(up + i, k)), k);
    }
}
void ISA_FN(cke_swiglu_bwd)(float *dgate /* [n] += */, float *dup /* [n] += */, const float *dout /* [n] */,
                            const float *gate /* [n] */, const float *up /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i += VL) {
        int64_t k = n - i;
        vf g = vld_n(gate + i, k), dy = vld_n(dout + i, k);
        vf dg = vmul(vmul(dy, vld_n(up + i, k)), dsilu_v(g));
        vst_n(dgate + i, vadd(vld_n(dgate + i, k), dg), k);
        vst_n(dup + i, vfma(dy, silu_v(g), vld_n(dup + i, k)), k);
    }
}
void ISA_FN(cke_geglu_fwd)(float *out /* [n] */, const float *gate /* [n] */, const float *up /* [n] */,
                           int64_t n, cke_gelu_kind kind) {
    for (int64_t i = 0; i < n; i += VL) {
        int64_t k = n - i;
        vst_n(out + i, vmul(gelu_v(vld_n(gate + i, k), kind), vld_n(up + i, k)), k);
    }
}
void ISA_FN(cke_geglu_bwd)(float *dgate /* [n] += */, float *dup /* [n] += */, const float *dout /* [n] */,
                           const float *gate /* [n] */, const float *up /* [n] */, int64_t n,
                           cke_gelu_kind kind) {
    for (int64_t i = 0; i < n; i += VL) {
        int64_t k = n - i;
        vf g = vld_n(gate + i, k), dy = vld_n(dout + i, k);
        vf dg = vmul(vmul(dy, vld_n(up + i, k)), dgelu_v(g, kind));
        vst_n(dgate + i, vadd(vld_n(dgate + i, k), dg), k);
        vst_n(dup + i, vfma(dy, gelu_v(g, kind), vld_n(dup + i, k)), k);
    }
}

void ISA_FN(cke_add_fwd)(float *out /* [n], may alias a or b */, const float *a /* [n] */,
                         const float *b /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i += VL)
        vst_n(out + i, vadd(vld_n(a + i, n - i), vld_n(b + i, n - i)), n - i);
}
void ISA_FN(cke_axpy)(float *y /* [n] += a x */, float a, const float *x /* [n] */, int64_t n) {
    vf av = vset1(a);
    for (int64_t i = 0; i < n; i += VL)
        vst_n(y + i, vfma(av, vld_n(x + i, n - i), vld_n(y + i, n - i)), n - i);
}
void ISA_FN(cke_scale_fwd)(float *out /* [n], may alias in */, const float *in /* [n] */, float s,
                           int64_t n) {
    vf sv = vset1(s);
    for (int64_t i = 0; i < n; i += VL) vst_n(out + i, vmul(sv, vld_n(in + i, n - i)), n - i);
}
