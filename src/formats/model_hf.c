/* Hugging Face directory (config.json + safetensors) -> normalized model. */
#include "formats/model_priv.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct { const char *type; cke_arch arch; } model_types[] = {
    {"llama", CKE_ARCH_LLAMA}, {"mistral", CKE_ARCH_MISTRAL}, {"qwen2", CKE_ARCH_QWEN2},
    {"qwen3", CKE_ARCH_QWEN3}, {"gemma", CKE_ARCH_GEMMA},     {"gemma2", CKE_ARCH_GEMMA2}, {"gemma3_text", CKE_ARCH_GEMMA3}, {"gemma3", CKE_ARCH_GEMMA3},
    {"gpt2", CKE_ARCH_GPT2},    {"phi3", CKE_ARCH_PHI3},      {"mixtral", CKE_ARCH_MIXTRAL},
    {"qwen3_moe", CKE_ARCH_QWEN3_MOE}, {"olmoe", CKE_ARCH_OLMOE}, {"qwen2_moe", CKE_ARCH_QWEN2_MOE},
    {"glm4_moe", CKE_ARCH_GLM4_MOE},   {"deepseek_v3", CKE_ARCH_DEEPSEEK_V3},
};

static bool jint(const cJSON *o, const char *k, int64_t *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(j) || !(fabs(j->valuedouble) < 9e15) || floor(j->valuedouble) != j->valuedouble) return false;
    *v = (int64_t)j->valuedouble;
    return true;
}
static bool jnum(const cJSON *o, const char *k, double *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(j)) return false;
    *v = j->valuedouble;
    return true;
}
static bool jbool(const cJSON *o, const char *k, bool *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsBool(j)) return false;
    *v = cJSON_IsTrue(j);
    return true;
}
static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

static cke_status parse_act(const char *a, cke_act *act, cke_err *err) {
    if (!a || !strcmp(a, "silu") || !strcmp(a, "swish")) *act = CKE_ACT_SILU;
    else if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh") || !strcmp(a, "gelu_fast"))
        *act = CKE_ACT_GELU_TANH;
    else if (!strcmp(a, "gelu")) *act = CKE_ACT_GELU;
    else return cke_fail(err, CKE_ERR_UNSUPPORTED, "activation '%s' is not supported", a);
    return CKE_OK;
}

/* original_max_position_embeddings: in rope_scaling (YaRN) or at the top (Phi-3); else the model's */
static int64_t orig_ctx_of(const cJSON *c, const cJSON *rs, const cke_hparams *h) {
    int64_t v;
    if (jint(rs, "original_max_position_embeddings", &v) || jint(c, "original_max_position_embeddings", &v)) return v;
    return h->ctx_len;
}


static cke_status parse_yarn(const cJSON *c, const cJSON *rs, cke_hparams *h, cke_err *err) {
    h->rope.scaling = CKE_ROPE_SCALING_YARN;
    h->rope.orig_ctx = orig_ctx_of(c, rs, h);
    if (!jnum(rs, "factor", &h->rope.factor)) {
        if (h->rope.orig_ctx <= 0) return cke_fail(err, CKE_ERR_MISSING, "yarn rope_scaling needs factor");
        h->rope.factor = (double)h->ctx_len / (double)h->rope.orig_ctx; /* HF: max / original */
    }
    jnum(rs, "beta_fast", &h->rope.beta_fast);
    jnum(rs, "beta_slow", &h->rope.beta_slow);
    bool tr = true;
    jbool(rs, "truncate", &tr);
    h->rope.no_truncate = !tr;
    double af, ms, msa;
    if (jnum(rs, "attention_factor", &af)) h->rope.attn_factor = af;
    else if (jnum(rs, "mscale", &ms) && jnum(rs, "mscale_all_dim", &msa) && ms != 0 && msa != 0)
        h->rope.attn_factor = (double)(float)(cke_yarn_mscale(h->rope.factor, ms) / cke_yarn_mscale(h->rope.factor, msa));
    if (h->rope.orig_ctx <= 0) return cke_fail(err, CKE_ERR_MISSING, "yarn rope_scaling needs original_max_position_embeddings");
    return CKE_OK;
}

static cke_status read_factors(const cJSON *rs, const char *key, float *out, int64_t *n, cke_err *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(rs, key);
    if (!cJSON_IsArray(a)) return cke_fail(err, CKE_ERR_MISSING, "longrope rope_scaling needs the array %s", key);
    int64_t k = cJSON_GetArraySize(a);
    if (k < 1 || k > CKE_ROPE_MAX_FACTORS)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "rope_scaling.%s has %lld entries (1 to %d supported)", key, (long long)k,
                        CKE_ROPE_MAX_FACTORS);
    int64_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble > 0) || e->valuedouble > 1e9)
            return cke_fail(err, CKE_ERR_FORMAT, "rope_scaling.%s[%lld] is not a positive number", key, (long long)i);
        out[i] = (float)e->valuedouble;
    }
    if (*n && *n != k) return cke_fail(err, CKE_ERR_SHAPE, "rope_scaling long_factor and short_factor differ in length");
    *n = k;
    return CKE_OK;
}

static cke_status parse_longrope(const cJSON *c, const cJSON *rs, cke_hparams *h, cke_err *err) {
    h->rope.scaling = CKE_ROPE_SCALING_LONGROPE;
    h->rope.orig_ctx = orig_ctx_of(c, rs, h);
    if (h->rope.orig_ctx <= 0) return cke_fail(err, CKE_ERR_MISSING, "longrope needs original_max_position_embeddings");
    h->rope.n_factor = 0;
    TRY(read_factors(rs, "long_factor", h->rope.long_factor, &h->rope.n_factor, err));
    TRY(read_factors(rs, "short_factor", h->rope.short_factor, &h->rope.n_factor, err));
    jnum(rs, "factor", &h->rope.factor);
    jnum(rs, "attention_factor", &h->rope.attn_factor);
    return CKE_OK;
}

/* Gemma 3: global attention on every swa_pattern-th layer (HF layer_types, or its older
 * sliding_window_pattern, default 6), sliding windows elsewhere; the local layers' rope base. */
static cke_status parse_gemma3(const cJSON *c, cke_hparams *h, cke_err *err) {
    h->rope.theta = 1000000;
    jnum(c, "rope_theta", &h->rope.theta);
    h->rope_local_theta = 10000;
    jnum(c, "rope_local_base_freq", &h->rope_local_theta);
    if (!(h->rope_local_theta > 0) || !isfinite(h->rope_local_theta))
        return cke_fail(err, CKE_ERR_FORMAT, "rope_local_base_freq = %g is not a positive number", h->rope_local_theta);
    h->swa_pattern = 6;
    jint(c, "sliding_window_pattern", &h->swa_pattern);
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(c, "layer_types");
    if (cJSON_IsArray(lt)) { /* the pattern it follows, or a refusal */
        int64_t n = cJSON_GetArraySize(lt), first_full = -1, i = 0;
        for (const cJSON *e = lt->child; e && first_full < 0; e = e->next, i++)
            if (cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")) first_full = i;
        h->swa_pattern = first_full >= 0 ? first_full + 1 : n + 1;
        i = 0;
        for (const cJSON *e = lt->child; e; e = e->next, i++) {
            const bool full = (i + 1) % h->swa_pattern == 0;
            if (!cJSON_IsString(e) || strcmp(e->valuestring, full ? "full_attention" : "sliding_attention"))
                return cke_fail(err, CKE_ERR_UNSUPPORTED, "layer_types[%lld] breaks the pattern of one global layer every "
                                "%lld (cke's gemma3 template)", (long long)i, (long long)h->swa_pattern);
        }
    }
    if (h->swa_pattern < 1 || h->swa_pattern > CKE_HP_MAX_LAYERS)
        return cke_fail(err, CKE_ERR_FORMAT, "sliding_window_pattern = %lld is out of range", (long long)h->swa_pattern);
    return CKE_OK;
}

/* Mixture of experts: HF MixtralSparseMoeBlock (softmax router, top-k, always renormalized),
 * Qwen3MoeSparseMoeBlock (renormalized when norm_topk_prob, HF's default false; experts of
 * moe_intermediate_size) and OlmoeSparseMoeBlock (likewise; experts of intermediate_size). Layers that mix dense MLPs in (decoder_sparse_step, mlp_only_layers) are
 * refused: the template has one body. */
/* GLM-4.5 (Glm4MoeConfig): the first first_k_dense_replace layers a dense MLP of intermediate_size, the
 * others DeepSeek-V3's MoE (Glm4MoeTopkRouter: sigmoid scores, chosen by score + e_score_correction_bias
 * among the topk_group best of n_group groups, renormalized when norm_topk_prob, times
 * routed_scaling_factor) plus n_shared_experts shared experts as one ungated MLP. No load-balancing
 * loss (HF computes none for it). */
static cke_status parse_ds_moe(const cJSON *c, const char *an, cke_hparams *h, cke_err *err) {
    int64_t shared = 1;
    if (!jint(c, "n_routed_experts", &h->n_expert) || !jint(c, "num_experts_per_tok", &h->n_expert_used) ||
        !jint(c, "moe_intermediate_size", &h->expert_ffn_dim))
        return cke_fail(err, CKE_ERR_MISSING, "%s config.json needs n_routed_experts, num_experts_per_tok and "
                        "moe_intermediate_size", an);
    if (h->n_expert < 1 || h->n_expert_used < 1 || h->n_expert_used > h->n_expert || h->expert_ffn_dim < 1)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: num_experts_per_tok = %lld of n_routed_experts = %lld (moe_intermediate_size "
                        "%lld): expected 1 <= num_experts_per_tok <= n_routed_experts", an, (long long)h->n_expert_used,
                        (long long)h->n_expert, (long long)h->expert_ffn_dim);
    jint(c, "n_shared_experts", &shared);
    if (shared < 1 || shared > CKE_HP_MAX_FFN / h->expert_ffn_dim)
        return cke_fail(err, shared < 1 ? CKE_ERR_UNSUPPORTED : CKE_ERR_FORMAT,
                        "%s with n_shared_experts = %lld (the template has one shared MLP of n x moe_intermediate_size; "
                        "1 or more, within bounds)", an, (long long)shared);
    const char *sf = jstr(c, "scoring_func"), *tm = jstr(c, "topk_method");
    if ((sf && strcmp(sf, "sigmoid")) || (tm && strcmp(tm, "noaux_tc")))
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s with scoring_func '%s', topk_method '%s' (DeepSeek-V3's router: "
                        "sigmoid, noaux_tc)", an, sf ? sf : "sigmoid", tm ? tm : "noaux_tc");
    h->shexp_ffn_dim = shared * h->expert_ffn_dim;
    h->shexp_ungated = h->moe_sigmoid = true;
    h->moe_norm_topk = true, h->moe_n_group = h->moe_topk_group = 1, h->moe_routed_scale = 1, h->n_dense_lead = 1;
    jbool(c, "norm_topk_prob", &h->moe_norm_topk);
    jint(c, "n_group", &h->moe_n_group);
    jint(c, "topk_group", &h->moe_topk_group);
    jnum(c, "routed_scaling_factor", &h->moe_routed_scale);
    jint(c, "first_k_dense_replace", &h->n_dense_lead);
    jint(c, "num_nextn_predict_layers", &h->n_mtp_layers);
    if (h->n_mtp_layers < 0 || h->n_mtp_layers > 16)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: num_nextn_predict_layers = %lld", an, (long long)h->n_mtp_layers);
    if (h->n_dense_lead < 0 || h->n_dense_lead > h->n_layers)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: first_k_dense_replace = %lld with %lld layers", an, (long long)h->n_dense_lead,
                        (long long)h->n_layers);
    return CKE_OK;
}

static cke_status parse_glm4_moe(const cJSON *c, cke_hparams *h, cke_err *err) {
    jbool(c, "use_qk_norm", &h->qk_norm);
    return parse_ds_moe(c, "glm4_moe", h, err);
}

/* DeepSeek-V3 (DeepseekV3Config): GLM-4.5's experts and dense first layers with multi-head latent
 * attention; rope_interleave (default true) rotates adjacent pairs. The attention scale is
 * (qk_nope + qk_rope)^-0.5, times YaRN's mscale(factor, mscale_all_dim)^2 under YaRN (HF
 * yarn_apply_mscale). */
static cke_status parse_deepseek_v3(const cJSON *c, cke_hparams *h, cke_err *err) {
    int64_t rope = 0;
    const cJSON *ql = cJSON_GetObjectItemCaseSensitive(c, "q_lora_rank");
    if (!jint(c, "kv_lora_rank", &h->kv_lora_rank) || !jint(c, "qk_nope_head_dim", &h->qk_nope_dim) ||
        !jint(c, "qk_rope_head_dim", &rope) || !jint(c, "v_head_dim", &h->v_head_dim) ||
        (ql && !cJSON_IsNull(ql) && !jint(c, "q_lora_rank", &h->q_lora_rank)))
        return cke_fail(err, CKE_ERR_MISSING, "deepseek_v3 config.json needs kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, "
                        "v_head_dim (integers) and q_lora_rank (an integer or null)");
    if (h->kv_lora_rank < 1 || h->q_lora_rank < 0 || rope < 2 || rope > CKE_HP_MAX_HEADS || h->qk_nope_dim < 1 ||
        h->qk_nope_dim > CKE_HP_MAX_HEADS)
        return cke_fail(err, CKE_ERR_FORMAT, "deepseek_v3: kv_lora_rank %lld, q_lora_rank %lld, qk_rope_head_dim %lld, "
                        "qk_nope_head_dim %lld out of range", (long long)h->kv_lora_rank, (long long)h->q_lora_rank,
                        (long long)rope, (long long)h->qk_nope_dim);
    h->rope.dims = rope;
    h->head_dim = h->qk_nope_dim + rope;
    h->n_kv_heads = h->n_heads; /* every head has its own key and value, expanded from the latent */
    bool il = true;
    jbool(c, "rope_interleave", &il);
    h->rope.layout = il ? CKE_ROPE_INTERLEAVED : CKE_ROPE_HALVES;
    return parse_ds_moe(c, "deepseek_v3", h, err);
}

static cke_status parse_moe(const cJSON *c, cke_arch arch, cke_hparams *h, cke_err *err) {
    if (arch == CKE_ARCH_GLM4_MOE) return parse_glm4_moe(c, h, err);
    if (arch == CKE_ARCH_DEEPSEEK_V3) return parse_deepseek_v3(c, h, err);
    const char *ne = arch == CKE_ARCH_MIXTRAL ? "num_local_experts" : "num_experts";
    if (!jint(c, ne, &h->n_expert) || !jint(c, "num_experts_per_tok", &h->n_expert_used))
        return cke_fail(err, CKE_ERR_MISSING, "%s config.json needs %s and num_experts_per_tok", cke_arch_name(arch), ne);
    if (h->n_expert < 1 || h->n_expert_used < 1 || h->n_expert_used > h->n_expert)
        return cke_fail(err, CKE_ERR_FORMAT, "num_experts_per_tok = %lld with %s = %lld: expected 1 <= num_experts_per_tok <= %s",
                        (long long)h->n_expert_used, ne, (long long)h->n_expert, ne);
    h->moe_norm_topk = arch == CKE_ARCH_MIXTRAL;
    /* training: HF adds router_aux_loss_coef x the load-balancing loss when output_router_logits
     * (the configs' defaults: 0.01 for OLMoE, 0.001 for the others) */
    bool aux = false;
    double coef = arch == CKE_ARCH_OLMOE ? 0.01 : 0.001;
    jbool(c, "output_router_logits", &aux);
    jnum(c, "router_aux_loss_coef", &coef);
    if (!(coef >= 0 && coef <= 1e3))
        return cke_fail(err, CKE_ERR_FORMAT, "router_aux_loss_coef = %g: expected a number in [0, 1000]", coef);
    h->moe_aux_coef = aux ? coef : 0;
    if (arch == CKE_ARCH_OLMOE) { /* experts of intermediate_size; OlmoeConfig's norm_topk_prob defaults to false */
        jbool(c, "norm_topk_prob", &h->moe_norm_topk);
        const cJSON *clip = cJSON_GetObjectItemCaseSensitive(c, "clip_qkv");
        if (clip && !cJSON_IsNull(clip)) return cke_fail(err, CKE_ERR_UNSUPPORTED, "olmoe with clip_qkv is not supported");
    }
    if (arch == CKE_ARCH_QWEN3_MOE || arch == CKE_ARCH_QWEN2_MOE) {
        const char *an = cke_arch_name(arch);
        jbool(c, "norm_topk_prob", &h->moe_norm_topk);
        if (!jint(c, "moe_intermediate_size", &h->ffn_dim))
            return cke_fail(err, CKE_ERR_MISSING, "%s config.json needs moe_intermediate_size", an);
        if (arch == CKE_ARCH_QWEN2_MOE && (!jint(c, "shared_expert_intermediate_size", &h->shexp_ffn_dim) || h->shexp_ffn_dim < 1))
            return cke_fail(err, CKE_ERR_MISSING, "qwen2_moe config.json needs shared_expert_intermediate_size (>= 1)");
        int64_t step = 1;
        const cJSON *dense = cJSON_GetObjectItemCaseSensitive(c, "mlp_only_layers");
        if ((jint(c, "decoder_sparse_step", &step) && step != 1) || (cJSON_IsArray(dense) && cJSON_GetArraySize(dense) > 0))
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s with dense MLP layers among the experts' (decoder_sparse_step "
                            "%lld, mlp_only_layers) is not supported", an, (long long)step);
    }
    return CKE_OK;
}

static cke_status parse_cfg(const cJSON *c, cke_arch *arch, cke_hparams *h, cke_err *err) {
    const char *mt = jstr(c, "model_type");
    if (!mt) return cke_fail(err, CKE_ERR_MISSING, "config.json has no model_type");
    size_t i = 0;
    while (i < sizeof model_types / sizeof *model_types && strcmp(model_types[i].type, mt)) i++;
    if (i == sizeof model_types / sizeof *model_types)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "model_type '%s' is not supported", mt);
    *arch = model_types[i].arch;
    if (!strcmp(mt, "gemma3")) { /* the multimodal checkpoint: its text model's config */
        c = cJSON_GetObjectItemCaseSensitive(c, "text_config");
        if (!cJSON_IsObject(c)) return cke_fail(err, CKE_ERR_MISSING, "gemma3 config.json has no text_config");
    }
    memset(h, 0, sizeof *h);
    h->rope.layout = CKE_ROPE_HALVES;
    if (*arch == CKE_ARCH_GPT2) {
        if (!jint(c, "n_embd", &h->dim) || !jint(c, "n_layer", &h->n_layers) || !jint(c, "n_head", &h->n_heads) ||
            !jint(c, "vocab_size", &h->vocab))
            return cke_fail(err, CKE_ERR_MISSING, "gpt2 config.json needs n_embd, n_layer, n_head, vocab_size");
        if (!jint(c, "n_inner", &h->ffn_dim)) h->ffn_dim = 4 * h->dim;
        if (!jint(c, "n_positions", &h->ctx_len)) jint(c, "n_ctx", &h->ctx_len);
        h->norm_eps = 1e-5;
        jnum(c, "layer_norm_epsilon", &h->norm_eps);
        const char *a = jstr(c, "activation_function");
        TRY(parse_act(a ? a : "gelu_new", &h->act, err));
        h->norm = CKE_NORM_LAYER;
        h->learned_pos = h->tied_output = true;
        h->attn_qkv_bias = h->attn_o_bias = h->ffn_bias = h->norm_bias = true;
        h->n_kv_heads = h->n_heads;
        bool b;
        if (jbool(c, "scale_attn_by_inverse_layer_idx", &b) && b)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "gpt2 scale_attn_by_inverse_layer_idx");
        if (jbool(c, "scale_attn_weights", &b) && !b)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "gpt2 scale_attn_weights=false");
        return CKE_OK;
    }
    if (!jint(c, "hidden_size", &h->dim) || !jint(c, "num_hidden_layers", &h->n_layers) ||
        !jint(c, "num_attention_heads", &h->n_heads) || !jint(c, "intermediate_size", &h->ffn_dim) ||
        !jint(c, "vocab_size", &h->vocab))
        return cke_fail(err, CKE_ERR_MISSING, "config.json needs hidden_size, num_hidden_layers, "
                        "num_attention_heads, intermediate_size, vocab_size");
    if (!jint(c, "num_key_value_heads", &h->n_kv_heads)) h->n_kv_heads = h->n_heads;
    if (!jint(c, "head_dim", &h->head_dim) && h->n_heads > 0 && h->dim % h->n_heads == 0) h->head_dim = h->dim / h->n_heads;
    jint(c, "max_position_embeddings", &h->ctx_len);
    h->norm_eps = 1e-6;
    jnum(c, "rms_norm_eps", &h->norm_eps);
    h->rope.theta = 10000;
    jnum(c, "rope_theta", &h->rope.theta);
    /* transformers 5 writes rope_theta (and partial_rotary_factor) inside rope_parameters */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(c, "rope_parameters");
    if (cJSON_IsObject(rp)) jnum(rp, "rope_theta", &h->rope.theta);
    h->norm = CKE_NORM_RMS;
    h->gated_ffn = true;
    h->tied_output = *arch == CKE_ARCH_GEMMA || *arch == CKE_ARCH_GEMMA2 || *arch == CKE_ARCH_GEMMA3; /* HF defaults */
    jbool(c, "tie_word_embeddings", &h->tied_output);
    const char *a = jstr(c, "hidden_activation");
    if (!a) a = jstr(c, "hidden_act");
    const bool gemma = *arch == CKE_ARCH_GEMMA || *arch == CKE_ARCH_GEMMA2 || *arch == CKE_ARCH_GEMMA3;
    if (gemma) {
        /* HF's Gemma MLPs read hidden_activation (hidden_act where it is absent), tanh-gelu when the
         * config names neither; "gelu" is the exact (erf) form */
        TRY(parse_act(a ? a : "gelu_pytorch_tanh", &h->act, err));
        if (h->act == CKE_ACT_SILU)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "Gemma with hidden activation '%s' (a GeGLU needs a gelu)", a);
        h->norm_add_one = true;
        h->embd_scale = sqrt((double)h->dim);
    } else {
        TRY(parse_act(a, &h->act, err));
    }
    const bool qwen2 = *arch == CKE_ARCH_QWEN2 || *arch == CKE_ARCH_QWEN2_MOE;
    bool ab = qwen2, mb = false;
    jbool(c, "attention_bias", &ab);
    jbool(c, "mlp_bias", &mb);
    h->attn_qkv_bias = ab;
    h->attn_o_bias = ab && !qwen2 && *arch != CKE_ARCH_GLM4_MOE; /* Qwen2, GLM-4.5: q/k/v biases only */
    h->ffn_bias = mb;
    h->qk_norm = *arch == CKE_ARCH_QWEN3 || *arch == CKE_ARCH_GEMMA3 || *arch == CKE_ARCH_QWEN3_MOE || *arch == CKE_ARCH_OLMOE;
    h->qk_norm_full = *arch == CKE_ARCH_OLMOE;
    if (*arch == CKE_ARCH_MIXTRAL || *arch == CKE_ARCH_QWEN3_MOE || *arch == CKE_ARCH_OLMOE || *arch == CKE_ARCH_QWEN2_MOE ||
        *arch == CKE_ARCH_GLM4_MOE || *arch == CKE_ARCH_DEEPSEEK_V3)
        TRY(parse_moe(c, *arch, h, err));
    if (*arch == CKE_ARCH_GEMMA3) TRY(parse_gemma3(c, h, err));
    if (*arch == CKE_ARCH_GEMMA2 || *arch == CKE_ARCH_GEMMA3) {
        h->post_norms = true;
        jnum(c, "attn_logit_softcapping", &h->attn_softcap);
        jnum(c, "final_logit_softcapping", &h->final_softcap);
        double q;
        if (jnum(c, "query_pre_attn_scalar", &q) && q > 0) h->attn_scale = 1.0 / sqrt(q);
    }
    /* Qwen2/Qwen3 configs carry a sliding_window that is off unless use_sliding_window says so */
    bool use_sw = !qwen2 && *arch != CKE_ARCH_QWEN3 && *arch != CKE_ARCH_QWEN3_MOE;
    jbool(c, "use_sliding_window", &use_sw);
    if (use_sw) jint(c, "sliding_window", &h->sliding_window);
    if (h->sliding_window < 0) h->sliding_window = 0;

    double prf;
    if ((jnum(c, "partial_rotary_factor", &prf) || (cJSON_IsObject(rp) && jnum(rp, "partial_rotary_factor", &prf))) &&
        prf > 0 && prf < 1) /* Phi-3.5/4-mini, GLM-4.5: rotate a prefix */
        h->rope.dims = (int64_t)((double)h->head_dim * prf);

    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
    if ((!rs || cJSON_IsNull(rs)) && cJSON_IsObject(rp) && (jstr(rp, "rope_type") || jstr(rp, "type"))) rs = rp;
    if (rs && !cJSON_IsNull(rs)) {
        const char *t = jstr(rs, "rope_type");
        if (!t) t = jstr(rs, "type");
        if (!t) return cke_fail(err, CKE_ERR_FORMAT, "rope_scaling has no rope_type");
        if (!strcmp(t, "default")) {
        } else if (!strcmp(t, "linear")) {
            h->rope.scaling = CKE_ROPE_SCALING_LINEAR;
            if (!jnum(rs, "factor", &h->rope.factor)) return cke_fail(err, CKE_ERR_MISSING, "rope_scaling.factor");
        } else if (!strcmp(t, "llama3")) {
            h->rope.scaling = CKE_ROPE_SCALING_LLAMA3;
            if (!jnum(rs, "factor", &h->rope.factor) || !jnum(rs, "low_freq_factor", &h->rope.low_freq_factor) ||
                !jnum(rs, "high_freq_factor", &h->rope.high_freq_factor) ||
                !jint(rs, "original_max_position_embeddings", &h->rope.orig_ctx))
                return cke_fail(err, CKE_ERR_MISSING, "llama3 rope_scaling needs factor, low_freq_factor, "
                                "high_freq_factor, original_max_position_embeddings");
        } else if (!strcmp(t, "yarn")) {
            TRY(parse_yarn(c, rs, h, err));
        } else if (!strcmp(t, "longrope") || !strcmp(t, "su")) {
            TRY(parse_longrope(c, rs, h, err));
        } else if (!strcmp(t, "dynamic")) {
            h->rope.scaling = CKE_ROPE_SCALING_DYNAMIC;
            if (!jnum(rs, "factor", &h->rope.factor)) return cke_fail(err, CKE_ERR_MISSING, "rope_scaling.factor");
            h->rope.orig_ctx = h->ctx_len;
        } else {
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "rope_scaling type '%s' is not supported", t);
        }
        const bool need_factor = h->rope.scaling == CKE_ROPE_SCALING_YARN || h->rope.scaling == CKE_ROPE_SCALING_DYNAMIC;
        if ((h->rope.scaling >= CKE_ROPE_SCALING_YARN && (!(h->rope.factor >= 0) || h->rope.factor > 1e6)) ||
            (need_factor && !(h->rope.factor > 0)) || !(h->rope.attn_factor >= 0) || h->rope.attn_factor > 1e3 ||
            h->rope.orig_ctx < 0 || h->rope.orig_ctx > CKE_HP_MAX_CTX)
            return cke_fail(err, CKE_ERR_FORMAT, "rope_scaling: factor %g, attention factor %g or original context %lld "
                            "out of range", h->rope.factor, h->rope.attn_factor, (long long)h->rope.orig_ctx);
    }
    double msa = 0; /* MLA under YaRN: the softmax scale times mscale(factor, mscale_all_dim)^2 (HF yarn_apply_mscale) */
    if (*arch == CKE_ARCH_DEEPSEEK_V3 && rs && !cJSON_IsNull(rs) && h->rope.scaling == CKE_ROPE_SCALING_YARN &&
        jnum(rs, "mscale_all_dim", &msa) && msa != 0) {
        const double ms = cke_yarn_mscale(h->rope.factor, msa);
        h->attn_scale = 1.0 / sqrt((double)h->head_dim) * ms * ms;
    }
    return CKE_OK;
}

/* Every number config.json gave, under its own key, against the bounds of model_priv.h: the
 * model layer checks consistency later, but a refusal should name the key the user can see. */
static cke_status check_cfg(const cJSON *c, cke_err *err) {
    static const struct { const char *key; int64_t lo, hi; } ints[] = {
        {"n_embd", 1, CKE_HP_MAX_DIM}, {"n_layer", 1, CKE_HP_MAX_LAYERS}, {"n_head", 1, CKE_HP_MAX_HEADS},
        {"n_inner", 1, CKE_HP_MAX_FFN}, {"n_positions", 0, CKE_HP_MAX_CTX}, {"n_ctx", 0, CKE_HP_MAX_CTX},
        {"hidden_size", 1, CKE_HP_MAX_DIM}, {"num_hidden_layers", 1, CKE_HP_MAX_LAYERS},
        {"num_attention_heads", 1, CKE_HP_MAX_HEADS}, {"num_key_value_heads", 1, CKE_HP_MAX_HEADS},
        {"head_dim", 1, CKE_HP_MAX_HEADS}, {"intermediate_size", 1, CKE_HP_MAX_FFN},
        {"vocab_size", 1, CKE_HP_MAX_VOCAB}, {"max_position_embeddings", 0, CKE_HP_MAX_CTX},
        {"num_local_experts", 1, CKE_HP_MAX_EXPERTS}, {"num_experts_per_tok", 1, CKE_HP_MAX_EXPERTS},
        {"num_experts", 1, CKE_HP_MAX_EXPERTS}, {"moe_intermediate_size", 1, CKE_HP_MAX_FFN},
        {"shared_expert_intermediate_size", 1, CKE_HP_MAX_FFN},
    };
    static const struct { const char *key; double lo; bool lo_open; } floats[] = {
        {"layer_norm_epsilon", 0, false}, {"rms_norm_eps", 0, false}, {"rope_theta", 0, true},
        {"attn_logit_softcapping", 0, false}, {"final_logit_softcapping", 0, false},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(c, ints[i].key);
        if (!j || cJSON_IsNull(j)) continue;
        int64_t v;
        if (!jint(c, ints[i].key, &v))
            return cke_fail(err, CKE_ERR_FORMAT, "%s is not an integer", ints[i].key);
        TRY(cke_hp_int(ints[i].key, v, ints[i].lo, ints[i].hi, err));
    }
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(c, floats[i].key);
        if (!j || cJSON_IsNull(j)) continue;
        const char *what = floats[i].key;
        if (!cJSON_IsNumber(j)) return cke_fail(err, CKE_ERR_FORMAT, "%s is not a number", what);
        TRY(cke_hp_float(what, j->valuedouble, floats[i].lo, floats[i].lo_open, strstr(floats[i].key, "eps") ? 1 : DBL_MAX,
                         err));
    }
    return CKE_OK;
}

cke_status cke_model_parse_hf_config(const char *json, size_t len, cke_arch *arch, cke_hparams *hp, cke_err *err) {
    cJSON *c = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return cke_fail(err, CKE_ERR_FORMAT, "config.json is not a JSON object");
    }
    cke_status s = parse_cfg(c, arch, hp, err);
    if (!s) s = check_cfg(c, err);
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(c, "text_config");
    if (!s && cJSON_IsObject(tc)) s = check_cfg(tc, err);
    cJSON_Delete(c);
    return s;
}

/* HF tensor name -> canonical; *conv: stored [in, out] (GPT-2 Conv1D); *fused: FUSED_QKV (GPT-2
 * c_attn, Phi-3 qkv_proj: Q|K|V rows) or FUSED_GATE_UP (Phi-3 gate_up_proj: gate|up rows).
 * Returns false for names to skip (non-weight buffers), sets *known = false for unknown names. */
enum { FUSED_NONE = 0, FUSED_QKV = 1, FUSED_GATE_UP = 2 };
static bool map_name(cke_arch arch, const char *name, char *cn, size_t cap, bool *conv, int *fused, bool *known) {
    *conv = false;
    *fused = FUSED_NONE;
    *known = true;
    long long l;
    int pos = 0;
    if (arch == CKE_ARCH_GPT2) {
        if (!strncmp(name, "transformer.", 12)) name += 12;
        static const struct { const char *hf, *c; bool conv; int fused; } g[] = {
            {"ln_1.weight", "attn_norm", 0, 0}, {"ln_1.bias", "attn_norm_b", 0, 0},
            {"attn.c_attn.weight", "attn_qkv", 1, 1}, {"attn.c_attn.bias", "attn_qkv_b", 0, 1},
            {"attn.c_proj.weight", "attn_o", 1, 0}, {"attn.c_proj.bias", "attn_o_b", 0, 0},
            {"ln_2.weight", "ffn_norm", 0, 0}, {"ln_2.bias", "ffn_norm_b", 0, 0},
            {"mlp.c_fc.weight", "ffn_up", 1, 0}, {"mlp.c_fc.bias", "ffn_up_b", 0, 0},
            {"mlp.c_proj.weight", "ffn_down", 1, 0}, {"mlp.c_proj.bias", "ffn_down_b", 0, 0},
        };
        static const struct { const char *hf, *c; } top[] = {
            {"wte.weight", "tok_embd"}, {"wpe.weight", "pos_embd"}, {"ln_f.weight", "output_norm"},
            {"ln_f.bias", "output_norm_b"}, {"lm_head.weight", "output"},
        };
        if (sscanf(name, "h.%lld.%n", &l, &pos) == 1 && pos > 0) {
            const char *suf = name + pos;
            if (!strcmp(suf, "attn.bias") || !strcmp(suf, "attn.masked_bias")) return false; /* mask buffers */
            for (size_t k = 0; k < sizeof g / sizeof *g; k++)
                if (!strcmp(suf, g[k].hf)) {
                    snprintf(cn, cap, "l%lld.%s", l, g[k].c);
                    *conv = g[k].conv;
                    *fused = g[k].fused;
                    return true;
                }
        } else {
            for (size_t k = 0; k < sizeof top / sizeof *top; k++)
                if (!strcmp(name, top[k].hf)) { snprintf(cn, cap, "%s", top[k].c); return true; }
        }
        *known = false;
        return true;
    }
    if (arch == CKE_ARCH_GEMMA3) { /* the multimodal checkpoint's text model; its vision tower is not ours */
        if (strstr(name, "vision_tower.") || strstr(name, "multi_modal_projector.")) return false;
        if (!strncmp(name, "language_model.", 15)) name += 15;                 /* language_model.model.layers... */
        else if (!strncmp(name, "model.language_model.", 21)) name += 15;      /* model.language_model.layers... */
    }
    bool g2 = arch == CKE_ARCH_GEMMA2 || arch == CKE_ARCH_GEMMA3;
    const struct { const char *hf, *c; } lay[] = {
        {"input_layernorm.weight", "attn_norm"},
        {"self_attn.q_proj.weight", "attn_q"}, {"self_attn.q_proj.bias", "attn_q_b"},
        {"self_attn.k_proj.weight", "attn_k"}, {"self_attn.k_proj.bias", "attn_k_b"},
        {"self_attn.v_proj.weight", "attn_v"}, {"self_attn.v_proj.bias", "attn_v_b"},
        {"self_attn.o_proj.weight", "attn_o"}, {"self_attn.o_proj.bias", "attn_o_b"},
        {"self_attn.q_norm.weight", "attn_q_norm"}, {"self_attn.k_norm.weight", "attn_k_norm"},
        /* Gemma2 renames: post_attention_layernorm is the post-attention norm there */
        {"post_attention_layernorm.weight", g2 ? "post_attn_norm" : "ffn_norm"},
        {"pre_feedforward_layernorm.weight", "ffn_norm"},
        {"post_feedforward_layernorm.weight", "post_ffn_norm"},
        {"mlp.gate_proj.weight", "ffn_gate"}, {"mlp.gate_proj.bias", "ffn_gate_b"},
        {"mlp.up_proj.weight", "ffn_up"}, {"mlp.up_proj.bias", "ffn_up_b"},
        {"mlp.down_proj.weight", "ffn_down"}, {"mlp.down_proj.bias", "ffn_down_b"},
        {"block_sparse_moe.gate.weight", "ffn_gate_inp"}, /* Mixtral's router */
        {"mlp.gate.weight", "ffn_gate_inp"},              /* Qwen2/3-MoE's, OLMoE's */
        {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp"}, {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp"},
        {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp"}, {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp"},
        /* DeepSeek-V3 / GLM-4.5: the router's choice bias and the shared experts (plural) */
        {"mlp.gate.e_score_correction_bias", "exp_probs_b"},
        {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp"}, {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp"},
        {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp"},
        /* multi-head latent attention (DeepSeek-V2/V3): the low-rank q and kv projections */
        {"self_attn.q_a_proj.weight", "attn_q_down"}, {"self_attn.q_a_proj.bias", "attn_q_down_b"},
        {"self_attn.q_a_layernorm.weight", "attn_q_down_norm"}, {"self_attn.q_b_proj.weight", "attn_q_up"},
        {"self_attn.kv_a_proj_with_mqa.weight", "attn_kv_down"}, {"self_attn.kv_a_proj_with_mqa.bias", "attn_kv_down_b"},
        {"self_attn.kv_a_layernorm.weight", "attn_kv_down_norm"}, {"self_attn.kv_b_proj.weight", "attn_kv_up"},
    };
    if (sscanf(name, "model.layers.%lld.%n", &l, &pos) == 1 && pos > 0) {
        const char *suf = name + pos;
        if (!strcmp(suf, "self_attn.rotary_emb.inv_freq")) return false;
        if (arch == CKE_ARCH_PHI3 && !strcmp(suf, "self_attn.qkv_proj.weight")) {
            snprintf(cn, cap, "l%lld.attn_qkv", l);
            *fused = FUSED_QKV;
            return true;
        }
        if (arch == CKE_ARCH_PHI3 && !strcmp(suf, "mlp.gate_up_proj.weight")) {
            snprintf(cn, cap, "l%lld.ffn_gate_up", l);
            *fused = FUSED_GATE_UP;
            return true;
        }
        for (size_t k = 0; k < sizeof lay / sizeof *lay; k++)
            if (!strcmp(suf, lay[k].hf)) { snprintf(cn, cap, "l%lld.%s", l, lay[k].c); return true; }
    } else if (!strcmp(name, "model.embed_tokens.weight")) { snprintf(cn, cap, "tok_embd"); return true; }
    else if (!strcmp(name, "model.norm.weight")) { snprintf(cn, cap, "output_norm"); return true; }
    else if (!strcmp(name, "lm_head.weight")) { snprintf(cn, cap, "output"); return true; }
    *known = false;
    return true;
}

/* [rows, cols] -> owned [cols, rows] copy. */
static cke_status transpose(cke_model *m, const cke_safetensors_tensor *t, const char *cn, cke_err *err) {
    const cke_dtype_traits *tr = cke_dtype_traits_of(t->dtype);
    if (t->ndim != 2 || tr->blck != 1)
        return cke_fail(err, CKE_ERR_SHAPE, "Conv1D tensor '%s' must be a 2-D plain-typed matrix", t->name);
    int64_t r = t->shape[0], c = t->shape[1], es = tr->type_size;
    uint8_t *dst = cke_arena_alloc(&m->priv->arena, (size_t)t->nbytes);
    if (!dst && t->nbytes) return cke_fail(err, CKE_ERR_NOMEM, "out of memory transposing '%s'", t->name);
    const uint8_t *src = t->data;
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) memcpy(dst + (j * r + i) * es, src + (i * c + j) * es, (size_t)es);
    int64_t shape[2] = {c, r};
    TRY(cke_model_add(m, cn, t->name, t->dtype, 2, shape, dst, t->nbytes, t->shard, t->file_offset, true, err));
    m->tensors[m->n_tensors - 1].transposed = true;
    return CKE_OK;
}

/* An expert's matrix: model.layers.<l>.block_sparse_moe.experts.<e>.w<1|3|2>.weight (Mixtral: gate,
 * up, down) or model.layers.<l>.mlp.experts.<e>.<gate|up|down>_proj.weight (Qwen3-MoE). Returns 1
 * with the slot of the table [n_layers][3][n_expert] it fills, 0 for another name, -1 for an
 * expert or layer out of range. */
static int expert_slot(const cke_model *m, const char *name, int64_t *slot) {
    long long l, e;
    int which = -1, pos = 0;
    char proj[8];
    if (m->arch == CKE_ARCH_MIXTRAL) {
        int w = 0;
        if (sscanf(name, "model.layers.%lld.block_sparse_moe.experts.%lld.w%d.weight%n", &l, &e, &w, &pos) != 3 || name[pos])
            return 0;
        which = w == 1 ? 0 : w == 3 ? 1 : w == 2 ? 2 : -1;
    } else if (m->arch == CKE_ARCH_QWEN3_MOE || m->arch == CKE_ARCH_OLMOE || m->arch == CKE_ARCH_QWEN2_MOE ||
               m->arch == CKE_ARCH_GLM4_MOE || m->arch == CKE_ARCH_DEEPSEEK_V3) {
        if (sscanf(name, "model.layers.%lld.mlp.experts.%lld.%7[a-z]_proj.weight%n", &l, &e, proj, &pos) != 3 || name[pos])
            return 0;
        which = !strcmp(proj, "gate") ? 0 : !strcmp(proj, "up") ? 1 : !strcmp(proj, "down") ? 2 : -1;
    } else {
        return 0;
    }
    if (which < 0) return 0; /* not an expert matrix: reported as an unknown tensor */
    if (l < m->hp.n_dense_lead || l >= m->hp.n_layers || e < 0 || e >= m->hp.n_expert) return -1;
    *slot = ((int64_t)l * 3 + which) * m->hp.n_expert + e;
    return 1;
}

/* The per-expert matrices of each layer stacked into one [n_expert, rows, cols] tensor the model
 * owns (ffn_gate_exps, ffn_up_exps, ffn_down_exps: the layout GGUF stores and the moe kernel reads). */
static cke_status stack_experts(cke_model *m, const char *dir, const cke_safetensors_tensor **ex, cke_err *err) {
    static const char *const canon[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    const bool mx = m->arch == CKE_ARCH_MIXTRAL;
    static const char *const mxw[3] = {"w1", "w3", "w2"}, *const qw[3] = {"gate_proj", "up_proj", "down_proj"};
    const char *const *hfw = mx ? mxw : qw, *block = mx ? "block_sparse_moe" : "mlp";
    const int64_t E = m->hp.n_expert;
    for (int64_t l = m->hp.n_dense_lead; l < m->hp.n_layers; l++) /* the leading dense layers have none */
        for (int k = 0; k < 3; k++) {
            const cke_safetensors_tensor **row = ex + (l * 3 + k) * E;
            for (int64_t e = 0; e < E; e++) {
                if (!row[e])
                    return cke_fail(err, CKE_ERR_MISSING, "%s: tensor 'model.layers.%lld.%s.experts.%lld.%s.weight' is missing",
                                    dir, (long long)l, block, (long long)e, hfw[k]);
                if (row[e]->ndim != 2 || row[e]->dtype != row[0]->dtype || row[e]->nbytes != row[0]->nbytes ||
                    row[e]->shape[0] != row[0]->shape[0] || row[e]->shape[1] != row[0]->shape[1])
                    return cke_fail(err, CKE_ERR_SHAPE, "%s: expert tensor '%s' is not a matrix of the shape and type of "
                                    "expert 0's", dir, row[e]->name);
            }
            const size_t nb = (size_t)row[0]->nbytes;
            if (nb && (size_t)E > SIZE_MAX / nb) return cke_fail(err, CKE_ERR_FORMAT, "%s: experts too large", dir);
            uint8_t *dst = cke_arena_alloc(&m->priv->arena, nb * (size_t)E);
            if (!dst && nb) return cke_fail(err, CKE_ERR_NOMEM, "out of memory stacking the experts of layer %lld", (long long)l);
            for (int64_t e = 0; e < E; e++) memcpy(dst + (size_t)e * nb, row[e]->data, nb);
            char cn[96], src[128];
            snprintf(cn, sizeof cn, "l%lld.%s", (long long)l, canon[k]);
            snprintf(src, sizeof src, "model.layers.%lld.%s.experts.*.%s.weight", (long long)l, block, hfw[k]);
            const int64_t shape[3] = {E, row[0]->shape[0], row[0]->shape[1]};
            TRY(cke_model_add(m, cn, src, row[0]->dtype, 3, shape, dst, (int64_t)(nb * (size_t)E), row[0]->shard,
                              row[0]->file_offset, true, err));
        }
    return CKE_OK;
}

cke_status cke_model_load_hf(cke_model *m, const char *dir, cke_err *err) {
    cke_model_priv *p = m->priv;
    char *cfg = cke_arena_alloc(&p->arena, strlen(dir) + 32);
    if (!cfg) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    sprintf(cfg, "%s/config.json", dir);
    cke_map cm;
    TRY(cke_map_open(cfg, &cm, err));
    cke_status s = cke_model_parse_hf_config((const char *)cm.data, cm.size, &m->arch, &m->hp, err);
    cke_map_close(&cm);
    if (s) {
        char tmp[sizeof err->msg];
        if (err) { snprintf(tmp, sizeof tmp, "%s", err->msg); cke_fail(err, s, "%s: %s", cfg, tmp); }
        return s;
    }
    /* defaults and consistency before the fused splits multiply the head counts */
    TRY(cke_model_check_hparams(m, true, err));
    TRY(cke_safetensors_open(dir, &p->st, err));
    m->n_files = cke_safetensors_n_shards(p->st);
    const char **files = cke_arena_calloc(&p->arena, (size_t)m->n_files, sizeof *files);
    if (!files) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_files; i++) files[i] = cke_safetensors_shard_path(p->st, i);
    m->files = files;

    int64_t n = cke_safetensors_n_tensors(p->st);
    const cke_safetensors_tensor **ex = NULL; /* [n_layers][3][n_expert], stacked after the loop */
    const int64_t n_ex = m->hp.n_layers * 3 * m->hp.n_expert; /* bounded: < 2^30 */
    const int64_t n_ex_need = (m->hp.n_layers - m->hp.n_dense_lead) * 3 * m->hp.n_expert;
    if (n_ex_need > n) /* before a table sized by the config: a config cannot make cke allocate what the files lack */
        return cke_fail(err, CKE_ERR_MISSING, "%s: %lld layers x %lld experts need %lld expert matrices; the checkpoint has %lld "
                        "tensors", dir, (long long)m->hp.n_layers, (long long)m->hp.n_expert, (long long)n_ex_need, (long long)n);
    if (n_ex > 0 && !(ex = cke_arena_calloc(&p->arena, (size_t)n_ex, sizeof *ex)))
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        const cke_safetensors_tensor *t = cke_safetensors_tensor_at(p->st, i);
        char cn[128];
        bool conv, known;
        int fused;
        int64_t slot;
        long long tl;
        if (m->hp.n_mtp_layers > 0 && sscanf(t->name, "model.layers.%lld.", &tl) == 1 && tl >= m->hp.n_layers &&
            tl < m->hp.n_layers + m->hp.n_mtp_layers)
            continue; /* a multi-token-prediction layer (GLM-4.5): not part of the model's forward, as in HF */
        int xs = expert_slot(m, t->name, &slot);
        if (xs < 0)
            return cke_fail(err, CKE_ERR_SHAPE, "%s: expert tensor '%s' is in a leading dense layer (first %lld), beyond "
                            "num_hidden_layers %lld or beyond the %lld experts", dir, t->name, (long long)m->hp.n_dense_lead,
                            (long long)m->hp.n_layers, (long long)m->hp.n_expert);
        if (xs > 0) {
            if (ex[slot]) return cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s' appears twice", dir, t->name);
            ex[slot] = t;
            continue;
        }
        if (!map_name(m->arch, t->name, cn, sizeof cn, &conv, &fused, &known)) continue;
        if (!known) return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: tensor '%s' is not supported", dir, t->name);
        if (t->ndim > 4) return cke_fail(err, CKE_ERR_SHAPE, "%s: tensor '%s' has %d dims", dir, t->name, t->ndim);
        if (!strcmp(cn, "output")) m->hp.tied_output = false;
        if (conv) {
            TRY(transpose(m, t, cn, err));
        } else {
            TRY(cke_model_add(m, cn, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes, t->shard,
                              t->file_offset, false, err));
        }
        if (fused) {
            /* split the (now [out, in]) fused rows into row slices: Q|K|V (sizes from the heads,
             * so grouped-query Phi-3 works too) or gate|up (halves) */
            cke_model_tensor src = m->tensors[--m->n_tensors];
            const cke_hparams *h = &m->hp;
            int64_t q = h->n_heads * h->head_dim, kv = h->n_kv_heads * h->head_dim; /* checked: in bounds */
            int64_t r0[3] = {0, q, q + kv}, nr[3] = {q, kv, kv}, nparts = 3;
            const char *qkv[3] = {"attn_q", "attn_k", "attn_v"}, *gu[2] = {"ffn_gate", "ffn_up"};
            const char *const *nm = qkv;
            if (fused == FUSED_GATE_UP) {
                nm = gu, nparts = 2;
                r0[0] = 0, r0[1] = nr[0] = nr[1] = h->ffn_dim;
            }
            int64_t want = r0[nparts - 1] + nr[nparts - 1];
            if (src.shape[0] != want)
                return cke_fail(err, CKE_ERR_SHAPE, "%s: '%s' has %lld fused rows, expected %lld", dir, t->name,
                                (long long)src.shape[0], (long long)want);
            bool bias = strstr(cn, "_b") != NULL;
            long long l;
            sscanf(cn, "l%lld.", &l);
            for (int k = 0; k < nparts; k++) {
                char nn[96];
                snprintf(nn, sizeof nn, "l%lld.%s%s", l, nm[k], bias ? "_b" : "");
                TRY(cke_model_add_rows(m, nn, &src, r0[k], nr[k], err));
            }
        }
    }
    if (ex) TRY(stack_experts(m, dir, ex, err));
    /* tokenizer.json next to the weights; else a GGUF vocabulary (checkpoints of `cke train
     * --tokenizer V.gguf`) or a llama2.c tokenizer.bin (models cke trained with a vocabulary from
     * `cke vocab` carry one) */
    static const struct { const char *name; cke_tok_source source; } toks[] = {
        {"tokenizer.json", CKE_TOK_HF_JSON}, {"tokenizer.gguf", CKE_TOK_GGUF}, {"tokenizer.bin", CKE_TOK_LLAMA2C_BIN}};
    char *tj = cke_arena_alloc(&p->arena, strlen(dir) + 32);
    if (!tj) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
        struct stat sb;
        sprintf(tj, "%s/%s", dir, toks[k].name);
        if (stat(tj, &sb) != 0) continue;
        if (!S_ISREG(sb.st_mode)) return cke_fail(err, CKE_ERR_IO, "%s: not a regular file", tj);
        m->tok.source = toks[k].source;
        m->tok.path = tj;
        m->tok.file_bytes = sb.st_size;
        return CKE_OK;
    }
    return CKE_OK;
}
