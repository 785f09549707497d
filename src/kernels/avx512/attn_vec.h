/* 16-lane float vector layer for the attention / loss / optimizer templates (attn_simd.h,
 * loss_simd.h, optim_simd.h, act_simd.h, norm_simd.h, rope_simd.h); exp/tanh come from vmath.h.
 * Compiled only with the avx512 folder's flags (Makefile). */
#ifndef CKE_AVX512_ATTN_VEC_H
#define CKE_AVX512_ATTN_VEC_H
#include <immintrin.h>
#include <stdint.h>

#include "vmath.h"
#include "../attn_x86.h"

#define VL 16
typedef __m512 vf;
typedef __mmask16 vmk;
#define KA_MR 4 /* S = A . Bt tile: rows x vectors (16 accumulators of 32 zmm) */
#define KA_NV 4
#define KB_MR 6 /* C += P . B tile (24 accumulators; 4-row tiles for narrow heads: kb) */
#define KB_NV 4
#define ISA_FN(x) x##_avx512

static inline vf vzero(void) { return _mm512_setzero_ps(); }
static inline vf vset1(float x) { return _mm512_set1_ps(x); }
static inline vf vld(const float *p) { return _mm512_loadu_ps(p); }
static inline void vst(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vmk vmk_n(int64_t n) { return n >= 16 ? (vmk)0xFFFF : (vmk)((1u << n) - 1u); }
static inline vf vldm(const float *p, vmk m) { return _mm512_maskz_loadu_ps(m, p); }
static inline void vstm(float *p, vmk m, vf v) { _mm512_mask_storeu_ps(p, m, v); }
static inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vsqrt(vf a) { return _mm512_sqrt_ps(a); }
static inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline float vhmax(vf a) { return _mm512_reduce_max_ps(a); }
static inline float vhsum(vf a) { return _mm512_reduce_add_ps(a); }
/* lanes i with a <= col0 + i < b */
static inline vmk vmk_range(int64_t col0, int64_t a, int64_t b) {
    __m512i c = _mm512_add_epi32(_mm512_set1_epi32((int)col0),
                                 _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    return _mm512_cmp_epi32_mask(c, _mm512_set1_epi32((int)a), _MM_CMPINT_NLT) &
           _mm512_cmp_epi32_mask(c, _mm512_set1_epi32((int)b), _MM_CMPINT_LT);
}
static inline vf vsel(vmk m, vf if0, vf if1) { return _mm512_mask_blend_ps(m, if0, if1); }
/* sum of squares of 16 lanes added into a double accumulator pair (lo 8, hi 8) */
static inline void vacc_d(__m512d *acc, vf x) {
    *acc = _mm512_add_pd(*acc, _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
    *acc = _mm512_add_pd(*acc, _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)));
}
typedef __m512d vd;
static inline vd vdzero(void) { return _mm512_setzero_pd(); }
static inline double vdhsum(vd a) { return _mm512_reduce_add_pd(a); }
static inline vmk vlt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vf vabs(vf a) { return _mm512_abs_ps(a); }

/* exp and tanh from the elementwise family's vmath.h (v16_exp ~1-2 ulp, v16_tanh ~2-3 ulp).
 * exp(-inf) is 0 or a subnormal there: callers re-apply their masks after exp. */
static inline vf vexp(vf x) { return v16_exp(x); }
static inline vf vtanh(vf x) { return v16_tanh(x); }

/* For the elementwise / norm / rope templates (act_simd.h, norm_simd.h, rope_simd.h): the ops
 * whose two ISA forms differ only in the name prefix are written once in ../vec_ext.h. */
#define VMATH(f) v16_##f /* vmath.h function */
#define VINTR(f) _mm512_##f /* intrinsic */
#include "../vec_ext.h"

/* cos / sin of pairs [0, n), n <= VL, from interleaved (cos, sin) c */
static inline void vcs_split(vf *co, vf *si, const float *c, int64_t n) {
    vf a = v16_load_n(c, 2 * n), b = v16_load_n(c + VL, 2 * n - VL);
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    *co = _mm512_permutex2var_ps(a, ie, b);
    *si = _mm512_permutex2var_ps(a, io, b);
}
#endif
