/* cke bench: end-to-end prefill and decode speed of compiled models of real shapes, against the
 * machine's limits measured in the same run (bench/machine.c, the code bench_kernels uses).
 *
 * The models are random-weight GGUFs (llama architecture, F32, no tokenizer) written once into
 * a cache directory and compiled there with the library's compile path (driver/compile.h); a
 * model is recompiled when the cke executable or the kernel library is newer than its model.so,
 * so the numbers are always those of the current code generator and kernels.
 *
 * Ratios printed:
 *   decode  tok/s / (bandwidth / bytes read per token): the weights every token streams (all
 *           matrices and norms, one embedding row) + the average KV cache read;
 *   prefill flops/s / FMA peak, flops = 2 * T * (layer matrix params) + the logits of the last
 *           row (the generated code computes only those) + causal attention 4 * L * q_dim * T(T+1)/2. */
#define _DEFAULT_SOURCE /* setenv */
#include "cli/bench.h"
#include "cli/util.h"

#include "../../bench/machine.h"
#include "cke/cke.h"
#include "cke/kernels.h"
#include "driver/compile.h"
#include "formats/gguf.h"
#include "runtime/runner.h"
#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name, *desc;
    int64_t dim, n_layers, n_heads, n_kv_heads, ffn, vocab;
    int tied; /* output shares tok_embd (llama2.c stories models) */
} bench_shape;

static const bench_shape shapes[] = {
    {"stories15M", "llama2.c stories15M", 288, 6, 6, 6, 768, 32000, 1},
    {"stories110M", "llama2.c stories110M (110M Llama)", 768, 12, 12, 12, 2048, 32000, 1},
    {"tinyllama", "TinyLlama-1.1B", 2048, 22, 32, 4, 5632, 32000, 0},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0], MAX_NTH = 2, BENCH_CTX = 1024 };

static int64_t kv_dim(const bench_shape *s) { return s->dim / s->n_heads * s->n_kv_heads; }
/* elements of one layer's matrices */
static int64_t layer_mat(const bench_shape *s) {
    return 2 * s->dim * s->dim + 2 * s->dim * kv_dim(s) + 3 * s->dim * s->ffn;
}
static int64_t n_params(const bench_shape *s) {
    return s->n_layers * (layer_mat(s) + 2 * s->dim) + s->dim + s->vocab * s->dim * (s->tied ? 1 : 2);
}

/* ------------------------------------------------------------------ the random-weight GGUF */

static void fill_uniform(float *x, int64_t n, float scale, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)((s >> 8) & 0xffff) / 65536.0f - 0.5f) * scale;
    }
}

/* Every matrix points into one random buffer (the writer copies nothing until it writes): a
 * TinyLlama's 4.4 GB are written from 260 MB of memory. Same values in every layer do not
 * change the speed; the scale keeps activations in normal float range (no denormals). */
static cke_status write_gguf(const bench_shape *s, const char *path, cke_err *err) {
    int64_t big = s->vocab * s->dim;
    if (s->dim * s->ffn > big) big = s->dim * s->ffn;
    float *rnd = malloc((size_t)big * sizeof(float)), *ones = malloc((size_t)s->dim * sizeof(float));
    cke_gguf_writer *w = NULL;
    cke_status st = rnd && ones ? cke_gguf_writer_new(&w, err) : cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    if (st) { free(rnd); free(ones); return st; }
    fill_uniform(rnd, big, 2.0f / sqrtf((float)s->dim), 7);
    for (int64_t i = 0; i < s->dim; i++) ones[i] = 1.0f;
    const char *arch = "llama";
    int64_t kv = kv_dim(s);
#define TRYW(x) do { if (!st) st = (x); } while (0)
    TRYW(cke_gguf_writer_set_str(w, "general.architecture", arch, strlen(arch), err));
    TRYW(cke_gguf_writer_set_str(w, "general.name", s->name, strlen(s->name), err));
    TRYW(cke_gguf_writer_set_u32(w, "llama.context_length", 2048, err));
    TRYW(cke_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)s->dim, err));
    TRYW(cke_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)s->n_layers, err));
    TRYW(cke_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)s->ffn, err));
    TRYW(cke_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)s->n_heads, err));
    TRYW(cke_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_kv_heads, err));
    TRYW(cke_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(s->dim / s->n_heads), err));
    TRYW(cke_gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)s->vocab, err));
    TRYW(cke_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, err));
    TRYW(cke_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f, err));
    int64_t ne[2];
    ne[0] = s->dim; ne[1] = s->vocab;
    TRYW(cke_gguf_writer_add_tensor(w, "token_embd.weight", CKE_DT_F32, 2, ne, rnd, err));
    for (int64_t l = 0; l < s->n_layers && !st; l++) {
        static const struct { const char *n; int in_ffn, out; } mats[] = {
            /* out: 0 dim, 1 kv_dim, 2 ffn */
            {"attn_q", 0, 0}, {"attn_k", 0, 1}, {"attn_v", 0, 1}, {"attn_output", 0, 0},
            {"ffn_gate", 0, 2}, {"ffn_up", 0, 2}, {"ffn_down", 1, 0}};
        char nm[64];
        ne[0] = s->dim;
        snprintf(nm, sizeof nm, "blk.%lld.attn_norm.weight", (long long)l);
        TRYW(cke_gguf_writer_add_tensor(w, nm, CKE_DT_F32, 1, ne, ones, err));
        snprintf(nm, sizeof nm, "blk.%lld.ffn_norm.weight", (long long)l);
        TRYW(cke_gguf_writer_add_tensor(w, nm, CKE_DT_F32, 1, ne, ones, err));
        for (size_t k = 0; k < sizeof mats / sizeof mats[0]; k++) {
            ne[0] = mats[k].in_ffn ? s->ffn : s->dim;
            ne[1] = mats[k].out == 0 ? s->dim : mats[k].out == 1 ? kv : s->ffn;
            snprintf(nm, sizeof nm, "blk.%lld.%s.weight", (long long)l, mats[k].n);
            TRYW(cke_gguf_writer_add_tensor(w, nm, CKE_DT_F32, 2, ne, rnd, err));
        }
    }
    ne[0] = s->dim;
    TRYW(cke_gguf_writer_add_tensor(w, "output_norm.weight", CKE_DT_F32, 1, ne, ones, err));
    ne[1] = s->vocab;
    if (!s->tied) TRYW(cke_gguf_writer_add_tensor(w, "output.weight", CKE_DT_F32, 2, ne, rnd, err));
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    TRYW(cke_gguf_writer_write(w, tmp, err));
    if (!st && rename(tmp, path) != 0) st = cke_fail(err, CKE_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
    if (st) remove(tmp);
#undef TRYW
    cke_gguf_writer_free(w);
    free(rnd);
    free(ones);
    return st;
}

/* ------------------------------------------------------------------ cache and compile */

static void cache_root(char *out, size_t n) {
    const char *base = getenv("CKE_CACHE");
    if (base && *base) { snprintf(out, n, "%s/bench", base); return; }
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && *x) snprintf(out, n, "%s/cke/bench", x);
    else snprintf(out, n, "%s/.cache/cke/bench", getenv("HOME") ? getenv("HOME") : "/tmp");
}

static double mtime_of(const char *p) {
    struct stat st;
    if (stat(p, &st) != 0) return -1;
    return (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
}

/* GGUF (kept: writing it is the slow part) -> compiled dir, each only when missing or stale. */
static int prepare(const bench_shape *s, const char *root, int kv_type, char *dir, size_t n) {
    char gguf[PATH_MAX], so[PATH_MAX + 16], inc[PATH_MAX], tpl[PATH_MAX], libk[PATH_MAX], exe[PATH_MAX];
    cke_err e = {0};
    if (cke_mkdirs(root, &e)) { fprintf(stderr, "cke bench: %s\n", e.msg); return -1; }
    snprintf(gguf, sizeof gguf, "%s/%s-f32.gguf", root, s->name);
    /* one dir per KV type */
    snprintf(dir, n, "%s/%s%s%s", root, s->name, kv_type != CKE_KV_F16 ? "-kv-" : "",
             kv_type != CKE_KV_F16 ? cke_kv_type_name((cke_kv_type)kv_type) : "");
    if (access(gguf, R_OK) != 0) {
        fprintf(stderr, "cke bench: writing %s (%.2f GB of random F32 weights) ...\n", gguf,
                (double)n_params(s) * 4e-9);
        double t0 = cke_now();
        cke_status st = write_gguf(s, gguf, &e);
        if (st) { fprintf(stderr, "cke bench: %s: %s\n", cke_status_name(st), e.msg); return -1; }
        fprintf(stderr, "cke bench: written in %.1f s\n", cke_now() - t0);
    }
    cke_status st = cke_locate_resources(inc, tpl, libk, sizeof inc, &e);
    if (st) { fprintf(stderr, "cke bench: %s: %s\n", cke_status_name(st), e.msg); return -1; }
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = 0;
    snprintf(so, sizeof so, "%s/model.so", dir);
    double t_so = mtime_of(so);
    if (t_so >= 0 && t_so >= mtime_of(exe) && t_so >= mtime_of(libk) && t_so >= mtime_of(gguf)) return 0;
    fprintf(stderr, "cke bench: compiling %s -> %s ...\n", s->name, dir);
    double t0 = cke_now();
    cke_compile_opts o = {.out_dir = dir, .templates_dir = tpl, .include_dir = inc, .libk = libk,
                          .ctx = BENCH_CTX, .prefill_chunk = 512, .max_threads = MAX_NTH, .quiet = 1,
                          .kv_type = kv_type};
    st = cke_compile(gguf, &o, &e);
    if (st) { fprintf(stderr, "cke bench: compile %s: %s: %s\n", s->name, cke_status_name(st), e.msg); return -1; }
    fprintf(stderr, "cke bench: compiled in %.1f s\n", cke_now() - t0);
    return 0;
}

/* ------------------------------------------------------------------ timing */

typedef struct {
    double prefill_s, decode_s; /* best times */
} bench_times;

static int time_model(const char *dir, int nth, int64_t n_pre, int64_t n_dec, int reps, bench_times *bt) {
    cke_err e = {0};
    cke_runner *r = NULL;
    cke_status st = cke_runner_open(dir, nth, &r, &e);
    if (st) { fprintf(stderr, "cke bench: %s: %s\n", cke_status_name(st), e.msg); return -1; }
    const ckm_api *api = r->api;
    int32_t *tok = malloc((size_t)(n_pre + n_dec) * sizeof(int32_t));
    if (!tok) { cke_runner_close(r); fprintf(stderr, "cke bench: out of memory\n"); return -1; }
    uint32_t x = 12345;
    for (int64_t i = 0; i < n_pre + n_dec; i++) x = x * 1664525u + 1013904223u, tok[i] = (int32_t)((x >> 8) % (uint32_t)api->vocab);
    int rc = 0;
    bt->prefill_s = bt->decode_s = 1e30;
    /* warmup: touches every weight page and the arenas once */
    if (api->prefill(r->m, tok, 8) || api->decode(r->m, tok[8])) rc = -1;
    for (int rep = 0; rep < reps && !rc; rep++) {
        api->reset(r->m);
        double t0 = cke_now();
        if (api->prefill(r->m, tok, n_pre)) { rc = -1; break; }
        double t = cke_now() - t0;
        if (t < bt->prefill_s) bt->prefill_s = t;
        /* decode from an empty context (as llama-bench's tg): one token in, then n_dec steps */
        api->reset(r->m);
        if (api->prefill(r->m, tok, 1)) { rc = -1; break; }
        t0 = cke_now();
        for (int64_t i = 0; i < n_dec && !rc; i++)
            if (api->decode(r->m, tok[n_pre + i])) rc = -1;
        t = cke_now() - t0;
        if (t < bt->decode_s) bt->decode_s = t;
    }
    if (rc) fprintf(stderr, "cke bench: %s\n", api->last_error(r->m));
    free(tok);
    cke_runner_close(r);
    return rc;
}

/* peak[t], bw[t] raised to a short measurement at t threads */
static void limits_at(double *peak, double *bw, int t, const float *buf, int64_t n) {
    double p = cke_machine_peak_gflops(t, 4000000, 3), b = cke_machine_read_bw(buf, n, t, 3);
    if (p > peak[t]) peak[t] = p;
    if (b > bw[t]) bw[t] = b;
}

/* ------------------------------------------------------------------ command */

int cke_cli_bench(int argc, char **argv) {
    int pick[N_SHAPES] = {0}, any = 0, quick = 0, nth_max = MAX_NTH, help = 0, kv = CKE_KV_F16;
    const char *weights = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cke_cli_is_help(a)) { help = 1; goto usage; }
        if (!strcmp(a, "--quick")) quick = 1;
        else if (!strcmp(a, "--model") && v) {
            int found = 0;
            for (int k = 0; k < N_SHAPES; k++)
                if (!strcmp(v, shapes[k].name) || !strcmp(v, "all")) pick[k] = found = any = 1;
            if (!found) { fprintf(stderr, "cke bench: unknown model '%s'\n", v); goto usage; }
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            nth_max = atoi(v);
            if (nth_max < 1 || nth_max > MAX_NTH) goto usage;
            i++;
        } else if (!strcmp(a, "--kv-type")) {
            int rc = cke_cli_opt_kv("bench", argc, argv, &i, &kv);
            if (rc) return rc;
        } else if (!strcmp(a, "--weights") && v) {
            if (strcmp(v, "copy") && strcmp(v, "mmap") && strcmp(v, "both")) goto usage;
            weights = v;
            i++;
        } else goto usage;
    }
    if (!any)
        for (int k = 0; k < N_SHAPES; k++) pick[k] = 1;
    if (cke_kernels_init() != 0) { fprintf(stderr, "cke bench: CKE_ISA names an unknown or unsupported level\n"); return 1; }

    char root[PATH_MAX], dirs[N_SHAPES][PATH_MAX + 64];
    cache_root(root, sizeof root);
    for (int k = 0; k < N_SHAPES; k++)
        if (pick[k] && prepare(&shapes[k], root, kv, dirs[k], sizeof dirs[k])) return 1;

    /* limits before and after: the best of both passes */
    double peak[MAX_NTH + 1] = {0}, bw[MAX_NTH + 1] = {0};
    int64_t nbw = (quick ? ((int64_t)256 << 20) : ((int64_t)1 << 30)) / 4;
    float *bwbuf = cke_hp_alloc((size_t)nbw * 4);
    if (!bwbuf) { fprintf(stderr, "cke bench: out of memory\n"); return 1; }
    for (int64_t i = 0; i < nbw; i++) bwbuf[i] = (float)(i & 1023);
    cke_machine_measure(peak, bw, nth_max, bwbuf, nbw, quick);

    int64_t n_pre = quick ? 128 : 512, n_dec = quick ? 32 : 128;
    int reps = quick ? 1 : 3;
    const char *modes[2] = {NULL, NULL};
    int n_modes = 1;
    if (weights && !strcmp(weights, "both")) modes[0] = "mmap", modes[1] = "copy", n_modes = 2;
    else modes[0] = weights;
    /* each row's fractions are against the limits measured right before and after it (the best
     * of the two): the 2 cores are shared, and a neighbour's load comes and goes */
    struct { int k, t, mode; bench_times bt; double peak, bw; } res[N_SHAPES * MAX_NTH * 2];
    int nres = 0;
    const char *old = getenv("CKE_WEIGHTS");
    char *saved = old ? strdup(old) : NULL;
    for (int k = 0; k < N_SHAPES; k++) {
        if (!pick[k]) continue;
        for (int md = 0; md < n_modes; md++) {
            if (modes[md]) setenv("CKE_WEIGHTS", modes[md], 1);
            for (int t = 1; t <= nth_max; t++) {
                fprintf(stderr, "cke bench: %s, %d thread%s%s%s ...\n", shapes[k].name, t, t > 1 ? "s" : "",
                        modes[md] ? ", weights " : "", modes[md] ? modes[md] : "");
                double lp[MAX_NTH + 1] = {0}, lb[MAX_NTH + 1] = {0};
                limits_at(lp, lb, t, bwbuf, nbw);
                if (time_model(dirs[k], t, n_pre, n_dec, reps, &res[nres].bt)) { free(bwbuf); free(saved); return 1; }
                limits_at(lp, lb, t, bwbuf, nbw);
                if (lp[t] > peak[t]) peak[t] = lp[t];
                if (lb[t] > bw[t]) bw[t] = lb[t];
                res[nres].k = k, res[nres].t = t, res[nres].mode = md, res[nres].peak = lp[t], res[nres].bw = lb[t];
                nres++;
            }
        }
    }
    if (saved) setenv("CKE_WEIGHTS", saved, 1);
    else unsetenv("CKE_WEIGHTS");
    free(saved);
    cke_machine_measure(peak, bw, nth_max, bwbuf, nbw, quick);
    free(bwbuf);

    printf("cke bench: isa %s%s; random-weight F32 models compiled in %s\n", cke_isa_name(cke_isa_active()),
           quick ? " (quick)" : "", root);
    for (int t = 1; t <= nth_max; t++)
        printf("machine, %d thread%s: FP32 FMA peak %.1f GFLOPS, memory read %.1f GB/s (best of all passes; each row below\n"
               "  uses its own, measured right before and after it)\n",
               t, t > 1 ? "s" : " ", peak[t], bw[t]);
    for (int i = 0; i < nres; i++)
        if (res[i].t > 1 && res[i].peak < 1.5 * peak[1]) {
            /* measured: with another process busy on one of 2 cores, libgomp's spinning threads
             * made a 2-thread decode 100x slower (3 tok/s vs 460); OMP_WAIT_POLICY=PASSIVE: 380 */
            printf("note: %s at %d threads saw an FMA peak of %.0f GFLOPS (< 1.5x one thread's): another process\n"
                   "  held a core, so that row measures contention (OMP_WAIT_POLICY=PASSIVE limits the damage)\n",
                   shapes[res[i].k].name, res[i].t, res[i].peak);
        }
    printf("prefill: %lld-token prompt, best of %d; decode: %lld tokens from an empty context, best of %d\n",
           (long long)n_pre, reps, (long long)n_dec, reps);
    printf("%-12s %7s %8s %4s %-5s %11s %8s %7s %7s %10s %6s %9s %7s\n", "model", "params", "weights", "thr", "wmap",
           "prefill t/s", "GFLOPS", "peak", "%peak", "decode t/s", "GB/s", "roof t/s", "%roof");
    for (int i = 0; i < nres; i++) {
        const bench_shape *s = &shapes[res[i].k];
        int t = res[i].t;
        double T = (double)n_pre, L = (double)s->n_layers, qd = (double)s->dim;
        double fl = 2.0 * T * L * (double)layer_mat(s) + 2.0 * (double)s->vocab * (double)s->dim +
                    4.0 * L * qd * T * (T + 1) / 2;
        double gf = fl / res[i].bt.prefill_s * 1e-9;
        /* bytes per decode token: matrices + norms + logits matrix + one embedding row + mean KV read */
        double wb = 4.0 * ((double)s->n_layers * (double)(layer_mat(s) + 2 * s->dim) + (double)s->dim +
                           (double)s->vocab * (double)s->dim + (double)s->dim);
        double kvb = 4.0 * 2 * L * (double)kv_dim(s) * ((double)n_dec / 2 + 1);
        double roof = res[i].bw * 1e9 / (wb + kvb);
        double dec = (double)n_dec / res[i].bt.decode_s;
        printf("%-12s %6.0fM %7.0fM %4d %-5s %11.1f %8.1f %7.1f %6.1f%% %10.1f %6.1f %9.1f %6.1f%%\n", s->name,
               (double)n_params(s) * 1e-6, (double)n_params(s) * 4 / (1 << 20), t,
               modes[res[i].mode] ? modes[res[i].mode] : (getenv("CKE_WEIGHTS") ? getenv("CKE_WEIGHTS") : "dflt"),
               T / res[i].bt.prefill_s, gf, res[i].peak, 100 * gf / res[i].peak, dec, res[i].bw, roof, 100 * dec / roof);
    }
    return 0;
usage:
    fprintf(help ? stdout : stderr, "usage: cke bench [--model stories15M|stories110M|tinyllama|all]... [--quick] [--threads 1|2]\n"
                    "                 [--weights mmap|copy|both] [--kv-type f16|f32|q8_0]\n"
                    "  random-weight F32 models of real shapes (cached in $CKE_CACHE/bench, default ~/.cache/cke/bench):\n"
                    "  prefill tok/s (512-token prompt) as a fraction of the FMA peak, decode tok/s (128 tokens) as a\n"
                    "  fraction of the bandwidth roofline, both limits measured in the same run; --weights sets\n"
                    "  CKE_WEIGHTS for the compiled model (copy: weights in huge-page memory; mmap: the file mapping)\n");
    return help ? 0 : 2;
}
