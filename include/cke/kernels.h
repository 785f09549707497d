/* cke kernel library: fp32 transformer ops, forward and backward.
 *
 * Conventions (every kernel follows them; see docs/ARCHITECTURE.md):
 *  - Row-major float32. Outputs first, then inputs, then dimensions, then parameters.
 *  - Every pointer carries a shape comment; dimensions are int64_t.
 *  - Backward kernels ACCUMULATE (+=) into every gradient they write (dX, dW, db ...):
 *    a value used twice (residual stream, tied embeddings) just gets two calls, and
 *    gradient accumulation over micro-batches is free. Callers zero gradients.
 *    The one exception is the fused cross-entropy, which writes dlogits (it may alias logits).
 *  - Kernels are pure: no allocation, no globals, no I/O. Scratch comes from the caller
 *    (`ws`, sized by the matching *_ws_size function), i.e. from the memory plan.
 *  - Threading: kernels that take `nth` open their own OpenMP parallel region with exactly
 *    nth threads and a static partition of the work (docs/ARCHITECTURE.md, "Threading").
 *    Every output element is produced by one thread in a fixed order, so results are
 *    bitwise identical for a given thread count (and, for most kernels, for any count).
 *  - Each kernel exists as a scalar `_ref` (the spec) and as SIMD variants per ISA; the
 *    active variant is picked once from CPUID / AT_HWCAP (cke_kernels_init) through one
 *    dispatch table. CKE_ISA=ref|avx2|avx512|neon|neon_dot forces a level.
 */
#ifndef CKE_KERNELS_H
#define CKE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CKE_ISA_REF = 0,   /* portable scalar C: the specification */
    CKE_ISA_AVX2 = 1,  /* AVX2 + FMA */
    CKE_ISA_AVX512 = 2,/* AVX-512 F/BW/VL (+ FMA) */
    CKE_ISA_NEON = 3,  /* aarch64 Advanced SIMD (armv8-a) */
    CKE_ISA_NEON_DOT = 4, /* + the dot product (armv8.2-a sdot): quantized dots use vdotq_s32 */
    CKE_ISA_COUNT
} cke_isa;

typedef enum {
    CKE_ROPE_INTERLEAVED = 0, /* pairs (2i, 2i+1): llama2.c, GGUF llama */
    CKE_ROPE_HALVES = 1       /* pairs (i, i + rot/2): HF / GPT-NeoX */
} cke_rope_layout;

typedef enum {
    CKE_GELU_ERF = 0,  /* exact: x * 0.5 * (1 + erf(x / sqrt 2)) */
    CKE_GELU_TANH = 1  /* GPT-2 "gelu_new": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
} cke_gelu_kind;

/* Causal self-attention over one sequence, grouped-query heads.
 * Query row t (0 <= t < T) sits at absolute position p = Tk - T + t and sees key j iff
 * j <= p and (window == 0 || j > p - window). Query head h reads kv head h / (n_head / n_kv_head). */
typedef struct {
    int64_t T;          /* query rows */
    int64_t Tk;         /* key/value rows (past + T); Tk >= T */
    int64_t n_head;     /* query heads */
    int64_t n_kv_head;  /* key/value heads; divides n_head */
    int64_t head_dim;
    float scale;        /* logit scale, usually 1/sqrt(head_dim) */
    int64_t window;     /* sliding window in positions; 0 = unlimited */
    float softcap;      /* 0 = none; else logits s -> softcap * tanh(s / softcap) (Gemma 2) */
} cke_attn_shape;

/* GEMM operand transposition. C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C
 *  op(A) = A   (A stored [M, lda>=K])   or A^T (A stored [K, lda>=M])
 *  op(B) = B   (B stored [K, ldb>=N])   or B^T (B stored [N, ldb>=K]): the linear-layer form */
typedef enum { CKE_NOTRANS = 0, CKE_TRANS = 1 } cke_trans;

/* ---- quantized weights (src/kernels/{ref,avx2,avx512}/quant.c, src/kernels/qlinear.c) ----
 * Block formats are ggml's, bit for bit (GGUF tensor data is used as is). A table's qops[] is
 * indexed by the ggml type id (formats/dtype.h cke_dtype: F16 = 1, Q4_0 = 2, Q8_0 = 8, Q4_K = 12 ...);
 * NULL = not supported. Weights are dotted against activations quantized to the type's
 * vec_dot_type (Q8_0, Q8_1 or Q8_K, themselves entries of qops), or against f32 (vec_dot_type 0)
 * for F16/BF16.
 * Ids 40..55 are cke's own: GGUF formats repacked for SIMD (same bytes per row, rearranged within
 * the row; src/kernels/ref/quant_r.c is their spec) that the compiler stores in weights.bin, and
 * their activation format. GGUF files never hold them. */
#define CKE_QTYPE_COUNT 56
typedef struct cke_qtype_ops {
    const char *name;    /* ggml's name: "q4_K" */
    int64_t blck;        /* elements per block */
    int64_t type_size;   /* bytes per block */
    int vec_dot_type;    /* ggml id of the activation format vec_dot takes; 0 = f32 */
    /* y[k/blck blocks] <- x[k]; deterministic, same rounding as ggml's reference quantizer */
    void (*quantize_row)(void *y, const float *x /* [k] */, int64_t k);
    /* y[k] <- x[k/blck blocks], exactly per the format's definition */
    void (*dequantize_row)(float *y /* [k] */, const void *x, int64_t k);
    /* *s = sum_i w[i] * a[i]; w: k/blck blocks of this type, a: k elements of vec_dot_type */
    void (*vec_dot)(float *s, const void *w, const void *a, int64_t k);
    /* prefill tile (NULL = not supported; _0 formats with Q8_0 activations): y[r * ldy] = sum_i
     * w[i] * a_r[i] for r < nr (1..4), activation row r given split as u8 codes aq + r * k
     * (Q8_0 quants + 128, k bytes) and f32 block scales ad + r * (k / 32) (the Q8_0 f16 scales,
     * converted exactly) */
    void (*vec_dot_4)(float *y, int64_t ldy, const void *w, const uint8_t *aq, const float *ad, int nr, int64_t k);
    /* repacked formats: the GGUF type this one rearranges (0: none) and the exact conversion of
     * one row of k elements from it */
    int repack_of;
    void (*repack_row)(void *y, const void *x, int64_t k);
    /* repacked formats, decode and prefill alike: y[r * ldy] = sum_i w[i] * a_r[i] for r < nr
     * (1..4), a_r = (const char *)a + r * as, rows of k elements in vec_dot_type; the weight row
     * is decoded once for the nr activation rows */
    void (*dot_rows)(float *y, int64_t ldy, const void *w, const void *a, size_t as, int nr, int64_t k);
    /* repacked formats, decode: y[n] = w_n . a for n < nw, w_n = (const char *)w + n * rs (a
     * thread's rows of the GEMV in one call: a row's fixed cost is ~20% of a 2048-wide one) */
    void (*gemv)(float *y, const void *w, size_t rs, int64_t nw, const void *a, int64_t k);
    /* repacked formats, M >= 2 rows (prefill, decode_batch), NULL = dot_rows: a register tile
     * y[r * ldy + j] = w_j . a_r for j < nw (1..tile_nw), r < na (1..tile_na), w_j = (const char
     * *)w + j * rs, a_r = (const char *)a + r * as; each decoded weight vector serves the na rows.
     * Every element gets exactly dot_rows' float operations: results equal dot_rows' bit for bit */
    void (*gemm_tile)(float *y, int64_t ldy, const void *w, size_t rs, int nw, const void *a, size_t as, int na, int64_t k);
    int tile_nw, tile_na;
    /* repacked formats (q4_Kr, q6_Kr; q4_0r, q8_0r with k a multiple of 256), prefill (M >=
     * CKE_QPANEL_MIN_M), NULL = gemm_tile: panel_pack rearranges
     * nw (1..32) weight rows w + j * rs into a column panel P (CKE_QPANEL_SB_BYTES per super-block,
     * layout in quant_r_simd.h); panel_gemm sets y[r * ldy + j] for r < na (1..4), j < nw, from
     * super-blocks [i0, i1) of the rows (i0 > 0: added to y's values, the earlier super-blocks').
     * Each element in a fixed order (the same for every M, thread and chunking), not dot_rows'. */
    void (*panel_pack)(void *P, const void *w, size_t rs, int nw, int64_t k);
    void (*panel_gemm)(float *y, int64_t ldy, int nw, const void *P, const void *a, size_t as, int na, int64_t k,
                       int64_t i0, int64_t i1);
} cke_qtype_ops;
#define CKE_QPANEL_SB_BYTES 10240 /* a column panel's bytes per super-block (32 columns x 256) */
#define CKE_QPANEL_MIN_M 24       /* rows from which the K formats' prefill packs panels (packing a
                                   * panel costs ~18 rows of the row tiles, bench/quant/qgemm.c) */

/* the repacked id of a GGUF type (itself when it has none) and back */
int cke_qtype_repacked(int qtype);

/* One entry per kernel; one table per ISA. Docs for each slot sit next to the _ref. */
typedef struct cke_ktable {
    const char *name;

    /* ---- GEMM (src/kernels/ref/gemm.c, src/kernels/gemm.c driver) ---- */
    void (*gemm)(float *C /* [M, ldc] */, const float *A, const float *B,
                 int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
                 cke_trans ta, cke_trans tb, float alpha, float beta, void *ws, int nth);
    /* the same with op(A) and op(B) rounded to bf16 and fp32 accumulation (vdpbf16ps): the
     * linear layers of mixed-precision training; workspace cke_gemm_ws_size as gemm's
     * (ref/gemm_bf16.c is the spec; avx512/gemm_bf16.c; gemm_bf16.c elsewhere, same bits) */
    void (*gemm_bf16)(float *C /* [M, ldc] */, const float *A, const float *B,
                      int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
                      cke_trans ta, cke_trans tb, float alpha, float beta, void *ws, int nth);
    /* gemm_bf16 with B stored as bf16 (the high halves of fp32 values: an activation mixed precision
     * saved for the weight gradient, dW = dY^T X): the bits of gemm_bf16 on B's exact widening to
     * fp32, without that copy */
    void (*gemm_bf16_b16)(float *C /* [M, ldc] */, const float *A, const uint16_t *B,
                          int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
                          cke_trans ta, cke_trans tb, float alpha, float beta, void *ws, int nth);
    /* y[i] = x[i] rounded to bf16 as the GEMMs' packing rounds (vcvtneps2bf16: nearest even,
     * denormals to zero, NaN quiet) (ref/gemm_bf16.c) */
    void (*round_bf16)(uint16_t *y /* [n] */, const float *x /* [n] */, int64_t n);

    /* ---- embedding (ref/embed.c) ---- */
    void (*embed_fwd)(float *out /* [T,D] */, const int32_t *tok /* [T] */,
                      const float *table /* [V,D] */, int64_t T, int64_t D);
    void (*embed_bwd)(float *dtable /* [V,D] += */, const float *dout /* [T,D] */,
                      const int32_t *tok /* [T] */, int64_t T, int64_t D);
    void (*posemb_fwd)(float *x /* [T,D] += pos[pos0+t] */, const float *pos /* [P,D] */,
                       int64_t pos0, int64_t T, int64_t D);
    void (*posemb_bwd)(float *dpos /* [P,D] += */, const float *dx /* [T,D] */,
                       int64_t pos0, int64_t T, int64_t D);

    /* ---- norms (ref/norm.c) ---- */
    void (*rmsnorm_fwd)(float *out /* [T,D] */, float *rstd /* [T] or NULL */,
                        const float *x /* [T,D] */, const float *w /* [D] */,
                        int64_t T, int64_t D, float eps, float w_offset /* 0, or 1 for (1+w) */);
    void (*rmsnorm_bwd)(float *dx /* [T,D] += */, float *dw /* [D] += */,
                        const float *dout /* [T,D] */, const float *x /* [T,D] */,
                        const float *w /* [D] */, const float *rstd /* [T] */,
                        int64_t T, int64_t D, float w_offset);
    void (*layernorm_fwd)(float *out /* [T,D] */, float *mean /* [T] or NULL */,
                          float *rstd /* [T] or NULL */, const float *x /* [T,D] */,
                          const float *w /* [D] */, const float *b /* [D] or NULL */,
                          int64_t T, int64_t D, float eps);
    void (*layernorm_bwd)(float *dx /* [T,D] += */, float *dw /* [D] += */,
                          float *db /* [D] += or NULL */, const float *dout /* [T,D] */,
                          const float *x /* [T,D] */, const float *w /* [D] */,
                          const float *mean /* [T] */, const float *rstd /* [T] */,
                          int64_t T, int64_t D);

    /* ---- RoPE (ref/rope.c); cs = cke_rope_table output, indexed by position ---- */
    void (*rope_fwd)(float *out /* [T,H,hd], may alias in */, const float *in /* [T,H,hd] */,
                     const float *cs /* [P, rot/2, 2] (cos, sin) */, const int32_t *pos /* [T] */,
                     int64_t T, int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);
    void (*rope_bwd)(float *din /* [T,H,hd] += */, const float *dout /* [T,H,hd] */,
                     const float *cs, const int32_t *pos /* [T] */,
                     int64_t T, int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout);

    /* ---- softmax, activations, elementwise (ref/act.c) ---- */
    void (*softmax_fwd)(float *out /* [R,C] */, const float *in /* [R,C] */, int64_t R, int64_t C,
                        int64_t causal_pos0 /* <0: no mask; else row r sees cols <= pos0 + r */);
    void (*softmax_bwd)(float *din /* [R,C] += */, const float *dout /* [R,C] */,
                        const float *out /* [R,C] */, int64_t R, int64_t C);
    void (*silu_fwd)(float *out /* [n] */, const float *in /* [n] */, int64_t n);
    void (*silu_bwd)(float *din /* [n] += */, const float *dout, const float *in, int64_t n);
    void (*gelu_fwd)(float *out /* [n] */, const float *in /* [n] */, int64_t n, cke_gelu_kind k);
    void (*gelu_bwd)(float *din /* [n] += */, const float *dout, const float *in, int64_t n,
                     cke_gelu_kind k);
    void (*swiglu_fwd)(float *out /* [n] = silu(gate) * up */, const float *gate /* [n] */,
                       const float *up /* [n] */, int64_t n);
    void (*swiglu_bwd)(float *dgate /* [n] += */, float *dup /* [n] += */, const float *dout,
                       const float *gate, const float *up, int64_t n);
    void (*geglu_fwd)(float *out /* [n] = gelu(gate) * up */, const float *gate, const float *up,
                      int64_t n, cke_gelu_kind k);
    void (*geglu_bwd)(float *dgate /* [n] += */, float *dup /* [n] += */, const float *dout,
                      const float *gate, const float *up, int64_t n, cke_gelu_kind k);
    void (*add_fwd)(float *out /* [n] = a + b, may alias */, const float *a, const float *b, int64_t n);
    void (*axpy)(float *y /* [n] += a * x */, float a, const float *x /* [n] */, int64_t n);
    void (*scale_fwd)(float *out /* [n] = s * in, may alias */, const float *in, float s, int64_t n);
    void (*softcap_fwd)(float *out /* [n] = cap * tanh(in / cap), may alias */, const float *in /* [n] */,
                        float cap, int64_t n);
    void (*softcap_bwd)(float *din /* [n] += */, const float *dout /* [n] */, const float *in /* [n] */,
                        float cap, int64_t n);

    /* ---- attention (ref/attn.c) ---- */
    void (*attn_fwd)(float *out /* [T, n_head, hd] */, float *lse /* [n_head, T] or NULL */,
                     const float *q /* [T, n_head, hd] */, const float *k /* [Tk, n_kv_head, hd] */,
                     const float *v /* [Tk, n_kv_head, hd] */, const cke_attn_shape *s,
                     void *ws, int nth);
    void (*attn_bwd)(float *dq /* [T, n_head, hd] += */, float *dk /* [Tk, n_kv_head, hd] += */,
                     float *dv /* [Tk, n_kv_head, hd] += */, const float *dout /* [T, n_head, hd] */,
                     const float *q, const float *k, const float *v,
                     const float *out /* [T, n_head, hd] */, const float *lse /* [n_head, T] */,
                     const cke_attn_shape *s, void *ws, int nth);
    /* The forward against a KV cache stored as IEEE half (the default --kv-type f16): k and v
     * hold the f16 bits, widened exactly to f32 as they are read; same semantics, workspace
     * (cke_attn_ws_size) and determinism as attn_fwd on the widened values. */
    void (*attn_fwd_f16)(float *out /* [T, n_head, hd] */, float *lse /* [n_head, T] or NULL */,
                         const float *q /* [T, n_head, hd] */, const uint16_t *k /* [Tk, n_kv_head, hd] */,
                         const uint16_t *v /* [Tk, n_kv_head, hd] */, const cke_attn_shape *s,
                         void *ws, int nth);
    /* The forward against a Q8_0 KV cache (--kv-type q8_0): a cache row of n_kv_head * hd values
     * is (n_kv_head * hd / 32) ggml Q8_0 blocks (f16 scale d, 32 int8 q: x = d * q), kv head g's
     * row at byte ((j * n_kv_head + g) * hd / 32) * 34; hd a multiple of 32. Same semantics,
     * workspace and determinism as attn_fwd on the dequantized values. */
    void (*attn_fwd_q8_0)(float *out /* [T, n_head, hd] */, float *lse /* [n_head, T] or NULL */,
                          const float *q /* [T, n_head, hd] */, const void *k /* [Tk] Q8_0 rows */,
                          const void *v /* [Tk] Q8_0 rows */, const cke_attn_shape *s, void *ws, int nth);
    /* dst[n] = f32 -> f16, round to nearest even (overflow -> inf), the KV cache's one write
     * conversion: every ISA gives the same bits */
    void (*f32_to_f16)(uint16_t *dst /* [n] */, const float *src /* [n] */, int64_t n);

    /* ---- loss and optimizer (ref/loss.c, ref/optim.c) ---- */
    /* Softmax + cross-entropy fused: loss[t] = logsumexp(logits[t]) - logits[t][y_t] (0 where
     * y_t == ignore_index); dlogits[t] = dscale * (softmax(logits[t]) - onehot(y_t)) (0 rows for
     * ignored). dlogits is WRITTEN (not accumulated) and may alias logits; NULL skips it. */
    void (*xent_fwd_bwd)(float *loss /* [T] */, float *dlogits /* [T,V] or NULL */,
                         const float *logits /* [T,V] */, const int32_t *y /* [T] */,
                         int64_t T, int64_t V, int32_t ignore_index, float dscale, int nth);
    /* AdamW with bias correction (step >= 1) and decoupled weight decay:
     * p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p) */
    void (*adamw)(float *p /* [n] */, float *m /* [n] */, float *v /* [n] */,
                  const float *g /* [n] */, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, int64_t step, float grad_scale /* g is used as g*scale */);
    double (*sumsq)(const float *x /* [n] */, int64_t n); /* sum of squares, for clipping */

    /* ---- quantized formats (ref/quant.c), indexed by ggml type id; see cke_qtype_ops ---- */
    const cke_qtype_ops *qops[CKE_QTYPE_COUNT];
} cke_ktable;

/* ---- dispatch (src/kernels/dispatch.c) ---- */
/* Picks the best supported ISA (or CKE_ISA from the environment). Returns 0, or -1 when CKE_ISA
 * names an unknown or unsupported level (then the best supported one stays active). Idempotent. */
int cke_kernels_init(void);
const cke_ktable *cke_k(void);                  /* the active table (inits on first use) */
cke_isa cke_isa_active(void);
int cke_isa_supported(cke_isa isa);             /* by this CPU and this build */
const cke_ktable *cke_ktable_for(cke_isa isa);  /* NULL when unsupported */
const char *cke_isa_name(cke_isa isa);
int cke_isa_parse(const char *s, cke_isa *out); /* "ref" | "avx2" | "avx512" | "neon" | "neon_dot" -> 0, else -1 */
/* Whose code a slot of the active table runs (a table may point at a lower level's function or
 * the _ref): slot = offsetof(cke_ktable, rmsnorm_fwd), or for a quantized format's op
 * offsetof(cke_qtype_ops, gemv). For the profiler's kernel names. */
cke_isa cke_kernel_slot_isa(size_t slot);
cke_isa cke_kernel_qslot_isa(int qtype, size_t slot);
/* How the active table's gemm_bf16 multiplies (its forms give the same bits): "vdpbf16ps",
 * "FMAs" (on bf16-rounded panels), "portable" (C), "double sums" (the ref). */
const char *cke_gemm_bf16_form(void);

/* ---- workspace sizes (bytes) for kernels that take ws; same for every ISA ---- */
size_t cke_gemm_ws_size(int64_t M, int64_t N, int64_t K, int nth);
size_t cke_attn_ws_size(const cke_attn_shape *s, int nth);       /* forward */
size_t cke_attn_bwd_ws_size(const cke_attn_shape *s, int nth);

/* ---- composite ops built on the table (src/kernels/linear.c) ---- */
/* Y[M,N] = X[M,K] . W[N,K]^T (+ b[N]) */
void cke_linear_fwd(const cke_ktable *kt, float *Y /* [M,N] */, const float *X /* [M,K] */,
                    const float *W /* [N,K] */, const float *b /* [N] or NULL */,
                    int64_t M, int64_t K, int64_t N, void *ws, int nth);
/* dX += dY . W ; dW += dY^T . X ; db += sum_rows dY. Any of dX, dW, db may be NULL. */
void cke_linear_bwd(const cke_ktable *kt, float *dX /* [M,K] += */, float *dW /* [N,K] += */,
                    float *db /* [N] += */, const float *dY /* [M,N] */, const float *X /* [M,K] */,
                    const float *W /* [N,K] */, int64_t M, int64_t K, int64_t N, void *ws, int nth);
/* The same with X saved as bf16 (mixed precision): dX on kt->gemm, dW on kt->gemm_bf16_b16, the
 * bits cke_linear_bwd gives with kt->gemm = gemm_bf16 and X's fp32 values. */
void cke_linear_bwd_b16(const cke_ktable *kt, float *dX /* [M,K] += */, float *dW /* [N,K] += */,
                        float *db /* [N] += */, const float *dY /* [M,N] */, const uint16_t *X /* [M,K] bf16 */,
                        const float *W /* [N,K] */, int64_t M, int64_t K, int64_t N, void *ws, int nth);
/* Batched GEMM for attention-style products: for each b < batch,
 * C + b*sc = alpha op(A + b*sa) op(B + b*sb) + beta C; batches split across threads. */
void cke_gemm_batched(const cke_ktable *kt, float *C, const float *A, const float *B,
                      int64_t batch, int64_t sc, int64_t sa, int64_t sb,
                      int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
                      cke_trans ta, cke_trans tb, float alpha, float beta, void *ws, int nth);
size_t cke_gemm_batched_ws_size(int64_t M, int64_t N, int64_t K, int nth);

/* How a MoE router turns one row's router logits r [E] into k experts and their weights. */
typedef struct {
    int sigmoid;        /* 0: scores softmax(r) over all E (Mixtral, Qwen-MoE, OLMoE); 1: scores sigmoid(r) (DeepSeek-V3, GLM-4.5) */
    int renorm;         /* the k weights divided by their sum (softmax: = a softmax over the k logits, as today; sigmoid: sum + 1e-20, as HF) */
    const float *bias;  /* [E] or NULL: added to the scores for the choice only, never to the weights (e_score_correction_bias) */
    int64_t n_group;    /* group-limited routing: the E experts in n_group equal consecutive groups, each group ranked by the
                         * sum of its two largest choice scores (score + bias), only the topk_group best groups' experts may
                         * be chosen; n_group <= 1: no groups */
    int64_t topk_group;
    float scale;        /* every weight multiplied by it (routed_scaling_factor); 1: none */
} cke_moe_gate;

/* 0 if gate routes E experts k at a time, else -1: gate NULL, k outside 1..E, scale not a finite number > 0
 * (a zeroed struct is refused, not silently all-zero), or with n_group > 1: E not a multiple of
 * n_group, topk_group outside 1..n_group, or k > topk_group * (E / n_group) (fewer experts allowed
 * than chosen). */
int cke_moe_gate_check(const cke_moe_gate *gate, int64_t E, int64_t k);

/* Mixture-of-experts FFN (src/kernels/moe.c; the spec is cke_moe_fwd_ref, src/kernels/ref/moe.c).
 * For each row x_t [D]: router logits r = router . x_t [E]; scores s = softmax(r) over all E or
 * sigmoid(r) (route->sigmoid); choice scores c = s + bias (the softmax without bias or groups ranks
 * r itself: the same order, and today's bits); with groups (HF's DeepseekV3TopkRouter /
 * Glm4MoeTopkRouter), each group's score is the sum of its two largest c (its one c when a group is
 * a single expert), the topk_group best groups are kept and the others' experts are never chosen;
 * the k largest c among those left are chosen (a tie goes to the lower index, for groups too; a
 * NaN never wins over a number); weights w = s of the chosen (never the bias), with renorm divided
 * by their sum (softmax: = a softmax over those k logits, Mixtral; sigmoid: sum + 1e-20), times
 * route->scale; out_t = sum over the chosen e of w_e * down_e (silu(gate_e x_t) * up_e x_t).
 * Rows routed to an expert are gathered and run through its three linears as one GEMM (decode:
 * k GEMVs; unchosen experts' weights are not read), then scattered back weighted, experts in index
 * order. The expert stacks are f32 (qtype 0) or stored formats as cke_qlinear_fwd takes them, each
 * expert a block of rows (gate/up: F rows of D, down: D rows of F). ws: cke_moe_ws_size (also
 * enough for the _ref, which is f32). Returns 0, or -1 for a format without kernels, rows that are
 * not whole blocks, or a gate cke_moe_gate_check refuses (out untouched). The _ref, returning
 * nothing, leaves out untouched for a refused gate. */
int cke_moe_fwd(const cke_ktable *kt, float *out /* [T,D] */, const float *x /* [T,D] */,
                const float *router /* [E,D] */, const void *gate /* [E,F,D] */, const void *up /* [E,F,D] */,
                const void *down /* [E,D,F] */, int qgate, int qup, int qdown, int64_t T, int64_t D, int64_t F,
                int64_t E, int64_t k, const cke_moe_gate *route, void *ws, int nth);
void cke_moe_fwd_ref(float *out /* [T,D] */, const float *x /* [T,D] */, const float *router /* [E,D] */,
                     const float *gate /* [E,F,D] */, const float *up /* [E,F,D] */, const float *down /* [E,D,F] */,
                     int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, const cke_moe_gate *route, void *ws);
size_t cke_moe_ws_size(int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, int qgate, int qup, int qdown, int nth);
/* Backward of cke_moe_fwd on f32 experts (training). The routing and each chosen expert's gate,
 * up, SwiGLU and output are recomputed from x (nothing is saved by the forward: the backward
 * reads only x and the weights), then, rows grouped per expert as in the forward:
 *   dw_tj    = dout_t . y_e(x_t)                 (each chosen expert's output, its routing weight's gradient)
 *   ddown_e += (w dout)^T h,  dh = (w dout) down_e, dgate/dup via SwiGLU,
 *   dgate_e += dg^T x, dup_e += du^T x, dx += dg gate_e + du up_e,
 *   dlogits  = softmax scoring: the softmax's backward of scale * dw (over the k with renorm, over
 *              all E without), plus, with aux_g [E] (the load-balancing loss's gradient with respect
 *              to each expert's router probability, identical for every row), p (aux_g - p . aux_g);
 *              sigmoid scoring: with S = sum of the chosen s (+ 1e-20) and ds_j = scale (dw_j / S -
 *              (sum_i dw_i s_i) / S^2) with renorm, ds_j = scale dw_j without, dlogit_j = ds_j s_j (1 - s_j)
 *              for the chosen, 0 for the others; aux_g is ignored (the load-balancing loss is the
 *              softmax routers'; DeepSeek-V3 balances through the bias instead),
 *   drouter += dlogits^T x, dx += dlogits router.
 * The bias and the group choice get no gradient (the choice is piecewise constant). Every output
 * accumulates (+=). Deterministic: experts in index order, rows in order, for any nth. A gate
 * cke_moe_gate_check refuses leaves every output untouched. ws: cke_moe_bwd_ws_size. */
void cke_moe_bwd(const cke_ktable *kt, float *dx /* [T,D] += */, float *drouter /* [E,D] += */,
                 float *dgate /* [E,F,D] += */, float *dup /* [E,F,D] += */, float *ddown /* [E,D,F] += */,
                 const float *dout /* [T,D] */, const float *x /* [T,D] */, const float *router /* [E,D] */,
                 const float *gate /* [E,F,D] */, const float *up /* [E,F,D] */, const float *down /* [E,D,F] */,
                 const float *aux_g /* [E] or NULL */, int64_t T, int64_t D, int64_t F, int64_t E, int64_t k,
                 const cke_moe_gate *route, void *ws, int nth);
/* The spec: one row and one chosen expert at a time, sums in double. Single-threaded. */
void cke_moe_bwd_ref(float *dx, float *drouter, float *dgate, float *dup, float *ddown, const float *dout, const float *x,
                     const float *router, const float *gate, const float *up, const float *down, const float *aux_g,
                     int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, const cke_moe_gate *route, void *ws);
size_t cke_moe_bwd_ws_size(int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, int nth); /* also cke_moe_router_stats' */
/* The router statistics HF's load-balancing loss (load_balancing_loss_func: Switch Transformer
 * eq. 4-6) is made of, summed over calls (layers, sequences): stats[e] += the number of rows
 * that chose expert e among their top k, stats[E + e] += the sum over rows of e's router
 * probability (softmax over all E). The loss over N rows is E / N^2 * sum_e stats[e] * stats[E+e].
 * Softmax routing only: the top k of the logits, no bias, no groups (a sigmoid router has no such loss). */
void cke_moe_router_stats(const cke_ktable *kt, double *stats /* [2E] += */, const float *x /* [T,D] */,
                          const float *router /* [E,D] */, int64_t T, int64_t D, int64_t E, int64_t k, void *ws, int nth);
/* out[t] = sigmoid(g[t]) * x[t] for each row t (Qwen2-MoE's gated shared expert); the sigmoid in
 * double, rounded once, the product in float: the spec and the only variant (T scalars, T x D
 * products: memory bound). out may alias x. */
void cke_sigmoid_mul_fwd(float *out /* [T,D] */, const float *x /* [T,D] */, const float *g /* [T] */, int64_t T, int64_t D);
/* Its backward: dx += sigmoid(g) dout, dg[t] += sigmoid'(g[t]) (dout_t . x_t), the dot in double. */
void cke_sigmoid_mul_bwd(float *dx /* [T,D] += */, float *dg /* [T] += */, const float *dout /* [T,D] */,
                         const float *x /* [T,D] */, const float *g /* [T] */, int64_t T, int64_t D);

/* Per-head column windows and concatenations (src/kernels/heads.c; multi-head latent attention:
 * DeepSeek-V2/V3). Pure copies: the spec and the only variant. The window of each of the T*H heads'
 * d columns: out[r][j] = x[r][lo + j] where lo + j < d, else 0 (j < w: past the head, zero padding). */
void cke_head_window_fwd(float *out /* [T,H*w] */, const float *x /* [T,H*d] */, int64_t T, int64_t H, int64_t d,
                         int64_t lo, int64_t w);
/* Its backward: dx[r][lo + j] += dout[r][j] where lo + j < d. */
void cke_head_window_bwd(float *dx /* [T,H*d] += */, const float *dout /* [T,H*w] */, int64_t T, int64_t H, int64_t d,
                         int64_t lo, int64_t w);
/* Each head's da columns of a, then db columns of b's head h (Hb = H), or of b's one head for every h
 * (Hb = 1: a key head shared by all heads). */
void cke_head_cat_fwd(float *out /* [T,H*(da+db)] */, const float *a /* [T,H*da] */, const float *b /* [T,Hb*db] */,
                      int64_t T, int64_t H, int64_t da, int64_t Hb, int64_t db);
/* Its backward: da_ += each head's first da columns; db_ += the rest (with Hb = 1 summed over the heads in order). */
void cke_head_cat_bwd(float *da_ /* [T,H*da] += */, float *db_ /* [T,Hb*db] += */, const float *dout /* [T,H*(da+db)] */,
                      int64_t T, int64_t H, int64_t da, int64_t Hb, int64_t db);

/* Quantized linear layer (src/kernels/qlinear.c): Y[M,N] = X[M,K] . W[N,K]^T (+ b), W stored as N
 * rows of K/blck blocks of ggml type `qtype` (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K).
 * M small (decode): X rows are quantized to the type's vec_dot_type once, then every weight row
 * is streamed once and dotted (threads split N). M large (prefill): weight rows are dequantized
 * to f32 in panels of N and multiplied with the f32 GEMM (compute bound; X stays f32), except
 * Q8_0/Q4_0/Q5_0 on tables with vec_dot_4: X quantized to Q8_0, integer tiles of 4 rows.
 * Repacked formats (ids 40..50) quantize X for every M: M = 1 runs gemv, M >= 2 gemm_tile (or
 * dot_rows) over L2-sized blocks of weight rows, every row's result independent of M; from
 * CKE_QPANEL_MIN_M rows, panel_gemm where the format has it (its own sum order).
 * qtype 0 (f32) runs cke_linear_fwd. Returns 0, or -1 when the table has no ops for qtype or K
 * is not a multiple of its block. */
int cke_qlinear_fwd(const cke_ktable *kt, float *Y /* [M,N] */, const float *X /* [M,K] */,
                    const void *W /* [N, K/blck blocks] */, int qtype, const float *b /* [N] or NULL */,
                    int64_t M, int64_t K, int64_t N, void *ws, int nth);
size_t cke_qlinear_ws_size(int qtype, int64_t M, int64_t K, int64_t N, int nth);
/* 1 when cke_qlinear_fwd runs M x K rows of qtype in the table's column panels (panel_gemm) */
int cke_qlinear_panels(const cke_ktable *kt, int qtype, int64_t M, int64_t K);
/* Row bytes of K elements of qtype (0 when unsupported or K is not a multiple of the block). */
size_t cke_qtype_row_size(int qtype, int64_t K);
/* Embedding lookup out[t] = dequantize(table row tok[t]) (src/kernels/qembed.c), table in qtype's
 * blocks (0: f32, the table's embed_fwd). Returns 0, or -1 when qtype has no ops or D is not whole
 * blocks. Precondition: 0 <= tok[t] < V, as embed_fwd. */
int cke_qembed_fwd(const cke_ktable *kt, float *out /* [T,D] */, const int32_t *tok /* [T] */,
                   const void *table /* [V, D/blck blocks] */, int qtype, int64_t T, int64_t D);

/* RoPE tables (not kernels: called once at load). Computed the way the references do (llama2.c
 * and HF both work in float32), so positions match them bit for bit up to the cos/sin rounding:
 *   freq[i] = 1.0f / powf((float)theta, (float)(2i) / (float)rot),  i < rot/2
 *   a = (float)p * freq[i] (float product);  cs[p][i] = ((float)cos(a), (float)sin(a)) */
void cke_rope_freqs(float *freq /* [rot/2] */, int64_t rot, double theta);
void cke_rope_table(float *cs /* [P, rot/2, 2] */, const float *freq /* [rot/2] */,
                    int64_t P, int64_t rot);
/* Context-extension scaling of the frequencies (the values match cke_rope_scaling of the formats
 * layer), float32 as HF's rope init functions:
 *   LINEAR: freq /= factor
 *   LLAMA3: wavelen = 2 pi / freq; wavelen < orig_ctx / high: kept; > orig_ctx / low: freq / factor;
 *           between: (1 - s) freq / factor + s freq, s = (orig_ctx / wavelen - low) / (high - low) */
typedef enum { CKE_ROPE_SCALE_NONE = 0, CKE_ROPE_SCALE_LINEAR = 1, CKE_ROPE_SCALE_LLAMA3 = 2 } cke_rope_scale_kind;
void cke_rope_freqs_scale(float *freq /* [rot/2] */, int64_t rot, cke_rope_scale_kind kind, float factor,
                          float low_freq_factor, float high_freq_factor, int64_t orig_ctx);

#ifdef __cplusplus
}
#endif
#endif
