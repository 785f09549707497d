/* GGUF -> normalized model: llama.cpp metadata keys and tensor names. */
#include "formats/model_export.h"
#include "formats/model_priv.h"
#include "kernels/kdecl.h" /* the block formats' reference decoders */

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *gguf;
    cke_arch arch;
    cke_rope_layout rope; /* llama.cpp runs llama with NORM (interleaved) rope, the others NEOX */
} archs[] = {
    {"llama", CKE_ARCH_LLAMA, CKE_ROPE_INTERLEAVED},  {"mistral", CKE_ARCH_MISTRAL, CKE_ROPE_INTERLEAVED},
    {"qwen2", CKE_ARCH_QWEN2, CKE_ROPE_HALVES},       {"qwen3", CKE_ARCH_QWEN3, CKE_ROPE_HALVES},
    {"gemma", CKE_ARCH_GEMMA, CKE_ROPE_HALVES},       {"gemma2", CKE_ARCH_GEMMA2, CKE_ROPE_HALVES},
    {"gemma3", CKE_ARCH_GEMMA3, CKE_ROPE_HALVES},     {"qwen3moe", CKE_ARCH_QWEN3_MOE, CKE_ROPE_HALVES},
    {"olmoe", CKE_ARCH_OLMOE, CKE_ROPE_HALVES},       {"qwen2moe", CKE_ARCH_QWEN2_MOE, CKE_ROPE_HALVES},
    {"glm4moe", CKE_ARCH_GLM4_MOE, CKE_ROPE_HALVES},    {"deepseek2", CKE_ARCH_DEEPSEEK_V3, CKE_ROPE_INTERLEAVED},
    {"gpt2", CKE_ARCH_GPT2, CKE_ROPE_INTERLEAVED},    {"phi3", CKE_ARCH_PHI3, CKE_ROPE_HALVES},
    {"llama", CKE_ARCH_MIXTRAL, CKE_ROPE_INTERLEAVED}, /* written only: read as llama with expert_count */
};

/* blk.N.<gguf suffix> -> l<N>.<canonical> */
static const struct { const char *gguf, *canon; } layer_names[] = {
    {"attn_norm.weight", "attn_norm"},   {"attn_norm.bias", "attn_norm_b"},
    {"attn_q.weight", "attn_q"},         {"attn_q.bias", "attn_q_b"},
    {"attn_k.weight", "attn_k"},         {"attn_k.bias", "attn_k_b"},
    {"attn_v.weight", "attn_v"},         {"attn_v.bias", "attn_v_b"},
    {"attn_output.weight", "attn_o"},    {"attn_output.bias", "attn_o_b"},
    {"attn_q_norm.weight", "attn_q_norm"}, {"attn_k_norm.weight", "attn_k_norm"},
    {"post_attention_norm.weight", "post_attn_norm"},
    {"ffn_norm.weight", "ffn_norm"},     {"ffn_norm.bias", "ffn_norm_b"},
    {"ffn_gate.weight", "ffn_gate"},     {"ffn_gate.bias", "ffn_gate_b"},
    {"ffn_up.weight", "ffn_up"},   {"ffn_up.bias", "ffn_up_b"},
    {"ffn_down.weight", "ffn_down"},     {"ffn_down.bias", "ffn_down_b"},
    {"post_ffw_norm.weight", "post_ffn_norm"},
    /* mixture of experts as llama.cpp writes Mixtral: the router and 3-D expert stacks */
    {"ffn_gate_inp.weight", "ffn_gate_inp"}, {"ffn_gate_exps.weight", "ffn_gate_exps"},
    {"ffn_up_exps.weight", "ffn_up_exps"},   {"ffn_down_exps.weight", "ffn_down_exps"},
    {"ffn_gate_shexp.weight", "ffn_gate_shexp"}, {"ffn_up_shexp.weight", "ffn_up_shexp"},
    {"ffn_down_shexp.weight", "ffn_down_shexp"}, {"ffn_gate_inp_shexp.weight", "ffn_gate_inp_shexp"},
    {"exp_probs_b.bias", "exp_probs_b"}, /* DeepSeek-V3 / GLM-4.5: the router's choice bias */
    /* multi-head latent attention (deepseek2); its attn_k_b / attn_v_b are joined into attn_kv_up on reading */
    {"attn_q_a.weight", "attn_q_down"},  {"attn_q_a_norm.weight", "attn_q_down_norm"}, {"attn_q_b.weight", "attn_q_up"},
    {"attn_kv_a_mqa.weight", "attn_kv_down"}, {"attn_kv_a_norm.weight", "attn_kv_down_norm"}, {"attn_kv_b.weight", "attn_kv_up"},
};
static const struct { const char *gguf, *canon; } global_names[] = {
    {"token_embd.weight", "tok_embd"}, {"position_embd.weight", "pos_embd"},
    {"output_norm.weight", "output_norm"}, {"output_norm.bias", "output_norm_b"},
    {"output.weight", "output"}, {"rope_freqs.weight", "rope_freqs"},
};

/* canonical -> GGUF name (the tables above, read backwards): "l3.attn_q" -> "blk.3.attn_q.weight" */
const char *cke_gguf_tensor_name(const char *canon, char *buf, size_t n) {
    long long l;
    int pos = 0;
    if (sscanf(canon, "l%lld.%n", &l, &pos) == 1 && pos > 0) {
        for (size_t k = 0; k < sizeof layer_names / sizeof *layer_names; k++)
            if (!strcmp(canon + pos, layer_names[k].canon)) {
                snprintf(buf, n, "blk.%lld.%s", l, layer_names[k].gguf);
                return buf;
            }
        return NULL;
    }
    for (size_t k = 0; k < sizeof global_names / sizeof *global_names; k++)
        if (!strcmp(canon, global_names[k].canon)) {
            snprintf(buf, n, "%s", global_names[k].gguf);
            return buf;
        }
    return NULL;
}

/* GGUF architecture name of an arch and the rope layout llama.cpp runs it with (NULL: none) */
const char *cke_gguf_arch_name(cke_arch a, cke_rope_layout *rope) {
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        if (archs[i].arch == a) {
            if (rope) *rope = archs[i].rope;
            return a == CKE_ARCH_MISTRAL ? "llama" : archs[i].gguf; /* llama.cpp writes Mistral (and Mixtral) as llama */
        }
    return NULL;
}

/* Integer key arch.key into *v (left alone when absent and !required), within [lo, hi]. */
static cke_status get_int(const char *path, const cke_gguf *g, const char *arch, const char *key, bool required,
                          int64_t lo, int64_t hi, int64_t *v, cke_err *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    cke_status s = cke_gguf_get_i64(g, k, v);
    if (s == CKE_ERR_MISSING && !required) return CKE_OK;
    if (s == CKE_ERR_MISSING) return cke_fail(err, CKE_ERR_MISSING, "%s: GGUF key '%s' is missing", path, k);
    if (s == CKE_ERR_FORMAT) {
        const cke_gguf_kv *kv = cke_gguf_find_kv(g, k);
        if (kv && kv->val.type == CKE_GGUF_ARR)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: GGUF key '%s' is per-layer (array)", path, k);
        return cke_fail(err, CKE_ERR_FORMAT, "%s: GGUF key '%s' is not an integer", path, k);
    }
    if (s) return cke_fail(err, s, "%s: GGUF key '%s' is out of range", path, k);
    if (*v < lo || *v > hi)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: GGUF key '%s' = %lld is out of range [%lld, %lld]", path, k, (long long)*v,
                        (long long)lo, (long long)hi);
    return CKE_OK;
}

/* Float key arch.key into *v (left alone when absent): finite, in [lo, hi] ((lo, hi] when lo_open). */
static cke_status get_float(const char *path, const cke_gguf *g, const char *arch, const char *key, double lo,
                            bool lo_open, double hi, double *v, cke_err *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    cke_status s = cke_gguf_get_f64(g, k, v);
    if (s == CKE_ERR_MISSING) return CKE_OK;
    if (s) return cke_fail(err, CKE_ERR_FORMAT, "%s: GGUF key '%s' is not a number", path, k);
    char what[sizeof err->msg];
    snprintf(what, sizeof what, "%s: GGUF key '%s'", path, k);
    return cke_hp_float(what, *v, lo, lo_open, hi, err);
}

static cke_status add_gguf_tensor(cke_model *m, const char *name, const cke_gguf_tensor *t, cke_err *err) {
    int64_t shape[4];
    for (int i = 0; i < t->ndim; i++) shape[i] = t->ne[t->ndim - 1 - i];
    const size_t nl = strlen(name);
    if (t->ndim == 1 && nl > 19 && !strcmp(name + nl - 19, ".ffn_gate_inp_shexp")) { /* llama.cpp's [dim]: one row, [1, dim] */
        shape[1] = shape[0], shape[0] = 1;
        return cke_model_add(m, name, t->name, t->type, 2, shape, t->data, t->nbytes, 0, t->file_offset, false, err);
    }
    return cke_model_add(m, name, t->name, t->type, t->ndim, shape, t->data, t->nbytes, 0, t->file_offset, false, err);
}

/* LongRoPE as llama.cpp writes Phi-3 (convert_hf_to_gguf): rope_factors_long / rope_factors_short,
 * f32 [rot/2] each, global tensors; rope.scaling.original_context_length and rope.scaling.attn_factor
 * keys. llama.cpp takes the long factors when the context exceeds the original one, as cke does. */
static cke_status read_rope_factors(cke_model *m, const cke_gguf_tensor *t, cke_err *err) {
    cke_hparams *h = &m->hp;
    const bool lng = strstr(t->name, "long") != NULL;
    if (t->type != 0 || t->ndim != 1 || t->ne[0] < 1 || t->ne[0] > CKE_ROPE_MAX_FACTORS || (uint64_t)t->nbytes != (uint64_t)t->ne[0] * 4)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: '%s' must be f32 [1..%d] (type %d, %d dims)", m->path, t->name,
                        CKE_ROPE_MAX_FACTORS, (int)t->type, t->ndim);
    if (h->rope.n_factor && h->rope.n_factor != t->ne[0])
        return cke_fail(err, CKE_ERR_SHAPE, "%s: rope_factors_long and rope_factors_short differ in length", m->path);
    h->rope.n_factor = t->ne[0];
    float *dst = lng ? h->rope.long_factor : h->rope.short_factor;
    memcpy(dst, t->data, t->nbytes);
    for (int64_t i = 0; i < t->ne[0]; i++)
        if (!(dst[i] > 0) || !isfinite(dst[i]))
            return cke_fail(err, CKE_ERR_FORMAT, "%s: %s[%lld] = %g is not a positive factor", m->path, t->name, (long long)i,
                            (double)dst[i]);
    h->rope.scaling = CKE_ROPE_SCALING_LONGROPE;
    return CKE_OK;
}

static cke_status finish_longrope(cke_model *m, const cke_gguf *g, const char *arch, cke_err *err) {
    cke_hparams *h = &m->hp;
    if (h->rope.scaling != CKE_ROPE_SCALING_LONGROPE) return CKE_OK;
    if (!cke_gguf_find_tensor(g, "rope_factors_long.weight") || !cke_gguf_find_tensor(g, "rope_factors_short.weight"))
        return cke_fail(err, CKE_ERR_MISSING, "%s: LongRoPE needs both rope_factors_long and rope_factors_short", m->path);
    TRY(get_int(m->path, g, arch, "rope.scaling.original_context_length", true, 1, CKE_HP_MAX_CTX, &h->rope.orig_ctx, err));
    double af = 0;
    TRY(get_float(m->path, g, arch, "rope.scaling.attn_factor", 0, true, 1e3, &af, err));
    h->rope.attn_factor = af;
    return CKE_OK;
}

/* glm4moe as llama.cpp writes GLM-4.5: leading_dense_block_count dense layers (feed_forward_length), then
 * experts of expert_feed_forward_length, expert_shared_count shared ones (one MLP), sigmoid gating
 * (expert_gating_func 2, llama.cpp's default for glm4moe) with exp_probs_b, expert_weights_norm and
 * expert_weights_scale; expert_group_count / expert_group_used_count when given (llama.cpp's common
 * keys; GLM-4.5 uses one group). nextn_predict_layers multi-token-prediction layers follow the model's
 * in block_count: left out, as llama.cpp's forward does. */
static cke_status read_glm4_moe(cke_model *m, const cke_gguf *g, const char *arch, cke_err *err) {
    cke_hparams *h = &m->hp;
    int64_t shared = 1, gf = m->arch == CKE_ARCH_GLM4_MOE ? 2 : 1; /* llama.cpp's defaults: glm4moe sigmoid, deepseek2 softmax (V2) */
    double ws = 1;
    TRY(get_int(m->path, g, arch, "nextn_predict_layers", false, 0, 16, &h->n_mtp_layers, err));
    if (h->n_mtp_layers >= h->n_layers)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: %s.nextn_predict_layers = %lld of %lld blocks", m->path, arch,
                        (long long)h->n_mtp_layers, (long long)h->n_layers);
    h->n_layers -= h->n_mtp_layers;
    TRY(get_int(m->path, g, arch, "leading_dense_block_count", false, 0, h->n_layers, &h->n_dense_lead, err));
    TRY(get_int(m->path, g, arch, "expert_feed_forward_length", true, 1, CKE_HP_MAX_FFN, &h->expert_ffn_dim, err));
    TRY(get_int(m->path, g, arch, "expert_shared_count", true, 1, CKE_HP_MAX_FFN / h->expert_ffn_dim, &shared, err));
    TRY(get_int(m->path, g, arch, "expert_gating_func", false, 0, 1 << 16, &gf, err));
    TRY(get_float(m->path, g, arch, "expert_weights_scale", 0, false, 1e6, &ws, err));
    h->moe_n_group = h->moe_topk_group = 1;
    TRY(get_int(m->path, g, arch, "expert_group_count", false, 1, h->n_expert, &h->moe_n_group, err));
    TRY(get_int(m->path, g, arch, "expert_group_used_count", false, 1, h->moe_n_group, &h->moe_topk_group, err));
    char k[128];
    bool norm = false;
    snprintf(k, sizeof k, "%s.expert_weights_norm", arch);
    if (cke_gguf_find_kv(g, k) && cke_gguf_get_bool(g, k, &norm) != CKE_OK)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: GGUF key '%s' is not a bool", m->path, k);
    if (gf != 2 && gf != 0)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: %s.expert_gating_func = %lld: cke's %s experts are sigmoid-gated (2; "
                        "DeepSeek-V2's softmax routing is not supported)", m->path, arch, (long long)gf, arch);
    h->moe_sigmoid = h->shexp_ungated = true;
    h->moe_norm_topk = norm;
    h->moe_routed_scale = ws > 0 ? ws : 1;
    h->shexp_ffn_dim = shared * h->expert_ffn_dim;
    return CKE_OK;
}

/* deepseek2's multi-head latent attention as llama.cpp's converter writes it: attention.q_lora_rank (absent:
 * one attn_q), kv_lora_rank, key_length_mla / value_length_mla (each head's query/key and value width;
 * attention.key_length / value_length describe the latent MQA view llama.cpp computes in) and the rotated
 * part rope.dimension_count. Its YaRN: rope.scaling.yarn_log_multiplier is 0.1 x HF's mscale_all_dim,
 * which scales the softmax by mscale(factor, mscale_all_dim)^2; cos/sin unscaled (HF: mscale /
 * mscale_all_dim, 1 for DeepSeek's configs). */
static cke_status read_mla(cke_model *m, const cke_gguf *g, const char *arch, cke_err *err) {
    cke_hparams *h = &m->hp;
    TRY(get_int(m->path, g, arch, "attention.q_lora_rank", false, 0, CKE_HP_MAX_FFN, &h->q_lora_rank, err));
    TRY(get_int(m->path, g, arch, "attention.kv_lora_rank", true, 1, CKE_HP_MAX_FFN, &h->kv_lora_rank, err));
    TRY(get_int(m->path, g, arch, "attention.key_length_mla", true, 1, CKE_HP_MAX_HEADS, &h->head_dim, err));
    TRY(get_int(m->path, g, arch, "attention.value_length_mla", true, 1, CKE_HP_MAX_HEADS, &h->v_head_dim, err));
    if (h->rope.dims < 2 || h->rope.dims >= h->head_dim)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: %s.rope.dimension_count = %lld with key_length_mla %lld", m->path, arch,
                        (long long)h->rope.dims, (long long)h->head_dim);
    h->qk_nope_dim = h->head_dim - h->rope.dims;
    h->n_kv_heads = h->n_heads; /* the key/value heads expanded from the latent: one per query head */
    h->attn_scale = 1.0 / sqrt((double)h->head_dim);
    if (h->rope.scaling == CKE_ROPE_SCALING_YARN) {
        double lm = 0, af = 1;
        TRY(get_float(m->path, g, arch, "rope.scaling.yarn_log_multiplier", 0, false, 1e3, &lm, err));
        TRY(get_float(m->path, g, arch, "rope.scaling.attn_factor", 0, true, 1e3, &af, err));
        if (af != 1)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: deepseek2 with YaRN and %s.rope.scaling.attn_factor = %g (HF's mscale "
                            "differing from mscale_all_dim)", m->path, arch, af);
        const double ms = cke_yarn_mscale(h->rope.factor, lm / 0.1); /* HF's mscale_all_dim = lm / 0.1 */
        h->attn_scale *= ms * ms;
        h->rope.attn_factor = 1.0;
    }
    return CKE_OK;
}

/* attn_k_b [H, kv_lora, nope] (each head's key rows, transposed) and attn_v_b [H, v, kv_lora] of llama.cpp's
 * deepseek2, joined back into HF's kv_b_proj: [H * (nope + v), kv_lora], each head's key rows then value
 * rows. Floats are moved as they are; block formats (llama-quantize quantizes these two) are decoded
 * exactly first, the joined tensor then f32. */
/* The reference decoder of a block format (src/kernels/ref/quant.c, the spec), for the one place the loader
 * must see values: the transpose below. */
static const cke_qtype_ops *block_decoder(int t) {
    switch (t) {
    case CKE_DT_Q8_0: return &cke_qops_q8_0_ref;
    case CKE_DT_Q4_0: return &cke_qops_q4_0_ref;
    case CKE_DT_Q4_1: return &cke_qops_q4_1_ref;
    case CKE_DT_Q5_0: return &cke_qops_q5_0_ref;
    case CKE_DT_Q5_1: return &cke_qops_q5_1_ref;
    case CKE_DT_Q4_K: return &cke_qops_q4_K_ref;
    case CKE_DT_Q5_K: return &cke_qops_q5_K_ref;
    case CKE_DT_Q6_K: return &cke_qops_q6_K_ref;
    default: return NULL;
    }
}

static cke_status join_kv_b(cke_model *m, const cke_gguf *g, int64_t l, cke_err *err) {
    const cke_hparams *h = &m->hp;
    char kn[64], vn[64];
    snprintf(kn, sizeof kn, "blk.%lld.attn_k_b.weight", (long long)l);
    snprintf(vn, sizeof vn, "blk.%lld.attn_v_b.weight", (long long)l);
    const cke_gguf_tensor *tk = cke_gguf_find_tensor(g, kn), *tv = cke_gguf_find_tensor(g, vn);
    if (!tk || !tv) return cke_fail(err, CKE_ERR_MISSING, "%s: layer %lld has %s but not %s", m->path, (long long)l,
                                    tk ? kn : vn, tk ? vn : kn);
    const int64_t H = h->n_heads, nope = h->qk_nope_dim, vd = h->v_head_dim, kl = h->kv_lora_rank;
    if (tk->ndim != 3 || tk->ne[0] != nope || tk->ne[1] != kl || tk->ne[2] != H || tv->ndim != 3 || tv->ne[0] != kl ||
        tv->ne[1] != vd || tv->ne[2] != H)
        return cke_fail(err, CKE_ERR_SHAPE, "%s: %s / %s must be [%lld, %lld, %lld] and [%lld, %lld, %lld] (heads outermost)",
                        m->path, kn, vn, (long long)H, (long long)kl, (long long)nope, (long long)H, (long long)vd, (long long)kl);
    const cke_gguf_tensor *t2[2] = {tk, tv};
    /* one element type for both: theirs when they agree on a float type (F16 stays F16: half the bytes
     * decode reads), else f32; block formats (llama-quantize quantizes these too) decoded exactly by the
     * kernels' reference decoders, the spec */
    const void *p[2] = {tk->data, tv->data};
    const cke_dtype_traits *trk = cke_dtype_traits_of(tk->type);
    cke_dtype dt = tk->type;
    if (tk->type != tv->type || !trk || trk->quantized) {
        dt = CKE_DT_F32;
        for (int i = 0; i < 2; i++) {
            const int64_t n = H * kl * (i ? vd : nope);
            const cke_dtype_traits *tr = cke_dtype_traits_of(t2[i]->type);
            float *f = cke_arena_alloc(&m->priv->arena, (size_t)n * sizeof(float));
            if (!f) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
            if (tr && tr->quantized) {
                const cke_qtype_ops *q = block_decoder(t2[i]->type);
                if (!q || n % tr->blck || (uint64_t)t2[i]->nbytes != (uint64_t)(n / tr->blck) * (uint64_t)tr->type_size)
                    return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: %s is %s, which cke cannot decode here", m->path, t2[i]->name,
                                    cke_dtype_name(t2[i]->type));
                q->dequantize_row(f, t2[i]->data, n);
            } else {
                cke_model_tensor src = {.dtype = t2[i]->type, .ndim = 1, .shape = {n}, .data = t2[i]->data,
                                        .nbytes = t2[i]->nbytes, .name = t2[i]->name, .src_name = t2[i]->name};
                TRY(cke_model_tensor_to_f32(&src, f, err));
            }
            p[i] = f;
        }
    }
    const size_t es = (size_t)cke_dtype_traits_of(dt)->type_size;
    const int64_t rows = H * (nope + vd);
    unsigned char *kv = cke_arena_alloc(&m->priv->arena, (size_t)(rows * kl) * es);
    if (!kv) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    const unsigned char *kb = p[0], *vb = p[1];
    for (int64_t hh = 0; hh < H; hh++) {
        for (int64_t j = 0; j < nope; j++) /* key rows: attn_k_b's head transposed */
            for (int64_t c = 0; c < kl; c++)
                memcpy(kv + (size_t)((hh * (nope + vd) + j) * kl + c) * es, kb + (size_t)((hh * kl + c) * nope + j) * es, es);
        memcpy(kv + (size_t)((hh * (nope + vd) + nope) * kl) * es, vb + (size_t)(hh * vd * kl) * es, (size_t)(vd * kl) * es);
    }
    char cn[64];
    snprintf(cn, sizeof cn, "l%lld.attn_kv_up", (long long)l);
    const int64_t shape[2] = {rows, kl};
    return cke_model_add(m, cn, kn, dt, 2, shape, kv, rows * kl * (int64_t)es, 0, tk->file_offset, true, err);
}

cke_status cke_model_load_gguf(cke_model *m, cke_err *err) {
    cke_gguf *g = m->priv->gguf;
    const char *an;
    size_t al;
    if (cke_gguf_get_str(g, "general.architecture", &an, &al) != CKE_OK)
        return cke_fail(err, CKE_ERR_MISSING, "%s: no general.architecture string", m->path);
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)(al < 63 ? al : 63), an);
    size_t ai = 0;
    while (ai < sizeof archs / sizeof *archs && strcmp(archs[ai].gguf, arch)) ai++;
    if (ai == sizeof archs / sizeof *archs)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: GGUF architecture '%s' is not supported", m->path, arch);
    m->arch = archs[ai].arch;
    const char **f = cke_arena_calloc(&m->priv->arena, 1, sizeof *f);
    if (!f) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    f[0] = m->path;
    m->files = f;
    m->n_files = 1;

    cke_hparams *h = &m->hp;
    TRY(get_int(m->path, g, arch, "embedding_length", true, 1, CKE_HP_MAX_DIM, &h->dim, err));
    TRY(get_int(m->path, g, arch, "block_count", true, 1, CKE_HP_MAX_LAYERS, &h->n_layers, err));
    TRY(get_int(m->path, g, arch, "attention.head_count", true, 1, CKE_HP_MAX_HEADS, &h->n_heads, err));
    TRY(get_int(m->path, g, arch, "attention.head_count_kv", false, 0, CKE_HP_MAX_HEADS, &h->n_kv_heads, err));
    TRY(get_int(m->path, g, arch, "attention.key_length", false, 0, CKE_HP_MAX_HEADS, &h->head_dim, err));
    TRY(get_int(m->path, g, arch, "feed_forward_length", true, 1, CKE_HP_MAX_FFN, &h->ffn_dim, err));
    TRY(get_int(m->path, g, arch, "context_length", false, 0, CKE_HP_MAX_CTX, &h->ctx_len, err));
    TRY(get_int(m->path, g, arch, "vocab_size", false, 0, CKE_HP_MAX_VOCAB, &h->vocab, err));
    TRY(get_int(m->path, g, arch, "rope.dimension_count", false, 0, CKE_HP_MAX_HEADS, &h->rope.dims, err));
    TRY(get_int(m->path, g, arch, "attention.sliding_window", false, 0, CKE_HP_MAX_CTX, &h->sliding_window, err));
    TRY(get_int(m->path, g, arch, "expert_count", false, 0, CKE_HP_MAX_EXPERTS, &h->n_expert, err));
    TRY(get_int(m->path, g, arch, "expert_used_count", h->n_expert > 0, h->n_expert ? 1 : 0, h->n_expert, &h->n_expert_used, err));
    const bool moe_arch = m->arch == CKE_ARCH_QWEN3_MOE || m->arch == CKE_ARCH_OLMOE || m->arch == CKE_ARCH_QWEN2_MOE ||
                          m->arch == CKE_ARCH_GLM4_MOE || m->arch == CKE_ARCH_DEEPSEEK_V3;
    if (h->n_expert > 0 && m->arch != CKE_ARCH_LLAMA && !moe_arch)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: GGUF architecture '%s' with experts (%s.expert_count = %lld) is not "
                        "supported (llama's Mixtral layout, qwen2moe, qwen3moe, olmoe, glm4moe and deepseek2 are)", m->path, arch, arch, (long long)h->n_expert);
    if (moe_arch && !h->n_expert)
        return cke_fail(err, CKE_ERR_MISSING, "%s: GGUF key '%s.expert_count' is missing", m->path, arch);
    if (h->n_expert > 0 && m->arch == CKE_ARCH_LLAMA) m->arch = CKE_ARCH_MIXTRAL; /* llama.cpp writes Mixtral as llama with experts */
    h->moe_norm_topk = h->n_expert > 0 && m->arch != CKE_ARCH_OLMOE && m->arch != CKE_ARCH_QWEN2_MOE; /* as llama.cpp's graphs do */
    if (m->arch == CKE_ARCH_GLM4_MOE || m->arch == CKE_ARCH_DEEPSEEK_V3) TRY(read_glm4_moe(m, g, arch, err));
    else if (h->n_expert > 0) { /* DeepSeek-style routing keys on another architecture: refused, not ignored */
        double ws = 1;
        int64_t gf = 1; /* llama.cpp's 1 = softmax, 2 = sigmoid */
        TRY(get_float(m->path, g, arch, "expert_weights_scale", 0, false, DBL_MAX, &ws, err));
        TRY(get_int(m->path, g, arch, "expert_gating_func", false, 0, 1 << 16, &gf, err));
        if ((ws != 0 && ws != 1) || gf != 1)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: expert routing with %s.expert_weights_scale = %g or "
                            "%s.expert_gating_func = %lld (cke's moe: softmax gating, unscaled) is not supported", m->path, arch,
                            ws, arch, (long long)gf);
    }
    if (m->arch == CKE_ARCH_QWEN3_MOE || m->arch == CKE_ARCH_QWEN2_MOE) /* the experts' width (feed_forward_length: the dense one) */
        TRY(get_int(m->path, g, arch, "expert_feed_forward_length", true, 1, CKE_HP_MAX_FFN, &h->ffn_dim, err));
    if (m->arch == CKE_ARCH_QWEN2_MOE)
        TRY(get_int(m->path, g, arch, "expert_shared_feed_forward_length", true, 1, CKE_HP_MAX_FFN, &h->shexp_ffn_dim, err));
    h->rope.theta = 10000;
    TRY(get_float(m->path, g, arch, "rope.freq_base", 0, true, DBL_MAX, &h->rope.theta, err));
    h->norm_eps = 1e-5;
    TRY(get_float(m->path, g, arch, "attention.layer_norm_rms_epsilon", 0, false, 1, &h->norm_eps, err));
    TRY(get_float(m->path, g, arch, "attention.layer_norm_epsilon", 0, false, 1, &h->norm_eps, err));
    TRY(get_float(m->path, g, arch, "attn_logit_softcapping", 0, false, DBL_MAX, &h->attn_softcap, err));
    TRY(get_float(m->path, g, arch, "final_logit_softcapping", 0, false, DBL_MAX, &h->final_softcap, err));
    h->rope.layout = archs[ai].rope;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *st;
    size_t sl;
    if (cke_gguf_get_str(g, key, &st, &sl) == CKE_OK && !(sl == 4 && !memcmp(st, "none", 4))) {
        if (sl == 6 && !memcmp(st, "linear", 6)) {
            h->rope.scaling = CKE_ROPE_SCALING_LINEAR;
            TRY(get_float(m->path, g, arch, "rope.scaling.factor", 0, true, DBL_MAX, &h->rope.factor, err));
        } else if (sl == 4 && !memcmp(st, "yarn", 4)) {
            /* llama.cpp's keys; its attn_factor multiplies YaRN's default 0.1 ln(factor) + 1 */
            h->rope.scaling = CKE_ROPE_SCALING_YARN;
            double af = 1;
            TRY(get_float(m->path, g, arch, "rope.scaling.factor", 0, true, 1e6, &h->rope.factor, err));
            TRY(get_int(m->path, g, arch, "rope.scaling.original_context_length", true, 1, CKE_HP_MAX_CTX, &h->rope.orig_ctx, err));
            TRY(get_float(m->path, g, arch, "rope.scaling.yarn_beta_fast", 0, true, 1e6, &h->rope.beta_fast, err));
            TRY(get_float(m->path, g, arch, "rope.scaling.yarn_beta_slow", 0, true, 1e6, &h->rope.beta_slow, err));
            TRY(get_float(m->path, g, arch, "rope.scaling.attn_factor", 0, true, 1e3, &af, err));
            if (af != 1) h->rope.attn_factor = (double)(float)(af * cke_yarn_mscale(h->rope.factor, 1));
        } else if (sl == 8 && !memcmp(st, "longrope", 8)) {
            h->rope.scaling = CKE_ROPE_SCALING_LONGROPE; /* the factors are tensors: read with them below */
        } else {
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: rope scaling type '%.*s' is not supported", m->path,
                            (int)(sl < 64 ? sl : 64), st);
        }
    }

    if (m->arch == CKE_ARCH_DEEPSEEK_V3) TRY(read_mla(m, g, arch, err)); /* after the rope scaling: YaRN scales its softmax */

    switch (m->arch) {
    case CKE_ARCH_GPT2:
        h->norm = CKE_NORM_LAYER; h->act = CKE_ACT_GELU_TANH; h->learned_pos = true;
        h->attn_qkv_bias = h->attn_o_bias = h->ffn_bias = h->norm_bias = true;
        h->rope.dims = 0;
        break;
    case CKE_ARCH_GEMMA: case CKE_ARCH_GEMMA2: case CKE_ARCH_GEMMA3:
        h->act = CKE_ACT_GELU_TANH; h->gated_ffn = true; h->embd_scale = sqrt((double)h->dim);
        h->post_norms = m->arch != CKE_ARCH_GEMMA;
        if (m->arch == CKE_ARCH_GEMMA3) {
            /* what llama.cpp's gemma3 fixes rather than stores: a global layer every 6th, local rope
             * base 10000, and the attention scale 1/sqrt(head_dim) (27B, 62 layers: dim / heads) */
            h->qk_norm = true;
            h->swa_pattern = 6;
            h->rope_local_theta = 10000;
            if (h->n_layers == 62 && h->n_heads > 0) h->attn_scale = 1.0 / sqrt((double)h->dim / (double)h->n_heads);
        }
        break;
    default:
        h->act = CKE_ACT_SILU; h->gated_ffn = true;
        /* biases as the file has them (Llama's attention_bias / mlp_bias, Qwen3's attention_bias) */
        h->attn_qkv_bias = m->arch == CKE_ARCH_QWEN2 || m->arch == CKE_ARCH_QWEN2_MOE || cke_gguf_find_tensor(g, "blk.0.attn_q.bias");
        h->attn_o_bias = cke_gguf_find_tensor(g, "blk.0.attn_output.bias") != NULL;
        h->ffn_bias = cke_gguf_find_tensor(g, "blk.0.ffn_up.bias") != NULL;
        h->qk_norm = m->arch == CKE_ARCH_QWEN3 || m->arch == CKE_ARCH_QWEN3_MOE || m->arch == CKE_ARCH_OLMOE ||
                     (m->arch == CKE_ARCH_GLM4_MOE && cke_gguf_find_tensor(g, "blk.0.attn_q_norm.weight"));
        h->qk_norm_full = m->arch == CKE_ARCH_OLMOE; /* over all of q's (k's) width, not per head */
        break;
    }

    /* defaults and consistency before the fused-QKV split divides by the head counts */
    TRY(cke_model_check_hparams(m, false, err));
    int64_t nt = cke_gguf_n_tensors(g);
    if (nt == 0) return cke_fail(err, CKE_ERR_MISSING, "%s: GGUF has no tensors (a vocab-only file?)", m->path);
    for (int64_t i = 0; i < nt; i++) {
        const cke_gguf_tensor *t = cke_gguf_tensor_at(g, i);
        char canon[96];
        const char *cn = NULL;
        long long l;
        int pos = 0;
        if (sscanf(t->name, "blk.%lld.%n", &l, &pos) == 1 && pos > 0) {
            const char *suf = t->name + pos;
            if (h->n_mtp_layers > 0 && l >= h->n_layers && l < h->n_layers + h->n_mtp_layers)
                continue; /* GLM-4.5's multi-token-prediction block: not in the model's forward */
            if (m->arch == CKE_ARCH_DEEPSEEK_V3 && (!strcmp(suf, "attn_k_b.weight") || !strcmp(suf, "attn_v_b.weight"))) {
                if (suf[5] == 'k') TRY(join_kv_b(m, g, l, err)); /* once per layer, from its key half */
                continue;
            }
            if (m->arch == CKE_ARCH_GLM4_MOE && !strcmp(suf, "post_attention_norm.weight")) { /* glm4moe's pre-FFN norm */
                snprintf(canon, sizeof canon, "l%lld.ffn_norm", l);
                TRY(add_gguf_tensor(m, canon, t, err));
                continue;
            }
            if (!strcmp(suf, "attn_qkv.weight") || !strcmp(suf, "attn_qkv.bias")) {
                /* fused Q|K|V rows (GPT-2): split into row slices, zero copy */
                int64_t shape[4];
                for (int d = 0; d < t->ndim; d++) shape[d] = t->ne[t->ndim - 1 - d];
                TRY(cke_model_add(m, "tmp.qkv", t->name, t->type, t->ndim, shape, t->data, t->nbytes, 0,
                                  t->file_offset, false, err));
                cke_model_tensor src = m->tensors[--m->n_tensors];
                int64_t q = h->n_heads * h->head_dim, kv = h->n_kv_heads * h->head_dim; /* checked: in bounds */
                if (src.shape[0] != q + 2 * kv)
                    return cke_fail(err, CKE_ERR_SHAPE, "%s: '%s' has %lld rows, expected %lld", m->path, t->name,
                                    (long long)src.shape[0], (long long)(q + 2 * kv));
                bool bias = strstr(suf, ".bias") != NULL;
                const char *nm[3] = {"attn_q", "attn_k", "attn_v"};
                int64_t r0[3] = {0, q, q + kv}, nr[3] = {q, kv, kv};
                for (int k = 0; k < 3; k++) {
                    snprintf(canon, sizeof canon, "l%lld.%s%s", l, nm[k], bias ? "_b" : "");
                    TRY(cke_model_add_rows(m, canon, &src, r0[k], nr[k], err));
                }
                continue;
            }
            if (m->arch == CKE_ARCH_PHI3 && !strcmp(suf, "ffn_up.weight")) {
                /* llama.cpp's phi3: one ffn_up of 2 x feed_forward_length rows, gate | up (HF gate_up_proj) */
                int64_t shape[4];
                for (int d = 0; d < t->ndim; d++) shape[d] = t->ne[t->ndim - 1 - d];
                TRY(cke_model_add(m, "tmp.gate_up", t->name, t->type, t->ndim, shape, t->data, t->nbytes, 0, t->file_offset,
                                  false, err));
                cke_model_tensor src = m->tensors[--m->n_tensors];
                if (src.shape[0] != 2 * h->ffn_dim)
                    return cke_fail(err, CKE_ERR_SHAPE, "%s: '%s' has %lld rows, expected 2 x %lld (gate | up)", m->path, t->name,
                                    (long long)src.shape[0], (long long)h->ffn_dim);
                snprintf(canon, sizeof canon, "l%lld.ffn_gate", l);
                TRY(cke_model_add_rows(m, canon, &src, 0, h->ffn_dim, err));
                snprintf(canon, sizeof canon, "l%lld.ffn_up", l);
                TRY(cke_model_add_rows(m, canon, &src, h->ffn_dim, h->ffn_dim, err));
                continue;
            }
            for (size_t k = 0; k < sizeof layer_names / sizeof *layer_names; k++)
                if (!strcmp(suf, layer_names[k].gguf)) {
                    snprintf(canon, sizeof canon, "l%lld.%s", l, layer_names[k].canon);
                    cn = canon;
                }
        } else {
            if (!strcmp(t->name, "rope_factors_long.weight") || !strcmp(t->name, "rope_factors_short.weight")) {
                TRY(read_rope_factors(m, t, err)); /* LongRoPE: hyperparameters, not weights */
                continue;
            }
            for (size_t k = 0; k < sizeof global_names / sizeof *global_names; k++)
                if (!strcmp(t->name, global_names[k].gguf)) cn = global_names[k].canon;
        }
        if (!cn) return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: tensor '%s' is not supported", m->path, t->name);
        TRY(add_gguf_tensor(m, cn, t, err));
        if (!strcmp(cn, "rope_freqs")) h->rope.scaling = CKE_ROPE_SCALING_FREQS;
    }
    TRY(finish_longrope(m, g, arch, err));
    const cke_gguf_tensor *emb = cke_gguf_find_tensor(g, "token_embd.weight");
    if (!h->vocab && emb && emb->ndim == 2) h->vocab = emb->ne[1];
    h->tied_output = cke_gguf_find_tensor(g, "output.weight") == NULL;

    m->tok.n_tokens = -1;
    uint64_t n;
    if (cke_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &n) == CKE_OK) {
        m->tok.source = CKE_TOK_GGUF;
        m->tok.path = m->path;
        m->tok.n_tokens = (int64_t)n;
        size_t fs;
        cke_gguf_file_data(g, &fs);
        m->tok.file_bytes = (int64_t)fs;
        const char *tm;
        size_t tl;
        if (cke_gguf_get_str(g, "tokenizer.ggml.model", &tm, &tl) == CKE_OK)
            m->tok.model = cke_arena_strndup(&m->priv->arena, tm, tl);
    }
    return CKE_OK;
}
