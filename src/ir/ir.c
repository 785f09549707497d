/* IR construction from a family template (JSON, parsed with cJSON) and a model source.
 *
 * Template format (src/templates/llama.json is the reference):
 *   "family":        name
 *   "hparams":       hyperparameters the template reads; every one must be provided
 *   "defaults":      optional values for hyperparameters a model may omit
 *   "inputs":        {"tokens": ["T"]}
 *   "weights":       global tensors: name -> shape, or {"shape": [...], "tied_to": "other",
 *                    "optional": true}
 *   "layer_weights": per-layer tensors (model names "l<i>.<name>"), same forms
 *   "layer_kinds":   optional {"dense": "layer < first_k_dense", "moe": "layer >= first_k_dense"}: named
 *                    predicates over `layer`; a layer weight {"shape": ..., "kind": "moe"} holds bytes, and a
 *                    body node with {"kind": "moe"} runs, only in the layers of that kind (cke_ir.kind_on)
 *   "prologue", "layer", "epilogue": lists of nodes ["out", "op", "in"..., {attrs}]
 *   "tensor_parallel": {"split": [hyperparameters], "replicate": [...]}: what tensor parallelism
 *                    divides among the ranks (heads, FFN width; "replicate": kv heads, held by several
 *                    ranks when there are fewer than ranks); the weights' shapes then say which
 *                    tensors are split and how
 * Inside "layer", a name not yet defined in this layer means the previous layer's value (or the
 * prologue's), so ["x", "add", "h", "ffn_out"] continues the residual stream. An input written
 * "name?" is optional: dropped when the model lacks that weight (biases). Shapes and attributes
 * are numbers or expressions over hyperparameters: "n_head*head_dim" (+ - * / %, parentheses,
 * sqrt, sign; one comparison < <= > >= == != giving 1 or 0). Inside "layer", attributes may also use the layer index `layer`, so one body describes
 * layers that differ in an attribute: "window": "window * (1 - layer % 2)" (Gemma 2: sliding
 * window on even layers, global attention on odd ones); the code generator turns such an
 * attribute into a per-layer array. */
#include "ir/ir.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- expressions */

typedef struct {
    const char *s;
    const cke_ir *ir;
    int layer; /* the variable `layer` inside a layer body's attributes; -1 elsewhere */
    int bad;
    char what[96];
} expr_ctx;

static double expr_sum(expr_ctx *c);
static double expr_cmp(expr_ctx *c);

static void expr_ws(expr_ctx *c) {
    while (isspace((unsigned char)*c->s)) c->s++;
}

static double expr_atom(expr_ctx *c) {
    expr_ws(c);
    if (*c->s == '(') {
        c->s++;
        double v = expr_cmp(c); /* a comparison inside parentheses: "q_lora_rank + (q_lora_rank == 0)" */
        expr_ws(c);
        if (*c->s != ')') { c->bad = 1; snprintf(c->what, sizeof c->what, "missing ')'"); return 0; }
        c->s++;
        return v;
    }
    if (*c->s == '-') { c->s++; return -expr_atom(c); }
    if (isdigit((unsigned char)*c->s) || *c->s == '.') {
        char *end;
        double v = strtod(c->s, &end);
        c->s = end;
        return v;
    }
    if (isalpha((unsigned char)*c->s) || *c->s == '_') {
        char id[CKE_IR_NAME];
        size_t n = 0;
        while ((isalnum((unsigned char)*c->s) || *c->s == '_') && n + 1 < sizeof id) id[n++] = *c->s++;
        id[n] = 0;
        if (!strcmp(id, "sqrt")) return sqrt(expr_atom(c));
        if (!strcmp(id, "sign")) { /* -1, 0, 1: "sign((layer + 1) % 6)" is 0 on every 6th layer */
            double x = expr_atom(c);
            return (x > 0) - (x < 0);
        }
        if (!strcmp(id, "layer")) {
            if (c->layer >= 0) return c->layer;
            c->bad = 1;
            snprintf(c->what, sizeof c->what, "'layer' is only defined in a layer body's attributes");
            return 0;
        }
        double v;
        if (cke_ir_hparam(c->ir, id, &v) != 0) {
            c->bad = 1;
            snprintf(c->what, sizeof c->what, "unknown hyperparameter '%s'", id);
            return 0;
        }
        return v;
    }
    c->bad = 1;
    snprintf(c->what, sizeof c->what, "unexpected '%c'", *c->s ? *c->s : '?');
    return 0;
}

static double expr_prod(expr_ctx *c) {
    double v = expr_atom(c);
    for (;;) {
        expr_ws(c);
        if (*c->s == '*') { c->s++; v *= expr_atom(c); }
        else if (*c->s == '/') { c->s++; v /= expr_atom(c); }
        else if (*c->s == '%') { /* integer remainder, for per-layer patterns: "window * (1 - layer % 2)" */
            c->s++;
            double d = expr_atom(c);
            if (d == 0 || d != floor(d) || v != floor(v)) {
                c->bad = 1;
                snprintf(c->what, sizeof c->what, "'%%' needs integers and a non-zero divisor");
                return 0;
            }
            v = fmod(v, d);
        }
        else return v;
    }
}

static double expr_sum(expr_ctx *c) {
    double v = expr_prod(c);
    for (;;) {
        expr_ws(c);
        if (*c->s == '+') { c->s++; v += expr_prod(c); }
        else if (*c->s == '-') { c->s++; v -= expr_prod(c); }
        else return v;
    }
}

/* A comparison (<, <=, >, >=, ==, !=) of two sums is 1 or 0, for layer kinds: "layer < first_k_dense". */
static double expr_cmp(expr_ctx *c) {
    double a = expr_sum(c);
    expr_ws(c);
    const char *s = c->s;
    int op = 0; /* 1 <, 2 <=, 3 >, 4 >=, 5 ==, 6 != */
    if (s[0] == '<') op = s[1] == '=' ? 2 : 1;
    else if (s[0] == '>') op = s[1] == '=' ? 4 : 3;
    else if (s[0] == '=' && s[1] == '=') op = 5;
    else if (s[0] == '!' && s[1] == '=') op = 6;
    if (!op) return a;
    c->s += (op == 1 || op == 3) ? 1 : 2;
    double b = expr_sum(c);
    switch (op) {
    case 1: return a < b;
    case 2: return a <= b;
    case 3: return a > b;
    case 4: return a >= b;
    case 5: return a == b;
    default: return a != b;
    }
}

/* A JSON number or an expression string -> value; layer >= 0 defines the variable `layer`. */
static cke_status eval_json_at(const cke_ir *ir, const cJSON *j, int layer, double *out, const char *ctx,
                               cke_err *err) {
    if (cJSON_IsNumber(j)) { *out = j->valuedouble; return CKE_OK; }
    if (cJSON_IsBool(j)) { *out = cJSON_IsTrue(j) ? 1 : 0; return CKE_OK; }
    if (!cJSON_IsString(j))
        return cke_fail(err, CKE_ERR_FORMAT, "template: %s: expected a number or an expression", ctx);
    expr_ctx c = {.s = j->valuestring, .ir = ir, .layer = layer};
    double v = expr_cmp(&c);
    expr_ws(&c);
    if (!c.bad && *c.s) { c.bad = 1; snprintf(c.what, sizeof c.what, "trailing '%s'", c.s); }
    if (c.bad)
        return cke_fail(err, CKE_ERR_FORMAT, "template: %s: '%s': %s", ctx, j->valuestring, c.what);
    *out = v;
    return CKE_OK;
}

static cke_status eval_json(const cke_ir *ir, const cJSON *j, double *out, const char *ctx, cke_err *err) {
    return eval_json_at(ir, j, -1, out, ctx, err);
}

/* ---------------------------------------------------------------- graph building */

int cke_ir_hparam(const cke_ir *ir, const char *name, double *v) {
    for (int i = 0; i < ir->n_hp; i++)
        if (!strcmp(ir->hp[i].name, name)) { *v = ir->hp[i].value; return 0; }
    return -1;
}

int cke_ir_find(const cke_ir *ir, const char *name) {
    for (int i = ir->nv - 1; i >= 0; i--)
        if (!strcmp(ir->v[i].name, name)) return i;
    return -1;
}

int64_t cke_value_numel(const cke_value *v, int64_t T) {
    int64_t n = 1;
    for (int d = 0; d < v->ndim; d++) n *= v->dims[d] == CKE_DIM_T ? T : v->dims[d];
    return n;
}

static int grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return -1;
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *p = q;
    *cap = nc;
    return 0;
}

static int add_value(cke_ir *ir, const char *name, const char *base, int layer, cke_vkind kind) {
    if (grow((void **)&ir->v, &ir->cap_v, ir->nv + 1, sizeof(cke_value))) return -1;
    cke_value *v = &ir->v[ir->nv];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    snprintf(v->base, sizeof v->base, "%s", base);
    v->layer = layer;
    v->kind = kind;
    v->producer = -1;
    v->tied_to = -1;
    return ir->nv++;
}

static void fmt_shape(char *buf, size_t n, const cke_value *v) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < v->ndim && o < n; d++) {
        if (v->dims[d] == CKE_DIM_T) o += (size_t)snprintf(buf + o, n - o, "%sT", d ? "," : "");
        else o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? "," : "", (long long)v->dims[d]);
    }
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* The layer kind a "kind" item names: 1-based index into ir->kind_name, 0 when it names none. */
static int find_kind(const cke_ir *ir, const cJSON *j) {
    if (!cJSON_IsString(j)) return 0;
    for (int k = 0; k < ir->n_kinds; k++)
        if (!strcmp(ir->kind_name[k], j->valuestring)) return k + 1;
    return 0;
}

/* "layer_kinds": {"name": predicate over `layer` and hyperparameters, ...}: which layers are of
 * each kind (a predicate is true when nonzero). */
static cke_status parse_kinds(cke_ir *ir, const cJSON *obj, cke_err *err) {
    if (!obj) return CKE_OK;
    if (!cJSON_IsObject(obj) || cJSON_GetArraySize(obj) > CKE_IR_MAX_KINDS)
        return cke_fail(err, CKE_ERR_FORMAT, "template: \"layer_kinds\" must be an object of at most %d predicates",
                        CKE_IR_MAX_KINDS);
    ir->kind_on = calloc((size_t)CKE_IR_MAX_KINDS * (size_t)ir->n_layer, 1);
    if (!ir->kind_on) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    const cJSON *k;
    cJSON_ArrayForEach(k, obj) {
        size_t L = strlen(k->string);
        if (L == 0 || L >= sizeof ir->kind_name[0] || strspn(k->string, "abcdefghijklmnopqrstuvwxyz0123456789_") != L)
            return cke_fail(err, CKE_ERR_FORMAT, "template: layer kind '%.40s': a name of [a-z0-9_], under 32 characters",
                            k->string);
        snprintf(ir->kind_name[ir->n_kinds], sizeof ir->kind_name[0], "%s", k->string);
        for (int l = 0; l < ir->n_layer; l++) {
            double x;
            char ctx[96];
            snprintf(ctx, sizeof ctx, "layer kind '%s'", k->string);
            cke_status st = eval_json_at(ir, k, l, &x, ctx, err);
            if (st) return st;
            ir->kind_on[(size_t)ir->n_kinds * (size_t)ir->n_layer + (size_t)l] = x != 0;
        }
        ir->n_kinds++;
    }
    return CKE_OK;
}

/* Declares the weights of one "weights" object (layer < 0: globals). */
static cke_status declare_weights(cke_ir *ir, const cJSON *obj, int layer, const cke_ir_source *src,
                                  cke_err *err) {
    const cJSON *w;
    cJSON_ArrayForEach(w, obj) {
        const char *base = w->string;
        const cJSON *shape = w, *tied = NULL;
        int optional = 0, absent = 0;
        if (cJSON_IsObject(w)) {
            shape = cJSON_GetObjectItemCaseSensitive(w, "shape");
            tied = cJSON_GetObjectItemCaseSensitive(w, "tied_to");
            optional = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "optional"));
            const cJSON *jk = cJSON_GetObjectItemCaseSensitive(w, "kind");
            if (jk) {
                int k = find_kind(ir, jk);
                if (k <= 0 || layer < 0)
                    return cke_fail(err, CKE_ERR_FORMAT, "template: weight '%s': \"kind\" must name one of \"layer_kinds\" "
                                    "(layer weights only)", base);
                absent = !ir->kind_on[(size_t)(k - 1) * (size_t)ir->n_layer + (size_t)layer];
            }
        }
        if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) < 1 || cJSON_GetArraySize(shape) > 4)
            return cke_fail(err, CKE_ERR_FORMAT, "template: weight '%s': shape must be a list of 1..4 dims", base);
        char name[CKE_IR_NAME];
        if (layer >= 0) snprintf(name, sizeof name, "l%d.%s", layer, base);
        else snprintf(name, sizeof name, "%s", base);
        int64_t want[4] = {0};
        int nd = 0;
        const cJSON *d;
        cJSON_ArrayForEach(d, shape) {
            double x;
            char ctx[96];
            snprintf(ctx, sizeof ctx, "shape of weight '%s'", base);
            cke_status st = eval_json(ir, d, &x, ctx, err);
            if (st) return st;
            if (x < 1 || x != floor(x))
                return cke_fail(err, CKE_ERR_SHAPE, "weight '%s': dimension %d evaluates to %g", name, nd, x);
            want[nd++] = (int64_t)x;
        }
        int have_nd = 0;
        int64_t have[4] = {0};
        int present = !absent && src->tensor(src->ud, name, &have_nd, have) == 0;
        int vi = -1, split = CKE_SPLIT_NONE, parts = 1;
        if (absent) { /* not this layer's kind: a placeholder of the template's shape, without bytes */
            if ((vi = add_value(ir, name, base, layer, CKE_V_WEIGHT)) >= 0) ir->v[vi].absent = 1;
        } else if (present) {
            int same = have_nd == nd;
            for (int i = 0; same && i < nd; i++) {
                if (have[i] == want[i]) continue;
                /* tensor parallel: this rank's block of the tensor along one axis (one of fewer blocks
                 * than ranks when the template replicates kv heads) */
                const int64_t f = have[i] / want[i];
                if (ir->tp_size > 1 && split == CKE_SPLIT_NONE && i < 2 && have[i] % want[i] == 0 && f > 1 &&
                    ir->tp_size % f == 0)
                    split = i == 0 ? CKE_SPLIT_ROWS : CKE_SPLIT_COLS, parts = (int)f;
                else same = 0;
            }
            if (!same) {
                char a[64] = "[", b[64] = "[";
                for (int i = 0; i < have_nd; i++) snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", i ? "," : "", (long long)have[i]);
                for (int i = 0; i < nd; i++) snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", i ? "," : "", (long long)want[i]);
                return cke_fail(err, CKE_ERR_SHAPE, "tensor '%s' has shape %s], the %s template needs %s]", name, a,
                                ir->family, b);
            }
            vi = add_value(ir, name, base, layer, CKE_V_WEIGHT);
        } else if (tied && cJSON_IsString(tied)) {
            int t = cke_ir_find(ir, tied->valuestring);
            if (t < 0 || ir->v[t].kind != CKE_V_WEIGHT)
                return cke_fail(err, CKE_ERR_MISSING, "tensor '%s' is missing and '%s' it may be tied to is too", name,
                                tied->valuestring);
            int same = ir->v[t].ndim == nd;
            for (int i = 0; same && i < nd; i++) same = ir->v[t].dims[i] == want[i];
            if (!same)
                return cke_fail(err, CKE_ERR_SHAPE, "tensor '%s' would be tied to '%s', whose shape differs", name,
                                tied->valuestring);
            vi = add_value(ir, name, base, layer, CKE_V_WEIGHT);
            if (vi >= 0) ir->v[vi].tied_to = t;
        } else if (optional) {
            continue;
        } else {
            return cke_fail(err, CKE_ERR_MISSING, "the %s template needs tensor '%s', which the model does not have",
                            ir->family, name);
        }
        if (vi < 0) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        cke_value *v = &ir->v[vi];
        v->ndim = nd;
        memcpy(v->dims, want, sizeof want);
        v->dtype = CKE_IR_F32;
        v->split = split;
        v->split_parts = parts;
    }
    return CKE_OK;
}

/* Resolves an input name inside a section: this layer's value first, then earlier layers'
 * (the latest definition), then globals. */
static int resolve(const cke_ir *ir, const char *base, int layer) {
    char name[CKE_IR_NAME];
    for (int l = layer; l >= 0; l--) {
        snprintf(name, sizeof name, "l%d.%s", l, base);
        int i = cke_ir_find(ir, name);
        if (i >= 0) return i;
    }
    return cke_ir_find(ir, base);
}

static const struct {
    const char *key;
    size_t off;
    int is_int;
} attr_fields[] = {
    {"eps", offsetof(cke_attrs, eps), 0},         {"w_offset", offsetof(cke_attrs, w_offset), 0},
    {"scale", offsetof(cke_attrs, scale), 0},     {"softcap", offsetof(cke_attrs, softcap), 0},
    {"theta", offsetof(cke_attrs, theta), 0},     {"n_head", offsetof(cke_attrs, n_head), 1},
    {"n_kv_head", offsetof(cke_attrs, n_kv_head), 1}, {"head_dim", offsetof(cke_attrs, head_dim), 1},
    {"rot", offsetof(cke_attrs, rot), 1},         {"window", offsetof(cke_attrs, window), 1},
    {"rope_layout", offsetof(cke_attrs, rope_layout), 2}, {"gelu", offsetof(cke_attrs, gelu), 2},
    {"rope_scaling", offsetof(cke_attrs, rope_scaling), 2}, {"rope_factor", offsetof(cke_attrs, rope_factor), 0},
    {"rope_low_freq", offsetof(cke_attrs, rope_low_freq), 0}, {"rope_high_freq", offsetof(cke_attrs, rope_high_freq), 0},
    {"rope_orig_ctx", offsetof(cke_attrs, rope_orig_ctx), 1},
    {"n_expert_used", offsetof(cke_attrs, n_expert_used), 1}, {"norm_topk", offsetof(cke_attrs, norm_topk), 2},
    {"aux_coef", offsetof(cke_attrs, aux_coef), 0},
    {"moe_sigmoid", offsetof(cke_attrs, moe_sigmoid), 2}, {"n_group", offsetof(cke_attrs, n_group), 1},
    {"topk_group", offsetof(cke_attrs, topk_group), 1},   {"routed_scale", offsetof(cke_attrs, routed_scale), 0},
    {"lo", offsetof(cke_attrs, lo), 1},                   {"width", offsetof(cke_attrs, width), 1},
};

static cke_status parse_attrs(cke_ir *ir, const cJSON *obj, int layer, cke_attrs *a, const char *where, cke_err *err) {
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        if (!strcmp(it->string, "kind")) continue; /* the node's layer kind (add_nodes) */
        size_t k = 0;
        for (; k < sizeof attr_fields / sizeof attr_fields[0]; k++)
            if (!strcmp(attr_fields[k].key, it->string)) break;
        if (k == sizeof attr_fields / sizeof attr_fields[0])
            return cke_fail(err, CKE_ERR_FORMAT, "template: %s: unknown attribute '%s'", where, it->string);
        double x;
        char ctx[128];
        snprintf(ctx, sizeof ctx, "%s attribute '%s'", where, it->string);
        if (attr_fields[k].is_int == 2 && cJSON_IsString(it)) {
            const char *s = it->valuestring;
            int e = -1;
            if (!strcmp(s, "interleaved") || !strcmp(s, "erf")) e = 0;
            else if (!strcmp(s, "halves") || !strcmp(s, "tanh")) e = 1;
            if (e >= 0) { *(int *)((char *)a + attr_fields[k].off) = e; continue; }
        }
        cke_status st = eval_json_at(ir, it, layer, &x, ctx, err);
        if (st) return st;
        if (attr_fields[k].is_int == 1) *(int64_t *)((char *)a + attr_fields[k].off) = (int64_t)llround(x);
        else if (attr_fields[k].is_int == 2) *(int *)((char *)a + attr_fields[k].off) = (int)llround(x);
        else *(float *)((char *)a + attr_fields[k].off) = (float)x;
    }
    return CKE_OK;
}

#define SHAPE_FAIL(...) return cke_fail(err, CKE_ERR_SHAPE, __VA_ARGS__)

/* Shape rule of each op: checks inputs, fills the output's shape. */
static cke_status infer_shape(cke_ir *ir, cke_node *n, cke_err *err) {
    cke_value *o = &ir->v[n->out];
    const cke_value *x = &ir->v[n->in[0]];
    const cke_value *w = n->n_in > 1 ? &ir->v[n->in[1]] : NULL;
    const char *on = o->name, *opn = cke_op_names[n->op];
    char s0[64], s1[64];
    fmt_shape(s0, sizeof s0, x);
    if (w) fmt_shape(s1, sizeof s1, w);
    o->dtype = CKE_IR_F32;
    switch (n->op) {
    case CKE_OP_EMBED:
        if (x->dtype != CKE_IR_I32 || x->ndim != 1 || w->ndim != 2)
            SHAPE_FAIL("%s: embed needs token ids [T] and a table [V,D], got %s and %s", on, s0, s1);
        o->ndim = 2, o->dims[0] = x->dims[0], o->dims[1] = w->dims[1];
        return CKE_OK;
    case CKE_OP_LINEAR:
        if (x->ndim != 2 || w->ndim != 2 || x->dims[1] != w->dims[1])
            SHAPE_FAIL("%s: linear needs x [T,K] and W [N,K], got %s and %s", on, s0, s1);
        if (n->n_in == 3 && (ir->v[n->in[2]].ndim != 1 || ir->v[n->in[2]].dims[0] != w->dims[0]))
            SHAPE_FAIL("%s: linear bias must be [%lld]", on, (long long)w->dims[0]);
        o->ndim = 2, o->dims[0] = x->dims[0], o->dims[1] = w->dims[0];
        return CKE_OK;
    case CKE_OP_RMSNORM:
        if (n->a.head_dim > 0) { /* per-head norm (Qwen3 QK-norm): rows of head_dim, one w[head_dim] */
            if (x->ndim != 2 || w->ndim != 1 || w->dims[0] != n->a.head_dim || x->dims[1] % n->a.head_dim)
                SHAPE_FAIL("%s: per-head rmsnorm needs x [T,H*%lld] and w [%lld], got %s and %s", on,
                           (long long)n->a.head_dim, (long long)n->a.head_dim, s0, s1);
            break;
        }
        /* fall through */
    case CKE_OP_LAYERNORM:
        if (x->ndim != 2 || w->ndim != 1 || w->dims[0] != x->dims[1])
            SHAPE_FAIL("%s: %s needs x [T,D] and w [D], got %s and %s", on, opn, s0, s1);
        if (n->n_in == 3 && (ir->v[n->in[2]].ndim != 1 || ir->v[n->in[2]].dims[0] != x->dims[1]))
            SHAPE_FAIL("%s: layernorm bias must be [%lld]", on, (long long)x->dims[1]);
        break;
    case CKE_OP_POSEMB:
        if (x->ndim != 2 || w->ndim != 2 || w->dims[1] != x->dims[1])
            SHAPE_FAIL("%s: posemb needs x [T,D] and a table [P,D], got %s and %s", on, s0, s1);
        break;
    case CKE_OP_ROPE:
        if (x->ndim != 2 || n->a.n_head < 1 || n->a.head_dim < 1 || x->dims[1] != n->a.n_head * n->a.head_dim)
            SHAPE_FAIL("%s: rope over %lld heads of %lld needs x [T,%lld], got %s", on, (long long)n->a.n_head,
                       (long long)n->a.head_dim, (long long)(n->a.n_head * n->a.head_dim), s0);
        if (n->a.rot < 2 || n->a.rot > n->a.head_dim || n->a.rot % 2)
            SHAPE_FAIL("%s: rope rotates %lld dims of %lld-dim heads (must be even, 2..head_dim)", on,
                       (long long)n->a.rot, (long long)n->a.head_dim);
        break;
    case CKE_OP_ATTENTION: {
        const cke_value *k = &ir->v[n->in[1]], *v = &ir->v[n->in[2]];
        int64_t hq = n->a.n_head, hk = n->a.n_kv_head, hd = n->a.head_dim;
        if (hq < 1 || hk < 1 || hd < 1 || hq % hk)
            SHAPE_FAIL("%s: attention with %lld query heads and %lld kv heads (must divide)", on, (long long)hq,
                       (long long)hk);
        if (x->ndim != 2 || x->dims[1] != hq * hd || k->ndim != 2 || k->dims[1] != hk * hd || v->ndim != 2 ||
            v->dims[1] != hk * hd)
            SHAPE_FAIL("%s: attention needs q [T,%lld], k and v [T,%lld]", on, (long long)(hq * hd),
                       (long long)(hk * hd));
        if (n->a.scale == 0) n->a.scale = (float)(1.0 / sqrt((double)hd));
        break;
    }
    case CKE_OP_ADD:
    case CKE_OP_SWIGLU:
    case CKE_OP_GEGLU:
        if (x->ndim != w->ndim || memcmp(x->dims, w->dims, sizeof(int64_t) * (size_t)x->ndim))
            SHAPE_FAIL("%s: %s needs equal shapes, got %s and %s", on, opn, s0, s1);
        break;
    case CKE_OP_SCALE:
    case CKE_OP_GELU:
    case CKE_OP_SILU:
    case CKE_OP_ALLREDUCE:
        break;
    case CKE_OP_SOFTCAP:
        if (n->a.softcap < 0) SHAPE_FAIL("%s: softcap %g must be >= 0 (0 = none)", on, (double)n->a.softcap);
        break;
    case CKE_OP_LAST_ROW:
        o->ndim = 2, o->dims[0] = 1, o->dims[1] = x->dims[1];
        return CKE_OK;
    case CKE_OP_HEAD_WINDOW: { /* x [T, n_head*head_dim] -> [T, n_head*width] */
        const int64_t H = n->a.n_head, d = n->a.head_dim, lo = n->a.lo, wd = n->a.width;
        if (x->ndim != 2 || H < 1 || d < 1 || x->dims[1] != H * d || lo < 0 || lo >= d || wd < 1 || wd > (1 << 20))
            SHAPE_FAIL("%s: head_window needs x [T, n_head*head_dim] (%lld heads of %lld) and 0 <= lo < head_dim, width >= 1; "
                       "got %s, lo %lld, width %lld", on, (long long)H, (long long)d, s0, (long long)lo, (long long)wd);
        o->ndim = 2, o->dims[0] = x->dims[0], o->dims[1] = H * wd;
        return CKE_OK;
    }
    case CKE_OP_HEAD_CAT: { /* a [T, n_head*da], b [T, n_kv_head*db] (n_kv_head 1 or n_head) */
        const int64_t H = n->a.n_head, Hb = n->a.n_kv_head;
        if (x->ndim != 2 || w->ndim != 2 || H < 1 || (Hb != 1 && Hb != H) || x->dims[1] % H || w->dims[1] % Hb ||
            w->dims[0] != x->dims[0])
            SHAPE_FAIL("%s: head_cat needs a [T, n_head*da] and b [T, n_kv_head*db], n_kv_head 1 or n_head (%lld, %lld); got %s, %s",
                       on, (long long)H, (long long)Hb, s0, s1);
        o->ndim = 2, o->dims[0] = x->dims[0], o->dims[1] = x->dims[1] + H * (w->dims[1] / Hb);
        return CKE_OK;
    }
    case CKE_OP_SIGMOID_MUL: /* x [T,D], g [T,1] */
        if (x->ndim != 2 || w->ndim != 2 || w->dims[1] != 1 || w->dims[0] != x->dims[0])
            SHAPE_FAIL("%s: sigmoid_mul needs x [T,D] and g [T,1], got %s and %s", on, s0, s1);
        break;
    case CKE_OP_MOE: { /* x [T,D], router [E,D], gate/up [E,F,D], down [E,D,F] */
        const cke_value *g = &ir->v[n->in[2]], *u = &ir->v[n->in[3]], *d = &ir->v[n->in[4]];
        const int64_t E = w->ndim == 2 ? w->dims[0] : 0, F = g->ndim == 3 ? g->dims[1] : 0;
        char s2[64], s3[64], s4[64];
        fmt_shape(s2, sizeof s2, g), fmt_shape(s3, sizeof s3, u), fmt_shape(s4, sizeof s4, d);
        if (x->ndim != 2 || w->ndim != 2 || w->dims[1] != x->dims[1] || g->ndim != 3 || u->ndim != 3 || d->ndim != 3 ||
            g->dims[0] != E || g->dims[2] != x->dims[1] || memcmp(u->dims, g->dims, 3 * sizeof(int64_t)) ||
            d->dims[0] != E || d->dims[1] != x->dims[1] || d->dims[2] != F)
            SHAPE_FAIL("%s: moe needs x [T,D], router [E,D], gate and up experts [E,F,D], down experts [E,D,F], got %s, %s, "
                       "%s, %s, %s", on, s0, s1, s2, s3, s4);
        if (n->a.n_expert_used < 1 || n->a.n_expert_used > E)
            SHAPE_FAIL("%s: moe routes each token to n_expert_used = %lld of %lld experts (must be 1..%lld)", on,
                       (long long)n->a.n_expert_used, (long long)E, (long long)E);
        if (n->n_in > 5 && (ir->v[n->in[5]].ndim != 1 || ir->v[n->in[5]].dims[0] != E || !n->a.moe_sigmoid))
            SHAPE_FAIL("%s: moe's 6th input, the choice bias, must be [%lld] and needs sigmoid scores", on, (long long)E);
        const int64_t G = n->a.n_group, TG = n->a.topk_group;
        if (G > 1 && (E % G || TG < 1 || TG > G || n->a.n_expert_used > TG * (E / G)))
            SHAPE_FAIL("%s: moe group-limited routing: %lld experts in n_group %lld groups, topk_group %lld, top %lld: "
                       "the groups must be equal and the chosen groups must hold the top k", on, (long long)E, (long long)G,
                       (long long)TG, (long long)n->a.n_expert_used);
        if (!(n->a.routed_scale >= 0) || !isfinite(n->a.routed_scale))
            SHAPE_FAIL("%s: moe routed_scale must be a finite number >= 0", on);
        break;
    }
    case CKE_OP_COUNT:
        break;
    }
    o->ndim = x->ndim;
    memcpy(o->dims, x->dims, sizeof o->dims);
    return CKE_OK;
}

/* Appends node n with its output value named <out><suffix> (in layer `layer`), shapes checked. */
static cke_status add_node(cke_ir *ir, cke_node *n, const char *out, const char *suffix, int layer, cke_err *err) {
    char name[CKE_IR_NAME], base[CKE_IR_NAME];
    snprintf(base, sizeof base, "%s%s", out, suffix);
    if (layer >= 0) snprintf(name, sizeof name, "l%d.%s", layer, base);
    else snprintf(name, sizeof name, "%s", base);
    int ov = cke_ir_find(ir, name);
    if (ov >= 0) {
        /* two nodes of layer kinds no layer shares may define one value: one of them runs per layer */
        const cke_value *pv = &ir->v[ov];
        int disjoint = pv->kind == CKE_V_ACT && pv->producer >= 0 && n->kind > 0 && ir->n[pv->producer].kind > 0;
        for (int l = 0; disjoint && l < ir->n_layer; l++)
            disjoint = !(cke_ir_node_on(ir, n, l) && cke_ir_node_on(ir, &ir->n[pv->producer], l));
        if (!disjoint)
            return cke_fail(err, CKE_ERR_FORMAT, "template: value '%s' is defined twice (values are SSA; only nodes of "
                            "layer kinds no layer shares may define one value)", name);
        cke_value keep = *pv;
        if (grow((void **)&ir->n, &ir->cap_n, ir->nn + 1, sizeof(cke_node))) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        n->out = ov;
        for (int i = 0; i < n->n_in; i++) ir->v[n->in[i]].used++;
        cke_status st = infer_shape(ir, n, err);
        if (st) return st;
        if (ir->v[ov].ndim != keep.ndim || memcmp(ir->v[ov].dims, keep.dims, sizeof keep.dims))
            return cke_fail(err, CKE_ERR_SHAPE, "template: the two definitions of '%s' differ in shape", name);
        ir->v[ov].producer = keep.producer; /* the first definition; the schedule holds both */
        ir->n[ir->nn++] = *n;
        return CKE_OK;
    }
    ov = add_value(ir, name, base, layer, CKE_V_ACT);
    if (ov < 0 || grow((void **)&ir->n, &ir->cap_n, ir->nn + 1, sizeof(cke_node)))
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    n->out = ov;
    for (int i = 0; i < n->n_in; i++) ir->v[n->in[i]].used++;
    ir->v[ov].producer = ir->nn;
    cke_status st = infer_shape(ir, n, err);
    if (st) return st;
    ir->n[ir->nn++] = *n;
    return CKE_OK;
}

/* Tensor parallel (Megatron): a linear whose weight is split by output features (column-parallel)
 * leaves this rank's block of the features, which the ops up to the next linear handle per block
 * (shapes say so: a per-feature op with an unsplit operand fails its shape check); a linear whose
 * weight is split by input features (row-parallel) leaves a partial sum, so an allreduce follows
 * it (*reduce) and its bias is added by rank 0 alone. A split weight read any other way is refused. */
static cke_status tp_check(cke_ir *ir, const cke_node *n, const char *where, int *reduce, cke_err *err) {
    for (int i = 0; i < n->n_in; i++) {
        const cke_value *w = &ir->v[n->in[i]];
        if (w->kind != CKE_V_WEIGHT || w->split == CKE_SPLIT_NONE) continue;
        int ok = n->op == CKE_OP_LINEAR && (i == 1 || (i == 2 && w->split == CKE_SPLIT_ROWS));
        if (!ok)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "tensor parallel: %s (%s) reads weight '%s', which is split across ranks",
                            where, cke_op_names[n->op], w->name);
    }
    *reduce = n->op == CKE_OP_LINEAR && ir->v[n->in[1]].split == CKE_SPLIT_COLS;
    if (*reduce && n->n_in > 2) ir->v[n->in[2]].split = CKE_SPLIT_RANK0;
    if (n->op == CKE_OP_LINEAR && ir->v[n->in[1]].split == CKE_SPLIT_ROWS && n->n_in > 2 &&
        ir->v[n->in[2]].split != CKE_SPLIT_ROWS)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "tensor parallel: %s: the bias of a linear split by rows is not split", where);
    return CKE_OK;
}

static cke_status add_nodes(cke_ir *ir, const cJSON *list, cke_section sec, int layer, cke_err *err) {
    /* the epilogue sees the last layer's values */
    int search_from = sec == CKE_SEC_EPILOGUE ? ir->n_layer - 1 : layer;
    const cJSON *nd;
    int idx = 0;
    cJSON_ArrayForEach(nd, list) {
        idx++;
        int cnt = cJSON_GetArraySize(nd);
        const cJSON *jo = cJSON_GetArrayItem(nd, 0), *jop = cJSON_GetArrayItem(nd, 1);
        if (!cJSON_IsArray(nd) || cnt < 3 || !cJSON_IsString(jo) || !cJSON_IsString(jop))
            return cke_fail(err, CKE_ERR_FORMAT, "template: node %d of a section: expected [\"out\", \"op\", inputs...]", idx);
        cke_node n;
        memset(&n, 0, sizeof n);
        char where[96];
        snprintf(where, sizeof where, "node '%s'", jo->valuestring);
        if (cke_op_parse(jop->valuestring, &n.op))
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "template: %s: unknown op '%s'", where, jop->valuestring);
        n.section = sec;
        n.layer = layer;
        for (int i = 2; i < cnt; i++) {
            const cJSON *a = cJSON_GetArrayItem(nd, i);
            if (cJSON_IsObject(a)) {
                cke_status st = parse_attrs(ir, a, layer, &n.a, where, err);
                if (st) return st;
                const cJSON *jk = cJSON_GetObjectItemCaseSensitive(a, "kind");
                if (jk && ((n.kind = find_kind(ir, jk)) == 0 || sec != CKE_SEC_LAYER))
                    return cke_fail(err, CKE_ERR_FORMAT, "template: %s: \"kind\" must name one of \"layer_kinds\" "
                                    "(layer body nodes only)", where);
                continue;
            }
            if (!cJSON_IsString(a)) return cke_fail(err, CKE_ERR_FORMAT, "template: %s: inputs are names", where);
            char nm[CKE_IR_NAME];
            snprintf(nm, sizeof nm, "%s", a->valuestring);
            size_t L = strlen(nm);
            int opt = L > 0 && nm[L - 1] == '?';
            if (opt) nm[L - 1] = 0;
            int vi = resolve(ir, nm, search_from);
            if (vi < 0) {
                if (opt) continue;
                return cke_fail(err, CKE_ERR_FORMAT, "template: %s%s%d: input '%s' is not defined before it", where,
                                layer >= 0 ? " in layer " : "", layer >= 0 ? layer : 0, nm);
            }
            if (n.n_in >= (int)(sizeof n.in / sizeof n.in[0])) return cke_fail(err, CKE_ERR_FORMAT, "template: %s: too many inputs", where);
            n.in[n.n_in++] = vi;
        }
        const cke_op_info *oi = &cke_op_table[n.op];
        if (n.n_in < oi->n_in_min || n.n_in > oi->n_in_max)
            return cke_fail(err, CKE_ERR_FORMAT, "template: %s: op %s takes %d..%d inputs, got %d", where,
                            cke_op_names[n.op], oi->n_in_min, oi->n_in_max, n.n_in);
        int reduce = 0; /* tensor parallel: a row-parallel linear leaves a partial sum */
        if (ir->tp_size > 1) {
            cke_status st = tp_check(ir, &n, where, &reduce, err);
            if (st) return st;
        }
        cke_status st = add_node(ir, &n, jo->valuestring, reduce ? "_part" : "", layer, err);
        if (st) return st;
        if (reduce) {
            cke_node r = {.op = CKE_OP_ALLREDUCE, .section = sec, .layer = layer, .kind = n.kind, .n_in = 1, .in = {n.out}};
            if ((st = add_node(ir, &r, jo->valuestring, "", layer, err))) return st;
        }
    }
    return CKE_OK;
}

/* With layer kinds, a node that runs must read only values some node computed before it in that layer
 * (or outside the layers): a layer whose kinds skip every definition of a value would read garbage. */
static cke_status check_kinds(const cke_ir *ir, cke_err *err) {
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        if (n->section == CKE_SEC_LAYER && !cke_ir_node_on(ir, n, n->layer)) continue;
        for (int k = 0; k < n->n_in; k++) {
            const cke_value *v = &ir->v[n->in[k]];
            if (v->kind == CKE_V_WEIGHT && v->absent)
                return cke_fail(err, CKE_ERR_FORMAT, "template: '%s' (%s) reads weight '%s', which layer %d's kinds leave out",
                                ir->v[n->out].name, cke_op_names[n->op], v->name, v->layer);
            if (v->kind != CKE_V_ACT || v->layer < 0) continue;
            int def = 0;
            for (int j = 0; j < i && !def; j++)
                def = ir->n[j].out == n->in[k] && cke_ir_node_on(ir, &ir->n[j], ir->n[j].layer);
            if (!def)
                return cke_fail(err, CKE_ERR_FORMAT, "template: '%s' (%s) reads '%s', which no node of layer %d's kinds computes",
                                ir->v[n->out].name, cke_op_names[n->op], v->name, v->layer);
        }
    }
    return CKE_OK;
}

static cke_status read_file(const char *path, char **out, cke_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot open template %s", path);
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return cke_fail(err, CKE_ERR_IO, "cannot read %s", path); }
    long n = ftell(f);
    if (n < 0 || n > (1 << 24)) { fclose(f); return cke_fail(err, CKE_ERR_FORMAT, "template %s: bad size", path); }
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (!b) { fclose(f); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) { free(b); return cke_fail(err, CKE_ERR_IO, "short read on %s", path); }
    b[n] = 0;
    *out = b;
    return CKE_OK;
}

/* Tensor parallel: the template's "tensor_parallel": {"split": [hyperparameters]} are divided by
 * the number of ranks (heads, kv heads, FFN width), each of which must divide them. */
static cke_status tp_hparams(cke_ir *ir, const cJSON *root, const cke_ir_source *src, cke_err *err) {
    ir->tp_size = src->tp_size > 1 ? src->tp_size : 1;
    ir->tp_rank = ir->tp_size > 1 ? src->tp_rank : 0;
    if (ir->tp_size == 1) return CKE_OK;
    if (ir->tp_rank < 0 || ir->tp_rank >= ir->tp_size)
        return cke_fail(err, CKE_ERR_ARG, "tensor parallel: rank %d of %d ranks", ir->tp_rank, ir->tp_size);
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(root, "tensor_parallel");
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(tp, "split");
    if (!cJSON_IsArray(split) || cJSON_GetArraySize(split) < 1)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "the %s template does not say how to split it across ranks (\"tensor_parallel\")",
                        ir->family);
    const cJSON *h;
    cJSON_ArrayForEach(h, split) {
        cke_hparam *hp = NULL;
        for (int i = 0; cJSON_IsString(h) && i < ir->n_hp; i++)
            if (!strcmp(ir->hp[i].name, h->valuestring)) hp = &ir->hp[i];
        if (!hp) return cke_fail(err, CKE_ERR_FORMAT, "template: tensor_parallel splits an unknown hyperparameter");
        double q = hp->value / ir->tp_size;
        if (q < 1 || q != floor(q))
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "tensor parallel over %d ranks: %s = %g is not divisible by %d",
                            ir->tp_size, hp->name, hp->value, ir->tp_size);
        hp->value = q;
    }
    /* "replicate": heads of which there may be fewer than ranks (grouped-query kv heads): divided
     * like "split" when the ranks divide them, else, with R = k * n ranks for n heads, each head is
     * held by k ranks (those whose query heads read it) */
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(tp, "replicate")) {
        cke_hparam *hp = NULL;
        for (int i = 0; cJSON_IsString(h) && i < ir->n_hp; i++)
            if (!strcmp(ir->hp[i].name, h->valuestring)) hp = &ir->hp[i];
        if (!hp) return cke_fail(err, CKE_ERR_FORMAT, "template: tensor_parallel replicates an unknown hyperparameter");
        if (hp->value >= 1 && hp->value == floor(hp->value) && fmod(hp->value, ir->tp_size) == 0) {
            hp->value /= ir->tp_size;
            continue;
        }
        if (hp->value < 1 || hp->value != floor(hp->value) || hp->value > ir->tp_size || fmod(ir->tp_size, hp->value) != 0)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "tensor parallel over %d ranks: %s = %g neither divides nor is divided by %d",
                            ir->tp_size, hp->name, hp->value, ir->tp_size);
        hp->value = 1;
    }
    return CKE_OK;
}

static cke_status build(cke_ir *ir, const cJSON *root, const cke_ir_source *src, cke_err *err) {
    cke_status st0;
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(root, "family");
    if (!cJSON_IsString(fam)) return cke_fail(err, CKE_ERR_FORMAT, "template: missing \"family\"");
    snprintf(ir->family, sizeof ir->family, "%s", fam->valuestring);

    /* hyperparameters: every one the template names must come from the model or a default */
    const cJSON *hps = cJSON_GetObjectItemCaseSensitive(root, "hparams");
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(root, "defaults");
    int nh = cJSON_GetArraySize(hps);
    ir->hp = calloc((size_t)nh + 1, sizeof(cke_hparam));
    if (!ir->hp) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    const cJSON *h;
    cJSON_ArrayForEach(h, hps) {
        if (!cJSON_IsString(h)) return cke_fail(err, CKE_ERR_FORMAT, "template: hparams are names");
        double v;
        if (src->hparam(src->ud, h->valuestring, &v) != 0) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(defs, h->valuestring);
            if (!d) return cke_fail(err, CKE_ERR_MISSING, "the %s template needs hyperparameter '%s', which the model does not give",
                                    ir->family, h->valuestring);
            cke_status st = eval_json(ir, d, &v, h->valuestring, err);
            if (st) return st;
        }
        snprintf(ir->hp[ir->n_hp].name, sizeof ir->hp[0].name, "%s", h->valuestring);
        ir->hp[ir->n_hp++].value = v;
    }
    if (src->check && (st0 = src->check(src->ud, ir, err))) return st0;
    if ((st0 = tp_hparams(ir, root, src, err))) return st0;
    double nl;
    if (cke_ir_hparam(ir, "n_layer", &nl) != 0 || nl < 1 || nl > 4096 || nl != floor(nl))
        return cke_fail(err, CKE_ERR_FORMAT, "template/model: n_layer must be given and in 1..4096");
    ir->n_layer = (int)nl;
    if ((st0 = parse_kinds(ir, cJSON_GetObjectItemCaseSensitive(root, "layer_kinds"), err))) return st0;

    /* inputs */
    const cJSON *in;
    cJSON_ArrayForEach(in, cJSON_GetObjectItemCaseSensitive(root, "inputs")) {
        int vi = add_value(ir, in->string, in->string, -1, CKE_V_INPUT);
        if (vi < 0) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        ir->v[vi].dtype = CKE_IR_I32;
        ir->v[vi].ndim = 1;
        ir->v[vi].dims[0] = CKE_DIM_T;
    }

    cke_status st = declare_weights(ir, cJSON_GetObjectItemCaseSensitive(root, "weights"), -1, src, err);
    if (st) return st;
    const cJSON *lw = cJSON_GetObjectItemCaseSensitive(root, "layer_weights");
    for (int l = 0; l < ir->n_layer; l++)
        if ((st = declare_weights(ir, lw, l, src, err))) return st;

    if ((st = add_nodes(ir, cJSON_GetObjectItemCaseSensitive(root, "prologue"), CKE_SEC_PROLOGUE, -1, err)))
        return st;
    for (int l = 0; l < ir->n_layer; l++)
        if ((st = add_nodes(ir, cJSON_GetObjectItemCaseSensitive(root, "layer"), CKE_SEC_LAYER, l, err)))
            return st;
    if ((st = add_nodes(ir, cJSON_GetObjectItemCaseSensitive(root, "epilogue"), CKE_SEC_EPILOGUE, -1, err)))
        return st;
    if (ir->nn == 0 || ir->v[ir->n[ir->nn - 1].out].ndim != 2)
        return cke_fail(err, CKE_ERR_FORMAT, "template: the graph must end in logits [T, vocab]");
    if (ir->n_kinds && (st = check_kinds(ir, err))) return st;

    /* every tensor the model has must be consumed by the graph */
    for (int i = 0; i < ir->nv; i++)
        if (ir->v[i].kind == CKE_V_WEIGHT && ir->v[i].tied_to < 0 && ir->v[i].used == 0 && !ir->v[i].absent) {
            /* a weight another one is tied to counts as used through it */
            int via = 0;
            for (int j = 0; j < ir->nv; j++) via |= ir->v[j].tied_to == i && ir->v[j].used;
            if (!via)
                return cke_fail(err, CKE_ERR_FORMAT, "tensor '%s' is declared by the %s template but no op reads it",
                                ir->v[i].name, ir->family);
        }
    int64_t nt = src->tensor_count(src->ud);
    for (int64_t i = 0; i < nt; i++) {
        const char *tn = src->tensor_name(src->ud, i);
        if (!strcmp(tn, "rope_freqs")) continue; /* read by the compiler into the rope table */
        int vi = cke_ir_find(ir, tn);
        if (vi >= 0 && ir->v[vi].absent)
            return cke_fail(err, CKE_ERR_FORMAT, "model tensor '%s' belongs to a layer the %s template's layer kinds say "
                            "has no such tensor", tn, ir->family);
        if (vi < 0 || ir->v[vi].kind != CKE_V_WEIGHT)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "model tensor '%s' is not used by the %s template (unsupported)", tn,
                            ir->family);
    }
    return CKE_OK;
}

cke_status cke_ir_build(cke_ir **out, const char *template_path, const cke_ir_source *src, cke_err *err) {
    *out = NULL;
    char *text = NULL;
    cke_status st = read_file(template_path, &text, err);
    if (st) return st;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return cke_fail(err, CKE_ERR_FORMAT, "template %s is not valid JSON", template_path);
    cke_ir *ir = calloc(1, sizeof *ir);
    if (!ir) { cJSON_Delete(root); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    snprintf(ir->template_path, sizeof ir->template_path, "%s", template_path);
    st = build(ir, root, src, err);
    cJSON_Delete(root);
    if (st) { cke_ir_free(ir); return st; }
    *out = ir;
    return CKE_OK;
}

void cke_ir_free(cke_ir *ir) {
    if (!ir) return;
    free(ir->hp);
    free(ir->rope_freq);
    free(ir->rope_table_of);
    free(ir->kind_on);
    free(ir->v);
    free(ir->n);
    free(ir);
}

/* ---------------------------------------------------------------- ir.json */

static const char *kind_name(cke_vkind k) {
    return k == CKE_V_INPUT ? "input" : k == CKE_V_WEIGHT ? "weight" : "act";
}
static const char *sec_name(cke_section s) {
    return s == CKE_SEC_PROLOGUE ? "prologue" : s == CKE_SEC_LAYER ? "layer" : "epilogue";
}

cke_status cke_ir_write_json(const cke_ir *ir, const char *path, cke_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    fprintf(f, "{\n  \"family\": \"%s\",\n  \"n_layer\": %d,\n", ir->family, ir->n_layer);
    if (ir->tp_size > 1) fprintf(f, "  \"tensor_parallel\": {\"rank\": %d, \"ranks\": %d},\n", ir->tp_rank, ir->tp_size);
    fprintf(f, "  \"hparams\": {");
    for (int i = 0; i < ir->n_hp; i++)
        fprintf(f, "%s\n    \"%s\": %.9g", i ? "," : "", ir->hp[i].name, ir->hp[i].value);
    fprintf(f, "\n  },\n");
    if (ir->n_kinds) {
        fprintf(f, "  \"layer_kinds\": {");
        for (int k = 0; k < ir->n_kinds; k++) {
            fprintf(f, "%s\"%s\": [", k ? ", " : "", ir->kind_name[k]);
            for (int l = 0, c = 0; l < ir->n_layer; l++)
                if (ir->kind_on[(size_t)k * (size_t)ir->n_layer + (size_t)l]) fprintf(f, "%s%d", c++ ? ", " : "", l);
            fprintf(f, "]");
        }
        fprintf(f, "},\n");
    }
    fprintf(f, "  \"values\": [");
    for (int i = 0; i < ir->nv; i++) {
        const cke_value *v = &ir->v[i];
        char s[64];
        fmt_shape(s, sizeof s, v);
        fprintf(f, "%s\n    {\"name\": \"%s\", \"layer\": %d, \"kind\": \"%s\", \"dtype\": \"%s\", \"shape\": \"%s\"",
                i ? "," : "", v->name, v->layer, kind_name(v->kind), v->dtype == CKE_IR_I32 ? "i32" : "f32", s);
        if (v->tied_to >= 0) fprintf(f, ", \"tied_to\": \"%s\"", ir->v[v->tied_to].name);
        static const char *const split_names[] = {"", "rows", "cols", "rank0"};
        if (v->split > 0 && v->split < 4) fprintf(f, ", \"split\": \"%s\"", split_names[v->split]);
        if (v->absent) fprintf(f, ", \"absent\": true");
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"nodes\": [");
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        fprintf(f, "%s\n    {\"op\": \"%s\", \"section\": \"%s\", \"layer\": %d, \"out\": \"%s\", \"in\": [", i ? "," : "",
                cke_op_names[n->op], sec_name(n->section), n->layer, ir->v[n->out].name);
        for (int j = 0; j < n->n_in; j++) fprintf(f, "%s\"%s\"", j ? ", " : "", ir->v[n->in[j]].name);
        fprintf(f, "]");
        if (n->kind > 0)
            fprintf(f, ", \"layer_kind\": \"%s\", \"runs\": %s", ir->kind_name[n->kind - 1],
                    cke_ir_node_on(ir, n, n->layer) ? "true" : "false");
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0) return cke_fail(err, CKE_ERR_IO, "error writing %s", path);
    return CKE_OK;
}
