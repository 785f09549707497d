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
    int64_t n_gen, threads, steps, max_events;
    int train, overhead, quick;
} prof_args;

static int usage(int help) {
    fprintf(help ? stdout : stderr,
            "usage: cke profile DIR|MODEL -p PROMPT [-n N] [-o OUTDIR]           prefill + N decode steps, per op\n"
            "       cke profile DIR|MODEL --train --data FILE.txt [--steps K]    forward, backward, optimizer\n"
            "  -n N                 decode steps (default 16)\n"
            "  -o OUTDIR            where profile.json and trace.json go (default ./cke-profile); model_prof.so is\n"
            "                       built there from DIR/model.c with -DCKM_PROFILE (model.so stays untouched)\n"
            "  -t, --threads N      threads (default: all cores)\n"
            "  --max-events N       trace.json holds the first N op calls (default 20000); all are summed\n"
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
        else if (!strcmp(f, "--steps")) rc = cke_cli_opt_i64(C, argc, argv, &i, 1, 1 << 20, "a step count (1-1048576)", &a->steps);
        else if (!strcmp(f, "-t") || !strcmp(f, "--threads"))
            rc = cke_cli_opt_i64(C, argc, argv, &i, 1, 1024, "a thread count (1-1024)", &a->threads);
        else if (!strcmp(f, "--max-events"))
            rc = cke_cli_opt_i64(C, argc, argv, &i, 0, 10000000, "an event count (0-10000000)", &a->max_events);
        else if (!strcmp(f, "--train")) a->train = 1;
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
    if (a->train && !a->data) {
        fprintf(stderr, "cke profile: --train needs --data FILE.txt\n");
        return 2;
    }
    if (!a->train && !a->prompt) {
        fprintf(stderr, "cke profile: no prompt given (-p PROMPT)\n");
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
    snprintf(path, sizeof path, "%s/cke-model.txt", dir);
    source[0] = 0;
    if ((f = fopen(path, "r"))) {
        char line[PATH_MAX + 16];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "source ", 7)) {
                line[strcspn(line, "\n")] = 0;
                snprintf(source, ns, "%s", line + 7);
            }
        fclose(f);
    }
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

/* Prompt ids: the model's tokenizer, BOS as it says; an empty prompt starts from BOS. */
static int prompt_ids(const char *dir, const char *prompt, int32_t **ids, size_t *n) {
    static const char *const toks[] = {"tokenizer.gguf", "tokenizer.json", "tokenizer.bin"};
    char path[PATH_MAX + 32];
    cke_tok *tok = NULL;
    cke_err e = {0};
    for (size_t i = 0; i < sizeof toks / sizeof toks[0] && !tok; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, toks[i]);
        if (access(path, R_OK) != 0) continue;
        cke_status s = cke_tok_load(path, &tok, &e);
        if (s) return cke_cli_fail(C, s, &e);
    }
    if (!tok) {
        fprintf(stderr, "cke profile: %s has no tokenizer\n", dir);
        return 1;
    }
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
 * alternated, best of 3 each. */
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
    for (int rep = 0; rep < 3 && !rc; rep++) {
        double a = run_inference(r->api, r->m, NULL, ids, n_ids, n_gen);
        double b = run_inference(pm->api, pm->m, scratch, ids, n_ids, n_gen);
        if (a < 0 || b < 0) rc = 1;
        if (a < *plain_s) *plain_s = a;
        if (b < *prof_s) *prof_s = b;
    }
    pm->api->set_profile(pm->m, NULL, NULL);
    cke_prof_free(scratch);
    cke_runner_close(r);
    return rc;
}

static int mkdir_p(const char *d) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", d);
    for (char *c = buf + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *c = '/';
        }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int cke_cli_profile(int argc, char **argv) {
    prof_args a = {.n_gen = 16, .out = "cke-profile", .steps = 4, .max_events = 20000};
    int rc = parse(argc, argv, &a);
    if (rc) return rc == 1 ? 0 : rc;
    if (a.train) {
        fprintf(stderr, "cke profile: --train is not implemented yet: profile inference (-p PROMPT) instead\n");
        return 2;
    }
    if (a.threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        a.threads = nc > 0 ? nc : 1;
    }
    if (cke_kernels_init() != 0) {
        fprintf(stderr, "cke profile: CKE_ISA names an unknown or unsupported level\n");
        return 1;
    }
    char dir[PATH_MAX];
    cke_target t;
    if (cke_cli_target(C, a.target, &t)) return 1;
    if (t.kind == CKE_TARGET_COMPILED) snprintf(dir, sizeof dir, "%s", t.model);
    else if (cke_cli_model_dir(t.model, t.tokenizer[0] ? t.tokenizer : NULL, 0, dir, sizeof dir)) return 1;
    if (mkdir_p(a.out) != 0) {
        fprintf(stderr, "cke profile: cannot create %s: %s\n", a.out, strerror(errno));
        return 1;
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (prompt_ids(dir, a.prompt, &ids, &n_ids)) return 1;
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

    cke_prof_info in = {.name = api->model_name, .family = api->family, .dir = dir, .vocab = api->vocab, .ctx = api->ctx,
                        .isa = cke_isa_name(cke_isa_active()), .threads = (int)a.threads, .peak_bf16 = -1, .peak_int8 = -1,
                        .kind = "inference", .prompt_tokens = (int64_t)n_ids};
    char source[PATH_MAX], cpu[256], cmd[1024];
    model_facts(dir, &in, source, sizeof source);
    in.source = source;
    cpu_name(cpu, sizeof cpu);
    in.cpu = cpu;
    size_t o = (size_t)snprintf(cmd, sizeof cmd, "cke");
    for (int i = 0; i < argc && o < sizeof cmd; i++) o += (size_t)snprintf(cmd + o, sizeof cmd - o, " %s", argv[i]);
    in.command = cmd;

    /* the machine's limits, measured now at the run's thread count (bench/machine.c) */
    int64_t nbw = (int64_t)(a.quick ? 64 : 256) << 18; /* floats: 64 or 256 MiB */
    float *bwbuf = cke_hp_alloc((size_t)nbw * sizeof(float));
    if (!bwbuf) {
        fprintf(stderr, "cke profile: out of memory for the bandwidth measurement\n");
        prof_model_close(&pm);
        free(ids);
        return 1;
    }
    in.peak_f32 = cke_machine_peak_gflops((int)a.threads, a.quick ? 1000000 : 4000000, 3);
    in.bandwidth_gbs = cke_machine_read_bw(bwbuf, nbw, (int)a.threads, 3);
    free(bwbuf);

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
    api->set_profile(pm.m, cke_prof_hook, pr);
    double w0 = omp_get_wtime();
    rc = run_inference(api, pm.m, pr, ids, n_ids, a.n_gen) < 0;
    in.wall_s = omp_get_wtime() - w0;
    api->set_profile(pm.m, NULL, NULL);
    in.generated_tokens = api->pos(pm.m) - (int64_t)n_ids;

    char pj[PATH_MAX + 32], tj[PATH_MAX + 32];
    snprintf(pj, sizeof pj, "%s/profile.json", a.out);
    snprintf(tj, sizeof tj, "%s/trace.json", a.out);
    if (!rc && ((s = cke_prof_write_json(pr, &in, pj, &e)) || (s = cke_prof_write_trace(pr, tj, &e)))) rc = cke_cli_fail(C, s, &e);
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
            printf("  profiling cost: decode %.3f ms/token profiled vs %.3f ms/token with model.so (%+.1f%%), best of 3\n",
                   profd_s * 1e3 / (double)(a.n_gen ? a.n_gen : 1), plain_s * 1e3 / (double)(a.n_gen ? a.n_gen : 1),
                   100 * (profd_s / plain_s - 1));
        cke_prof_print_top(pr, &in, 10, stdout);
        printf("wrote %s and %s\n", pj, tj);
    }
    cke_prof_free(pr);
    prof_model_close(&pm);
    free(ids);
    return rc;
}
