/* RMSNorm and LayerNorm, written once over the vector layer of one ISA (included by
 * avx2/norm.c and avx512/norm.c after attn_vec.h). Same arithmetic order as ref/norm.c per
 * element; row sums use float vector accumulators (2 x VL lanes, so a D = 16384 row is
 * 16384 / (2 VL) terms per lane: relative error ~1e-6, see tolerances in tests/kernels/t_norm.c)
 * reduced in double. Memory-bound: single-threaded; the second pass over a row hits L1/L2. */
#include <math.h>

/* sum of x[i] * y[i] over [0, D); y may equal x */
static inline double dot_row(const float *x /* [D] */, const float *y /* [D] */, int64_t D) {
    vf a0 = vzero(), a1 = vzero();
    int64_t i = 0;
    for (; i + 2 * VL <= D; i += 2 * VL) {
        a0 = vfma(vld(x + i), vld(y + i), a0);
        a1 = vfma(vld(x + i + VL), vld(y + i + VL), a1);
    }
    for (; i < D; i += VL)
        a0 = vfma(vld_n(x + i, D - i), vld_n(y + i, D - i), a0);
    return (double)vhsum(vadd(a0, a1));
}

void ISA_FN(cke_rmsnorm_fwd)(float *out /* [T,D] */, float *rstd /* [T] or NULL */,
                             const float *x /* [T,D] */, const float *w /* [D] */,
                             int64_t T, int64_t D, float eps, float w_offset) {
    vf off = vset1(w_offset);
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D;
        float *o = out + t * D;
        float rs = (float)(1.0 / sqrt(dot_row(xr, xr, D) / (double)D + (double)eps));
        if (rstd) rstd[t] = rs;
        vf r = vset1(rs);
        for (int64_t i = 0; i < D; i += VL) {
            int64_t n = D - i;
            vf g = vadd(vld_n(w + i, n), off);
            vst_n(o + i, vmul(vmul(vld_n(xr + i, n), r), g), n);
        }
    }
}

void ISA_FN(cke_rmsnorm_bwd)(float *dx /* [T,D] += */, float *dw /* [D] += */,
                             const float *dout /* [T,D] */, const float *x /* [T,D] */,
                             const float *w /* [D] */, const float *rstd /* [T] */,
                             int64_t T, int64_t D, float w_offset) {
    vf off = vset1(w_offset);
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D, *dy = dout + t * D;
        float *dxr = dx + t * D;
        /* dot = sum dy g x */
        vf a = vzero();
        for (int64_t i = 0; i < D; i += VL) {
            int64_t n = D - i;
            vf g = vadd(vld_n(w + i, n), off);
            a = vfma(vmul(vld_n(dy + i, n), g), vld_n(xr + i, n), a);
        }
        double r = rstd[t];
        vf rv = vset1((float)r);
        vf cv = vset1((float)(r * r * r * (double)vhsum(a) / (double)D));
        for (int64_t i = 0; i < D; i += VL) {
            int64_t n = D - i;
            vf g = vadd(vld_n(w + i, n), off);
            vf xv = vld_n(xr + i, n), dyv = vld_n(dy + i, n);
            vf d = vfnma(cv, xv, vmul(vmul(rv, g), dyv));
            vst_n(dxr + i, vadd(vld_n(dxr + i, n), d), n);
            vst_n(dw + i, vfma(dyv, vmul(xv, rv), vld_n(dw + i, n)), n);
        }
    }
}

void ISA_FN(cke_layernorm_fwd)(float *out /* [T,D] */, float *mean /* [T] or NULL */,
                               float *rstd /* [T] or NULL */, const float *x /* [T,D] */,
                               const float *w /* [D] */, const float *b /* [D] or NULL */,
                               int64_t T, int64_t D, float eps) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D;
        float *o = out + t * D;
        vf s = vzero();
        for (int64_t i = 0; i < D; i += VL) s = vadd(s, vld_n(xr + i, D - i));
        float m = (float)((double)vhsum(s) / (double)D);
        vf mv = vset1(m), v = vzero();
        /* two-pass variance: no cancellation for rows with a large mean */
        for (int64_t i = 0; i < D; i += VL) {
            int64_t n = D - i;
            /* masked lanes load m, so they contribute 0 */
            vf d = vsub(vld_n_fill(xr + i, n, m), mv);
            v = vfma(d, d, v);
        }
        float rs = (float)(1.0 / sqrt((double)vhsum(v) / (double)D + (double)eps));
        if (mean) mean[t] = m;
        if (rstd) rstd[t] = rs;
        vf r = vset1(rs);
        for (int64_t i = 0; i < D; i += VL) {
            int64_t n = D - i;
            vf xh = vmul(vsub(vld_n(xr + i, n), mv), r);
            vf bv = b ? vld_n(b + i, n) : vzero();
            vst_n(o + i, vfma(xh, vld_n(w + i, n), bv), n);
        }
    }
}

void ISA_FN(cke_layernorm_bwd)(float *dx /* [T,D] += */, float *dw /* [D] += */,
                               float *db /* [D] += or NULL */, const float *dout /* [T,D] */,
                               const float *x /* [T,D] */, const float *w /* [D] */,
                               const float *mean /* [T] */, const float *rstd /* [T] */,
                               int64_t T, int64_t D) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D, *dy = dout + t * D;
        float *dxr = dx + t * D;
        vf mv = vset1(mean[t]), r = vset1(rstd[t]);
        vf s1 = vzero(), s2 = vzero();
        for (int64_t i = 0; i < D; i += VL) {
            int64_t n = D - i; /* masked lanes: dy = 0, so g = 0 and they add nothing */
            vf g = vmul(vld_n(dy + i, n), vld_n(w + i, n));
            vf xh = vmul(vsub(vld_n(xr + i, n), mv), r);
            s1 = vadd(s1, g);
            s2 = vfma(g, xh, s2);
        }
        vf m1 = vset1((float)((double)vhsum(s1) / (double)D));
        vf m2 = vset1((float)((double)vhsum(s2) / (double)D));
        for (int64_t i = 0; i < D; i += VL) {
            int64_t n = D - i;
            vf dyv = vld_n(dy + i, n);
            vf xh = vmul(vsub(vld_n(xr + i, n), mv), r);
            vf g = vmul(dyv, vld_n(w + i, n));
            vf d = vmul(r, vfnma(xh, m2, vsub(g, m1)));
            vst_n(dxr + i, vadd(vld_n(dxr + i, n), d), n);
            vst_n(dw + i, vfma(dyv, xh, vld_n(dw + i, n)), n);
            if (db) vst_n(db + i, vadd(vld_n(db + i, n), dyv), n);
        }
    }
}
