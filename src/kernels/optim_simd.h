/* SIMD AdamW and sum of squares, written once over the vector layer of one ISA (included by
 * avx2/optim.c and avx512/optim.c after attn_vec.h). Semantics: ref/optim.c. */
#include <math.h>

/* The same float operations as cke_adamw_ref in the same order, no FMA (the build uses
 * -std=c11, i.e. -ffp-contract=off, for the scalar tail too): bitwise identical to the ref. */
void ISA_FN(cke_adamw)(float *p /* [n] */, float *m /* [n] */, float *v /* [n] */,
                       const float *g /* [n] */, int64_t n, float lr, float beta1, float beta2,
                       float eps, float wd, int64_t step, float grad_scale) {
    double bc1 = 1.0 - pow((double)beta1, (double)step);
    double bc2 = 1.0 - pow((double)beta2, (double)step);
    float decay = (float)(1.0 - (double)lr * (double)wd);
    float step_size = (float)((double)lr / bc1);
    float sbc2 = (float)sqrt(bc2);
    float c1 = (float)(1.0 - (double)beta1), c2 = (float)(1.0 - (double)beta2);
    const vf vgs = vset1(grad_scale), vb1 = vset1(beta1), vc1 = vset1(c1), vb2 = vset1(beta2),
             vc2 = vset1(c2), vs2 = vset1(sbc2), veps = vset1(eps), vdec = vset1(decay),
             vss = vset1(step_size);
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        vf gi = vmul(vld(g + i), vgs);
        vf mi = vadd(vmul(vb1, vld(m + i)), vmul(vc1, gi));
        vf vi = vadd(vmul(vb2, vld(v + i)), vmul(vc2, vmul(gi, gi)));
        vst(m + i, mi);
        vst(v + i, vi);
        vf denom = vadd(vdiv(vsqrt(vi), vs2), veps);
        vst(p + i, vsub(vmul(vld(p + i), vdec), vmul(vss, vdiv(mi, denom))));
    }
    for (; i < n; i++) {
        float gi = g[i] * grad_scale;
        float mi = beta1 * m[i] + c1 * gi;
        float vi = beta2 * v[i] + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / sbc2 + eps;
        p[i] = p[i] * decay - step_size * (mi / denom);
    }
}

/* Squares summed in float lanes over blocks of 4 x 64 vectors (each lane adds <= 64 terms, so
 * relative error ~1e-6 per block at worst), blocks added in double: fine for n up to 1e9. */
double ISA_FN(cke_sumsq)(const float *x /* [n] */, int64_t n) {
    vd acc = vdzero();
    const int64_t blk = 256 * VL;
    int64_t i = 0;
    while (i + 4 * VL <= n) {
        int64_t end = i + blk <= n ? i + blk : n;
        vf s0 = vzero(), s1 = vzero(), s2 = vzero(), s3 = vzero();
        for (; i + 4 * VL <= end; i += 4 * VL) {
            vf a = vld(x + i), b = vld(x + i + VL), c = vld(x + i + 2 * VL), e = vld(x + i + 3 * VL);
            s0 = vfma(a, a, s0);
            s1 = vfma(b, b, s1);
            s2 = vfma(c, c, s2);
            s3 = vfma(e, e, s3);
        }
        vacc_d(&acc, vadd(vadd(s0, s1), vadd(s2, s3)));
    }
    double s = vdhsum(acc);
    for (; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}
