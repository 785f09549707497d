/* Model families as templates, each proven against PyTorch: GPT-2 (also the real
 * tiny-random-gpt2 checkpoint against its REFERENCE.txt), Qwen2, Qwen3, Gemma, Gemma 2, Mistral
 * (sliding window shorter than the sequence), Phi-3 (fused HF tensors, partial rotary, window),
 * Llama 3 rope scaling, Llama / Qwen3 with biases on every projection (attention_bias, mlp_bias), and
 * Mixtral, Qwen3-MoE, OLMoE and Qwen2-MoE (mixtures of experts: router, top-k, per-expert SwiGLU;
 * renormalized or not; OLMoE's q/k norms over the whole width; Qwen2-MoE's sigmoid-gated shared expert).
 *
 *   test_families [--only FAMILY|gpt2_real|ablations|bad]
 * References are written at test time by tests/torch/ref_families.py with Debian's
 * /usr/bin/python3 (float64 forwards from the HF modeling definitions). Per family: logits of a
 * whole-sequence prefill and of prefill-5-then-decode at every position; `cke parity` over every
 * traced IR value in one prefill and in decode steps. Ablations prove each feature changes the
 * numbers (a config without it must diverge), and a perturbed weight is named by parity.
 * Ends with "N passed, N failed". */
#define _DEFAULT_SOURCE
#include "../common/tcommon.h"
#include "batch_check.h"
#include "tp_check.h"
#include "codegen/codegen.h"
#include "driver/compile.h"
#include "formats/model.h"
#include "runtime/parity.h"
#include "runtime/runner.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unistd.h>


/* KV cache type of the compiles below: the reference comparisons (logits at 2e-4, parity at 1e-4,
 * decode_batch at 1e-4) run an f32 cache, which holds the f32 activations as they are; the
 * *_kvf16 cases run the default f16 cache with their own tolerance. */
static int kv_type = CKE_KV_F32;

static cke_status compile(const char *model, const char *out, int64_t ctx, cke_err *e) {
    cke_compile_opts o = {.out_dir = out, .templates_dir = tc_tpl, .include_dir = tc_inc, .libk = tc_libk, .ctx = ctx,
                          .max_threads = 2, .quiet = 1, .kv_type = kv_type};
    return cke_compile(model, &o, e);
}

/* Rank `rank` of `ranks` (tensor parallel); 0 of 1 is compile(). */
static cke_status compile_tp(const char *model, const char *out, int rank, int ranks, cke_err *e) {
    cke_compile_opts o = {.out_dir = out, .templates_dir = tc_tpl, .include_dir = tc_inc, .libk = tc_libk,
                          .max_threads = 2, .quiet = 1, .kv_type = kv_type, .tp_rank = rank, .tp_size = ranks};
    return cke_compile(model, &o, e);
}

static int run_py(const char *dir, const char *family, const char *edit) {
    return tc_run_py("ref_families.py", dir, family, edit ? edit : "", NULL);
}

/* fp32 compute against a float64 reference over a few layers: errors are ~1e-6 relative;
 * 2e-4 leaves room for accumulation order without hiding a wrong op (those are ~1e-1). */
static const double ATOL = 2e-4, RTOL = 2e-4, PARITY_TOL = 1e-4;

typedef struct {
    double worst;
    int bad, bad_pos;
} cmp_state;

static void cmp_logits(cmp_state *c, const float *got, const float *want, int64_t V, int pos) {
    for (int64_t i = 0; i < V; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > c->worst) c->worst = d;
        if (d > ATOL + RTOL * fabs((double)want[i]) && !c->bad++) c->bad_pos = pos;
    }
}

/* ---------------------------------------------------------------- one family */

/* The family's model.c also builds as model_prof.so (cke profile's -DCKM_PROFILE build), with a
 * profile table entry per op of both modes. */
static void profile_build(const char *fam, const char *dir) {
    char name[128], csrc[PATH_MAX + 16], so[PATH_MAX + 32], logp[PATH_MAX + 32];
    snprintf(name, sizeof name, "%s_profile_build", fam);
    snprintf(csrc, sizeof csrc, "%s/model.c", dir);
    snprintf(so, sizeof so, "%s/model_prof.so", dir);
    snprintf(logp, sizeof logp, "%s/model_prof.log", dir);
    cke_err e = {0};
    cke_status s = cke_codegen_compile_defs(csrc, so, tc_inc, tc_libk, logp, "CKM_PROFILE", NULL, &e);
    void *dl = s ? NULL : dlopen(so, RTLD_NOW | RTLD_LOCAL);
    const ckm_api *(*get)(void) = NULL;
    if (dl) *(void **)&get = dlsym(dl, "ckm_api_get");
    const ckm_api *api = get ? get() : NULL;
    tc_result(name, api && api->set_profile && api->n_prof_ops > 0, "%s", s ? e.msg : "no profile table");
    if (api && !strcmp(fam, "mixtral")) {
        /* a decode step's moe reads the router (E x D f32) and the k chosen experts' three F x D
         * matrices, not all E: ref_families' mixtral is E = 4, k = 2, F = 48, D = 32, f32 */
        const double router = 4.0 * 4 * 32, expert = 3.0 * 48 * 32 * 4, active = router + 2 * expert;
        double got = -1;
        for (int i = 0; i < api->n_prof_ops; i++)
            if (api->prof_ops[i].mode == 1 && !strcmp(api->prof_ops[i].op, "moe"))
                got = api->prof_ops[i].w_extra + api->prof_ops[i].w_row * 1;
        tc_result("mixtral_profile_decode_bytes_are_the_active_experts", got == active,
                  "decode moe weight bytes per token %.0f, want %.0f (the router + 2 of 4 experts; all 4: %.0f)", got, active,
                  router + 4 * expert);
    }
    if (dl) dlclose(dl);
}

/* Tensor parallel: the model compiled as 2 ranks (heads and FFN columns split, an allreduce after
 * attn_o and ffn_down), run in two threads with an in-process allreduce (tp_check.h), against the
 * same reference as the whole model, prefill 5 then decode; and against the whole model's logits
 * (another summation order: partial sums of half the columns added, ~1e-6). */
static void family_tp(const char *fam, const char *hf, const int32_t *ids, const float *want, int32_t T, int32_t V,
                      cke_runner *whole) {
    char name[128], dirs[2][PATH_MAX], msg[512] = "";
    const char *dp[2] = {dirs[0], dirs[1]};
    snprintf(name, sizeof name, "%s_tensor_parallel_2", fam);
    if (!strcmp(fam, "olmoe")) { /* its q/k norms span every head: the template has no split, refused by name */
        cke_err e = {0};
        snprintf(dirs[0], sizeof dirs[0], "%s/%s_tp2_r0", tc_tmp, fam);
        cke_status s = compile_tp(hf, dirs[0], 0, 2, &e);
        tc_result(name, s == CKE_ERR_UNSUPPORTED && strstr(e.msg, "does not say how to split it across ranks"), "status %d: %s",
                  s, e.msg);
        return;
    }
    for (int r = 0; r < 2; r++) {
        cke_err e = {0};
        snprintf(dirs[r], sizeof dirs[r], "%s/%s_tp2_r%d", tc_tmp, fam, r);
        if (compile_tp(hf, dirs[r], r, 2, &e)) { tc_result(name, 0, "compile rank %d: %s", r, e.msg); return; }
    }
    tp_group g;
    cmp_state c = {0, 0, -1};
    double vs_whole = 0;
    const ckm_api *wa = whole->api;
    int ok = tp_open(&g, dp, 2, 1, msg, sizeof msg) == 0;
    wa->reset(whole->m);
    ok = ok && tp_step(&g, ids, 5, 0, msg, sizeof msg) == 0 && wa->prefill(whole->m, ids, 5) == 0;
    for (int t = 4; ok && t < T; t++) {
        if (t > 4) ok = tp_step(&g, ids + t, 1, 1, msg, sizeof msg) == 0 && wa->decode(whole->m, ids[t]) == 0;
        if (!ok) break;
        cmp_logits(&c, tp_logits(&g), want + (size_t)t * (size_t)V, V, t);
        for (int64_t i = 0; i < V; i++) {
            double d = fabs((double)tp_logits(&g)[i] - wa->logits(whole->m)[i]);
            if (d > vs_whole) vs_whole = d;
        }
    }
    tp_close(&g);
    /* the same reference tolerance as the whole model; against it, fp32 rounding of a reordered sum */
    tc_result(name, ok && !c.bad && vs_whole <= 1e-4, "ok=%d (%s) %d logits out of tolerance (first at %d), max abs diff %.3g vs "
              "the reference, %.3g vs the whole model", ok, msg, c.bad, c.bad_pos, c.worst, vs_whole);
}

static void family(const char *fam) {
    char name[128], hf[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    snprintf(name, sizeof name, "%s_torch_logits", fam);
    snprintf(hf, sizeof hf, "%s/hf_%s", tc_tmp, fam);
    snprintf(dir, sizeof dir, "%s/%s_model", tc_tmp, fam);
    if (run_py(hf, fam, NULL) != 0) { tc_result(name, 0, "reference script failed (see %s.log)", hf); return; }
    cke_err e = {0};
    cke_status s = compile(hf, dir, 0, &e);
    if (s) { tc_result(name, 0, "compile: %s", e.msg); return; }
    profile_build(fam, dir);
    cke_runner *r = NULL;
    if ((s = cke_runner_open(dir, 2, &r, &e))) { tc_result(name, 0, "open: %s", e.msg); return; }
    snprintf(path, sizeof path, "%s/ref.bin", hf);
    int32_t T = 0, V = 0;
    char *ref = tc_ref_or_fail(name, path, r, &T, &V);
    if (!ref) return;
    const int32_t *ids = (const int32_t *)(ref + 8); /* 8-byte offset into malloc'd memory: aligned */
    const float *want = (const float *)(ref + 8 + (size_t)T * 4);
    const ckm_api *api = r->api;
    cmp_state c = {0, 0, -1};
    /* 1. the whole sequence in one prefill: the last position */
    int ok = api->prefill(r->m, ids, T) == 0;
    if (ok) cmp_logits(&c, api->logits(r->m), want + (size_t)(T - 1) * (size_t)V, V, T - 1);
    /* 2. prefill 5, then one decode step per token: every position (KV cache, windows over the cache) */
    api->reset(r->m);
    ok = ok && api->prefill(r->m, ids, 5) == 0;
    if (ok) cmp_logits(&c, api->logits(r->m), want + 4 * (size_t)V, V, 4);
    for (int t = 5; ok && t < T; t++) {
        ok = api->decode(r->m, ids[t]) == 0;
        if (ok) cmp_logits(&c, api->logits(r->m), want + (size_t)t * (size_t)V, V, t);
    }
    tc_result(name, ok && !c.bad, "ok=%d %d logits out of atol %.1g + rtol %.1g (first at position %d), max abs diff %.3g",
           ok, c.bad, ATOL, RTOL, c.bad_pos, c.worst);

    /* 2a. prefill_all (ABI 3): every position's logits from one prefill (the output head over all
     * rows: Gemma 2's final softcap in place, GPT-2's layernorm with bias), against the reference */
    {
        char aname[128];
        snprintf(aname, sizeof aname, "%s_prefill_all_logits", fam);
        float *all = malloc((size_t)T * (size_t)V * sizeof(float));
        cmp_state ca = {0, 0, -1};
        api->reset(r->m);
        int aok = all && api->prefill_all(r->m, ids, T, all) == 0;
        for (int t = 0; aok && t < T; t++) cmp_logits(&ca, all + (size_t)t * (size_t)V, want + (size_t)t * (size_t)V, V, t);
        tc_result(aname, aok && !ca.bad, "ok=%d %d logits out of atol %.1g + rtol %.1g (first at position %d), max abs diff %.3g",
                  aok, ca.bad, ATOL, RTOL, ca.bad_pos, ca.worst);
        free(all);
    }

    /* 2b. exported to GGUF in llama.cpp's conventions (`cke quantize DIR OUT F32`), compiled from
     * there: the same logits; families GGUF (as cke reads it) cannot hold are refused by name */
    {
        char gg[PATH_MAX], gdir[PATH_MAX], gname[128];
        snprintf(gg, sizeof gg, "%s/%s.gguf", tc_tmp, fam);
        snprintf(gdir, sizeof gdir, "%s/%s_model_gguf", tc_tmp, fam);
        snprintf(gname, sizeof gname, "%s_via_gguf_export", fam);
        cke_err ge = {0};
        cke_status gs = tc_export_gguf(hf, gg, &ge);
        /* this Gemma 2, whose query_pre_attn_scalar is not head_dim, and Gemma with exact GELU (GGUF has no key for
         * either); dynamic NTK (llama.cpp's rope tables are static); Qwen3-MoE without norm_topk_prob (llama.cpp's
         * qwen3moe renormalizes); DeepSeek with attention biases (llama.cpp's deepseek2 has none). Phi-3 goes through llama.cpp's fused attn_qkv and gate | up ffn_up, LongRoPE
         * through its rope_factors_long / rope_factors_short tensors. */
        const int refused = !strcmp(fam, "gemma2") || !strcmp(fam, "gemma_gelu") || !strcmp(fam, "llama_dynamic") ||
                            !strcmp(fam, "gemma3_swa3") || !strcmp(fam, "qwen3_moe") || !strcmp(fam, "deepseek_v3_bias");
        cke_runner *gr = NULL;
        if (refused) {
            tc_result(gname, gs == CKE_ERR_UNSUPPORTED, "expected a named refusal, got status %d: %s", gs, ge.msg);
        } else if (gs || (gs = compile(gg, gdir, 0, &ge)) || (gs = cke_runner_open(gdir, 1, &gr, &ge))) {
            tc_result(gname, 0, "export/compile/open: %s", ge.msg);
        } else {
            cmp_state gc = {0, 0, -1};
            int gok = gr->api->prefill(gr->m, ids, 5) == 0;
            if (gok) cmp_logits(&gc, gr->api->logits(gr->m), want + 4 * (size_t)V, V, 4);
            for (int t = 5; gok && t < T; t++) {
                gok = gr->api->decode(gr->m, ids[t]) == 0;
                if (gok) cmp_logits(&gc, gr->api->logits(gr->m), want + (size_t)t * (size_t)V, V, t);
            }
            tc_result(gname, gok && !gc.bad, "ok=%d %d logits out of tolerance (first at position %d), max abs diff %.3g", gok,
                   gc.bad, gc.bad_pos, gc.worst);
            cke_runner_close(gr);
        }
    }

    /* 3. cke parity: every traced IR value (the template's names) in one prefill and in decode steps */
    snprintf(path, sizeof path, "%s/ref.trace", hf);
    cke_parity_result res;
    snprintf(name, sizeof name, "%s_parity", fam);
    s = cke_parity_run(r, path, 0, PARITY_TOL, NULL, &res, &e);
    int ok1 = !s && !res.diverged && res.compared >= 20;
    int64_t n1 = res.compared;
    char first[96];
    snprintf(first, sizeof first, "%s l%d", res.name, res.layer);
    cke_status s2 = cke_parity_run(r, path, 1, PARITY_TOL, NULL, &res, &e);
    int ok2 = !s2 && !res.diverged && res.compared >= n1 * (T - 1);
    tc_result(name, ok1 && ok2, "prefill: status %d, %lld compared, diverged at %s; decode: status %d diverged=%d at %s l%d",
           s, (long long)n1, ok1 ? "-" : first, s2, res.diverged, res.name, res.layer);

    /* 4. decode_batch (ABI 5): three sequences in KV slots decoded together = each decoded alone
     * (GEMM over the rows vs decode's GEMV: float rounding only; 1e-4 as for prefill_all) */
    {
        char bname[128], wpath[PATH_MAX + 16], msg[512];
        snprintf(bname, sizeof bname, "%s_decode_batch", fam);
        snprintf(wpath, sizeof wpath, "%s/weights.bin", dir);
        int bok = batch_check(api, wpath, 2, 1e-4, msg, sizeof msg);
        printf("  %s\n", msg);
        tc_result(bname, bok, "%s", msg);
    }
    family_tp(fam, hf, ids, want, T, V, r);
    free(ref);
    cke_runner_close(r);
}

/* The family with the default f16 KV cache against the same reference, prefill 5 then decode
 * (every position reads the cache). Each cached k/v element is rounded by up to 2^-11 relative:
 * logits move by 1.5e-3 (gemma2) to 1.0e-2 (qwen3, QK-norm's larger keys) here, so 2e-2 + 2e-2
 * relative; a wrong op is ~1e-1 away. */
static void family_kvf16(const char *fam) {
    char name[128], hf[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    snprintf(name, sizeof name, "%s_torch_logits_kvf16", fam);
    snprintf(hf, sizeof hf, "%s/hf_%s", tc_tmp, fam);
    snprintf(dir, sizeof dir, "%s/%s_model_kvf16", tc_tmp, fam);
    snprintf(path, sizeof path, "%s/ref.bin", hf);
    if (!tc_have(path) && run_py(hf, fam, NULL) != 0) { tc_result(name, 0, "reference script failed (see %s.log)", hf); return; }
    cke_err e = {0};
    kv_type = CKE_KV_F16;
    cke_status s = compile(hf, dir, 0, &e);
    kv_type = CKE_KV_F32;
    cke_runner *r = NULL;
    if (s || (s = cke_runner_open(dir, 2, &r, &e))) { tc_result(name, 0, "compile/open: %s", e.msg); return; }
    int32_t T = 0, V = 0;
    char *ref = tc_ref_or_fail(name, path, r, &T, &V);
    if (!ref) return;
    const int32_t *ids = (const int32_t *)(ref + 8);
    const float *want = (const float *)(ref + 8 + (size_t)T * 4);
    const ckm_api *api = r->api;
    const double tol = 2e-2;
    double worst = 0;
    int bad = 0, bad_pos = -1, ok = api->prefill(r->m, ids, 5) == 0;
    for (int t = 4; ok && t < T; t++) {
        if (t > 4) ok = api->decode(r->m, ids[t]) == 0;
        const float *lg = api->logits(r->m), *w = want + (size_t)t * (size_t)V;
        for (int64_t i = 0; ok && i < V; i++) {
            double d = fabs((double)lg[i] - w[i]);
            if (d > worst) worst = d;
            if (d > tol + tol * fabs((double)w[i]) && !bad++) bad_pos = t;
        }
    }
    tc_result(name, ok && !bad, "ok=%d %d logits out of %.1g + %.1g relative (first at position %d), max abs diff %.3g", ok,
              bad, tol, tol, bad_pos, worst);
    free(ref);
    cke_runner_close(r);
}

/* A Mixtral quantized by `cke quantize` to Q8_0 (the expert stacks as 3-D q8_0 tensors, f16 where
 * rows are not whole blocks; the router f32) compiles and runs: prefill 5 then decode, against the
 * float64 reference. Q8_0 weights and Q8_0-quantized activations in the attention linears move
 * these logits (std 1.2) by 0.01 to 0.09 at every position (F16 by < 0.01), so 0.25 + 0.1
 * relative; a wrong expert or weight moves them by ~1. */
static void mixtral_quantized(void) {
    char hf[PATH_MAX], gg[PATH_MAX], dir[PATH_MAX], cke[PATH_MAX], ref[PATH_MAX];
    const char *name = "mixtral_q8_0_gguf_runs";
    snprintf(hf, sizeof hf, "%s/hf_mixtral", tc_tmp);
    snprintf(ref, sizeof ref, "%s/ref.bin", hf);
    if (!tc_have(ref) && run_py(hf, "mixtral", NULL) != 0) { tc_result(name, 0, "reference script failed"); return; }
    ssize_t n = readlink("/proc/self/exe", cke, sizeof cke - 8);
    char *slash = n > 0 ? (cke[n] = 0, strrchr(cke, '/')) : NULL;
    if (!slash) { tc_result(name, 0, "cannot find the cke binary"); return; }
    snprintf(slash, sizeof cke - (size_t)(slash - cke), "/cke");
    snprintf(gg, sizeof gg, "%s/mixtral_q8_0.gguf", tc_tmp);
    snprintf(dir, sizeof dir, "%s/mixtral_q8_0_model", tc_tmp);
    char log[PATH_MAX + 8];
    snprintf(log, sizeof log, "%s.log", gg);
    if (tc_spawn(NULL, log, log, (const char *const[]){cke, "quantize", hf, gg, "Q8_0", NULL}) != 0) {
        tc_result(name, 0, "cke quantize failed (see %s)", log);
        return;
    }
    cke_err e = {0};
    cke_model *m = NULL;
    const cke_model_tensor *t = NULL;
    int stacked = cke_model_open(gg, &m, &e) == CKE_OK && m->arch == CKE_ARCH_MIXTRAL &&
                  (t = cke_model_find(m, "l1.ffn_up_exps")) && t->ndim == 3 && t->dtype == CKE_DT_Q8_0;
    cke_model_close(m);
    cke_runner *r = NULL;
    if (!stacked || compile(gg, dir, 0, &e) || cke_runner_open(dir, 1, &r, &e)) {
        tc_result(name, 0, "stacked q8_0 experts %d; compile/open: %s", stacked, e.msg);
        return;
    }
    int32_t T = 0, V = 0;
    char *rb = tc_ref_or_fail(name, ref, r, &T, &V);
    if (!rb) return;
    const int32_t *ids = (const int32_t *)(rb + 8);
    const float *want = (const float *)(rb + 8 + (size_t)T * 4);
    double worst = 0;
    int bad = 0, ok = r->api->prefill(r->m, ids, 5) == 0;
    for (int p = 4; ok && p < T; p++) {
        if (p > 4) ok = r->api->decode(r->m, ids[p]) == 0;
        for (int64_t i = 0; ok && i < V; i++) {
            double d = fabs((double)r->api->logits(r->m)[i] - want[(size_t)p * (size_t)V + (size_t)i]);
            worst = fmax(worst, d);
            bad += d > 0.25 + 0.1 * fabs((double)want[(size_t)p * (size_t)V + (size_t)i]);
        }
    }
    tc_result(name, ok && !bad, "ok=%d %d logits out of 0.25 + 0.1 relative, max abs diff %.3g", ok, bad, worst);
    printf("  %s: max |logit - float64 reference| %.3g\n", name, worst);
    free(rb);
    cke_runner_close(r);
}

/* ---------------------------------------------------------------- features must matter */

/* The config loses a feature that the reference keeps: the compiled model must diverge, naming
 * the first affected value. Proves each template attribute is exercised by its test. */
static void ablations(void) {
    static const struct { const char *fam, *key, *first; } ab[] = {
        {"mistral", "sliding_window", "attn"},
        {"phi3", "sliding_window", "attn"},
        {"phi3", "partial_rotary_factor", "q_rope"},
        {"llama3", "rope_scaling", "q_rope"},
        {"gemma2", "sliding_window", "attn"},
        {"gemma2", "attn_logit_softcapping", "attn"},
        {"gemma2", "query_pre_attn_scalar", "attn"},
        {"gemma2", "final_logit_softcapping", "logits"},
        /* a set= edit: the config's value changed, the reference keeps the original */
        {"gemma_gelu", "set=hidden_activation=\"gelu_pytorch_tanh\"", "act"},
        {"qwen2_yarn", "rope_scaling", "q_rope"},
        {"phi3_longrope", "original_max_position_embeddings", "q_rope"}, /* then short factors, no cos/sin scale */
        {"gemma3", "sliding_window", "attn"},
        {"gemma3", "rope_scaling", "q_rope"},          /* the global layer's table */
        {"gemma3_swa3", "rope_local_base_freq", "q_rope"}, /* 10000 instead of 20000 on the local layers */
        /* one expert per token instead of two: the first moe output differs */
        {"mixtral", "set=num_experts_per_tok=1", "ffn_out"},
        /* the k weights renormalized although the reference keeps the probabilities as they are */
        {"qwen3_moe", "set=norm_topk_prob=true", "ffn_out"},
        /* DeepSeek-style routing (GLM-4.5): each of the gate's options changes the first moe output */
        {"glm4_moe", "set=routed_scaling_factor=1.0", "moe_out"},
        {"glm4_moe", "set=topk_group=4", "moe_out"}, /* every group eligible */
        {"glm4_moe", "set=norm_topk_prob=false", "moe_out"},
        /* DeepSeek-V3: adjacent pairs rotated, not halves (the scores, so the attention output, differ) */
        {"deepseek_v3", "set=rope_interleave=false", "attn"},
    };
    for (size_t i = 0; i < sizeof ab / sizeof ab[0]; i++) {
        char name[128], hf[PATH_MAX], dir[PATH_MAX], edit[128], ref[PATH_MAX];
        const int set = !strncmp(ab[i].key, "set=", 4);
        snprintf(name, sizeof name, set ? "%s_with_tanh_gelu_diverges" : "%s_without_%s_diverges", ab[i].fam, ab[i].key);
        if (set && !strcmp(ab[i].fam, "mixtral")) snprintf(name, sizeof name, "mixtral_with_one_expert_per_token_diverges");
        if (set && !strcmp(ab[i].fam, "qwen3_moe")) snprintf(name, sizeof name, "qwen3_moe_with_norm_topk_prob_diverges");
        if (set && (!strncmp(ab[i].fam, "glm4_moe", 8) || !strncmp(ab[i].fam, "deepseek_v3", 11)))
            snprintf(name, sizeof name, "%s_with_%.*s_diverges", ab[i].fam, (int)strcspn(ab[i].key + 4, "="), ab[i].key + 4);
        snprintf(hf, sizeof hf, "%s/ablate_%zu", tc_tmp, i);
        snprintf(dir, sizeof dir, "%s/ablate_%zu_model", tc_tmp, i);
        snprintf(edit, sizeof edit, set ? "%s" : "ablate=%s", ab[i].key);
        cke_err e = {0};
        cke_runner *r = NULL;
        if (run_py(hf, ab[i].fam, edit) || compile(hf, dir, 0, &e) || cke_runner_open(dir, 1, &r, &e)) {
            tc_result(name, 0, "setup: %s", e.msg);
            continue;
        }
        snprintf(ref, sizeof ref, "%s/ref.trace", hf);
        cke_parity_result res;
        cke_status s = cke_parity_run(r, ref, 0, PARITY_TOL, NULL, &res, &e);
        tc_result(name, !s && res.diverged && !strcmp(res.name, ab[i].first),
               "status %d diverged=%d first '%s' layer %d (want '%s')", s, res.diverged, res.name, res.layer, ab[i].first);
        cke_runner_close(r);
    }
    /* a perturbed family-specific weight is named by parity as the first divergence */
    static const struct { const char *fam, *tensor, *first; int layer; } pt[] = {
        {"qwen3", "model.layers.1.self_attn.q_norm.weight", "q_norm", 1},
        {"gemma2", "model.layers.0.post_feedforward_layernorm.weight", "ffn_post", 0},
        {"gpt2", "transformer.h.1.attn.c_attn.bias", "q", 1},
        {"phi3", "model.layers.0.mlp.gate_up_proj.weight", "gate", 0},
        {"llama_bias", "model.layers.0.mlp.gate_proj.bias", "gate", 0},
        {"llama_bias", "model.layers.1.mlp.down_proj.bias", "ffn_out", 1},
        {"qwen3_bias", "model.layers.1.self_attn.o_proj.bias", "attn_out", 1},
        /* the router, and one expert's down projection (stacked by the loader into ffn_down_exps) */
        {"mixtral", "model.layers.1.block_sparse_moe.gate.weight", "ffn_out", 1},
        {"mixtral", "model.layers.0.block_sparse_moe.experts.3.w2.weight", "ffn_out", 0},
        {"olmoe", "model.layers.1.self_attn.k_norm.weight", "k_norm", 1},
        {"qwen2_moe", "model.layers.0.mlp.shared_expert_gate.weight", "sh_out", 0},
        /* GLM-4.5's leading dense layer and a later layer's shared experts */
        {"glm4_moe", "model.layers.0.mlp.down_proj.weight", "ffn_out", 0},
        {"glm4_moe", "model.layers.2.mlp.shared_experts.up_proj.weight", "sh_out", 2},
    };
    for (size_t i = 0; i < sizeof pt / sizeof pt[0]; i++) {
        char name[128], hf[PATH_MAX], dir[PATH_MAX], edit[160], ref[PATH_MAX];
        snprintf(name, sizeof name, "%s_parity_names_%s", pt[i].fam, pt[i].first);
        if (!strcmp(pt[i].fam, "mixtral")) /* two cases name ffn_out: the router's (l1), an expert's (l0) */
            snprintf(name, sizeof name, "mixtral_parity_names_%s_l%d", pt[i].first, pt[i].layer);
        snprintf(hf, sizeof hf, "%s/perturb_%zu", tc_tmp, i);
        snprintf(dir, sizeof dir, "%s/perturb_%zu_model", tc_tmp, i);
        snprintf(edit, sizeof edit, "perturb=%s", pt[i].tensor);
        cke_err e = {0};
        cke_runner *r = NULL;
        if (run_py(hf, pt[i].fam, edit) || compile(hf, dir, 0, &e) || cke_runner_open(dir, 1, &r, &e)) {
            tc_result(name, 0, "setup: %s", e.msg);
            continue;
        }
        snprintf(ref, sizeof ref, "%s/ref.trace", hf);
        cke_parity_result res;
        cke_status s = cke_parity_run(r, ref, 0, PARITY_TOL, NULL, &res, &e);
        tc_result(name, !s && res.diverged && !strcmp(res.name, pt[i].first) && res.layer == pt[i].layer,
               "status %d diverged=%d first '%s' layer %d (want '%s' layer %d)", s, res.diverged, res.name, res.layer,
               pt[i].first, pt[i].layer);
        cke_runner_close(r);
    }
}

/* ---------------------------------------------------------------- the real GPT-2 checkpoint */

/* "logits_posN (...):\n v v v ..." of REFERENCE.txt -> want[V] */
static int ref_logits(const char *text, const char *key, float *want, int64_t V) {
    const char *p = strstr(text, key);
    if (!p || !(p = strchr(p, '\n'))) return -1;
    for (int64_t i = 0; i < V; i++) {
        char *end;
        want[i] = strtof(p, &end);
        if (end == p) return -1;
        p = end;
    }
    return 0;
}

static void gpt2_real(void) {
    char path[PATH_MAX], dir[PATH_MAX];
    snprintf(path, sizeof path, "%s/tiny-random-gpt2", tc_models);
    char refp[PATH_MAX];
    snprintf(refp, sizeof refp, "%s/REFERENCE.txt", path);
    if (!tc_have(refp)) { printf("SKIP gpt2_real (no %s)\n", refp); return; }
    snprintf(dir, sizeof dir, "%s/gpt2_real", tc_tmp);
    /* the fixture's tokenizer.json has 50295 tokens for a 1000-row model, which compile refuses:
     * compile the weights alone (config.json + model.safetensors linked into a directory) */
    char wdir[PATH_MAX], a[PATH_MAX * 2], b[PATH_MAX * 2];
    snprintf(wdir, sizeof wdir, "%s/gpt2_real_weights", tc_tmp);
    mkdir(wdir, 0755);
    char absdir[PATH_MAX]; /* a symbolic link's target is relative to the link: make it absolute */
    if (!realpath(path, absdir)) { tc_result("gpt2_real_reference", 0, "realpath %s", path); return; }
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "model.safetensors" : "config.json";
        snprintf(a, sizeof a, "%s/%s", absdir, f);
        snprintf(b, sizeof b, "%s/%s", wdir, f);
        if (symlink(a, b) != 0 && errno != EEXIST) { tc_result("gpt2_real_reference", 0, "symlink %s", b); return; }
    }
    cke_err e = {0};
    cke_runner *r = NULL;
    cke_status s = compile(wdir, dir, 0, &e);
    if (s || (s = cke_runner_open(dir, 2, &r, &e))) { tc_result("gpt2_real_reference", 0, "compile/open: %s", e.msg); return; }
    char *text = tc_slurp(refp, NULL);
    const int64_t V = r->api->vocab;
    float *w0 = malloc((size_t)V * sizeof(float)), *w7 = malloc((size_t)V * sizeof(float));
    int32_t ids[8] = {0};
    int nids = 0;
    const char *ip = text ? strstr(text, "input_ids: [") : NULL;
    for (ip = ip ? ip + 12 : NULL; ip && nids < 8;) {
        char *end;
        long v = strtol(ip, &end, 10);
        if (end == ip) break;
        ids[nids++] = (int32_t)v;
        ip = end + (*end == ',');
    }
    int parsed = text && nids == 8 && V == 1000 && !ref_logits(text, "logits_pos0 (", w0, V) &&
                 !ref_logits(text, "logits_pos7 (", w7, V);
    /* REFERENCE.txt is float32 PyTorch (its own error vs float64 is ~1e-7; logits are <= 0.52):
     * 1e-4 absolute allows for fp32 accumulation order and nothing else */
    const double tol = 1e-4;
    double worst = 0;
    int ok = parsed;
    const ckm_api *api = r->api;
    /* one prefill: the last position; then prefill 1 + 7 decode steps: position 0 and 7 */
    if (ok) ok = api->prefill(r->m, ids, 8) == 0;
    for (int64_t i = 0; ok && i < V; i++) worst = fmax(worst, fabs((double)api->logits(r->m)[i] - w7[i]));
    api->reset(r->m);
    if (ok) ok = api->prefill(r->m, ids, 1) == 0;
    for (int64_t i = 0; ok && i < V; i++) worst = fmax(worst, fabs((double)api->logits(r->m)[i] - w0[i]));
    for (int t = 1; ok && t < 8; t++) ok = api->decode(r->m, ids[t]) == 0;
    for (int64_t i = 0; ok && i < V; i++) worst = fmax(worst, fabs((double)api->logits(r->m)[i] - w7[i]));
    tc_result("gpt2_real_reference", ok && worst <= tol, "parsed=%d ok=%d max |logit - REFERENCE.txt| = %.3g (tol %.1g)", parsed,
           ok, worst, tol);

    /* cke parity against the float64 reference forward of the same checkpoint */
    char hf[PATH_MAX];
    snprintf(hf, sizeof hf, "%s/gpt2_real_ref", tc_tmp);
    cke_parity_result res;
    if (tc_run_py("ref_families.py", hf, "gpt2", "--from", path, "98,5,17,230,999,42,7,300", NULL) != 0) {
        tc_result("gpt2_real_parity", 0, "reference script failed (see %s.log)", hf);
    } else {
        snprintf(path, sizeof path, "%s/ref.trace", hf);
        s = cke_parity_run(r, path, 1, PARITY_TOL, NULL, &res, &e);
        tc_result("gpt2_real_parity", !s && !res.diverged && res.compared >= 8 * 60, "status %d diverged=%d at %s l%d (%lld compared)",
               s, res.diverged, res.name, res.layer, (long long)res.compared);
    }
    free(text);
    free(w0);
    free(w7);
    cke_runner_close(r);
}

/* ---------------------------------------------------------------- bad input */

/* A model with experts is refused by name where the experts cannot go: compiled with a template
 * that lacks them (a dense llama.json standing in for mixtral.json); the training mode compiles
 * (the moe op's backward: tests/train checks its numbers). */
static void moe_refusals(void) {
    char hf[PATH_MAX], dir[PATH_MAX], tpl[PATH_MAX], from[PATH_MAX + 16], to[PATH_MAX + 16];
    snprintf(hf, sizeof hf, "%s/hf_mixtral", tc_tmp);
    if (!tc_have(hf) && run_py(hf, "mixtral", NULL) != 0) { tc_result("mixtral_refusals", 0, "reference script failed"); return; }
    snprintf(tpl, sizeof tpl, "%s/dense_templates", tc_tmp);
    mkdir(tpl, 0755);
    snprintf(from, sizeof from, "%s/llama.json", tc_tpl);
    snprintf(to, sizeof to, "%s/mixtral.json", tpl);
    char *text = tc_slurp(from, NULL);
    FILE *f = text ? fopen(to, "w") : NULL;
    if (f) fputs(text, f), fclose(f);
    free(text);
    snprintf(dir, sizeof dir, "%s/mixtral_dense_tpl", tc_tmp);
    cke_err e = {0};
    cke_compile_opts o = {.out_dir = dir, .templates_dir = tpl, .include_dir = tc_inc, .libk = tc_libk, .max_threads = 2,
                          .quiet = 1, .kv_type = kv_type};
    cke_status st = f ? cke_compile(hf, &o, &e) : CKE_ERR_IO;
    tc_result("mixtral_with_a_template_without_experts_refused",
              st == CKE_ERR_UNSUPPORTED && strstr(e.msg, "the model uses 'n_expert' = 4, which the llama template does not implement"),
              "status %d: %s", st, e.msg);
    snprintf(dir, sizeof dir, "%s/mixtral_train", tc_tmp);
    cke_compile_opts t = {.out_dir = dir, .templates_dir = tc_tpl, .include_dir = tc_inc, .libk = tc_libk, .max_threads = 2,
                          .quiet = 1, .kv_type = kv_type, .train_batch = 2, .train_seq = 8};
    st = cke_compile(hf, &t, &e);
    char mc[PATH_MAX + 16];
    snprintf(mc, sizeof mc, "%s/model.c", dir);
    char *code = st ? NULL : tc_slurp(mc, NULL);
    tc_result("mixtral_training_compiles", !st && code && strstr(code, "cke_moe_bwd(kl, "), "status %d: %s", st, e.msg);
    free(code);
}

static void bad_input(void) {
    static const struct { const char *test, *fam, *edit, *expect; int64_t ctx; } bad[] = {
        /* Qwen2's sliding window (with max_window_layers) is not in the qwen2 template: named, not ignored */
        {"qwen2_sliding_window_refused", "qwen2", "set=use_sliding_window=true", "window", 0},
        /* dynamic NTK past its original context: HF changes the frequencies with the sequence length */
        {"rope_dynamic_beyond_original_refused", "llama_dynamic", "", "dynamic NTK rope scaling beyond its original context 128", 256},
        {"rope_scaling_unknown_refused", "llama3", "set=rope_scaling={\"rope_type\":\"ntk-by-parts\",\"factor\":4.0}",
         "ntk-by-parts", 0},
        {"longrope_factor_count", "phi3_longrope", "set=rope_scaling={\"rope_type\":\"longrope\",\"long_factor\":[1,2],\"short_factor\":[1,2]}",
         "2 long/short factors for 8 rotated pairs", 0},
        {"phi3_missing_fused_tensor", "phi3", "drop=model.layers.1.self_attn.qkv_proj.weight", "l1.attn_q", 0},
        {"gemma2_missing_post_norm", "gemma2", "drop=model.layers.2.post_feedforward_layernorm.weight", "l2.post_ffn_norm", 0},
        {"mixtral_missing_expert", "mixtral", "drop=model.layers.1.block_sparse_moe.experts.2.w3.weight",
         "'model.layers.1.block_sparse_moe.experts.2.w3.weight' is missing", 0},
        {"mixtral_more_used_than_experts", "mixtral", "set=num_experts_per_tok=5",
         "num_experts_per_tok = 5 with num_local_experts = 4", 0},
        {"mixtral_without_expert_count", "mixtral", "ablate=num_local_experts", "num_local_experts", 0},
        {"qwen3_moe_dense_layers_refused", "qwen3_moe", "set=mlp_only_layers=[1]", "dense MLP layers", 0},
        {"qwen3_moe_missing_expert", "qwen3_moe", "drop=model.layers.0.mlp.experts.5.down_proj.weight",
         "'model.layers.0.mlp.experts.5.down_proj.weight' is missing", 0},
        /* GLM-4.5: experts in a layer the config calls dense, a missing choice bias, groups that do not divide */
        {"glm4_moe_experts_in_dense_layer", "glm4_moe", "set=first_k_dense_replace=2", "is in a leading dense layer (first 2)", 0},
        {"glm4_moe_missing_choice_bias", "glm4_moe", "drop=model.layers.1.mlp.gate.e_score_correction_bias", "l1.exp_probs_b", 0},
        {"glm4_moe_unequal_groups", "glm4_moe", "set=n_group=3", "8 experts in 3 groups", 0},
        {"glm4_moe_no_shared_expert", "glm4_moe", "set=n_shared_experts=0", "n_shared_experts = 0", 0},
        {"glm4_moe_dense_beyond_layers", "glm4_moe", "set=first_k_dense_replace=9", "first_k_dense_replace = 9", 0},
        /* DeepSeek: V2's softmax router, value heads wider than the query/key heads, no latent rank */
        {"deepseek_v3_softmax_router_refused", "deepseek_v3", "set=scoring_func=\"softmax\"", "scoring_func 'softmax'", 0},
        {"deepseek_v3_wide_values_refused", "deepseek_v3", "set=v_head_dim=16", "v_head_dim 16: expected", 0},
        {"deepseek_v3_without_kv_lora_rank", "deepseek_v3", "ablate=kv_lora_rank", "needs kv_lora_rank", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char hf[PATH_MAX], dir[PATH_MAX], edit[256];
        snprintf(hf, sizeof hf, "%s/bad_%zu", tc_tmp, i);
        snprintf(dir, sizeof dir, "%s/bad_%zu_model", tc_tmp, i);
        snprintf(edit, sizeof edit, "%s", bad[i].edit);
        cke_err e = {0};
        if (run_py(hf, bad[i].fam, edit)) { tc_result(bad[i].test, 0, "reference script failed"); continue; }
        cke_status st = compile(hf, dir, bad[i].ctx, &e);
        tc_result(bad[i].test, st != CKE_OK && strstr(e.msg, bad[i].expect), "status %d, message '%s' should name %s", st, e.msg,
               bad[i].expect);
    }
    /* learned positions end at the table: a longer context is refused, naming the table */
    char hf[PATH_MAX], dir[PATH_MAX];
    snprintf(hf, sizeof hf, "%s/hf_gpt2", tc_tmp);
    snprintf(dir, sizeof dir, "%s/gpt2_ctx", tc_tmp);
    cke_err e = {0};
    if (!tc_have(hf)) run_py(hf, "gpt2", NULL);
    cke_status st = compile(hf, dir, 65, &e); /* n_positions is 64 */
    tc_result("gpt2_context_beyond_positions", st != CKE_OK && strstr(e.msg, "pos_embd"), "status %d, message '%s'", st, e.msg);

    moe_refusals();
}

/* Layer kinds in a template (src/ir/ir.c): GLM-4.5's template edited in ways that must be refused by
 * name, never compiled into a model that reads a value or a weight its layer's kinds leave out. */
static void layer_kind_templates(void) {
    char hf[PATH_MAX], tpl[PATH_MAX], from[PATH_MAX + 16], to[PATH_MAX + 32], dir[PATH_MAX];
    snprintf(hf, sizeof hf, "%s/hf_glm4_moe", tc_tmp);
    if (!tc_have(hf) && run_py(hf, "glm4_moe", NULL) != 0) { tc_result("layer_kind_templates", 0, "reference script failed"); return; }
    snprintf(from, sizeof from, "%s/glm4_moe.json", tc_tpl);
    char *orig = tc_slurp(from, NULL);
    static const struct { const char *test, *find, *repl, *expect; } ed[] = {
        {"layer_kind_unknown_refused", "\"kind\": \"dense\"}],\n    [\"up\"", "\"kind\": \"desne\"}],\n    [\"up\"",
         "node 'gate': \"kind\" must name one of \"layer_kinds\""},
        /* both definitions of q_rope would run in every layer */
        {"layer_kind_overlapping_definitions_refused", "\"no_qk_norm\": \"qk_norm == 0\"", "\"no_qk_norm\": \"1\"",
         "value 'l0.q_rope' is defined twice"},
        /* layer 1 of no kind: its experts' tensors belong to no node, and x reads an ffn_out nothing computed */
        {"layer_kind_layer_of_no_kind_refused", "\"moe\": \"layer >= first_k_dense\"", "\"moe\": \"layer >= first_k_dense + 1\"",
         "reads 'l1.ffn_out', which no node of layer 1's kinds computes"},
        /* a node of every layer reading a weight only dense layers have */
        {"layer_kind_absent_weight_read_refused", "[\"up\", \"linear\", \"ffn_in\", \"ffn_up\", {\"kind\": \"dense\"}]",
         "[\"up\", \"linear\", \"ffn_in\", \"ffn_up\"]", "reads weight 'l1.ffn_up', which layer 1's kinds leave out"},
        {"layer_kind_on_global_weight_refused", "\"output_norm\": [\"dim\"]", "\"output_norm\": {\"shape\": [\"dim\"], \"kind\": \"moe\"}",
         "weight 'output_norm': \"kind\" must name one of \"layer_kinds\" (layer weights only)"},
        {"layer_kind_bad_name_refused", "\"qk_norm\": \"qk_norm != 0\"", "\"qk norm\": \"qk_norm != 0\"", "layer kind 'qk norm'"},
    };
    for (size_t i = 0; i < sizeof ed / sizeof ed[0]; i++) {
        snprintf(tpl, sizeof tpl, "%s/kind_tpl_%zu", tc_tmp, i);
        mkdir(tpl, 0755);
        snprintf(to, sizeof to, "%s/glm4_moe.json", tpl);
        const char *at = orig ? strstr(orig, ed[i].find) : NULL;
        FILE *f = at ? fopen(to, "w") : NULL;
        if (!f) { tc_result(ed[i].test, 0, "cannot edit the template (pattern %s)", ed[i].find); continue; }
        fprintf(f, "%.*s%s%s", (int)(at - orig), orig, ed[i].repl, at + strlen(ed[i].find));
        fclose(f);
        snprintf(dir, sizeof dir, "%s/kind_model_%zu", tc_tmp, i);
        cke_err e = {0};
        cke_compile_opts o = {.out_dir = dir, .templates_dir = tpl, .include_dir = tc_inc, .libk = tc_libk, .max_threads = 2,
                              .quiet = 1, .kv_type = kv_type};
        cke_status st = cke_compile(hf, &o, &e);
        tc_result(ed[i].test, st != CKE_OK && strstr(e.msg, ed[i].expect), "status %d: '%s' should say %s", st, e.msg, ed[i].expect);
    }
    free(orig);
}

int main(int argc, char **argv) {
    const char *only = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    if (tc_setup("test-families")) return 1;
    static const char *const fams[] = {"gpt2", "qwen2", "qwen3", "gemma", "gemma2", "mistral", "phi3", "llama3",
                                       "llama_bias", "qwen3_bias", "gemma_gelu", "qwen2_yarn", "phi3_longrope",
                                       "llama_dynamic", "gemma3", "gemma3_swa3", "mixtral", "qwen3_moe", "qwen3_moe_norm",
                                       "olmoe", "qwen2_moe", "glm4_moe", "glm4_moe_plain",
                                       "deepseek_v3", "deepseek_v3_plain", "deepseek_v3_bias"};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        if (!only || !strcmp(only, fams[i])) family(fams[i]), family_kvf16(fams[i]);
    if (!only || !strcmp(only, "mixtral")) mixtral_quantized();
    if (!only || !strcmp(only, "gpt2_real")) gpt2_real();
    if (!only || !strcmp(only, "ablations")) ablations();
    if (!only || !strcmp(only, "bad")) bad_input();
    if (!only || !strcmp(only, "kinds")) layer_kind_templates();
    return tc_finish();
}
