#define _DEFAULT_SOURCE /* realpath */
#include "cli/util.h"
#include "cli/run.h"
#include "cli/target.h"
#include "cli/cache.h"
#include "cli/tp.h"

#include "cke/cke.h"
#include "driver/compile.h"
#include "report/report.h"
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
/* --embedded [--weights const|blob]: a standalone C program for one model (codegen_embed.c) */
static int embedded_flag, weights_blob_flag;

static int64_t tp_rank_opt, tp_size_opt; /* cke compile --tp-rank R --tp-size N */
static const char *target_flag; /* compile --target TRIPLE: cross-compile model.so */

static int compile_into(const char *model, const char *out, const char *tokenizer, int64_t ctx, int64_t chunk, int kv_type,
                        int quiet) {
    char inc[PATH_MAX], tpl[PATH_MAX], libk[PATH_MAX];
    cke_err e = {0};
    cke_status s = cke_locate_resources(inc, tpl, libk, sizeof inc, &e);
    if (s) return cke_cli_fail("compile", s, &e);
    cke_compile_opts o = {.out_dir = out, .tokenizer = tokenizer, .templates_dir = tpl, .include_dir = inc,
                          .libk = libk, .ctx = ctx, .prefill_chunk = chunk, .quiet = quiet,
                          .keep_f32 = keep_f32_flag || (getenv("CKE_KEEP_F32") && atoi(getenv("CKE_KEEP_F32"))),
                          .canaries = debug_flag, .kv_type = kv_type, .embedded = embedded_flag,
                          .weights_blob = weights_blob_flag, .tp_rank = (int)tp_rank_opt, .tp_size = (int)tp_size_opt,
                          .target = target_flag};
    return cke_cli_compile_guarded("compile", model, &o, "the output directory was left as it was");
}

int cke_cli_compile(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *tok = NULL;
    int64_t ctx = 0, chunk = 0;
    int help = 0, kv = CKE_KV_F16, weights_blob = -1; /* -1: --weights not given */
    for (int i = 1; i < argc; i++) {
        if (cke_cli_is_help(argv[i])) { help = 1; goto usage; }
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok = argv[++i];
        else if (!strcmp(argv[i], "--keep-f32")) keep_f32_flag = 1;
        else if (!strcmp(argv[i], "--debug")) debug_flag = 1;
        else if (!strcmp(argv[i], "--embedded")) embedded_flag = 1;
        else if (!strcmp(argv[i], "--weights")) {
            const char *w = NULL;
            int rc = cke_cli_opt_str("compile", argc, argv, &i, &w);
            if (rc) return rc;
            if (strcmp(w, "const") && strcmp(w, "blob")) {
                fprintf(stderr, "cke compile: --weights: %s is not const or blob\n", w);
                return 2;
            }
            weights_blob = !strcmp(w, "blob");
        } else if (!strcmp(argv[i], "--target")) {
            int rc = cke_cli_opt_str("compile", argc, argv, &i, &target_flag);
            if (rc) return rc;
        } else if (!strcmp(argv[i], "--ctx") || !strcmp(argv[i], "-c")) {
            int rc = cke_cli_opt_i64("compile", argc, argv, &i, 1, INT32_MAX, "a context length (>= 1)", &ctx);
            if (rc) return rc;
        } else if (!strcmp(argv[i], "--kv-type")) {
            int rc = cke_cli_opt_kv("compile", argc, argv, &i, &kv);
            if (rc) return rc;
        } else if (!strcmp(argv[i], "--prefill-chunk")) {
            int rc = cke_cli_opt_i64("compile", argc, argv, &i, 1, INT32_MAX, "a chunk length (>= 1)", &chunk);
            if (rc) return rc;
        } else if (!strcmp(argv[i], "--tp-size")) {
            int rc = cke_cli_opt_i64("compile", argc, argv, &i, 1, 4096, "a number of tensor-parallel ranks (1..4096)", &tp_size_opt);
            if (rc) return rc;
        } else if (!strcmp(argv[i], "--tp-rank")) {
            int rc = cke_cli_opt_i64("compile", argc, argv, &i, 0, 4095, "a tensor-parallel rank (0..4095)", &tp_rank_opt);
            if (rc) return rc;
        } else if (argv[i][0] == '-') return cke_cli_unknown("compile", argv[i]);
        else if (!model) model = argv[i];
        else return cke_cli_unknown("compile", argv[i]);
    }
    if (!model || !out) {
        fprintf(stderr, "cke compile: %s\n", !model ? "no model given" : "no output directory given (-o DIR)");
        goto usage;
    }
    if (tp_rank_opt >= (tp_size_opt > 0 ? tp_size_opt : 1)) {
        fprintf(stderr, "cke compile: --tp-rank %lld needs --tp-size above it (ranks are 0..N-1)\n", (long long)tp_rank_opt);
        return 2;
    }
    if (embedded_flag && tp_size_opt > 1) {
        fprintf(stderr, "cke compile: --embedded is one process on one core: no --tp-size\n");
        return 2;
    }
    if (weights_blob >= 0 && !embedded_flag) {
        fprintf(stderr, "cke compile: --weights const|blob is for the embedded build: add --embedded\n");
        return 2;
    }
    if (embedded_flag && debug_flag) {
        fprintf(stderr, "cke compile: --embedded has no debug build: --debug's canaries are for model.so\n");
        return 2;
    }
    weights_blob_flag = weights_blob == 1;
    return compile_into(model, out, tok, ctx, chunk, kv, 0);
usage:
    fprintf(help ? stdout : stderr, "usage: cke compile MODEL -o DIR [--tokenizer tokenizer.bin] [--ctx N] [--prefill-chunk N] [--keep-f32]\n"
                    "                   [--kv-type f16|f32|q8_0] [--debug] [--embedded [--weights const|blob]] [--tp-size N --tp-rank R]\n"
                    "                   [--target aarch64-linux-gnu]\n"
                    "  --tp-size N --tp-rank R: rank R's block of the model split for N-way tensor parallelism (heads and\n"
                    "  FFN columns divided, an allreduce after attn_o and ffn_down; run with mpirun -np N cke run)\n"
                    "  --kv-type: the KV cache's element type (default f16: half the memory and decode's reads; f32: exact;\n"
                    "  q8_0: about half of f16 again, for a head_dim that is a multiple of 32)\n"
                    "  MODEL: a .gguf file, a Hugging Face model directory, or a llama2.c .bin\n"
                    "  --debug: a canary after every activation, checked after every op (slow; names the op)\n"
                    "  --embedded: DIR gets a standalone C program for this model instead of model.so: model.c with\n"
                    "  static buffers, one thread, no allocation or I/O, the ref kernels it calls in kernels/, main.c\n"
                    "  and a Makefile (make; or cc -O2 -o model_main *.c kernels/*.c -lm)\n"
                    "  --weights const|blob: embedded weights as a const array in weights.c (default) or weights.bin,\n"
                    "  whose bytes the caller passes to ckm_embed_init\n"
                    "  --target: cross-compile model.so for another machine (its compiler, e.g. aarch64-linux-gnu-gcc, on PATH,\n"
                    "  and its kernel library: make CC=aarch64-linux-gnu-gcc BUILD=build-aarch64 build-aarch64/libckekernels.a)\n");
    return help ? 0 : 2;
}

/* ---------------------------------------------------------------- cke run */

#define MAX_STOPS 16

typedef struct {
    const char *target, *prompt, *prompt_file, *tok;
    const char *stops[MAX_STOPS];
    int n_stops;
    int64_t n_gen, ctx, threads, seed;
    int kv_type; /* -1: not given */
    int special; /* parse <|im_start|> etc. in the prompt as special tokens */
    int bos;     /* -1 as the model says, 0 never, 1 always */
    cke_sampler_opts so;
    double dist_timeout; /* mpirun: longest wait for one collective, seconds */
    int quiet_stats;     /* tensor-parallel ranks other than 0: rank 0 reports */
} run_args;

static void run_usage(FILE *f) {
    fprintf(f, "usage: cke run DIR|MODEL [-p PROMPT | -f FILE] [-n N] [options]\n"
               "  DIR: a compiled model (cke compile), a training --out directory or checkpoint;\n"
               "  MODEL: a .gguf, Hugging Face directory or llama2.c .bin, compiled into a cache first\n"
               "  -m, --model M          the model (instead of the first argument)\n"
               "  -p, --prompt TEXT      the prompt; special tokens in it (<|im_start|>) are parsed as such\n"
               "  -f, --file FILE        the prompt from a file (- : standard input)\n"
               "  -n, --n-predict N      tokens to generate (256; -1: until EOS or the context is full)\n"
               "  -c, --ctx N            context length to compile for (default: the model's)\n"
               CKE_CLI_KV_HELP
               "  -t, --threads N        threads (default: all cores)\n"
               "  -s, --seed S           sampling seed (default: time)\n"
               "  --temp T (0.8; 0 = greedy)  --top-k K (40)  --top-p P (0.95)  --min-p P (0.05)\n"
               "  --repeat-penalty R (1.0 = off)\n"
               "  --stop STR             stop before STR appears in the output (repeatable)\n"
               "  --no-special           treat special-token text in the prompt as plain text\n"
               "  --bos / --no-bos       add BOS or not (default: as the model's tokenizer says)\n"
               "  --tokenizer FILE       tokenizer for a llama2.c checkpoint\n"
               "  mpirun -np N cke run MODEL ...: tensor parallel, each rank holding 1/N of the heads and FFN\n"
               "  columns (compiled into its own cache variant); rank 0 prints\n"
               "  --dist-timeout S       under mpirun: a rank waiting longer than S seconds (60) for the others fails\n");
}

/* 0 parsed, 1 help printed, 2 usage error (message printed) */
static int parse_run_args(int argc, char **argv, run_args *a) {
    static const char C[] = "run";
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        int rc = 0;
        if (cke_cli_is_help(f)) { run_usage(stdout); return 1; }
        else if (!strcmp(f, "-m") || !strcmp(f, "--model")) rc = cke_cli_opt_str(C, argc, argv, &i, &a->target);
        else if (!strcmp(f, "-p") || !strcmp(f, "--prompt")) rc = cke_cli_opt_str(C, argc, argv, &i, &a->prompt);
        else if (!strcmp(f, "-f") || !strcmp(f, "--file")) rc = cke_cli_opt_str(C, argc, argv, &i, &a->prompt_file);
        else if (!strcmp(f, "-n") || !strcmp(f, "--n-predict"))
            rc = cke_cli_opt_i64(C, argc, argv, &i, -1, INT64_MAX, "a token count (>= 0, or -1 for no limit)", &a->n_gen);
        else if (!strcmp(f, "-c") || !strcmp(f, "--ctx"))
            rc = cke_cli_opt_i64(C, argc, argv, &i, 1, INT32_MAX, "a context length (>= 1)", &a->ctx);
        else if (!strcmp(f, "--kv-type")) rc = cke_cli_opt_kv(C, argc, argv, &i, &a->kv_type);
        else if (!strcmp(f, "-t") || !strcmp(f, "--threads"))
            rc = cke_cli_opt_i64(C, argc, argv, &i, 1, 1024, "a thread count (1-1024)", &a->threads);
        else if (!strcmp(f, "-s") || !strcmp(f, "--seed"))
            rc = cke_cli_opt_i64(C, argc, argv, &i, 0, INT64_MAX, "a seed (>= 0)", &a->seed);
        else if (!strcmp(f, "--temp"))
            rc = cke_cli_opt_f(C, argc, argv, &i, 0, 1e6, "a temperature (>= 0)", &a->so.temp);
        else if (!strcmp(f, "--top-k")) {
            int64_t k = 0;
            rc = cke_cli_opt_i64(C, argc, argv, &i, 0, INT32_MAX, "a top-k (>= 0; 0 = off)", &k);
            a->so.top_k = (int)k;
        } else if (!strcmp(f, "--top-p"))
            rc = cke_cli_opt_f(C, argc, argv, &i, 0, 1, "a top-p (0 to 1)", &a->so.top_p);
        else if (!strcmp(f, "--min-p"))
            rc = cke_cli_opt_f(C, argc, argv, &i, 0, 1, "a min-p (0 to 1)", &a->so.min_p);
        else if (!strcmp(f, "--repeat-penalty"))
            rc = cke_cli_opt_f(C, argc, argv, &i, 1e-6, 1e6, "a repeat penalty (> 0; 1 = off)", &a->so.repeat_penalty);
        else if (!strcmp(f, "--tokenizer")) rc = cke_cli_opt_str(C, argc, argv, &i, &a->tok);
        else if (!strcmp(f, "--stop")) {
            if (a->n_stops == MAX_STOPS) { fprintf(stderr, "cke run: --stop: at most %d stop strings\n", MAX_STOPS); return 2; }
            rc = cke_cli_opt_str(C, argc, argv, &i, &a->stops[a->n_stops]);
            if (!rc && !a->stops[a->n_stops][0]) { fprintf(stderr, "cke run: --stop: the stop string is empty\n"); return 2; }
            a->n_stops += !rc;
        } else if (!strcmp(f, "--no-special")) a->special = 0;
        else if (!strcmp(f, "--bos")) a->bos = 1;
        else if (!strcmp(f, "--no-bos")) a->bos = 0;
        else if (!strcmp(f, "--dist-timeout"))
            rc = cke_cli_opt_d(C, argc, argv, &i, 1e-3, 1e6, "a time in seconds (0.001 to 1e6)", &a->dist_timeout);
        else if (f[0] == '-' && f[1]) return cke_cli_unknown(C, f);
        else if (!a->target) a->target = f;
        else return cke_cli_unknown(C, f);
        if (rc) return rc;
    }
    if (!a->target) {
        fprintf(stderr, "cke run: no model given\n");
        run_usage(stderr);
        return 2;
    }
    if (a->prompt && a->prompt_file) { fprintf(stderr, "cke run: give the prompt with -p or -f, not both\n"); return 2; }
    return 0;
}

/* the whole of FILE ("-": standard input) as a NUL-terminated string */
static char *read_prompt_file(const char *path) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) { fprintf(stderr, "cke run: -f: cannot open %s\n", path); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "cke run: -f: %s is a directory\n", path);
        fclose(f);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            char *nb = cap < ((size_t)1 << 30) ? realloc(buf, cap * 2) : NULL;
            if (!nb) { fprintf(stderr, "cke run: -f: %s is larger than 1 GiB\n", path); free(buf); buf = NULL; break; }
            buf = nb, cap *= 2;
        }
    }
    if (buf && ferror(f)) { fprintf(stderr, "cke run: -f: error reading %s\n", path); free(buf); buf = NULL; }
    if (buf) buf[n] = 0;
    if (f != stdin) fclose(f);
    return buf;
}

/* The compiled directory for the run: the target itself when compiled, else the cache entry. */
static int run_dir(const run_args *a, const cke_engine_opts *eo, char *dir, size_t n) {
    cke_target t;
    if (cke_cli_target("run", a->target, &t)) return 1;
    if (t.kind == CKE_TARGET_COMPILED) {
        if (!cke_cli_compiled_kv_ok(t.model, a->kv_type)) return 1;
        snprintf(dir, n, "%s", t.model);
        return 0;
    }
    if (t.kind == CKE_TARGET_TRAIN_OUT)
        fprintf(stderr, "cke run: %s is a training output directory: running its checkpoint %s\n", a->target, t.model);
    const char *tok = a->tok ? a->tok : t.tokenizer[0] ? t.tokenizer : NULL;
    return cke_cli_model_dir_tp(t.model, tok, a->ctx, a->kv_type, eo->tp_rank, eo->tp_size, dir, n);
}

static int prompt_ids(const run_args *a, const cke_engine *e, const char *prompt, int32_t **ids, size_t *n_ids) {
    cke_err err = {0};
    cke_status s = cke_tokenize(e, prompt, strlen(prompt), a->bos, a->special, ids, n_ids, &err);
    if (s) return cke_cli_fail("run", s, &err);
    if (*n_ids == 0) { /* an empty prompt starts from BOS, if the vocabulary has one */
        int32_t bos = cke_engine_info(e)->bos;
        if (bos < 0) {
            fprintf(stderr, "cke run: the prompt is empty and the vocabulary has no BOS token to start from: give a prompt (-p)\n");
            return 1;
        }
        (*ids)[0] = bos, *n_ids = 1;
    }
    return 0;
}

/* each token's text as it becomes final */
static int print_piece(void *user, const cke_token *t) {
    (void)user;
    fwrite(t->text, 1, t->len, stdout);
    fflush(stdout);
    return 0;
}

/* The prompt, then the continuation, through a session of the library. */
static int generate(const run_args *a, cke_engine *e, const char *prompt) {
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = prompt_ids(a, e, prompt, &ids, &n_ids);
    if (rc) { free(ids); return rc; }
    cke_err err = {0};
    cke_session *ss = NULL;
    cke_status s = cke_session_new(e, &ss, &err);
    double t0 = cke_cli_now();
    if (!s) s = cke_session_prefill(ss, ids, n_ids, NULL, &err);
    double t1 = cke_cli_now();
    free(ids);
    if (s) { cke_session_free(ss); return cke_cli_fail("run", s, &err); }
    fputs(prompt, stdout);
    fflush(stdout);
    cke_gen_opts g = {.temp = a->so.temp, .top_k = a->so.top_k, .top_p = a->so.top_p, .min_p = a->so.min_p,
                      .repeat_penalty = a->so.repeat_penalty, .repeat_last_n = a->so.repeat_last_n,
                      .seed = a->so.seed, .max_tokens = a->n_gen < 0 ? -1 : a->n_gen, .stop = a->stops,
                      .n_stop = a->n_stops, .on_token = print_piece};
    cke_gen_result res;
    s = cke_session_generate(ss, &g, &res, &err);
    printf("\n");
    if (s) rc = cke_cli_fail("run", s, &err);
    else if (res.stop == CKE_STOP_CONTEXT_FULL)
        fprintf(stderr, "cke run: the context of %lld tokens is full\n", (long long)cke_engine_info(e)->ctx);
    double tg = res.t_prompt_s + res.t_gen_s;
    if (!s && !a->quiet_stats)
        fprintf(stderr, "cke: prompt %lld tokens in %.3f s (%.1f tok/s); generated %lld tokens in %.3f s (%.1f tok/s); %lld threads\n",
            (long long)n_ids, t1 - t0, (double)n_ids / (t1 - t0 > 0 ? t1 - t0 : 1e-9), (long long)res.n_generated, tg,
            (double)res.n_generated / (tg > 0 ? tg : 1e-9), (long long)a->threads);
    cke_gen_result_free(&res);
    cke_session_free(ss);
    return rc;
}

int cke_cli_run(int argc, char **argv) {
    run_args a = {.prompt = NULL, .n_gen = 256, .seed = -1, .special = 1, .bos = -1, .kv_type = -1, .so = CKE_SAMPLER_DEFAULTS,
                  .dist_timeout = 60};
    int rc = parse_run_args(argc, argv, &a);
    if (rc) return rc == 1 ? 0 : rc;
    char *file_prompt = NULL;
    if (a.prompt_file && !(file_prompt = read_prompt_file(a.prompt_file))) return 1;
    const char *prompt = file_prompt ? file_prompt : a.prompt ? a.prompt : "";
    a.so.seed = a.seed >= 0 ? (uint64_t)a.seed : (uint64_t)time(NULL);

    /* under mpirun: tensor parallel, one rank per process (cli/tp.h) */
    cke_cli_tp tp;
    cke_engine_opts eo = CKE_ENGINE_DEFAULTS;
    if ((rc = cke_cli_tp_begin("run", &tp, a.dist_timeout, &a.threads, &a.so.seed, &eo))) { free(file_prompt); return rc; }
    a.quiet_stats = tp.d.rank > 0;
    char dir[PATH_MAX];
    rc = cke_cli_tp_agree("run", &tp, run_dir(&a, &eo, dir, sizeof dir));
    if (rc) { free(file_prompt); return cke_cli_tp_end(&tp, rc); }
    if (a.threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        a.threads = nc > 0 ? nc : 1;
    }
    cke_err e = {0};
    cke_engine *eng = NULL;
    eo.threads = (int)a.threads;
    cke_status s = cke_engine_open(dir, &eo, &eng, &e);
    if (s) rc = cke_cli_fail("run", s, &e);
    rc = cke_cli_tp_agree("run", &tp, rc);
    if (!rc) rc = generate(&a, eng, prompt);
    cke_engine_close(eng);
    free(file_prompt);
    return cke_cli_tp_end(&tp, rc);
}

int cke_cli_parity(int argc, char **argv) {
    const char *dir = NULL, *ref = NULL, *html = NULL;
    int64_t chunk = 0;
    float tol = 1e-3f;
    int verbose = 0, help = 0;
    for (int i = 1; i < argc; i++) {
        if (cke_cli_is_help(argv[i])) { help = 1; goto usage; }
        int rc = 0;
        if (!strcmp(argv[i], "--chunk")) rc = cke_cli_opt_i64("parity", argc, argv, &i, 0, INT32_MAX, "a chunk length (>= 0)", &chunk);
        else if (!strcmp(argv[i], "--tol")) rc = cke_cli_opt_f("parity", argc, argv, &i, 1e-30, 1e30, "a tolerance (> 0)", &tol);
        else if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (!strcmp(argv[i], "--html")) rc = cke_cli_opt_str("parity", argc, argv, &i, &html);
        else if (argv[i][0] == '-') return cke_cli_unknown("parity", argv[i]);
        else if (!dir) dir = argv[i];
        else if (!ref) ref = argv[i];
        else return cke_cli_unknown("parity", argv[i]);
        if (rc) return rc;
    }
    if (!dir || !ref) goto usage;
    cke_err e = {0};
    cke_runner *r = NULL;
    cke_status s = cke_runner_open(dir, 1, &r, &e);
    if (s) return cke_cli_fail("parity", s, &e);
    cke_parity_result res;
    cke_parity_table tab = {0};
    s = cke_parity_run_table(r, ref, chunk, tol, verbose ? stdout : NULL, html ? &tab : NULL, &res, &e);
    cke_runner_close(r);
    if (!s && html) s = cke_report_parity_write(html, dir, ref, &tab, &res, tol, &e);
    cke_parity_table_free(&tab);
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
    fprintf(help ? stdout : stderr, "usage: cke parity DIR REF.trace [--chunk N] [--tol REL] [-v] [--html FILE]\n"
                    "  runs the reference's tokens through the compiled model with tracing and prints the first\n"
                    "  IR value (name, layer, position) whose relative error exceeds --tol (default 1e-3);\n"
                    "  --html FILE also writes the per-value error table as a page (first divergence highlighted)\n");
    return help ? 0 : 2;
}
