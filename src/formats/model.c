/* Normalized model: open dispatch, tensor table, llama2.c loading, validation. */
#include "formats/model_priv.h"

#include "formats/llama2c.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const arch_names[CKE_ARCH_COUNT] = {
    [CKE_ARCH_LLAMA] = "llama", [CKE_ARCH_MISTRAL] = "mistral", [CKE_ARCH_QWEN2] = "qwen2",
    [CKE_ARCH_QWEN3] = "qwen3", [CKE_ARCH_GEMMA] = "gemma",     [CKE_ARCH_GEMMA2] = "gemma2",
    [CKE_ARCH_GPT2] = "gpt2",   [CKE_ARCH_PHI3] = "phi3",       [CKE_ARCH_GEMMA3] = "gemma3",
    [CKE_ARCH_MIXTRAL] = "mixtral", [CKE_ARCH_QWEN3_MOE] = "qwen3_moe",
    [CKE_ARCH_OLMOE] = "olmoe", [CKE_ARCH_QWEN2_MOE] = "qwen2_moe", [CKE_ARCH_GLM4_MOE] = "glm4_moe", [CKE_ARCH_DEEPSEEK_V3] = "deepseek_v3",
};

const char *cke_arch_name(cke_arch a) { return (unsigned)a < CKE_ARCH_COUNT ? arch_names[a] : "?"; }

const char *cke_model_source_name(cke_model_source s) {
    switch (s) {
    case CKE_SRC_GGUF: return "gguf";
    case CKE_SRC_HF: return "hf";
    case CKE_SRC_LLAMA2C: return "llama2.c";
    }
    return "?";
}

const char *cke_tok_source_name(cke_tok_source s) {
    switch (s) {
    case CKE_TOK_NONE: return "none";
    case CKE_TOK_GGUF: return "gguf-metadata";
    case CKE_TOK_LLAMA2C_BIN: return "llama2.c-bin";
    case CKE_TOK_HF_JSON: return "tokenizer.json";
    }
    return "?";
}

cke_status cke_model_add(cke_model *m, const char *name, const char *src_name, cke_dtype dt, int ndim,
                         const int64_t *shape, const void *data, int64_t nbytes, int file, uint64_t off,
                         bool owned, cke_err *err) {
    cke_model_priv *p = m->priv;
    if (ndim < 0 || ndim > 4) return cke_fail(err, CKE_ERR_UNSUPPORTED, "tensor '%s': %d dimensions", src_name, ndim);
    if (m->n_tensors == p->cap) {
        int64_t cap = p->cap ? 2 * p->cap : 64;
        cke_model_tensor *t = realloc(m->tensors, (size_t)cap * sizeof *t);
        if (!t) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        m->tensors = t;
        p->cap = cap;
    }
    cke_model_tensor t = {.dtype = dt, .ndim = ndim, .data = data, .nbytes = nbytes, .file = owned ? -1 : file,
                          .file_offset = off, .owned = owned};
    for (int i = 0; i < 4; i++) t.shape[i] = i < ndim ? shape[i] : 1;
    t.name = cke_arena_strndup(&p->arena, name, strlen(name));
    t.src_name = cke_arena_strndup(&p->arena, src_name, strlen(src_name));
    if (!t.name || !t.src_name) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    m->tensors[m->n_tensors++] = t;
    return CKE_OK;
}

cke_status cke_model_add_rows(cke_model *m, const char *name, const cke_model_tensor *src, int64_t r0,
                              int64_t nr, cke_err *err) {
    if (src->ndim < 1 || r0 < 0 || nr < 0 || r0 + nr > src->shape[0] || src->shape[0] == 0)
        return cke_fail(err, CKE_ERR_SHAPE, "tensor '%s': cannot take rows [%lld, +%lld) of %lld", src->src_name,
                        (long long)r0, (long long)nr, (long long)src->shape[0]);
    int64_t row = src->nbytes / src->shape[0];
    int64_t shape[4];
    memcpy(shape, src->shape, sizeof shape);
    shape[0] = nr;
    /* copy src fields first: src may move when m->tensors grows */
    cke_model_tensor s = *src;
    cke_status st = cke_model_add(m, name, s.src_name, s.dtype, s.ndim, shape, (const uint8_t *)s.data + r0 * row,
                                  nr * row, s.file, s.owned ? s.file_offset : s.file_offset + (uint64_t)(r0 * row), s.owned, err);
    if (!st) m->tensors[m->n_tensors - 1].transposed = s.transposed;
    return st;
}

static int cmp_t(const void *a, const void *b) {
    return strcmp((*(const cke_model_tensor *const *)a)->name, (*(const cke_model_tensor *const *)b)->name);
}

const cke_model_tensor *cke_model_find(const cke_model *m, const char *name) {
    const cke_model_tensor **s = m->priv->sorted;
    int64_t lo = 0, hi = s ? m->n_tensors : 0;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s[mid]->name, name);
        if (!c) return s[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

const cke_model_tensor *cke_model_layer(const cke_model *m, int64_t layer, const char *what) {
    char name[96];
    snprintf(name, sizeof name, "l%lld.%s", (long long)layer, what);
    return cke_model_find(m, name);
}

int64_t cke_model_tensor_numel(const cke_model_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int64_t cke_model_n_params(const cke_model *m) {
    int64_t n = 0;
    for (int64_t i = 0; i < m->n_tensors; i++) n += cke_model_tensor_numel(&m->tensors[i]);
    return n;
}

cke_status cke_model_tensor_to_f32(const cke_model_tensor *t, float *dst, cke_err *err) {
    return cke_dtype_to_f32(dst, t->dtype, t->data, cke_model_tensor_numel(t), err);
}

/* name must exist (when required) with exactly the given shape (d1 = 0: 1-D). */
static cke_status expect(const cke_model *m, const char *name, bool required, int64_t d0, int64_t d1, cke_err *err) {
    const cke_model_tensor *t = cke_model_find(m, name);
    if (!t) return required ? cke_fail(err, CKE_ERR_MISSING, "%s: tensor '%s' is missing", m->path, name) : CKE_OK;
    int nd = d1 ? 2 : 1;
    if (t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1))
        return cke_fail(err, CKE_ERR_SHAPE, "%s: tensor '%s' (%s) has shape [%lld, %lld], expected [%lld, %lld]",
                        m->path, name, t->src_name, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0),
                        (long long)d0, (long long)d1);
    return CKE_OK;
}

cke_status cke_hp_int(const char *key, int64_t v, int64_t lo, int64_t hi, cke_err *err) {
    if (v >= lo && v <= hi) return CKE_OK;
    return cke_fail(err, CKE_ERR_FORMAT, "%s = %lld is out of range [%lld, %lld]", key, (long long)v, (long long)lo,
                    (long long)hi);
}

cke_status cke_hp_float(const char *key, double v, double lo, bool lo_open, double hi, cke_err *err) {
    if (isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi) return CKE_OK;
    if (hi >= DBL_MAX)
        return cke_fail(err, CKE_ERR_FORMAT, "%s = %g: expected a finite number %s %g", key, v, lo_open ? ">" : ">=", lo);
    return cke_fail(err, CKE_ERR_FORMAT, "%s = %g: expected a finite number in %c%g, %g]", key, v, lo_open ? '(' : '[',
                    lo, hi);
}

/* name must exist with exactly the 3-D shape [d0, d1, d2] (stacked experts). */
static cke_status expect3(const cke_model *m, const char *name, int64_t d0, int64_t d1, int64_t d2, cke_err *err) {
    const cke_model_tensor *t = cke_model_find(m, name);
    if (!t) return cke_fail(err, CKE_ERR_MISSING, "%s: tensor '%s' is missing", m->path, name);
    if (t->ndim != 3 || t->shape[0] != d0 || t->shape[1] != d1 || t->shape[2] != d2)
        return cke_fail(err, CKE_ERR_SHAPE, "%s: tensor '%s' (%s) has shape [%lld, %lld, %lld] (%d dims), expected [%lld, %lld, %lld]",
                        m->path, name, t->src_name, (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2],
                        t->ndim, (long long)d0, (long long)d1, (long long)d2);
    return CKE_OK;
}

/* a * b, refusing overflow (bounds make it impossible; the check keeps it so if they change) */
static cke_status mul(const cke_model *m, const char *what, int64_t a, int64_t b, int64_t *out, cke_err *err) {
    if (__builtin_mul_overflow(a, b, out))
        return cke_fail(err, CKE_ERR_FORMAT, "%s: %s = %lld * %lld overflows", m->path, what, (long long)a, (long long)b);
    return CKE_OK;
}

cke_status cke_model_check_hparams(cke_model *m, bool final, cke_err *err) {
    cke_hparams *h = &m->hp;
    cke_status s;
    /* sizes first: everything below divides or multiplies by them */
    if ((s = cke_hp_int("dim", h->dim, 1, CKE_HP_MAX_DIM, err)) ||
        (s = cke_hp_int("n_layers", h->n_layers, 1, CKE_HP_MAX_LAYERS, err)) ||
        (s = cke_hp_int("n_heads", h->n_heads, 1, CKE_HP_MAX_HEADS, err)) ||
        (s = cke_hp_int("n_kv_heads", h->n_kv_heads, 0, CKE_HP_MAX_HEADS, err)) ||
        (s = cke_hp_int("head_dim", h->head_dim, 0, CKE_HP_MAX_HEADS, err)) ||
        (s = cke_hp_int("ffn_dim", h->ffn_dim, 1, CKE_HP_MAX_FFN, err)) ||
        (s = cke_hp_int("vocab", h->vocab, final ? 1 : 0, CKE_HP_MAX_VOCAB, err)) ||
        (s = cke_hp_int("ctx_len", h->ctx_len, 0, CKE_HP_MAX_CTX, err)) ||
        (s = cke_hp_int("sliding_window", h->sliding_window, 0, CKE_HP_MAX_CTX, err)) ||
        (s = cke_hp_int("rope dims", h->rope.dims, 0, CKE_HP_MAX_HEADS, err)) ||
        (s = cke_hp_int("n_expert", h->n_expert, 0, CKE_HP_MAX_EXPERTS, err)) ||
        (s = cke_hp_int("n_expert_used", h->n_expert_used, h->n_expert ? 1 : 0, h->n_expert, err)) ||
        (s = cke_hp_int("shared expert ffn", h->shexp_ffn_dim, 0, CKE_HP_MAX_FFN, err)) ||
        (s = cke_hp_int("expert ffn", h->expert_ffn_dim, 0, CKE_HP_MAX_FFN, err)) ||
        (s = cke_hp_int("leading dense layers", h->n_dense_lead, 0, h->n_layers, err)) ||
        (s = cke_hp_int("expert groups", h->moe_n_group, 0, h->n_expert > 0 ? h->n_expert : 1, err)) ||
        (s = cke_hp_int("expert groups used", h->moe_topk_group, 0, h->moe_n_group > 1 ? h->moe_n_group : 1, err)) ||
        (s = cke_hp_int("q_lora_rank", h->q_lora_rank, 0, CKE_HP_MAX_FFN, err)) ||
        (s = cke_hp_int("kv_lora_rank", h->kv_lora_rank, 0, CKE_HP_MAX_FFN, err)) ||
        (s = cke_hp_int("qk_nope_head_dim", h->qk_nope_dim, 0, CKE_HP_MAX_HEADS, err)) ||
        (s = cke_hp_int("v_head_dim", h->v_head_dim, 0, CKE_HP_MAX_HEADS, err)))
        goto fail;
    if (h->kv_lora_rank > 0 && (h->rope.dims < 2 || h->qk_nope_dim < 1 || h->v_head_dim < 1 ||
                                h->head_dim != h->qk_nope_dim + h->rope.dims || h->v_head_dim > h->head_dim)) {
        /* cke pads each value head to the query/key head's width (zeros the output drops): v_head_dim <= head_dim */
        s = cke_fail(err, h->v_head_dim > h->head_dim ? CKE_ERR_UNSUPPORTED : CKE_ERR_FORMAT,
                     "multi-head latent attention with qk_nope_head_dim %lld + qk_rope_head_dim %lld (head %lld) and v_head_dim "
                     "%lld: expected both parts >= 1 (rope even) and v_head_dim <= their sum", (long long)h->qk_nope_dim,
                     (long long)h->rope.dims, (long long)h->head_dim, (long long)h->v_head_dim);
        goto fail;
    }
    if (h->moe_n_group > 1 && (h->n_expert % h->moe_n_group || h->moe_topk_group < 1 ||
                               h->n_expert_used > h->moe_topk_group * (h->n_expert / h->moe_n_group))) {
        s = cke_fail(err, CKE_ERR_FORMAT, "%lld experts in %lld groups, %lld groups used, %lld experts used: the groups must "
                     "be equal and the used groups must hold the used experts", (long long)h->n_expert,
                     (long long)h->moe_n_group, (long long)h->moe_topk_group, (long long)h->n_expert_used);
        goto fail;
    }
    if (!h->head_dim) {
        if (h->dim % h->n_heads) {
            s = cke_fail(err, CKE_ERR_FORMAT, "dim %lld is not a multiple of n_heads %lld (and no head_dim is given)",
                         (long long)h->dim, (long long)h->n_heads);
            goto fail;
        }
        h->head_dim = h->dim / h->n_heads;
    }
    if (!h->n_kv_heads) h->n_kv_heads = h->n_heads;
    if (h->n_kv_heads > h->n_heads || h->n_heads % h->n_kv_heads) {
        s = cke_fail(err, CKE_ERR_FORMAT, "n_heads %lld is not a multiple of n_kv_heads %lld", (long long)h->n_heads,
                     (long long)h->n_kv_heads);
        goto fail;
    }
    if (!h->rope.dims && !h->learned_pos) h->rope.dims = h->head_dim;
    if (h->rope.dims > h->head_dim || h->rope.dims % 2) {
        s = cke_fail(err, CKE_ERR_FORMAT, "rope dims %lld: expected an even number <= head_dim %lld",
                     (long long)h->rope.dims, (long long)h->head_dim);
        goto fail;
    }
    if (h->embd_scale == 0) h->embd_scale = 1;
    if (h->attn_scale == 0) h->attn_scale = 1.0 / sqrt((double)h->head_dim);
    /* floats: NaN/Inf or a sign that makes no sense would reach the generated code */
    if ((s = cke_hp_float("norm_eps", h->norm_eps, 0, false, 1, err)) ||
        (!h->learned_pos && (s = cke_hp_float("rope theta", h->rope.theta, 0, true, DBL_MAX, err))) ||
        (s = cke_hp_float("embd_scale", h->embd_scale, 0, true, DBL_MAX, err)) ||
        (s = cke_hp_float("attn_scale", h->attn_scale, 0, true, DBL_MAX, err)) ||
        (s = cke_hp_float("attn_softcap", h->attn_softcap, 0, false, DBL_MAX, err)) ||
        (s = cke_hp_float("final_softcap", h->final_softcap, 0, false, DBL_MAX, err)) ||
        (s = cke_hp_float("routed_scaling_factor", h->moe_routed_scale, 0, false, 1e6, err)))
        goto fail;
    if (h->rope.scaling == CKE_ROPE_SCALING_LINEAR || h->rope.scaling == CKE_ROPE_SCALING_LLAMA3 ||
        h->rope.scaling == CKE_ROPE_SCALING_YARN || h->rope.scaling == CKE_ROPE_SCALING_DYNAMIC)
        if ((s = cke_hp_float("rope scaling factor", h->rope.factor, 0, true, DBL_MAX, err))) goto fail;
    if (h->rope.scaling == CKE_ROPE_SCALING_LLAMA3) {
        if ((s = cke_hp_float("rope low_freq_factor", h->rope.low_freq_factor, 0, true, DBL_MAX, err)) ||
            (s = cke_hp_float("rope high_freq_factor", h->rope.high_freq_factor, h->rope.low_freq_factor, true, DBL_MAX,
                              err)) ||
            (s = cke_hp_int("rope original context", h->rope.orig_ctx, 1, CKE_HP_MAX_CTX, err)))
            goto fail;
    }
    return CKE_OK;
fail:
    if (err) {
        char tmp[sizeof err->msg];
        snprintf(tmp, sizeof tmp, "%s", err->msg);
        cke_fail(err, s, "%s: %s", m->path, tmp);
    }
    return s;
}

static cke_status validate(cke_model *m, cke_err *err) {
    cke_hparams *h = &m->hp;
    TRY(cke_model_check_hparams(m, true, err));
    int64_t q, kv, d = h->dim, f = h->ffn_dim;
    TRY(mul(m, "n_heads * head_dim", h->n_heads, h->head_dim, &q, err));
    TRY(mul(m, "n_kv_heads * head_dim", h->n_kv_heads, h->head_dim, &kv, err));
    bool ln = h->norm == CKE_NORM_LAYER;
    TRY(expect(m, "tok_embd", true, h->vocab, d, err));
    TRY(expect(m, "pos_embd", h->learned_pos, h->ctx_len, d, err));
    TRY(expect(m, "output_norm", true, d, 0, err));
    TRY(expect(m, "output_norm_b", ln, d, 0, err));
    TRY(expect(m, "output", !h->tied_output, h->vocab, d, err));
    if (h->rope.dims) TRY(expect(m, "rope_freqs", false, h->rope.dims / 2, 0, err)); /* one divisor per rotated pair */
    for (int64_t l = 0; l < h->n_layers; l++) {
        static const char *const vec_d[] = {"attn_norm", "ffn_norm"};
        char nm[96];
#define NM(s) (snprintf(nm, sizeof nm, "l%lld.%s", (long long)l, s), nm)
        for (int i = 0; i < 2; i++) {
            TRY(expect(m, NM(vec_d[i]), true, d, 0, err));
            char b[64];
            snprintf(b, sizeof b, "%s_b", vec_d[i]);
            TRY(expect(m, NM(b), ln, d, 0, err));
        }
        if (h->kv_lora_rank > 0) { /* multi-head latent attention */
            const int64_t ql = h->q_lora_rank, kl = h->kv_lora_rank, H = h->n_heads;
            TRY(expect(m, NM("attn_q"), ql == 0, q, d, err));
            TRY(expect(m, NM("attn_q_down"), ql > 0, ql, d, err));
            TRY(expect(m, NM("attn_q_down_b"), ql > 0 && h->attn_qkv_bias, ql, 0, err));
            TRY(expect(m, NM("attn_q_down_norm"), ql > 0, ql, 0, err));
            TRY(expect(m, NM("attn_q_up"), ql > 0, q, ql > 0 ? ql : 1, err));
            TRY(expect(m, NM("attn_kv_down"), true, kl + h->rope.dims, d, err));
            TRY(expect(m, NM("attn_kv_down_b"), h->attn_qkv_bias, kl + h->rope.dims, 0, err));
            TRY(expect(m, NM("attn_kv_down_norm"), true, kl, 0, err));
            TRY(expect(m, NM("attn_kv_up"), true, H * (h->qk_nope_dim + h->v_head_dim), kl, err));
            TRY(expect(m, NM("attn_o"), true, d, H * h->v_head_dim, err));
        } else {
            TRY(expect(m, NM("attn_q"), true, q, d, err));
            TRY(expect(m, NM("attn_k"), true, kv, d, err));
            TRY(expect(m, NM("attn_v"), true, kv, d, err));
            TRY(expect(m, NM("attn_o"), true, d, q, err));
        }
        TRY(expect(m, NM("attn_q_b"), h->attn_qkv_bias && !h->kv_lora_rank, q, 0, err));
        TRY(expect(m, NM("attn_k_b"), h->attn_qkv_bias && !h->kv_lora_rank, kv, 0, err));
        TRY(expect(m, NM("attn_v_b"), h->attn_qkv_bias && !h->kv_lora_rank, kv, 0, err));
        TRY(expect(m, NM("attn_o_b"), h->attn_o_bias, d, 0, err));
        TRY(expect(m, NM("attn_q_norm"), h->qk_norm, h->qk_norm_full ? q : h->head_dim, 0, err));
        TRY(expect(m, NM("attn_k_norm"), h->qk_norm, h->qk_norm_full ? kv : h->head_dim, 0, err));
        TRY(expect(m, NM("post_attn_norm"), h->post_norms, d, 0, err));
        TRY(expect(m, NM("post_ffn_norm"), h->post_norms, d, 0, err));
        const bool moe = h->n_expert && l >= h->n_dense_lead; /* DeepSeek-style: dense FFNs in the first layers */
        const int64_t fe = h->expert_ffn_dim ? h->expert_ffn_dim : f;
        if (moe) { /* a router and the stacked experts instead of one FFN */
            TRY(expect(m, NM("ffn_gate_inp"), true, h->n_expert, d, err));
            TRY(expect3(m, NM("ffn_gate_exps"), h->n_expert, fe, d, err));
            TRY(expect3(m, NM("ffn_up_exps"), h->n_expert, fe, d, err));
            TRY(expect3(m, NM("ffn_down_exps"), h->n_expert, d, fe, err));
        }
        TRY(expect(m, NM("exp_probs_b"), moe && h->moe_sigmoid, h->n_expert, 0, err));
        const int64_t fs = moe ? h->shexp_ffn_dim : 0; /* a shared expert: a (gated) SwiGLU MLP beside the routed ones */
        TRY(expect(m, NM("ffn_gate_shexp"), fs > 0, fs, d, err));
        TRY(expect(m, NM("ffn_up_shexp"), fs > 0, fs, d, err));
        TRY(expect(m, NM("ffn_down_shexp"), fs > 0, d, fs, err));
        TRY(expect(m, NM("ffn_gate_inp_shexp"), fs > 0 && !h->shexp_ungated, 1, d, err));
        TRY(expect(m, NM("ffn_gate"), h->gated_ffn && !moe, f, d, err));
        TRY(expect(m, NM("ffn_up"), !moe, f, d, err));
        TRY(expect(m, NM("ffn_down"), !moe, d, f, err));
        TRY(expect(m, NM("ffn_gate_b"), h->ffn_bias && h->gated_ffn, f, 0, err));
        TRY(expect(m, NM("ffn_up_b"), h->ffn_bias, f, 0, err));
        TRY(expect(m, NM("ffn_down_b"), h->ffn_bias, d, 0, err));
#undef NM
    }
    /* tensors the description does not account for (e.g. more layers than n_layers) */
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const char *n = m->tensors[i].name;
        long long l;
        if (sscanf(n, "l%lld.", &l) == 1 && (l < 0 || l >= h->n_layers))
            return cke_fail(err, CKE_ERR_SHAPE, "%s: tensor '%s' is beyond n_layers %lld", m->path,
                            m->tensors[i].src_name, (long long)h->n_layers);
    }
    return CKE_OK;
}

cke_status cke_model_finish(cke_model *m, cke_err *err) {
    cke_model_priv *p = m->priv;
    cke_hparams *h = &m->hp;
    if (!h->ctx_len) {
        const cke_model_tensor *pe = NULL;
        for (int64_t i = 0; i < m->n_tensors; i++)
            if (!strcmp(m->tensors[i].name, "pos_embd")) pe = &m->tensors[i];
        if (pe) h->ctx_len = pe->shape[0];
    }
    p->sorted = cke_arena_calloc(&p->arena, (size_t)m->n_tensors + 1, sizeof *p->sorted);
    if (!p->sorted) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < m->n_tensors; i++) p->sorted[i] = &m->tensors[i];
    qsort(p->sorted, (size_t)m->n_tensors, sizeof *p->sorted, cmp_t);
    for (int64_t i = 1; i < m->n_tensors; i++)
        if (!strcmp(p->sorted[i]->name, p->sorted[i - 1]->name))
            return cke_fail(err, CKE_ERR_FORMAT, "%s: two tensors map to '%s' (%s, %s)", m->path, p->sorted[i]->name,
                            p->sorted[i - 1]->src_name, p->sorted[i]->src_name);
    return validate(m, err);
}

/* ---- llama2.c ---- */
static void find_l2c_tokenizer(cke_model *m, const char *path) {
    cke_model_priv *p = m->priv;
    size_t n = strlen(path);
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    char cand[2][64];
    snprintf(cand[0], sizeof cand[0], "tok%lld.bin", (long long)m->hp.vocab);
    snprintf(cand[1], sizeof cand[1], "tokenizer.bin");
    for (int i = 0; i < 2; i++) {
        char *full = cke_arena_alloc(&p->arena, n + 80);
        if (!full) return;
        if (slash) snprintf(full, n + 80, "%.*s/%s", (int)dl, path, cand[i]);
        else snprintf(full, n + 80, "%s", cand[i]);
        struct stat sb;
        if (stat(full, &sb) == 0 && S_ISREG(sb.st_mode)) {
            m->tok.source = CKE_TOK_LLAMA2C_BIN;
            m->tok.path = full;
            m->tok.file_bytes = sb.st_size;
            return;
        }
    }
}

static cke_status load_llama2c(cke_model *m, cke_err *err) {
    cke_model_priv *p = m->priv;
    cke_llama2c_header h;
    TRY(cke_llama2c_parse(p->map.data, p->map.size, &h, err));
    int64_t n = cke_llama2c_n_tensors(&h);
    cke_llama2c_tensor *ts = calloc((size_t)n, sizeof *ts);
    if (!ts) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_llama2c_layout(&h, ts);
    cke_status s = CKE_OK;
    for (int64_t i = 0; i < n && !s; i++)
        s = cke_model_add(m, ts[i].name, ts[i].name, CKE_DT_F32, ts[i].ndim, ts[i].shape, p->map.data + ts[i].offset,
                          ts[i].nbytes, 0, ts[i].offset, false, err);
    free(ts);
    if (s) return s;
    m->arch = CKE_ARCH_LLAMA;
    cke_hparams *hp = &m->hp;
    hp->dim = h.dim; hp->n_layers = h.n_layers; hp->n_heads = h.n_heads; hp->n_kv_heads = h.n_kv_heads;
    hp->head_dim = h.dim / h.n_heads; hp->ffn_dim = h.hidden_dim; hp->vocab = h.vocab; hp->ctx_len = h.seq_len;
    hp->norm_eps = 1e-5; hp->norm = CKE_NORM_RMS; hp->act = CKE_ACT_SILU; hp->gated_ffn = true;
    hp->tied_output = h.shared_classifier;
    hp->rope.theta = 10000; hp->rope.dims = hp->head_dim; hp->rope.layout = CKE_ROPE_INTERLEAVED;
    find_l2c_tokenizer(m, m->path);
    return CKE_OK;
}

static cke_status open_any(cke_model *m, const char *path, cke_err *err) {
    cke_model_priv *p = m->priv;
    struct stat sb;
    if (stat(path, &sb) != 0) return cke_fail(err, CKE_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        m->source = CKE_SRC_HF;
        return cke_model_load_hf(m, path, err);
    }
    TRY(cke_map_open(path, &p->map, err));
    if (p->map.size >= 4 && !memcmp(p->map.data, "GGUF", 4)) {
        cke_map_close(&p->map); /* the GGUF reader maps it itself */
        m->source = CKE_SRC_GGUF;
        TRY(cke_gguf_open(path, &p->gguf, err));
        return cke_model_load_gguf(m, err);
    }
    m->source = CKE_SRC_LLAMA2C;
    const char **f = cke_arena_calloc(&p->arena, 1, sizeof *f);
    if (!f) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    f[0] = m->path;
    m->files = f;
    m->n_files = 1;
    cke_status s = load_llama2c(m, err);
    if (s && err) {
        char tmp[sizeof err->msg];
        snprintf(tmp, sizeof tmp, "%s", err->msg);
        cke_fail(err, s, "%s: %s", path, tmp);
    }
    return s;
}

cke_status cke_model_open(const char *path, cke_model **out, cke_err *err) {
    *out = NULL;
    cke_model *m = calloc(1, sizeof *m);
    cke_model_priv *p = calloc(1, sizeof *p);
    if (!m || !p) {
        free(m);
        free(p);
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    }
    m->priv = p;
    m->tok.n_tokens = -1;
    m->tok.file_bytes = -1;
    m->path = cke_arena_strndup(&p->arena, path, strlen(path));
    cke_status s = m->path ? open_any(m, path, err) : cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    if (!s) s = cke_model_finish(m, err);
    if (s) {
        cke_model_close(m);
        return s;
    }
    *out = m;
    return CKE_OK;
}

void cke_model_close(cke_model *m) {
    if (!m) return;
    cke_model_priv *p = m->priv;
    cke_gguf_close(p->gguf);
    cke_safetensors_close(p->st);
    cke_map_close(&p->map);
    cke_arena_free(&p->arena);
    free(m->tensors);
    free(p);
    free(m);
}
