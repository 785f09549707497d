#define _DEFAULT_SOURCE /* realpath, mkdtemp */
#include "train/trainer.h"

#include "driver/compile.h"
#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "formats/model.h"
#include "formats/safetensors.h"
#include "runtime/runner.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
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

static cke_status ensure_dir(const char *d, cke_err *err) {
    if (mkdir(d, 0755) != 0 && errno != EEXIST) return cke_fail(err, CKE_ERR_IO, "cannot create %s", d);
    return CKE_OK;
}

static cke_status rm_rf(const char *d) {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    return system(cmd) == 0 ? CKE_OK : CKE_ERR_IO;
}

static cke_status copy_file(const char *from, const char *to, cke_err *err) {
    FILE *a = fopen(from, "rb");
    if (!a) return cke_fail(err, CKE_ERR_IO, "cannot open %s", from);
    FILE *b = fopen(to, "wb");
    if (!b) { fclose(a); return cke_fail(err, CKE_ERR_IO, "cannot write %s", to); }
    char buf[1 << 16];
    size_t n;
    cke_status st = CKE_OK;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n) { st = cke_fail(err, CKE_ERR_IO, "write error on %s", to); break; }
    fclose(a);
    if (fflush(b) != 0 || fsync(fileno(b)) != 0) st = st ? st : cke_fail(err, CKE_ERR_IO, "cannot flush %s", to);
    if (fclose(b) != 0 && !st) st = cke_fail(err, CKE_ERR_IO, "write error on %s", to);
    return st;
}

static char *read_text(const char *path, size_t *len, cke_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { cke_fail(err, CKE_ERR_IO, "cannot open %s", path); return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(b);
        cke_fail(err, CKE_ERR_IO, "cannot read %s", path);
        return NULL;
    }
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
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

/* A llama-family model in HF layout: N(0, 0.02) matrices (residual projections scaled by
 * 1/sqrt(2 L), GPT-2 style), unit norms, tied output. */
static cke_status write_init_model(const cke_train_opts *o, int64_t vocab, const char *dir, cke_err *err) {
    if (strcmp(o->init, "llama") != 0)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "--init %s: only the llama family can be initialized so far", o->init);
    int64_t D = o->init_dim, L = o->init_layers, H = o->init_heads, KV = o->init_kv_heads ? o->init_kv_heads : H,
            F = o->init_ffn;
    if (D < 2 || L < 1 || H < 1 || KV < 1 || F < 1 || D % H || H % KV || (D / H) % 2)
        return cke_fail(err, CKE_ERR_ARG, "--init llama: need dim divisible by heads, even head size, heads divisible by "
                                          "kv-heads (dim %lld, heads %lld, kv-heads %lld)",
                        (long long)D, (long long)H, (long long)KV);
    int64_t hd = D / H;
    cke_status st = ensure_dir(dir, err);
    if (st) return st;
    uint64_t rng = o->seed * 0x2545F4914F6CDD1Dull + 1;
    cke_safetensors_writer *w = NULL;
    if ((st = cke_safetensors_writer_new(&w, err))) return st;
    float **bufs = calloc((size_t)(2 + 9 * L), sizeof(float *));
    int nb = 0;
    char name[128];
#define TENSOR(nm, rows_, cols_, stdv, one)                                                                   \
    do {                                                                                                      \
        int64_t shp[2] = {(rows_), (cols_)};                                                                  \
        int nd = (cols_) > 0 ? 2 : 1;                                                                         \
        int64_t n = (rows_) * ((cols_) > 0 ? (cols_) : 1);                                                    \
        float *b = malloc((size_t)n * sizeof(float));                                                         \
        if (!b) { st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); break; }                                \
        bufs[nb++] = b;                                                                                       \
        for (int64_t i_ = 0; i_ < n; i_++) b[i_] = (one) ? 1.0f : (float)((stdv) * normal(&rng));            \
        st = cke_safetensors_writer_add(w, nm, CKE_DT_F32, nd, shp, b, err);                               \
    } while (0)
    TENSOR("model.embed_tokens.weight", vocab, D, 0.02, 0);
    double rs = 0.02 / sqrt(2.0 * (double)L);
    for (int64_t l = 0; !st && l < L; l++) {
#define LT(suffix, r_, c_, s_, one_) \
    if (!st) { snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, suffix); TENSOR(name, r_, c_, s_, one_); }
        LT("input_layernorm.weight", D, 0, 0, 1);
        LT("self_attn.q_proj.weight", H * hd, D, 0.02, 0);
        LT("self_attn.k_proj.weight", KV * hd, D, 0.02, 0);
        LT("self_attn.v_proj.weight", KV * hd, D, 0.02, 0);
        LT("self_attn.o_proj.weight", D, H * hd, rs, 0);
        LT("post_attention_layernorm.weight", D, 0, 0, 1);
        LT("mlp.gate_proj.weight", F, D, 0.02, 0);
        LT("mlp.up_proj.weight", F, D, 0.02, 0);
        LT("mlp.down_proj.weight", D, F, rs, 0);
#undef LT
    }
    if (!st) TENSOR("model.norm.weight", D, 0, 0, 1);
#undef TENSOR
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!st) st = cke_safetensors_writer_write(w, path, err);
    cke_safetensors_writer_free(w);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    free(bufs);
    if (st) return st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    fprintf(f,
            "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": %lld,\n"
            "  \"intermediate_size\": %lld,\n  \"num_attention_heads\": %lld,\n  \"num_key_value_heads\": %lld,\n"
            "  \"num_hidden_layers\": %lld,\n  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n  \"vocab_size\": %lld,\n"
            "  \"max_position_embeddings\": %lld,\n  \"tie_word_embeddings\": true,\n  \"hidden_act\": \"silu\",\n"
            "  \"torch_dtype\": \"float32\"\n}\n",
            (long long)D, (long long)F, (long long)H, (long long)KV, (long long)L, (long long)vocab, (long long)o->seq);
    return fclose(f) == 0 ? CKE_OK : cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
}

/* ------------------------------------------------------------------ checkpoints */

typedef struct {
    cke_model *src;        /* the model trained (for names, format, metadata) */
    char src_tok[PATH_MAX];/* the tokenizer file the model directory uses, "" if none */
} export_ctx;

/* GGUF dims: ne[0] is the fastest (the last of our row-major shape) */
static void to_ne(const ckm_tensor *t, int64_t ne[4]) {
    for (int i = 0; i < t->ndim; i++) ne[i] = t->dims[t->ndim - 1 - i];
}

static cke_status export_model(const export_ctx *x, const ckm_api *api, ckm_model *m, const char *dir, char *model_file,
                               size_t mfn, cke_err *err) {
    const char *w = api->state(m, 0);
    cke_status st = CKE_OK;
    char path[PATH_MAX];
    const cke_model *src = x->src;
    for (int i = 0; i < api->n_tensors; i++) {
        const cke_model_tensor *t = cke_model_find(src, api->tensors[i].name);
        if (!t) return cke_fail(err, CKE_ERR_MISSING, "export: tensor %s is not in the source model", api->tensors[i].name);
        if (t->owned && src->source == CKE_SRC_HF)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "export: %s was converted on load (%s); writing it back is not "
                                                      "supported yet", t->name, cke_arch_name(src->arch));
    }
    if (src->source == CKE_SRC_HF) {
        cke_safetensors_writer *sw = NULL;
        if ((st = cke_safetensors_writer_new(&sw, err))) return st;
        for (int i = 0; !st && i < api->n_tensors; i++) {
            const ckm_tensor *t = &api->tensors[i];
            st = cke_safetensors_writer_add(sw, cke_model_find(src, t->name)->src_name, CKE_DT_F32, t->ndim, t->dims,
                                            w + t->offset, err);
        }
        snprintf(model_file, mfn, "model.safetensors");
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!st) st = cke_safetensors_writer_write(sw, path, err);
        cke_safetensors_writer_free(sw);
        char from[PATH_MAX];
        snprintf(from, sizeof from, "%s/config.json", src->path);
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (!st) st = copy_file(from, path, err);
        static const char *const extra[] = {"tokenizer.json", "tokenizer_config.json"};
        for (size_t k = 0; !st && k < sizeof extra / sizeof extra[0]; k++) {
            snprintf(from, sizeof from, "%s/%s", src->path, extra[k]);
            snprintf(path, sizeof path, "%s/%s", dir, extra[k]);
            if (access(from, R_OK) == 0) st = copy_file(from, path, err);
        }
    } else if (src->source == CKE_SRC_GGUF) {
        cke_gguf *g = NULL;
        cke_gguf_writer *gw = NULL;
        if ((st = cke_gguf_open(src->path, &g, err))) return st;
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
        cke_gguf_close(g);
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
    /* a tokenizer.bin the model was given travels with it */
    const char *ext = strrchr(x->src_tok, '.');
    if (!st && x->src_tok[0] && !(ext && (!strcmp(ext, ".json") || !strcmp(ext, ".gguf")))) {
        snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
        st = copy_file(x->src_tok, path, err);
    }
    return st;
}

typedef struct {
    int64_t step, epoch, index;
} data_pos;

static cke_status save_checkpoint(const cke_train_opts *o, const export_ctx *x, const ckm_api *api, ckm_model *m,
                                  data_pos dp, cke_err *err) {
    char tmp[PATH_MAX], fin[PATH_MAX], old[PATH_MAX], path[PATH_MAX], model_file[64];
    snprintf(tmp, sizeof tmp, "%s/checkpoint.tmp", o->out);
    snprintf(fin, sizeof fin, "%s/checkpoint", o->out);
    snprintf(old, sizeof old, "%s/checkpoint.old", o->out);
    rm_rf(tmp);
    cke_status st = ensure_dir(tmp, err);
    if (!st) st = export_model(x, api, m, tmp, model_file, sizeof model_file, err);
    /* optimizer state by tensor name */
    cke_safetensors_writer *sw = NULL;
    if (!st) st = cke_safetensors_writer_new(&sw, err);
    char names[2][512][80];
    for (int which = 2; !st && which <= 3; which++) {
        const char *base = api->state(m, which);
        for (int i = 0; !st && i < api->n_tensors && i < 512; i++) {
            const ckm_tensor *t = &api->tensors[i];
            snprintf(names[which - 2][i], sizeof names[0][0], "%s.%s", which == 2 ? "m" : "v", t->name);
            st = cke_safetensors_writer_add(sw, names[which - 2][i], CKE_DT_F32, t->ndim, t->dims, base + t->offset, err);
        }
    }
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    if (!st) st = cke_safetensors_writer_write(sw, path, err);
    cke_safetensors_writer_free(sw);
    if (!st && api->n_tensors > 512) st = cke_fail(err, CKE_ERR_UNSUPPORTED, "checkpoint: more than 512 tensors");
    snprintf(path, sizeof path, "%s/trainer.json", tmp);
    FILE *f = st ? NULL : fopen(path, "w");
    if (!st && !f) st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    if (f) {
        fprintf(f, "{\n  \"step\": %lld,\n  \"epoch\": %lld,\n  \"index\": %lld,\n  \"model_file\": \"%s\",\n"
                   "  \"batch\": %lld,\n  \"seq\": %lld,\n  \"accum\": %lld,\n  \"seed\": %llu,\n  \"threads\": %d\n}\n",
                (long long)dp.step, (long long)dp.epoch, (long long)dp.index, model_file, (long long)o->batch,
                (long long)o->seq, (long long)o->accum, (unsigned long long)o->seed, o->threads);
        if (fflush(f) != 0 || fsync(fileno(f)) != 0) st = cke_fail(err, CKE_ERR_IO, "cannot flush %s", path);
        fclose(f);
    }
    /* the swap: checkpoint -> checkpoint.old, tmp -> checkpoint, drop old. At every instant one
     * of checkpoint/ or checkpoint.old/ is complete; resume looks at both. */
    if (!st) {
        rm_rf(old);
        if (access(fin, F_OK) == 0 && rename(fin, old) != 0) st = cke_fail(err, CKE_ERR_IO, "cannot rename %s", fin);
        if (!st && rename(tmp, fin) != 0) st = cke_fail(err, CKE_ERR_IO, "cannot rename %s to %s", tmp, fin);
        if (!st) rm_rf(old);
    }
    return st;
}

typedef struct {
    data_pos dp;
    char model_file[64];
} resume_info;

static cke_status read_resume(const char *out, char *ck_dir, size_t n, resume_info *ri, const cke_train_opts *o,
                              cke_err *err) {
    snprintf(ck_dir, n, "%s/checkpoint", out);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/trainer.json", ck_dir);
    if (access(path, R_OK) != 0) { /* killed between the two renames: the previous one is whole */
        snprintf(ck_dir, n, "%s/checkpoint.old", out);
        snprintf(path, sizeof path, "%s/trainer.json", ck_dir);
    }
    size_t len;
    char *txt = read_text(path, &len, err);
    if (!txt) return cke_fail(err, CKE_ERR_MISSING, "--resume: no checkpoint in %s", out);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    if (!j) return cke_fail(err, CKE_ERR_FORMAT, "%s is not valid JSON", path);
    const cJSON *st = cJSON_GetObjectItem(j, "step"), *ep = cJSON_GetObjectItem(j, "epoch"),
                *ix = cJSON_GetObjectItem(j, "index"), *mf = cJSON_GetObjectItem(j, "model_file"),
                *b = cJSON_GetObjectItem(j, "batch"), *s = cJSON_GetObjectItem(j, "seq"), *a = cJSON_GetObjectItem(j, "accum");
    cke_status rc = CKE_OK;
    if (!cJSON_IsNumber(st) || !cJSON_IsNumber(ep) || !cJSON_IsNumber(ix) || !cJSON_IsString(mf) || !cJSON_IsNumber(b) ||
        !cJSON_IsNumber(s) || !cJSON_IsNumber(a) || strchr(mf->valuestring, '/'))
        rc = cke_fail(err, CKE_ERR_FORMAT, "%s: missing or bad fields", path);
    else if ((int64_t)b->valuedouble != o->batch || (int64_t)s->valuedouble != o->seq || (int64_t)a->valuedouble != o->accum)
        rc = cke_fail(err, CKE_ERR_ARG, "--resume: the checkpoint was trained with batch %d, seq %d, accum %d; use the same",
                      b->valueint, s->valueint, a->valueint);
    else {
        ri->dp.step = (int64_t)st->valuedouble;
        ri->dp.epoch = (int64_t)ep->valuedouble;
        ri->dp.index = (int64_t)ix->valuedouble;
        snprintf(ri->model_file, sizeof ri->model_file, "%s", mf->valuestring);
    }
    cJSON_Delete(j);
    return rc;
}

static cke_status load_optimizer(const char *ck_dir, const ckm_api *api, ckm_model *m, cke_err *err) {
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
            else memcpy(api->state(m, which) + t->offset, x->data, (size_t)x->nbytes);
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

static double eval_loss(const ckm_api *api, ckm_model *m, const dataset *val, int64_t B, int64_t T, int64_t batches,
                        int32_t *tok, int32_t *tgt) {
    double sum = 0;
    int64_t n = 0;
    for (int64_t k = 0; k < batches; k++)
        for (int64_t b = 0; b < B; b++) {
            int64_t w = (k * B + b) % val->n_win;
            memcpy(tok + b * T, val->ids + w * T, (size_t)T * sizeof(int32_t));
            memcpy(tgt + b * T, val->ids + w * T + 1, (size_t)T * sizeof(int32_t));
            if (b == B - 1) {
                sum += api->train_run(m, tok, tgt, 0.0f, 0);
                n += B * T;
            }
        }
    return n ? sum / (double)n : NAN;
}

/* ------------------------------------------------------------------ the loop */

cke_status cke_train(const cke_train_opts *o, cke_train_result *res, cke_err *err) {
    memset(res, 0, sizeof *res);
    res->last_val_loss = res->first_val_loss = NAN;
    if (!o->data || !o->out || (!o->model && !o->init && !o->resume))
        return cke_fail(err, CKE_ERR_ARG, "train: need a model (or --init), --data and --out");
    if (o->batch < 1 || o->seq < 2 || o->steps < 1 || o->accum < 1 || !(o->lr > 0) || o->val_frac < 0 || o->val_frac >= 0.5)
        return cke_fail(err, CKE_ERR_ARG, "train: need batch >= 1, seq >= 2, steps >= 1, accum >= 1, lr > 0, 0 <= val < 0.5");
    cke_status st = ensure_dir(o->out, err);
    if (st) return st;

    char src_path[PATH_MAX], build[PATH_MAX], path[PATH_MAX], ck_dir[PATH_MAX];
    const char *tok_path = o->tokenizer;
    resume_info ri = {{0, 0, 0}, ""};
    if (o->resume) {
        if ((st = read_resume(o->out, ck_dir, sizeof ck_dir, &ri, o, err))) return st;
        snprintf(src_path, sizeof src_path, "%s/%s", ck_dir, ri.model_file);
        if (!strcmp(ri.model_file, "model.safetensors")) snprintf(src_path, sizeof src_path, "%s", ck_dir);
        snprintf(path, sizeof path, "%s/tokenizer.bin", ck_dir);
        if (access(path, R_OK) == 0) tok_path = path;
    } else if (o->init) {
        if (!o->tokenizer) return cke_fail(err, CKE_ERR_ARG, "--init needs --tokenizer (the vocabulary to train with)");
        cke_tok *tk = NULL;
        if ((st = cke_tok_load(o->tokenizer, &tk, err))) return st;
        int64_t vocab = cke_tok_n_vocab(tk);
        cke_tok_free(tk);
        snprintf(src_path, sizeof src_path, "%s/init", o->out);
        if ((st = write_init_model(o, vocab, src_path, err))) return st;
    } else {
        snprintf(src_path, sizeof src_path, "%s", o->model);
    }
    /* an HF dir carries its tokenizer; copy a tokenizer.bin given on the command line next to it */
    if (tok_path && !o->resume) {
        struct stat sb;
        if (stat(src_path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            const char *ext = strrchr(tok_path, '.');
            snprintf(path, sizeof path, "%s/%s", src_path, ext && !strcmp(ext, ".json") ? "tokenizer.json" : "tokenizer.bin");
            if (strcmp(path, tok_path) != 0 && (st = copy_file(tok_path, path, err))) return st;
        }
    }

    export_ctx x;
    memset(&x, 0, sizeof x);
    if ((st = cke_model_open(src_path, &x.src, err))) return st;
    if (tok_path) snprintf(x.src_tok, sizeof x.src_tok, "%s", tok_path);
    else if (x.src->tok.path && x.src->tok.source == CKE_TOK_LLAMA2C_BIN) snprintf(x.src_tok, sizeof x.src_tok, "%s", x.src->tok.path);

    snprintf(build, sizeof build, "%s/build", o->out);
    cke_compile_opts co = {.out_dir = build, .tokenizer = tok_path, .templates_dir = o->templates_dir,
                           .include_dir = o->include_dir, .libk = o->libk, .ctx = o->seq, .prefill_chunk = o->seq,
                           .max_threads = o->threads > 0 ? o->threads : 1, .quiet = 1, .train_batch = o->batch,
                           .train_seq = o->seq, .train_recompute = o->recompute};
    cke_runner *r = NULL;
    if ((st = cke_compile(src_path, &co, err)) || (st = cke_runner_open(build, o->threads, &r, err))) {
        cke_model_close(x.src);
        return st;
    }
    const ckm_api *api = r->api;
    int32_t *ids = NULL, *tok = NULL, *tgt = NULL;
    int64_t *perm_t = NULL, *perm_v = NULL;
    char *text = NULL;
    FILE *log = NULL;
    if (!r->tok) { st = cke_fail(err, CKE_ERR_MISSING, "train: the model has no tokenizer (give --tokenizer)"); goto done; }
    if (!api->train_init || api->train_init(r->m) != 0) {
        st = cke_fail(err, CKE_ERR_NOMEM, "train: %s", api->train_init ? api->last_error(r->m) : "no training mode");
        goto done;
    }
    if (o->resume && (st = load_optimizer(ck_dir, api, r->m, err))) goto done;

    /* data: documents are separated by blank lines (a story, an article); each is encoded on its
     * own after a BOS, as a prompt is at inference; the last val_frac of the tokens is validation */
    size_t tl = 0, n_ids = 0, cap_ids = 0;
    if (!(text = read_text(o->data, &tl, err))) { st = err ? err->code : CKE_ERR_IO; goto done; }
    cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
    eo.add_bos = 1;
    for (size_t a = 0; a < tl;) {
        while (a < tl && (text[a] == '\n' || text[a] == '\r')) a++;
        size_t b = a;
        while (b < tl && !(text[b] == '\n' && b + 1 < tl && (text[b + 1] == '\n' || text[b + 1] == '\r'))) b++;
        size_t e = b;
        while (e > a && (text[e - 1] == '\n' || text[e - 1] == '\r')) e--;
        if (e > a) {
            int32_t *doc = NULL;
            size_t nd = 0;
            if ((st = cke_tok_encode(r->tok, text + a, e - a, &eo, &doc, &nd, err))) { free(doc); goto done; }
            if (n_ids + nd > cap_ids) {
                size_t nc = cap_ids ? cap_ids * 2 : 4096;
                while (nc < n_ids + nd) nc *= 2;
                int32_t *grown = realloc(ids, nc * sizeof(int32_t));
                if (!grown) { free(doc); st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); goto done; }
                ids = grown, cap_ids = nc;
            }
            memcpy(ids + n_ids, doc, nd * sizeof(int32_t));
            n_ids += nd;
            free(doc);
        }
        a = b;
    }
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
    perm_t = malloc((size_t)tr.n_win * sizeof(int64_t));
    tok = malloc((size_t)(o->batch * o->seq) * sizeof(int32_t));
    tgt = malloc((size_t)(o->batch * o->seq) * sizeof(int32_t));
    if (!perm_t || !tok || !tgt) { st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); goto done; }
    tr.perm = perm_t;
    tr.perm_epoch = -1;
    snprintf(path, sizeof path, "%s/log.txt", o->out);
    log = fopen(path, o->resume ? "a" : "w");
    if (!log) { st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path); goto done; }

    data_pos dp = ri.dp;
    const int64_t R = o->batch * o->seq;
    const float dscale = 1.0f / (float)(R * o->accum);
    double t0 = now_s(), tstep = t0, t_warm = 0, t_prev = t0;
    int64_t done_steps = 0;
    if (va.n_win > 0 && !o->resume) {
        res->first_val_loss = eval_loss(api, r->m, &va, o->batch, o->seq, o->eval_batches, tok, tgt);
        fprintf(log, "step %lld val_loss %.9g\n", (long long)dp.step, res->first_val_loss);
    }
    for (; dp.step < o->steps; dp.step++) {
        api->zero_grad(r->m);
        double loss = 0;
        for (int64_t a = 0; a < o->accum; a++) {
            next_batch(&tr, &dp, o->seed, o->batch, o->seq, tok, tgt);
            loss += api->train_run(r->m, tok, tgt, dscale, 1);
        }
        loss /= (double)(R * o->accum);
        double norm = sqrt(api->grad_sumsq(r->m));
        float gscale = (o->clip > 0 && norm > o->clip) ? (float)(o->clip / norm) : 1.0f;
        double lr = lr_at(o, dp.step);
        api->adamw(r->m, (float)lr, o->beta1, o->beta2, o->eps, o->wd, dp.step + 1, gscale);
        done_steps++;
        res->last_loss = loss;
        double tn = now_s();
        /* throughput over the steps after the first (which pays for first-touch page faults) */
        if (done_steps == 1) t_warm = tn;
        double tps = done_steps > 1 ? (double)((done_steps - 1) * R * o->accum) / (tn - t_warm)
                                    : (double)(R * o->accum) / (tn - t0);
        res->tokens_per_s = tps;
        fprintf(log, "step %lld loss %.9g lr %.6g norm %.6g ms %.0f\n", (long long)(dp.step + 1), loss, lr, norm,
                1e3 * (tn - t_prev));
        t_prev = tn;
        int last = dp.step + 1 == o->steps;
        if (o->crash_after > 0 && done_steps >= o->crash_after) { /* as if killed: nothing more is written */
            res->interrupted = 1;
            dp.step++;
            break;
        }
        int stop = cke_train_stop_requested || (o->stop_after > 0 && done_steps >= o->stop_after);
        if (va.n_win > 0 && o->eval_every > 0 && ((dp.step + 1) % o->eval_every == 0 || last)) {
            res->last_val_loss = eval_loss(api, r->m, &va, o->batch, o->seq, o->eval_batches, tok, tgt);
            fprintf(log, "step %lld val_loss %.9g\n", (long long)(dp.step + 1), res->last_val_loss);
        }
        fflush(log);
        if (!o->quiet && (tn - tstep > 0.25 || last || stop)) {
            double eta = (double)(o->steps - dp.step - 1) * (tn - t0) / (double)done_steps;
            fprintf(stderr, "\rstep %lld/%lld | loss %.4f | val %.4f | lr %.2e | norm %.2f | %.0f tok/s | ETA %dm%02ds   ",
                    (long long)(dp.step + 1), (long long)o->steps, loss, res->last_val_loss, lr, norm, tps,
                    (int)(eta / 60), (int)eta % 60);
            tstep = tn;
        }
        if ((o->save_every > 0 && (dp.step + 1) % o->save_every == 0) || last || stop) {
            data_pos save = dp;
            save.step = dp.step + 1;
            if ((st = save_checkpoint(o, &x, api, r->m, save, err))) goto done;
        }
        if (stop) {
            res->interrupted = 1;
            dp.step++;
            break;
        }
    }
    if (!o->quiet) fprintf(stderr, "\n");
    res->steps_done = dp.step;
done:
    if (log) fclose(log);
    free(text);
    free(ids);
    free(tok);
    free(tgt);
    free(perm_t);
    free(perm_v);
    cke_runner_close(r);
    cke_model_close(x.src);
    return st;
}
