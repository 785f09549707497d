/* cke inspect: family, hyperparameters, tokenizer summary, every tensor. */
#include "cli/inspect.h"
#include "cli/target.h"
#include "cli/util.h"

#include "driver/compile.h"
#include "formats/model.h"

#include <stdio.h>

static const char *yn(bool b) { return b ? "yes" : "no"; }

static void inspect_usage(FILE *f) {
    fprintf(f, "usage: cke inspect MODEL|DIR\n"
               "  MODEL: .gguf, llama2.c .bin, Hugging Face directory; DIR: a compiled directory (its\n"
               "  source model is shown), a training --out directory or checkpoint (its model)\n");
}

int cke_cli_inspect(int argc, char **argv) {
    if (argc == 2 && cke_cli_is_help(argv[1])) { inspect_usage(stdout); return 0; }
    if (argc != 2) {
        if (argc > 2) cke_cli_unknown("inspect", argv[2]);
        inspect_usage(stderr);
        return 2;
    }
    cke_target tg;
    if (cke_cli_target("inspect", argv[1], &tg)) return 1;
    const char *path = tg.model;
    if (tg.kind == CKE_TARGET_COMPILED) {
        printf("compiled:    %s (cke compile output: model.so, weights.bin, model.c)\n", argv[1]);
        char kv[32], ctx[32];
        cke_compiled_field(tg.model, "kv_type", kv, sizeof kv);
        cke_compiled_field(tg.model, "ctx", ctx, sizeof ctx);
        printf("kv cache:    %s, ctx %s\n", kv[0] ? kv : "f32 (compiled before --kv-type)", ctx[0] ? ctx : "?");
        char tr[32], ts[32];
        cke_compiled_field(tg.model, "tp_rank", tr, sizeof tr);
        cke_compiled_field(tg.model, "tp_size", ts, sizeof ts);
        if (ts[0]) printf("tensor par.: rank %s of %s (its block of the heads and FFN columns: mpirun -np %s)\n", tr, ts, ts);
        if (!tg.source[0]) { fprintf(stderr, "cke inspect: %s/cke-model.txt names no source model\n", argv[1]); return 1; }
        path = tg.source;
    } else if (tg.kind == CKE_TARGET_TRAIN_OUT || tg.kind == CKE_TARGET_CHECKPOINT) {
        printf("%-12s %s (its model: %s)\n", tg.kind == CKE_TARGET_TRAIN_OUT ? "training:" : "checkpoint:", argv[1], path);
    }
    cke_model *m;
    cke_err err = {0};
    cke_status s = cke_model_open(path, &m, &err);
    if (s) {
        fprintf(stderr, "cke: %s: %s\n", cke_status_name(s), err.msg);
        return 1;
    }
    const cke_hparams *h = &m->hp;
    static const char *const acts[] = {"silu", "gelu_tanh", "gelu"};
    static const char *const scal[] = {[CKE_ROPE_SCALING_NONE] = "none", [CKE_ROPE_SCALING_LINEAR] = "linear",
                                       [CKE_ROPE_SCALING_LLAMA3] = "llama3", [CKE_ROPE_SCALING_FREQS] = "freqs-tensor",
                                       [CKE_ROPE_SCALING_YARN] = "yarn", [CKE_ROPE_SCALING_LONGROPE] = "longrope",
                                       [CKE_ROPE_SCALING_DYNAMIC] = "dynamic-ntk"};
    printf("model:       %s\n", m->path);
    printf("source:      %s (%d file%s)\n", cke_model_source_name(m->source), m->n_files, m->n_files == 1 ? "" : "s");
    printf("family:      %s\n", cke_arch_name(m->arch));
    printf("dim %lld  layers %lld  heads %lld  kv_heads %lld  head_dim %lld  ffn %lld  vocab %lld  ctx %lld\n",
           (long long)h->dim, (long long)h->n_layers, (long long)h->n_heads, (long long)h->n_kv_heads,
           (long long)h->head_dim, (long long)h->ffn_dim, (long long)h->vocab, (long long)h->ctx_len);
    printf("norm %s eps %g%s  act %s%s  tied_output %s  biases qkv/o/ffn/norm %s/%s/%s/%s\n",
           h->norm == CKE_NORM_RMS ? "rms" : "layer", h->norm_eps, h->norm_add_one ? " (1+w)" : "",
           acts[h->act], h->gated_ffn ? " (gated)" : "", yn(h->tied_output), yn(h->attn_qkv_bias),
           yn(h->attn_o_bias), yn(h->ffn_bias), yn(h->norm_bias));
    if (h->n_expert) {
        printf("experts:     %lld per layer, %lld used per token (weights %s)", (long long)h->n_expert, (long long)h->n_expert_used,
               h->moe_norm_topk ? "renormalized over them" : h->moe_sigmoid ? "the router's sigmoid scores" : "as the router's softmax gives them");
        if (h->shexp_ffn_dim) printf(", a shared expert of %lld", (long long)h->shexp_ffn_dim);
        printf("\n");
        if (h->moe_sigmoid) /* DeepSeek-V3 / GLM-4.5 routing and layout */
            printf("routing:     sigmoid scores, chosen with a bias (exp_probs_b)%s%.0lld%s%.0lld%s, weights x %g; experts of %lld; "
                   "dense MLP in the first %lld layers\n", h->moe_n_group > 1 ? " among the best " : "",
                   (long long)(h->moe_n_group > 1 ? h->moe_topk_group : 0), h->moe_n_group > 1 ? " of " : "",
                   (long long)(h->moe_n_group > 1 ? h->moe_n_group : 0), h->moe_n_group > 1 ? " groups" : "",
                   h->moe_routed_scale > 0 ? h->moe_routed_scale : 1.0,
                   (long long)(h->expert_ffn_dim ? h->expert_ffn_dim : h->ffn_dim), (long long)h->n_dense_lead);
    }
    if (h->kv_lora_rank)
        printf("attention:   latent (MLA): q %s%.0lld, kv latent %lld + a shared rotated key head; per head %lld + %lld rotated, "
               "values %lld; softmax scale %g\n", h->q_lora_rank ? "through rank " : "projected directly",
               (long long)h->q_lora_rank, (long long)h->kv_lora_rank, (long long)h->qk_nope_dim, (long long)h->rope.dims,
               (long long)h->v_head_dim, h->attn_scale);
    if (h->learned_pos) printf("positions:   learned (pos_embd)\n");
    else
        printf("rope:        theta %g  dims %lld  layout %s  scaling %s", h->rope.theta, (long long)h->rope.dims,
               h->rope.layout == CKE_ROPE_INTERLEAVED ? "interleaved" : "halves", scal[h->rope.scaling]);
    if (!h->learned_pos && h->rope.scaling == CKE_ROPE_SCALING_LINEAR) printf(" factor %g", h->rope.factor);
    if (!h->learned_pos && h->rope.scaling == CKE_ROPE_SCALING_LLAMA3)
        printf(" factor %g low %g high %g orig_ctx %lld", h->rope.factor, h->rope.low_freq_factor,
               h->rope.high_freq_factor, (long long)h->rope.orig_ctx);
    if (!h->learned_pos && h->rope.scaling >= CKE_ROPE_SCALING_YARN)
        printf(" factor %g orig_ctx %lld%s", h->rope.factor, (long long)h->rope.orig_ctx,
               h->rope.scaling == CKE_ROPE_SCALING_LONGROPE ? " (long factors when compiled past it)" : "");
    if (!h->learned_pos) printf("\n");
    if (h->qk_norm || h->post_norms || h->embd_scale != 1 || h->attn_softcap || h->final_softcap || h->sliding_window)
        printf("extras:      qk_norm %s  post_norms %s  embd_scale %g  attn_scale %g  softcap %g/%g  window %lld\n",
               yn(h->qk_norm), yn(h->post_norms), h->embd_scale, h->attn_scale, h->attn_softcap, h->final_softcap,
               (long long)h->sliding_window);
    printf("tokenizer:   %s", cke_tok_source_name(m->tok.source));
    if (m->tok.path) printf("  %s", m->tok.path);
    if (m->tok.model) printf("  model %s", m->tok.model);
    if (m->tok.n_tokens >= 0) printf("  %lld tokens", (long long)m->tok.n_tokens);
    if (m->tok.file_bytes >= 0) printf("  (%lld-byte file)", (long long)m->tok.file_bytes);
    printf("\n");
    printf("tensors:     %lld  params %lld\n", (long long)m->n_tensors, (long long)cke_model_n_params(m));
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const cke_model_tensor *t = &m->tensors[i];
        char shape[96];
        int n = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < t->ndim; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %-22s %-5s %-16s off %10llu  %10lld B%s  %s\n", t->name, cke_dtype_name(t->dtype), shape,
               (unsigned long long)t->file_offset, (long long)t->nbytes, t->owned ? (t->ndim == 3 ? " (stacked copy)" : " (transposed copy)") : "",
               t->src_name);
    }
    cke_model_close(m);
    return 0;
}
