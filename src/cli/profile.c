/* cke profile: every op of the generated code timed, with its kernel, FLOPs, bytes and place on
 * the roofline measured in the same run (docs/PROFILE.md).
 *
 *   DIR/model.c --cc -DCKM_PROFILE--> OUT/model_prof.so   (model.so itself has no timing code)
 *   prefill of the prompt, N greedy decode steps, each op reported to runtime/profile.c
 *   -> OUT/profile.json, OUT/trace.json, and the top ops on stdout */
#define _DEFAULT_SOURCE /* realpath */
#include "cli/profile.h"

#include "cli/cache.h"
#include "cli/target.h"
#include "cli/util.h"

#include "../../bench/machine.h"
#include "cke/kernels.h"
#include "codegen/codegen.h"
#include "driver/compile.h"
#include "report/report.h"
#include "util/fs.h"
#include "runtime/profile.h"
#include "runtime/runner.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define C "profile"

typedef struct {
    const char *target, *prompt, *out, *data;
    int64_t n_gen, threads, steps, max_events, prompt_tokens, batch, seq;
    int train, overhead, quick;
    int bf16; /* --precision bf16 (training) */
    int kv_type; /* --kv-type, -1: not given */
} prof_args;

static int usage(int help) {
    fprintf(help ? stdout : stderr,
            "usage: cke profile DIR|MODEL -p PROMPT [-n N] [-o OUTDIR]           prefill + N decode steps, per op\n"
            "       cke profile DIR|MODEL --train --data FILE.txt [--steps K]    forward, backward, optimizer\n"
            "  -n N                 decode steps (default 16)\n"
            "  --prompt-tokens N    a synthetic prompt of N token ids instead of -p (no tokenizer needed)\n"
            "  -o OUTDIR            where profile.json and trace.json go (default ./cke-profile); model_prof.so is\n"
            "                       built there from DIR/model.c with -DCKM_PROFILE (model.so stays untouched)\n"
            "  -t, --threads N      threads (default: all cores)\n"
            "  --kv-type T          KV cache type to compile MODEL with: f16 (default), f32 or q8_0\n"
            "  --max-events N       trace.json holds the first N op calls (default 20000); all are summed\n"
            "  --train              training: --data FILE.txt, --steps K (default 4), --batch B (4), --seq T (64),\n"
            "                       --precision fp32|bf16 (fp32; bf16: cke train's mixed precision)\n"
            "  --overhead           also time the same decode with the unprofiled model.so and print the cost\n"
            "  --quick              shorter machine measurement (tests)\n"
            "Every op is timed on the main thread around the call (its kernels' threads run inside it).\n");
    return help ? 0 : 2;
}

static int parse(int argc, char **argv, prof_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        int rc = 0;
        if (cke_cli_is_help(f)) return usage(1) == 0 ? 1 : 2;
        if (!strcmp(f, "-p") || !strcmp(f, "--prompt")) rc = cke_cli_opt_str(C, argc, argv, &i, &a->prompt);
        else if (!strcmp(f, "-o")) rc = cke_cli_opt_str(C, argc, argv, &i, &a->out);
        else if (!strcmp(f, "--data")) rc = cke_cli_opt_str(C, argc, argv, &i, &a->data);
        else if (!strcmp(f, "-n")) rc = cke_cli_opt_i64(C, argc, argv, &i, 0, 1 << 20, "a token count (0-1048576)", &a->n_gen);
        else if (!strcmp(f, "--prompt-tokens"))
            rc = cke_cli_opt_i64(C, argc, argv, &i, 1, 1 << 20, "a token count (1-1048576)", &a->prompt_tokens);
        else if (!strcmp(f, "--steps")) rc = cke_cli_opt_i64(C, argc, argv, &i, 1, 1 << 20, "a step count (1-1048576)", &a->steps);
        else if (!strcmp(f, "-t") || !strcmp(f, "--threads"))
            rc = cke_cli_opt_i64(C, argc, argv, &i, 1, 1024, "a thread count (1-1024)", &a->threads);
        else if (!strcmp(f, "--max-events"))
            rc = cke_cli_opt_i64(C, argc, argv, &i, 0, 10000000, "an event count (0-10000000)", &a->max_events);
        else if (!strcmp(f, "--batch")) rc = cke_cli_opt_i64(C, argc, argv, &i, 1, 4096, "a batch size (1-4096)", &a->batch);
        else if (!strcmp(f, "--seq")) rc = cke_cli_opt_i64(C, argc, argv, &i, 2, 1 << 16, "a sequence length (2-65536)", &a->seq);
        else if (!strcmp(f, "--kv-type")) rc = cke_cli_opt_kv(C, argc, argv, &i, &a->kv_type);
        else if (!strcmp(f, "--train")) a->train = 1;
        else if (!strcmp(f, "--precision")) {
            const char *v = NULL;
            rc = cke_cli_opt_str(C, argc, argv, &i, &v);
            if (!rc && strcmp(v, "fp32") && strcmp(v, "bf16")) {
                fprintf(stderr, "cke profile: --precision %s: fp32 or bf16\n", v);
                return 2;
            }
            if (!rc) a->bf16 = !strcmp(v, "bf16");
        }
        else if (!strcmp(f, "--overhead")) a->overhead = 1;
        else if (!strcmp(f, "--quick")) a->quick = 1;
        else if (f[0] == '-' && f[1]) return cke_cli_unknown(C, f);
        else if (!a->target) a->target = f;
        else return cke_cli_unknown(C, f);
        if (rc) return rc;
    }
    if (!a->target) {
        fprintf(stderr, "cke profile: no model given\n");
        return usage(0);
    }
    if (a->bf16 && !a->train) {
        fprintf(stderr, "cke profile: --precision is for --train\n");
        return 2;
    }
    if (a->train && !a->data) {
        fprintf(stderr, "cke profile: --train needs --data FILE.txt\n");
        return 2;
    }
    if (!a->train && !a->prompt == !a->prompt_tokens) {
        fprintf(stderr, "cke profile: %s\n", a->prompt ? "-p and --prompt-tokens exclude each other" : "no prompt given (-p PROMPT)");
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ the model's facts */

static int64_t shape_numel(const char *s) {
    int64_t n = 1;
    for (const char *c = s; c && *c;) {
        if (*c >= '0' && *c <= '9') {
            char *e;
            n *= strtoll(c, &e, 10);
            c = e;
        } else c++;
    }
    return n;
}

/* n_layers, dim, params from DIR/ir.json; source from cke-model.txt; weights from weights.bin */
static void model_facts(const char *dir, cke_prof_info *in, char *source, size_t ns) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/ir.json", dir);
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1)) &&
        fread(buf, 1, (size_t)len, f) == (size_t)len) {
        buf[len] = 0;
        cJSON *j = cJSON_Parse(buf);
        const cJSON *hp = cJSON_GetObjectItemCaseSensitive(j, "hparams"), *vals = cJSON_GetObjectItemCaseSensitive(j, "values");
        const cJSON *nl = cJSON_GetObjectItemCaseSensitive(j, "n_layer"), *dim = cJSON_GetObjectItemCaseSensitive(hp, "dim");
        if (cJSON_IsNumber(nl)) in->n_layers = (int64_t)nl->valuedouble;
        if (cJSON_IsNumber(dim)) in->dim = (int64_t)dim->valuedouble;
        const cJSON *v;
        in->params = 0;
        cJSON_ArrayForEach(v, vals) {
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(v, "kind"), *s = cJSON_GetObjectItemCaseSensitive(v, "shape");
            if (cJSON_IsString(k) && !strcmp(k->valuestring, "weight") && cJSON_IsString(s)) in->params += shape_numel(s->valuestring);
        }
        cJSON_Delete(j);
    }
    free(buf);
    if (f) fclose(f);
    cke_compiled_source(dir, source, ns);
    struct stat st;
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    in->weights_bytes = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void cpu_name(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c += 1 + (c[1] == ' ');
                c[strcspn(c, "\n")] = 0;
                snprintf(out, n, "%s", c);
            }
            break;
        }
    fclose(f);
}

/* ------------------------------------------------------------------ the profiled model */

typedef struct {
    void *dl;
    const ckm_api *api;
    ckm_model *m;
} prof_model;

static void prof_model_close(prof_model *pm) {
    if (pm->m) pm->api->free(pm->m);
    if (pm->dl) dlclose(pm->dl);
    memset(pm, 0, sizeof *pm);
}

/* OUT/model_prof.so from DIR/model.c, loaded, with DIR/weights.bin. */
static int prof_model_open(const char *dir, const char *out, int nth, prof_model *pm) {
    char inc[PATH_MAX], tpl[PATH_MAX], libk[PATH_MAX], csrc[PATH_MAX + 16], so[PATH_MAX + 32], logp[PATH_MAX + 32], abs[PATH_MAX];
    cke_err e = {0};
    cke_status s = cke_locate_resources(inc, tpl, libk, sizeof inc, &e);
    if (s) return cke_cli_fail(C, s, &e);
    snprintf(csrc, sizeof csrc, "%s/model.c", dir);
    if (access(csrc, R_OK) != 0) {
        fprintf(stderr, "cke profile: %s has no model.c to build the profiled model from\n", dir);
        return 1;
    }
    snprintf(so, sizeof so, "%s/model_prof.so", out);
    snprintf(logp, sizeof logp, "%s/model_prof.log", out);
    fprintf(stderr, "cke profile: building %s (model.c with -DCKM_PROFILE) ...\n", so);
    if ((s = cke_codegen_compile_defs(csrc, so, inc, libk, logp, "CKM_PROFILE", NULL, &e))) return cke_cli_fail(C, s, &e);
    if (so[0] != '/' && realpath(so, abs)) snprintf(so, sizeof so, "%s", abs);
    pm->dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!pm->dl) {
        const char *de = dlerror();
        fprintf(stderr, "cke profile: cannot load %s: %s\n", so, de ? de : "?");
        return 1;
    }
    const ckm_api *(*get)(void);
    *(void **)&get = dlsym(pm->dl, "ckm_api_get");
    pm->api = get ? get() : NULL;
    if (!pm->api || pm->api->abi_version != CKM_ABI_VERSION || !pm->api->set_profile || pm->api->n_prof_ops <= 0) {
        fprintf(stderr, "cke profile: %s/model.c has no profiling hooks (compiled by an older cke, model ABI %d): compile the "
                        "model again\n", dir, pm->api ? pm->api->abi_version : 0);
        prof_model_close(pm);
        return 1;
    }
    char wpath[PATH_MAX + 16], msg[512] = "";
    snprintf(wpath, sizeof wpath, "%s/weights.bin", dir);
    pm->m = pm->api->open(wpath, nth, msg, sizeof msg);
    if (!pm->m) {
        fprintf(stderr, "cke profile: %s\n", msg);
        prof_model_close(pm);
        return 1;
    }
    return 0;
}

static int32_t argmax(const float *x, int64_t n) {
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

/* The compiled directory's tokenizer. */
static int tok_open(const char *dir, cke_tok **tok) {
    static const char *const toks[] = {"tokenizer.gguf", "tokenizer.json", "tokenizer.bin"};
    char path[PATH_MAX + 32];
    cke_err e = {0};
    *tok = NULL;
    for (size_t i = 0; i < sizeof toks / sizeof toks[0] && !*tok; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, toks[i]);
        if (access(path, R_OK) != 0) continue;
        cke_status s = cke_tok_load(path, tok, &e);
        if (s) return cke_cli_fail(C, s, &e);
    }
    if (!*tok) {
        fprintf(stderr, "cke profile: %s has no tokenizer (--prompt-tokens N needs none)\n", dir);
        return 1;
    }
    return 0;
}

/* Prompt ids: the model's tokenizer, BOS as it says; an empty prompt starts from BOS. */
static int prompt_ids(const char *dir, const char *prompt, int32_t **ids, size_t *n) {
    cke_tok *tok = NULL;
    cke_err e = {0};
    if (tok_open(dir, &tok)) return 1;
    cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
    cke_status s = cke_tok_encode(tok, prompt, strlen(prompt), &eo, ids, n, &e);
    if (!s && *n == 0) {
        int32_t bos = cke_tok_bos(tok);
        if (bos >= 0) (*ids)[0] = bos, *n = 1;
    }
    cke_tok_free(tok);
    if (s) return cke_cli_fail(C, s, &e);
    if (*n == 0) {
        fprintf(stderr, "cke profile: the prompt is empty and the vocabulary has no BOS token: give a prompt (-p)\n");
        return 1;
    }
    return 0;
}

/* Prefill of the prompt and n greedy decode steps; with pr, every call is recorded. Returns the
 * decode seconds, or -1 (message printed). */
static double run_inference(const ckm_api *api, ckm_model *m, cke_prof *pr, const int32_t *ids, size_t n_ids, int64_t n_gen) {
    api->reset(m);
    if (pr) cke_prof_set_phase(pr, CKE_PROF_PREFILL);
    double t0 = omp_get_wtime();
    int rc = api->prefill(m, ids, (int64_t)n_ids);
    double t1 = omp_get_wtime();
    if (rc) {
        fprintf(stderr, "cke profile: prefill: %s\n", api->last_error(m));
        return -1;
    }
    if (pr) {
        cke_prof_call(pr, (int64_t)n_ids, t0, t1);
        cke_prof_set_phase(pr, CKE_PROF_DECODE);
    }
    double dec = 0;
    for (int64_t i = 0; i < n_gen && api->pos(m) < api->ctx; i++) {
        int32_t next = argmax(api->logits(m), api->vocab);
        t0 = omp_get_wtime();
        rc = api->decode(m, next);
        t1 = omp_get_wtime();
        if (rc) {
            fprintf(stderr, "cke profile: decode: %s\n", api->last_error(m));
            return -1;
        }
        dec += t1 - t0;
        if (pr) cke_prof_call(pr, 1, t0, t1);
    }
    return dec;
}

/* The profile build's cost: the same decode with model.so and with model_prof.so (hook on),
 * alternated, best of 5 each (the machine may be shared: the minimum is the least disturbed). */
static int measure_overhead(const char *dir, prof_model *pm, int nth, const int32_t *ids, size_t n_ids, int64_t n_gen,
                            double *plain_s, double *prof_s) {
    cke_runner *r = NULL;
    cke_err e = {0};
    cke_status s = cke_runner_open(dir, nth, &r, &e);
    if (s) return cke_cli_fail(C, s, &e);
    cke_prof *scratch = NULL;
    if ((s = cke_prof_new(pm->api->prof_ops, pm->api->n_prof_ops, 1024, 0, &scratch, &e))) {
        cke_runner_close(r);
        return cke_cli_fail(C, s, &e);
    }
    pm->api->set_profile(pm->m, cke_prof_hook, scratch);
    *plain_s = *prof_s = 1e30;
    int rc = 0;
    for (int rep = 0; rep < 5 && !rc; rep++) {
        double a, b; /* the order alternates: neither build always runs right after the other */
        if (rep % 2) {
            b = run_inference(pm->api, pm->m, scratch, ids, n_ids, n_gen);
            a = run_inference(r->api, r->m, NULL, ids, n_ids, n_gen);
        } else {
            a = run_inference(r->api, r->m, NULL, ids, n_ids, n_gen);
            b = run_inference(pm->api, pm->m, scratch, ids, n_ids, n_gen);
        }
        if (a < 0 || b < 0) rc = 1;
        if (a < *plain_s) *plain_s = a;
        if (b < *prof_s) *prof_s = b;
    }
    pm->api->set_profile(pm->m, NULL, NULL);
    cke_prof_free(scratch);
    cke_runner_close(r);
    return rc;
}

/* The machine's limits, measured now at the run's thread count (bench/machine.c). */
static int measure_machine(cke_prof_info *in, int quick) {
    int64_t nbw = (int64_t)(quick ? 64 : 256) << 18; /* floats: 64 or 256 MiB */
    float *bwbuf = cke_hp_alloc((size_t)nbw * sizeof(float));
    if (!bwbuf) {
        fprintf(stderr, "cke profile: out of memory for the bandwidth measurement\n");
        return 1;
    }
    /* best of 10 short passes (~8 ms each): with 3, a neighbour holding one of two vCPUs through
     * all of them once gave a one-core peak and op rooflines above 100% */
    const int reps = quick ? 3 : 10;
    in->peak_f32 = cke_machine_peak_gflops(in->threads, quick ? 1000000 : 4000000, reps);
    in->peak_int8 = cke_machine_peak_int8(in->threads, quick ? 1000000 : 4000000, reps);
    in->peak_bf16 = cke_machine_peak_bf16(in->threads, quick ? 1000000 : 4000000, reps);
    in->bandwidth_gbs = cke_machine_read_bw(bwbuf, nbw, in->threads, 3);
    free(bwbuf);
    return 0;
}

/* ------------------------------------------------------------------ training */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* The model compiled with a training mode (B x T) into OUT/train-build, its model.c built with
 * -DCKM_PROFILE: K steps of train_run (forward, loss, backward: every op timed) and AdamW (each
 * thread's interval too). A warm-up step first (first-touch page faults) is not counted. */
static int profile_train(const prof_args *a, const cke_target *t, cke_prof_info *in, const char *dir_compiled) {
    char src[PATH_MAX], build[PATH_MAX + 32], inc[PATH_MAX], tpl[PATH_MAX], libk[PATH_MAX];
    cke_err e = {0};
    cke_status s = cke_locate_resources(inc, tpl, libk, sizeof inc, &e);
    if (s) return cke_cli_fail(C, s, &e);
    snprintf(src, sizeof src, "%s", t->model);
    if (dir_compiled) { /* a compiled directory: the model it was compiled from */
        cke_prof_info tmp = {0};
        model_facts(dir_compiled, &tmp, src, sizeof src);
        if (!src[0]) {
            fprintf(stderr, "cke profile: %s does not say which model it was compiled from (cke-model.txt): give the model\n",
                    dir_compiled);
            return 1;
        }
    }
    snprintf(build, sizeof build, "%s/train-build", a->out);
    cke_compile_opts co = {.out_dir = build, .tokenizer = t->tokenizer[0] ? t->tokenizer : NULL, .templates_dir = tpl,
                           .include_dir = inc, .libk = libk, .ctx = a->seq, .prefill_chunk = a->seq,
                           .max_threads = (int)a->threads, .quiet = 1, .train_batch = a->batch, .train_seq = a->seq,
                           .train_bf16 = a->bf16};
    fprintf(stderr, "cke profile: compiling %s with a training mode (%lld x %lld) into %s ...\n", src, (long long)a->batch,
            (long long)a->seq, build);
    if ((s = cke_compile(src, &co, &e))) return cke_cli_fail(C, s, &e);
    prof_model pm = {0};
    if (prof_model_open(build, a->out, (int)a->threads, &pm)) return 1;
    const ckm_api *api = pm.api;
    int rc = 1;
    size_t tl = 0, n_ids = 0;
    int32_t *ids = NULL, *tok = NULL, *tgt = NULL;
    cke_prof *pr = NULL;
    cke_tok *tk = NULL;
    char *text = NULL;
    const int64_t R = a->batch * a->seq;
    if (tok_open(build, &tk)) goto done;
    if (!api->train_init || api->train_init(pm.m) != 0) {
        fprintf(stderr, "cke profile: train_init: %s\n", api->train_init ? api->last_error(pm.m) : "no training mode");
        goto done;
    }
    if (!(text = read_file(a->data, &tl))) { fprintf(stderr, "cke profile: cannot read %s\n", a->data); goto done; }
    cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
    eo.add_bos = cke_tok_bos(tk) >= 0; /* a vocabulary may have none (Qwen's) */
    if ((s = cke_tok_encode(tk, text, tl, &eo, &ids, &n_ids, &e))) { rc = cke_cli_fail(C, s, &e); goto done; }
    if ((int64_t)n_ids < R + 1) {
        fprintf(stderr, "cke profile: %s gives %zu tokens: fewer than one batch of %lld x %lld + 1\n", a->data, n_ids,
                (long long)a->batch, (long long)a->seq);
        goto done;
    }
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= api->vocab) {
            fprintf(stderr, "cke profile: token id %d is outside the model's vocabulary of %lld\n", ids[i], (long long)api->vocab);
            goto done;
        }
    model_facts(build, in, src, sizeof src);
    in->source = src;
    char absbuild[PATH_MAX];
    in->dir = realpath(build, absbuild) ? absbuild : build;
    in->kind = "train";
    in->steps = a->steps;
    in->name = api->model_name;
    in->family = api->family;
    in->vocab = api->vocab;
    in->ctx = api->ctx;
    tok = malloc((size_t)R * sizeof *tok);
    tgt = malloc((size_t)R * sizeof *tgt);
    if (!tok || !tgt) { fprintf(stderr, "cke profile: out of memory\n"); goto done; }
    if ((s = cke_prof_new(api->prof_ops, api->n_prof_ops, (int)in->n_layers, (int)a->max_events, &pr, &e))) {
        rc = cke_cli_fail(C, s, &e);
        goto done;
    }
    cke_prof_set_train_bf16(pr, a->bf16);
    const float dscale = 1.0f / (float)R;
    double w0 = omp_get_wtime();
    for (int64_t step = 0; step <= a->steps; step++) { /* step 0: warm-up, not profiled */
        int64_t off = (step * R) % ((int64_t)n_ids - R);
        for (int64_t i = 0; i < R; i++) tok[i] = ids[off + i], tgt[i] = ids[off + i + 1];
        if (step == 1) {
            api->set_profile(pm.m, cke_prof_hook, pr);
            w0 = omp_get_wtime();
        }
        api->zero_grad(pm.m);
        double t0 = omp_get_wtime();
        api->train_run(pm.m, tok, tgt, dscale, 1);
        double t1 = omp_get_wtime();
        api->adamw(pm.m, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.0f, step + 1, 1.0f);
        double t2 = omp_get_wtime();
        if (step == 0) continue;
        cke_prof_train_call(pr, R, t0, t1);
        cke_prof_set_phase(pr, CKE_PROF_OPTIMIZER);
        cke_prof_call(pr, 0, t1, t2);
    }
    api->set_profile(pm.m, NULL, NULL);
    in->wall_s = omp_get_wtime() - w0;
    char pj[PATH_MAX + 32], tj[PATH_MAX + 32];
    snprintf(pj, sizeof pj, "%s/profile.json", a->out);
    snprintf(tj, sizeof tj, "%s/trace.json", a->out);
    if ((s = cke_prof_write_json(pr, in, pj, &e)) || (s = cke_prof_write_trace(pr, tj, &e)) ||
        (s = cke_report_write(a->out, NULL, &e))) { rc = cke_cli_fail(C, s, &e); goto done; }
    printf("cke profile: training %s (%s, %lld layers), %s, %s, %d threads; %lld steps of %lld x %lld tokens\n", in->name,
           in->family, (long long)in->n_layers, a->bf16 ? "bf16 mixed precision" : "fp32", in->isa, in->threads,
           (long long)a->steps, (long long)a->batch, (long long)a->seq);
    static const char *const names[] = {"forward", "backward", "optimizer"};
    for (int ph = CKE_PROF_TRAIN_FORWARD; ph <= CKE_PROF_OPTIMIZER; ph++) {
        double wall, ops;
        cke_prof_phase_times(pr, (cke_prof_phase)ph, &wall, &ops);
        printf("  %-9s %9.3f ms per step, ops %.1f%% of it\n", names[ph - CKE_PROF_TRAIN_FORWARD], wall * 1e3 / (double)a->steps,
               wall > 0 ? 100 * ops / wall : 0);
    }
    cke_prof_print_top(pr, in, 10, stdout);
    printf("wrote %s, %s and %s/report.html\n", pj, tj, a->out);
    rc = 0;
done:
    cke_prof_free(pr);
    cke_tok_free(tk);
    free(tok);
    free(tgt);
    free(ids);
    free(text);
    prof_model_close(&pm);
    return rc;
}

int cke_cli_profile(int argc, char **argv) {
    prof_args a = {.n_gen = 16, .out = "cke-profile", .steps = 4, .max_events = 20000, .batch = 4, .seq = 64, .kv_type = -1};
    int rc = parse(argc, argv, &a);
    if (rc) return rc == 1 ? 0 : rc;
    if (a.threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        a.threads = nc > 0 ? nc : 1;
    }
    if (cke_kernels_init() != 0) {
        fprintf(stderr, "cke profile: CKE_ISA names an unknown or unsupported level\n");
        return 1;
    }
    char dir[PATH_MAX], cpu[256], cmd[1024];
    cke_target t;
    if (cke_cli_target(C, a.target, &t)) return 1;
    cke_err me = {0};
    if (cke_mkdirs(a.out, &me)) return cke_cli_fail(C, CKE_ERR_IO, &me);
    cke_prof_info in = {.isa = cke_isa_name(cke_isa_active()), .threads = (int)a.threads, .peak_bf16 = -1, .peak_int8 = -1,
                        .kind = "inference"};
    cpu_name(cpu, sizeof cpu);
    in.cpu = cpu;
    size_t o = (size_t)snprintf(cmd, sizeof cmd, "cke");
    for (int i = 0; i < argc && o < sizeof cmd; i++) o += (size_t)snprintf(cmd + o, sizeof cmd - o, " %s", argv[i]);
    in.command = cmd;
    if (measure_machine(&in, a.quick)) return 1;
    if (a.train) return profile_train(&a, &t, &in, t.kind == CKE_TARGET_COMPILED ? t.model : NULL);
    if (t.kind == CKE_TARGET_COMPILED) {
        if (!cke_cli_compiled_kv_ok(t.model, a.kv_type)) return 1;
        snprintf(dir, sizeof dir, "%s", t.model);
    } else if (cke_cli_model_dir(t.model, t.tokenizer[0] ? t.tokenizer : NULL, 0, a.kv_type, dir, sizeof dir))
        return 1;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (a.prompt_tokens) { /* ids 1, 2, ...: any tokens give the same shapes and times */
        ids = malloc((size_t)a.prompt_tokens * sizeof *ids);
        if (!ids) { fprintf(stderr, "cke profile: out of memory\n"); return 1; }
        for (n_ids = 0; n_ids < (size_t)a.prompt_tokens; n_ids++) ids[n_ids] = (int32_t)(1 + n_ids % 100);
    } else if (prompt_ids(dir, a.prompt, &ids, &n_ids)) return 1;
    prof_model pm = {0};
    if (prof_model_open(dir, a.out, (int)a.threads, &pm)) { free(ids); return 1; }
    const ckm_api *api = pm.api;
    if ((int64_t)n_ids + a.n_gen > api->ctx) {
        fprintf(stderr, "cke profile: %zu prompt tokens + %lld decode steps exceed the context of %lld\n", n_ids,
                (long long)a.n_gen, (long long)api->ctx);
        prof_model_close(&pm);
        free(ids);
        return 1;
    }

    in.name = api->model_name;
    in.family = api->family;
    char absdir[PATH_MAX]; /* the report finds layout.json through it from any directory */
    in.dir = realpath(dir, absdir) ? absdir : dir;
    in.vocab = api->vocab;
    in.ctx = api->ctx;
    in.prompt_tokens = (int64_t)n_ids;
    char source[PATH_MAX];
    model_facts(dir, &in, source, sizeof source);
    in.source = source;

    double plain_s = -1, profd_s = -1;
    if (a.overhead && measure_overhead(dir, &pm, (int)a.threads, ids, n_ids, a.n_gen, &plain_s, &profd_s)) {
        prof_model_close(&pm);
        free(ids);
        return 1;
    }

    cke_prof *pr = NULL;
    cke_err e = {0};
    cke_status s = cke_prof_new(api->prof_ops, api->n_prof_ops, (int)in.n_layers, (int)a.max_events, &pr, &e);
    if (s) {
        prof_model_close(&pm);
        free(ids);
        return cke_cli_fail(C, s, &e);
    }
    /* One untimed pass first: the first touch of the weights mapping, the arena and the KV cache
     * (page faults, cold TLB) would otherwise be billed to whichever op touches a page first — it
     * made prefill attention of a 4-layer TinyLlama shape look 25x slower than it runs. */
    rc = run_inference(api, pm.m, NULL, ids, n_ids, a.n_gen < 2 ? a.n_gen : 2) < 0;
    api->set_profile(pm.m, cke_prof_hook, pr);
    double w0 = omp_get_wtime();
    if (!rc) rc = run_inference(api, pm.m, pr, ids, n_ids, a.n_gen) < 0;
    in.wall_s = omp_get_wtime() - w0;
    api->set_profile(pm.m, NULL, NULL);
    in.generated_tokens = api->pos(pm.m) - (int64_t)n_ids;

    char pj[PATH_MAX + 32], tj[PATH_MAX + 32];
    snprintf(pj, sizeof pj, "%s/profile.json", a.out);
    snprintf(tj, sizeof tj, "%s/trace.json", a.out);
    if (!rc && ((s = cke_prof_write_json(pr, &in, pj, &e)) || (s = cke_prof_write_trace(pr, tj, &e)) ||
                (s = cke_report_write(a.out, NULL, &e))))
        rc = cke_cli_fail(C, s, &e);
    if (!rc) {
        printf("cke profile: %s (%s, %lld layers), %s, %d threads; prompt %zu tokens, %lld decode steps\n", in.name, in.family,
               (long long)in.n_layers, in.isa, in.threads, n_ids, (long long)in.generated_tokens);
        for (int ph = CKE_PROF_PREFILL; ph <= CKE_PROF_DECODE; ph++) {
            double wall, ops;
            cke_prof_phase_times(pr, (cke_prof_phase)ph, &wall, &ops);
            printf("  %-7s wall %9.3f ms, ops %9.3f ms (%.1f%% of wall), outside ops %.3f ms\n", ph ? "decode" : "prefill",
                   wall * 1e3, ops * 1e3, wall > 0 ? 100 * ops / wall : 0, (wall - ops) * 1e3);
        }
        if (plain_s > 0)
            printf("  profiling cost: decode %.3f ms/token profiled vs %.3f ms/token with model.so (%+.1f%%), best of 5\n",
                   profd_s * 1e3 / (double)(a.n_gen ? a.n_gen : 1), plain_s * 1e3 / (double)(a.n_gen ? a.n_gen : 1),
                   100 * (profd_s / plain_s - 1));
        cke_prof_print_top(pr, &in, 10, stdout);
        printf("wrote %s, %s and %s/report.html\n", pj, tj, a.out);
    }
    cke_prof_free(pr);
    prof_model_close(&pm);
    free(ids);
    return rc;
}
