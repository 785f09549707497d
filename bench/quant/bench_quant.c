/* Quantized-model tools for the benchmark and the tests:
 *   bench_quant make-model OUT.gguf DIM FFN LAYERS HEADS KV_HEADS VOCAB TOKSRC.gguf [SEED [EXPERTS USED]]
 *       a llama-architecture GGUF with random F32 weights (N(0, 1/sqrt(fan_in)) matrices, unit
 *       norms) and TOKSRC's tokenizer metadata (its vocabulary size must be VOCAB)
 *   bench_quant speed DIR THREADS [DECODE_TOKENS] [PREFILL_TOKENS]
 *       decode and prefill tokens/s of a compiled model directory (best of 3), next to the
 *       memory read bandwidth measured in the same run (before and after; the higher reading):
 *       decode's roofline is bandwidth / the weight bytes one token streams (weights.bin's payload).
 *   bench_quant llama-bench DIR THREADS PP TG DEPTH REPS
 *       llama-bench's pp/tg/tg-at-depth on a compiled model (bench/llama/llama_bench.sh)
 * Prints one line per measurement; bench/quant/bench_quant.sh runs the TinyLlama table. */
#include "../machine.h"
#include "cke/kernels.h"
#include "formats/gguf.h"
#include "runtime/runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t rng_s;
static double urand(void) {
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}
static float nrand(void) { return (float)(sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand())); }

static float *rand_mat(int64_t rows, int64_t cols, float scale) {
    float *m = malloc((size_t)(rows * cols) * sizeof(float));
    if (!m) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (int64_t i = 0; i < rows * cols; i++) m[i] = scale * nrand();
    return m;
}

static int make_model(int argc, char **argv) {
    if (argc < 10) {
        fprintf(stderr, "usage: bench_quant make-model OUT DIM FFN LAYERS HEADS KV VOCAB TOKSRC [SEED [EXPERTS USED]]\n");
        return 2;
    }
    int64_t dim = atoll(argv[3]), ffn = atoll(argv[4]), nl = atoll(argv[5]), nh = atoll(argv[6]), nkv = atoll(argv[7]),
            vocab = atoll(argv[8]);
    rng_s = argc > 10 ? strtoull(argv[10], NULL, 10) : 1234;
    /* a mixture of experts (llama.cpp's Mixtral layout): FFN is each expert's width */
    const int64_t n_exp = argc > 12 ? atoll(argv[11]) : 0, n_used = argc > 12 ? atoll(argv[12]) : 0;
    if (n_exp < 0 || n_exp > 256 || (n_exp && (n_used < 1 || n_used > n_exp))) {
        fprintf(stderr, "make-model: EXPERTS %lld USED %lld: 1 <= USED <= EXPERTS <= 256\n", (long long)n_exp, (long long)n_used);
        return 2;
    }
    cke_err e = {0};
    cke_gguf *tg = NULL;
    cke_gguf_writer *w = NULL;
    if (cke_gguf_open(argv[9], &tg, &e) || cke_gguf_writer_new(&w, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    const char *arch = "llama";
    cke_gguf_writer_set_str(w, "general.architecture", arch, strlen(arch), &e);
    cke_gguf_writer_set_str(w, "general.name", "random-llama", 12, &e);
    cke_gguf_writer_set_u32(w, "llama.context_length", 2048, &e);
    cke_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)dim, &e);
    cke_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)nl, &e);
    cke_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)ffn, &e);
    cke_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)nh, &e);
    cke_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)nkv, &e);
    cke_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)(dim / nh), &e);
    cke_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &e);
    cke_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.f, &e);
    cke_gguf_writer_set_u32(w, "general.file_type", 0, &e);
    if (n_exp) {
        cke_gguf_writer_set_u32(w, "llama.expert_count", (uint32_t)n_exp, &e);
        cke_gguf_writer_set_u32(w, "llama.expert_used_count", (uint32_t)n_used, &e);
    }
    for (int64_t i = 0; i < cke_gguf_n_kv(tg); i++) {
        const cke_gguf_kv *kv = cke_gguf_kv_at(tg, i);
        if (!strncmp(kv->key, "tokenizer.", 10) && cke_gguf_writer_copy_kv(w, tg, kv, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    }
    int64_t hd = dim / nh, kvd = nkv * hd;
    int nbuf = 0, nnames = 0;
    float *bufs[1024];
    char *names[1024]; /* the writer keeps pointers to them until it writes */
    float *ones_d = malloc((size_t)dim * sizeof(float));
    for (int64_t i = 0; i < dim; i++) ones_d[i] = 1.0f;
    bufs[nbuf++] = ones_d;
#define ADD(name, nd, n0, n1, data)                                                                 \
    do {                                                                                           \
        int64_t ne[2] = {n0, n1};                                                                  \
        if (cke_gguf_writer_add_tensor(w, name, CKE_DT_F32, nd, ne, data, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; } \
    } while (0)
    float *emb = rand_mat(vocab, dim, 1.0f);
    bufs[nbuf++] = emb;
    ADD("token_embd.weight", 2, dim, vocab, emb);
    char nm[128];
    for (int64_t l = 0; l < nl && nbuf + 8 < 1024 && nnames + 9 < 1024; l++) {
        float s_in = 1.0f / sqrtf((float)dim), s_ffn = 1.0f / sqrtf((float)ffn);
        struct { const char *n; int64_t rows, cols; float sc; } mats[] = {
            {"attn_q", dim, dim, s_in}, {"attn_k", kvd, dim, s_in}, {"attn_v", kvd, dim, s_in},
            {"attn_output", dim, dim, s_in}, {"ffn_gate", ffn, dim, s_in}, {"ffn_up", ffn, dim, s_in},
            {"ffn_down", dim, ffn, s_ffn}};
        snprintf(nm, sizeof nm, "blk.%lld.attn_norm.weight", (long long)l);
        ADD(names[nnames++] = strdup(nm), 1, dim, 1, ones_d);
        for (int k = 0; k < 7; k++) {
            if (k == 4) {
                snprintf(nm, sizeof nm, "blk.%lld.ffn_norm.weight", (long long)l);
                ADD(names[nnames++] = strdup(nm), 1, dim, 1, ones_d);
            }
            if (k >= 4 && n_exp) { /* the router, then [E] stacks of each expert's matrix */
                if (k == 4) {
                    float *r = rand_mat(n_exp, dim, s_in);
                    bufs[nbuf++] = r;
                    snprintf(nm, sizeof nm, "blk.%lld.ffn_gate_inp.weight", (long long)l);
                    ADD(names[nnames++] = strdup(nm), 2, dim, n_exp, r);
                }
                static const char *const exps[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
                float *m = rand_mat(n_exp * mats[k].rows, mats[k].cols, mats[k].sc);
                bufs[nbuf++] = m;
                snprintf(nm, sizeof nm, "blk.%lld.%s.weight", (long long)l, exps[k - 4]);
                int64_t ne3[3] = {mats[k].cols, mats[k].rows, n_exp};
                if (cke_gguf_writer_add_tensor(w, names[nnames++] = strdup(nm), CKE_DT_F32, 3, ne3, m, &e)) {
                    fprintf(stderr, "%s\n", e.msg);
                    return 1;
                }
                continue;
            }
            float *m = rand_mat(mats[k].rows, mats[k].cols, mats[k].sc);
            bufs[nbuf++] = m;
            snprintf(nm, sizeof nm, "blk.%lld.%s.weight", (long long)l, mats[k].n);
            ADD(names[nnames++] = strdup(nm), 2, mats[k].cols, mats[k].rows, m);
        }
    }
    ADD("output_norm.weight", 1, dim, 1, ones_d);
    float *out = rand_mat(vocab, dim, 1.0f / sqrtf((float)dim));
    bufs[nbuf++] = out;
    ADD("output.weight", 2, dim, vocab, out);
    if (cke_gguf_writer_write(w, argv[2], &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    for (int i = 0; i < nbuf; i++) free(bufs[i]);
    cke_gguf_writer_free(w);
    for (int i = 0; i < nnames; i++) free(names[i]);
    cke_gguf_close(tg);
    return 0;
}

static int speed(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: bench_quant speed DIR THREADS [DECODE] [PREFILL]\n"); return 2; }
    const char *dir = argv[2];
    int nth = atoi(argv[3]);
    int nd = argc > 4 ? atoi(argv[4]) : 8, np = argc > 5 ? atoi(argv[5]) : 64;
    char wp[4096];
    snprintf(wp, sizeof wp, "%s/weights.bin", dir);
    struct stat st;
    if (stat(wp, &st) != 0) { fprintf(stderr, "no %s\n", wp); return 1; }
    double wbytes = (double)st.st_size - 4096;
    /* bandwidth over 1 GiB, this thread count, measured right before and right after the
     * model's runs; the roofline takes the higher reading (what this shared VM's memory
     * delivered around then: readings move by 20% from minute to minute) */
    int64_t nbw = (int64_t)1 << 28;
    float *buf = cke_hp_alloc((size_t)nbw * sizeof(float));
    double bw = buf ? cke_machine_read_bw(buf, nbw, nth, 3) : 0;
    cke_err e = {0};
    cke_runner *r = NULL;
    if (cke_runner_open(dir, nth, &r, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    const ckm_api *api = r->api;
    /* a decode step reads one row of the (f32) embedding table, not all of it */
    for (int i = 0; i < api->n_tensors; i++)
        if (!strcmp(api->tensors[i].name, "tok_embd"))
            wbytes -= (double)api->tensors[i].numel * 4.0 * (1.0 - 1.0 / (double)api->tensors[i].dims[0]);
    int32_t *toks = malloc((size_t)np * sizeof(int32_t));
    for (int i = 0; i < np; i++) toks[i] = (int32_t)(1 + (i * 7919) % (api->vocab - 1));
    double best_p = 1e30, best_d = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        api->reset(r->m);
        double t0 = cke_now();
        if (api->prefill(r->m, toks, np)) { fprintf(stderr, "%s\n", api->last_error(r->m)); return 1; }
        double t1 = cke_now();
        for (int i = 0; i < nd; i++) api->decode(r->m, toks[i % np]);
        double t2 = cke_now();
        if (t1 - t0 < best_p) best_p = t1 - t0;
        if (t2 - t1 < best_d) best_d = t2 - t1;
    }
    if (buf) {
        double bw2 = cke_machine_read_bw(buf, nbw, nth, 3);
        if (bw2 > bw) bw = bw2;
    }
    free(buf);
    double dec = nd / best_d, roof = bw * 1e9 / wbytes;
    printf("%-28s threads %d  bytes/token %8.1f MB  decode %7.2f tok/s  roofline %7.2f tok/s (%5.1f%% of %.1f GB/s)  prefill(%d) %8.1f tok/s\n",
           dir, nth, wbytes / 1e6, dec, roof, 100 * dec / roof, bw, np, np / best_p);
    free(toks);
    cke_runner_close(r);
    return 0;
}

/* bench_quant llama-bench DIR THREADS PP TG DEPTH REPS: what llama-bench measures, on cke's
 * compiled model (bench/llama/llama_bench.sh runs both side by side): prefill of a PP-token
 * prompt into an empty context (pp), TG decode steps from an empty context, the first at
 * position 0 (tg), and TG steps after a DEPTH-token prompt that is not timed (tg at -d DEPTH).
 * One untimed warm-up pass, then the best of REPS; prints "pp|tg DEPTH tok/s" lines. */
static int llama_side(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: bench_quant llama-bench DIR THREADS PP TG DEPTH REPS\n");
        return 2;
    }
    const char *dir = argv[2];
    int nth = atoi(argv[3]), reps = atoi(argv[7]);
    int64_t np = atoll(argv[4]), ng = atoll(argv[5]), depth = atoll(argv[6]);
    if (nth < 1 || np < 1 || ng < 1 || depth < 0 || reps < 1 || np > 1 << 20 || depth > 1 << 20 || ng > 1 << 20) {
        fprintf(stderr, "bench_quant llama-bench: THREADS, PP, TG, REPS must be >= 1 and DEPTH >= 0\n");
        return 2;
    }
    cke_err e = {0};
    cke_runner *r = NULL;
    if (cke_runner_open(dir, nth, &r, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    const ckm_api *api = r->api;
    int64_t nt = np > depth ? np : depth;
    int32_t *toks = malloc((size_t)(nt + ng) * sizeof(int32_t));
    if (!toks) { fprintf(stderr, "out of memory\n"); cke_runner_close(r); return 1; }
    for (int64_t i = 0; i < nt + ng; i++) toks[i] = (int32_t)(1 + (i * 7919) % (api->vocab - 1));
    double best[3] = {1e30, 1e30, 1e30}; /* pp, tg at depth 0, tg at DEPTH */
    int rc = 0;
    for (int rep = -1; rep < reps && !rc; rep++) { /* rep -1: warm-up */
        double t[3];
        api->reset(r->m);
        double t0 = cke_now();
        rc |= api->prefill(r->m, toks, rep < 0 ? 16 : np);
        t[0] = cke_now() - t0;
        api->reset(r->m);
        t0 = cke_now();
        for (int64_t i = 0; i < (rep < 0 ? 2 : ng) && !rc; i++) rc |= api->decode(r->m, toks[nt + i]);
        t[1] = cke_now() - t0;
        api->reset(r->m);
        if (depth > 0 && !rc) rc |= api->prefill(r->m, toks, rep < 0 ? 16 : depth);
        t0 = cke_now();
        for (int64_t i = 0; i < (rep < 0 ? 2 : ng) && !rc; i++) rc |= api->decode(r->m, toks[nt + i]);
        t[2] = cke_now() - t0;
        for (int k = 0; k < 3 && rep >= 0; k++)
            if (t[k] < best[k]) best[k] = t[k];
    }
    if (rc) fprintf(stderr, "bench_quant llama-bench: %s: %s\n", dir, api->last_error(r->m));
    else {
        printf("pp 0 %.3f\n", (double)np / best[0]);
        printf("tg 0 %.3f\n", (double)ng / best[1]);
        if (depth > 0) printf("tg %lld %.3f\n", (long long)depth, (double)ng / best[2]);
    }
    free(toks);
    cke_runner_close(r);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "make-model")) return make_model(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "speed")) return speed(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "llama-bench")) return llama_side(argc, argv);
    fprintf(stderr, "usage: bench_quant make-model ... | speed DIR THREADS [DECODE] [PREFILL] | llama-bench DIR THREADS PP TG DEPTH REPS\n");
    return 2;
}
