#define _DEFAULT_SOURCE   /* realpath */
#define _XOPEN_SOURCE 700 /* nftw */
#include "train/trainer.h"

#include "cke/kernels.h"
#include "driver/compile.h"
#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "formats/model.h"
#include "formats/safetensors.h"
#include "runtime/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t cke_train_stop_requested;

/* ------------------------------------------------------------------ small helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Fault injection for the tests: CKE_FAULT_AT=NAME:N ends the process on the N-th pass through
 * the point NAME (_exit(137), as kill -9 would: nothing is flushed or cleaned up). Inert unless
 * set; the points are listed in trainer.h. */
static void fault_point(const char *name) {
    static long hits;
    const char *f = getenv("CKE_FAULT_AT");
    size_t l = strlen(name);
    if (!f || strncmp(f, name, l) != 0 || f[l] != ':') return;
    if (++hits == strtol(f + l + 1, NULL, 10)) _exit(137);
}

static cke_status ensure_dir(const char *d, cke_err *err) {
    if (mkdir(d, 0755) != 0 && errno != EEXIST) return cke_fail(err, CKE_ERR_IO, "cannot create %s: %s", d, strerror(errno));
    return CKE_OK;
}

/* rm -rf without a shell: depth first, never following a symbolic link (a link is removed, not
 * what it points to). rm_fault names the fault point passed after each removal. */
static const char *rm_fault;
static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)ftw;
    if ((type == FTW_DP ? rmdir(p) : unlink(p)) != 0 && errno != ENOENT) return -1;
    if (rm_fault) fault_point(rm_fault);
    return 0;
}

static cke_status rm_rf(const char *d, const char *fault, cke_err *err) {
    struct stat sb;
    if (lstat(d, &sb) != 0)
        return errno == ENOENT ? CKE_OK : cke_fail(err, CKE_ERR_IO, "cannot remove %s: %s", d, strerror(errno));
    rm_fault = fault;
    int rc = nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    rm_fault = NULL;
    return rc == 0 ? CKE_OK : cke_fail(err, CKE_ERR_IO, "cannot remove %s: %s", d, strerror(errno));
}

/* fsync a file or a directory by path: what a rename publishes must be on disk before it */
static cke_status fsync_path(const char *p, cke_err *err) {
    int fd = open(p, O_RDONLY);
    if (fd < 0) return cke_fail(err, CKE_ERR_IO, "cannot open %s: %s", p, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? CKE_OK : cke_fail(err, CKE_ERR_IO, "cannot sync %s: %s", p, strerror(errno));
}

static cke_status write_file(const char *path, const void *data, size_t n, cke_err *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    int bad = n && fwrite(data, 1, n, f) != n;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    return bad ? cke_fail(err, CKE_ERR_IO, "write error on %s", path) : CKE_OK;
}

/* a whole regular file into memory (NUL-terminated); a FIFO or a device is refused, not waited on */
static char *read_file(const char *path, size_t *len, cke_err *err) {
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) { cke_fail(err, CKE_ERR_IO, "cannot open %s: %s", path, strerror(errno)); return NULL; }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        cke_fail(err, CKE_ERR_IO, "%s is not a regular file", path);
        return NULL;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    char *b = (uint64_t)sb.st_size < SIZE_MAX ? malloc(n + 1) : NULL;
    if (!b) { close(fd); cke_fail(err, CKE_ERR_NOMEM, "out of memory reading %s", path); return NULL; }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) { free(b); cke_fail(err, CKE_ERR_IO, "cannot read %s", path); return NULL; }
    b[n] = 0;
    *len = n;
    return b;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double normal(uint64_t *s) {
    double u1 = ((double)(splitmix(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ------------------------------------------------------------------ fresh initialization */

/* The tensors of a fresh model, written as the family's HF checkpoint: one buffer per tensor, kept
 * until the file is written. */
typedef struct {
    cke_safetensors_writer *w;
    float **bufs;
    int nb, cap;
    uint64_t rng;
    cke_status st;
    cke_err *err;
} init_writer;

/* a [rows] (cols 0) or [rows, cols] tensor: N(0, stdv) when stdv > 0, else every entry = fill */
static void init_put(init_writer *iw, const char *name, int64_t rows, int64_t cols, double stdv, float fill) {
    if (iw->st) return;
    if (iw->nb == iw->cap) { iw->st = cke_fail(iw->err, CKE_ERR_RANGE, "init: more tensors than planned"); return; }
    int64_t shp[2] = {rows, cols}, n = rows * (cols > 0 ? cols : 1);
    float *b = malloc((size_t)n * sizeof(float));
    if (!b) { iw->st = cke_fail(iw->err, CKE_ERR_NOMEM, "out of memory"); return; }
    iw->bufs[iw->nb++] = b;
    for (int64_t i = 0; i < n; i++) b[i] = stdv > 0 ? (float)(stdv * normal(&iw->rng)) : fill;
    iw->st = cke_safetensors_writer_add(iw->w, name, CKE_DT_F32, cols > 0 ? 2 : 1, shp, b, iw->err);
}

/* PREFIX l . SUFFIX: layer l's tensor */
static void init_layer_put(init_writer *iw, int64_t l, const char *prefix, const char *suffix, int64_t rows, int64_t cols,
                           double stdv, float fill) {
    char name[128];
    snprintf(name, sizeof name, "%s%lld.%s", prefix, (long long)l, suffix);
    init_put(iw, name, rows, cols, stdv, fill);
}

/* Llama in HF layout: N(0, 0.02) matrices (the residual projections scaled by 1/sqrt(2 L), GPT-2
 * style), unit norms, tied output. */
static void init_llama(init_writer *iw, int64_t D, int64_t L, int64_t H, int64_t KV, int64_t F, int64_t V) {
    const int64_t hd = D / H;
    const double rs = 0.02 / sqrt(2.0 * (double)L);
    const char *lf = "model.layers.";
    init_put(iw, "model.embed_tokens.weight", V, D, 0.02, 0);
    for (int64_t l = 0; l < L; l++) {
        init_layer_put(iw, l, lf, "input_layernorm.weight", D, 0, 0, 1);
        init_layer_put(iw, l, lf, "self_attn.q_proj.weight", H * hd, D, 0.02, 0);
        init_layer_put(iw, l, lf, "self_attn.k_proj.weight", KV * hd, D, 0.02, 0);
        init_layer_put(iw, l, lf, "self_attn.v_proj.weight", KV * hd, D, 0.02, 0);
        init_layer_put(iw, l, lf, "self_attn.o_proj.weight", D, H * hd, rs, 0);
        init_layer_put(iw, l, lf, "post_attention_layernorm.weight", D, 0, 0, 1);
        init_layer_put(iw, l, lf, "mlp.gate_proj.weight", F, D, 0.02, 0);
        init_layer_put(iw, l, lf, "mlp.up_proj.weight", F, D, 0.02, 0);
        init_layer_put(iw, l, lf, "mlp.down_proj.weight", D, F, rs, 0);
    }
    init_put(iw, "model.norm.weight", D, 0, 0, 1);
}

/* GPT-2 as HF's GPT2LMHeadModel saves it (Conv1D weights [in, out], q|k|v packed in c_attn):
 * its _init_weights: N(0, 0.02) embeddings and matrices, the residual projections (c_proj) at
 * 0.02/sqrt(2 L), zero biases, unit LayerNorms, tied output. */
static void init_gpt2(init_writer *iw, int64_t D, int64_t L, int64_t F, int64_t V, int64_t ctx) {
    const double rs = 0.02 / sqrt(2.0 * (double)L);
    const char *lf = "h.";
    init_put(iw, "wte.weight", V, D, 0.02, 0);
    init_put(iw, "wpe.weight", ctx, D, 0.02, 0);
    for (int64_t l = 0; l < L; l++) {
        init_layer_put(iw, l, lf, "ln_1.weight", D, 0, 0, 1);
        init_layer_put(iw, l, lf, "ln_1.bias", D, 0, 0, 0);
        init_layer_put(iw, l, lf, "attn.c_attn.weight", D, 3 * D, 0.02, 0);
        init_layer_put(iw, l, lf, "attn.c_attn.bias", 3 * D, 0, 0, 0);
        init_layer_put(iw, l, lf, "attn.c_proj.weight", D, D, rs, 0);
        init_layer_put(iw, l, lf, "attn.c_proj.bias", D, 0, 0, 0);
        init_layer_put(iw, l, lf, "ln_2.weight", D, 0, 0, 1);
        init_layer_put(iw, l, lf, "ln_2.bias", D, 0, 0, 0);
        init_layer_put(iw, l, lf, "mlp.c_fc.weight", D, F, 0.02, 0);
        init_layer_put(iw, l, lf, "mlp.c_fc.bias", F, 0, 0, 0);
        init_layer_put(iw, l, lf, "mlp.c_proj.weight", F, D, rs, 0);
        init_layer_put(iw, l, lf, "mlp.c_proj.bias", D, 0, 0, 0);
    }
    init_put(iw, "ln_f.weight", D, 0, 0, 1);
    init_put(iw, "ln_f.bias", D, 0, 0, 0);
}

static cke_status write_init_config(const cke_train_opts *o, int gpt2, int64_t D, int64_t L, int64_t H, int64_t KV,
                                    int64_t F, int64_t V, const char *dir, cke_err *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    if (gpt2)
        fprintf(f,
                "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n  \"n_embd\": %lld,\n"
                "  \"n_layer\": %lld,\n  \"n_head\": %lld,\n  \"n_inner\": %lld,\n  \"n_positions\": %lld,\n"
                "  \"vocab_size\": %lld,\n  \"activation_function\": \"gelu_new\",\n  \"layer_norm_epsilon\": 1e-05,\n"
                "  \"tie_word_embeddings\": true,\n  \"torch_dtype\": \"float32\"\n}\n",
                (long long)D, (long long)L, (long long)H, (long long)F, (long long)o->seq, (long long)V);
    else
        fprintf(f,
                "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": %lld,\n"
                "  \"intermediate_size\": %lld,\n  \"num_attention_heads\": %lld,\n  \"num_key_value_heads\": %lld,\n"
                "  \"num_hidden_layers\": %lld,\n  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n  \"vocab_size\": %lld,\n"
                "  \"max_position_embeddings\": %lld,\n  \"tie_word_embeddings\": true,\n  \"hidden_act\": \"silu\",\n"
                "  \"torch_dtype\": \"float32\"\n}\n",
                (long long)D, (long long)F, (long long)H, (long long)KV, (long long)L, (long long)V, (long long)o->seq);
    return fclose(f) == 0 ? CKE_OK : cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
}

/* A fresh model of the family --init names (llama or gpt2), written as its HF checkpoint. */
static cke_status write_init_model(const cke_train_opts *o, int64_t vocab, const char *dir, cke_err *err) {
    const int gpt2 = !strcmp(o->init, "gpt2");
    if (!gpt2 && strcmp(o->init, "llama") != 0)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "--init %s: the families that can be initialized are llama and gpt2", o->init);
    int64_t D = o->init_dim, L = o->init_layers, H = o->init_heads, KV = o->init_kv_heads ? o->init_kv_heads : H,
            F = o->init_ffn;
    if (D < 2 || D > 65536 || L < 1 || L > 1024 || H < 1 || H > 4096 || KV < 1 || KV > 4096 || F < 1 || F > (1 << 20) ||
        vocab < 1 || vocab > (1 << 24) || D % H || H % KV || (!gpt2 && (D / H) % 2))
        return cke_fail(err, CKE_ERR_ARG, "--init %s: need dim divisible by heads, even head size (llama), heads divisible by "
                                          "kv-heads, dim <= 65536, layers <= 1024, ffn <= 2^20 (dim %lld, heads %lld, kv-heads %lld)",
                        o->init, (long long)D, (long long)H, (long long)KV);
    if (gpt2 && KV != H)
        return cke_fail(err, CKE_ERR_ARG, "--init gpt2: GPT-2 has no grouped-query attention (--kv-heads %lld, --heads %lld)",
                        (long long)KV, (long long)H);
    cke_status st = ensure_dir(dir, err);
    if (st) return st;
    init_writer iw = {.rng = o->seed * 0x2545F4914F6CDD1Dull + 1, .cap = (int)(4 + 12 * L), .err = err};
    if ((st = cke_safetensors_writer_new(&iw.w, err))) return st;
    iw.bufs = calloc((size_t)iw.cap, sizeof(float *));
    if (!iw.bufs) iw.st = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    if (gpt2) init_gpt2(&iw, D, L, F, vocab, o->seq);
    else init_llama(&iw, D, L, H, KV, F, vocab);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!iw.st) iw.st = cke_safetensors_writer_write(iw.w, path, err);
    cke_safetensors_writer_free(iw.w);
    for (int i = 0; i < iw.nb; i++) free(iw.bufs[i]);
    free(iw.bufs);
    return iw.st ? iw.st : write_init_config(o, gpt2, D, L, H, KV, F, vocab, dir, err);
}

/* ------------------------------------------------------------------ checkpoints */

/* What a checkpoint copies from the source besides the weights, read once when training starts:
 * a save never re-reads the source, which may be the checkpoint directory the save replaces
 * (resume) or a fresh model deleted once compiled (--init). */
typedef struct {
    char name[32];
    char *data;
    size_t n;
} export_file;

typedef struct {
    cke_model *src;       /* the model trained (names, format, hyperparameters) */
    cke_gguf *gguf;       /* GGUF source: its key-values, kept open */
    cke_gguf *tok_gguf;   /* a GGUF tokenizer given with the model (--tokenizer), kept open */
    export_file files[4]; /* HF: config.json and tokenizer files; any source: a tokenizer.bin */
    int n_files;
} export_ctx;

static cke_status snapshot_file(export_ctx *x, const char *path, const char *name, int optional, cke_err *err) {
    if (optional && access(path, F_OK) != 0) return CKE_OK;
    export_file *f = &x->files[x->n_files];
    if (!(f->data = read_file(path, &f->n, err))) return err ? err->code : CKE_ERR_IO;
    snprintf(f->name, sizeof f->name, "%s", name);
    x->n_files++;
    return CKE_OK;
}

/* tok: the tokenizer file the model was given (NULL if none); a tokenizer.bin travels with it */
static cke_status snapshot_source(export_ctx *x, const char *tok, cke_err *err) {
    const cke_model *src = x->src;
    char path[PATH_MAX];
    cke_status st = CKE_OK;
    const char *ext = tok ? strrchr(tok, '.') : NULL;
    const int tok_json = ext && !strcmp(ext, ".json"), tok_gguf = ext && !strcmp(ext, ".gguf");
    if (src->source == CKE_SRC_HF) { /* a tokenizer given (--tokenizer) replaces the directory's */
        static const char *const names[] = {"config.json", "tokenizer.json", "tokenizer_config.json"};
        for (int k = 0; !st && k < (tok ? 1 : 3); k++) {
            snprintf(path, sizeof path, "%s/%s", src->path, names[k]);
            st = snapshot_file(x, path, names[k], k > 0, err);
        }
    } else if (src->source == CKE_SRC_GGUF) {
        st = cke_gguf_open(src->path, &x->gguf, err);
    }
    /* the tokenizer the model was compiled with travels with the checkpoint, so that it runs as
     * it is: a tokenizer.json (+ the tokenizer_config.json beside it) or a GGUF's vocabulary for
     * HF checkpoints (the HF reader looks for both), a tokenizer.bin for every source */
    if (!st && tok && src->source == CKE_SRC_HF && tok_json) {
        char cfg[PATH_MAX];
        const char *slash = strrchr(tok, '/');
        snprintf(cfg, sizeof cfg, "%.*stokenizer_config.json", slash ? (int)(slash - tok + 1) : 0, tok);
        st = snapshot_file(x, tok, "tokenizer.json", 0, err);
        if (!st) st = snapshot_file(x, cfg, "tokenizer_config.json", 1, err);
    } else if (!st && src->source == CKE_SRC_HF && (tok_gguf || (!tok && src->tok.source == CKE_TOK_GGUF))) {
        st = cke_gguf_open(tok ? tok : src->tok.path, &x->tok_gguf, err); /* given, or the checkpoint's own (--resume) */
    }
    if (!tok && src->tok.path && src->tok.source == CKE_TOK_LLAMA2C_BIN) tok = src->tok.path;
    if (!st && tok && !tok_json && !tok_gguf) st = snapshot_file(x, tok, "tokenizer.bin", 0, err);
    return st;
}

static void export_ctx_free(export_ctx *x) {
    for (int i = 0; i < x->n_files; i++) free(x->files[i].data);
    cke_gguf_close(x->gguf);
    cke_gguf_close(x->tok_gguf);
    cke_model_close(x->src);
    memset(x, 0, sizeof *x);
}

/* GGUF dims: ne[0] is the fastest (the last of our row-major shape) */
static void to_ne(const ckm_tensor *t, int64_t ne[4]) {
    for (int i = 0; i < t->ndim; i++) ne[i] = t->dims[t->ndim - 1 - i];
}

/* HF sources: a file tensor that loading split into several (Phi-3's qkv_proj and gate_up_proj,
 * GPT-2's c_attn: rows of q, k, v) or transposed (GPT-2's Conv1D [in, out]) is written back as
 * the file held it: the trained slices joined at the rows they came from, transposed back; the
 * experts' matrices, stacked on load into one [E, rows, cols] per layer and kind, one by one. */

/* The members of tensor i's file entry (the tensors with its src_name): their count; *first = 0
 * when an earlier tensor has the entry. r0/nr (capacity 4, or NULL): each member's rows of the
 * joined [rows, cols] matrix, from where its data sat in the loaded one. */
static int hf_group(const cke_model *src, const ckm_api *api, int i, int *first, int64_t *r0, int64_t *nr) {
    const cke_model_tensor *ti = cke_model_find(src, api->tensors[i].name);
    const char *base = NULL;
    int n = 0;
    *first = 1;
    for (int k = 0; k < api->n_tensors; k++) {
        const cke_model_tensor *tk = cke_model_find(src, api->tensors[k].name);
        if (strcmp(tk->src_name, ti->src_name)) continue;
        if (k < i) *first = 0;
        if (!base || (const char *)tk->data < base) base = tk->data;
    }
    for (int k = 0; k < api->n_tensors; k++) {
        const cke_model_tensor *tk = cke_model_find(src, api->tensors[k].name);
        if (strcmp(tk->src_name, ti->src_name)) continue;
        if (r0 && n < 4) {
            int64_t row = tk->shape[0] ? tk->nbytes / tk->shape[0] : 1;
            r0[n] = row ? (int64_t)((const char *)tk->data - base) / row : 0;
            nr[n] = tk->shape[0];
        }
        n++;
    }
    return n;
}

/* Every tensor can be written back: the rows of a split entry tile it exactly (else the join
 * would leave holes). Checked before training, so a run never ends unable to save. */
static cke_status export_check(const cke_model *src, const ckm_api *api, cke_err *err) {
    for (int i = 0; i < api->n_tensors; i++) {
        const cke_model_tensor *t = cke_model_find(src, api->tensors[i].name);
        if (!t) return cke_fail(err, CKE_ERR_MISSING, "export: tensor %s is not in the source model", api->tensors[i].name);
        if (src->source != CKE_SRC_HF) continue;
        if (strchr(t->src_name, '*')) { /* experts stacked on load: written back one tensor each */
            if (api->tensors[i].ndim != 3 || strchr(strchr(t->src_name, '*') + 1, '*'))
                return cke_fail(err, CKE_ERR_UNSUPPORTED, "export: %s (%s) is not a stack of expert matrices", t->name,
                                t->src_name);
            continue;
        }
        int64_t r0[4], nr[4], total = 0;
        int first, n = hf_group(src, api, i, &first, r0, nr);
        if (n > 4) return cke_fail(err, CKE_ERR_UNSUPPORTED, "export: %s is split into %d tensors", t->src_name, n);
        for (int a = 0; a < n; a++) total += nr[a];
        for (int a = 0; a < n; a++) {
            int ok = r0[a] >= 0 && r0[a] + nr[a] <= total;
            for (int b = 0; ok && b < a; b++) ok = r0[a] + nr[a] <= r0[b] || r0[b] + nr[b] <= r0[a];
            if (!ok) return cke_fail(err, CKE_ERR_UNSUPPORTED, "export: the tensors loaded from %s do not tile it", t->src_name);
        }
    }
    return CKE_OK;
}

/* Tensor i's file entry from the trained weights W: a new [rows, cols] buffer (shape in SHP), or
 * [cols, rows] when the file holds it transposed. */
static float *hf_join(const cke_model *src, const ckm_api *api, int i, const char *w, int64_t shp[2], cke_err *err) {
    const cke_model_tensor *ti = cke_model_find(src, api->tensors[i].name);
    int64_t r0[4], nr[4], rows = 0;
    int first, n = hf_group(src, api, i, &first, r0, nr);
    for (int a = 0; a < n; a++) rows += nr[a];
    const ckm_tensor *t = &api->tensors[i];
    int64_t cols = 1;
    for (int d = 1; d < t->ndim; d++) cols *= t->dims[d];
    float *j = malloc((size_t)(rows * cols) * sizeof(float)), *o = ti->transposed ? malloc((size_t)(rows * cols) * sizeof(float)) : j;
    if (!j || !o) {
        free(j), free(ti->transposed ? o : NULL);
        cke_fail(err, CKE_ERR_NOMEM, "out of memory writing %s", ti->src_name);
        return NULL;
    }
    for (int k = 0, a = 0; k < api->n_tensors; k++) /* hf_group's member order */
        if (!strcmp(cke_model_find(src, api->tensors[k].name)->src_name, ti->src_name))
            memcpy(j + r0[a] * cols, w + api->tensors[k].offset, (size_t)(nr[a] * cols) * sizeof(float)), a++;
    shp[0] = rows, shp[1] = cols;
    if (ti->transposed) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) o[c * rows + r] = j[r * cols + c];
        free(j);
        shp[0] = cols, shp[1] = rows;
    }
    return o;
}

static cke_status export_model(const export_ctx *x, const ckm_api *api, ckm_model *m, const char *dir, char *model_file,
                               size_t mfn, cke_err *err) {
    const char *w = api->state(m, 0);
    cke_status st = CKE_OK;
    char path[PATH_MAX];
    const cke_model *src = x->src;
    if ((st = export_check(src, api, err))) return st;
    if (src->source == CKE_SRC_HF) {
        cke_safetensors_writer *sw = NULL;
        if ((st = cke_safetensors_writer_new(&sw, err))) return st;
        float **bufs = calloc((size_t)api->n_tensors, sizeof(float *));
        if (!bufs) st = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        for (int i = 0; !st && i < api->n_tensors; i++) {
            const ckm_tensor *t = &api->tensors[i];
            const cke_model_tensor *mt = cke_model_find(src, t->name);
            int64_t shp[2];
            int first = 1, n = hf_group(src, api, i, &first, NULL, NULL);
            if (!first) continue; /* joined into an earlier tensor's file entry */
            const char *star = strchr(mt->src_name, '*');
            if (star) { /* [E, rows, cols] stacked from the experts' own tensors: one each again */
                const int64_t slice = t->dims[1] * t->dims[2];
                for (int64_t e = 0; !st && e < t->dims[0]; e++) {
                    char nm[256];
                    snprintf(nm, sizeof nm, "%.*s%lld%s", (int)(star - mt->src_name), mt->src_name, (long long)e, star + 1);
                    st = cke_safetensors_writer_add(sw, nm, CKE_DT_F32, 2, t->dims + 1,
                                                    (const float *)(w + t->offset) + e * slice, err);
                }
            } else if (n == 1 && !mt->transposed) {
                st = cke_safetensors_writer_add(sw, mt->src_name, CKE_DT_F32, t->ndim, t->dims, w + t->offset, err);
            } else if (!(bufs[i] = hf_join(src, api, i, w, shp, err))) {
                st = err ? err->code : CKE_ERR_NOMEM;
            } else {
                st = cke_safetensors_writer_add(sw, mt->src_name, CKE_DT_F32, t->ndim, shp, bufs[i], err);
            }
        }
        snprintf(model_file, mfn, "model.safetensors");
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!st) st = cke_safetensors_writer_write(sw, path, err);
        cke_safetensors_writer_free(sw);
        for (int i = 0; bufs && i < api->n_tensors; i++) free(bufs[i]);
        free(bufs);
    } else if (src->source == CKE_SRC_GGUF) {
        const cke_gguf *g = x->gguf;
        cke_gguf_writer *gw = NULL;
        st = cke_gguf_writer_new(&gw, err);
        for (int64_t i = 0; !st && i < cke_gguf_n_kv(g); i++) {
            const cke_gguf_kv *kv = cke_gguf_kv_at(g, i);
            if (!strcmp(kv->key, "general.file_type")) continue; /* now all f32 */
            st = cke_gguf_writer_copy_kv(gw, g, kv, err);
        }
        for (int i = 0; !st && i < api->n_tensors; i++) {
            const ckm_tensor *t = &api->tensors[i];
            int64_t ne[4] = {1, 1, 1, 1};
            to_ne(t, ne);
            st = cke_gguf_writer_add_tensor(gw, cke_model_find(src, t->name)->src_name, CKE_DT_F32, t->ndim, ne,
                                            w + t->offset, err);
        }
        snprintf(model_file, mfn, "model.gguf");
        snprintf(path, sizeof path, "%s/model.gguf", dir);
        if (!st) st = cke_gguf_writer_write(gw, path, err);
        cke_gguf_writer_free(gw);
    } else {
        /* llama2.c v0: the header from the hyperparameters, every tensor at the layout's offset */
        const cke_hparams *h = &src->hp;
        cke_llama2c_header lh = {.version = 0, .dim = h->dim, .hidden_dim = h->ffn_dim, .n_layers = h->n_layers,
                                 .n_heads = h->n_heads, .n_kv_heads = h->n_kv_heads, .vocab = h->vocab,
                                 .seq_len = h->ctx_len, .shared_classifier = h->tied_output, .header_bytes = 28};
        int64_t nt = cke_llama2c_n_tensors(&lh);
        cke_llama2c_tensor *lt = calloc((size_t)nt, sizeof *lt);
        if (!lt) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        cke_llama2c_layout(&lh, lt);
        uint64_t end = 28;
        for (int64_t i = 0; i < nt; i++)
            if (lt[i].offset + (uint64_t)lt[i].nbytes > end) end = lt[i].offset + (uint64_t)lt[i].nbytes;
        /* the legacy layout carries freq_cis tables before an unshared classifier; pad to them */
        uint64_t fc = 2ull * (uint64_t)h->ctx_len * (uint64_t)(h->head_dim / 2) * 4;
        if (h->tied_output) end += fc;
        char *buf = calloc(1, end);
        if (!buf) { free(lt); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
        int32_t hdr[7] = {(int32_t)h->dim, (int32_t)h->ffn_dim, (int32_t)h->n_layers, (int32_t)h->n_heads,
                          (int32_t)h->n_kv_heads, (int32_t)(h->tied_output ? h->vocab : -h->vocab), (int32_t)h->ctx_len};
        memcpy(buf, hdr, sizeof hdr);
        for (int64_t i = 0; !st && i < nt; i++) {
            int found = 0;
            for (int k = 0; k < api->n_tensors; k++)
                if (!strcmp(api->tensors[k].name, lt[i].name)) {
                    memcpy(buf + lt[i].offset, w + api->tensors[k].offset, (size_t)lt[i].nbytes);
                    found = 1;
                }
            if (!found) st = cke_fail(err, CKE_ERR_MISSING, "export: no tensor %s", lt[i].name);
        }
        snprintf(model_file, mfn, "model.bin");
        snprintf(path, sizeof path, "%s/model.bin", dir);
        FILE *f = st ? NULL : fopen(path, "wb");
        if (!st && (!f || fwrite(buf, 1, end, f) != end)) st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
        if (f && (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) && !st)
            st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
        free(buf);
        free(lt);
    }
    /* config.json and tokenizer files as the source had them */
    for (int i = 0; !st && i < x->n_files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, x->files[i].name);
        st = write_file(path, x->files[i].data, x->files[i].n, err);
    }
    snprintf(path, sizeof path, "%s/tokenizer.gguf", dir);
    if (!st && x->tok_gguf && !(st = cke_gguf_write_vocab(x->tok_gguf, path, err))) st = fsync_path(path, err);
    /* the writers do not sync: the rename that publishes this directory must come after */
    snprintf(path, sizeof path, "%s/%s", dir, model_file);
    if (!st) st = fsync_path(path, err);
    return st;
}

typedef struct {
    int64_t step, epoch, index;
} data_pos;

/* The save (trainer.h): every point of it where a kill leaves a different directory state is a
 * fault point, so the tests interrupt each one and resume. */
static cke_status save_checkpoint(const cke_train_opts *o, const export_ctx *x, const ckm_api *api, ckm_model *m,
                                  const char *mom_m, const char *mom_v, cke_train_state *s, cke_err *err) {
    char tmp[PATH_MAX], fin[PATH_MAX], old[PATH_MAX], path[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/checkpoint.tmp", o->out);
    snprintf(fin, sizeof fin, "%s/checkpoint", o->out);
    snprintf(old, sizeof old, "%s/checkpoint.old", o->out);
    cke_status st = rm_rf(tmp, NULL, err);
    fault_point("save-tmp-clean");
    if (!st) st = ensure_dir(tmp, err);
    if (!st) st = export_model(x, api, m, tmp, s->model_file, sizeof s->model_file, err);
    fault_point("save-model");
    /* optimizer state by tensor name */
    if (!st && api->n_tensors > 512) st = cke_fail(err, CKE_ERR_UNSUPPORTED, "checkpoint: more than 512 tensors");
    cke_safetensors_writer *sw = NULL;
    if (!st) st = cke_safetensors_writer_new(&sw, err);
    static char names[2][512][80];
    for (int which = 2; !st && which <= 3; which++) {
        const char *base = which == 2 ? mom_m : mom_v; /* AdamW m, v in the weights' layout */
        for (int i = 0; !st && i < api->n_tensors; i++) {
            const ckm_tensor *t = &api->tensors[i];
            snprintf(names[which - 2][i], sizeof names[0][0], "%s.%s", which == 2 ? "m" : "v", t->name);
            st = cke_safetensors_writer_add(sw, names[which - 2][i], CKE_DT_F32, t->ndim, t->dims, base + t->offset, err);
        }
    }
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    if (!st) st = cke_safetensors_writer_write(sw, path, err);
    cke_safetensors_writer_free(sw);
    if (!st) st = fsync_path(path, err);
    /* trainer.json last: a directory with it is whole */
    char *txt = st ? NULL : cke_train_state_format(s);
    if (!st && !txt) st = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/trainer.json", tmp);
    if (!st) st = write_file(path, txt, strlen(txt), err);
    free(txt);
    fault_point("save-state");
    if (!st) st = fsync_path(tmp, err);
    fault_point("save-fsync-tmp");
    /* the swap: at every instant checkpoint/ (with trainer.json) or checkpoint.old/ is whole */
    if (!st) st = rm_rf(old, NULL, err); /* left by a save killed while removing it */
    fault_point("save-stale-old");
    if (!st && access(fin, F_OK) == 0 && rename(fin, old) != 0)
        st = cke_fail(err, CKE_ERR_IO, "cannot rename %s to %s: %s", fin, old, strerror(errno));
    fault_point("save-rename-old");
    if (!st && rename(tmp, fin) != 0) st = cke_fail(err, CKE_ERR_IO, "cannot rename %s to %s: %s", tmp, fin, strerror(errno));
    fault_point("save-rename-new");
    if (!st) st = fsync_path(o->out, err);
    fault_point("save-fsync-dir");
    if (!st) st = rm_rf(old, "save-unlink-old", err);
    fault_point("save-done");
    return st;
}

static int has_state(const char *dir) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/trainer.json", dir);
    return access(p, F_OK) == 0;
}

static cke_status load_state(const char *dir, cke_train_state *s, cke_err *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/trainer.json", dir);
    size_t len = 0;
    char *txt = read_file(path, &len, err);
    if (!txt) return err ? err->code : CKE_ERR_IO;
    cke_err e2 = {0};
    cke_status st = cke_train_state_parse(txt, len, s, &e2);
    free(txt);
    if (st) return cke_fail(err, st, "%s/%s", dir, e2.msg); /* "DIR/trainer.json: "index": ..." */
    return CKE_OK;
}

cke_status cke_train_read_state(const char *out, cke_train_state *s, cke_err *err) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/checkpoint", out);
    if (!has_state(dir)) snprintf(dir, sizeof dir, "%s/checkpoint.old", out);
    if (!has_state(dir)) return cke_fail(err, CKE_ERR_MISSING, "--resume: no checkpoint in %s", out);
    return load_state(dir, s, err);
}

/* After a save cut short anywhere: checkpoint/ when it has trainer.json (it only ever appears
 * whole, by rename); else checkpoint.old/, renamed back to checkpoint/. Leftovers go. */
static cke_status recover_checkpoint(const char *out, char *ck_dir, size_t n, cke_err *err) {
    char old[PATH_MAX], tmp[PATH_MAX];
    snprintf(ck_dir, n, "%s/checkpoint", out);
    snprintf(old, sizeof old, "%s/checkpoint.old", out);
    snprintf(tmp, sizeof tmp, "%s/checkpoint.tmp", out);
    cke_status st = CKE_OK;
    if (!has_state(ck_dir)) {
        if (!has_state(old)) return cke_fail(err, CKE_ERR_MISSING, "--resume: no checkpoint in %s", out);
        if ((st = rm_rf(ck_dir, NULL, err))) return st;
        if (rename(old, ck_dir) != 0) return cke_fail(err, CKE_ERR_IO, "cannot rename %s: %s", old, strerror(errno));
        if ((st = fsync_path(out, err))) return st;
    }
    if (!(st = rm_rf(old, NULL, err))) st = rm_rf(tmp, NULL, err);
    return st;
}

/* A resume continues the run it was: the settings that shape the result must be the same.
 * --steps may change (stated in res->note); the thread count may (results do not depend on it). */
static cke_status check_resume(const cke_train_opts *o, const cke_train_state *s, int64_t data_bytes, uint64_t data_hash,
                               cke_train_result *res, cke_err *err) {
    const char *bad = NULL;
    double was = 0, now = 0;
#define SAME(flag, a, b) if (!bad && (a) != (b)) bad = flag, was = (double)(b), now = (double)(a)
    SAME("--batch", o->batch, s->batch);
    SAME("--seq", o->seq, s->seq);
    SAME("--accum", o->accum, s->accum);
    SAME("--seed", (double)o->seed, (double)s->seed);
    SAME("--lr", o->lr, (float)s->lr);
    SAME("--min-lr", o->min_lr, (float)s->min_lr);
    SAME("--warmup", o->warmup, s->warmup);
    SAME("--wd", o->wd, (float)s->wd);
    SAME("--clip", o->clip, (float)s->clip);
    SAME("beta1", o->beta1, (float)s->beta1);
    SAME("beta2", o->beta2, (float)s->beta2);
    SAME("eps", o->eps, (float)s->eps);
    SAME("--router-aux-coef", o->router_aux_set ? o->router_aux_coef : -1.0f, (float)s->router_aux_coef);
    SAME("--val-frac", o->val_frac, s->val_frac);
#undef SAME
    if (bad)
        return cke_fail(err, CKE_ERR_ARG, "--resume: %s %.7g differs from the checkpoint's %.7g (resume with the same "
                        "settings, or train into a new --out)", bad, now, was);
    if (o->bf16 != s->bf16)
        return cke_fail(err, CKE_ERR_ARG, "--resume: --precision %s differs from the checkpoint's %s (resume with the "
                        "same settings, or train into a new --out)", o->bf16 ? "bf16" : "fp32", s->bf16 ? "bf16" : "fp32");
    if (data_bytes != s->data_bytes || data_hash != s->data_hash)
        return cke_fail(err, CKE_ERR_ARG, "--resume: --data %s is not the data the checkpoint was trained on (%s: %" PRId64
                        " bytes, FNV-1a %016" PRIx64 "; now %" PRId64 " bytes, %016" PRIx64 ")", o->data, s->data,
                        s->data_bytes, s->data_hash, data_bytes, data_hash);
    if (o->steps < s->step)
        return cke_fail(err, CKE_ERR_ARG, "--resume: --steps %" PRId64 " is fewer than the %" PRId64 " steps already done",
                        o->steps, s->step);
    if (o->steps == s->step) {
        res->finished = 1;
        res->steps_done = s->step;
        return CKE_OK;
    }
    /* notes, not refusals: a longer run, or another machine, is a legitimate continuation */
    const char *isa = cke_isa_name(cke_isa_active());
    size_t n = 0;
    if (o->steps != s->steps)
        n += (size_t)snprintf(res->note, sizeof res->note, "--steps %" PRId64 " instead of the checkpoint's %" PRId64
                              ": the learning-rate schedule follows the new end from step %" PRId64 "; ", o->steps,
                              s->steps, s->step);
    if (strcmp(isa, s->isa) && n < sizeof res->note)
        snprintf(res->note + n, sizeof res->note - n, "the kernels are %s here, the run so far used %s: the result "
                 "will not be bit-identical to an uninterrupted run; ", isa, s->isa);
    return CKE_OK;
}

/* the part of tensor t inside the float range [s0, s1) of the flat buffer: its first float index
 * in *first and its length (0: none) */
static int64_t tensor_piece(const ckm_tensor *t, int64_t s0, int64_t s1, int64_t *first) {
    int64_t a = (int64_t)(t->offset / sizeof(float)), b = a + t->numel;
    if (a < s0) a = s0;
    if (b > s1) b = s1;
    *first = a;
    return b > a ? b - a : 0;
}

/* the moments of the float range [s0, s1) of the flat buffer (ZeRO-1: this rank's shard; the
 * rest is never touched, so never resident) */
static cke_status load_optimizer(const char *ck_dir, const ckm_api *api, ckm_model *m, int64_t s0, int64_t s1,
                                 cke_err *err) {
    char path[PATH_MAX], name[96];
    snprintf(path, sizeof path, "%s/optimizer.safetensors", ck_dir);
    cke_safetensors *sf = NULL;
    cke_status st = cke_safetensors_open(path, &sf, err);
    for (int which = 2; !st && which <= 3; which++)
        for (int i = 0; !st && i < api->n_tensors; i++) {
            const ckm_tensor *t = &api->tensors[i];
            snprintf(name, sizeof name, "%s.%s", which == 2 ? "m" : "v", t->name);
            const cke_safetensors_tensor *x = cke_safetensors_find(sf, name);
            if (!x || x->dtype != CKE_DT_F32 || x->nbytes != t->numel * 4)
                st = cke_fail(err, CKE_ERR_MISSING, "%s: no f32 %s of %lld elements", path, name, (long long)t->numel);
            else {
                int64_t a = 0, n = tensor_piece(t, s0, s1, &a);
                const int64_t t0 = (int64_t)(t->offset / sizeof(float));
                if (n) memcpy((float *)api->state(m, which) + a, (const float *)x->data + (a - t0), (size_t)n * sizeof(float));
            }
        }
    cke_safetensors_close(sf);
    return st;
}

/* ------------------------------------------------------------------ data */

typedef struct {
    const int32_t *ids;
    int64_t n;      /* tokens */
    int64_t n_win;  /* windows of seq + 1 tokens, stride seq */
    int64_t *perm;  /* this epoch's window order */
    int64_t perm_epoch;
} dataset;

static void epoch_order(dataset *d, uint64_t seed, int64_t epoch) {
    for (int64_t i = 0; i < d->n_win; i++) d->perm[i] = i;
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch * 0xD1B54A32D192ED03ull;
    for (int64_t i = d->n_win - 1; i > 0; i--) {
        int64_t j = (int64_t)(splitmix(&s) % (uint64_t)(i + 1));
        int64_t t = d->perm[i];
        d->perm[i] = d->perm[j], d->perm[j] = t;
    }
    d->perm_epoch = epoch;
}

/* The next B windows in shuffled order; advances (epoch, index). */
static void next_batch(dataset *d, data_pos *dp, uint64_t seed, int64_t B, int64_t T, int32_t *tok, int32_t *tgt) {
    for (int64_t b = 0; b < B; b++) {
        if (dp->index >= d->n_win) dp->epoch++, dp->index = 0;
        if (d->perm_epoch != dp->epoch) epoch_order(d, seed, dp->epoch);
        int64_t w = d->perm[dp->index++];
        memcpy(tok + b * T, d->ids + w * T, (size_t)T * sizeof(int32_t));
        memcpy(tgt + b * T, d->ids + w * T + 1, (size_t)T * sizeof(int32_t));
    }
}

static double lr_at(const cke_train_opts *o, int64_t step) {
    if (o->warmup > 0 && step < o->warmup) return o->lr * (double)(step + 1) / (double)o->warmup;
    double span = (double)(o->steps - o->warmup);
    double p = span > 0 ? (double)(step - o->warmup) / span : 1.0;
    if (p > 1) p = 1;
    return o->min_lr + 0.5 * (o->lr - o->min_lr) * (1.0 + cos(3.141592653589793 * p));
}

/* Mean validation loss over `batches` global batches of B windows; this rank runs rows
 * [b0, b0 + Bl) of each (all of them in one process) and the sums meet in rank order. */
static cke_status eval_loss(const ckm_api *api, ckm_model *m, const cke_dist *d, const dataset *val, int64_t B,
                            int64_t Bl, int64_t T, int64_t batches, int32_t *tok, int32_t *tgt, double *out,
                            cke_err *err) {
    double sum = 0;
    int64_t n = 0, b0 = (int64_t)d->rank * Bl;
    for (int64_t k = 0; k < batches; k++) {
        for (int64_t b = 0; b < Bl; b++) {
            int64_t w = (k * B + b0 + b) % val->n_win;
            memcpy(tok + b * T, val->ids + w * T, (size_t)T * sizeof(int32_t));
            memcpy(tgt + b * T, val->ids + w * T + 1, (size_t)T * sizeof(int32_t));
        }
        sum += api->train_run(m, tok, tgt, 0.0f, 0);
        n += B * T;
    }
    cke_status st = cke_dist_sum_f64(d, &sum, 1, err);
    *out = n ? sum / (double)n : NAN;
    return st;
}

/* ------------------------------------------------------------------ the loop */

/* every option, with the flag that sets it in the message (the library is called without the
 * command line too) */
static cke_status check_opts(const cke_train_opts *o, cke_err *err) {
    if (!o->data || !o->out || (!o->model && !o->init && !o->resume))
        return cke_fail(err, CKE_ERR_ARG, "train: need a model (or --init), --data and --out");
#define INT_IN(flag, v, lo, hi)                                                                                        \
    if ((int64_t)(v) < (lo) || (int64_t)(v) > (hi))                                                                    \
        return cke_fail(err, CKE_ERR_ARG, "train: %s: %" PRId64 " is not in [%" PRId64 ", %" PRId64 "]", flag, (int64_t)(v), \
                        (int64_t)(lo), (int64_t)(hi));
#define REAL_IN(flag, v, lo, hi)                                                                                       \
    if (!((double)(v) >= (lo) && (double)(v) <= (hi)))                                                                 \
        return cke_fail(err, CKE_ERR_ARG, "train: %s: %g is not in [%g, %g]", flag, (double)(v), (double)(lo), (double)(hi));
    INT_IN("--batch", o->batch, 1, CKE_TRAIN_MAX_BATCH)
    INT_IN("--seq", o->seq, 2, CKE_TRAIN_MAX_SEQ)
    INT_IN("--steps", o->steps, 1, CKE_TRAIN_MAX_STEPS)
    INT_IN("--accum", o->accum, 1, CKE_TRAIN_MAX_ACCUM)
    INT_IN("--warmup", o->warmup, 0, CKE_TRAIN_MAX_STEPS)
    INT_IN("--eval-every", o->eval_every, 0, CKE_TRAIN_MAX_STEPS)
    INT_IN("--eval-batches", o->eval_batches, 1, 1000000)
    INT_IN("--save-every", o->save_every, 0, CKE_TRAIN_MAX_STEPS)
    INT_IN("--threads", o->threads, 0, CKE_TRAIN_MAX_THREADS)
    if (o->seed > (uint64_t)CKE_TRAIN_MAX_INT)
        return cke_fail(err, CKE_ERR_ARG, "train: --seed: %" PRIu64 " is not in [0, 2^53]", o->seed);
    REAL_IN("--lr", o->lr, 1e-30, CKE_TRAIN_MAX_LR)
    REAL_IN("--min-lr", o->min_lr, 0, o->lr)
    REAL_IN("--wd", o->wd, 0, 10)
    REAL_IN("--clip", o->clip, 0, 1e9)
    REAL_IN("beta1", o->beta1, 0, 0.999999)
    REAL_IN("beta2", o->beta2, 0, 0.999999999)
    REAL_IN("eps", o->eps, 1e-30, 1)
    REAL_IN("--val-frac", o->val_frac, 0, 0.5)
    if (o->router_aux_set) REAL_IN("--router-aux-coef", o->router_aux_coef, 0, 1000)
#undef INT_IN
#undef REAL_IN
    return CKE_OK;
}

/* documents are separated by blank lines (a story, an article); each is encoded on its own after
 * a BOS, as a prompt is at inference; a vocabulary without BOS (Qwen's, GPT-2's) ends each with
 * its EOS instead, the separator those models were trained with */
static cke_status tokenize_data(const cke_tok *tk, const char *text, size_t tl, int32_t **ids_out, size_t *n_out,
                                cke_err *err) {
    int32_t *ids = NULL;
    size_t n_ids = 0, cap_ids = 0;
    cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
    eo.add_bos = cke_tok_bos(tk) >= 0;
    const int32_t eos = eo.add_bos ? -1 : cke_tok_eos(tk);
    cke_status st = CKE_OK;
    for (size_t a = 0; !st && a < tl;) {
        while (a < tl && (text[a] == '\n' || text[a] == '\r')) a++;
        size_t b = a;
        while (b < tl && !(text[b] == '\n' && b + 1 < tl && (text[b + 1] == '\n' || text[b + 1] == '\r'))) b++;
        size_t e = b;
        while (e > a && (text[e - 1] == '\n' || text[e - 1] == '\r')) e--;
        if (e > a) {
            int32_t *doc = NULL;
            size_t nd = 0;
            if (!(st = cke_tok_encode(tk, text + a, e - a, &eo, &doc, &nd, err)) && n_ids + nd + 1 > cap_ids) {
                size_t nc = cap_ids ? cap_ids * 2 : 4096;
                while (nc < n_ids + nd + 1) nc *= 2;
                int32_t *grown = realloc(ids, nc * sizeof(int32_t));
                if (!grown) st = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
                else ids = grown, cap_ids = nc;
            }
            if (!st) memcpy(ids + n_ids, doc, nd * sizeof(int32_t)), n_ids += nd;
            if (!st && eos >= 0) ids[n_ids++] = eos;
            free(doc);
        }
        a = b;
    }
    if (st) { free(ids); return st; }
    *ids_out = ids, *n_out = n_ids;
    return CKE_OK;
}

/* ------------------------------------------------------------------ data parallel */

/* The flat parameter buffer (weights, gradients and moments share its layout: tensor offsets are
 * bytes into it) cut into one contiguous float range per rank: the reduce-scatter's segments and
 * ZeRO-1's optimizer shards. Element granularity: a tensor may straddle two ranks. */
typedef struct {
    cke_dist *d;
    int zero;               /* ZeRO-1: this rank's moments only */
    int64_t nflat;          /* floats in the buffer */
    int64_t *counts, *offs; /* [size] */
    int64_t s0, s1;         /* this rank's range */
} dpar;

static cke_status dpar_open(dpar *p, cke_dist *d, int zero, const ckm_api *api, cke_err *err) {
    memset(p, 0, sizeof *p);
    p->d = d;
    p->zero = zero && d->size > 1;
    for (int i = 0; i < api->n_tensors; i++) {
        int64_t e = (int64_t)(api->tensors[i].offset / sizeof(float)) + api->tensors[i].numel;
        if (e > p->nflat) p->nflat = e;
    }
    p->counts = malloc((size_t)d->size * 2 * sizeof(int64_t));
    if (!p->counts) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    p->offs = p->counts + d->size;
    cke_dist_split(d, p->nflat, p->counts, p->offs);
    p->s0 = p->offs[d->rank], p->s1 = p->s0 + p->counts[d->rank];
    return CKE_OK;
}

/* squared norm of the gradient's range [s0, s1): the pieces of every tensor in it, in tensor
 * order (the ranks' values are then summed in rank order: the same with or without ZeRO) */
static double shard_sumsq(const dpar *p, const ckm_api *api, const float *g) {
    const cke_ktable *kt = cke_k();
    double s = 0;
    for (int i = 0; i < api->n_tensors; i++) {
        int64_t a = 0, n = tensor_piece(&api->tensors[i], p->s0, p->s1, &a);
        if (n) s += kt->sumsq(g + a, n);
    }
    return s;
}

/* AdamW over the range [s0, s1) only, as the model's adamw does over everything (decay on
 * matrices; every thread the same slice of every piece). AdamW is element-wise and the kernels
 * are bitwise equal to the reference, so the result does not depend on where the range cuts. */
static void shard_adamw(const dpar *p, const ckm_api *api, ckm_model *m, int nth, float lr, float b1, float b2,
                        float eps, float wd, int64_t step, float gscale) {
    float *w = (float *)api->state(m, 0), *g = (float *)api->state(m, 1);
    float *mm = (float *)api->state(m, 2), *vv = (float *)api->state(m, 3);
    const cke_ktable *kt = cke_k();
#pragma omp parallel num_threads(nth > 0 ? nth : 1)
    {
        const int64_t th = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int i = 0; i < api->n_tensors; i++) {
            int64_t a = 0, n = tensor_piece(&api->tensors[i], p->s0, p->s1, &a);
            const int64_t lo = a + n * th / nt, hi = a + n * (th + 1) / nt;
            if (hi > lo)
                kt->adamw(w + lo, mm + lo, vv + lo, g + lo, hi - lo, lr, b1, b2, eps,
                          api->tensors[i].ndim >= 2 ? wd : 0.0f, step, gscale);
        }
    }
}

/* ---- overlap: the gradients reduced in buckets while the backward runs
 * Layer l's tensors (named "l<l>.*", contiguous in the flat buffer) form one bucket; the model's
 * gradient hook (set_grad_hook) says when its backward is done, in the last micro-batch, and the
 * bucket's reduce-scatter starts then (non-blocking), the hook driving the ones in flight
 * (MPI_Test) at every later layer. What is left (embeddings, head, final norm) is reduced when
 * train_run returns. Every element is summed in rank order as by the one reduce-scatter of the
 * whole buffer, so overlap or not, the result is the same bytes. */
typedef struct {
    const dpar *p;
    float *g;
    int n_layer;
    int64_t *lay;            /* [n_layer][2] each layer's float range, [a, b) */
    int64_t *rest;           /* [n_rest][2] the ranges no layer covers */
    int n_rest;
    int64_t *cnt;            /* [size] a bucket's share per rank (copied by each start) */
    cke_dist_req **reqs;     /* in flight, in start order */
    int n_req, cap;
    int armed;               /* this micro-batch is the step's last: start reductions */
    cke_status st;           /* the first failure inside the hook */
    cke_err err;
} overlap;

/* Requests still in flight (after a failure: the job is being aborted) are left alone: MPI may
 * still write into their buffers, and waiting for them could take the whole timeout. */
static void overlap_free(overlap *v) {
    free(v->lay), free(v->rest), free(v->cnt), free(v->reqs);
    memset(v, 0, sizeof *v);
}

/* the layer ranges from the tensor names, and their complement; 0 layers: no overlap */
static cke_status overlap_open(overlap *v, const dpar *p, const ckm_api *api, ckm_model *m, cke_err *err) {
    memset(v, 0, sizeof *v);
    v->p = p;
    v->g = (float *)api->state(m, 1);
    for (int i = 0; i < api->n_tensors; i++) {
        int l = -1;
        if (sscanf(api->tensors[i].name, "l%d.", &l) == 1 && l >= 0 && l < (1 << 20) && l + 1 > v->n_layer)
            v->n_layer = l + 1;
    }
    const int S = p->d->size, L = v->n_layer;
    v->lay = malloc(((size_t)L * 2 + 1) * sizeof(int64_t));
    v->rest = malloc(((size_t)L + 2) * 2 * sizeof(int64_t));
    v->cnt = malloc((size_t)S * sizeof(int64_t));
    v->cap = 2 * L + 2; /* L layer buckets and at most L + 1 ranges between and around them */
    v->reqs = calloc((size_t)v->cap, sizeof *v->reqs);
    if (!v->lay || !v->rest || !v->cnt || !v->reqs) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int l = 0; l < L; l++) v->lay[2 * l] = INT64_MAX, v->lay[2 * l + 1] = -1;
    for (int i = 0; i < api->n_tensors; i++) {
        const ckm_tensor *t = &api->tensors[i];
        int l = -1;
        if (sscanf(t->name, "l%d.", &l) != 1 || l < 0 || l >= v->n_layer) continue;
        int64_t a = (int64_t)(t->offset / sizeof(float)), b = a + t->numel;
        if (a < v->lay[2 * l]) v->lay[2 * l] = a;
        if (b > v->lay[2 * l + 1]) v->lay[2 * l + 1] = b;
    }
    /* the layers must not interleave (each bucket is one range): else no overlap */
    for (int l = 0; l < L; l++)
        for (int k = 0; k < L; k++)
            if (k != l && v->lay[2 * k] < v->lay[2 * l + 1] && v->lay[2 * l] < v->lay[2 * k + 1]) v->n_layer = 0;
    /* what no layer covers, in order */
    int64_t at = 0;
    for (;;) {
        int64_t next = p->nflat, nb = p->nflat;
        for (int l = 0; l < v->n_layer; l++)
            if (v->lay[2 * l] >= at && v->lay[2 * l] < next) next = v->lay[2 * l], nb = v->lay[2 * l + 1];
        if (next > at) v->rest[2 * v->n_rest] = at, v->rest[2 * v->n_rest + 1] = next, v->n_rest++;
        if (next >= p->nflat) break;
        at = nb;
    }
    if (v->n_layer == 0) v->n_rest = 1, v->rest[0] = 0, v->rest[1] = p->nflat;
    return CKE_OK;
}

static cke_status overlap_start(overlap *v, int64_t a, int64_t b, cke_err *err) {
    const dpar *p = v->p;
    if (b <= a) return CKE_OK;
    for (int r = 0; r < p->d->size; r++) {
        int64_t lo = a > p->offs[r] ? a : p->offs[r], hi = b < p->offs[r] + p->counts[r] ? b : p->offs[r] + p->counts[r];
        v->cnt[r] = hi > lo ? hi - lo : 0;
    }
    if (v->n_req == v->cap) return cke_fail(err, CKE_ERR_ARG, "overlap: more gradient buckets than planned (%d)", v->cap);
    return cke_dist_ireduce_scatter_sum(p->d, v->g + a, v->cnt, &v->reqs[v->n_req++], err);
}

static void on_layer_grads(void *ud, int l) {
    overlap *v = ud;
    if (!v->armed || v->st || l < 0 || l >= v->n_layer) return;
    v->st = overlap_start(v, v->lay[2 * l], v->lay[2 * l + 1], &v->err);
    for (int i = 0; i < v->n_req; i++) cke_dist_test(v->p->d, v->reqs[i]); /* progress */
}

/* after the last micro-batch: the rest started, everything waited for, in start order */
static cke_status overlap_finish(overlap *v, cke_err *err) {
    cke_status st = v->st;
    if (st) cke_fail(err, st, "%s", v->err.msg);
    for (int i = 0; !st && i < v->n_rest; i++) st = overlap_start(v, v->rest[2 * i], v->rest[2 * i + 1], err);
    for (int i = 0; !st && i < v->n_req; i++) st = cke_dist_wait(v->p->d, &v->reqs[i], err);
    if (!st) v->n_req = 0;
    v->armed = 0;
    return st;
}

/* One optimizer step of N ranks after their backward passes, the gradients reduce-scattered
 * (summed in rank order) already: the global squared norm and loss summed from every rank's
 * part, then either ZeRO-1 (AdamW on this rank's range, weights all-gathered) or every rank
 * updating everything from the all-gathered gradient. Bit-identical either way. x[0] loss, x[1]
 * stop request in; x[0] the summed loss, x[1] > 0 when any rank asked to stop, *norm out;
 * *t_comm += the seconds spent in communication. */
static cke_status dp_step(const dpar *p, const ckm_api *api, ckm_model *m, const cke_train_opts *o, double lr,
                          int64_t step, double x[2], double *norm, double *t_comm, cke_err *err) {
    float *g = (float *)api->state(m, 1);
    double t0 = now_s();
    cke_status st = p->zero ? CKE_OK : cke_dist_allgather(p->d, g, p->counts, err);
    double v[3] = {x[0], st ? 0 : shard_sumsq(p, api, g), x[1]};
    double t1 = now_s();
    if (!st) st = cke_dist_sum_f64(p->d, v, 3, err);
    *t_comm += now_s() - t1 + (p->zero ? 0 : t1 - t0);
    if (st) return st;
    x[0] = v[0], x[1] = v[2], *norm = sqrt(v[1]);
    float gscale = (o->clip > 0 && *norm > o->clip) ? (float)(o->clip / *norm) : 1.0f;
    if (!p->zero) {
        api->adamw(m, (float)lr, o->beta1, o->beta2, o->eps, o->wd, step, gscale);
        return CKE_OK;
    }
    shard_adamw(p, api, m, o->threads, (float)lr, o->beta1, o->beta2, o->eps, o->wd, step, gscale);
    t0 = now_s();
    st = cke_dist_allgather(p->d, (float *)api->state(m, 0), p->counts, err);
    *t_comm += now_s() - t0;
    return st;
}

/* memory_map.txt (rank 0): how the ranks share the work and what ZeRO-1 saves per rank */
static void report_dp(const char *build, const dpar *p, const cke_train_opts *o, FILE *progress) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/memory_map.txt", build);
    const int N = p->d->size;
    const double full = 2.0 * (double)p->nflat * sizeof(float), mine = p->zero ? full * (double)p->counts[0] / (double)p->nflat : full;
    char line[1024];
    snprintf(line, sizeof line,
             "data parallel: %d ranks (mpirun), global batch %lld = %lld rows per rank; gradients reduce-scattered "
             "in rank order (scratch %lld bytes per rank)\n"
             "  AdamW m and v per rank: %.0f bytes of %.0f (%s: %.0f bytes saved per rank; the other ranks' ranges "
             "are never touched, so never resident)\n",
             N, (long long)o->batch, (long long)(o->batch / N), (long long)((int64_t)N * p->counts[0] * 4), mine, full,
             p->zero ? "ZeRO-1, 1/N of the parameters each" : "not sharded (--no-zero)", full - mine);
    FILE *f = fopen(path, "a");
    if (f) fputs(line, f), fclose(f);
    if (progress) fputs(line, progress);
}

cke_status cke_train(const cke_train_opts *o, cke_train_result *res, cke_err *err) {
    memset(res, 0, sizeof *res);
    res->last_val_loss = res->first_val_loss = NAN;
    /* data parallel: rank 0 compiles, resumes and writes; every rank trains its rows */
    cke_dist solo = {.rank = 0, .size = 1, .timeout_s = 60};
    cke_dist *d = o->dist && o->dist->size > 1 ? o->dist : &solo;
    const int N = d->size, rank = d->rank;
    int setup = 1; /* until training starts, a failure is agreed on by every rank (no abort needed) */
    cke_status st = check_opts(o, err);
    if (!st && o->batch % N)
        st = cke_fail(err, CKE_ERR_ARG, "train: --batch %lld does not split over %d ranks: each rank takes batch/ranks "
                      "rows of every global batch (give a multiple of %d)", (long long)o->batch, N, N);
    if (st || (st = ensure_dir(o->out, err))) return cke_dist_agree(d, st, err);
    const int64_t Bl = o->batch / N; /* this rank's rows of each global batch: [rank*Bl, rank*Bl + Bl) */

    char src_path[PATH_MAX], build[PATH_MAX], path[PATH_MAX], ck_dir[PATH_MAX], init_dir[PATH_MAX] = "";
    const char *tok_path = o->tokenizer;
    cke_train_state ck;
    memset(&ck, 0, sizeof ck);
    export_ctx x;
    memset(&x, 0, sizeof x);
    dpar dpp;
    memset(&dpp, 0, sizeof dpp);
    overlap ov;
    memset(&ov, 0, sizeof ov);
    int use_overlap = 0;
    cke_runner *r = NULL;
    int32_t *ids = NULL, *tok = NULL, *tgt = NULL;
    int64_t *perm_t = NULL;
    float *gath_m = NULL, *gath_v = NULL;
    FILE *log = NULL;
    /* the data first: a resume checks it against the checkpoint before anything is compiled */
    size_t tl = 0;
    char *text = read_file(o->data, &tl, err);
    if (!text) return cke_dist_agree(d, err ? err->code : CKE_ERR_IO, err);
    const int64_t data_bytes = (int64_t)tl;
    const uint64_t data_hash = cke_train_fnv64(CKE_FNV64_INIT, text, tl);
    if (o->resume) {
        snprintf(ck_dir, sizeof ck_dir, "%s/checkpoint", o->out);
        if (rank == 0) st = recover_checkpoint(o->out, ck_dir, sizeof ck_dir, err);
        if ((st = cke_dist_agree(d, st, err)) || (st = load_state(ck_dir, &ck, err)) ||
            (st = check_resume(o, &ck, data_bytes, data_hash, res, err)) || res->finished)
            goto done;
        if (ck.ranks != N && strlen(res->note) < sizeof res->note - 1)
            snprintf(res->note + strlen(res->note), sizeof res->note - strlen(res->note),
                     "the checkpoint was trained by %lld rank(s), now %d: the gradient sums group differently, the "
                     "result is not bit-identical to continuing with %lld; ", (long long)ck.ranks, N, (long long)ck.ranks);
        snprintf(src_path, sizeof src_path, "%s/%s", ck_dir, ck.model_file);
        if (!strcmp(ck.model_file, "model.safetensors")) snprintf(src_path, sizeof src_path, "%s", ck_dir);
        snprintf(path, sizeof path, "%s/tokenizer.bin", ck_dir);
        tok_path = access(path, R_OK) == 0 ? path : NULL;
    } else if (o->init) {
        snprintf(init_dir, sizeof init_dir, "%s/.init", o->out);
        snprintf(src_path, sizeof src_path, "%s", init_dir);
    } else {
        snprintf(src_path, sizeof src_path, "%s", o->model);
    }

    snprintf(build, sizeof build, "%s/build", o->out);
    if (rank == 0) { /* the other ranks open what rank 0 compiled */
        if (o->init && !o->resume) {
            if (!o->tokenizer) { st = cke_fail(err, CKE_ERR_ARG, "--init needs --tokenizer (the vocabulary to train with)"); goto done; }
            cke_tok *tk = NULL;
            if ((st = cke_tok_load(o->tokenizer, &tk, err))) goto done;
            int64_t vocab = cke_tok_n_vocab(tk);
            cke_tok_free(tk);
            /* a fresh model, compiled and read below, then deleted: the output is what fine-tuning writes */
            if ((st = rm_rf(init_dir, NULL, err)) || (st = write_init_model(o, vocab, init_dir, err))) goto done;
        }
        if ((st = cke_model_open(src_path, &x.src, err)) || (st = snapshot_source(&x, tok_path, err))) goto done;
        cke_compile_opts co = {.out_dir = build, .tokenizer = tok_path, .templates_dir = o->templates_dir,
                               .include_dir = o->include_dir, .libk = o->libk, .ctx = o->seq, .prefill_chunk = o->seq,
                               .max_threads = o->threads > 0 ? o->threads : 1, .quiet = 1, .train_batch = Bl,
                               .train_seq = o->seq, .train_recompute = o->recompute, .train_bf16 = o->bf16,
                               .moe_aux_set = o->router_aux_set, .moe_aux_coef = o->router_aux_coef};
        if ((st = cke_compile(src_path, &co, err))) goto done;
    }
    if ((st = cke_dist_agree(d, st, err)) || (st = cke_runner_open(build, o->threads, &r, err))) goto done;
    if (rank == 0 && init_dir[0] && (st = rm_rf(init_dir, NULL, err))) goto done;
    const ckm_api *api = r->api;
    if (rank == 0) st = export_check(x.src, api, err); /* a run that could not save is refused before it starts */
    if ((st = cke_dist_agree(d, st, err))) goto done;
    if (!r->tok) { st = cke_fail(err, CKE_ERR_MISSING, "train: the model has no tokenizer (give --tokenizer)"); goto done; }
    if (!api->train_init || api->train_init(r->m) != 0) {
        st = cke_fail(err, CKE_ERR_NOMEM, "train: %s", api->train_init ? api->last_error(r->m) : "no training mode");
        goto done;
    }
    if ((st = dpar_open(&dpp, d, !o->no_zero, api, err))) goto done;
    /* overlap the reduction with the backward where the model has the hook (ABI 7) */
    if (N > 1 && !o->no_overlap && api->set_grad_hook) {
        if ((st = overlap_open(&ov, &dpp, api, r->m, err))) goto done;
        use_overlap = ov.n_layer > 0 && api->set_grad_hook(r->m, on_layer_grads, &ov) == 0;
    }
    /* ZeRO-1: only this rank's range of the moments; otherwise all of them */
    if (o->resume && (st = load_optimizer(ck_dir, api, r->m, dpp.zero ? dpp.s0 : 0, dpp.zero ? dpp.s1 : dpp.nflat, err)))
        goto done;
    if (rank == 0 && N > 1) report_dp(build, &dpp, o, o->quiet ? NULL : stderr);

    /* data: the last val_frac of the tokens is validation */
    size_t n_ids = 0;
    if ((st = tokenize_data(r->tok, text, tl, &ids, &n_ids, err))) goto done;
    if (n_ids == 0) { st = cke_fail(err, CKE_ERR_ARG, "train: %s has no text", o->data); goto done; }
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= api->vocab) {
            st = cke_fail(err, CKE_ERR_RANGE, "token id %d is outside the model's vocabulary of %lld", ids[i],
                          (long long)api->vocab);
            goto done;
        }
    int64_t n_val = (int64_t)((double)n_ids * o->val_frac);
    dataset tr = {.ids = ids, .n = (int64_t)n_ids - n_val}, va = {.ids = ids + tr.n, .n = n_val};
    tr.n_win = (tr.n - 1) / o->seq;
    va.n_win = va.n > 1 ? (va.n - 1) / o->seq : 0;
    if (tr.n_win < o->batch) {
        st = cke_fail(err, CKE_ERR_ARG, "train: %s gives %lld training tokens: fewer than one batch of %lld x %lld",
                      o->data, (long long)tr.n, (long long)o->batch, (long long)o->seq);
        goto done;
    }
    if (o->resume && ck.train_windows != tr.n_win) {
        st = cke_fail(err, CKE_ERR_ARG, "--resume: %s gives %" PRId64 " training windows, the checkpoint was trained on %" PRId64
                      " (a different tokenizer?)", o->data, tr.n_win, ck.train_windows);
        goto done;
    }
    perm_t = malloc((size_t)tr.n_win * sizeof(int64_t));
    tok = malloc((size_t)(o->batch * o->seq) * sizeof(int32_t)); /* the global batch: this rank runs its rows */
    tgt = malloc((size_t)(o->batch * o->seq) * sizeof(int32_t));
    if (!perm_t || !tok || !tgt) { st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); goto done; }
    if (dpp.zero && rank == 0) { /* the moments gathered for a checkpoint */
        gath_m = calloc((size_t)dpp.nflat, sizeof(float));
        gath_v = calloc((size_t)dpp.nflat, sizeof(float));
        if (!gath_m || !gath_v) { st = cke_fail(err, CKE_ERR_NOMEM, "out of memory for the gathered AdamW state"); goto done; }
    }
    tr.perm = perm_t;
    tr.perm_epoch = -1;
    snprintf(path, sizeof path, "%s/log.txt", o->out);
    if (rank == 0 && !(log = fopen(path, o->resume ? "a" : "w"))) {
        st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
        goto done;
    }
    if ((st = cke_dist_agree(d, st, err))) goto done;
    setup = 0; /* from here on every rank is in the same collectives: a failure ends the job */
#define LOGF(...) (log ? (void)fprintf(log, __VA_ARGS__) : (void)0)

    /* what every checkpoint of this run records (state.h) */
    cke_train_state s = {.batch = o->batch, .seq = o->seq, .accum = o->accum, .steps = o->steps, .warmup = o->warmup,
                         .threads = o->threads > 0 ? o->threads : 1, .lr = o->lr, .min_lr = o->min_lr, .wd = o->wd,
                         .clip = o->clip, .beta1 = o->beta1, .beta2 = o->beta2, .eps = o->eps, .val_frac = o->val_frac,
                         .seed = o->seed, .data_bytes = data_bytes, .data_hash = data_hash, .train_windows = tr.n_win,
                         .ranks = N, .router_aux_coef = o->router_aux_set ? o->router_aux_coef : -1, .bf16 = o->bf16};
    snprintf(s.data, sizeof s.data, "%s", o->data);
    snprintf(s.isa, sizeof s.isa, "%s", cke_isa_name(cke_isa_active()));
    data_pos dp = {ck.step, ck.epoch, ck.index};
    const int64_t R = o->batch * o->seq, T = o->seq; /* rows of the global batch; its mean is the loss */
    const float dscale = 1.0f / (float)(R * o->accum);
    double t0 = now_s(), tstep = t0, t_warm = 0, t_prev = t0;
    int64_t done_steps = 0;
    if (o->resume) LOGF("resume at step %lld\n", (long long)dp.step);
    if (va.n_win > 0) { /* where this run starts from, shown until the first evaluation */
        if ((st = eval_loss(api, r->m, d, &va, o->batch, Bl, T, o->eval_batches, tok, tgt, &res->first_val_loss, err)))
            goto done;
        res->last_val_loss = res->first_val_loss;
        LOGF("step %lld val_loss %.9g\n", (long long)dp.step, res->first_val_loss);
    }
    for (; dp.step < o->steps; dp.step++) {
        api->zero_grad(r->m);
        double loss = 0, norm = 0, t_comm = 0;
        for (int64_t a = 0; a < o->accum; a++) {
            next_batch(&tr, &dp, o->seed, o->batch, o->seq, tok, tgt);
            ov.armed = use_overlap && a == o->accum - 1;
            loss += api->train_run(r->m, tok + rank * Bl * T, tgt + rank * Bl * T, dscale, 1);
        }
        double lr = lr_at(o, dp.step);
        int stop_any = cke_train_stop_requested;
        if (N == 1) {
            norm = sqrt(api->grad_sumsq(r->m));
            float gscale = (o->clip > 0 && norm > o->clip) ? (float)(o->clip / norm) : 1.0f;
            api->adamw(r->m, (float)lr, o->beta1, o->beta2, o->eps, o->wd, dp.step + 1, gscale);
        } else { /* every rank learns of a SIGINT on any of them in the same step */
            double xs[2] = {loss, stop_any ? 1.0 : 0.0}, tw = now_s();
            st = use_overlap ? overlap_finish(&ov, err)
                             : cke_dist_reduce_scatter_sum(d, (float *)api->state(r->m, 1), dpp.counts, err);
            t_comm += now_s() - tw;
            if (st || (st = dp_step(&dpp, api, r->m, o, lr, dp.step + 1, xs, &norm, &t_comm, err))) goto done;
            loss = xs[0], stop_any = xs[1] > 0;
        }
        loss /= (double)(R * o->accum);
        done_steps++;
        res->last_loss = loss;
        double tn = now_s();
        /* throughput over the steps after the first (which pays for first-touch page faults) */
        if (done_steps == 1) t_warm = tn;
        double tps = done_steps > 1 ? (double)((done_steps - 1) * R * o->accum) / (tn - t_warm)
                                    : (double)(R * o->accum) / (tn - t0);
        res->tokens_per_s = tps;
        if (N == 1)
            LOGF("step %lld loss %.9g lr %.6g norm %.6g ms %.0f\n", (long long)(dp.step + 1), loss, lr, norm,
                 1e3 * (tn - t_prev));
        else /* comm_ms: this rank's time waiting in collectives after its backward (what overlap hides is not in it) */
            LOGF("step %lld loss %.9g lr %.6g norm %.6g ms %.0f comm_ms %.3f\n", (long long)(dp.step + 1), loss, lr,
                 norm, 1e3 * (tn - t_prev), 1e3 * t_comm);
        t_prev = tn;
        int last = dp.step + 1 == o->steps;
        if (o->crash_after > 0 && done_steps >= o->crash_after) { /* as if killed: nothing more is written */
            res->interrupted = 1;
            dp.step++;
            break;
        }
        int stop = stop_any || (o->stop_after > 0 && done_steps >= o->stop_after);
        if (va.n_win > 0 && o->eval_every > 0 && ((dp.step + 1) % o->eval_every == 0 || last)) {
            if ((st = eval_loss(api, r->m, d, &va, o->batch, Bl, T, o->eval_batches, tok, tgt, &res->last_val_loss, err)))
                goto done;
            LOGF("step %lld val_loss %.9g\n", (long long)(dp.step + 1), res->last_val_loss);
        }
        if (log) fflush(log);
        fault_point("step");
        if (!o->quiet && rank == 0 && (tn - tstep > 0.25 || last || stop)) {
            double eta = (double)(o->steps - dp.step - 1) * (tn - t0) / (double)done_steps;
            fprintf(stderr, "\rstep %lld/%lld | loss %.4f | val %.4f | lr %.2e | norm %.2f | %.0f tok/s | ETA %dm%02ds   ",
                    (long long)(dp.step + 1), (long long)o->steps, loss, res->last_val_loss, lr, norm, tps,
                    (int)(eta / 60), (int)eta % 60);
            tstep = tn;
        }
        if ((o->save_every > 0 && (dp.step + 1) % o->save_every == 0) || last || stop) {
            s.step = dp.step + 1, s.epoch = dp.epoch, s.index = dp.index;
            const char *mom_m = api->state(r->m, 2), *mom_v = api->state(r->m, 3);
            if (dpp.zero) { /* ZeRO-1: rank 0 writes every rank's moments, gathered */
                const float *sm = (const float *)mom_m + dpp.s0, *sv = (const float *)mom_v + dpp.s0;
                if ((st = cke_dist_gather(d, sm, gath_m, dpp.counts, 0, err)) ||
                    (st = cke_dist_gather(d, sv, gath_v, dpp.counts, 0, err)))
                    goto done;
                mom_m = (const char *)gath_m, mom_v = (const char *)gath_v;
            }
            if (rank == 0 && (st = save_checkpoint(o, &x, api, r->m, mom_m, mom_v, &s, err))) goto done;
        }
        if (stop) {
            res->interrupted = 1;
            dp.step++;
            break;
        }
    }
#undef LOGF
    if (!o->quiet && rank == 0) fprintf(stderr, "\n");
    res->steps_done = dp.step;
done:
    if (st && setup && !d->agreed_failure) st = cke_dist_agree(d, st, err); /* the ranks still in setup learn of it */
    if (log) fclose(log);
    free(text);
    free(ids);
    free(tok);
    free(tgt);
    free(perm_t);
    free(gath_m);
    free(gath_v);
    if (r && use_overlap) r->api->set_grad_hook(r->m, NULL, NULL);
    overlap_free(&ov);
    free(dpp.counts);
    cke_runner_close(r);
    export_ctx_free(&x);
    return st;
}
