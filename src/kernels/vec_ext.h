/* Vector-layer ops shared by both ISAs, included at the end of avx2/attn_vec.h and
 * avx512/attn_vec.h after they define vf, VL, VMATH(f) (the vmath.h name: v8_f / v16_f) and
 * VINTR(f) (the intrinsic name: _mm256_f / _mm512_f). For the elementwise / norm / rope
 * templates (act_simd.h, norm_simd.h, rope_simd.h). */
#ifndef CKE_VEC_EXT_H
#define CKE_VEC_EXT_H

/* first n floats (n >= VL: plain full-width access); masked lanes load 0 / fill */
static inline vf vld_n(const float *p, int64_t n) { return VMATH(load_n)(p, n); }
static inline vf vld_n_fill(const float *p, int64_t n, float fill) { return VMATH(load_n_fill)(p, n, fill); }
static inline void vst_n(float *p, vf v, int64_t n) { VMATH(store_n)(p, v, n); }
static inline vf vfms(vf a, vf b, vf c) { return VINTR(fmsub_ps)(a, b, c); }  /* a b - c */
static inline vf vfnma(vf a, vf b, vf c) { return VINTR(fnmadd_ps)(a, b, c); } /* c - a b */
/* vmath.h: sigmoid and the (s, 1 - s) pair ~2 ulp, normal CDF ~5e-7 rel., exp(-x^2/2) */
static inline vf vsigmoid(vf x) { return VMATH(sigmoid)(x); }
static inline void vsigmoid_pair(vf x, vf *s, vf *oms) { VMATH(sigmoid_pair)(x, s, oms); }
static inline vf vncdf(vf x) { return VMATH(ncdf)(x); }
static inline vf vexp_mhalfsq(vf x) { return VMATH(exp_mhalfsq)(x); }
/* RoPE, interleaved pairs: (x1, x0, x3, x2, ...); even (cos) / odd (sin) lanes duplicated;
 * even lanes a b - c with odd lanes a b + c (fmaddsub), and the converse (fmsubadd) */
static inline vf vswap_pairs(vf x) { return VINTR(permute_ps)(x, 0xB1); }
static inline vf vdup_even(vf x) { return VINTR(moveldup_ps)(x); }
static inline vf vdup_odd(vf x) { return VINTR(movehdup_ps)(x); }
static inline vf vfmaddsub(vf a, vf b, vf c) { return VINTR(fmaddsub_ps)(a, b, c); }
static inline vf vfmsubadd(vf a, vf b, vf c) { return VINTR(fmsubadd_ps)(a, b, c); }
#endif
