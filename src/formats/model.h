/* One normalized model description, whatever file it came from.
 *
 * cke_model_open(path) takes a GGUF file, a llama2.c checkpoint (.bin, legacy v0 or v1 "ak42"
 * fp32), or a Hugging Face directory (config.json + model.safetensors or a sharded
 * model.safetensors.index.json). Weights stay in the read-only maps (zero copy) unless noted.
 *
 * Canonical tensor names (one scheme for every family; biases add "_b"):
 *   tok_embd [vocab, dim]           pos_embd [ctx, dim] (learned positions, GPT-2)
 *   l<i>.attn_norm [dim] (+ l<i>.attn_norm_b for LayerNorm)
 *   l<i>.attn_q [n_heads*head_dim, dim]   l<i>.attn_k / l<i>.attn_v [n_kv_heads*head_dim, dim]
 *   l<i>.attn_q_b / _k_b / _v_b           l<i>.attn_o [dim, n_heads*head_dim] (+ l<i>.attn_o_b)
 *   l<i>.attn_q_norm / l<i>.attn_k_norm [head_dim] (Qwen3, Gemma3-style QK-norm; OLMoE: the whole
 *   width, [n_heads*head_dim] / [n_kv_heads*head_dim])
 *   l<i>.post_attn_norm [dim] (Gemma2: norm of the attention output before the residual add)
 *   l<i>.ffn_norm [dim] (+ _b)   l<i>.ffn_gate / l<i>.ffn_up [ffn, dim] (+ _b)
 *   l<i>.ffn_down [dim, ffn] (+ _b)        l<i>.post_ffn_norm [dim] (Gemma2)
 *   output_norm [dim] (+ output_norm_b)    output [vocab, dim] (absent when tied_output)
 *   mixture of experts (n_expert > 0), in place of ffn_gate/up/down:
 *   l<i>.ffn_gate_inp [n_expert, dim] (router)   l<i>.ffn_gate_exps / l<i>.ffn_up_exps [n_expert, ffn, dim]
 *   l<i>.ffn_down_exps [n_expert, dim, ffn]      (HF's per-expert matrices stacked, GGUF's 3-D tensors)
 *   and a shared expert (Qwen2-MoE): l<i>.ffn_gate_shexp / l<i>.ffn_up_shexp [shexp_ffn, dim],
 *   l<i>.ffn_down_shexp [dim, shexp_ffn], its gate l<i>.ffn_gate_inp_shexp [1, dim]
 *   rope_freqs [head_dim/2] (GGUF Llama 3: per-frequency divisors precomputed by llama.cpp)
 * Shapes are row-major, outermost first: a matrix is [out, in] and y = W x.
 *
 * Normalizations and why:
 *  - Q/K row order for RoPE is NOT permuted: GGUF llama and llama2.c store rows for
 *    interleaved-pair RoPE, HF (and GGUF qwen2/qwen3/gemma*, which llama.cpp runs as NEOX)
 *    for split-halves RoPE. hp.rope.layout records which; the rope kernel takes both layouts,
 *    so weights stay zero-copy in the map.
 *  - GPT-2 HF Conv1D weights are stored [in, out] with Q|K|V fused: they are transposed into
 *    memory the model owns and split into attn_q/k/v (row slices), so every matrix is [out, in]
 *    and no consumer branches on the family. (GGUF GPT-2 is already [out, in]; it is only split.)
 *  - Gemma RMSNorm multiplies by (1 + w). HF stores w, llama.cpp's GGUF stores 1 + w:
 *    hp.norm_add_one says whether the runtime must add 1.
 *  - Gemma scales embeddings by sqrt(dim): hp.embd_scale (1 for other families). */
#ifndef CKE_FORMATS_MODEL_H
#define CKE_FORMATS_MODEL_H

#include "cke/kernels.h" /* cke_rope_layout */
#include "cke/status.h"
#include "formats/dtype.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    CKE_ARCH_LLAMA = 0, /* also SmolLM, TinyLlama, llama2.c checkpoints */
    CKE_ARCH_MISTRAL,
    CKE_ARCH_QWEN2,
    CKE_ARCH_QWEN3,
    CKE_ARCH_GEMMA,
    CKE_ARCH_GEMMA2,
    CKE_ARCH_GPT2,
    CKE_ARCH_PHI3,      /* HF fused qkv_proj / gate_up_proj are split into the canonical tensors */
    CKE_ARCH_GEMMA3,    /* gemma3_text, and the text part of gemma3 */
    CKE_ARCH_MIXTRAL,   /* llama attention, a top-k mixture of SwiGLU experts (GGUF: llama with expert_count) */
    CKE_ARCH_QWEN3_MOE, /* Qwen3's attention (QK-norm), a top-k mixture of SwiGLU experts (GGUF: qwen3moe) */
    CKE_ARCH_OLMOE,     /* OLMoE: QK-norm over the whole q and k width, experts not renormalized (GGUF: olmoe) */
    CKE_ARCH_QWEN2_MOE, /* Qwen2/Qwen1.5-MoE: Qwen2's attention, routed experts plus a sigmoid-gated shared one (GGUF: qwen2moe) */
    CKE_ARCH_DEEPSEEK_V3, /* DeepSeek-V3: multi-head latent attention (low-rank q and kv, a shared rotated key head), dense
                           * first layers, then the same experts as GLM-4.5's (GGUF: deepseek2, llama.cpp's split attn_k_b / attn_v_b) */
    CKE_ARCH_GLM4_MOE,  /* GLM-4.5: biased GQA attention, partial rotary, optional QK-norm; dense FFNs in the first layers, then
                         * DeepSeek-V3-style experts (sigmoid router with a choice bias, groups, scaled weights) and a shared one (GGUF: glm4moe) */
    CKE_ARCH_COUNT
} cke_arch;
const char *cke_arch_name(cke_arch a);

typedef enum { CKE_SRC_GGUF = 0, CKE_SRC_HF, CKE_SRC_LLAMA2C } cke_model_source;
const char *cke_model_source_name(cke_model_source s);

typedef enum { CKE_NORM_RMS = 0, CKE_NORM_LAYER } cke_norm_kind;
typedef enum { CKE_ACT_SILU = 0, CKE_ACT_GELU_TANH, CKE_ACT_GELU } cke_act;
typedef enum {
    CKE_ROPE_SCALING_NONE = 0,
    CKE_ROPE_SCALING_LINEAR, /* positions / factor */
    CKE_ROPE_SCALING_LLAMA3, /* factor, low/high_freq_factor, orig_ctx */
    CKE_ROPE_SCALING_FREQS,  /* the rope_freqs tensor holds per-frequency divisors (GGUF) */
    CKE_ROPE_SCALING_YARN,   /* factor, orig_ctx, beta_fast/slow, attn_factor (Qwen2.5, DeepSeek) */
    CKE_ROPE_SCALING_LONGROPE, /* per-pair long/short factors, orig_ctx, attn_factor (Phi-3 128k) */
    CKE_ROPE_SCALING_DYNAMIC /* dynamic NTK: the default frequencies up to orig_ctx (= ctx_len) */
} cke_rope_scaling;

#define CKE_ROPE_MAX_FACTORS 256 /* LongRoPE pairs: head_dim <= 512 (real models: 64..256) */
typedef struct {
    int64_t dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim, vocab, ctx_len;
    int64_t n_expert, n_expert_used; /* mixture of experts: experts per layer, used per token (0: dense) */
    bool moe_norm_topk;  /* the k routing weights renormalized to sum to 1 (Mixtral; Qwen3-MoE's norm_topk_prob) */
    double moe_aux_coef; /* training: weight of the load-balancing loss (HF router_aux_loss_coef with output_router_logits; 0: none) */
    int64_t shexp_ffn_dim; /* a shared expert's width, its output gated by sigmoid(x . ffn_gate_inp_shexp) (0: none) */
    bool shexp_ungated;    /* ... added as it is instead (DeepSeek, GLM-4.5: no ffn_gate_inp_shexp) */
    /* DeepSeek-style MoE (DeepSeek-V3, GLM-4.5): the first n_dense_lead layers have a dense FFN of ffn_dim, the
     * others experts of expert_ffn_dim; sigmoid router scores, the experts chosen by score + exp_probs_b (HF's
     * e_score_correction_bias) among the best moe_topk_group of moe_n_group groups, their weights scaled */
    int64_t n_dense_lead;
    int64_t expert_ffn_dim;   /* 0: ffn_dim */
    bool moe_sigmoid;
    int64_t moe_n_group, moe_topk_group; /* 0 or 1: no groups */
    double moe_routed_scale;  /* routed_scaling_factor; 0 is read as 1 */
    /* multi-head latent attention (DeepSeek-V2/V3; kv_lora_rank > 0): q = q_b(norm(q_a x)) (q_lora_rank > 0) or q x,
     * each head qk_nope_dim unrotated + rope.dims rotated columns (head_dim = their sum); kv_a x = a kv latent of
     * kv_lora_rank + one rotated key head shared by all heads; kv_b(norm(latent)) = each head's qk_nope_dim key and
     * v_head_dim value columns */
    int64_t q_lora_rank, kv_lora_rank, qk_nope_dim, v_head_dim;
    int64_t n_mtp_layers;     /* GLM-4.5: multi-token-prediction layers stored after the last one; HF's forward skips them, as cke does */
    double norm_eps;
    cke_norm_kind norm;
    bool norm_add_one;   /* Gemma HF: RMSNorm weight is (1 + w) */
    cke_act act;
    bool gated_ffn;      /* down(act(gate x) * up x) vs down(act(up x)) */
    bool tied_output;    /* logits use tok_embd; no "output" tensor */
    bool attn_qkv_bias, attn_o_bias, ffn_bias, norm_bias;
    bool qk_norm;        /* RMSNorm over head_dim of q and k (Qwen3) */
    bool qk_norm_full;   /* ... over all of q's and k's width instead (OLMoE: attn_q_norm [n_heads*head_dim]) */
    bool post_norms;     /* Gemma2 post_attn_norm / post_ffn_norm */
    bool learned_pos;    /* GPT-2 pos_embd instead of RoPE */
    double embd_scale;   /* multiply embeddings by this (Gemma: sqrt(dim)) */
    double attn_scale;   /* softmax scale: 1/sqrt(head_dim) unless the family says otherwise */
    double attn_softcap, final_softcap; /* 0 = none (Gemma2) */
    int64_t sliding_window;             /* 0 = none */
    int64_t swa_pattern;                /* Gemma 3: layer l is global when (l + 1) % swa_pattern == 0, else local */
    double rope_local_theta;            /* Gemma 3: the local (sliding) layers' rope base, unscaled */
    struct {
        double theta;
        int64_t dims;    /* rotated dims per head (<= head_dim) */
        cke_rope_layout layout;
        cke_rope_scaling scaling;
        double factor, low_freq_factor, high_freq_factor;
        int64_t orig_ctx;
        double attn_factor;            /* cos/sin multiplier (YaRN, LongRoPE); 0 = the default for the kind */
        double beta_fast, beta_slow;   /* YaRN correction range (0 = 32, 1) */
        bool no_truncate;              /* YaRN "truncate": false */
        float long_factor[CKE_ROPE_MAX_FACTORS], short_factor[CKE_ROPE_MAX_FACTORS]; /* LongRoPE */
        int64_t n_factor;
    } rope;
} cke_hparams;

/* The final RoPE frequencies of a model compiled for ctx positions, float32 as HF's rope init
 * functions compute them (src/formats/rope.c): freq[rot/2] and the cos/sin multiplier. rope_freqs
 * (GGUF's per-pair divisors) is passed when the model has it. Refuses what a static table cannot
 * reproduce (dynamic NTK past its original context), naming it. */
/* YaRN's magnitude correction (HF get_mscale): 0.1 m ln(scale) + 1, 1 for scale <= 1. */
double cke_yarn_mscale(double scale, double mscale);

cke_status cke_rope_freq_table(const cke_hparams *h, int64_t rot, int64_t ctx, const float *rope_freqs, float *freq,
                               float *attn_factor, cke_err *err);

typedef enum {
    CKE_TOK_NONE = 0,
    CKE_TOK_GGUF,          /* tokenizer.ggml.* metadata of the GGUF itself (path = the GGUF) */
    CKE_TOK_LLAMA2C_BIN,   /* llama2.c tokenizer.bin / tok<vocab>.bin next to the checkpoint */
    CKE_TOK_HF_JSON        /* tokenizer.json in the HF directory */
} cke_tok_source;
const char *cke_tok_source_name(cke_tok_source s);

typedef struct {
    cke_tok_source source;
    const char *path;      /* NULL when none was found */
    const char *model;     /* GGUF tokenizer.ggml.model ("llama", "gpt2" ...), else NULL */
    int64_t n_tokens;      /* GGUF: entries in tokenizer.ggml.tokens; else -1 (unknown) */
    int64_t file_bytes;    /* size of path, -1 if none */
} cke_tok_info;

typedef struct {
    const char *name;      /* canonical */
    const char *src_name;  /* as in the file ("blk.0.attn_q.weight", "model.layers.0...") */
    cke_dtype dtype;
    int ndim;
    int64_t shape[4];      /* outermost first */
    int64_t nbytes;
    const void *data;      /* into a map, or into memory the model owns (owned = true) */
    int file;              /* index into cke_model.files; -1 when owned */
    uint64_t file_offset;  /* byte offset in that file (of the source tensor when owned) */
    bool owned;
    bool transposed;       /* the file holds it [cols, rows] (HF Conv1D): an export transposes back */
} cke_model_tensor;

typedef struct cke_model_priv cke_model_priv;

typedef struct {
    cke_arch arch;
    cke_model_source source;
    const char *path;
    cke_hparams hp;
    cke_tok_info tok;
    int64_t n_tensors;
    cke_model_tensor *tensors;  /* file order (GGUF/safetensors) or llama2.c order */
    int n_files;
    const char *const *files;   /* the weight files */
    cke_model_priv *priv;
} cke_model;

/* CKE_ERR_UNSUPPORTED names an unknown architecture/model_type, rope scaling type or tensor;
 * CKE_ERR_MISSING / CKE_ERR_SHAPE name a required tensor that is absent or mis-shaped. */
cke_status cke_model_open(const char *path, cke_model **out, cke_err *err);
void cke_model_close(cke_model *m);

const cke_model_tensor *cke_model_find(const cke_model *m, const char *name);
/* Layer tensor "l<layer>.<what>", or NULL. */
const cke_model_tensor *cke_model_layer(const cke_model *m, int64_t layer, const char *what);
int64_t cke_model_n_params(const cke_model *m); /* sum of elements of all tensors */
int64_t cke_model_tensor_numel(const cke_model_tensor *t);
/* All elements as float (F32/F16/BF16/F64 tensors); dst holds numel floats. */
cke_status cke_model_tensor_to_f32(const cke_model_tensor *t, float *dst, cke_err *err);

#endif
