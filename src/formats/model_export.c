/* Normalized model -> GGUF (llama.cpp's conventions); see model_export.h. */
#include "formats/model_export.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cke_xtensors_free(cke_xtensor *x, int64_t n) {
    for (int64_t i = 0; x && i < n; i++) free(x[i].data);
    free(x);
}

/* rows of q or k, head by head, from one rope layout to the other (the first rot of each head's
 * hd rows rotate; llama.cpp's permute for HF llama is HALVES -> INTERLEAVED) */
static void permute_rope_rows(float *dst, const float *src, int64_t heads, int64_t hd, int64_t r0, int64_t rot, int64_t cols,
                              cke_rope_layout to) {
    for (int64_t h = 0; h < heads; h++)
        for (int64_t r = 0; r < hd; r++) {
            int64_t from = r;
            if (r >= r0 && r < r0 + rot) { /* each head's rotated rows: r0 .. r0 + rot (MLA: after the unrotated ones) */
                const int64_t q = r - r0;
                /* interleaved row 2i + j <-> halves row j * rot/2 + i */
                if (to == CKE_ROPE_INTERLEAVED) from = r0 + (q % 2) * (rot / 2) + q / 2;
                else from = r0 + 2 * (q % (rot / 2)) + q / (rot / 2);
            }
            memcpy(dst + (h * hd + r) * cols, src + (h * hd + from) * cols, (size_t)cols * sizeof(float));
        }
}



typedef struct {
    cke_xtensor *v;
    int64_t n, cap;
} xlist;

static cke_status xl_push(xlist *l, const char *name, int ndim, const int64_t *shape /* outermost first */, float *data,
                          cke_err *err) {
    if (l->n == l->cap) {
        int64_t nc = l->cap ? 2 * l->cap : 64;
        cke_xtensor *v = realloc(l->v, (size_t)nc * sizeof *v);
        if (!v) { free(data); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
        l->v = v;
        l->cap = nc;
    }
    cke_xtensor *x = &l->v[l->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->ndim = ndim;
    for (int d = 0; d < 4; d++) x->ne[d] = d < ndim ? shape[ndim - 1 - d] : 1;
    x->data = data;
    return CKE_OK;
}

static cke_status to_f32(const cke_model_tensor *t, float **out, cke_err *err) {
    int64_t n = cke_model_tensor_numel(t);
    *out = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!*out) return cke_fail(err, CKE_ERR_NOMEM, "out of memory for %s", t->name);
    cke_status st = cke_model_tensor_to_f32(t, *out, err);
    if (st) { free(*out); *out = NULL; }
    return st;
}

static cke_status set_u32(cke_gguf_writer *w, const char *arch, const char *key, int64_t v, cke_err *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (v < 0 || v > 0xFFFFFFFFll) return cke_fail(err, CKE_ERR_RANGE, "%s = %lld does not fit a GGUF u32", k, (long long)v);
    return cke_gguf_writer_set_u32(w, k, (uint32_t)v, err);
}
static cke_status set_f32(cke_gguf_writer *w, const char *arch, const char *key, double v, cke_err *err) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return cke_gguf_writer_set_f32(w, k, (float)v, err);
}

/* deepseek2's multi-head latent attention keys as llama.cpp's converter writes DeepSeek-V2/V3 (the
 * experts' keys are GLM-4.5's, glm4_moe_keys). The YaRN softmax factor goes back to HF's mscale_all_dim
 * (yarn_log_multiplier = 0.1 x it); cos/sin must be unscaled (HF's mscale = mscale_all_dim). */
static cke_status mla_keys(cke_gguf_writer *w, const char *arch, const cke_hparams *h, cke_err *err) {
    cke_status st;
    if (h->attn_qkv_bias || h->attn_o_bias)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "deepseek2 GGUF: attention biases (attention_bias): llama.cpp's deepseek2 has "
                        "no tensors for them");
    /* q_lora_rank 0 (q projected directly) written too: llama.cpp requires the key unless it takes the layer count for a Lite model */
    if ((st = set_u32(w, arch, "attention.q_lora_rank", h->q_lora_rank, err)) ||
        (st = set_u32(w, arch, "attention.kv_lora_rank", h->kv_lora_rank, err)) ||
        (st = set_u32(w, arch, "attention.key_length", h->kv_lora_rank + h->rope.dims, err)) || /* llama.cpp's latent view */
        (st = set_u32(w, arch, "attention.value_length", h->kv_lora_rank, err)) ||
        (st = set_u32(w, arch, "attention.key_length_mla", h->head_dim, err)) ||
        (st = set_u32(w, arch, "attention.value_length_mla", h->v_head_dim, err)))
        return st;
    if (h->rope.scaling == CKE_ROPE_SCALING_YARN) {
        if (h->rope.attn_factor > 0 && fabs(h->rope.attn_factor - 1.0) > 1e-6)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "deepseek2 GGUF: YaRN with cos/sin scaled by %g (HF mscale != mscale_all_dim) "
                            "has no key", h->rope.attn_factor);
        const double m = sqrt(h->attn_scale * sqrt((double)h->head_dim)); /* mscale(factor, mscale_all_dim) */
        const double msa = h->rope.factor > 1 ? (m - 1.0) / (0.1 * log(h->rope.factor)) : 0;
        if ((st = set_f32(w, arch, "rope.scaling.yarn_log_multiplier", 0.1 * msa, err))) return st;
    }
    return CKE_OK;
}

#define XTRY(x) do { st = (x); if (st) goto fail; } while (0)

/* One tensor of the row blocks p[0..n) stacked (fused attn_qkv, Phi-3's gate | up ffn_up), as f32. */
static cke_status push_fused(xlist *xl, const char *gname, const cke_model_tensor *const *p, int n, int64_t cols, int ndim,
                             cke_err *err) {
    int64_t rows = 0;
    for (int k = 0; k < n; k++) {
        if ((p[k]->ndim == 2 ? p[k]->shape[1] : 1) != cols)
            return cke_fail(err, CKE_ERR_SHAPE, "%s: the fused parts differ in width", gname);
        rows += p[k]->shape[0];
    }
    float *f = malloc((size_t)(rows * cols) * sizeof(float));
    if (!f) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_status st = CKE_OK;
    int64_t at = 0;
    for (int k = 0; k < n && !st; k++) {
        st = cke_model_tensor_to_f32(p[k], f + at * cols, err);
        at += p[k]->shape[0];
    }
    if (st) { free(f); return st; }
    int64_t shape[2] = {rows, cols};
    return xl_push(xl, gname, ndim, shape, f, err);
}

/* glm4moe's keys as llama.cpp's converter writes GLM-4.5 (the expert counts follow in the common part).
 * The group keys (expert_group_count / expert_group_used_count, which llama.cpp reads for every
 * architecture) are written only for more than one group: GLM-4.5 itself has one. */
static cke_status glm4_moe_keys(cke_gguf_writer *w, const char *arch, const cke_hparams *h, cke_err *err) {
    char k[128];
    cke_status st;
    snprintf(k, sizeof k, "%s.expert_weights_norm", arch);
    if ((st = set_u32(w, arch, "leading_dense_block_count", h->n_dense_lead, err)) ||
        (st = set_u32(w, arch, "expert_feed_forward_length", h->expert_ffn_dim, err)) ||
        (st = set_u32(w, arch, "expert_shared_count", h->shexp_ffn_dim / h->expert_ffn_dim, err)) ||
        (st = set_u32(w, arch, "expert_gating_func", 2, err)) || /* llama.cpp's sigmoid */
        (st = set_f32(w, arch, "expert_weights_scale", h->moe_routed_scale > 0 ? h->moe_routed_scale : 1, err)) ||
        (st = cke_gguf_writer_set_bool(w, k, h->moe_norm_topk, err)) ||
        (h->moe_n_group > 1 && ((st = set_u32(w, arch, "expert_group_count", h->moe_n_group, err)) ||
                                (st = set_u32(w, arch, "expert_group_used_count", h->moe_topk_group, err)))))
        return st;
    return CKE_OK;
}

/* attn_kv_up [H * (nope + v), kv_lora] as llama.cpp's deepseek2 wants it: attn_k_b [H, kv_lora, nope] (each
 * head's key rows transposed) and attn_v_b [H, v, kv_lora]. */
static cke_status push_kv_b(xlist *l, int64_t layer, const float *kv, const cke_hparams *h, cke_err *err) {
    const int64_t H = h->n_heads, nope = h->qk_nope_dim, vd = h->v_head_dim, kl = h->kv_lora_rank;
    float *kb = malloc((size_t)(H * kl * nope) * sizeof(float)), *vb = malloc((size_t)(H * vd * kl) * sizeof(float));
    if (!kb || !vb) { free(kb); free(vb); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    for (int64_t hh = 0; hh < H; hh++) {
        for (int64_t j = 0; j < nope; j++)
            for (int64_t c = 0; c < kl; c++) kb[(hh * kl + c) * nope + j] = kv[(hh * (nope + vd) + j) * kl + c];
        memcpy(vb + hh * vd * kl, kv + (hh * (nope + vd) + nope) * kl, (size_t)(vd * kl) * sizeof(float));
    }
    char kn[64], vn[64];
    snprintf(kn, sizeof kn, "blk.%lld.attn_k_b.weight", (long long)layer);
    snprintf(vn, sizeof vn, "blk.%lld.attn_v_b.weight", (long long)layer);
    const int64_t ks[3] = {H, kl, nope}, vs[3] = {H, vd, kl};
    cke_status st = xl_push(l, kn, 3, ks, kb, err);
    if (st) { free(vb); return st; }
    return xl_push(l, vn, 3, vs, vb, err);
}

cke_status cke_model_export_gguf(const cke_model *m, cke_gguf_writer *w, cke_xtensor **out, int64_t *n_out, cke_err *err) {
    *out = NULL;
    *n_out = 0;
    const cke_hparams *h = &m->hp;
    cke_rope_layout want = CKE_ROPE_INTERLEAVED;
    const char *arch = cke_gguf_arch_name(m->arch, &want);
    if (!arch)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: architecture %s has no GGUF layout in cke (GGUF export supports "
                        "llama, mistral, mixtral, qwen2, qwen2_moe, qwen3, qwen3_moe, olmoe, glm4_moe, deepseek_v3, gemma, gemma2, gemma3, gpt2, phi3)", m->path, cke_arch_name(m->arch));
    if (m->arch == CKE_ARCH_GEMMA3 && (h->swa_pattern != 6 || h->rope_local_theta != 10000))
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: Gemma 3 with a global layer every %lld and local rope base %g: "
                        "llama.cpp's gemma3 fixes 6 and 10000 (no GGUF keys)", m->path, (long long)h->swa_pattern,
                        h->rope_local_theta);
    if ((m->arch == CKE_ARCH_GEMMA || m->arch == CKE_ARCH_GEMMA2 || m->arch == CKE_ARCH_GEMMA3) && h->act != CKE_ACT_GELU_TANH)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: Gemma with exact (erf) GELU: GGUF's gemma runs tanh-gelu and has no "
                        "key for it", m->path);
    const int64_t hd = h->head_dim ? h->head_dim : h->dim / h->n_heads;
    if (h->attn_scale > 0 && fabs(h->attn_scale * sqrt((double)hd) - 1.0) > 1e-6 &&
        !(h->kv_lora_rank > 0 && h->rope.scaling == CKE_ROPE_SCALING_YARN)) /* MLA under YaRN: yarn_log_multiplier */
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: attention scale %g is not 1/sqrt(head_dim); GGUF has no key for it",
                        m->path, h->attn_scale);

    cke_status st = cke_gguf_writer_set_str(w, "general.architecture", arch, strlen(arch), err);
    if (st) return st;
    const char *base = strrchr(m->path, '/');
    base = base && base[1] ? base + 1 : m->path;
    if ((st = cke_gguf_writer_set_str(w, "general.name", base, strlen(base), err))) return st;
    if ((st = set_u32(w, arch, "embedding_length", h->dim, err)) || (st = set_u32(w, arch, "block_count", h->n_layers, err)) ||
        (st = set_u32(w, arch, "feed_forward_length", h->ffn_dim, err)) ||
        (st = set_u32(w, arch, "attention.head_count", h->n_heads, err)) ||
        /* deepseek2: llama.cpp computes MLA as multi-query attention over the latent (one kv head) */
        (st = set_u32(w, arch, "attention.head_count_kv", h->kv_lora_rank > 0 ? 1 : h->n_kv_heads ? h->n_kv_heads : h->n_heads,
                      err)) ||
        (st = set_u32(w, arch, "vocab_size", h->vocab, err)))
        return st;
    if (h->ctx_len > 0 && (st = set_u32(w, arch, "context_length", h->ctx_len, err))) return st;
    const bool mla = h->kv_lora_rank > 0, ds = m->arch == CKE_ARCH_GLM4_MOE || m->arch == CKE_ARCH_DEEPSEEK_V3;
    if (ds && (st = glm4_moe_keys(w, arch, h, err))) return st;
    if (h->n_expert > 0 && !ds &&
        h->moe_norm_topk != (m->arch != CKE_ARCH_OLMOE && m->arch != CKE_ARCH_QWEN2_MOE)) /* llama.cpp's graph */
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: experts whose routing weights are %srenormalized (norm_topk_prob %s): "
                        "llama.cpp's %s %s them", m->path, h->moe_norm_topk ? "" : "not ", h->moe_norm_topk ? "true" : "false",
                        arch, h->moe_norm_topk ? "does not renormalize" : "renormalizes");
    if (h->n_expert > 0 && ((st = set_u32(w, arch, "expert_count", h->n_expert, err)) ||
                            (st = set_u32(w, arch, "expert_used_count", h->n_expert_used, err)) ||
                            ((m->arch == CKE_ARCH_QWEN3_MOE || m->arch == CKE_ARCH_QWEN2_MOE) &&
                             (st = set_u32(w, arch, "expert_feed_forward_length", h->ffn_dim, err))) ||
                            (h->shexp_ffn_dim > 0 && !ds &&
                             (st = set_u32(w, arch, "expert_shared_feed_forward_length", h->shexp_ffn_dim, err)))))
        return st; /* the experts themselves: 3-D blk.N.ffn_*_exps tensors, as llama.cpp writes Mixtral and Qwen3-MoE */
    if (!mla && hd != h->dim / h->n_heads &&
        ((st = set_u32(w, arch, "attention.key_length", hd, err)) || (st = set_u32(w, arch, "attention.value_length", hd, err))))
        return st;
    if (!h->learned_pos && ((st = set_u32(w, arch, "rope.dimension_count", h->rope.dims ? h->rope.dims : hd, err)) ||
                            (st = set_f32(w, arch, "rope.freq_base", h->rope.theta, err))))
        return st;
    if ((st = set_f32(w, arch, h->norm == CKE_NORM_LAYER ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon",
                      h->norm_eps, err)))
        return st;
    if (h->sliding_window > 0 && (st = set_u32(w, arch, "attention.sliding_window", h->sliding_window, err))) return st;
    if (h->attn_softcap > 0 && (st = set_f32(w, arch, "attn_logit_softcapping", h->attn_softcap, err))) return st;
    if (h->final_softcap > 0 && (st = set_f32(w, arch, "final_logit_softcapping", h->final_softcap, err))) return st;
    if (h->rope.scaling == CKE_ROPE_SCALING_LINEAR) {
        char k[128];
        snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
        if ((st = cke_gguf_writer_set_str(w, k, "linear", 6, err)) || (st = set_f32(w, arch, "rope.scaling.factor", h->rope.factor, err)))
            return st;
    }
    if (h->rope.scaling == CKE_ROPE_SCALING_YARN) { /* llama.cpp's keys (attn_factor: relative to YaRN's default) */
        char k[128];
        snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
        const double def = cke_yarn_mscale(h->rope.factor, 1);
        if ((st = cke_gguf_writer_set_str(w, k, "yarn", 4, err)) || (st = set_f32(w, arch, "rope.scaling.factor", h->rope.factor, err)) ||
            (st = set_u32(w, arch, "rope.scaling.original_context_length", h->rope.orig_ctx, err)) ||
            (h->rope.beta_fast > 0 && (st = set_f32(w, arch, "rope.scaling.yarn_beta_fast", h->rope.beta_fast, err))) ||
            (h->rope.beta_slow > 0 && (st = set_f32(w, arch, "rope.scaling.yarn_beta_slow", h->rope.beta_slow, err))) ||
            (!mla && h->rope.attn_factor > 0 && (st = set_f32(w, arch, "rope.scaling.attn_factor", h->rope.attn_factor / def, err))))
            return st;
        if (h->rope.no_truncate)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: YaRN with truncate=false: GGUF has no key for it", m->path);
    }
    if (mla && (st = mla_keys(w, arch, h, err))) return st;
    if (h->rope.scaling == CKE_ROPE_SCALING_DYNAMIC)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: dynamic NTK rope scaling: GGUF has no form for it (llama.cpp's rope "
                        "tables are static)", m->path);
    double longrope_af = 0;
    if (h->rope.scaling == CKE_ROPE_SCALING_LONGROPE) { /* as convert_hf_to_gguf writes Phi-3: keys here, factors below */
        if (m->arch != CKE_ARCH_PHI3)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: LongRoPE on %s: llama.cpp reads rope_factors_long/short for "
                            "phi3 only", m->path, arch);
        const double orig = (double)h->rope.orig_ctx, factor = h->rope.factor > 0 ? h->rope.factor : (double)h->ctx_len / orig;
        longrope_af = h->rope.attn_factor > 0 ? h->rope.attn_factor : factor <= 1 ? 1.0 : sqrt(1 + log(factor) / log(orig));
        if ((st = set_u32(w, arch, "rope.scaling.original_context_length", h->rope.orig_ctx, err)) ||
            (st = set_f32(w, arch, "rope.scaling.attn_factor", longrope_af, err)))
            return st;
    }

    xlist xl = {0};
    const int64_t rot = h->learned_pos ? 0 : (h->rope.dims ? h->rope.dims : hd);
    const bool permute = rot > 0 && h->rope.layout != want;
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const cke_model_tensor *t = &m->tensors[i];
        char gname[96];
        long long l;
        int pos = 0;
        const char *what = sscanf(t->name, "l%lld.%n", &l, &pos) == 1 && pos > 0 ? t->name + pos : NULL;
        /* llama.cpp's GPT-2 and Phi-3: one attn_qkv tensor, rows Q | K | V; Phi-3's ffn_up: rows gate | up */
        const bool fuse_qkv = m->arch == CKE_ARCH_GPT2 || m->arch == CKE_ARCH_PHI3, fuse_ffn = m->arch == CKE_ARCH_PHI3;
        if (what && ((fuse_qkv && (!strcmp(what, "attn_k") || !strcmp(what, "attn_v") || !strcmp(what, "attn_k_b") ||
                                   !strcmp(what, "attn_v_b"))) ||
                     (fuse_ffn && !strcmp(what, "ffn_gate"))))
            continue; /* fused with attn_q / ffn_up below */
        if (what && ((fuse_qkv && (!strcmp(what, "attn_q") || !strcmp(what, "attn_q_b"))) || (fuse_ffn && !strcmp(what, "ffn_up")))) {
            const bool ffn = what[0] == 'f', bias = !strcmp(what, "attn_q_b");
            const cke_model_tensor *p[3] = {ffn ? cke_model_layer(m, l, "ffn_gate") : t,
                                            ffn ? t : cke_model_layer(m, l, bias ? "attn_k_b" : "attn_k"),
                                            ffn ? NULL : cke_model_layer(m, l, bias ? "attn_v_b" : "attn_v")};
            if (!p[0] || !p[1] || (!ffn && !p[2])) {
                st = cke_fail(err, CKE_ERR_MISSING, "%s: layer %lld lacks %s", m->path, l, ffn ? "ffn_gate" : "k or v");
                goto fail;
            }
            snprintf(gname, sizeof gname, "blk.%lld.%s.%s", l, ffn ? "ffn_up" : "attn_qkv", bias ? "bias" : "weight");
            XTRY(push_fused(&xl, gname, p, ffn ? 2 : 3, t->ndim == 2 ? t->shape[1] : 1, t->ndim, err));
            continue;
        }
        if (m->arch == CKE_ARCH_GLM4_MOE && what && !strcmp(what, "ffn_norm")) /* glm4moe names the pre-FFN norm so */
            snprintf(gname, sizeof gname, "blk.%lld.post_attention_norm.weight", l);
        else if (!cke_gguf_tensor_name(t->name, gname, sizeof gname)) {
            st = cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: tensor %s has no GGUF name in cke", m->path, t->name);
            goto fail;
        }
        float *f;
        XTRY(to_f32(t, &f, err));
        const int64_t n = cke_model_tensor_numel(t);
        if (mla && what && !strcmp(what, "attn_kv_up")) { /* llama.cpp's split, transposed key half */
            st = push_kv_b(&xl, l, f, h, err);
            free(f);
            if (st) goto fail;
            continue;
        }
        if (mla && what && permute && (!strcmp(what, "attn_q") || !strcmp(what, "attn_q_up") || !strcmp(what, "attn_kv_down"))) {
            /* llama.cpp rotates adjacent pairs: each head's rotated rows (after its unrotated ones) reordered */
            const bool kv = what[5] == 'k';
            const int64_t heads = kv ? 1 : h->n_heads, hrows = kv ? h->kv_lora_rank + rot : hd, cols = n / (heads * hrows);
            float *g = malloc((size_t)n * sizeof(float));
            if (!g) { free(f); st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); goto fail; }
            permute_rope_rows(g, f, heads, hrows, hrows - rot, rot, cols, want);
            free(f);
            f = g;
        } else if (permute && !mla && what && (!strncmp(what, "attn_q", 6) || !strncmp(what, "attn_k", 6)) &&
                   strstr(what, "norm") == NULL) {
            const bool isq = what[5] == 'q';
            const int64_t heads = isq ? h->n_heads : (h->n_kv_heads ? h->n_kv_heads : h->n_heads);
            const int64_t cols = n / (heads * hd);
            float *g = malloc((size_t)n * sizeof(float));
            if (!g || cols * heads * hd != n) {
                free(f); free(g);
                st = cke_fail(err, g ? CKE_ERR_SHAPE : CKE_ERR_NOMEM, "%s: %s is not %lld heads of %lld rows", m->path,
                              t->name, (long long)heads, (long long)hd);
                goto fail;
            }
            permute_rope_rows(g, f, heads, hd, 0, rot, cols, want);
            free(f);
            f = g;
        }
        if (h->norm_add_one && what && strstr(what, "norm") && strcmp(what + strlen(what) - 2, "_b"))
            for (int64_t k = 0; k < n; k++) f[k] += 1.0f; /* llama.cpp stores Gemma's (1 + w) */
        else if (h->norm_add_one && !strcmp(t->name, "output_norm"))
            for (int64_t k = 0; k < n; k++) f[k] += 1.0f;
        XTRY(xl_push(&xl, gname, t->ndim, t->shape, f, err));
    }
    if (h->rope.scaling == CKE_ROPE_SCALING_LLAMA3 && rot > 0) {
        /* llama.cpp's form of Llama 3 scaling: per-pair divisors of the default frequencies (rope_freqs) */
        float *d = malloc((size_t)(rot / 2) * sizeof(float)), *sc = malloc((size_t)(rot / 2) * sizeof(float));
        if (!d || !sc) { free(d); free(sc); st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); goto fail; }
        cke_rope_freqs(d, rot, h->rope.theta);
        memcpy(sc, d, (size_t)(rot / 2) * sizeof(float));
        cke_rope_freqs_scale(sc, rot, CKE_ROPE_SCALE_LLAMA3, (float)h->rope.factor, (float)h->rope.low_freq_factor,
                             (float)h->rope.high_freq_factor, h->rope.orig_ctx);
        for (int64_t i = 0; i < rot / 2; i++) d[i] = d[i] / sc[i];
        free(sc);
        int64_t shape[1] = {rot / 2};
        XTRY(xl_push(&xl, "rope_freqs.weight", 1, shape, d, err));
    }
    if (h->rope.scaling == CKE_ROPE_SCALING_LONGROPE) {
        const int64_t nf = h->rope.n_factor;
        float *lf = malloc((size_t)nf * sizeof(float)), *sf = malloc((size_t)nf * sizeof(float));
        if (!lf || !sf) { free(lf); free(sf); st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); goto fail; }
        memcpy(lf, h->rope.long_factor, (size_t)nf * sizeof(float));
        memcpy(sf, h->rope.short_factor, (size_t)nf * sizeof(float));
        int64_t shape[1] = {nf};
        st = xl_push(&xl, "rope_factors_long.weight", 1, shape, lf, err);
        if (st) { free(sf); goto fail; }
        XTRY(xl_push(&xl, "rope_factors_short.weight", 1, shape, sf, err));
    }
    *out = xl.v;
    *n_out = xl.n;
    return CKE_OK;
fail:
    cke_xtensors_free(xl.v, xl.n);
    return st;
}
