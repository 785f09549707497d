#include "driver/compile.h"

#include "cke/kernels.h"
#include "codegen/codegen.h"
#include "formats/gguf.h"
#include "formats/model.h"
#include "ir/ir.h"
#include "plan/plan.h"
#include "plan/plan_train.h"
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ model -> IR source */

typedef struct {
    const char *name;
    double value;
    double neutral; /* the value that means "feature not used" */
} feature;

typedef struct {
    const cke_model *m;
    feature hp[40];
    int n_hp;
} src_ctx;

static void hp_add(src_ctx *c, const char *name, double v, double neutral) {
    c->hp[c->n_hp++] = (feature){name, v, neutral};
}

/* Every hyperparameter and feature of the normalized model, under the names templates use.
 * The "neutral" value marks features: a model using one (value != neutral) needs a template
 * that lists it, or compilation stops naming it — nothing is silently ignored. */
static void fill_hparams(src_ctx *c) {
    const cke_hparams *h = &c->m->hp;
    const double none = -1e300; /* plain hyperparameter: always fine */
    hp_add(c, "dim", (double)h->dim, none);
    hp_add(c, "n_layer", (double)h->n_layers, none);
    hp_add(c, "n_head", (double)h->n_heads, none);
    hp_add(c, "n_kv_head", (double)h->n_kv_heads, none);
    hp_add(c, "head_dim", (double)h->head_dim, none);
    hp_add(c, "ffn_dim", (double)h->ffn_dim, none);
    hp_add(c, "vocab", (double)h->vocab, none);
    hp_add(c, "ctx", (double)h->ctx_len, none);
    hp_add(c, "norm_eps", h->norm_eps, none);
    hp_add(c, "rope_theta", h->rope.theta, none);
    hp_add(c, "rope_dim", (double)h->rope.dims, none);
    hp_add(c, "rope_layout", (double)h->rope.layout, none);
    hp_add(c, "attn_scale", h->attn_scale, none);
    hp_add(c, "window", (double)h->sliding_window, 0);
    hp_add(c, "rope_scaling", (double)h->rope.scaling, 0);
    hp_add(c, "rope_factor", h->rope.factor, none);
    hp_add(c, "rope_low_freq", h->rope.low_freq_factor, none);
    hp_add(c, "rope_high_freq", h->rope.high_freq_factor, none);
    hp_add(c, "rope_orig_ctx", (double)h->rope.orig_ctx, none);
    hp_add(c, "norm_add_one", h->norm_add_one ? 1 : 0, 0);
    hp_add(c, "layer_norm", h->norm == CKE_NORM_LAYER ? 1 : 0, 0);
    hp_add(c, "gelu_act", h->act != CKE_ACT_SILU ? 1 : 0, 0);
    hp_add(c, "gelu_kind", h->act == CKE_ACT_GELU ? CKE_GELU_ERF : CKE_GELU_TANH, none); /* which gelu */
    hp_add(c, "ungated_ffn", h->gated_ffn ? 0 : 1, 0);
    hp_add(c, "qk_norm", h->qk_norm ? 1 : 0, 0);
    hp_add(c, "post_norms", h->post_norms ? 1 : 0, 0);
    hp_add(c, "learned_pos", h->learned_pos ? 1 : 0, 0);
    hp_add(c, "embd_scale", h->embd_scale, 1);
    hp_add(c, "attn_softcap", h->attn_softcap, 0);
    hp_add(c, "final_softcap", h->final_softcap, 0);
}

static int src_hparam(void *ud, const char *name, double *v) {
    src_ctx *c = ud;
    for (int i = 0; i < c->n_hp; i++)
        if (!strcmp(c->hp[i].name, name)) { *v = c->hp[i].value; return 0; }
    return -1;
}

static int src_tensor(void *ud, const char *name, int *ndim, int64_t dims[4]) {
    src_ctx *c = ud;
    const cke_model_tensor *t = cke_model_find(c->m, name);
    if (!t) return -1;
    *ndim = t->ndim;
    for (int i = 0; i < t->ndim && i < 4; i++) dims[i] = t->shape[i];
    return 0;
}

static int64_t src_count(void *ud) { return ((src_ctx *)ud)->m->n_tensors; }
static const char *src_name(void *ud, int64_t i) { return ((src_ctx *)ud)->m->tensors[i].name; }

/* Weights are read here anyway: a NaN or Inf (a corrupt or broken file) would only show up as
 * NaN logits later, so it is refused now, naming the tensor. */
static cke_status check_finite(const cke_model *m, const cke_model_tensor *t, int dtype, const void *data, int64_t n,
                               cke_err *err) {
    int64_t i = cke_dtype_find_nonfinite(dtype, data, n);
    if (i < 0) return CKE_OK;
    return cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s' has a NaN or Inf weight (element %lld)", m->path, t->src_name,
                    (long long)i);
}

static cke_status fetch_weight(void *ud, const char *name, float *dst, int64_t numel, cke_err *err) {
    const cke_model *m = ud;
    const cke_model_tensor *t = cke_model_find(m, name);
    if (!t) return cke_fail(err, CKE_ERR_MISSING, "tensor '%s' vanished from the model", name);
    if (cke_model_tensor_numel(t) != numel)
        return cke_fail(err, CKE_ERR_SHAPE, "tensor '%s': %lld elements, the plan has %lld", name,
                        (long long)cke_model_tensor_numel(t), (long long)numel);
    const cke_dtype_traits *tr = cke_dtype_traits_of(t->dtype);
    if (tr && tr->quantized) { /* block formats (a quantized embedding, or --keep-f32): dequantize exactly */
        const cke_qtype_ops *q = cke_ktable_for(CKE_ISA_REF)->qops[t->dtype];
        if (!q || !q->dequantize_row)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "tensor '%s' is %s, which cke cannot read", name, cke_dtype_name(t->dtype));
        q->dequantize_row(dst, t->data, numel);
        return check_finite(m, t, CKE_DT_F32, dst, numel, err);
    }
    cke_status st = cke_model_tensor_to_f32(t, dst, err);
    return st ? st : check_finite(m, t, CKE_DT_F32, dst, numel, err);
}

/* Raw blocks for weights.bin: the file's bytes, or their exact rearrangement into the repacked
 * format the plan chose (kernels.h ids 40..: same bytes per row, same values). */
static cke_status fetch_raw(void *ud, const char *name, int dtype, void *dst, size_t bytes, cke_err *err) {
    const cke_model_tensor *t = cke_model_find(ud, name);
    const cke_qtype_ops *q = dtype > 0 && dtype < CKE_QTYPE_COUNT ? cke_ktable_for(CKE_ISA_REF)->qops[dtype] : NULL;
    const int src = q && q->repack_of ? q->repack_of : dtype;
    if (!t || (int)t->dtype != src || (size_t)t->nbytes != bytes || t->ndim != 2)
        return cke_fail(err, CKE_ERR_SHAPE, "tensor '%s' is not %zu bytes of type %s as planned", name, bytes, cke_dtype_name(src));
    if (src == dtype) {
        memcpy(dst, t->data, bytes);
        return check_finite(ud, t, dtype, dst, cke_model_tensor_numel(t), err); /* F16/BF16; blocks pass */
    }
    const int64_t N = t->shape[0], K = t->shape[1];
    const size_t rs = cke_qtype_row_size(dtype, K);
    if (!rs || rs * (size_t)N != bytes)
        return cke_fail(err, CKE_ERR_SHAPE, "tensor '%s': rows of %lld elements are not whole %s blocks", name, (long long)K, q->name);
    for (int64_t n = 0; n < N; n++) q->repack_row((char *)dst + (size_t)n * rs, (const char *)t->data + (size_t)n * rs, K);
    return CKE_OK;
}

/* The format a weight keeps in weights.bin: its file format when a kernel reads it (F16, BF16 and
 * the block formats of cke_qtype_ops), repacked for the SIMD kernels where cke has a repacking
 * (Q8_0, Q4_0, Q4_K; CKE_REPACK=0 keeps the GGUF layout, for comparisons); F32 and everything
 * else are stored as f32. */
static int keep_dtype(void *ud, const char *name) {
    const cke_model_tensor *t = cke_model_find(ud, name);
    if (!t || t->dtype == CKE_DT_F32 || (int)t->dtype >= CKE_QTYPE_COUNT) return 0;
    const cke_qtype_ops *q = cke_ktable_for(CKE_ISA_REF)->qops[t->dtype];
    if (!q || !q->vec_dot) return 0;
    const char *rp = getenv("CKE_REPACK");
    return rp && !strcmp(rp, "0") ? (int)t->dtype : cke_qtype_repacked((int)t->dtype);
}

/* ------------------------------------------------------------------ files */

static cke_status mkdir_p(const char *dir, cke_err *err) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return cke_fail(err, CKE_ERR_IO, "cannot create %s", tmp);
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return cke_fail(err, CKE_ERR_IO, "cannot create %s", tmp);
    return CKE_OK;
}

static cke_status copy_file(const char *from, const char *to, cke_err *err) {
    FILE *a = fopen(from, "rb");
    if (!a) return cke_fail(err, CKE_ERR_IO, "cannot open %s", from);
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *b = fopen(tmp, "wb");
    if (!b) { fclose(a); return cke_fail(err, CKE_ERR_IO, "cannot write %s", tmp); }
    char buf[1 << 16];
    size_t n;
    cke_status st = CKE_OK;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n) { st = cke_fail(err, CKE_ERR_IO, "write error on %s", tmp); break; }
    if (ferror(a)) st = cke_fail(err, CKE_ERR_IO, "read error on %s", from);
    fclose(a);
    if (fclose(b) != 0 && !st) st = cke_fail(err, CKE_ERR_IO, "write error on %s", tmp);
    if (!st && rename(tmp, to) != 0) st = cke_fail(err, CKE_ERR_IO, "cannot rename %s", tmp);
    if (st) remove(tmp);
    return st;
}

/* The tokenizer goes into the model directory: a GGUF's tokenizer.* metadata as a vocab-only
 * tokenizer.gguf; a tokenizer.bin or tokenizer.json as a copy. */
static cke_status write_tokenizer(const cke_model *m, const char *explicit_tok, const char *dir, char *out_name,
                                  size_t n, cke_err *err) {
    char to[PATH_MAX];
    if (explicit_tok) {
        const char *ext = strrchr(explicit_tok, '.');
        snprintf(out_name, n, "tokenizer%s", ext && !strcmp(ext, ".json") ? ".json" : ext && !strcmp(ext, ".gguf") ? ".gguf" : ".bin");
        snprintf(to, sizeof to, "%s/%s", dir, out_name);
        return copy_file(explicit_tok, to, err);
    }
    if (!m->tok.path || m->tok.source == CKE_TOK_NONE) { out_name[0] = 0; return CKE_OK; }
    if (m->tok.source == CKE_TOK_GGUF) {
        cke_gguf *g = NULL;
        cke_status st = cke_gguf_open(m->tok.path, &g, err);
        if (st) return st;
        cke_gguf_writer *w = NULL;
        st = cke_gguf_writer_new(&w, err);
        for (int64_t i = 0; !st && i < cke_gguf_n_kv(g); i++) {
            const cke_gguf_kv *kv = cke_gguf_kv_at(g, i);
            if (!strncmp(kv->key, "tokenizer.", 10) || !strcmp(kv->key, "general.architecture"))
                st = cke_gguf_writer_copy_kv(w, g, kv, err);
        }
        snprintf(out_name, n, "tokenizer.gguf");
        snprintf(to, sizeof to, "%s/%s", dir, out_name);
        if (!st) st = cke_gguf_writer_write(w, to, err);
        cke_gguf_writer_free(w);
        cke_gguf_close(g);
        return st;
    }
    snprintf(out_name, n, m->tok.source == CKE_TOK_HF_JSON ? "tokenizer.json" : "tokenizer.bin");
    snprintf(to, sizeof to, "%s/%s", dir, out_name);
    return copy_file(m->tok.path, to, err);
}

/* Token ids index the logits: a tokenizer with more tokens than the model's vocabulary would make
 * run/perplexity read logits past the end. Refuse the pair before compiling anything. */
static cke_status check_tok_vocab(const cke_model *m, const char *explicit_tok, cke_err *err) {
    const char *path = explicit_tok ? explicit_tok : m->tok.path;
    if (!path || (!explicit_tok && m->tok.source == CKE_TOK_NONE)) return CKE_OK;
    int64_t n = m->tok.n_tokens; /* known without loading for GGUF metadata */
    if (explicit_tok || n < 0) {
        cke_tok *t = NULL;
        cke_status st = cke_tok_load(path, &t, err);
        if (st) return st;
        n = cke_tok_n_vocab(t);
        cke_tok_free(t);
    }
    if (n > m->hp.vocab)
        return cke_fail(err, CKE_ERR_SHAPE, "tokenizer %s has %lld tokens but the model %s has a vocabulary of %lld: "
                        "ids from %lld up would have no logits", path, (long long)n, m->path, (long long)m->hp.vocab,
                        (long long)m->hp.vocab);
    return CKE_OK;
}

cke_status cke_locate_resources(char *include_dir, char *templates_dir, char *libk, size_t n, cke_err *err) {
    char root[PATH_MAX];
    const char *home = getenv("CKE_HOME");
    if (home && *home) {
        snprintf(root, sizeof root, "%s", home);
    } else {
        char exe[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (len <= 0) return cke_fail(err, CKE_ERR_IO, "cannot find the cke executable (set CKE_HOME)");
        exe[len] = 0;
        char *slash = strrchr(exe, '/'); /* .../build/cke -> .../build */
        if (slash) *slash = 0;
        snprintf(libk, n, "%s/libckekernels.a", exe);
        slash = strrchr(exe, '/'); /* -> repo root */
        if (slash) *slash = 0;
        snprintf(root, sizeof root, "%s", exe);
    }
    if (home && *home) snprintf(libk, n, "%s/build/libckekernels.a", root);
    snprintf(include_dir, n, "%s/include", root);
    snprintf(templates_dir, n, "%s/src/templates", root);
    struct stat st;
    if (stat(libk, &st) != 0) return cke_fail(err, CKE_ERR_MISSING, "kernel library %s not found (run make)", libk);
    if (stat(templates_dir, &st) != 0) return cke_fail(err, CKE_ERR_MISSING, "templates folder %s not found", templates_dir);
    return CKE_OK;
}

/* The template of each family: llama.json serves Llama, Mistral (sliding window), SmolLM / Llama 3
 * (rope scaling) and Phi-3 (whose fused tensors the formats layer splits into llama's). */
static const char *template_of(cke_arch a) {
    switch (a) {
    case CKE_ARCH_LLAMA:
    case CKE_ARCH_MISTRAL:
    case CKE_ARCH_PHI3: return "llama";
    default: return cke_arch_name(a);
    }
}

cke_status cke_compile(const char *model_path, const cke_compile_opts *o, cke_err *err) {
    cke_model *m = NULL;
    cke_ir *ir = NULL;
    cke_plan *p = NULL;
    cke_train_plan *tp = NULL;
    char path[PATH_MAX], path2[PATH_MAX];
    cke_status st = cke_model_open(model_path, &m, err);
    if (st) return st;
    if ((st = check_tok_vocab(m, o->tokenizer, err))) goto done;

    src_ctx sc = {.m = m};
    fill_hparams(&sc);
    cke_ir_source src = {.ud = &sc, .hparam = src_hparam, .tensor = src_tensor, .tensor_count = src_count,
                         .tensor_name = src_name};
    snprintf(path, sizeof path, "%s/%s.json", o->templates_dir, template_of(m->arch));
    if (access(path, R_OK) != 0) {
        st = cke_fail(err, CKE_ERR_UNSUPPORTED, "no template for the %s family (%s is missing)", cke_arch_name(m->arch), path);
        goto done;
    }
    if ((st = cke_ir_build(&ir, path, &src, err))) goto done;
    /* a feature the model uses must be one the template knows */
    for (int i = 0; i < sc.n_hp; i++) {
        double v;
        if (sc.hp[i].neutral != -1e300 && sc.hp[i].value != sc.hp[i].neutral && cke_ir_hparam(ir, sc.hp[i].name, &v) != 0) {
            st = cke_fail(err, CKE_ERR_UNSUPPORTED, "the model uses '%s' = %g, which the %s template does not implement",
                          sc.hp[i].name, sc.hp[i].value, ir->family);
            goto done;
        }
    }

    int64_t ctx = o->ctx > 0 ? o->ctx : m->hp.ctx_len > 0 ? m->hp.ctx_len : 2048;
    if (o->ctx <= 0 && ctx > 4096) ctx = 4096;
    int64_t chunk = o->prefill_chunk > 0 ? o->prefill_chunk : 512;
    if ((st = cke_plan_new(&p, ir, ctx, chunk, o->max_threads > 0 ? o->max_threads : 16, o->canaries, err))) goto done;
    if (!o->keep_f32 && o->train_batch <= 0 && (st = cke_plan_set_wdtypes(p, keep_dtype, m, err))) goto done;

    if (o->train_batch > 0 &&
        (st = cke_train_plan_new(&tp, p, o->train_batch, o->train_seq, o->train_recompute, o->max_threads > 0 ? o->max_threads : 16, err)))
        goto done;
    if ((st = mkdir_p(o->out_dir, err))) goto done;
    snprintf(path, sizeof path, "%s/ir.json", o->out_dir);
    if ((st = cke_ir_write_json(ir, path, err))) goto done;
    snprintf(path, sizeof path, "%s/layout.json", o->out_dir);
    if ((st = cke_plan_write_layout(p, path, err))) goto done;
    snprintf(path, sizeof path, "%s/memory_map.txt", o->out_dir);
    if ((st = cke_plan_write_map(p, path, err))) goto done;
    if (tp) {
        FILE *mf = fopen(path, "a");
        if (!mf) { st = cke_fail(err, CKE_ERR_IO, "cannot append to %s", path); goto done; }
        cke_train_plan_write_map(tp, mf);
        fclose(mf);
    }

    const char *base = strrchr(model_path, '/');
    base = base && base[1] ? base + 1 : model_path;
    char desc[PATH_MAX + 64];
    snprintf(desc, sizeof desc, "%s (%s)", base, cke_model_source_name(m->source));
    cke_codegen_opts co = {.model_name = base, .source_desc = desc, .train = tp};
    snprintf(path, sizeof path, "%s/model.c", o->out_dir);
    FILE *f = fopen(path, "w");
    if (!f) { st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path); goto done; }
    st = cke_codegen_emit(p, &co, f, err);
    if (fclose(f) != 0 && !st) st = cke_fail(err, CKE_ERR_IO, "error writing %s", path);
    if (st) goto done;

    snprintf(path2, sizeof path2, "%s/weights.bin", o->out_dir);
    if ((st = cke_weights_write(p, path2, fetch_weight, fetch_raw, m, err))) goto done;

    char so[PATH_MAX], logp[PATH_MAX];
    snprintf(so, sizeof so, "%s/model.so", o->out_dir);
    snprintf(logp, sizeof logp, "%s/build.log", o->out_dir);
    if ((st = cke_codegen_compile(path, so, o->include_dir, o->libk, logp, err))) goto done;

    char tokname[64];
    if ((st = write_tokenizer(m, o->tokenizer, o->out_dir, tokname, sizeof tokname, err))) goto done;

    snprintf(path, sizeof path, "%s/cke-model.txt", o->out_dir);
    f = fopen(path, "w");
    if (!f) { st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path); goto done; }
    fprintf(f, "family %s\nsource %s\nformat %s\ntokenizer %s\nctx %lld\nprefill_chunk %lld\nlayout_hash %016llx\n",
            ir->family, model_path, cke_model_source_name(m->source), tokname[0] ? tokname : "-", (long long)p->ctx,
            (long long)p->prefill.T, (unsigned long long)cke_plan_layout_hash(p));
    fclose(f);
    if (!o->quiet)
        fprintf(stderr, "cke: compiled %s (%s, %d layers) -> %s: weights %.2f MiB, prefill arena %.2f MiB (%.0f%% reuse)\n",
                base, ir->family, ir->n_layer, o->out_dir, (double)p->weights_bytes / (1 << 20),
                (double)p->prefill.arena_bytes / (1 << 20),
                p->prefill.sum_bytes ? 100.0 * (1.0 - (double)p->prefill.arena_bytes / (double)p->prefill.sum_bytes) : 0.0);
done:
    cke_train_plan_free(tp);
    cke_plan_free(p);
    cke_ir_free(ir);
    cke_model_close(m);
    return st;
}
