/* Training-mode tests: the backward derived from the IR against PyTorch autograd and central
 * finite differences, AdamW steps against torch.optim.AdamW, gradient accumulation against a
 * larger batch, and (with the trainer) resume-after-kill and a real fine-tuning run.
 *
 *   test_train [--only NAME]
 * PyTorch references are written at test time by tests/torch/ref_llama.py (Debian's torch).
 * Ends with "N passed, N failed". */
#define _DEFAULT_SOURCE
#include "../common/tcommon.h"
#include "driver/compile.h"
#include "runtime/runner.h"
#include "train/state.h"
#include "train/trainer.h"
#include "tokenizer/tokenizer.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static int map_buf(const char *map, const char *name, const char *kind, char dtype[8], size_t *off, size_t *size);

static cke_status compile_train_p(const char *model, const char *out, int64_t B, int64_t T, int bf16, cke_err *e) {
    cke_compile_opts o = {.out_dir = out, .templates_dir = tc_tpl, .include_dir = tc_inc, .libk = tc_libk, .ctx = 64,
                          .max_threads = 2, .quiet = 1, .train_batch = B, .train_seq = T, .train_bf16 = bf16};
    return cke_compile(model, &o, e);
}
static cke_status compile_train(const char *model, const char *out, int64_t B, int64_t T, cke_err *e) {
    return compile_train_p(model, out, B, T, 0, e);
}

/* ref_train.bin: i32 B, T, V, n_params, steps; i32 tok[B*T], tgt[B*T]; f64 loss; then per param
 * i32 name_len, name, i64 numel, f32 grad[numel], f32 after[numel] */
typedef struct {
    char name[64];
    int64_t numel;
    const float *grad, *after;
} ref_param;

typedef struct {
    int32_t B, T, V, np, steps;
    const int32_t *tok, *tgt;
    double loss;
    ref_param *p;
    char *buf;
} ref_train;

static int load_ref(const char *path, ref_train *r) {
    size_t len = 0;
    memset(r, 0, sizeof *r);
    r->buf = tc_slurp(path, &len);
    if (!r->buf || len < 20) return -1;
    const char *p = r->buf;
    memcpy(&r->B, p, 4), memcpy(&r->T, p + 4, 4), memcpy(&r->V, p + 8, 4), memcpy(&r->np, p + 12, 4), memcpy(&r->steps, p + 16, 4);
    p += 20;
    int64_t R = (int64_t)r->B * r->T;
    r->tok = (const int32_t *)(const void *)p, p += R * 4;
    r->tgt = (const int32_t *)(const void *)p, p += R * 4;
    memcpy(&r->loss, p, 8), p += 8;
    r->p = calloc((size_t)r->np, sizeof(ref_param));
    for (int i = 0; i < r->np; i++) {
        int32_t nl;
        memcpy(&nl, p, 4), p += 4;
        memcpy(r->p[i].name, p, (size_t)nl), p += nl;
        memcpy(&r->p[i].numel, p, 8), p += 8;
        r->p[i].grad = (const float *)(const void *)p, p += r->p[i].numel * 4;
        r->p[i].after = (const float *)(const void *)p, p += r->p[i].numel * 4;
    }
    return (size_t)(p - r->buf) == len ? 0 : -1;
}

static const ref_param *find_param(const ref_train *r, const char *name) {
    for (int i = 0; i < r->np; i++)
        if (!strcmp(r->p[i].name, name)) return &r->p[i];
    return NULL;
}

/* max |a - b| / max |b| over a tensor (the data may be unaligned in the file: memcpy) */
static double rel_err(const float *got, const void *want_unaligned, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        float w;
        memcpy(&w, (const char *)want_unaligned + i * 4, 4);
        double d = fabs((double)got[i] - w);
        if (d > num) num = d;
        if (fabs(w) > den) den = fabs(w);
    }
    return den > 0 ? num / den : num;
}

/* Loss, every gradient and 5 AdamW steps of `model` against a PyTorch reference file; test
 * names start with `label`. *refp receives the loaded reference (the caller frees buf and p). */
static void torch_parity_on(const char *label, const char *model, const char *ref_path, const char *dir, ref_train *refp) {
    char nm[128];
    ref_train ref;
    if (load_ref(ref_path, &ref)) {
        snprintf(nm, sizeof nm, "%s_loss", label);
        tc_result(nm, 0, "bad %s", ref_path);
        free(ref.buf), free(ref.p);
        memset(refp, 0, sizeof *refp);
        return;
    }
    cke_err e = {0};
    cke_runner *r = NULL;
    if (compile_train(model, dir, ref.B, ref.T, &e) || cke_runner_open(dir, 2, &r, &e)) {
        snprintf(nm, sizeof nm, "%s_loss", label);
        tc_result(nm, 0, "compile/open: %s", e.msg);
        cke_runner_close(r);
        *refp = ref;
        return;
    }
    const ckm_api *api = r->api;
    const int64_t R = (int64_t)ref.B * ref.T;
    int ok = api->train_init && api->train_init(r->m) == 0;
    api->zero_grad(r->m);
    double loss = ok ? api->train_run(r->m, ref.tok, ref.tgt, 1.0f / (float)R, 1) / (double)R : NAN;
    snprintf(nm, sizeof nm, "%s_loss", label);
    tc_result(nm, ok && fabs(loss - ref.loss) <= 1e-5 * fabs(ref.loss), "loss %.8f, torch %.8f", loss,
           ref.loss);

    /* every parameter's gradient: float32 against float64, within 5e-5 of the tensor's largest
     * gradient (errors measured ~1e-6; a wrong rule is off by O(1)). A tensor whose true gradient
     * is zero (GPT-2's key bias: softmax ignores a shift shared by all keys) is measured against
     * 1e-3 of the model's largest gradient instead: float32 cancellation leaves ~3e-8 of it there
     * (measured), float64 ~1e-17; so such a tensor must stay within 5e-8 of the largest gradient. */
    char *g = api->state(r->m, 1), *w = api->state(r->m, 0);
    double worst = 0, gmax = 0;
    const char *worst_name = "";
    int missing = 0;
    for (int i = 0; i < ref.np; i++)
        for (int64_t k = 0; k < ref.p[i].numel; k++) {
            float v;
            memcpy(&v, (const char *)ref.p[i].grad + k * 4, 4);
            if (fabs(v) > gmax) gmax = fabs(v);
        }
    for (int i = 0; i < api->n_tensors; i++) {
        const ckm_tensor *t = &api->tensors[i];
        const ref_param *rp = find_param(&ref, t->name);
        if (!rp || rp->numel != t->numel) { missing++; continue; }
        double num = 0, den = 1e-3 * gmax;
        for (int64_t k = 0; k < t->numel; k++) {
            float v;
            memcpy(&v, (const char *)rp->grad + k * 4, 4);
            double d = fabs((double)((const float *)(g + t->offset))[k] - v);
            if (d > num) num = d;
            if (fabs(v) > den) den = fabs(v);
        }
        if (num / den > worst) worst = num / den, worst_name = t->name;
    }
    snprintf(nm, sizeof nm, "%s_grads", label);
    tc_result(nm, !missing && worst <= 5e-5, "%d tensors missing; worst relative gradient error %.3g in %s",
           missing, worst, worst_name);

    /* 5 AdamW steps (the first used the gradients above, like torch's loop) */
    for (int s = 1; s <= ref.steps; s++) {
        if (s > 1) {
            api->zero_grad(r->m);
            api->train_run(r->m, ref.tok, ref.tgt, 1.0f / (float)R, 1);
        }
        api->adamw(r->m, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, s, 1.0f);
    }
    /* Adam divides by sqrt(v): where a gradient is within a few orders of magnitude of eps, the
     * update is sensitive to float32 rounding of the gradient itself (a 1e-9 error on a 1e-8
     * gradient moves the step by 10% of lr). Those elements are compared with a bound that
     * scales with lr; every other element must agree to 1e-5 (measured ~1e-7). */
    worst = 0;
    double worst_small = 0;
    int64_t n_small = 0;
    for (int i = 0; i < api->n_tensors; i++) {
        const ckm_tensor *t = &api->tensors[i];
        const ref_param *rp = find_param(&ref, t->name);
        if (!rp) continue;
        for (int64_t k = 0; k < t->numel; k++) {
            float want, g0;
            memcpy(&want, (const char *)rp->after + k * 4, 4);
            memcpy(&g0, (const char *)rp->grad + k * 4, 4);
            double d = fabs((double)((const float *)(w + t->offset))[k] - want);
            if (fabs(g0) < 1e-6) { n_small++; if (d > worst_small) worst_small = d; continue; }
            if (d > worst) worst = d, worst_name = t->name;
        }
    }
    printf("    adamw: max diff %.3g (%s); %lld elements with |grad| < 1e-6, max diff %.3g\n", worst, worst_name,
           (long long)n_small, worst_small);
    snprintf(nm, sizeof nm, "%s_adamw5", label);
    tc_result(nm, worst <= 1e-5 && worst_small <= 1e-3 * ref.steps,
           "max |param - torch| after %d steps: %.3g (%s); %lld elements with |grad| < 1e-6: %.3g", ref.steps, worst,
           worst_name, (long long)n_small, worst_small);
    cke_runner_close(r);
    *refp = ref;
}

static void torch_parity(void) {
    char hf[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    snprintf(hf, sizeof hf, "%s/hf_train", tc_tmp);
    snprintf(dir, sizeof dir, "%s/hf_train_model", tc_tmp);
    if (tc_run_py("ref_llama.py", hf, "gqa", "train", NULL) != 0) { tc_result("train_torch_loss", 0, "reference script failed"); return; }
    snprintf(path, sizeof path, "%s/ref_train.bin", hf);
    ref_train ref;
    torch_parity_on("train_torch", hf, path, dir, &ref);
    if (!ref.buf) return;
    const int64_t R = (int64_t)ref.B * ref.T;
    cke_err e = {0};

    /* gradient accumulation: B=1 twice == B=2 once */
    char dir1[PATH_MAX];
    snprintf(dir1, sizeof dir1, "%s/hf_train_b1", tc_tmp);
    cke_runner *r2 = NULL, *r1 = NULL;
    if (compile_train(hf, dir1, 1, ref.T, &e) || cke_runner_open(dir1, 2, &r1, &e) || cke_runner_open(dir, 2, &r2, &e) ||
        r1->api->train_init(r1->m) || r2->api->train_init(r2->m)) {
        tc_result("train_grad_accumulation", 0, "setup: %s", e.msg);
    } else {
        r1->api->zero_grad(r1->m);
        r2->api->zero_grad(r2->m);
        double l1 = r1->api->train_run(r1->m, ref.tok, ref.tgt, 1.0f / (float)R, 1);
        l1 += r1->api->train_run(r1->m, ref.tok + ref.T, ref.tgt + ref.T, 1.0f / (float)R, 1);
        double l2 = r2->api->train_run(r2->m, ref.tok, ref.tgt, 1.0f / (float)R, 1);
        double gw = 0;
        const char *g1 = r1->api->state(r1->m, 1), *g2 = r2->api->state(r2->m, 1);
        for (int i = 0; i < r2->api->n_tensors; i++) {
            const ckm_tensor *t = &r2->api->tensors[i];
            double er = rel_err((const float *)(g1 + t->offset), g2 + t->offset, t->numel);
            if (er > gw) gw = er;
        }
        tc_result("train_grad_accumulation", fabs(l1 - l2) <= 1e-5 * fabs(l2) && gw <= 1e-5,
               "loss %.8f vs %.8f, worst relative gradient difference %.3g", l1, l2, gw);
    }
    cke_runner_close(r1);
    cke_runner_close(r2);
    free(ref.buf);
    free(ref.p);
}

/* Central differences of the whole model's loss (float32 forward) against the backward, on
 * elements of every tensor: eps 1e-2 keeps rounding noise (~1e-7 * loss / eps) well under the
 * 2e-3 absolute + 2% relative tolerance. */
static void finite_differences(void) {
    char hf[PATH_MAX], dir[PATH_MAX];
    snprintf(hf, sizeof hf, "%s/hf_train", tc_tmp);
    snprintf(dir, sizeof dir, "%s/hf_fd_model", tc_tmp);
    if (access(hf, R_OK) != 0) {
        if (tc_run_py("ref_llama.py", hf, "gqa", "train", NULL) != 0) { tc_result("train_finite_differences", 0, "reference script failed"); return; }
    }
    cke_err e = {0};
    cke_runner *r = NULL;
    if (compile_train(hf, dir, 1, 8, &e) || cke_runner_open(dir, 1, &r, &e) || r->api->train_init(r->m)) {
        tc_result("train_finite_differences", 0, "setup: %s", e.msg);
        cke_runner_close(r);
        return;
    }
    const ckm_api *api = r->api;
    int32_t tok[8], tgt[8];
    for (int i = 0; i < 8; i++) tok[i] = (int32_t)((11 * i + 5) % 97), tgt[i] = (int32_t)((13 * i + 2) % 97);
    api->zero_grad(r->m);
    api->train_run(r->m, tok, tgt, 1.0f, 1);
    float *w = (float *)api->state(r->m, 0);
    const float *g = (const float *)api->state(r->m, 1);
    int bad = 0, checked = 0;
    double worst = 0;
    for (int i = 0; i < api->n_tensors; i++) {
        const ckm_tensor *t = &api->tensors[i];
        for (int k = 0; k < 3; k++) {
            int64_t idx = (int64_t)((k * 7919 + i * 104729) % t->numel);
            float *p = (float *)((char *)w + t->offset) + idx;
            float keep = *p;
            const float eps = 1e-2f;
            *p = keep + eps;
            double lp = api->train_run(r->m, tok, tgt, 1.0f, 0);
            *p = keep - eps;
            double lm = api->train_run(r->m, tok, tgt, 1.0f, 0);
            *p = keep;
            double fd = (lp - lm) / (2.0 * eps), an = ((const float *)((const char *)g + t->offset))[idx];
            double d = fabs(fd - an);
            if (d > worst) worst = d;
            if (d > 2e-3 + 0.02 * fabs(fd)) {
                if (bad++ < 5) printf("    %s[%lld]: backward %.6g, central difference %.6g\n", t->name, (long long)idx, an, fd);
            }
            checked++;
        }
    }
    tc_result("train_finite_differences", bad == 0 && checked > 20, "%d of %d elements off (worst abs %.3g)", bad, checked,
           worst);
    cke_runner_close(r);
}


/* Every family template trains: the training forward's loss equals the cross-entropy of the
 * PyTorch reference logits (tests/torch/ref_families.py), the backward agrees with central
 * differences of that loss, and one AdamW step lowers it. */
/* The family's step compiled with --recompute: the loss and gradients of `r` bit for bit, with
 * the recomputed forward's temps off the carried gradient; and with --precision bf16 (its linear
 * inputs saved as bf16) plus --recompute: near fp32 over all gradients together, |g16 - g32| /
 * |g32| (L2; per tensor it says nothing where the true gradient is 0, as a key bias's is, and
 * fp32 holds rounding noise): measured at most 2.6% (OLMoE), 0.07% on the loss (DeepSeek-V3); the
 * bounds, 8% and 0.5%, catch a wrong or unwritten bf16 copy, off by ~100% in most weights. */
static void family_variants(const char *fam, const char *hf, int32_t S, const int32_t *tok, const int32_t *tgt, double loss,
                            cke_runner *r) {
    for (int bf16 = 0; bf16 < 2; bf16++) {
        char name[96], dir[PATH_MAX], path[PATH_MAX + 32], why[192] = "";
        snprintf(name, sizeof name, "train_step_%s_recompute%s", fam, bf16 ? "_bf16" : "");
        snprintf(dir, sizeof dir, "%s_rc%d", hf, bf16);
        cke_compile_opts o = {.out_dir = dir, .templates_dir = tc_tpl, .include_dir = tc_inc, .libk = tc_libk, .ctx = 64,
                              .max_threads = 2, .quiet = 1, .train_batch = 1, .train_seq = S, .train_bf16 = bf16,
                              .train_recompute = 1};
        cke_err e = {0};
        cke_runner *q = NULL;
        if (cke_compile(hf, &o, &e) || cke_runner_open(dir, 1, &q, &e) || q->api->train_init(q->m)) {
            tc_result(name, 0, "compile/open: %s", e.msg);
            cke_runner_close(q);
            continue;
        }
        q->api->zero_grad(q->m);
        double l2 = q->api->train_run(q->m, tok, tgt, 1.0f / (float)S, 1) / S, worst = 0, dn = 0, gn = 0;
        const char *worst_t = "";
        int ok = bf16 ? fabs(l2 - loss) <= 5e-3 * fabs(loss) : l2 == loss;
        for (int i = 0; i < r->api->n_tensors; i++) {
            const ckm_tensor *t = &r->api->tensors[i];
            const float *g1 = (const float *)(const void *)(r->api->state(r->m, 1) + t->offset),
                        *g2 = (const float *)(const void *)(q->api->state(q->m, 1) + t->offset);
            if (!bf16 && memcmp(g1, g2, (size_t)t->numel * 4) && !worst) worst = 1, worst_t = t->name;
            for (int64_t j = 0; j < t->numel; j++) dn += ((double)g2[j] - g1[j]) * ((double)g2[j] - g1[j]), gn += (double)g1[j] * g1[j];
        }
        if (bf16) worst = gn > 0 ? sqrt(dn / gn) : 1, worst_t = "all, L2";
        ok = ok && worst <= (bf16 ? 8e-2 : 0);
        /* no temp of the recompute plan overlaps the carried gradient */
        snprintf(path, sizeof path, "%s/memory_map.txt", dir);
        char *map = tc_slurp(path, NULL), dt[8];
        size_t co = 0, cs = 0, clash = 0;
        int have = map && map_buf(map, "d x", "grad", dt, &co, &cs);
        for (const char *l = map ? strstr(map, "\ntrain (") : NULL; have && l && *l; l = strchr(l + 1, '\n')) {
            char n1[64], k[16], d[8];
            size_t off, sz;
            if (sscanf(l + 1, "%63s %15s %7s %zu %zu", n1, k, d, &off, &sz) == 5 && !strcmp(k, "temp") && off < co + cs && co < off + sz)
                clash++, snprintf(why, sizeof why, "; temp %s overlaps the carried gradient", n1);
        }
        if (!have) snprintf(why, sizeof why, "; no carried gradient \"d x\" in the map");
        free(map);
        tc_result(name, ok && have && !clash, "loss %.9g vs %.9g; worst gradient %s %.3g%s", l2, loss, worst_t, worst, why);
        cke_runner_close(q);
    }
}

static void family_train_step(const char *fam) {
    char name[96], hf[PATH_MAX], dir[PATH_MAX], path[PATH_MAX];
    snprintf(name, sizeof name, "train_step_%s", fam);
    snprintf(hf, sizeof hf, "%s/fam_%s", tc_tmp, fam);
    snprintf(dir, sizeof dir, "%s/fam_%s_model", tc_tmp, fam);
    if (tc_run_py("ref_families.py", hf, fam, NULL) != 0) { tc_result(name, 0, "reference script failed (%s.log)", hf); return; }
    snprintf(path, sizeof path, "%s/ref.bin", hf);
    size_t len = 0;
    char *ref = tc_slurp(path, &len);
    int32_t T = 0, V = 0;
    if (ref && len >= 8) memcpy(&T, ref, 4), memcpy(&V, ref + 4, 4);
    if (!ref || T < 4 || len != 8 + (size_t)T * 4 + (size_t)T * (size_t)V * 4) { tc_result(name, 0, "bad ref.bin"); free(ref); return; }
    const int32_t S = T - 1; /* train on ids[0..S) predicting ids[1..S] */
    int32_t *tok = malloc((size_t)S * 4), *tgt = malloc((size_t)S * 4);
    memcpy(tok, ref + 8, (size_t)S * 4);
    memcpy(tgt, ref + 12, (size_t)S * 4);
    double want = 0;
    for (int t = 0; t < S; t++) {
        float row[4096];
        if (V > 4096) break;
        memcpy(row, ref + 8 + (size_t)T * 4 + (size_t)t * (size_t)V * 4, (size_t)V * 4);
        double mx = row[0], se = 0;
        for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
        for (int i = 0; i < V; i++) se += exp((double)row[i] - mx);
        want += mx + log(se) - row[tgt[t]];
    }
    want /= S;
    cke_err e = {0};
    cke_runner *r = NULL;
    if (compile_train(hf, dir, 1, S, &e) || cke_runner_open(dir, 1, &r, &e) || r->api->train_init(r->m)) {
        tc_result(name, 0, "compile/open: %s", e.msg);
        cke_runner_close(r), free(ref), free(tok), free(tgt);
        return;
    }
    const ckm_api *api = r->api;
    api->zero_grad(r->m);
    double loss = api->train_run(r->m, tok, tgt, 1.0f / (float)S, 1) / S;
    family_variants(fam, hf, S, tok, tgt, loss, r);
    /* central differences on a few elements of every tensor (as in train_finite_differences) */
    float *w = (float *)api->state(r->m, 0);
    const char *g = api->state(r->m, 1);
    int bad = 0, checked = 0;
    for (int i = 0; i < api->n_tensors; i++) {
        const ckm_tensor *t = &api->tensors[i];
        for (int k = 0; k < 2; k++) {
            int64_t idx = (int64_t)((k * 7919 + i * 104729) % t->numel);
            float *p = (float *)((char *)w + t->offset) + idx, keep = *p;
            if (strstr(t->name, "exp_probs_b")) {
                /* the router's choice bias (HF's e_score_correction_bias buffer) only picks experts: the loss is
                 * piecewise constant in it, its gradient 0 by definition, and a difference quotient measures
                 * only whether a step flips a choice */
                if (((const float *)(g + t->offset))[idx] != 0 && bad++ < 3)
                    printf("    %s %s[%lld]: backward %.6g, expected 0\n", fam, t->name, (long long)idx,
                           ((const float *)(g + t->offset))[idx]);
                checked++;
                continue;
            }
            /* mixture of experts: a step of 1e-2 in a weight every token's hidden state depends on moves
             * some token's router logits across a top-k boundary (the loss is piecewise smooth there);
             * 1e-3 stays inside, at ten times the rounding noise (still ~2e-4 against 2e-3 + 2%) */
            const float eps = strstr(fam, "moe") || !strcmp(fam, "mixtral") ? 1e-3f : 1e-2f;
            *p = keep + eps;
            double lp = api->train_run(r->m, tok, tgt, 1.0f, 0) / S;
            *p = keep - eps;
            double lm = api->train_run(r->m, tok, tgt, 1.0f, 0) / S;
            *p = keep;
            double fd = (lp - lm) / (2.0 * eps), an = ((const float *)(g + t->offset))[idx];
            if (fabs(fd - an) > 2e-3 + 0.02 * fabs(fd) && bad++ < 3)
                printf("    %s %s[%lld]: backward %.6g, central difference %.6g\n", fam, t->name, (long long)idx, an, fd);
            checked++;
        }
    }
    api->adamw(r->m, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.0f, 1, 1.0f);
    double after = api->train_run(r->m, tok, tgt, 1.0f, 0) / S;
    /* fp32 forward vs the float64 reference: 2e-5 relative on the loss */
    tc_result(name, fabs(loss - want) <= 2e-5 * fabs(want) && !bad && after < loss,
           "loss %.8f vs torch %.8f; %d of %d gradient elements off; loss after one step %.6f", loss, want, bad, checked,
           after);
    cke_runner_close(r);
    free(ref), free(tok), free(tgt);
}

/* The same on real trained weights: stories260K (llama2.c checkpoint, interleaved RoPE) against
 * tests/torch/ref_stories_train.py, on a batch of its own published greedy text. */
static void stories_parity(void) {
    char model[PATH_MAX], ids[PATH_MAX], ref[PATH_MAX], dir[PATH_MAX], log[PATH_MAX + 8];
    snprintf(model, sizeof model, "%s/stories260K/stories260K.bin", tc_models);
    snprintf(ids, sizeof ids, "%s/stories260K/reference_greedy_t0_256steps.ids.txt", tc_models);
    if (!tc_have(model) || !tc_have(ids)) { printf("SKIP train_stories260K (no %s)\n", model); return; }
    snprintf(ref, sizeof ref, "%s/stories_ref_train.bin", tc_tmp);
    snprintf(dir, sizeof dir, "%s/stories_train_model", tc_tmp);
    snprintf(log, sizeof log, "%s.log", ref);
    if (tc_spawn(NULL, log, log, (const char *const[]){"/usr/bin/python3", "tests/torch/ref_stories_train.py", model, ids, ref, NULL}) != 0) { tc_result("train_stories260K_loss", 0, "reference script failed (%s.log)", ref); return; }
    ref_train r;
    torch_parity_on("train_stories260K", model, ref, dir, &r);
    free(r.buf);
    free(r.p);
}

/* GPT-style: a random GPT-2 (LayerNorm with bias, learned positions, GELU, biases everywhere,
 * Conv1D tensors transposed and split on load) against tests/torch/ref_families.py's train mode. */
static void gpt2_parity(void) {
    char hf[PATH_MAX], dir[PATH_MAX], ref[PATH_MAX];
    snprintf(hf, sizeof hf, "%s/gpt2_train", tc_tmp);
    snprintf(dir, sizeof dir, "%s/gpt2_train_model", tc_tmp);
    snprintf(ref, sizeof ref, "%s/ref_train.bin", hf);
    if (tc_run_py("ref_families.py", hf, "gpt2", "train", NULL) != 0) { tc_result("train_gpt2_loss", 0, "reference script failed (%s.log)", hf); return; }
    ref_train r;
    torch_parity_on("train_gpt2", hf, ref, dir, &r);
    free(r.buf);
    free(r.p);
}

/* Mixture of experts: a random Mixtral (router renormalized over the top 2 of 4) and a Qwen2-MoE
 * (probabilities as they are, a sigmoid-gated shared expert) trained with HF's load-balancing
 * loss on (output_router_logits, router_aux_loss_coef 0.05): loss, every gradient (router and
 * each expert's matrices in cke's stacked layout) and 5 AdamW steps against autograd. */
static void moe_parity(const char *fam) {
    char hf[PATH_MAX], dir[PATH_MAX], ref[PATH_MAX], label[64];
    snprintf(hf, sizeof hf, "%s/%s_train", tc_tmp, fam);
    snprintf(dir, sizeof dir, "%s/%s_train_model", tc_tmp, fam);
    snprintf(ref, sizeof ref, "%s/ref_train.bin", hf);
    snprintf(label, sizeof label, "train_%s", fam);
    if (tc_run_py("ref_families.py", hf, fam, "train", NULL) != 0) {
        tc_result(label, 0, "reference script failed (%s.log)", hf);
        return;
    }
    ref_train r;
    torch_parity_on(label, hf, ref, dir, &r);
    free(r.buf);
    free(r.p);
}

/* Mixed precision (--precision bf16): stories260K fine-tuned for MP_STEPS AdamW steps in fp32 and in
 * bf16 by cke and by PyTorch (float32, and torch.autocast("cpu", torch.bfloat16)), on the same
 * batches (tests/torch/ref_mixed_train.py), the start of data/stories.txt. The band: at every
 * step the bf16 loss is within MP_BAND (relative) of cke's fp32 loss and of PyTorch's autocast
 * loss. Measured here over 200 steps (loss ~1.55): cke bf16 vs cke fp32 at most 0.41%, cke bf16 vs
 * autocast 1.9%, and PyTorch's own autocast vs its fp32 2.3% (autocast also rounds the attention
 * products and the elementwise ops on matmul outputs to bf16; cke keeps those in fp32). The band,
 * 4% (README), covers PyTorch's own bf16-vs-fp32 distance with margin. fp32 against PyTorch's
 * fp32 is far tighter (8e-7 measured; 2e-3 allowed), and bf16 must differ from fp32 at the first
 * step, else the bf16 path did not run. */
#define MP_STEPS 200
#define MP_BAND 0.04
static int mp_run(const char *model, const char *dir, int bf16, const int32_t *seq, int64_t n, int B, int T, float lr,
                  double *loss) {
    cke_err e = {0};
    cke_runner *r = NULL;
    if (compile_train_p(model, dir, B, T, bf16, &e) || cke_runner_open(dir, 2, &r, &e)) {
        printf("    compile/open %s: %s\n", dir, e.msg);
        cke_runner_close(r);
        return -1;
    }
    const ckm_api *api = r->api;
    if (!api->train_init || api->train_init(r->m) != 0) { cke_runner_close(r); return -1; }
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(B * T)), *tgt = malloc(sizeof(int32_t) * (size_t)(B * T));
    for (int s = 0; s < MP_STEPS; s++) {
        for (int b = 0; b < B; b++) {
            int64_t st = ((int64_t)s * 131 + (int64_t)b * 1009) % (n - T);
            for (int t = 0; t < T; t++) tok[b * T + t] = seq[st + t], tgt[b * T + t] = seq[st + t + 1];
        }
        api->zero_grad(r->m);
        loss[s] = api->train_run(r->m, tok, tgt, 1.0f / (float)(B * T), 1) / (double)(B * T);
        api->adamw(r->m, lr, 0.9f, 0.95f, 1e-8f, 0.1f, s + 1, 1.0f);
    }
    free(tok), free(tgt);
    cke_runner_close(r);
    return 0;
}

static void mixed_precision(void) {
    char model[PATH_MAX], ref[PATH_MAX], dir[PATH_MAX], log[PATH_MAX + 8], steps[16];
    snprintf(model, sizeof model, "%s/stories260K/stories260K.bin", tc_models);
    if (!tc_have(model)) { printf("SKIP train_bf16 (no %s)\n", model); return; }
    const int B = 4, T = 32;
    const float lr = 5e-4f;
    /* the data: the start of the repository's story corpus in the model's vocabulary, written for
     * the script as the published ids file is ("label: id id ...") */
    char tokp[PATH_MAX], idsp[PATH_MAX];
    snprintf(tokp, sizeof tokp, "%s/stories260K/tok512.bin", tc_models);
    snprintf(idsp, sizeof idsp, "%s/mixed_ids.txt", tc_tmp);
    size_t tl = 0, nid = 0;
    char *text = tc_slurp("data/stories.txt", &tl);
    cke_tok *tk = NULL;
    cke_err te = {0};
    int32_t *seq = NULL;
    cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
    if (!text || cke_tok_load(tokp, &tk, &te) || cke_tok_encode(tk, text, tl < 24000 ? tl : 24000, &eo, &seq, &nid, &te) ||
        nid < 1000) {
        tc_result("train_bf16_band", 0, "tokenizing data/stories.txt: %s", te.msg);
        free(text), free(seq), cke_tok_free(tk);
        return;
    }
    free(text), cke_tok_free(tk);
    FILE *fi = fopen(idsp, "w");
    if (fi) {
        fprintf(fi, "ids:");
        for (size_t i = 0; i < nid; i++) fprintf(fi, " %d", seq[i]);
        fprintf(fi, "\n");
        fclose(fi);
    }
    const int64_t n = (int64_t)nid;
    snprintf(ref, sizeof ref, "%s/mixed_ref.bin", tc_tmp);
    snprintf(log, sizeof log, "%s.log", ref);
    snprintf(steps, sizeof steps, "%d", MP_STEPS);
    if (tc_spawn(NULL, log, log, (const char *const[]){"/usr/bin/python3", "tests/torch/ref_mixed_train.py", model, idsp, ref,
                                                       steps, "4", "32", "5e-4", NULL}) != 0) {
        tc_result("train_bf16_band", 0, "reference script failed (%s)", log);
        free(seq);
        return;
    }
    size_t len = 0;
    char *buf = tc_slurp(ref, &len);
    int32_t ns = 0;
    if (buf && len >= 4) memcpy(&ns, buf, 4);
    if (!buf || ns != MP_STEPS || len != 4 + 2 * sizeof(double) * MP_STEPS) {
        tc_result("train_bf16_band", 0, "bad %s", ref);
        free(buf), free(seq);
        return;
    }
    double tf[MP_STEPS], tb[MP_STEPS], cf[MP_STEPS], cb[MP_STEPS];
    memcpy(tf, buf + 4, sizeof tf), memcpy(tb, buf + 4 + sizeof tf, sizeof tb);
    free(buf);
    snprintf(dir, sizeof dir, "%s/mixed_fp32", tc_tmp);
    int ok = mp_run(model, dir, 0, seq, n, B, T, lr, cf) == 0;
    snprintf(dir, sizeof dir, "%s/mixed_bf16", tc_tmp);
    ok = ok && mp_run(model, dir, 1, seq, n, B, T, lr, cb) == 0;
    free(seq);
    double d32 = 0, dff = 0, dfb = 0, dtb = 0, dtt = 0;
    for (int s = 0; ok && s < MP_STEPS; s++) {
        double a = fabs(cf[s] - tf[s]) / tf[s], b = fabs(cb[s] - cf[s]) / cf[s], c = fabs(cb[s] - tb[s]) / tb[s];
        double d = fabs(tb[s] - tf[s]) / tf[s];
        if (a > d32) d32 = a;
        if (b > dfb) dfb = b;
        if (c > dtb) dtb = c;
        if (d > dtt) dtt = d;
    }
    dff = ok ? fabs(cb[0] - cf[0]) / cf[0] : 0;
    if (ok) /* the measured distances, for the record (README's band) */
        printf("    mixed precision, %d steps, max relative loss distance: cke fp32 vs torch fp32 %.2e, cke bf16 vs cke fp32 %.2e, "
               "cke bf16 vs torch autocast %.2e, autocast vs torch fp32 %.2e; losses first %.4f, last fp32 %.4f bf16 %.4f "
               "autocast %.4f\n", MP_STEPS, d32, dfb, dtb, dtt, cf[0], cf[MP_STEPS - 1], cb[MP_STEPS - 1], tb[MP_STEPS - 1]);
    tc_result("train_bf16_fp32_vs_torch", ok && d32 <= 2e-3, "cke fp32 vs PyTorch fp32 over %d steps: at most %.2e relative "
              "(first %.6f / %.6f, last %.6f / %.6f)", MP_STEPS, d32, cf[0], tf[0], cf[MP_STEPS - 1], tf[MP_STEPS - 1]);
    tc_result("train_bf16_ran", ok && dff > 1e-6, "bf16 vs fp32 at the first step: %.2e relative (0: the bf16 path did not run)", dff);
    tc_result("train_bf16_band", ok && dfb <= MP_BAND && dtb <= MP_BAND,
              "over %d steps, relative: cke bf16 vs cke fp32 at most %.2e, vs PyTorch autocast bf16 %.2e (band %.0e; "
              "autocast vs PyTorch fp32 %.2e); last losses fp32 %.5f, bf16 %.5f, autocast %.5f", MP_STEPS, dfb, dtb, MP_BAND, dtt,
              cf[MP_STEPS - 1], cb[MP_STEPS - 1], tb[MP_STEPS - 1]);
}

static cke_train_opts base_opts(const char *out, const char *data) {
    static char model[PATH_MAX], tok[PATH_MAX];
    snprintf(model, sizeof model, "%s/stories260K/stories260K.bin", tc_models);
    snprintf(tok, sizeof tok, "%s/stories260K/tok512.bin", tc_models);
    /* fine-tuning a trained model: a small learning rate, else the first steps undo what it knows */
    cke_train_opts o = {.model = model, .tokenizer = tok, .data = data, .out = out, .val_frac = 0.1, .batch = 4,
                        .seq = 64, .steps = 16, .accum = 2, .warmup = 2, .eval_every = 8, .eval_batches = 8,
                        .save_every = 4, .lr = 2e-4f, .min_lr = 1e-5f, .wd = 0.1f, .clip = 1.0f, .beta1 = 0.9f,
                        .beta2 = 0.95f, .eps = 1e-8f, .seed = 3, .threads = 2, .quiet = 1,
                        .templates_dir = tc_tpl, .include_dir = tc_inc, .libk = tc_libk};
    return o;
}

/* the "step N loss X" lines of a run's log, in order */
static int read_losses(const char *out, char lines[][96], int max) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/log.txt", out);
    FILE *f = fopen(path, "r");
    int n = 0;
    char buf[256];
    while (f && n < max && fgets(buf, sizeof buf, f))
        if (strstr(buf, " loss ") && !strstr(buf, "val_loss")) {
            char *ms = strstr(buf, " ms "); /* the step's wall time differs between runs */
            if (ms) *ms = 0;
            snprintf(lines[n++], 96, "%.95s", buf);
        }
    if (f) fclose(f);
    return n;
}

static int same_file(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *x = tc_slurp(a, &la), *y = tc_slurp(b, &lb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x), free(y);
    return same;
}

/* A real run: fine-tuning stories260K on a story text lowers the validation loss; then the
 * same run interrupted (SIGINT-style stop, and a kill with no final checkpoint) and resumed
 * gives the same losses and bit-identical weights. */
/* One line of memory_map.txt's training table: "  NAME KIND DTYPE OFFSET SIZE [LIFETIME]" (NAME may
 * be "d NAME"); 1 when found. */
static int map_buf(const char *map, const char *name, const char *kind, char dtype[8], size_t *off, size_t *size) {
    const char *t = strstr(map, "\ntrain (");
    for (const char *l = t; l && *l; l = strchr(l + 1, '\n')) {
        char nm[64] = "", k[16] = "", d[8] = "", o[32] = "";
        const char *p = l + 1;
        int dn = !strncmp(p, "  d ", 4); /* a gradient: "d NAME" */
        if (sscanf(p + (dn ? 4 : 0), "%63s %15s %7s %31s %zu", nm, k, d, o, size) != 5) continue;
        char full[72];
        snprintf(full, sizeof full, "%s%s", dn ? "d " : "", nm);
        if (strcmp(full, name) || strcmp(k, kind)) continue;
        snprintf(dtype, 8, "%s", d);
        *off = strcmp(o, "-") ? (size_t)strtoull(o, NULL, 10) : 0;
        return 1;
    }
    return 0;
}

/* Activation checkpointing (--recompute) gives the loss and gradients of saving every layer, bit
 * for bit, in fp32 and in bf16 mixed precision (whose linear inputs are saved as bf16); its plan
 * keeps the recomputed forward's temps off the carried gradient; the bf16 plan saves in bf16
 * exactly the values only a weight gradient reads. */
static void recompute_and_bf16_saves(void) {
    char model[PATH_MAX];
    snprintf(model, sizeof model, "%s/stories260K/stories260K.bin", tc_models);
    if (!tc_have(model)) { printf("SKIP train_recompute (no %s)\n", model); return; }
    const int B = 3, T = 64, R = B * T;
    int32_t *tok = malloc(sizeof(int32_t) * R), *tgt = malloc(sizeof(int32_t) * R);
    for (int i = 0; i < R; i++) tok[i] = (int32_t)((i * 37 + 11) % 512), tgt[i] = i % 17 == 5 ? -1 : (int32_t)((i * 53 + 7) % 512);
    for (int bf16 = 0; bf16 < 2; bf16++) {
        char dirs[2][PATH_MAX], nm[64];
        cke_runner *r[2] = {NULL, NULL};
        double loss[2] = {0, 0};
        cke_err e = {0};
        int ok = 1;
        for (int rc = 0; rc < 2 && ok; rc++) {
            snprintf(dirs[rc], sizeof dirs[rc], "%s/recompute_%d_%d", tc_tmp, bf16, rc);
            cke_compile_opts o = {.out_dir = dirs[rc], .templates_dir = tc_tpl, .include_dir = tc_inc, .libk = tc_libk, .ctx = 64,
                                  .max_threads = 2, .quiet = 1, .train_batch = B, .train_seq = T, .train_bf16 = bf16,
                                  .train_recompute = rc};
            ok = !cke_compile(model, &o, &e) && !cke_runner_open(dirs[rc], 2, &r[rc], &e) && !r[rc]->api->train_init(r[rc]->m);
            if (!ok) break;
            r[rc]->api->zero_grad(r[rc]->m);
            loss[rc] = r[rc]->api->train_run(r[rc]->m, tok, tgt, 1.0f / (float)R, 1);
        }
        int same = ok && loss[0] == loss[1], bad = -1;
        for (int i = 0; ok && i < r[0]->api->n_tensors; i++) {
            const ckm_tensor *t = &r[0]->api->tensors[i];
            if (memcmp(r[0]->api->state(r[0]->m, 1) + t->offset, r[1]->api->state(r[1]->m, 1) + t->offset, (size_t)t->numel * 4)) {
                same = 0, bad = i;
                break;
            }
        }
        snprintf(nm, sizeof nm, "train_recompute_same_%s", bf16 ? "bf16" : "fp32");
        tc_result(nm, same, "%s: loss %.9g vs %.9g with recompute; first gradient that differs: %s", ok ? "ran" : e.msg, loss[0],
                  loss[1], bad >= 0 ? r[0]->api->tensors[bad].name : "none");
        cke_runner_close(r[0]);
        cke_runner_close(r[1]);

        /* the recompute plan: no temp overlaps the carried gradient ("d x": live while a layer's
         * forward runs again) */
        char path[PATH_MAX + 32], dt[8];
        snprintf(path, sizeof path, "%s/memory_map.txt", dirs[1]);
        char *map = tc_slurp(path, NULL);
        size_t co = 0, cs = 0, clash = 0, ntemp = 0;
        int have = map && map_buf(map, "d x", "grad", dt, &co, &cs);
        for (const char *l = map ? strstr(map, "\ntrain (") : NULL; l && *l; l = strchr(l + 1, '\n')) {
            char n1[64], k[16], d[8];
            size_t o, sz;
            if (sscanf(l + 1, "%63s %15s %7s %zu %zu", n1, k, d, &o, &sz) == 5 && !strcmp(k, "temp")) {
                ntemp++;
                if (o < co + cs && co < o + sz) clash++;
            }
        }
        snprintf(nm, sizeof nm, "train_recompute_temps_clear_%s", bf16 ? "bf16" : "fp32");
        tc_result(nm, have && ntemp > 0 && !clash, "carried gradient at %zu+%zu, %zu temps, %zu overlap it", co, cs, ntemp, clash);
        if (bf16) { /* linear inputs only a weight gradient reads: bf16 copies in the slab, fp32 temps */
            static const char *b16[] = {"attn_in", "ffn_in", "act"};
            size_t o, sz, sz32;
            int good = 1;
            char why[160] = "";
            for (int i = 0; i < 3 && good; i++) {
                good = map_buf(map, b16[i], "slab", dt, &o, &sz) && !strcmp(dt, "bf16") && map_buf(map, b16[i], "temp", dt, &o, &sz32) &&
                       !strcmp(dt, "f32") && sz * 2 == sz32;
                if (!good) snprintf(why, sizeof why, "%s: not a bf16 slab copy of half its fp32 temp's size", b16[i]);
            }
            /* the attention output: its own backward reads it (D = rowsum(dO * O)), so fp32 */
            if (good && !(map_buf(map, "attn", "slab", dt, &o, &sz) && !strcmp(dt, "f32")))
                good = 0, snprintf(why, sizeof why, "attn is not saved fp32");
            snprintf(path, sizeof path, "%s/model.c", dirs[1]);
            char *code = tc_slurp(path, NULL);
            if (good && !(code && strstr(code, "cke_linear_bwd_b16(") && strstr(code, "kt->round_bf16(")))
                good = 0, snprintf(why, sizeof why, "model.c does not read the bf16 copies");
            free(code);
            tc_result("train_bf16_saves_linear_inputs", good, "%s", good ? "attn_in, ffn_in, act bf16; attn fp32" : why);
        }
        free(map);
    }
    free(tok), free(tgt);
}

static void trainer_runs(void) {
    char data[PATH_MAX], a[PATH_MAX], b[PATH_MAX], c[PATH_MAX], pa[PATH_MAX];
    /* the repository's own story corpus (data/README.md) */
    snprintf(data, sizeof data, "%s", getenv("CKE_TRAIN_DATA") ? getenv("CKE_TRAIN_DATA") : "data/stories.txt");
    snprintf(pa, sizeof pa, "%s/stories260K/stories260K.bin", tc_models);
    if (access(pa, R_OK) != 0) { printf("SKIP trainer runs (no %s)\n", pa); return; }
    snprintf(a, sizeof a, "%s/run_a", tc_tmp);
    snprintf(b, sizeof b, "%s/run_b", tc_tmp);
    snprintf(c, sizeof c, "%s/run_c", tc_tmp);
    cke_err e = {0};
    cke_train_result ra, rb, rc;
    cke_train_opts o = base_opts(a, data);
    cke_status s = cke_train(&o, &ra, &e);
    /* measured: 2.04 -> 1.95 over 16 steps on data/stories.txt; 0.03 leaves room for noise */
    tc_result("train_finetune_lowers_val_loss", !s && ra.steps_done == 16 && ra.last_val_loss < ra.first_val_loss - 0.03,
           "status %d (%s), steps %lld, validation loss %.4f -> %.4f", s, e.msg, (long long)ra.steps_done,
           ra.first_val_loss, ra.last_val_loss);

    /* stop after 7 steps as on SIGINT (checkpoint written), resume to 16 */
    o = base_opts(b, data);
    o.stop_after = 7;
    s = cke_train(&o, &rb, &e);
    o.stop_after = 0;
    o.resume = 1;
    cke_status s2 = s ? s : cke_train(&o, &rb, &e);
    /* killed after 10 steps: the last checkpoint is step 8; resume redoes steps 9 and 10 */
    o = base_opts(c, data);
    o.crash_after = 10;
    cke_status s3 = cke_train(&o, &rc, &e);
    o.crash_after = 0;
    o.resume = 1;
    cke_status s4 = s3 ? s3 : cke_train(&o, &rc, &e);
    static char la[32][96], lb[32][96], lc[32][96];
    int na = read_losses(a, la, 32), nb = read_losses(b, lb, 32), nc = read_losses(c, lc, 32);
    int same_b = na == 16 && nb == 16, same_c = na == 16 && nc == 18; /* c logs steps 9, 10 twice */
    for (int i = 0; same_b && i < 16; i++) same_b = !strcmp(la[i], lb[i]);
    for (int i = 0; same_c && i < 10; i++) same_c = !strcmp(la[i], lc[i]);
    for (int i = 8; same_c && i < 16; i++) same_c = !strcmp(la[i], lc[i + 2]);
    char fa[PATH_MAX], fb[PATH_MAX], fc[PATH_MAX];
    snprintf(fa, sizeof fa, "%s/checkpoint/model.bin", a);
    snprintf(fb, sizeof fb, "%s/checkpoint/model.bin", b);
    snprintf(fc, sizeof fc, "%s/checkpoint/model.bin", c);
    tc_result("train_resume_after_stop", !s && !s2 && same_b && same_file(fa, fb),
           "status %d/%d (%s); %d vs %d loss lines equal=%d; final weights equal=%d", s, s2, e.msg, na, nb, same_b,
           same_file(fa, fb));
    tc_result("train_resume_after_kill", !s3 && !s4 && same_c && same_file(fa, fc),
           "status %d/%d (%s); %d vs %d loss lines equal=%d; final weights equal=%d", s3, s4, e.msg, na, nc, same_c,
           same_file(fa, fc));

    /* a finished run resumed says so and does nothing; a different seed is refused */
    o = base_opts(a, data);
    o.resume = 1;
    s = cke_train(&o, &rb, &e);
    tc_result("train_resume_finished", !s && rb.finished && rb.steps_done == 16, "status %d (%s), finished %d", s, e.msg,
              rb.finished);
    o.seed = 4;
    s = cke_train(&o, &rb, &e);
    tc_result("train_resume_other_seed_refused", s == CKE_ERR_ARG && strstr(e.msg, "--seed 4 differs"), "status %d: %s", s,
              e.msg);

    /* the checkpoint is a model cke compiles and runs */
    char dir[PATH_MAX], tk[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/ck_model", tc_tmp);
    snprintf(tk, sizeof tk, "%s/checkpoint/tokenizer.bin", a);
    cke_compile_opts co = {.out_dir = dir, .tokenizer = tk, .templates_dir = tc_tpl, .include_dir = tc_inc, .libk = tc_libk,
                           .quiet = 1};
    cke_runner *r = NULL;
    s = cke_compile(fa, &co, &e);
    if (!s) s = cke_runner_open(dir, 1, &r, &e);
    int ok = !s && r->api->prefill(r->m, (const int32_t[]){1}, 1) == 0;
    tc_result("train_checkpoint_compiles_and_runs", ok, "status %d: %s", s, e.msg);
    cke_runner_close(r);
}

/* trainer.json validation (src/train/state.c) and option checks, without training: a bad field
 * fails with a message naming it; a run's state survives writing and reading back exactly. */
static void state_checks(void) {
    cke_train_state s = {.step = 3, .epoch = 1, .index = 2, .batch = 2, .seq = 16, .accum = 2, .steps = 10, .warmup = 2,
                         .threads = 2, .lr = 1e-3, .min_lr = 1e-4, .wd = 0.1, .clip = 1, .beta1 = 0.9, .beta2 = 0.95,
                         .eps = 1e-8, .val_frac = 0.1, .seed = 9007199254740992ull, .data_bytes = 123,
                         .data_hash = 0xfedcba9876543210ull, .train_windows = 10};
    snprintf(s.model_file, sizeof s.model_file, "model.gguf");
    snprintf(s.data, sizeof s.data, "a \"quoted\" path");
    snprintf(s.isa, sizeof s.isa, "avx2");
    char *txt = cke_train_state_format(&s);
    cke_train_state t;
    cke_err e = {0};
    cke_status st = txt ? cke_train_state_parse(txt, strlen(txt), &t, &e) : CKE_ERR_NOMEM;
    tc_result("train_state_roundtrip", !st && t.seed == s.seed && t.index == 2 && t.epoch == 1 && t.lr == s.lr &&
              t.data_hash == s.data_hash && !strcmp(t.data, s.data), "status %d: %s", st, e.msg);
    static const struct { const char *name, *from, *to, *want; } bad[] = {
        {"train_state_index_negative", "\"index\": 2", "\"index\": -7", "\"index\": -7 is not in [0, 10]"},
        {"train_state_step_negative", "\"step\": 3", "\"step\": -1e18", "\"step\": -1e+18 is not in [0, 10]"},
        {"train_state_step_fraction", "\"step\": 3", "\"step\": 3.5", "\"step\": 3.5 is not an integer"},
        {"train_state_position", "\"step\": 3", "\"step\": 4", "is not where step 4 ends (epoch 1, index 6"},
        {"train_state_lr_string", "\"lr\": 0.001", "\"lr\": \"x\"", "\"lr\" is not a number"},
    };
    for (size_t k = 0; txt && k < sizeof bad / sizeof bad[0]; k++) {
        char buf[4096], *at = NULL;
        snprintf(buf, sizeof buf, "%s", txt);
        /* the writer separates key and value with ":\t" */
        char key[64];
        snprintf(key, sizeof key, "%s", bad[k].from);
        char *colon = strchr(key, ':');
        *colon = 0;
        at = strstr(buf, key);
        char *end = at ? strpbrk(at, ",\n") : NULL;
        int ok = 0;
        if (at && end) {
            char out[4096];
            snprintf(out, sizeof out, "%.*s%s%s", (int)(at - buf), buf, bad[k].to, end);
            memset(&e, 0, sizeof e);
            ok = cke_train_state_parse(out, strlen(out), &t, &e) != CKE_OK && strstr(e.msg, bad[k].want);
        }
        tc_result(bad[k].name, ok, "message: %s (want ...%s...)", e.msg, bad[k].want);
    }
    free(txt);
    /* options: NaN and out-of-range values are refused by the library too, naming the flag */
    cke_train_opts o = base_opts("/nonexistent/out", "data/stories.txt");
    cke_train_result r;
    o.val_frac = NAN;
    st = cke_train(&o, &r, &e);
    tc_result("train_opts_val_frac_nan", st == CKE_ERR_ARG && strstr(e.msg, "--val-frac"), "status %d: %s", st, e.msg);
    o = base_opts("/nonexistent/out", "data/stories.txt");
    o.lr = INFINITY;
    st = cke_train(&o, &r, &e);
    tc_result("train_opts_lr_inf", st == CKE_ERR_ARG && strstr(e.msg, "--lr"), "status %d: %s", st, e.msg);
}

int main(int argc, char **argv) {
    const char *only = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    if (tc_setup("test-train")) return 1;
    if (!only || !strcmp(only, "torch")) torch_parity();
    if (!only || !strcmp(only, "stories")) stories_parity();
    if (!only || !strcmp(only, "gpt2")) gpt2_parity();
    if (!only || !strcmp(only, "moe")) {
        static const char *const moe[] = {"mixtral", "qwen2_moe", "olmoe", "qwen3_moe", "qwen3_moe_norm", "glm4_moe",
                                          "glm4_moe_plain", "deepseek_v3", "deepseek_v3_plain"};
        for (size_t i = 0; i < sizeof moe / sizeof moe[0]; i++) moe_parity(moe[i]);
    }
    if (!only || !strcmp(only, "bf16")) mixed_precision();
    if (!only || !strcmp(only, "recompute")) recompute_and_bf16_saves();
    if (!only || !strcmp(only, "fd")) finite_differences();
    if (!only || !strcmp(only, "state")) state_checks();
    if (!only || !strcmp(only, "trainer")) trainer_runs();
    static const char *const fams[] = {"gpt2", "qwen2", "qwen3", "gemma", "gemma2", "mistral", "phi3", "llama3", "gemma3", "gemma3_swa3",
                                       "mixtral", "qwen3_moe", "qwen3_moe_norm", "olmoe", "qwen2_moe", "glm4_moe",
                                       "glm4_moe_plain", "deepseek_v3", "deepseek_v3_plain"};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        if (!only || !strcmp(only, "families") || !strcmp(only, fams[i])) family_train_step(fams[i]);
    return tc_finish();
}
