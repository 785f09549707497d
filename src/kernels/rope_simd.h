/* Rotary position embedding, both layouts, written once over the vector layer of one ISA
 * (included by avx2/rope.c and avx512/rope.c after attn_vec.h; see ref/rope.c for the definition).
 * INTERLEAVED: a vector of VL floats holds VL/2 pairs and the matching VL/2 (cos, sin) entries
 * of cs line up lane for lane: y = x * cos_dup -+ swap(x) * sin_dup in one fmaddsub.
 * HALVES: cs is split into cos / sin vectors (vcs_split: the ISA's de-interleave permutes, two
 * per VL pairs) and the two halves rotate as plain vectors. Memory-bound, single-threaded. */
#include <string.h>

void ISA_FN(cke_rope_fwd)(float *out /* [T,H,hd], may alias in */, const float *in /* [T,H,hd] */,
                          const float *cs /* [P, rot/2, 2] */, const int32_t *pos /* [T] */,
                          int64_t T, int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout) {
    int64_t half = rot / 2;
    for (int64_t t = 0; t < T; t++) {
        const float *c = cs + (int64_t)pos[t] * rot;
        for (int64_t h = 0; h < H; h++) {
            const float *x = in + (t * H + h) * hd;
            float *y = out + (t * H + h) * hd;
            if (layout == CKE_ROPE_INTERLEAVED) {
                for (int64_t i = 0; i < rot; i += VL) {
                    int64_t n = rot - i;
                    vf xv = vld_n(x + i, n), cv = vld_n(c + i, n);
                    vf s = vmul(vswap_pairs(xv), vdup_odd(cv));
                    /* even lanes a c - b s, odd lanes b c + a s */
                    vst_n(y + i, vfmaddsub(xv, vdup_even(cv), s), n);
                }
            } else {
                for (int64_t k = 0; k < half; k += VL) {
                    int64_t n = half - k;
                    vf co, si;
                    vcs_split(&co, &si, c + 2 * k, n);
                    vf a = vld_n(x + k, n), b = vld_n(x + half + k, n);
                    vst_n(y + k, vfms(a, co, vmul(b, si)), n);
                    vst_n(y + half + k, vfma(a, si, vmul(b, co)), n);
                }
            }
            if (y != x) memcpy(y + rot, x + rot, (size_t)(hd - rot) * sizeof(float));
        }
    }
}

void ISA_FN(cke_rope_bwd)(float *din /* [T,H,hd] += */, const float *dout /* [T,H,hd] */,
                          const float *cs /* [P, rot/2, 2] */, const int32_t *pos /* [T] */,
                          int64_t T, int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout) {
    int64_t half = rot / 2;
    for (int64_t t = 0; t < T; t++) {
        const float *c = cs + (int64_t)pos[t] * rot;
        for (int64_t h = 0; h < H; h++) {
            const float *dy = dout + (t * H + h) * hd;
            float *dx = din + (t * H + h) * hd;
            if (layout == CKE_ROPE_INTERLEAVED) {
                for (int64_t i = 0; i < rot; i += VL) {
                    int64_t n = rot - i;
                    vf g = vld_n(dy + i, n), cv = vld_n(c + i, n);
                    vf s = vmul(vswap_pairs(g), vdup_odd(cv));
                    /* even lanes a c + b s, odd lanes b c - a s */
                    vf d = vfmsubadd(g, vdup_even(cv), s);
                    vst_n(dx + i, vadd(vld_n(dx + i, n), d), n);
                }
            } else {
                for (int64_t k = 0; k < half; k += VL) {
                    int64_t n = half - k;
                    vf co, si;
                    vcs_split(&co, &si, c + 2 * k, n);
                    vf a = vld_n(dy + k, n), b = vld_n(dy + half + k, n);
                    vf da = vfma(a, co, vmul(b, si));
                    vf db = vfms(b, co, vmul(a, si));
                    vst_n(dx + k, vadd(vld_n(dx + k, n), da), n);
                    vst_n(dx + half + k, vadd(vld_n(dx + half + k, n), db), n);
                }
            }
            for (int64_t i = rot; i < hd; i += VL)
                vst_n(dx + i, vadd(vld_n(dx + i, hd - i), vld_n(dy + i, hd - i)), hd - i);
        }
    }
}
