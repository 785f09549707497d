/* 8-lane float vector layer for the attention / loss / optimizer templates (attn_simd.h,
 * loss_simd.h, optim_simd.h, act_simd.h, norm_simd.h, rope_simd.h); exp/tanh come from vmath.h.
 * Compiled only with the avx2 folder's flags (Makefile). */
#ifndef CKE_AVX2_ATTN_VEC_H
#define CKE_AVX2_ATTN_VEC_H
#include <immintrin.h>
#include <stdint.h>

#include "vmath.h"
#include "../attn_x86.h"

#define VL 8
typedef __m256 vf;
typedef __m256 vmk; /* all-ones / all-zeros lanes */
#define KA_MR 6     /* 6 x 2 tiles: 12 accumulators + 2 loads + a broadcast in 16 ymm */
#define KA_NV 2
#define KB_MR 6
#define KB_NV 2
#define ISA_FN(x) x##_avx2

static inline vf vzero(void) { return _mm256_setzero_ps(); }
static inline vf vset1(float x) { return _mm256_set1_ps(x); }
static inline vf vld(const float *p) { return _mm256_loadu_ps(p); }
static inline void vst(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vmk vmk_n(int64_t n) {
    __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n > 8 ? 8 : n)), i));
}
static inline vf vldm(const float *p, vmk m) { return _mm256_maskload_ps(p, _mm256_castps_si256(m)); }
static inline void vstm(float *p, vmk m, vf v) { _mm256_maskstore_ps(p, _mm256_castps_si256(m), v); }
static inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vsqrt(vf a) { return _mm256_sqrt_ps(a); }
static inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline float vhmax(vf a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline float vhsum(vf a) {
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
/* lanes i with a <= col0 + i < b */
static inline vmk vmk_range(int64_t col0, int64_t a, int64_t b) {
    __m256i c = _mm256_add_epi32(_mm256_set1_epi32((int)col0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i ge = _mm256_cmpgt_epi32(c, _mm256_set1_epi32((int)a - 1));
    __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)b), c);
    return _mm256_castsi256_ps(_mm256_and_si256(ge, lt));
}
static inline vf vsel(vmk m, vf if0, vf if1) { return _mm256_blendv_ps(if0, if1, m); }
typedef __m256d vd;
static inline void vacc_d(vd *acc, vf x) {
    *acc = _mm256_add_pd(*acc, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
    *acc = _mm256_add_pd(*acc, _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
}
static inline vd vdzero(void) { return _mm256_setzero_pd(); }
static inline double vdhsum(vd a) {
    __m128d m = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(m, _mm_unpackhi_pd(m, m)));
}
static inline vmk vlt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vf vabs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }

/* exp and tanh from the elementwise family's vmath.h (v8_exp ~1-2 ulp, v8_tanh ~2-3 ulp).
 * exp(-inf) is 0 or a subnormal there: callers re-apply their masks after exp. */
static inline vf vexp(vf x) { return v8_exp(x); }
static inline vf vtanh(vf x) { return v8_tanh(x); }

/* For the elementwise / norm / rope templates (act_simd.h, norm_simd.h, rope_simd.h): the ops
 * whose two ISA forms differ only in the name prefix are written once in ../vec_ext.h. */
#define VMATH(f) v8_##f /* vmath.h function */
#define VINTR(f) _mm256_##f /* intrinsic */
#include "../vec_ext.h"

/* cos / sin of pairs [0, n), n <= VL, from interleaved (cos, sin) c */
static inline void vcs_split(vf *co, vf *si, const float *c, int64_t n) {
    vf a = v8_load_n(c, 2 * n), b = v8_load_n(c + VL, 2 * n - VL);
    /* in-lane shuffles give (c0 c1 c4 c5 | c2 c3 c6 c7); the 64-bit permute fixes the order */
    vf ce = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    vf so = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    *co = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ce), _MM_SHUFFLE(3, 1, 2, 0)));
    *si = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(so), _MM_SHUFFLE(3, 1, 2, 0)));
}
#endif
