/* Internal declarations of every kernel variant: cke_<op>_<isa>.
 * Sections per op family; each family's owner edits only its section. */
#ifndef CKE_KDECL_H
#define CKE_KDECL_H
#include "cke/kernels.h"

extern const cke_ktable cke_ktable_ref;
extern const cke_ktable cke_ktable_avx2;
extern const cke_ktable cke_ktable_avx512;

/* ==== gemm ==== */
/* Every GEMM entry has the table's gemm signature (cke/kernels.h): C [M, ldc], op(A) [M, K],
 * op(B) [K, N], C = alpha * op(A) . op(B) + beta * C */
#define CKE_GEMM_DECL(name)                                                                         \
    void name(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K,            \
              int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb, float alpha,       \
              float beta, void *ws, int nth)
CKE_GEMM_DECL(cke_gemm_ref);
CKE_GEMM_DECL(cke_gemm_avx2);
CKE_GEMM_DECL(cke_gemm_avx512);

/* BF16 GEMM (mixed-precision training): same contract as gemm, operands rounded to bf16 */
CKE_GEMM_DECL(cke_gemm_bf16_ref);
CKE_GEMM_DECL(cke_gemm_bf16_generic);
CKE_GEMM_DECL(cke_gemm_bf16_avx2); /* the FMA form: operands rounded while packed */
CKE_GEMM_DECL(cke_gemm_bf16_avx512);
/* the two AVX-512 forms cke_gemm_bf16_avx512 chooses between (cke_gemm_bf16_uses_dp: 1 = vdpbf16ps;
 * the _dp one needs AVX512_BF16); the same bits */
CKE_GEMM_DECL(cke_gemm_bf16_dp_avx512);
CKE_GEMM_DECL(cke_gemm_bf16_fma_avx512);
int cke_gemm_bf16_uses_dp(void);
/* gemm_bf16 with op(B) stored as bf16 (the table's gemm_bf16_b16) */
#define CKE_GEMM_B16_DECL(name)                                                                     \
    void name(float *C, const float *A, const uint16_t *B, int64_t M, int64_t N, int64_t K,         \
              int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb, float alpha,       \
              float beta, void *ws, int nth)
CKE_GEMM_B16_DECL(cke_gemm_bf16_b16_ref);
CKE_GEMM_B16_DECL(cke_gemm_bf16_b16_generic);
CKE_GEMM_B16_DECL(cke_gemm_bf16_b16_avx2);
CKE_GEMM_B16_DECL(cke_gemm_bf16_b16_avx512);
CKE_GEMM_B16_DECL(cke_gemm_bf16_b16_dp_avx512);
CKE_GEMM_B16_DECL(cke_gemm_bf16_b16_fma_avx512);
void cke_round_bf16_ref(uint16_t *y, const float *x, int64_t n);
void cke_round_bf16_avx2(uint16_t *y, const float *x, int64_t n);
void cke_round_bf16_avx512(uint16_t *y, const float *x, int64_t n);

/* Per-ISA pieces of the blocked GEMM; the ISA-independent driver (src/kernels/gemm.c) runs the
 * loops, threads and workspace. Limits the driver's ws size relies on: MR <= 16, NR <= 64,
 * KC <= 384, MC <= 16 * 16, NC <= 1024. */
typedef struct {
    int MR, NR;          /* register tile */
    int64_t KC, MC, NC;  /* cache blocks: KC x NR B sliver in L1, KC x NC packed B block in L2 */
    int64_t SMALL_M;     /* M <= SMALL_M with tb == CKE_TRANS: unpacked dot-product path */
    /* dst[ceil(mc/MR)][kc][MR] <- op(A)[i0 .. i0+mc, k0 .. k0+kc]; A already offset to (i0, k0)
     * of op(A); rows past mc in the last panel are zero. */
    void (*pack_a)(float *dst, const float *A, int64_t lda, cke_trans ta, int64_t mc, int64_t kc);
    /* dst[ceil(nc/NR)][kc][NR] <- op(B)[k0 .. k0+kc, j0 .. j0+nc]; columns past nc are zero. */
    void (*pack_b)(float *dst, const float *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc);
    /* the same from B stored as bf16 (BF16 descriptors only; NULL elsewhere) */
    void (*pack_b16)(float *dst, const uint16_t *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc);
    /* C[mr, nr] = alpha * a.b + beta * C (beta == 0: C not read); a [kc][MR], b [kc][NR];
     * every element sums its kc products in k order whatever mr, nr are. */
    void (*ukr)(float *C, int64_t ldc, const float *a, const float *b, int64_t kc, int mr, int nr,
                float alpha, float beta);
    /* Rows m < M of C[:, n0 .. n1) = alpha * X[m] . W[n] + beta * C (beta == 0: C not read);
     * X [M, ldx], W [N, ldw] rows contiguous along K. The M == 1 path is bandwidth bound. */
    void (*small_t)(float *C, int64_t ldc, const float *X, int64_t ldx, const float *W,
                    int64_t ldw, int64_t M, int64_t n0, int64_t n1, int64_t K, float alpha,
                    float beta);
} cke_gemm_isa;
void cke_gemm_drive(const cke_gemm_isa *g, float *C, const float *A, const float *B, int64_t M,
                    int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta,
                    cke_trans tb, float alpha, float beta, void *ws, int nth);
/* the same with op(B) stored as bf16: g->pack_b16 packs it (g has no small_t path) */
void cke_gemm_drive_b16(const cke_gemm_isa *g, float *C, const float *A, const uint16_t *B, int64_t M,
                        int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta,
                        cke_trans tb, float alpha, float beta, void *ws, int nth);
#define CKE_GEMM_B16_ENTRY(name, desc)                                                              \
    CKE_GEMM_B16_DECL(name) { cke_gemm_drive_b16(&(desc), C, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, nth); }
/* A table's GEMM entry: the driver over one ISA descriptor (C [M, ldc]; A, B as gemm's) */
#define CKE_GEMM_ENTRY(name, desc)                                                                  \
    CKE_GEMM_DECL(name) { cke_gemm_drive(&(desc), C, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, nth); }


/* ==== embed ==== */
void cke_embed_fwd_ref(float *out, const int32_t *tok, const float *table, int64_t T, int64_t D);
void cke_embed_bwd_ref(float *dtable, const float *dout, const int32_t *tok, int64_t T, int64_t D);
void cke_posemb_fwd_ref(float *x, const float *pos, int64_t pos0, int64_t T, int64_t D);
void cke_posemb_bwd_ref(float *dpos, const float *dx, int64_t pos0, int64_t T, int64_t D);
/* no SIMD embed variants: row memcpy/add already runs at memory speed */

/* ==== norm ==== */
void cke_rmsnorm_fwd_ref(float *out, float *rstd, const float *x, const float *w, int64_t T,
                        int64_t D, float eps, float w_offset);
void cke_rmsnorm_bwd_ref(float *dx, float *dw, const float *dout, const float *x, const float *w,
                        const float *rstd, int64_t T, int64_t D, float w_offset);
void cke_layernorm_fwd_ref(float *out, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int64_t T, int64_t D, float eps);
void cke_layernorm_bwd_ref(float *dx, float *dw, float *db, const float *dout, const float *x,
                          const float *w, const float *mean, const float *rstd, int64_t T, int64_t D);
void cke_rmsnorm_fwd_avx2(float *out, float *rstd, const float *x, const float *w, int64_t T,
                        int64_t D, float eps, float w_offset);
void cke_rmsnorm_bwd_avx2(float *dx, float *dw, const float *dout, const float *x, const float *w,
                        const float *rstd, int64_t T, int64_t D, float w_offset);
void cke_layernorm_fwd_avx2(float *out, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int64_t T, int64_t D, float eps);
void cke_layernorm_bwd_avx2(float *dx, float *dw, float *db, const float *dout, const float *x,
                          const float *w, const float *mean, const float *rstd, int64_t T, int64_t D);
void cke_rmsnorm_fwd_avx512(float *out, float *rstd, const float *x, const float *w, int64_t T,
                        int64_t D, float eps, float w_offset);
void cke_rmsnorm_bwd_avx512(float *dx, float *dw, const float *dout, const float *x, const float *w,
                        const float *rstd, int64_t T, int64_t D, float w_offset);
void cke_layernorm_fwd_avx512(float *out, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int64_t T, int64_t D, float eps);
void cke_layernorm_bwd_avx512(float *dx, float *dw, float *db, const float *dout, const float *x,
                          const float *w, const float *mean, const float *rstd, int64_t T, int64_t D);

/* ==== rope ==== */
void cke_rope_fwd_ref(float *out, const float *in, const float *cs, const int32_t *pos, int64_t T,
                     int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);
void cke_rope_bwd_ref(float *din, const float *dout, const float *cs, const int32_t *pos, int64_t T,
                     int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);
void cke_rope_fwd_avx2(float *out, const float *in, const float *cs, const int32_t *pos, int64_t T,
                     int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);
void cke_rope_bwd_avx2(float *din, const float *dout, const float *cs, const int32_t *pos, int64_t T,
                     int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);
void cke_rope_fwd_avx512(float *out, const float *in, const float *cs, const int32_t *pos, int64_t T,
                     int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);
void cke_rope_bwd_avx512(float *din, const float *dout, const float *cs, const int32_t *pos, int64_t T,
                     int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);
/* cke_rope_freqs / cke_rope_table (kernels.h) live in src/kernels/rope_table.c */

/* ==== act (softmax, activations, elementwise) ==== */
void cke_softmax_fwd_ref(float *out, const float *in, int64_t R, int64_t C, int64_t causal_pos0);
void cke_softmax_bwd_ref(float *din, const float *dout, const float *out, int64_t R, int64_t C);
void cke_silu_fwd_ref(float *out, const float *in, int64_t n);
void cke_silu_bwd_ref(float *din, const float *dout, const float *in, int64_t n);
void cke_gelu_fwd_ref(float *out, const float *in, int64_t n, cke_gelu_kind k);
void cke_gelu_bwd_ref(float *din, const float *dout, const float *in, int64_t n, cke_gelu_kind k);
void cke_swiglu_fwd_ref(float *out, const float *gate, const float *up, int64_t n);
void cke_swiglu_bwd_ref(float *dgate, float *dup, const float *dout, const float *gate,
                       const float *up, int64_t n);
void cke_geglu_fwd_ref(float *out, const float *gate, const float *up, int64_t n, cke_gelu_kind k);
void cke_geglu_bwd_ref(float *dgate, float *dup, const float *dout, const float *gate,
                      const float *up, int64_t n, cke_gelu_kind k);
void cke_add_fwd_ref(float *out, const float *a, const float *b, int64_t n);
void cke_axpy_ref(float *y, float a, const float *x, int64_t n);
void cke_scale_fwd_ref(float *out, const float *in, float s, int64_t n);
void cke_softcap_fwd_ref(float *out, const float *in, float cap, int64_t n);
void cke_softcap_bwd_ref(float *din, const float *dout, const float *in, float cap, int64_t n);
void cke_softmax_fwd_avx2(float *out, const float *in, int64_t R, int64_t C, int64_t causal_pos0);
void cke_softmax_bwd_avx2(float *din, const float *dout, const float *out, int64_t R, int64_t C);
void cke_silu_fwd_avx2(float *out, const float *in, int64_t n);
void cke_silu_bwd_avx2(float *din, const float *dout, const float *in, int64_t n);
void cke_gelu_fwd_avx2(float *out, const float *in, int64_t n, cke_gelu_kind k);
void cke_gelu_bwd_avx2(float *din, const float *dout, const float *in, int64_t n, cke_gelu_kind k);
void cke_swiglu_fwd_avx2(float *out, const float *gate, const float *up, int64_t n);
void cke_swiglu_bwd_avx2(float *dgate, float *dup, const float *dout, const float *gate,
                       const float *up, int64_t n);
void cke_geglu_fwd_avx2(float *out, const float *gate, const float *up, int64_t n, cke_gelu_kind k);
void cke_geglu_bwd_avx2(float *dgate, float *dup, const float *dout, const float *gate,
                      const float *up, int64_t n, cke_gelu_kind k);
void cke_add_fwd_avx2(float *out, const float *a, const float *b, int64_t n);
void cke_axpy_avx2(float *y, float a, const float *x, int64_t n);
void cke_scale_fwd_avx2(float *out, const float *in, float s, int64_t n);
void cke_softmax_fwd_avx512(float *out, const float *in, int64_t R, int64_t C, int64_t causal_pos0);
void cke_softmax_bwd_avx512(float *din, const float *dout, const float *out, int64_t R, int64_t C);
void cke_silu_fwd_avx512(float *out, const float *in, int64_t n);
void cke_silu_bwd_avx512(float *din, const float *dout, const float *in, int64_t n);
void cke_gelu_fwd_avx512(float *out, const float *in, int64_t n, cke_gelu_kind k);
void cke_gelu_bwd_avx512(float *din, const float *dout, const float *in, int64_t n, cke_gelu_kind k);
void cke_swiglu_fwd_avx512(float *out, const float *gate, const float *up, int64_t n);
void cke_swiglu_bwd_avx512(float *dgate, float *dup, const float *dout, const float *gate,
                       const float *up, int64_t n);
void cke_geglu_fwd_avx512(float *out, const float *gate, const float *up, int64_t n, cke_gelu_kind k);
void cke_geglu_bwd_avx512(float *dgate, float *dup, const float *dout, const float *gate,
                      const float *up, int64_t n, cke_gelu_kind k);
void cke_add_fwd_avx512(float *out, const float *a, const float *b, int64_t n);
void cke_axpy_avx512(float *y, float a, const float *x, int64_t n);
void cke_scale_fwd_avx512(float *out, const float *in, float s, int64_t n);

/* ==== attn ==== */
void cke_attn_fwd_ref(float *out, float *lse, const float *q, const float *k, const float *v,
                    const cke_attn_shape *s, void *ws, int nth);
void cke_attn_bwd_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                    const float *k, const float *v, const float *out, const float *lse,
                    const cke_attn_shape *s, void *ws, int nth);
void cke_attn_fwd_avx2(float *out, float *lse, const float *q, const float *k, const float *v,
                    const cke_attn_shape *s, void *ws, int nth);
void cke_attn_bwd_avx2(float *dq, float *dk, float *dv, const float *dout, const float *q,
                    const float *k, const float *v, const float *out, const float *lse,
                    const cke_attn_shape *s, void *ws, int nth);
void cke_attn_fwd_avx512(float *out, float *lse, const float *q, const float *k, const float *v,
                    const cke_attn_shape *s, void *ws, int nth);
void cke_attn_bwd_avx512(float *dq, float *dk, float *dv, const float *dout, const float *q,
                    const float *k, const float *v, const float *out, const float *lse,
                    const cke_attn_shape *s, void *ws, int nth);

void cke_attn_fwd_f16_ref(float *out, float *lse, const float *q, const uint16_t *k, const uint16_t *v,
                          const cke_attn_shape *s, void *ws, int nth);
void cke_attn_fwd_f16_avx2(float *out, float *lse, const float *q, const uint16_t *k, const uint16_t *v,
                           const cke_attn_shape *s, void *ws, int nth);
void cke_attn_fwd_f16_avx512(float *out, float *lse, const float *q, const uint16_t *k, const uint16_t *v,
                             const cke_attn_shape *s, void *ws, int nth);
void cke_attn_fwd_q8_0_ref(float *out, float *lse, const float *q, const void *k, const void *v,
                           const cke_attn_shape *s, void *ws, int nth);
void cke_attn_fwd_q8_0_avx2(float *out, float *lse, const float *q, const void *k, const void *v,
                            const cke_attn_shape *s, void *ws, int nth);
void cke_attn_fwd_q8_0_avx512(float *out, float *lse, const float *q, const void *k, const void *v,
                              const cke_attn_shape *s, void *ws, int nth);
void cke_f32_to_f16_ref(uint16_t *dst, const float *src, int64_t n);
void cke_f32_to_f16_avx2(uint16_t *dst, const float *src, int64_t n);
void cke_f32_to_f16_avx512(uint16_t *dst, const float *src, int64_t n);

/* ==== loss / optim ==== */
void cke_xent_fwd_bwd_ref(float *loss, float *dlogits, const float *logits, const int32_t *y,
                        int64_t T, int64_t V, int32_t ignore_index, float dscale, int nth);
void cke_adamw_ref(float *p, float *m, float *v, const float *g, int64_t n, float lr, float beta1,
                 float beta2, float eps, float wd, int64_t step, float grad_scale);
double cke_sumsq_ref(const float *x, int64_t n);
void cke_xent_fwd_bwd_avx2(float *loss, float *dlogits, const float *logits, const int32_t *y,
                        int64_t T, int64_t V, int32_t ignore_index, float dscale, int nth);
void cke_adamw_avx2(float *p, float *m, float *v, const float *g, int64_t n, float lr, float beta1,
                 float beta2, float eps, float wd, int64_t step, float grad_scale);
double cke_sumsq_avx2(const float *x, int64_t n);
void cke_xent_fwd_bwd_avx512(float *loss, float *dlogits, const float *logits, const int32_t *y,
                        int64_t T, int64_t V, int32_t ignore_index, float dscale, int nth);
void cke_adamw_avx512(float *p, float *m, float *v, const float *g, int64_t n, float lr, float beta1,
                 float beta2, float eps, float wd, int64_t step, float grad_scale);
double cke_sumsq_avx512(const float *x, int64_t n);

/* ==== quant (quantized formats; src/kernels/quant_blocks.h has the block layouts) ==== */
#define CKE_QOPS_DECL(isa)                                                                          \
    extern const cke_qtype_ops cke_qops_f16_##isa, cke_qops_bf16_##isa, cke_qops_q8_0_##isa,         \
        cke_qops_q8_1_##isa, cke_qops_q4_0_##isa, cke_qops_q4_1_##isa, cke_qops_q5_0_##isa,          \
        cke_qops_q5_1_##isa, cke_qops_q8_K_##isa, cke_qops_q4_K_##isa, cke_qops_q5_K_##isa,          \
        cke_qops_q6_K_##isa, cke_qops_q8_0r_##isa, cke_qops_q4_0r_##isa, cke_qops_q4_Kr_##isa,       \
        cke_qops_q8_0s_##isa, cke_qops_q8_Ki_##isa, cke_qops_q6_Kr_##isa, cke_qops_q8_K16_##isa,       \
        cke_qops_q5_Kr_##isa, cke_qops_q4_1r_##isa, cke_qops_q5_0r_##isa, cke_qops_q5_1r_##isa
CKE_QOPS_DECL(ref);
CKE_QOPS_DECL(avx2);
CKE_QOPS_DECL(avx512);
/* qops[] initializer of a table: the ggml type id of each format -> its ops */
#define CKE_QOPS_TABLE(isa)                                                                         \
    {[1] = &cke_qops_f16_##isa, [30] = &cke_qops_bf16_##isa, [8] = &cke_qops_q8_0_##isa,             \
     [9] = &cke_qops_q8_1_##isa, [2] = &cke_qops_q4_0_##isa, [3] = &cke_qops_q4_1_##isa,             \
     [6] = &cke_qops_q5_0_##isa, [7] = &cke_qops_q5_1_##isa, [15] = &cke_qops_q8_K_##isa,            \
     [12] = &cke_qops_q4_K_##isa, [13] = &cke_qops_q5_K_##isa, [14] = &cke_qops_q6_K_##isa,            \
     [40] = &cke_qops_q8_0r_##isa, [41] = &cke_qops_q4_0r_##isa, [42] = &cke_qops_q4_Kr_##isa,         \
     [43] = &cke_qops_q8_0s_##isa, [44] = &cke_qops_q8_Ki_##isa, [45] = &cke_qops_q6_Kr_##isa,         \
     [46] = &cke_qops_q8_K16_##isa, [47] = &cke_qops_q5_Kr_##isa, [48] = &cke_qops_q4_1r_##isa,        \
     [49] = &cke_qops_q5_0r_##isa, [50] = &cke_qops_q5_1r_##isa}
/* the reference quantizers serve every table: they run once per model (quantize) or per load */
void cke_quantize_row_f16_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_f16_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_bf16_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_bf16_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q8_0_ref(void *y, const float *x, int64_t k);
/* the repacked formats' spec (ref/quant_r.c), shared by every table for their conversions */
void cke_quantize_row_q8_0s_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q8_0s_ref(float *y, const void *x, int64_t k);
void cke_repack_row_q8_0r_ref(void *y, const void *x, int64_t k);
void cke_quantize_row_q8_0r_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q8_0r_ref(float *y, const void *x, int64_t k);
void cke_repack_row_q4_0r_ref(void *y, const void *x, int64_t k);
void cke_quantize_row_q4_0r_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q4_0r_ref(float *y, const void *x, int64_t k);
void cke_repack_row_q4_Kr_ref(void *y, const void *x, int64_t k);
void cke_quantize_row_q4_Kr_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q4_Kr_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q8_Ki_ref(void *y, const float *x, int64_t k);
void cke_repack_row_q6_Kr_ref(void *y, const void *x, int64_t k);
void cke_repack_row_q5_Kr_ref(void *y, const void *x, int64_t k);
void cke_repack_row_q4_1r_ref(void *y, const void *x, int64_t k);
void cke_quantize_row_q4_1r_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q4_1r_ref(float *y, const void *x, int64_t k);
void cke_repack_row_q5_0r_ref(void *y, const void *x, int64_t k);
void cke_quantize_row_q5_0r_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q5_0r_ref(float *y, const void *x, int64_t k);
void cke_repack_row_q5_1r_ref(void *y, const void *x, int64_t k);
void cke_quantize_row_q5_1r_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q5_1r_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q5_Kr_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q5_Kr_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q6_Kr_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q6_Kr_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q8_K16_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q8_K16_ref(float *y, const void *x, int64_t k);
void cke_dequantize_row_q8_Ki_ref(float *y, const void *x, int64_t k);
void cke_dequantize_row_q8_0_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q8_1_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q8_1_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q4_0_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q4_0_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q4_1_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q4_1_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q5_0_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q5_0_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q5_1_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q5_1_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q8_K_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q8_K_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q4_K_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q4_K_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q5_K_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q5_K_ref(float *y, const void *x, int64_t k);
void cke_quantize_row_q6_K_ref(void *y, const float *x, int64_t k);
void cke_dequantize_row_q6_K_ref(float *y, const void *x, int64_t k);
void cke_vec_dot_f16_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_bf16_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q8_0_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q4_0_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q4_1_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q5_0_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q5_1_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q4_K_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q5_K_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q6_K_ref(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_f16_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_bf16_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q8_0_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q4_0_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q4_1_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q5_0_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q5_1_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q4_K_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q5_K_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q6_K_avx2(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_f16_avx512(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_bf16_avx512(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q8_0_avx512(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q4_0_avx512(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q4_1_avx512(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q5_0_avx512(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q5_1_avx512(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q4_K_avx512(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q5_K_avx512(float *s, const void *w, const void *a, int64_t k);
void cke_vec_dot_q6_K_avx512(float *s, const void *w, const void *a, int64_t k);

#endif
