#define _GNU_SOURCE /* renameat2, nftw */
#include "driver/compile.h"
#include "cke/cke.h"

#include "cke/kernels.h"
#include "codegen/codegen.h"
#include "formats/gguf.h"
#include "formats/model.h"
#include "ir/ir.h"
#include "plan/plan.h"
#include "plan/plan_train.h"
#include "report/report.h"
#include "tokenizer/tokenizer.h"
#include "util/fs.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
    feature hp[64];
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
    hp_add(c, "swa_pattern", (double)h->swa_pattern, 0);
    hp_add(c, "rope_local_theta", h->rope_local_theta, 0);
    hp_add(c, "norm_add_one", h->norm_add_one ? 1 : 0, 0);
    hp_add(c, "layer_norm", h->norm == CKE_NORM_LAYER ? 1 : 0, 0);
    hp_add(c, "gelu_act", h->act != CKE_ACT_SILU ? 1 : 0, 0);
    hp_add(c, "gelu_kind", h->act == CKE_ACT_GELU ? CKE_GELU_ERF : CKE_GELU_TANH, none); /* which gelu */
    hp_add(c, "ungated_ffn", h->gated_ffn ? 0 : 1, 0);
    hp_add(c, "qk_norm", h->qk_norm ? 1 : 0, 0);
    hp_add(c, "qk_norm_full", h->qk_norm_full ? 1 : 0, 0); /* OLMoE: over the whole width, not per head */
    hp_add(c, "post_norms", h->post_norms ? 1 : 0, 0);
    hp_add(c, "learned_pos", h->learned_pos ? 1 : 0, 0);
    hp_add(c, "embd_scale", h->embd_scale, 1);
    hp_add(c, "attn_softcap", h->attn_softcap, 0);
    hp_add(c, "final_softcap", h->final_softcap, 0);
    hp_add(c, "n_expert", (double)h->n_expert, 0); /* mixture of experts: a template that lists the experts */
    hp_add(c, "n_expert_used", (double)h->n_expert_used, none);
    hp_add(c, "moe_norm_topk", h->moe_norm_topk ? 1 : 0, none); /* read by every template with experts */
    hp_add(c, "shexp_ffn_dim", (double)h->shexp_ffn_dim, 0);    /* a shared expert (Qwen2-MoE) */
    hp_add(c, "moe_aux_coef", h->moe_aux_coef, 0);              /* training's load-balancing loss */
    /* DeepSeek-style MoE (GLM-4.5): leading dense layers, sigmoid router with a choice bias, groups, scale */
    hp_add(c, "first_k_dense", (double)h->n_dense_lead, 0);
    hp_add(c, "expert_ffn_dim", (double)(h->expert_ffn_dim ? h->expert_ffn_dim : h->ffn_dim), none);
    hp_add(c, "shexp_ungated", h->shexp_ungated ? 1 : 0, 0);
    hp_add(c, "moe_sigmoid", h->moe_sigmoid ? 1 : 0, 0);
    hp_add(c, "moe_n_group", (double)(h->moe_n_group > 1 ? h->moe_n_group : 1), 1);
    hp_add(c, "moe_topk_group", (double)(h->moe_n_group > 1 ? h->moe_topk_group : 1), none);
    hp_add(c, "moe_routed_scale", h->moe_routed_scale > 0 ? h->moe_routed_scale : 1, 1);
    /* multi-head latent attention (DeepSeek): a template that lists kv_lora_rank implements it */
    hp_add(c, "kv_lora_rank", (double)h->kv_lora_rank, 0);
    hp_add(c, "q_lora_rank", (double)h->q_lora_rank, none);
    hp_add(c, "qk_nope_dim", (double)h->qk_nope_dim, none);
    hp_add(c, "v_head_dim", (double)h->v_head_dim, none);
}

/* A feature the model uses must be one the template knows: checked by the IR builder once the
 * template's hyperparameters are read, before any tensor (a Mixtral's experts are named as such,
 * not as the first expert tensor a dense template does not consume). */
static cke_status src_check(void *ud, const cke_ir *ir, cke_err *err) {
    const src_ctx *c = ud;
    for (int i = 0; i < c->n_hp; i++) {
        double v;
        if (c->hp[i].neutral != -1e300 && c->hp[i].value != c->hp[i].neutral && cke_ir_hparam(ir, c->hp[i].name, &v) != 0)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "the model uses '%s' = %g, which the %s template does not implement",
                            c->hp[i].name, c->hp[i].value, ir->family);
    }
    return CKE_OK;
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

static cke_status fetch_weight(const cke_model *m, const cke_model_tensor *t, const char *name, float *dst, int64_t numel,
                               cke_err *err) {
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
static cke_status fetch_raw(const cke_model *ud, const cke_model_tensor *t, const char *name, int dtype, void *dst,
                            size_t bytes, cke_err *err) {
    const cke_qtype_ops *q = dtype > 0 && dtype < CKE_QTYPE_COUNT ? cke_ktable_for(CKE_ISA_REF)->qops[dtype] : NULL;
    const int src = q && q->repack_of ? q->repack_of : dtype;
    if (!t || (int)t->dtype != src || (size_t)t->nbytes != bytes || t->ndim < 2 || t->ndim > 3)
        return cke_fail(err, CKE_ERR_SHAPE, "tensor '%s' is not %zu bytes of type %s as planned", name, bytes, cke_dtype_name(src));
    if (src == dtype) {
        memcpy(dst, t->data, bytes);
        return check_finite(ud, t, dtype, dst, cke_model_tensor_numel(t), err); /* F16/BF16; blocks pass */
    }
    /* rows of K: a matrix [N, K], or the experts' stack [E, F, K] as E * F rows */
    const int64_t K = t->shape[t->ndim - 1], N = cke_model_tensor_numel(t) / K;
    const size_t rs = cke_qtype_row_size(dtype, K);
    if (!rs || rs * (size_t)N != bytes)
        return cke_fail(err, CKE_ERR_SHAPE, "tensor '%s': rows of %lld elements are not whole %s blocks", name, (long long)K, q->name);
    for (int64_t n = 0; n < N; n++) q->repack_row((char *)dst + (size_t)n * rs, (const char *)t->data + (size_t)n * rs, K);
    return CKE_OK;
}

/* weights.bin is written tensor by tensor through these two: a compile interrupted meanwhile
 * stops at the next tensor (a large model takes seconds to write). Under tensor parallelism each
 * weight the IR marks split is this rank's block of the model's tensor. */
typedef struct {
    const cke_model *m;
    const cke_ir *ir;
    const volatile sig_atomic_t *cancel;
} fetch_ctx;

static int split_of(const fetch_ctx *c, const char *name) {
    int vi = c->ir->tp_size > 1 ? cke_ir_find(c->ir, name) : -1;
    return vi >= 0 ? c->ir->v[vi].split : CKE_SPLIT_NONE;
}

/* Rank r's block of a [N, K] (or [N]) tensor's bytes: rows r*N/R.., or in every row the bytes of
 * columns r*K/R.. (whole blocks of a block format, which the plan made sure of). The slice is a
 * tensor of its own in *out, its data malloc'd (the caller frees it). */
static cke_status slice_tensor(const fetch_ctx *c, const cke_model_tensor *t, int split, cke_model_tensor *out,
                               cke_err *err) {
    const int vi = cke_ir_find(c->ir, t->name);
    /* the block rank r holds: its own (parts = ranks), or a replicated kv head's (parts < ranks) */
    const int R = vi >= 0 && c->ir->v[vi].split_parts > 1 ? c->ir->v[vi].split_parts : c->ir->tp_size;
    const int r = (int)((int64_t)c->ir->tp_rank * R / c->ir->tp_size);
    const int64_t N = t->shape[0], K = t->ndim > 1 ? t->shape[1] : 1;
    size_t row = (size_t)t->nbytes / (size_t)N, part = split == CKE_SPLIT_ROWS ? row : row / (size_t)R;
    const int64_t rows = split == CKE_SPLIT_ROWS ? N / R : N;
    if (split == CKE_SPLIT_COLS && (t->ndim != 2 || part * (size_t)R != row ||
                                    (t->dtype != CKE_DT_F32 && cke_qtype_row_size((int)t->dtype, K / R) != part)))
        return cke_fail(err, CKE_ERR_SHAPE, "tensor '%s': columns of %lld %s elements cannot be split in %d", t->name,
                        (long long)K, cke_dtype_name(t->dtype), R);
    *out = *t;
    out->shape[split == CKE_SPLIT_ROWS ? 0 : 1] /= R;
    out->nbytes = (int64_t)(part * (size_t)rows);
    char *d = malloc(out->nbytes ? (size_t)out->nbytes : 1);
    if (!d) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < rows; i++) {
        const int64_t src_row = split == CKE_SPLIT_ROWS ? (int64_t)r * rows + i : i;
        memcpy(d + (size_t)i * part, (const char *)t->data + (size_t)src_row * row + (split == CKE_SPLIT_COLS ? (size_t)r * part : 0), part);
    }
    out->data = d;
    return CKE_OK;
}

static cke_status fetch_weight_c(void *ud, const char *name, float *dst, int64_t numel, cke_err *err) {
    const fetch_ctx *c = ud;
    if (c->cancel && *c->cancel) return cke_fail(err, CKE_ERR_IO, "interrupted");
    const cke_model_tensor *t = cke_model_find(c->m, name);
    const int split = split_of(c, name);
    if (split == CKE_SPLIT_NONE || !t) return fetch_weight(c->m, t, name, dst, numel, err);
    if (split == CKE_SPLIT_RANK0 && c->ir->tp_rank > 0) { /* added once, by rank 0 */
        memset(dst, 0, (size_t)numel * sizeof(float));
        return CKE_OK;
    }
    if (split == CKE_SPLIT_RANK0) return fetch_weight(c->m, t, name, dst, numel, err);
    /* the whole tensor as f32 (a block format whose blocks do not split is dequantized), then the block */
    const int64_t full = cke_model_tensor_numel(t);
    float *all = malloc((size_t)full * sizeof(float));
    if (!all) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_status st = fetch_weight(c->m, t, name, all, full, err);
    if (!st) {
        cke_model_tensor ft = *t, sl;
        ft.dtype = CKE_DT_F32, ft.data = all, ft.nbytes = full * (int64_t)sizeof(float);
        if (!(st = slice_tensor(c, &ft, split, &sl, err))) {
            if (sl.nbytes != numel * (int64_t)sizeof(float))
                st = cke_fail(err, CKE_ERR_SHAPE, "tensor '%s': the block has %lld elements, the plan %lld", name,
                              (long long)(sl.nbytes / 4), (long long)numel);
            else memcpy(dst, sl.data, (size_t)sl.nbytes);
            free((void *)sl.data);
        }
    }
    free(all);
    return st;
}

static cke_status fetch_raw_c(void *ud, const char *name, int dtype, void *dst, size_t bytes, cke_err *err) {
    const fetch_ctx *c = ud;
    if (c->cancel && *c->cancel) return cke_fail(err, CKE_ERR_IO, "interrupted");
    const cke_model_tensor *t = cke_model_find(c->m, name);
    const int split = split_of(c, name);
    if (split != CKE_SPLIT_ROWS && split != CKE_SPLIT_COLS) return fetch_raw(c->m, t, name, dtype, dst, bytes, err);
    if (!t) return cke_fail(err, CKE_ERR_MISSING, "tensor '%s' vanished from the model", name);
    cke_model_tensor sl;
    cke_status st = slice_tensor(c, t, split, &sl, err);
    if (st) return st;
    st = fetch_raw(c->m, &sl, name, dtype, dst, bytes, err);
    free((void *)sl.data);
    return st;
}

/* ------------------------------------------------------------------ targets */

/* Where a model.so can be built for, as data (cke compile --target TRIPLE): the C compiler that
 * builds for it, the folder of its kernel library beside the host's (the build tree's
 * build-aarch64/, made by `make CC=aarch64-linux-gnu-gcc BUILD=build-aarch64`; installed:
 * lib/cke/TRIPLE/), and whether its kernels read cke's repacked layouts (built for AVX-512's
 * vpdpbusd: x86 only; aarch64 reads the GGUF layout with its NEON dots). */
typedef struct {
    const char *triple, *cc, *build_dir;
    int repack;
} cke_target;
static const cke_target cke_targets[] = {
    {.triple = "aarch64-linux-gnu", .cc = "aarch64-linux-gnu-gcc", .build_dir = "build-aarch64", .repack = 0},
};

/* name is an executable file on PATH */
static int on_path(const char *name) {
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    for (const char *p = path && *path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        if ((size_t)snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name) < sizeof buf && access(buf, X_OK) == 0) return 1;
        p += n + (p[n] == ':');
    }
    return 0;
}

/* The target named by o->target: its compiler (checked on PATH) and kernel library (libk, n
 * bytes) found beside the host's kernel library o->libk. */
static cke_status resolve_target(const cke_compile_opts *o, const cke_target **out, char *libk, size_t n, cke_err *err) {
    const cke_target *t = NULL;
    for (size_t i = 0; i < sizeof cke_targets / sizeof cke_targets[0]; i++)
        if (!strcmp(o->target, cke_targets[i].triple)) t = &cke_targets[i];
    if (!t) return cke_fail(err, CKE_ERR_ARG, "unknown target '%s' (cke cross-compiles for: aarch64-linux-gnu)", o->target);
    if (!on_path(t->cc))
        return cke_fail(err, CKE_ERR_MISSING, "the cross compiler %s for %s is not on PATH (Debian: apt-get install gcc-%s)", t->cc,
                        t->triple, t->triple);
    char host[PATH_MAX];
    snprintf(host, sizeof host, "%s", o->libk);
    char *slash = strrchr(host, '/');
    if (slash) *slash = 0;
    else snprintf(host, sizeof host, ".");
    /* build tree: build/libckekernels.a -> build-aarch64/libckekernels.a; installed: lib/cke/TRIPLE/ */
    if ((size_t)snprintf(libk, n, "%s/../%s/libckekernels.a", host, t->build_dir) >= n || access(libk, R_OK) != 0) {
        char inst[PATH_MAX + 64];
        snprintf(inst, sizeof inst, "%s/%s/libckekernels.a", host, t->triple);
        if (access(inst, R_OK) != 0)
            return cke_fail(err, CKE_ERR_MISSING, "no kernel library for %s: %s is missing (build it: make CC=%s BUILD=%s %s/libckekernels.a)",
                            t->triple, libk, t->cc, t->build_dir, t->build_dir);
        snprintf(libk, n, "%s", inst);
    }
    *out = t;
    return CKE_OK;
}

/* The format a weight keeps in weights.bin: its file format when a kernel reads it (F16, BF16 and
 * the block formats of cke_qtype_ops), repacked for the SIMD kernels where cke has a repacking
 * and the machine that runs the model reads it (x86; CKE_REPACK=0 keeps the GGUF layout, for
 * comparisons); F32 and everything else are stored as f32. */
typedef struct {
    const cke_model *m;
    int repack;
} keep_ctx;
static int keep_dtype(void *ud, const char *name) {
    const keep_ctx *c = ud;
    const cke_model_tensor *t = cke_model_find(c->m, name);
    if (!t || t->dtype == CKE_DT_F32 || (int)t->dtype >= CKE_QTYPE_COUNT) return 0;
    const cke_qtype_ops *q = cke_ktable_for(CKE_ISA_REF)->qops[t->dtype];
    if (!q || !q->vec_dot) return 0;
    const char *rp = getenv("CKE_REPACK");
    return (rp && !strcmp(rp, "0")) || !c->repack ? (int)t->dtype : cke_qtype_repacked((int)t->dtype);
}

/* The embedded build's kernels are the ref ones, which read the GGUF block layout: no repacking. */
static int keep_dtype_gguf(void *ud, const char *name) {
    const int dt = keep_dtype(ud, name);
    const cke_qtype_ops *q = dt > 0 && dt < CKE_QTYPE_COUNT ? cke_ktable_for(CKE_ISA_REF)->qops[dt] : NULL;
    return q && q->repack_of ? q->repack_of : dt;
}

/* What an embedded build cannot have, refused before any work. */
static cke_status check_embedded(const cke_compile_opts *o, cke_err *err) {
    if (!o->embedded)
        return o->weights_blob ? cke_fail(err, CKE_ERR_ARG, "weights as a blob are for the embedded build (--embedded)") : CKE_OK;
    if (o->train_batch > 0)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "the embedded build is inference only: it has no training mode");
    if (o->canaries)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "the embedded build has no debug (canary) build: compile without --debug");
    if (o->reuse_weights)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "the embedded build writes its own weights: it does not reuse a cache's");
    if (o->tp_size > 1)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "the embedded build is one process: it has no tensor-parallel ranks");
    if (o->target)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "the embedded build is C source for any compiler: build it for %s with that "
                        "compiler (make CC=%s-gcc) instead of --target", o->target, o->target);
    return CKE_OK;
}

/* Every token's text as the tokenizer decodes it alone (special tokens empty, SentencePiece's
 * dummy-prefix space kept: strip_first_space says whether a text drops it), for vocab.c. */
static cke_status embed_vocab(const char *path, cke_embed_vocab *v, char **text, uint32_t **off, cke_err *err) {
    cke_tok *t = NULL;
    cke_status st = cke_tok_load(path, &t, err);
    if (st) return st;
    const int64_t n = cke_tok_n_vocab(t);
    size_t cap = 4096, used = 0;
    *text = malloc(cap);
    *off = malloc(((size_t)n + 1) * sizeof(uint32_t));
    if (!*text || !*off) st = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    int strip = 0;
    for (int32_t i = 0; !st && i < n; i++) {
        char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        st = cke_tok_decode(t, &i, 1, CKE_TOK_DECODE_SKIP_SPECIAL | CKE_TOK_DECODE_KEEP_PREFIX, &a, &la, err);
        if (!st) st = cke_tok_decode(t, &i, 1, CKE_TOK_DECODE_SKIP_SPECIAL, &b, &lb, err);
        if (!st && lb != la) strip = 1; /* decoding alone dropped the leading space */
        if (!st && used + la > UINT32_MAX) st = cke_fail(err, CKE_ERR_UNSUPPORTED, "the vocabulary's text exceeds 4 GiB");
        while (!st && used + la > cap) {
            char *g = realloc(*text, cap * 2);
            if (!g) st = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
            else *text = g, cap *= 2;
        }
        if (!st) {
            (*off)[i] = (uint32_t)used;
            memcpy(*text + used, a, la);
            used += la;
        }
        free(a);
        free(b);
    }
    if (!st) (*off)[n] = (uint32_t)used;
    cke_tok_free(t);
    *v = (cke_embed_vocab){.n = n, .text = *text, .off = *off, .strip_first_space = strip};
    return st;
}

/* The embedded DIR's own files (codegen_embed.c), the kernel sources from cke's source tree, the
 * vocabulary when the model has a tokenizer. */
static cke_status embed_files(const cke_model *m, const cke_plan *p, const cke_codegen_opts *co, const cke_compile_opts *o,
                              const char *dir, cke_err *err) {
    char ks[PATH_MAX];
    if (o->kernels_dir) snprintf(ks, sizeof ks, "%s", o->kernels_dir);
    else snprintf(ks, sizeof ks, "%s/../kernels", o->templates_dir);
    const char *tok = o->tokenizer ? o->tokenizer : m->tok.source != CKE_TOK_NONE ? m->tok.path : NULL;
    cke_embed_vocab v;
    char *text = NULL;
    uint32_t *off = NULL;
    cke_status st = tok ? embed_vocab(tok, &v, &text, &off, err) : CKE_OK;
    if (!st) st = cke_codegen_embed_files(p, co, dir, ks, o->include_dir, tok ? &v : NULL, err);
    free(text);
    free(off);
    return st;
}

/* ------------------------------------------------------------------ files */

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

/* A tokenizer.json leaves BOS/EOS, add_bos_token and the chat template to the
 * tokenizer_config.json beside it: copied along, so the compiled directory tokenizes (and adds
 * BOS, or not) exactly as the source does. Absent is fine. */
static cke_status copy_tokenizer_config(const char *tok_json, const char *dir, cke_err *err) {
    char from[PATH_MAX + 32], to[PATH_MAX + 32];
    const char *slash = strrchr(tok_json, '/');
    int dl = slash ? (int)(slash - tok_json) : 1;
    snprintf(from, sizeof from, "%.*s/tokenizer_config.json", dl, slash ? tok_json : ".");
    struct stat st;
    if (stat(from, &st) != 0 || !S_ISREG(st.st_mode)) return CKE_OK;
    snprintf(to, sizeof to, "%s/tokenizer_config.json", dir);
    return copy_file(from, to, err);
}

/* ------------------------------------------------------------------ atomic output directory
 *
 * Everything is written into a fresh temporary directory beside the output,
 *   PARENT/.NAME.tmp-PID-XXXXXX   (mkdtemp: unique even between processes)
 * and renamed into place only when complete, so a reader (a concurrent `cke run` on the same
 * cache entry) sees no directory or a whole one, never a half-written one. A failed or
 * interrupted compile deletes its temporary directory; one left by a killed process carries
 * the dead PID in its name (cke_compile_tmp_pid), so `cke cache clean` can tell it is stale. */

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb, (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT ? -1 : 0;
}

cke_status cke_rmtree(const char *path, cke_err *err) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? CKE_OK : cke_fail(err, CKE_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    /* FTW_PHYS: a symbolic link is removed, never followed; FTW_DEPTH: contents before their folder */
    if (nftw(path, rm_entry, 16, FTW_PHYS | FTW_DEPTH) != 0)
        return cke_fail(err, CKE_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    return CKE_OK;
}

long cke_compile_tmp_pid(const char *name) {
    const char *t = name[0] == '.' ? strstr(name, ".tmp-") : NULL;
    if (!t) return 0;
    char *end = NULL;
    long pid = strtol(t + 5, &end, 10);
    return pid > 0 && end && end[0] == '-' && strlen(end + 1) == 6 ? pid : 0;
}

/* What an existing output directory may be replaced as: an empty one, or a cke model directory
 * (cke-model.txt, written last by every compile). Anything else is the user's (a folder with its
 * own model.c, a home directory), and is refused rather than deleted. */
static int replaceable_dir(const char *dir) {
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/cke-model.txt", dir);
    if (access(p, F_OK) == 0) return 1;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    return empty;
}

/* out (a symbolic link followed) -> final path and the mkdtemp template beside it; refuses an
 * output that cke may not replace. create: make the parent folder. */
static cke_status out_paths(const char *out, int create, char *final, char *tmpl, cke_err *err) {
    struct stat sb;
    if (lstat(out, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        if (!realpath(out, final)) return cke_fail(err, CKE_ERR_IO, "%s: %s", out, strerror(errno));
    } else if ((size_t)snprintf(final, PATH_MAX, "%s", out) >= PATH_MAX) {
        return cke_fail(err, CKE_ERR_ARG, "output path too long");
    }
    size_t n = strlen(final);
    while (n > 1 && final[n - 1] == '/') final[--n] = 0;
    if (!n) return cke_fail(err, CKE_ERR_ARG, "empty output directory name");
    if (lstat(final, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) return cke_fail(err, CKE_ERR_ARG, "%s exists and is not a directory", final);
        if (!replaceable_dir(final))
            return cke_fail(err, CKE_ERR_ARG, "%s exists and is not a cke model directory (no cke-model.txt): not replacing it; give a new or empty directory", final);
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", final);
    char *slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : final;
    if (slash == parent) parent[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(parent, sizeof parent, ".");
    if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "/"))
        return cke_fail(err, CKE_ERR_ARG, "%s: name the output directory itself", out);
    cke_status st = create ? cke_mkdirs(parent, err) : CKE_OK;
    if (st) return st;
    if ((size_t)snprintf(tmpl, PATH_MAX, "%s/.%s.tmp-%ld-XXXXXX", parent, name, (long)getpid()) >= PATH_MAX)
        return cke_fail(err, CKE_ERR_ARG, "output path too long");
    return CKE_OK;
}

/* Moves the finished tmp into place. A directory that appeared meanwhile (another process
 * compiled the same cache entry) is kept when keep_existing (ours is discarded); otherwise a
 * replaceable one is swapped out atomically (RENAME_EXCHANGE) and then deleted. Deleting what
 * was replaced is best effort: one left behind is a stale temporary for `cke cache clean`. */
static cke_status publish(const char *tmp, const char *final, int keep_existing, cke_err *err) {
    for (int tries = 0; tries < 3; tries++) {
        if (rename(tmp, final) == 0) return CKE_OK;
        if (errno != EEXIST && errno != ENOTEMPTY)
            return cke_fail(err, CKE_ERR_IO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
        char so[PATH_MAX + 16];
        snprintf(so, sizeof so, "%s/model.so", final);
        if (keep_existing && access(so, R_OK) == 0) {
            cke_rmtree(tmp, NULL);
            return CKE_OK;
        }
        if (!replaceable_dir(final))
            return cke_fail(err, CKE_ERR_ARG, "%s exists and is not a cke model directory: not replacing it", final);
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
            cke_rmtree(tmp, NULL); /* now the old directory */
            return CKE_OK;
        }
        if (errno == ENOENT) continue; /* removed meanwhile: rename again */
        /* no RENAME_EXCHANGE on this filesystem: move the old one aside (onto an empty directory
         * of the temporary pattern), then ours in: a short window with no directory, never a half one */
        char old[PATH_MAX];
        size_t n = strlen(tmp);
        snprintf(old, sizeof old, "%.*sXXXXXX", (int)(n - 6), tmp);
        if (!mkdtemp(old)) return cke_fail(err, CKE_ERR_IO, "cannot replace %s: %s", final, strerror(errno));
        if (rename(final, old) != 0) {
            int e = errno;
            rmdir(old);
            if (e == ENOENT) continue;
            return cke_fail(err, CKE_ERR_IO, "cannot move %s aside: %s", final, strerror(e));
        }
        if (rename(tmp, final) != 0) {
            int e = errno;
            rename(old, final); /* put the old one back */
            return cke_fail(err, CKE_ERR_IO, "cannot rename %s to %s: %s", tmp, final, strerror(e));
        }
        cke_rmtree(old, NULL);
        return CKE_OK;
    }
    return cke_fail(err, CKE_ERR_IO, "cannot rename %s to %s: it keeps changing", tmp, final);
}

/* weights.bin depends only on the weight layout (names, shapes, formats, offsets: its header's
 * layout hash) and the source file. A sibling directory compiled from the same source (another
 * --ctx in the cache entry) whose weights.bin has this layout lends it by hard link. */
static int link_weights(const char *pool, const cke_plan *p, const char *to) {
    DIR *d = pool ? opendir(pool) : NULL;
    if (!d) return 0;
    int done = 0;
    for (struct dirent *e; !done && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue; /* temporaries, ".", ".." */
        char w[PATH_MAX + 300];
        snprintf(w, sizeof w, "%s/%s/weights.bin", pool, e->d_name);
        FILE *f = fopen(w, "rb");
        if (!f) continue;
        unsigned char h[32];
        struct stat sb;
        uint64_t hash, bytes, hb;
        if (fread(h, 1, sizeof h, f) == sizeof h && !memcmp(h, "CKEWGT01", 8) && fstat(fileno(f), &sb) == 0) {
            memcpy(&hash, h + 8, 8), memcpy(&bytes, h + 16, 8), memcpy(&hb, h + 24, 8);
            done = hash == cke_plan_layout_hash(p) && bytes == p->weights_bytes && hb == p->weights_header &&
                   (uint64_t)sb.st_size == hb + bytes && link(w, to) == 0;
        }
        fclose(f);
    }
    closedir(d);
    return done;
}

/* The tokenizer goes into the model directory: a GGUF's tokenizer.* metadata as a vocab-only
 * tokenizer.gguf; a tokenizer.bin or tokenizer.json (+ tokenizer_config.json) as a copy. */
static cke_status write_tokenizer(const cke_model *m, const char *explicit_tok, const char *dir, char *out_name,
                                  size_t n, cke_err *err) {
    char to[PATH_MAX];
    if (explicit_tok) {
        const char *ext = strrchr(explicit_tok, '.');
        snprintf(out_name, n, "tokenizer%s", ext && !strcmp(ext, ".json") ? ".json" : ext && !strcmp(ext, ".gguf") ? ".gguf" : ".bin");
        snprintf(to, sizeof to, "%s/%s", dir, out_name);
        if (!strcmp(out_name, "tokenizer.gguf")) { /* its vocabulary only: the file may be a whole model */
            cke_gguf *g = NULL;
            cke_status st = cke_gguf_open(explicit_tok, &g, err);
            if (!st) st = cke_gguf_write_vocab(g, to, err);
            cke_gguf_close(g);
            return st;
        }
        cke_status st = copy_file(explicit_tok, to, err);
        return st || strcmp(out_name, "tokenizer.json") ? st : copy_tokenizer_config(explicit_tok, dir, err);
    }
    if (!m->tok.path || m->tok.source == CKE_TOK_NONE) { out_name[0] = 0; return CKE_OK; }
    if (m->tok.source == CKE_TOK_GGUF) {
        cke_gguf *g = NULL;
        cke_status st = cke_gguf_open(m->tok.path, &g, err);
        if (st) return st;
        snprintf(out_name, n, "tokenizer.gguf");
        snprintf(to, sizeof to, "%s/%s", dir, out_name);
        st = cke_gguf_write_vocab(g, to, err);
        cke_gguf_close(g);
        return st;
    }
    snprintf(out_name, n, m->tok.source == CKE_TOK_HF_JSON ? "tokenizer.json" : "tokenizer.bin");
    snprintf(to, sizeof to, "%s/%s", dir, out_name);
    cke_status st = copy_file(m->tok.path, to, err);
    return st || m->tok.source != CKE_TOK_HF_JSON ? st : copy_tokenizer_config(m->tok.path, dir, err);
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

/* The folder of the code running this: libcke.so's when cke is linked dynamically (a program
 * of the user's), else the executable's (cke, the test programs). */
static int self_dir(char *dir, size_t n) {
    Dl_info info;
    char path[PATH_MAX];
    if (dladdr((void *)self_dir, &info) && info.dli_fname && strstr(info.dli_fname, ".so") &&
        realpath(info.dli_fname, path)) {
        snprintf(dir, n, "%s", path);
    } else {
        ssize_t len = readlink("/proc/self/exe", path, sizeof path - 1);
        if (len <= 0) return -1;
        path[len] = 0;
        snprintf(dir, n, "%s", path);
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    return 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Two layouts: the build tree (build/cke, build/libckekernels.a, ../src/templates, ../include)
 * and an installed prefix (`make install`: bin/cke or lib/libcke.so, lib/cke/libckekernels.a,
 * share/cke/templates, include). CKE_HOME names a build tree's root and overrides both. */
cke_status cke_locate_resources(char *include_dir, char *templates_dir, char *libk, size_t n, cke_err *err) {
    const char *home = getenv("CKE_HOME");
    char d[PATH_MAX];
    if (home && *home) {
        snprintf(libk, n, "%s/build/libckekernels.a", home);
        snprintf(include_dir, n, "%s/include", home);
        snprintf(templates_dir, n, "%s/src/templates", home);
    } else {
        if (self_dir(d, sizeof d)) return cke_fail(err, CKE_ERR_IO, "cannot find the cke executable (set CKE_HOME)");
        snprintf(libk, n, "%s/libckekernels.a", d);
        snprintf(templates_dir, n, "%s/../src/templates", d);
        snprintf(include_dir, n, "%s/../include", d);
        if (access(libk, R_OK) != 0 || !is_dir(templates_dir)) { /* not a build tree: installed */
            snprintf(libk, n, "%s/../lib/cke/libckekernels.a", d);
            snprintf(templates_dir, n, "%s/../share/cke/templates", d);
        }
    }
    struct stat st;
    if (stat(libk, &st) != 0)
        return cke_fail(err, CKE_ERR_MISSING, "kernel library %s not found (run make, or make install; CKE_HOME names a build tree)", libk);
    if (!is_dir(templates_dir)) return cke_fail(err, CKE_ERR_MISSING, "templates folder %s not found", templates_dir);
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

/* A model file's name as it appears inside model.c (a comment and a string literal): only
 * characters that cannot end either, so no file name can inject C. */
static void c_safe(char *dst, size_t n, const char *src) {
    size_t j = 0;
    for (; *src && j + 1 < n; src++) {
        unsigned char c = (unsigned char)*src;
        dst[j++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '*' && c != '/' && c != '?') || c >= 0x80 ? (char)c : '_';
    }
    dst[j] = 0;
}

/* The RoPE frequencies of the rope nodes, scaling resolved for ctx (formats/rope.c), into the IR
 * for codegen to write out as tables: one, or two when layers differ in theta or scaling (Gemma 3:
 * local layers at rope_local_base_freq unscaled, global ones at rope_theta with its scaling). */
static cke_status rope_table(const cke_model *m, cke_ir *ir, int64_t ctx, cke_err *err) {
    int64_t rot = 0;
    for (int i = 0; i < ir->nn && !rot; i++)
        if (ir->n[i].op == CKE_OP_ROPE) rot = ir->n[i].a.rot;
    if (rot <= 0) return CKE_OK;
    const int64_t nf = rot / 2;
    const int nl = ir->n_layer > 0 ? ir->n_layer : 1;
    float *rf = NULL, *freq = malloc((size_t)(2 * nf + 1) * sizeof(float));
    unsigned char *of = calloc((size_t)nl, 1);
    if (!freq || !of) { free(freq); free(of); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    const cke_model_tensor *t = cke_model_find(m, "rope_freqs");
    cke_status st = CKE_OK;
    if (t && cke_model_tensor_numel(t) != nf)
        st = cke_fail(err, CKE_ERR_SHAPE, "rope_freqs has %lld values for %lld rotated pairs", (long long)cke_model_tensor_numel(t),
                      (long long)nf);
    else if (t && !(rf = malloc((size_t)nf * sizeof(float))))
        st = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    else if (t)
        st = cke_model_tensor_to_f32(t, rf, err);
    /* each layer's rope attributes (theta, scaling kind, factor): the table they give */
    float key[2][3];
    int nt = 0;
    for (int l = 0; !st && l < nl; l++) {
        const cke_attrs *a = NULL;
        for (int i = 0; i < ir->nn && !a; i++)
            if (ir->n[i].op == CKE_OP_ROPE && (ir->n[i].layer == l || ir->n[i].layer < 0)) a = &ir->n[i].a;
        if (!a) continue;
        const float k[3] = {a->theta, (float)a->rope_scaling, a->rope_factor};
        int ti = 0;
        while (ti < nt && memcmp(key[ti], k, sizeof k)) ti++;
        if (ti == nt) {
            if (nt == 2) { st = cke_fail(err, CKE_ERR_UNSUPPORTED, "rope: more than two theta/scaling settings across layers"); break; }
            memcpy(key[nt++], k, sizeof k);
            cke_hparams h = m->hp;
            h.rope.theta = a->theta;
            h.rope.scaling = (cke_rope_scaling)a->rope_scaling;
            if (a->rope_scaling) h.rope.factor = a->rope_factor;
            st = cke_rope_freq_table(&h, rot, ctx, rf, freq + (size_t)ti * (size_t)nf, &ir->rope_attn_factor[ti], err);
        }
        of[l] = (unsigned char)ti;
    }
    free(rf);
    if (st) { free(freq); free(of); return st; }
    free(ir->rope_freq);
    free(ir->rope_table_of);
    ir->rope_freq = freq;
    ir->n_rope_freq = nf;
    ir->n_rope_tables = nt > 0 ? nt : 1;
    ir->rope_table_of = of;
    return CKE_OK;
}

#define CANCELLED(o) ((o)->cancel && *(o)->cancel)

cke_status cke_compile(const char *model_path, const cke_compile_opts *o, cke_err *err) {
    cke_model *m = NULL;
    cke_ir *ir = NULL;
    cke_plan *p = NULL;
    cke_train_plan *tp = NULL;
    char path[PATH_MAX + 32], path2[PATH_MAX + 32], final[PATH_MAX], tmp[PATH_MAX];
    tmp[0] = 0;
    /* refuse an output that is not ours before any work */
    cke_status st = check_embedded(o, err);
    if (st) return st;
    if ((st = out_paths(o->out_dir, 0, final, tmp, err))) return st;
    /* a cross target's compiler and kernel library, checked before any work */
    const cke_target *target = NULL;
    char target_libk[PATH_MAX];
    if (o->target && (st = resolve_target(o, &target, target_libk, sizeof target_libk, err))) return st;
    /* repacked layouts only where the running machine's kernels read them: not on aarch64 */
    keep_ctx kc = {.m = NULL, .repack = target ? target->repack : !cke_isa_supported(CKE_ISA_NEON)};
    tmp[0] = 0; /* set by mkdtemp below; "" = nothing to clean up */
    const char *dir = tmp;
    if (o->tp_size > 1 && o->train_batch > 0)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "tensor parallel compiles inference only (training: data parallel, mpirun cke train)");
    if (o->tp_size < 0 || o->tp_size > 4096 || o->tp_rank < 0 || (o->tp_size > 1 && o->tp_rank >= o->tp_size))
        return cke_fail(err, CKE_ERR_ARG, "tensor parallel: rank %d of %d ranks", o->tp_rank, o->tp_size);
    if ((st = cke_model_open(model_path, &m, err))) return st;
    if ((st = check_tok_vocab(m, o->tokenizer, err))) goto done;
    if (o->moe_aux_set) {
        if (m->hp.n_expert == 0 || !(o->moe_aux_coef >= 0 && o->moe_aux_coef <= 1e3)) {
            st = cke_fail(err, CKE_ERR_ARG, m->hp.n_expert ? "router aux loss weight %g is not in [0, 1000]"
                                                           : "a router aux loss weight (%g) for %s, which has no experts",
                          o->moe_aux_coef, model_path);
            goto done;
        }
        m->hp.moe_aux_coef = o->moe_aux_coef;
    }

    src_ctx sc = {.m = m};
    fill_hparams(&sc);
    cke_ir_source src = {.ud = &sc, .hparam = src_hparam, .tensor = src_tensor, .tensor_count = src_count,
                         .tensor_name = src_name, .tp_rank = o->tp_rank, .tp_size = o->tp_size, .check = src_check};
    snprintf(path, sizeof path, "%s/%s.json", o->templates_dir, template_of(m->arch));
    if (access(path, R_OK) != 0) {
        st = cke_fail(err, CKE_ERR_UNSUPPORTED, "no template for the %s family (%s is missing)", cke_arch_name(m->arch), path);
        goto done;
    }
    if ((st = cke_ir_build(&ir, path, &src, err))) goto done; /* src_check: the model's features */

    int64_t ctx = o->ctx > 0 ? o->ctx : m->hp.ctx_len > 0 ? m->hp.ctx_len : 2048;
    if (o->ctx <= 0 && ctx > 4096) ctx = 4096;
    if ((st = rope_table(m, ir, ctx, err))) goto done;
    /* embedded: the arena is static RAM and grows with the chunk; 32 rows keep it small */
    int64_t chunk = o->prefill_chunk > 0 ? o->prefill_chunk : o->embedded ? 32 : 512;
    const int nth_max = o->embedded ? 1 : o->max_threads > 0 ? o->max_threads : 16; /* embedded: one thread */
    if ((st = cke_plan_new(&p, ir, ctx, chunk, nth_max, o->canaries, o->kv_type, err)))
        goto done;
    if (!o->keep_f32 && o->train_batch <= 0 &&
        (st = cke_plan_set_wdtypes(p, o->embedded ? keep_dtype_gguf : keep_dtype, (kc.m = m, &kc), err)))
        goto done;

    if (o->train_batch > 0 &&
        (st = cke_train_plan_new(&tp, p, o->train_batch, o->train_seq, o->train_recompute, o->train_bf16,
                                 o->max_threads > 0 ? o->max_threads : 16, err)))
        goto done;
    if (CANCELLED(o)) { st = cke_fail(err, CKE_ERR_IO, "interrupted"); goto done; }
    if ((st = out_paths(o->out_dir, 1, final, tmp, err))) { tmp[0] = 0; goto done; }
    if (!mkdtemp(tmp)) {
        st = cke_fail(err, CKE_ERR_IO, "cannot create a directory beside %s: %s", final, strerror(errno));
        tmp[0] = 0;
        goto done;
    }
    chmod(tmp, 0755); /* mkdtemp's 0700 would make a shared cache or -o DIR private */
    snprintf(path, sizeof path, "%s/ir.json", dir);
    if ((st = cke_ir_write_json(ir, path, err))) goto done;
    snprintf(path, sizeof path, "%s/layout.json", dir);
    if ((st = cke_plan_write_layout(p, path, err))) goto done;
    snprintf(path, sizeof path, "%s/memory_map.txt", dir);
    if ((st = cke_plan_write_map(p, path, err))) goto done;
    if (tp) {
        FILE *mf = fopen(path, "a");
        if (!mf) { st = cke_fail(err, CKE_ERR_IO, "cannot append to %s", path); goto done; }
        cke_train_plan_write_map(tp, mf);
        fclose(mf);
    }

    const char *bname = strrchr(model_path, '/');
    bname = bname && bname[1] ? bname + 1 : model_path;
    char base[NAME_MAX + 1], desc[NAME_MAX + 64];
    c_safe(base, sizeof base, bname);
    snprintf(desc, sizeof desc, "%s (%s)", base, cke_model_source_name(m->source));
    cke_codegen_opts co = {.model_name = base, .source_desc = desc, .train = tp, .embedded = o->embedded,
                           .weights_blob = o->weights_blob};
    snprintf(path, sizeof path, "%s/model.c", dir);
    FILE *f = fopen(path, "w");
    if (!f) { st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path); goto done; }
    st = cke_codegen_emit(p, &co, f, err);
    if (fclose(f) != 0 && !st) st = cke_fail(err, CKE_ERR_IO, "error writing %s", path);
    if (st) goto done;

    snprintf(path2, sizeof path2, "%s/weights.bin", dir);
    fetch_ctx fc = {.m = m, .ir = ir, .cancel = o->cancel};
    if (!link_weights(o->reuse_weights, p, path2) && (st = cke_weights_write(p, path2, fetch_weight_c, fetch_raw_c, &fc, err)))
        goto done;
    if (CANCELLED(o)) { st = cke_fail(err, CKE_ERR_IO, "interrupted"); goto done; }

    if (o->embedded) { /* a program to build elsewhere: no model.so, tokenizer or report */
        if ((st = embed_files(m, p, &co, o, dir, err))) goto done;
        snprintf(path, sizeof path, "%s/cke-model.txt", dir);
        if (!(f = fopen(path, "w"))) { st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path); goto done; }
        fprintf(f, "family %s\nformat %s\nctx %lld\nkv_type %s\nprefill_chunk %lld\nlayout_hash %016llx\nembedded %s\n", ir->family,
                cke_model_source_name(m->source), (long long)p->ctx, cke_kv_type_name((cke_kv_type)p->kv_type),
                (long long)p->prefill.T, (unsigned long long)cke_plan_layout_hash(p), o->weights_blob ? "blob" : "const");
        if (fclose(f) != 0) { st = cke_fail(err, CKE_ERR_IO, "error writing %s", path); goto done; }
        if ((st = publish(tmp, final, 0, err))) goto done;
        tmp[0] = 0;
        if (!o->quiet)
            fprintf(stderr, "cke: compiled %s (%s, %d layers) -> %s: embedded program, weights %.2f MiB %s\n", bname, ir->family,
                    ir->n_layer, final, (double)p->weights_bytes / (1 << 20), o->weights_blob ? "in weights.bin" : "in weights.c");
        goto done;
    }

    char so[PATH_MAX + 32], logp[PATH_MAX + 32];
    snprintf(so, sizeof so, "%s/model.so", dir);
    snprintf(logp, sizeof logp, "%s/build.log", dir);
    if ((st = cke_codegen_compile_cc(target ? target->cc : NULL, path, so, o->include_dir, target ? target_libk : o->libk, logp,
                                     NULL, o->cancel, err)))
        goto done;

    char tokname[64];
    if ((st = write_tokenizer(m, o->tokenizer, dir, tokname, sizeof tokname, err))) goto done;

    /* one line per key: a newline in the source path must not start a line of its own */
    char srcline[PATH_MAX];
    snprintf(srcline, sizeof srcline, "%s", model_path);
    for (char *c = srcline; *c; c++)
        if (*c == '\n' || *c == '\r') *c = '?';
    snprintf(path, sizeof path, "%s/cke-model.txt", dir);
    f = fopen(path, "w");
    if (!f) { st = cke_fail(err, CKE_ERR_IO, "cannot write %s", path); goto done; }
    fprintf(f, "family %s\nsource %s\nformat %s\ntokenizer %s\nctx %lld\nkv_type %s\nprefill_chunk %lld\nlayout_hash %016llx\n",
            ir->family, srcline, cke_model_source_name(m->source), tokname[0] ? tokname : "-", (long long)p->ctx,
            cke_kv_type_name((cke_kv_type)p->kv_type), (long long)p->prefill.T, (unsigned long long)cke_plan_layout_hash(p));
    if (ir->tp_size > 1) fprintf(f, "tp_rank %d\ntp_size %d\n", ir->tp_rank, ir->tp_size);
    if (target) fprintf(f, "target %s\n", target->triple); /* model.so runs there, not here */
    if (fclose(f) != 0) { st = cke_fail(err, CKE_ERR_IO, "error writing %s", path); goto done; }
    /* what will run, as a page in the style of cke profile's "what ran" */
    if ((st = cke_report_write(dir, NULL, err))) goto done;
    if (CANCELLED(o)) { st = cke_fail(err, CKE_ERR_IO, "interrupted"); goto done; }
    if ((st = publish(tmp, final, o->keep_existing, err))) goto done;
    tmp[0] = 0;
    if (!o->quiet)
        fprintf(stderr, "cke: compiled %s (%s, %d layers) -> %s: weights %.2f MiB, prefill arena %.2f MiB (%.0f%% reuse)\n",
                bname, ir->family, ir->n_layer, final, (double)p->weights_bytes / (1 << 20),
                (double)p->prefill.arena_bytes / (1 << 20),
                p->prefill.sum_bytes ? 100.0 * (1.0 - (double)p->prefill.arena_bytes / (double)p->prefill.sum_bytes) : 0.0);
done:
    if (tmp[0]) cke_rmtree(tmp, NULL); /* never leave a half-built directory */
    cke_train_plan_free(tp);
    cke_plan_free(p);
    cke_ir_free(ir);
    cke_model_close(m);
    return st;
}

void cke_compiled_field(const char *dir, const char *key, char *out, size_t n) {
    char p[PATH_MAX + 32], line[PATH_MAX + 16];
    size_t kl = strlen(key);
    out[0] = 0;
    snprintf(p, sizeof p, "%s/cke-model.txt", dir);
    FILE *f = fopen(p, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            line[strcspn(line, "\n")] = 0;
            snprintf(out, n, "%s", line + kl + 1);
            break;
        }
    fclose(f);
}

void cke_compiled_source(const char *dir, char *out, size_t n) { cke_compiled_field(dir, "source", out, n); }
