/* Declarations of the aarch64 kernel variants (cke_<op>_neon, cke_<op>_neon_dot) and their two
 * tables; kept here so that x86 builds never see them. neon/ is compiled with -march=armv8-a,
 * neon/dot/ with -march=armv8.2-a+dotprod (Makefile); dispatch.c picks by AT_HWCAP. */
#ifndef CKE_NEON_NDECL_H
#define CKE_NEON_NDECL_H
#include "cke/kernels.h"

extern const cke_ktable cke_ktable_neon;
extern const cke_ktable cke_ktable_neon_dot;

void cke_gemm_neon(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K,
                   int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb, float alpha,
                   float beta, void *ws, int nth);
void cke_rmsnorm_fwd_neon(float *out, float *rstd, const float *x, const float *w, int64_t T,
                        int64_t D, float eps, float w_offset);
void cke_rmsnorm_bwd_neon(float *dx, float *dw, const float *dout, const float *x, const float *w,
                        const float *rstd, int64_t T, int64_t D, float w_offset);
void cke_layernorm_fwd_neon(float *out, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int64_t T, int64_t D, float eps);
void cke_layernorm_bwd_neon(float *dx, float *dw, float *db, const float *dout, const float *x,
                          const float *w, const float *mean, const float *rstd, int64_t T, int64_t D);
void cke_rope_fwd_neon(float *out, const float *in, const float *cs, const int32_t *pos, int64_t T,
                     int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);
void cke_rope_bwd_neon(float *din, const float *dout, const float *cs, const int32_t *pos, int64_t T,
                     int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);
void cke_softmax_fwd_neon(float *out, const float *in, int64_t R, int64_t C, int64_t causal_pos0);
void cke_softmax_bwd_neon(float *din, const float *dout, const float *out, int64_t R, int64_t C);
void cke_silu_fwd_neon(float *out, const float *in, int64_t n);
void cke_silu_bwd_neon(float *din, const float *dout, const float *in, int64_t n);
void cke_gelu_fwd_neon(float *out, const float *in, int64_t n, cke_gelu_kind k);
void cke_gelu_bwd_neon(float *din, const float *dout, const float *in, int64_t n, cke_gelu_kind k);
void cke_swiglu_fwd_neon(float *out, const float *gate, const float *up, int64_t n);
void cke_swiglu_bwd_neon(float *dgate, float *dup, const float *dout, const float *gate,
                       const float *up, int64_t n);
void cke_geglu_fwd_neon(float *out, const float *gate, const float *up, int64_t n, cke_gelu_kind k);
void cke_geglu_bwd_neon(float *dgate, float *dup, const float *dout, const float *gate,
                      const float *up, int64_t n, cke_gelu_kind k);
void cke_add_fwd_neon(float *out, const float *a, const float *b, int64_t n);
void cke_axpy_neon(float *y, float a, const float *x, int64_t n);
void cke_scale_fwd_neon(float *out, const float *in, float s, int64_t n);
void cke_attn_fwd_neon(float *out, float *lse, const float *q, const float *k, const float *v,
                    const cke_attn_shape *s, void *ws, int nth);
void cke_attn_bwd_neon(float *dq, float *dk, float *dv, const float *dout, const float *q,
                    const float *k, const float *v, const float *out, const float *lse,
                    const cke_attn_shape *s, void *ws, int nth);
void cke_attn_fwd_f16_neon(float *out, float *lse, const float *q, const uint16_t *k, const uint16_t *v,
                           const cke_attn_shape *s, void *ws, int nth);
void cke_attn_fwd_q8_0_neon(float *out, float *lse, const float *q, const void *k, const void *v,
                            const cke_attn_shape *s, void *ws, int nth);
void cke_f32_to_f16_neon(uint16_t *dst, const float *src, int64_t n);
void cke_xent_fwd_bwd_neon(float *loss, float *dlogits, const float *logits, const int32_t *y,
                        int64_t T, int64_t V, int32_t ignore_index, float dscale, int nth);
void cke_adamw_neon(float *p, float *m, float *v, const float *g, int64_t n, float lr, float beta1,
                 float beta2, float eps, float wd, int64_t step, float grad_scale);
double cke_sumsq_neon(const float *x, int64_t n);

/* quantized dots: vmull_s8 / vpadalq_s16 (neon) and vdotq_s32 (neon_dot) */
#define CKE_NEON_QDECL(isa)                                                                         \
    void cke_vec_dot_f16_##isa(float *s, const void *w, const void *a, int64_t k);                \
    void cke_vec_dot_q8_0_##isa(float *s, const void *w, const void *a, int64_t k);               \
    void cke_vec_dot_q4_0_##isa(float *s, const void *w, const void *a, int64_t k);               \
    void cke_vec_dot_q4_K_##isa(float *s, const void *w, const void *a, int64_t k);               \
    void cke_vec_dot_q6_K_##isa(float *s, const void *w, const void *a, int64_t k);               \
    extern const cke_qtype_ops cke_qops_f16_##isa, cke_qops_q8_0_##isa, cke_qops_q4_0_##isa,        \
        cke_qops_q4_K_##isa, cke_qops_q6_K_##isa
CKE_NEON_QDECL(neon);
CKE_NEON_QDECL(neon_dot);
#endif
