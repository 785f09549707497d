#define _DEFAULT_SOURCE /* realpath */
#include "cli/util.h"
#include "cli/run.h"

#include "driver/compile.h"
#include "runtime/parity.h"
#include "runtime/runner.h"
#include "runtime/sampler.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --keep-f32 (or CKE_KEEP_F32=1): every weight converted to f32, as before quantized kernels;
 * --debug: canaries after every activation, checked after every op */
static int keep_f32_flag, debug_flag;

static int compile_into(const char *model, const char *out, const char *tokenizer, int64_t ctx, int64_t chunk, int quiet) {
    char inc[PATH_MAX], tpl[PATH_MAX], libk[PATH_MAX];
    cke_err e = {0};
    cke_status s = cke_locate_resources(inc, tpl, libk, sizeof inc, &e);
    if (s) return cke_cli_fail("compile", s, &e);
    cke_compile_opts o = {.out_dir = out, .tokenizer = tokenizer, .templates_dir = tpl, .include_dir = inc,
                          .libk = libk, .ctx = ctx, .prefill_chunk = chunk, .quiet = quiet,
                          .keep_f32 = keep_f32_flag || (getenv("CKE_KEEP_F32") && atoi(getenv("CKE_KEEP_F32"))),
                          .canaries = debug_flag};
    return cke_cli_compile_guarded("compile", model, &o, "the output directory was left as it was");
}

int cke_cli_compile(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *tok = NULL;
    int64_t ctx = 0, chunk = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok = argv[++i];
        else if (!strcmp(argv[i], "--keep-f32")) keep_f32_flag = 1;
        else if (!strcmp(argv[i], "--debug")) debug_flag = 1;
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) { if (cke_cli_parse_i64(argv[++i], &ctx) || ctx < 1) goto usage; }
        else if (!strcmp(argv[i], "--prefill-chunk") && i + 1 < argc) { if (cke_cli_parse_i64(argv[++i], &chunk) || chunk < 1) goto usage; }
        else if (argv[i][0] == '-') goto usage;
        else if (!model) model = argv[i];
        else goto usage;
    }
    if (!model || !out) goto usage;
    return compile_into(model, out, tok, ctx, chunk, 0);
usage:
    fprintf(stderr, "usage: cke compile MODEL -o DIR [--tokenizer tokenizer.bin] [--ctx N] [--prefill-chunk N] [--keep-f32]\n"
                    "                   [--debug]\n"
                    "  MODEL: a .gguf file, a Hugging Face model directory, or a llama2.c .bin\n"
                    "  --debug: a canary after every activation, checked after every op (slow; names the op)\n");
    return 2;
}

int cke_cli_run(int argc, char **argv) {
    const char *target = NULL, *prompt = "", *tok = NULL;
    int64_t n_gen = 256, ctx = 0, threads = 0;
    cke_sampler_opts so = CKE_SAMPLER_DEFAULTS;
    int64_t seed = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-p") && v) prompt = v, i++;
        else if (!strcmp(a, "-n") && v) bad = cke_cli_parse_i64(v, &n_gen) || n_gen < 0, i++;
        else if (!strcmp(a, "--temp") && v) bad = cke_cli_parse_f(v, &so.temp) || so.temp < 0, i++;
        else if (!strcmp(a, "--top-k") && v) { int64_t k = 0; bad = cke_cli_parse_i64(v, &k) || k < 0 || k > INT32_MAX; so.top_k = (int)k; i++; }
        else if (!strcmp(a, "--top-p") && v) bad = cke_cli_parse_f(v, &so.top_p), i++;
        else if (!strcmp(a, "--min-p") && v) bad = cke_cli_parse_f(v, &so.min_p), i++;
        else if (!strcmp(a, "--repeat-penalty") && v) bad = cke_cli_parse_f(v, &so.repeat_penalty), i++;
        else if (!strcmp(a, "--seed") && v) bad = cke_cli_parse_i64(v, &seed), i++;
        else if (!strcmp(a, "--threads") && v) bad = cke_cli_parse_i64(v, &threads) || threads < 1 || threads > 1024, i++;
        else if (!strcmp(a, "--ctx") && v) bad = cke_cli_parse_i64(v, &ctx) || ctx < 1, i++;
        else if (!strcmp(a, "--tokenizer") && v) tok = v, i++;
        else if (a[0] == '-' && a[1]) bad = 1;
        else if (!target) target = a;
        else bad = 1;
        if (bad) goto usage;
    }
    if (!target) goto usage;
    so.seed = seed >= 0 ? (uint64_t)seed : (uint64_t)time(NULL);

    char dir[PATH_MAX];
    int mrc = cke_cli_model_dir(target, tok, ctx, dir, sizeof dir);
    if (mrc) return mrc;

    cke_err e = {0};
    cke_runner *r = NULL;
    if (threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? nc : 1;
    }
    cke_status s = cke_runner_open(dir, (int)threads, &r, &e);
    if (s) return cke_cli_fail("run", s, &e);
    if (!r->tok) {
        fprintf(stderr, "cke run: %s has no tokenizer (compile with --tokenizer)\n", dir);
        cke_runner_close(r);
        return 1;
    }
    const ckm_api *api = r->api;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
    eo.add_bos = 1;
    s = cke_tok_encode(r->tok, prompt, strlen(prompt), &eo, &ids, &n_ids, &e);
    if (s) { cke_runner_close(r); return cke_cli_fail("run", s, &e); }
    if (n_ids == 0) { fprintf(stderr, "cke run: the vocabulary has no BOS token to start from\n"); free(ids); cke_runner_close(r); return 1; }
    if ((int64_t)n_ids > api->ctx) {
        fprintf(stderr, "cke run: the prompt is %zu tokens, longer than the context of %lld\n", n_ids, (long long)api->ctx);
        free(ids);
        cke_runner_close(r);
        return 1;
    }
    int64_t cap = (int64_t)n_ids + n_gen + 1;
    int32_t *hist = malloc((size_t)cap * sizeof(int32_t));
    cke_sampler *smp = NULL;
    if (!hist || (s = cke_sampler_new(&smp, api->vocab, &so, &e))) {
        free(ids); free(hist); cke_runner_close(r);
        return s ? cke_cli_fail("run", s, &e) : 1;
    }
    memcpy(hist, ids, n_ids * sizeof(int32_t));
    int64_t nh = (int64_t)n_ids;
    free(ids);

    double t0 = cke_cli_now();
    if (api->prefill(r->m, hist, nh) != 0) {
        fprintf(stderr, "cke run: %s\n", api->last_error(r->m));
        cke_sampler_free(smp); free(hist); cke_runner_close(r);
        return 1;
    }
    double t1 = cke_cli_now();
    fputs(prompt, stdout);
    fflush(stdout);
    size_t printed = 0;
    int64_t gen = 0, first = nh;
    int32_t eos = cke_tok_eos(r->tok);
    int rc = 0;
    while (gen < n_gen) {
        int32_t next = cke_sampler_next(smp, api->logits(r->m), hist, nh);
        if (next == eos) break;
        hist[nh++] = next;
        gen++;
        char *text = NULL;
        size_t len = 0;
        /* decode the whole continuation and print what is new: merges bytes split across tokens */
        s = cke_tok_decode(r->tok, hist + first, (size_t)(nh - first), CKE_TOK_DECODE_SKIP_SPECIAL |
                           (prompt[0] ? CKE_TOK_DECODE_KEEP_PREFIX : 0), &text, &len, &e);
        if (s) { rc = cke_cli_fail("run", s, &e); free(text); break; }
        if (len > printed) fwrite(text + printed, 1, len - printed, stdout), printed = len;
        fflush(stdout);
        free(text);
        if (gen == n_gen) break;
        if (api->pos(r->m) >= api->ctx) { fprintf(stderr, "\ncke run: context of %lld tokens is full\n", (long long)api->ctx); break; }
        if (api->decode(r->m, next) != 0) { fprintf(stderr, "\ncke run: %s\n", api->last_error(r->m)); rc = 1; break; }
    }
    double t2 = cke_cli_now();
    printf("\n");
    fprintf(stderr, "cke: prompt %lld tokens in %.3f s (%.1f tok/s); generated %lld tokens in %.3f s (%.1f tok/s); %lld threads\n",
            (long long)first, t1 - t0, (double)first / (t1 - t0 > 0 ? t1 - t0 : 1e-9), (long long)gen, t2 - t1,
            (double)gen / (t2 - t1 > 0 ? t2 - t1 : 1e-9), (long long)threads);
    cke_sampler_free(smp);
    free(hist);
    cke_runner_close(r);
    return rc;
usage:
    fprintf(stderr, "usage: cke run DIR|MODEL [-p PROMPT] [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
                    "               [--repeat-penalty R] [--seed S] [--threads N] [--ctx N] [--tokenizer FILE]\n"
                    "  DIR: a compiled model (cke compile); MODEL: a model file, compiled into a cache first\n"
                    "  --temp 0 is greedy; an empty prompt starts from BOS\n");
    return 2;
}

int cke_cli_parity(int argc, char **argv) {
    const char *dir = NULL, *ref = NULL;
    int64_t chunk = 0;
    float tol = 1e-3f;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--chunk") && i + 1 < argc) { if (cke_cli_parse_i64(argv[++i], &chunk) || chunk < 0) goto usage; }
        else if (!strcmp(argv[i], "--tol") && i + 1 < argc) { if (cke_cli_parse_f(argv[++i], &tol) || !(tol > 0)) goto usage; }
        else if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (argv[i][0] == '-') goto usage;
        else if (!dir) dir = argv[i];
        else if (!ref) ref = argv[i];
        else goto usage;
    }
    if (!dir || !ref) goto usage;
    cke_err e = {0};
    cke_runner *r = NULL;
    cke_status s = cke_runner_open(dir, 1, &r, &e);
    if (s) return cke_cli_fail("parity", s, &e);
    cke_parity_result res;
    s = cke_parity_run(r, ref, chunk, tol, verbose ? stdout : NULL, &res, &e);
    cke_runner_close(r);
    if (s) return cke_cli_fail("parity", s, &e);
    if (res.diverged) {
        printf("first divergence: %s (layer %d) at position %lld: max abs error %.3e, relative %.3e (tolerance %.1e)\n",
               res.name, res.layer, (long long)res.pos, res.max_abs, res.max_rel, (double)tol);
        return 1;
    }
    printf("parity: %lld values match within relative %.1e (worst %.3e); %lld traced values not in the reference\n",
           (long long)res.compared, (double)tol, res.worst_rel, (long long)res.missing);
    return 0;
usage:
    fprintf(stderr, "usage: cke parity DIR REF.trace [--chunk N] [--tol REL] [-v]\n"
                    "  runs the reference's tokens through the compiled model with tracing and prints the first\n"
                    "  IR value (name, layer, position) whose relative error exceeds --tol (default 1e-3)\n");
    return 2;
}
