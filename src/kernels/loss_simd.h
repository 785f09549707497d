/* SIMD fused softmax + cross-entropy, written once over the vector layer of one ISA (included by
 * avx2/loss.c and avx512/loss.c after attn_vec.h). Semantics: cke_xent_fwd_bwd_ref.
 * Three streaming passes per row (max; exp, sum and stash e in dlogits; scale), so exp is
 * evaluated once per logit. The sum of exps is taken in float lanes over blocks of 64 vectors
 * and each block is added into double lanes: V reaches 152k. Rows are split statically over
 * threads and each row is done by one thread, so results do not depend on nth. */
#include <math.h>
#include <string.h>

#define XENT_BLK (64 * VL)

void ISA_FN(cke_xent_fwd_bwd)(float *loss /* [T] */, float *dlogits /* [T,V] or NULL */,
                              const float *logits /* [T,V] */, const int32_t *y /* [T] */, int64_t T,
                              int64_t V, int32_t ignore_index, float dscale, int nth) {
    const int64_t nfull = V / VL * VL;
    const vmk mt = vmk_n(V - nfull);
#pragma omp parallel for schedule(static) num_threads(nth > 1 ? nth : 1) if (nth > 1)
    for (int64_t t = 0; t < T; t++) {
        const float *x = logits + t * V;             /* [V] */
        float *d = dlogits ? dlogits + t * V : NULL; /* [V], may alias x */
        int32_t yt = y[t];
        if (yt == ignore_index || yt < 0 || (int64_t)yt >= V) {
            loss[t] = yt == ignore_index ? 0.0f : NAN;
            if (d) memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        float xy = x[yt];
        vf mx = vset1(-INFINITY);
        for (int64_t i = 0; i < nfull; i += VL) mx = vmax(mx, vld(x + i));
        if (nfull < V) mx = vsel(mt, mx, vmax(mx, vldm(x + nfull, mt)));
        const float m = vhmax(mx);
        const vf mv = vset1(m);
        vd sumd = vdzero();
        for (int64_t b0 = 0; b0 < nfull; b0 += XENT_BLK) {
            int64_t b1 = b0 + XENT_BLK < nfull ? b0 + XENT_BLK : nfull;
            vf s0 = vzero(), s1 = vzero();
            int64_t i = b0;
            for (; i + 2 * VL <= b1; i += 2 * VL) {
                vf e0 = vexp(vsub(vld(x + i), mv)), e1 = vexp(vsub(vld(x + i + VL), mv));
                s0 = vadd(s0, e0);
                s1 = vadd(s1, e1);
                if (d) { vst(d + i, e0); vst(d + i + VL, e1); }
            }
            for (; i < b1; i += VL) {
                vf e0 = vexp(vsub(vld(x + i), mv));
                s0 = vadd(s0, e0);
                if (d) vst(d + i, e0);
            }
            vacc_d(&sumd, vadd(s0, s1));
        }
        if (nfull < V) {
            vf e = vsel(mt, vzero(), vexp(vsub(vldm(x + nfull, mt), mv)));
            vacc_d(&sumd, e);
            if (d) vstm(d + nfull, mt, e);
        }
        double sum = vdhsum(sumd);
        loss[t] = (float)((double)m + log(sum) - (double)xy);
        if (d) {
            vf inv = vset1((float)((double)dscale / sum));
            for (int64_t i = 0; i < nfull; i += VL) vst(d + i, vmul(vld(d + i), inv));
            if (nfull < V) vstm(d + nfull, mt, vmul(vldm(d + nfull, mt), inv));
            d[yt] -= dscale;
        }
    }
}
