#include "codegen/codegen.h"
#include "cke/cke.h"

#include "cke/kernels.h"
#include "plan/plan_train.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

/* ------------------------------------------------------------------ naming */

/* C identifier for an IR value inside a forward function (its template name). */
static void cname(char *out, size_t n, const cke_value *v) {
    static const char *const reserved[] = {"m", "kt", "A", "T", "l", "pos", "tok", "pos0", "kc", "vc", "s",
                                           "int", "float", "char", "double", "long", "short", "if", "for", "do",
                                           "while", "return", "const", "static", "auto", "case", "default"};
    size_t j = 0;
    for (const char *c = v->layer >= 0 ? v->base : v->name; *c && j + 2 < n; c++)
        out[j++] = ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_') ? *c : '_';
    out[j] = 0;
    for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++)
        if (!strcmp(out, reserved[r])) { out[j++] = '_'; out[j] = 0; }
}

/* Constant name of a weight: globals W_<name>, per-layer arrays W_<base>[l]. */
static void wname(char *out, size_t n, const cke_ir *ir, int vi, const char *layer_var) {
    const cke_value *v = &ir->v[vi];
    if (v->tied_to >= 0) v = &ir->v[v->tied_to];
    char b[CKE_IR_NAME];
    cname(b, sizeof b, v);
    if (v->layer >= 0) snprintf(out, n, "W_%s[%s]", b, layer_var);
    else snprintf(out, n, "W_%s", b);
}

/* Stored formats of a weight over its layers (one value for a global): the weight's own format,
 * or -1 when layers differ (K_M recipes give some layers more bits); *any = some layer is not f32. */
static int wdtype_all(const cke_plan *p, int vi, int *any) {
    const cke_ir *ir = p->ir;
    const cke_value *v = &ir->v[vi];
    int first = cke_plan_wdtype(p, vi), same = 1;
    *any = first != 0;
    for (int l = 0; v->layer >= 0 && l < ir->n_layer; l++) {
        char nm[CKE_IR_NAME + 16];
        snprintf(nm, sizeof nm, "l%d.%s", l, v->base);
        int dt = cke_plan_wdtype(p, cke_ir_find(ir, nm)); /* a layer without the tensor: the format of one with it */
        if (dt) *any = 1;
        if (dt != first) same = 0;
    }
    return same ? first : -1;
}
const char *cke_codegen_moe_gate(char *buf, size_t nb, const cke_node *n, const char *bias) {
    char sc[32];
    snprintf(buf, nb, "&(const cke_moe_gate){.sigmoid = %d, .renorm = %d, .bias = %s, .n_group = %lld, .topk_group = %lld, .scale = %s}",
             n->a.moe_sigmoid, n->a.norm_topk, bias, (long long)(n->a.n_group > 1 ? n->a.n_group : 1),
             (long long)(n->a.n_group > 1 ? n->a.topk_group : 1),
             cke_codegen_flit(sc, sizeof sc, n->a.routed_scale > 0 ? n->a.routed_scale : 1.0f));
    return buf;
}

static const char *qname(int dt) {
    const cke_qtype_ops *q = dt > 0 && dt < CKE_QTYPE_COUNT ? cke_ktable_for(CKE_ISA_REF)->qops[dt] : NULL;
    return q ? q->name : "f32";
}

static void shape_c(char *out, size_t n, const cke_value *v, const char *rows) {
    size_t o = (size_t)snprintf(out, n, "[");
    for (int d = 0; d < v->ndim && o < n; d++) {
        if (d == 0 && v->dims[0] == CKE_DIM_T) o += (size_t)snprintf(out + o, n - o, "%s", rows);
        else o += (size_t)snprintf(out + o, n - o, "%s%lld", d ? "," : "", (long long)v->dims[d]);
    }
    if (o < n) snprintf(out + o, n - o, "]");
}

/* A float as a C literal that round-trips: "1e-05f", "0.0f", "0.353553385f". */
const char *cke_codegen_flit(char *buf, size_t n, float x) {
    snprintf(buf, n, "%.9g", (double)x);
    if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", n - strlen(buf) - 1);
    strncat(buf, "f", n - strlen(buf) - 1);
    return buf;
}

static int64_t cols_of(const cke_value *v) {
    int64_t c = 1;
    for (int d = 1; d < v->ndim; d++) c *= v->dims[d];
    return c;
}

/* ------------------------------------------------------------------ per-layer attributes */

/* The copy of layer-0 node n in layer l (templates are uniform: same value names per layer). */
static const cke_node *node_in_layer(const cke_ir *ir, const cke_node *n, int l) {
    for (int i = 0; i < ir->nn; i++) { /* op and kind too: two layer kinds may define one value */
        const cke_node *q = &ir->n[i];
        if (q->section == CKE_SEC_LAYER && q->layer == l && q->op == n->op && q->kind == n->kind &&
            !strcmp(ir->v[q->out].base, ir->v[n->out].base))
            return q;
    }
    return n;
}

/* Attributes that may differ between layers (a template attribute using `layer`, e.g. Gemma 2's
 * interleaved sliding windows) become arrays over layers in model.c: L_<value>_<attr>[l]. */
enum { LA_WINDOW, LA_SOFTCAP, LA_SCALE, LA_COUNT };
static const char *const la_names[LA_COUNT] = {"window", "softcap", "scale"};

static double la_get(const cke_node *n, int which) {
    return which == LA_WINDOW ? (double)n->a.window : which == LA_SOFTCAP ? (double)n->a.softcap : (double)n->a.scale;
}

static int layer_varies(const cke_ir *ir, const cke_node *n, int which) {
    if (n->section != CKE_SEC_LAYER) return 0;
    for (int l = 1; l < ir->n_layer; l++)
        if (la_get(node_in_layer(ir, n, l), which) != la_get(n, which)) return 1;
    return 0;
}

/* Only attention reads per-layer attributes in generated code; any other op whose attributes
 * differ between layers is refused rather than silently using layer 0's. */
static cke_status check_layer_attrs(const cke_ir *ir, cke_err *err) {
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        if (n->section != CKE_SEC_LAYER || n->layer != 0 || n->op == CKE_OP_ATTENTION) continue;
        for (int l = 1; l < ir->n_layer; l++) {
            cke_attrs a = node_in_layer(ir, n, l)->a;
            if (n->op == CKE_OP_ROPE) { /* theta and scaling: the layer's table (ROPE_CS) */
                a.theta = n->a.theta;
                a.rope_scaling = n->a.rope_scaling;
                a.rope_factor = n->a.rope_factor;
            }
            if (memcmp(&a, &n->a, sizeof n->a))
                return cke_fail(err, CKE_ERR_UNSUPPORTED, "codegen: attributes of '%s' (%s) differ between layers; only "
                                "attention takes per-layer attributes", ir->v[n->out].base, cke_op_names[n->op]);
        }
    }
    return CKE_OK;
}

/* "L_attn_window[l]" when the attribute varies over layers, else the literal (into buf) */
static const char *la_expr(char *buf, size_t nb, const cke_ir *ir, const cke_node *n, int which);
const char *cke_codegen_attn_attr(char *buf, size_t nb, const cke_ir *ir, const cke_node *n, const char *attr) {
    int which = !strcmp(attr, "window") ? LA_WINDOW : !strcmp(attr, "softcap") ? LA_SOFTCAP : LA_SCALE;
    return la_expr(buf, nb, ir, n, which);
}
static const char *la_expr(char *buf, size_t nb, const cke_ir *ir, const cke_node *n, int which) {
    char c[CKE_IR_NAME];
    if (layer_varies(ir, n, which)) {
        cname(c, sizeof c, &ir->v[n->out]);
        snprintf(buf, nb, "L_%s_%s[l]", c, la_names[which]);
    } else if (which == LA_WINDOW) {
        snprintf(buf, nb, "%lld", (long long)n->a.window);
    } else {
        cke_codegen_flit(buf, nb, (float)la_get(n, which));
    }
    return buf;
}

static void emit_layer_attrs(const cke_ir *ir, FILE *f) {
    char c[CKE_IR_NAME], lit[32];
    for (int k = 0; k < ir->n_kinds; k++) { /* the template's layer kinds: which layers run which nodes */
        int used = 0; /* only kinds some node runs in (a kind of no layer leaves its nodes out) */
        for (int i = 0; i < ir->nn && !used; i++) used = ir->n[i].kind == k + 1 && cke_ir_node_ever(ir, &ir->n[i]);
        if (!used) continue;
        fprintf(f, "static const unsigned char L_is_%s[N_LAYER] = { /* 1: a %s layer */\n   ", ir->kind_name[k], ir->kind_name[k]);
        for (int l = 0; l < ir->n_layer; l++)
            fprintf(f, " %d%s%s", ir->kind_on[(size_t)k * (size_t)ir->n_layer + (size_t)l], l + 1 < ir->n_layer ? "," : "",
                    l % 16 == 15 && l + 1 < ir->n_layer ? "\n   " : "");
        fprintf(f, "};\n");
    }
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        if (n->section != CKE_SEC_LAYER || n->layer != 0) continue;
        for (int w = 0; w < LA_COUNT; w++) {
            if (!layer_varies(ir, n, w)) continue;
            cname(c, sizeof c, &ir->v[n->out]);
            fprintf(f, "static const %s L_%s_%s[N_LAYER] = { /* %s of each layer */\n   ", w == LA_WINDOW ? "int64_t" : "float",
                    c, la_names[w], la_names[w]);
            for (int l = 0; l < ir->n_layer; l++) {
                const cke_node *q = node_in_layer(ir, n, l);
                if (w == LA_WINDOW) fprintf(f, " %lld", (long long)q->a.window);
                else fprintf(f, " %s", cke_codegen_flit(lit, sizeof lit, (float)la_get(q, w)));
                fprintf(f, "%s", l + 1 < ir->n_layer ? "," : "");
                if (l % 8 == 7 && l + 1 < ir->n_layer) fprintf(f, "\n   ");
            }
            fprintf(f, "};\n");
        }
    }
}

/* The compiler's RoPE tables (driver/compile.c rope_table): inverse frequencies per rotated pair
 * (scaling resolved for CTX, as transformers computes them), each table's cos/sin multiplier
 * (YaRN, LongRoPE), and which table each layer reads when there are two (Gemma 3). */
static void emit_rope_tables(const cke_ir *ir, int64_t rot, FILE *f) {
    char fb[32];
    const int nt = ir->n_rope_tables > 0 ? ir->n_rope_tables : 1;
    fprintf(f, "/* RoPE inverse frequencies per rotated pair, computed by the compiler (rope scaling resolved for CTX,\n"
               " * as transformers computes them), and each table's cos/sin multiplier */\n"
               "#define ROPE_TABLE 1\n#define ROPE_TABLES %d\nstatic const float ROPE_FREQ[ROPE_TABLES][%lld] = {\n", nt,
            (long long)(rot / 2));
    for (int t = 0; t < nt; t++) {
        fprintf(f, "   {");
        for (int64_t i = 0; i < rot / 2; i++)
            fprintf(f, "%s%s%s", i % 6 ? " " : "\n    ", cke_codegen_flit(fb, sizeof fb, ir->rope_freq[(size_t)t * (size_t)(rot / 2) + (size_t)i]),
                    i + 1 < rot / 2 ? "," : "");
        fprintf(f, "}%s\n", t + 1 < nt ? "," : "");
    }
    fprintf(f, "};\nstatic const float ROPE_ATTN_FACTOR[ROPE_TABLES] = {");
    for (int t = 0; t < nt; t++) fprintf(f, "%s%s", t ? ", " : "", cke_codegen_flit(fb, sizeof fb, ir->rope_attn_factor[t]));
    fprintf(f, "};\n");
    if (nt > 1) {
        fprintf(f, "static const unsigned char L_rope_table[N_LAYER] = { /* the table of each layer */\n   ");
        for (int l = 0; l < ir->n_layer; l++) fprintf(f, " %d%s", ir->rope_table_of[l], l + 1 < ir->n_layer ? "," : "");
        fprintf(f, "};\n#define ROPE_CS(l) (m->rope_cs + (size_t)L_rope_table[l] * CTX * ROPE_DIM)\n");
    } else {
        fprintf(f, "#define ROPE_CS(l) (m->rope_cs)\n");
    }
}

/* ------------------------------------------------------------------ emit */

typedef struct {
    const cke_plan *p;
    const cke_mode_plan *m;
    FILE *f;
    char pre;  /* 'P', 'D' or 'B' (decode_batch) */
    int head;  /* emitting the all-rows output head: every value has the call's T rows */
    int prof_id; /* the op's index in prof_ops (profile build) */
} emit_ctx;

/* rows expression of a buffer: "T" when it has the mode's token rows, else the literal */
static const char *rows_expr(const emit_ctx *e, int vi, char *buf, size_t n) {
    if (e->head) return "T";
    int b = e->m->buf_of[vi];
    int64_t r = b >= 0 ? e->m->bufs[b].rows : 1;
    if (e->m->all_rows && r == e->m->T) return "T"; /* decode_batch: every value has the call's rows */
    if (b >= 0 && r == e->m->T && e->m->T > 1) return "T";
    if (!strcmp(e->m->mode, "decode") && r == 1) return "T";
    snprintf(buf, n, "%lld", (long long)r);
    return buf;
}

/* decode_batch's attention: row t is the next token of the sequence in slot slots[t], at
 * position pos[t]; its K/V row goes to that slot's cache and its query attends to that slot's
 * rows 0..pos[t] (one row against its own cache: the decode kernel, once per row). */
static void emit_attn_rows(const emit_ctx *e, const cke_node *n, const char *ind, const char *on, const char *in0,
                           const char *kn, const char *vn, const char *xs, const char *xw, const char *xc) {
    FILE *f = e->f;
    const int64_t qd = n->a.n_head * n->a.head_dim;
    fprintf(f, "%sfor (int64_t t = 0; t < T; t++) {\n", ind);
    fprintf(f, "%s    unsigned char *kc = SLOT_K(slots[t], l), *vc = SLOT_V(slots[t], l); /* [CTX] rows of row t's sequence */\n", ind);
    fprintf(f, "%s    KV_PUT(kc + (size_t)pos[t] * KV_ROW, %s + t * KV_DIM, KV_DIM);\n", ind, kn);
    fprintf(f, "%s    KV_PUT(vc + (size_t)pos[t] * KV_ROW, %s + t * KV_DIM, KV_DIM);\n", ind, vn);
    fprintf(f, "%s    const cke_attn_shape s = {.T = 1, .Tk = (int64_t)pos[t] + 1, .n_head = %lld, .n_kv_head = %lld, .head_dim = %lld,\n"
               "%s                             .scale = %s, .window = %s, .softcap = %s};\n"
               "%s    KV_ATTN(%s + t * %lld, NULL, %s + t * %lld, kc, vc, &s, m->scratch, NTH(((int64_t)pos[t] + 1) * %lld));\n"
               "%s}\n",
            ind, (long long)n->a.n_head, (long long)n->a.n_kv_head, (long long)n->a.head_dim, ind, xs, xw, xc, ind, on,
            (long long)qd, in0, (long long)qd, (long long)qd, ind);
}

static void emit_node(emit_ctx *e, const cke_node *n, const char *ind) {
    const cke_ir *ir = e->p->ir;
    FILE *f = e->f;
    const cke_value *o = &ir->v[n->out];
    char on[CKE_IR_NAME], in0[CKE_IR_NAME], in1[CKE_IR_NAME], wn[96], wb[96];
    char rb[32], so[64], s0[64], s1[64], fa[32], fb[32];
    const char *R = rows_expr(e, n->out, rb, sizeof rb);
    cname(on, sizeof on, o);
    const cke_value *x = &ir->v[n->in[0]];
    cname(in0, sizeof in0, x);
    shape_c(so, sizeof so, o, R);
    char rb0[32];
    shape_c(s0, sizeof s0, x, x->kind == CKE_V_INPUT ? "T" : rows_expr(e, n->in[0], rb0, sizeof rb0));
    const char *lv = n->section == CKE_SEC_LAYER ? "l" : "0";
    int64_t C = cols_of(o);
    fprintf(f, "%sPROF_BEGIN();\n", ind);
    switch (n->op) {
    case CKE_OP_EMBED: {
        wname(wn, sizeof wn, ir, n->in[1], lv);
        shape_c(s1, sizeof s1, &ir->v[n->in[1]], "");
        fprintf(f, "%s/* embed: %s%s = %s%s[tokens%s] */\n", ind, on, so, ir->v[n->in[1]].name, s1, s0);
        int anyq = 0, dt = wdtype_all(e->p, n->in[1], &anyq);
        if (anyq) { /* a table kept in blocks (shared with a tied output head): rows dequantized */
            char cb[CKE_IR_NAME];
            cname(cb, sizeof cb, &ir->v[n->in[1]]);
            fprintf(f, "%s/* table stored as %s: the looked-up rows dequantized */\n", ind, qname(dt));
            fprintf(f, "%scke_qembed_fwd(kt, %s, tok, WQ(%s), Q_%s, %s, %lld);\n", ind, on, wn, cb, R, (long long)C);
            break;
        }
        fprintf(f, "%skt->embed_fwd(%s, tok, WT(%s), %s, %lld);\n", ind, on, wn, R, (long long)C);
        break;
    }
    case CKE_OP_RMSNORM:
        wname(wn, sizeof wn, ir, n->in[1], lv);
        if (n->a.head_dim > 0) { /* per head: rows of head_dim (Qwen3 QK-norm) */
            int64_t hd = n->a.head_dim;
            fprintf(f, "%s/* rmsnorm per head: %s%s = rmsnorm over each %lld-dim head of %s%s * %s(%s[%lld]), eps %g */\n", ind,
                    on, so, (long long)hd, in0, s0, n->a.w_offset != 0 ? "1 + " : "", ir->v[n->in[1]].base, (long long)hd,
                    (double)n->a.eps);
            fprintf(f, "%skt->rmsnorm_fwd(%s, NULL, %s, WT(%s), (int64_t)%s * %lld, %lld, %s, %s);\n", ind, on, in0, wn, R,
                    (long long)(C / hd), (long long)hd, cke_codegen_flit(fa, sizeof fa, n->a.eps), cke_codegen_flit(fb, sizeof fb, n->a.w_offset));
            break;
        }
        fprintf(f, "%s/* rmsnorm: %s%s = rmsnorm(%s%s) * %s(%s[%lld]), eps %g */\n", ind, on, so, in0, s0,
                n->a.w_offset != 0 ? "1 + " : "", ir->v[n->in[1]].base, (long long)C, (double)n->a.eps);
        fprintf(f, "%skt->rmsnorm_fwd(%s, NULL, %s, WT(%s), %s, %lld, %s, %s);\n", ind, on, in0, wn, R, (long long)C,
                cke_codegen_flit(fa, sizeof fa, n->a.eps), cke_codegen_flit(fb, sizeof fb, n->a.w_offset));
        break;
    case CKE_OP_LAYERNORM:
        wname(wn, sizeof wn, ir, n->in[1], lv);
        if (n->n_in > 2) wname(wb, sizeof wb, ir, n->in[2], lv);
        fprintf(f, "%s/* layernorm: %s%s = layernorm(%s%s), eps %g */\n", ind, on, so, in0, s0, (double)n->a.eps);
        fprintf(f, "%skt->layernorm_fwd(%s, NULL, NULL, %s, WT(%s), %s%s%s, %s, %lld, %s);\n", ind, on, in0, wn,
                n->n_in > 2 ? "WT(" : "NULL", n->n_in > 2 ? wb : "", n->n_in > 2 ? ")" : "", R, (long long)C,
                cke_codegen_flit(fa, sizeof fa, n->a.eps));
        break;
    case CKE_OP_LINEAR: {
        const cke_value *w = &ir->v[n->in[1]];
        wname(wn, sizeof wn, ir, n->in[1], lv);
        if (n->n_in > 2) wname(wb, sizeof wb, ir, n->in[2], lv);
        fprintf(f, "%s/* linear: %s%s = %s%s . %s[%lld,%lld]^T%s */\n", ind, on, so, in0, s0, w->base,
                (long long)w->dims[0], (long long)w->dims[1], n->n_in > 2 ? " + bias" : "");
        int anyq = 0, dt = wdtype_all(e->p, n->in[1], &anyq);
        if (anyq) { /* weights kept in their file format: blocks dotted / dequantized in the kernel */
            char qn[CKE_IR_NAME + 16], cb[CKE_IR_NAME];
            cname(cb, sizeof cb, ir->v[n->in[1]].tied_to >= 0 ? &ir->v[ir->v[n->in[1]].tied_to] : w);
            snprintf(qn, sizeof qn, w->layer >= 0 ? "Q_%s[l]" : "Q_%s", cb);
            fprintf(f, "%s/* weights stored as %s */\n", ind, dt >= 0 ? qname(dt) : "per-layer formats (Q_ table)");
            fprintf(f, "%scke_qlinear_fwd(kt, %s, %s, WQ(%s), %s, %s%s%s, %s, %lld, %lld, m->scratch, NTH((int64_t)%s * %lld));\n",
                    ind, on, in0, wn, qn, n->n_in > 2 ? "WT(" : "NULL", n->n_in > 2 ? wb : "", n->n_in > 2 ? ")" : "", R,
                    (long long)w->dims[1], (long long)w->dims[0], R, (long long)(w->dims[0] * w->dims[1]));
            break;
        }
        fprintf(f, "%scke_linear_fwd(kt, %s, %s, WT(%s), %s%s%s, %s, %lld, %lld, m->scratch, NTH((int64_t)%s * %lld));\n", ind, on, in0, wn,
                n->n_in > 2 ? "WT(" : "NULL", n->n_in > 2 ? wb : "", n->n_in > 2 ? ")" : "", R, (long long)w->dims[1],
                (long long)w->dims[0], R, (long long)(w->dims[0] * w->dims[1]));
        break;
    }
    case CKE_OP_ROPE:
        fprintf(f, "%s/* rope: %s%s = rope(%s%s), %lld heads x %lld, %lld dims rotated, theta %g, %s */\n", ind, on, so, in0,
                s0, (long long)n->a.n_head, (long long)n->a.head_dim, (long long)n->a.rot, (double)n->a.theta,
                n->a.rope_layout ? "split halves" : "interleaved pairs");
        fprintf(f, "%skt->rope_fwd(%s, %s, ROPE_CS(%s), pos, %s, %lld, %lld, %lld, %s);\n", ind, on, in0, lv, R,
                (long long)n->a.n_head, (long long)n->a.head_dim, (long long)n->a.rot,
                n->a.rope_layout ? "CKE_ROPE_HALVES" : "CKE_ROPE_INTERLEAVED");
        break;
    case CKE_OP_ATTENTION: {
        char kn[CKE_IR_NAME], vn[CKE_IR_NAME], xw[64], xs[64], xc[64];
        la_expr(xw, sizeof xw, ir, n, LA_WINDOW);
        la_expr(xs, sizeof xs, ir, n, LA_SCALE);
        la_expr(xc, sizeof xc, ir, n, LA_SOFTCAP);
        int windowed = n->a.window != 0 || layer_varies(ir, n, LA_WINDOW);
        cname(kn, sizeof kn, &ir->v[n->in[1]]);
        cname(vn, sizeof vn, &ir->v[n->in[2]]);
        fprintf(f, "%s/* attention: %s%s = softmax(%s %s^T * %g, causal%s) %s; %lld q heads, %lld kv heads x %lld;\n"
                   "%s   %s */\n",
                ind, on, so, in0, kn, (double)n->a.scale, windowed ? ", sliding window" : "", vn, (long long)n->a.n_head,
                (long long)n->a.n_kv_head, (long long)n->a.head_dim, ind,
                e->m->all_rows ? "row t's K/V go to its slot's cache at pos[t], its query attends to that slot's rows 0..pos[t]"
                               : "this step's K/V rows go to the cache at pos0.., queries attend to cache rows 0..pos0+T");
        if (e->m->all_rows) { /* decode_batch: each row attends to its own sequence's slot */
            emit_attn_rows(e, n, ind, on, in0, kn, vn, xs, xw, xc);
            break;
        }
        fprintf(f, "%sKV_PUT(kc + (size_t)pos0 * KV_ROW, %s, (int64_t)%s * KV_DIM);\n", ind, kn, R);
        fprintf(f, "%sKV_PUT(vc + (size_t)pos0 * KV_ROW, %s, (int64_t)%s * KV_DIM);\n", ind, vn, R);
        fprintf(f, "%s{\n%s    const cke_attn_shape s = {.T = %s, .Tk = pos0 + %s, .n_head = %lld, .n_kv_head = %lld, .head_dim = %lld,\n"
                   "%s                             .scale = %s, .window = %s, .softcap = %s};\n"
                   "%s    KV_ATTN(%s, NULL, %s, kc, vc, &s, m->scratch, NTH((int64_t)%s * (pos0 + %s) * %lld));\n%s}\n",
                ind, ind, R, R, (long long)n->a.n_head, (long long)n->a.n_kv_head, (long long)n->a.head_dim, ind,
                xs, xw, xc, ind, on, in0, R, R,
                (long long)(n->a.n_head * n->a.head_dim), ind);
        break;
    }
    case CKE_OP_ADD:
        cname(in1, sizeof in1, &ir->v[n->in[1]]);
        fprintf(f, "%s/* add: %s%s = %s + %s */\n", ind, on, so, in0, in1);
        fprintf(f, "%skt->add_fwd(%s, %s, %s, (int64_t)%s * %lld);\n", ind, on, in0, in1, R, (long long)C);
        break;
    case CKE_OP_SCALE:
        fprintf(f, "%s/* scale: %s%s = %s * %g */\n", ind, on, so, in0, (double)n->a.scale);
        fprintf(f, "%skt->scale_fwd(%s, %s, %s, (int64_t)%s * %lld);\n", ind, on, in0, cke_codegen_flit(fa, sizeof fa, n->a.scale), R,
                (long long)C);
        break;
    case CKE_OP_SWIGLU:
    case CKE_OP_GEGLU:
        cname(in1, sizeof in1, &ir->v[n->in[1]]);
        if (n->op == CKE_OP_SWIGLU) {
            fprintf(f, "%s/* swiglu: %s%s = silu(%s) * %s */\n", ind, on, so, in0, in1);
            fprintf(f, "%skt->swiglu_fwd(%s, %s, %s, (int64_t)%s * %lld);\n", ind, on, in0, in1, R, (long long)C);
        } else {
            fprintf(f, "%s/* geglu: %s%s = gelu(%s) * %s */\n", ind, on, so, in0, in1);
            fprintf(f, "%skt->geglu_fwd(%s, %s, %s, (int64_t)%s * %lld, %s);\n", ind, on, in0, in1, R, (long long)C,
                    n->a.gelu ? "CKE_GELU_TANH" : "CKE_GELU_ERF");
        }
        break;
    case CKE_OP_GELU:
        fprintf(f, "%s/* gelu: %s%s = gelu(%s) */\n", ind, on, so, in0);
        fprintf(f, "%skt->gelu_fwd(%s, %s, (int64_t)%s * %lld, %s);\n", ind, on, in0, R, (long long)C,
                n->a.gelu ? "CKE_GELU_TANH" : "CKE_GELU_ERF");
        break;
    case CKE_OP_SILU:
        fprintf(f, "%s/* silu: %s%s = silu(%s) */\n", ind, on, so, in0);
        fprintf(f, "%skt->silu_fwd(%s, %s, (int64_t)%s * %lld);\n", ind, on, in0, R, (long long)C);
        break;
    case CKE_OP_SOFTCAP:
        if (n->a.softcap == 0) { /* the model has no cap: identity */
            fprintf(f, "%s/* softcap: %s%s = %s (no cap) */\n", ind, on, so, in0);
            fprintf(f, "%sif (%s != %s) memcpy(%s, %s, (size_t)%s * %lld * sizeof(float));\n", ind, on, in0, on, in0, R,
                    (long long)C);
            break;
        }
        fprintf(f, "%s/* softcap: %s%s = %g * tanh(%s / %g) */\n", ind, on, so, (double)n->a.softcap, in0, (double)n->a.softcap);
        fprintf(f, "%skt->softcap_fwd(%s, %s, %s, (int64_t)%s * %lld);\n", ind, on, in0, cke_codegen_flit(fa, sizeof fa, n->a.softcap), R,
                (long long)C);
        break;
    case CKE_OP_POSEMB:
        wname(wn, sizeof wn, ir, n->in[1], lv);
        fprintf(f, "%s/* posemb: %s%s = %s + %s[pos0..] */\n", ind, on, so, in0, ir->v[n->in[1]].name);
        fprintf(f, "%sif (%s != %s) memcpy(%s, %s, (size_t)%s * %lld * sizeof(float));\n", ind, on, in0, on, in0, R, (long long)C);
        if (e->m->all_rows) /* decode_batch: every row at its own sequence's position */
            fprintf(f, "%sfor (int64_t t = 0; t < T; t++) kt->posemb_fwd(%s + t * %lld, WT(%s), pos[t], 1, %lld);\n", ind, on,
                    (long long)C, wn, (long long)C);
        else fprintf(f, "%skt->posemb_fwd(%s, WT(%s), pos0, %s, %lld);\n", ind, on, wn, R, (long long)C);
        break;
    case CKE_OP_ALLREDUCE:
        fprintf(f, "%s/* allreduce: %s%s = %s summed over the %d tensor-parallel ranks (each holds a partial sum) */\n", ind, on,
                so, in0, ir->tp_size);
        fprintf(f, "%sTP_ALLREDUCE(%s, %s, (int64_t)%s * %lld);\n", ind, on, in0, R, (long long)C);
        break;
    case CKE_OP_HEAD_WINDOW:
        fprintf(f, "%s/* head_window: %s%s = columns %lld..%lld of each of %s's %lld heads of %lld%s */\n", ind, on, so,
                (long long)n->a.lo, (long long)(n->a.lo + n->a.width), in0, (long long)n->a.n_head, (long long)n->a.head_dim,
                n->a.lo + n->a.width > n->a.head_dim ? " (zeros past the head)" : "");
        fprintf(f, "%scke_head_window_fwd(%s, %s, %s, %lld, %lld, %lld, %lld);\n", ind, on, in0, R, (long long)n->a.n_head,
                (long long)n->a.head_dim, (long long)n->a.lo, (long long)n->a.width);
        break;
    case CKE_OP_HEAD_CAT: {
        cname(in1, sizeof in1, &ir->v[n->in[1]]);
        const long long H = (long long)n->a.n_head, Hb = (long long)n->a.n_kv_head;
        const long long da = (long long)(cols_of(&ir->v[n->in[0]]) / H), db = (long long)(cols_of(&ir->v[n->in[1]]) / Hb);
        fprintf(f, "%s/* head_cat: %s%s = each of %lld heads: %s's %lld columns, then %s %lld */\n", ind, on, so, H, in0, da,
                Hb == 1 ? "the one shared head of" : "the head's", db);
        fprintf(f, "%scke_head_cat_fwd(%s, %s, %s, %s, %lld, %lld, %lld, %lld);\n", ind, on, in0, in1, R, H, da, Hb, db);
        break;
    }
    case CKE_OP_SIGMOID_MUL:
        cname(in1, sizeof in1, &ir->v[n->in[1]]);
        fprintf(f, "%s/* sigmoid_mul: %s%s = sigmoid(%s[%s,1]) * %s */\n", ind, on, so, in1, R, in0);
        fprintf(f, "%scke_sigmoid_mul_fwd(%s, %s, %s, %s, %lld);\n", ind, on, in0, in1, R, (long long)C);
        break;
    case CKE_OP_MOE: {
        const cke_value *g = &ir->v[n->in[2]];
        const long long E = (long long)g->dims[0], F = (long long)g->dims[1], D = (long long)g->dims[2];
        char wr[96], wg[96], wu[96], wd[96];
        wname(wr, sizeof wr, ir, n->in[1], lv);
        wname(wg, sizeof wg, ir, n->in[2], lv);
        wname(wu, sizeof wu, ir, n->in[3], lv);
        wname(wd, sizeof wd, ir, n->in[4], lv);
        char sm[96], bias[128] = "NULL", gate[320];
        if (n->a.moe_sigmoid)
            snprintf(sm, sizeof sm, "sigmoid scores%s%s%s", n->n_in > 5 ? ", chosen with a bias" : "",
                     n->a.n_group > 1 ? " among the best groups" : "", n->a.norm_topk ? ", renormalized" : "");
        else
            snprintf(sm, sizeof sm, n->a.norm_topk ? "softmax over the %lld chosen" : "softmax over all %lld, not renormalized",
                     n->a.norm_topk ? (long long)n->a.n_expert_used : E);
        if (n->n_in > 5) {
            char wbias[96];
            wname(wbias, sizeof wbias, ir, n->in[5], lv);
            snprintf(bias, sizeof bias, "WT(%s)", wbias);
        }
        cke_codegen_moe_gate(gate, sizeof gate, n, bias);
        fprintf(f, "%s/* moe: %s%s = sum over the top %lld of %lld experts (%s[%lld,%lld] . %s, %s) of\n"
                   "%s   w_e * %s[e][%lld,%lld] . (silu(%s[e][%lld,%lld] . %s) * %s[e][%lld,%lld] . %s);\n"
                   "%s   rows grouped per expert (each chosen expert's weights read once per call) */\n",
                ind, on, so, (long long)n->a.n_expert_used, E, ir->v[n->in[1]].base, E, D, in0, sm,
                ind, ir->v[n->in[4]].base, D, F, ir->v[n->in[2]].base, F, D, in0, ir->v[n->in[3]].base, F, D, in0, ind);
        char qt[3][CKE_IR_NAME + 16]; /* each stack's stored format: Q_<name>[l] when some layer keeps blocks, else 0 (f32) */
        int fmt[3];
        for (int j = 0; j < 3; j++) {
            int anyq = 0;
            fmt[j] = wdtype_all(e->p, n->in[2 + j], &anyq);
            char cb[CKE_IR_NAME];
            cname(cb, sizeof cb, &ir->v[n->in[2 + j]]);
            if (anyq) snprintf(qt[j], sizeof qt[j], "Q_%s[l]", cb);
            else snprintf(qt[j], sizeof qt[j], "0");
        }
        fprintf(f, "%s/* experts stored as %s, %s, %s */\n", ind, fmt[0] >= 0 ? qname(fmt[0]) : "per-layer formats",
                fmt[1] >= 0 ? qname(fmt[1]) : "per-layer formats", fmt[2] >= 0 ? qname(fmt[2]) : "per-layer formats");
        fprintf(f, "%scke_moe_fwd(kt, %s, %s, WT(%s), WQ(%s), WQ(%s), WQ(%s), %s, %s, %s, %s, %lld, %lld, %lld, %lld,\n"
                   "%s            %s,\n%s            m->scratch, NTH((int64_t)%s * %lld));\n",
                ind, on, in0, wr, wg, wu, wd, qt[0], qt[1], qt[2], R, D, F, E, (long long)n->a.n_expert_used, ind, gate, ind, R,
                (long long)n->a.n_expert_used * 3 * F * D);
        break;
    }
    case CKE_OP_LAST_ROW:
        fprintf(f, "%s/* last_row: %s%s = %s[T-1] (only the last position's logits are needed) */\n", ind, on, so, in0);
        fprintf(f, "%smemmove(%s, %s + (T - 1) * %lld, %lld * sizeof(float));\n", ind, on, in0, (long long)C, (long long)C);
        break;
    case CKE_OP_COUNT:
        break;
    }
    char rb2[32];
    const char *R2 = rows_expr(e, n->out, rb2, sizeof rb2);
    fprintf(f, "%sPROF_END(%d, %s, %s);\n", ind, e->prof_id, n->section == CKE_SEC_LAYER ? "l" : "-1", R2);
    fprintf(f, "%sTRACE(\"%s\", %s, %s, %s, %lld);\n", ind, o->layer >= 0 ? o->base : o->name,
            n->section == CKE_SEC_LAYER ? "l" : "-1", on, R2, (long long)C);
}

/* prefill_all's output head: the epilogue over every row of the chunk, into the caller's
 * [T, VOCAB] (see lower_head in plan.c); afterwards logits() gives the last row, as after prefill. */
static void emit_head(const emit_ctx *e) {
    const cke_ir *ir = e->p->ir;
    const cke_mode_plan *m = e->m;
    FILE *f = e->f;
    char c[CKE_IR_NAME], s[64];
    fprintf(f, "    if (all) { /* prefill_all: the output head over all T rows, not just the last */\n        {\n");
    for (int k = 0; k < m->n_head; k++) {
        const cke_value *v = &ir->v[m->head[k].out];
        cname(c, sizeof c, v);
        shape_c(s, sizeof s, v, "T");
        if (m->head_buf[k] >= 0) fprintf(f, "            float *%s = (float *)(A + %c_HEAD_%s); /* %s */\n", c, e->pre, c, s);
        else fprintf(f, "            float *%s = all; /* %s: the caller's logits%s */\n", c, s,
                     k + 1 < m->n_head ? ", overwritten in place by the next op" : "");
    }
    emit_ctx h = *e;
    h.head = 1;
    for (int k = 0; k < m->n_head; k++) {
        const cke_node *n = &m->head[k];
        if (e->p->canaries && m->head_buf[k] >= 0)
            fprintf(f, "            canary_set(A, &%c_canary[%d], T);\n", e->pre, m->head_buf[k]);
        h.prof_id = e->prof_id + m->n_sched + k;
        emit_node(&h, n, "            ");
        if (e->p->canaries)
            fprintf(f, "            canary_check(m, %c_canary, (int)(sizeof %c_canary / sizeof %c_canary[0]), T, %d, \"%s\", -1);\n",
                    e->pre, e->pre, e->pre, m->n_sched + k, cke_op_names[n->op]);
    }
    cname(c, sizeof c, &ir->v[m->sched[m->n_sched - 1].out]);
    fprintf(f, "        }\n"
               "        memcpy(%s, all + (T - 1) * VOCAB, VOCAB * sizeof(float)); /* where prefill leaves the last row */\n"
               "        m->last_logits = %s;\n"
               "        return;\n"
               "    }\n", c, c);
}

static void emit_mode(emit_ctx *e) {
    const cke_ir *ir = e->p->ir;
    const cke_mode_plan *m = e->m;
    FILE *f = e->f;
    char c[CKE_IR_NAME], s[64], rb[32];
    fprintf(f, "/* ---- %s: T <= %lld rows; activations %zu bytes planned (%zu without reuse) ---- */\n", m->mode,
            (long long)m->T, m->arena_bytes, m->sum_bytes);
    for (int b = 0; b < m->n_bufs; b++) {
        if (m->bufs[b].alias_of >= 0) continue; /* a carry-out is its carry-in's buffer, same name */
        const cke_value *v = &ir->v[m->bufs[b].value];
        cname(c, sizeof c, v);
        char r[32];
        snprintf(r, sizeof r, "%lld", (long long)m->bufs[b].rows);
        shape_c(s, sizeof s, v, r);
        fprintf(f, "#define %c_%s%-*s %10zuu /* %-14s %s */\n", e->pre, m->bufs[b].head ? "HEAD_" : "",
                m->bufs[b].head ? 11 : 16, c, m->bufs[b].offset, s,
                m->bufs[b].head ? "output head over all rows (prefill_all)"
                : m->bufs[b].pinned ? "carried across layers" : "lifetime");
    }
    fprintf(f, "#define %c_ARENA  %zuu\n#define %c_SCRATCH %zuu\n\n", e->pre, m->arena_bytes, e->pre, m->scratch_bytes);
    if (e->p->canaries) {
        fprintf(f, "/* debug build: where each activation's canary sits, and the steps it must survive */\n"
                   "static const ckm_canary %c_canary[] = {\n", e->pre);
        for (int b = 0; b < m->n_bufs; b++) {
            const cke_buf *bf = &m->bufs[b];
            const cke_buf *own = bf->alias_of >= 0 ? &m->bufs[bf->alias_of] : bf;
            int64_t cols = own->rows > 0 ? (int64_t)(own->data_bytes / sizeof(float)) / own->rows : 0;
            int t_rows = own->rows == m->T && m->T > 1; /* rows follow the call's T */
            const cke_value *bv = &ir->v[bf->value];
            fprintf(f, "    {\"%s\", %zuu, %lldu, %lld, %d, %d},\n", bv->layer >= 0 ? bv->base : bv->name, own->offset,
                    (long long)(cols * (int64_t)sizeof(float)), (long long)(t_rows ? 0 : own->rows), bf->first, bf->last);
        }
        fprintf(f, "};\n\n");
    }

    if (m->all_rows) {
        fprintf(f, "/* Row t is the next token of the sequence in KV slot slots[t] (distinct), at that slot's position:\n"
                   " * one forward over the T rows, the linears one GEMM over them, attention per row in its own slot. */\n"
                   "static void forward_%s(ckm_model *m, const int32_t *tok /* [T] */, int64_t T, const int32_t *slots /* [T] */) {\n",
                m->mode);
        fprintf(f, "    const cke_ktable *kt = m->kt;\n    char *A = m->arena;\n    PROF_DECL;\n");
        fprintf(f, "    int32_t *pos = m->posbuf; /* [T] each row's own position, for rope */\n");
        fprintf(f, "    for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)m->slot_pos[slots[t]];\n");
        fprintf(f, "    const int64_t pos0 = pos[0]; /* for TRACE and PROF_END: the first row's position */\n");
    } else {
        fprintf(f, "static void forward_%s(ckm_model *m, const int32_t *tok /* [T] */, int64_t T%s) {\n", m->mode,
                m->n_head ? ", float *all /* [T, VOCAB] every row's logits, or NULL: the last row's */" : "");
        fprintf(f, "    const cke_ktable *kt = m->kt;\n    char *A = m->arena;\n    const int64_t pos0 = m->pos;\n    PROF_DECL;\n");
        fprintf(f, "    int32_t *pos = m->posbuf; /* [T] absolute positions, for rope */\n");
        fprintf(f, "    for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)(pos0 + t);\n");
    }
    for (int b = 0; b < m->n_bufs; b++) {
        if (m->bufs[b].alias_of >= 0 || m->bufs[b].head) continue;
        const cke_value *v = &ir->v[m->bufs[b].value];
        cname(c, sizeof c, v);
        shape_c(s, sizeof s, v, rows_expr(e, m->bufs[b].value, rb, sizeof rb));
        fprintf(f, "    float *%s = (float *)(A + %c_%s); /* %s */\n", c, e->pre, c, s);
    }
    fprintf(f, "\n");
    int in_loop = 0, head_done = 0, open_kind = 0;
    for (int i = 0; i < m->n_sched; i++) {
        const cke_node *n = &m->sched[i];
        if (open_kind && n->section != CKE_SEC_LAYER) fprintf(f, "        }\n"), open_kind = 0;
        if (n->section == CKE_SEC_EPILOGUE && m->n_head && !head_done) {
            if (in_loop) fprintf(f, "    }\n");
            in_loop = 0;
            emit_head(e);
            head_done = 1;
        }
        if (n->section == CKE_SEC_LAYER && !in_loop && m->all_rows) {
            fprintf(f, "    for (int l = 0; l < N_LAYER; l++) {\n");
            in_loop = 1;
        } else if (n->section == CKE_SEC_LAYER && !in_loop) {
            fprintf(f, "    for (int l = 0; l < N_LAYER; l++) {\n");
            fprintf(f, "        unsigned char *kc = m->kv + (size_t)l * CTX * KV_ROW;             /* [CTX] rows of KV_DIM */\n");
            fprintf(f, "        unsigned char *vc = m->kv + ((size_t)N_LAYER + l) * CTX * KV_ROW; /* [CTX] rows of KV_DIM */\n");
            fprintf(f, "        (void)kc; (void)vc;\n");
            in_loop = 1;
        } else if (n->section != CKE_SEC_LAYER && in_loop) {
            fprintf(f, "    }\n");
            in_loop = 0;
        }
        /* nodes of a layer kind run in that kind's layers only: one if-block per run of them */
        const int kind = in_loop ? n->kind : 0;
        if (kind != open_kind && open_kind) fprintf(f, "        }\n");
        if (kind != open_kind && kind)
            fprintf(f, "        if (L_is_%s[l]) { /* %s layers only */\n", ir->kind_name[kind - 1], ir->kind_name[kind - 1]);
        open_kind = kind;
        const char *ind = kind ? "            " : in_loop ? "        " : "    ";
        if (e->p->canaries) {
            const cke_buf *ob = &m->bufs[m->buf_of[n->out]];
            if (ob->alias_of >= 0) ob = &m->bufs[ob->alias_of];
            fprintf(f, "%scanary_set(A, &%c_canary[%d], T); /* the output's canary, before the op writes it */\n", ind,
                    e->pre, (int)(ob - m->bufs));
        }
        emit_ctx ei = *e;
        ei.prof_id = e->prof_id + i;
        emit_node(&ei, n, ind);
        if (e->p->canaries)
            fprintf(f, "%scanary_check(m, %c_canary, (int)(sizeof %c_canary / sizeof %c_canary[0]), T, %d, \"%s\", %s);\n", ind,
                    e->pre, e->pre, e->pre, i, cke_op_names[n->op], in_loop ? "l" : "-1");
    }
    if (open_kind) fprintf(f, "        }\n");
    if (in_loop) fprintf(f, "    }\n");
    const cke_value *lg = &ir->v[m->sched[m->n_sched - 1].out];
    cname(c, sizeof c, lg);
    if (m->all_rows) fprintf(f, "    m->last_logits = %s; /* [T, VOCAB]: every row's */\n}\n\n", c);
    else fprintf(f, "    m->last_logits = %s;\n}\n\n", c);
}

/* ------------------------------------------------------------------ profiling table */

/* The KV cache's element type (--kv-type): the bytes of a cache row (KV_DIM values), the write of
 * this step's k/v rows into it (f16: rounded to nearest even by the kernel table's one converter;
 * q8_0: ggml's quantizer) and the attention forward that reads it. Rows are addressed in bytes. */
static void emit_kv_type(FILE *f, const cke_plan *p) {
    static const struct { const char *comment, *put, *attn, *kcast; } kv[] = {
        [CKE_KV_F16] = {"f16 (IEEE half; written rounded to nearest even, widened exactly as attention reads it)",
                        "kt->f32_to_f16((uint16_t *)(void *)(dst), (src), (n))", "kt->attn_fwd_f16", "const uint16_t *"},
        [CKE_KV_F32] = {"f32 (this step's k/v rows copied as they are)", "memcpy((dst), (src), (size_t)(n) * sizeof(float))",
                        "kt->attn_fwd", "const float *"},
        [CKE_KV_Q8_0] = {"q8_0 (ggml blocks of 32: an f16 scale and 32 int8; dequantized as attention reads it)",
                         "kt->qops[8]->quantize_row((dst), (src), (n))", "kt->attn_fwd_q8_0", "const void *"},
    };
    const int t = p->kv_type;
    fprintf(f, "/* KV cache: %s */\n#define KV_TYPE \"%s\"\n#define KV_ROW %zuu /* bytes of one cache row of KV_DIM values */\n"
               "#define KV_PUT(dst, src, n) %s\n"
               "#define KV_ATTN(out, lse, q, k, v, s, ws, nth) \\\n"
               "    %s((out), (lse), (q), (%s)(const void *)(k), (%s)(const void *)(v), (s), (ws), (nth))\n\n",
            kv[t].comment, cke_kv_type_name((cke_kv_type)t), p->kv_row, kv[t].put, kv[t].attn, kv[t].kcast, kv[t].kcast);
}

/* "[T,64], attn_q[64,64] q4_0 -> [T,64]": the op's inputs (weights by name and stored format)
 * and output, rows as the mode's code has them. */
static void prof_shape(char *out, size_t n, const emit_ctx *e, const cke_node *nd) {
    const cke_ir *ir = e->p->ir;
    char s[64], rb[32];
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < nd->n_in && o < n; i++) {
        const cke_value *v = &ir->v[nd->in[i]];
        if (v->kind == CKE_V_WEIGHT) {
            shape_c(s, sizeof s, v, "");
            o += (size_t)snprintf(out + o, n - o, "%s%s%s %s", i ? ", " : "", v->base, s, qname(cke_plan_wdtype(e->p, nd->in[i])));
        } else if (v->kind == CKE_V_INPUT) {
            o += (size_t)snprintf(out + o, n - o, "%stokens[T]", i ? ", " : "");
        } else {
            shape_c(s, sizeof s, v, rows_expr(e, nd->in[i], rb, sizeof rb));
            o += (size_t)snprintf(out + o, n - o, "%s%s", i ? ", " : "", s);
        }
    }
    shape_c(s, sizeof s, &ir->v[nd->out], rows_expr(e, nd->out, rb, sizeof rb));
    if (o < n) snprintf(out + o, n - o, " -> %s", s);
}

static void prof_entry(const emit_ctx *e, const cke_node *nd, int mode, int step) {
    const cke_ir *ir = e->p->ir;
    const cke_value *o = &ir->v[nd->out];
    cke_op_cost c;
    cke_plan_op_cost(e->p, nd, &c);
    char shape[512], ql[CKE_IR_NAME + 8] = "NULL", wl[CKE_IR_NAME + 16] = "NULL", cn[CKE_IR_NAME];
    prof_shape(shape, sizeof shape, e, nd);
    if (nd->op == CKE_OP_LINEAR && ir->v[nd->in[1]].layer >= 0) {
        int anyq = 0;
        if (wdtype_all(e->p, nd->in[1], &anyq) < 0) {
            const cke_value *w = &ir->v[nd->in[1]];
            cname(cn, sizeof cn, w->tied_to >= 0 ? &ir->v[w->tied_to] : w);
            snprintf(ql, sizeof ql, "Q_%s", cn);
        }
    }
    if (nd->op == CKE_OP_ATTENTION && layer_varies(ir, nd, LA_WINDOW)) {
        cname(cn, sizeof cn, o);
        snprintf(wl, sizeof wl, "L_%s_window", cn);
    }
    fprintf(e->f, "    {.mode = %d, .step = %d, .name = \"%s\", .per_layer = %d, .op = \"%s\",\n"
                  "     .shape = \"%s\",\n"
                  "     .qtype = %d, .qtype_l = %s, .w_rows = %lld, .w_cols = %lld, .w_extra = %.17g, .w_row = %.17g,\n"
                  "     .flops_row = %.17g, .flops_pair = %.17g, .act_row = %.17g, .act_const = %.17g, .kv_row = %.17g, .kv_key = %.17g,\n"
                  "     .window = %lld, .window_l = %s, .head_dim = %lld},\n",
            mode, step, o->layer >= 0 ? o->base : o->name, nd->section == CKE_SEC_LAYER, cke_op_names[nd->op], shape,
            c.qtype, ql, (long long)c.w_rows, (long long)c.w_cols, c.w_extra, c.w_row, c.flops_row, c.flops_pair, c.act_row,
            c.act_const, c.kv_row, c.kv_key, (long long)(nd->op == CKE_OP_ATTENTION ? nd->a.window : 0), wl,
            (long long)(nd->op == CKE_OP_ATTENTION ? nd->a.head_dim : 0));
}

int cke_codegen_train_prof_base(const cke_plan *p) {
    return p->prefill.n_sched + p->prefill.n_head + p->decode.n_sched + p->batch.n_sched;
}

/* "[R,64], attn_q[64,64] f32 -> [R,64]": a training op over R = batch x seq rows */
static void train_shape(char *out, size_t n, const cke_ir *ir, const cke_node *nd) {
    char s[64];
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < nd->n_in && o < n; i++) {
        const cke_value *v = &ir->v[nd->in[i]];
        if (v->kind == CKE_V_WEIGHT) shape_c(s, sizeof s, v, "");
        else if (v->kind == CKE_V_INPUT) snprintf(s, sizeof s, "[R]");
        else shape_c(s, sizeof s, v, "R");
        o += (size_t)snprintf(out + o, n - o, "%s%s%s%s", i ? ", " : "", v->kind == CKE_V_ACT ? "" : v->base, s,
                              v->kind == CKE_V_WEIGHT ? " f32" : "");
    }
    shape_c(s, sizeof s, &ir->v[nd->out], "R");
    if (o < n) snprintf(out + o, n - o, " -> %s", s);
}

/* A training op: forward (mode 2) as inference's op over R rows, attention within each sequence of
 * T (each row sees (T + 1) / 2 keys on average) and no KV cache; backward (mode 3) estimated as
 * twice the forward's FLOPs and activation bytes, its weights read and their gradients read and
 * written (3x). All weights are f32 in training. */
static void train_entry(FILE *f, const cke_train_plan *tp, const cke_node *nd, int mode, int step) {
    const cke_ir *ir = tp->p->ir;
    const cke_value *o = &ir->v[nd->out];
    cke_op_cost c;
    cke_plan_op_cost(tp->p, nd, &c);
    double keys = (double)(tp->T + 1) / 2;
    double flops = c.flops_row + c.flops_pair * keys, wmat = c.w_rows > 0 ? 4.0 * (double)c.w_rows * (double)c.w_cols : 0;
    double wx = wmat + c.w_extra, wr = c.w_row, act = c.act_row;
    if (mode == 3) flops *= 2, wx *= 3, wr *= 2, act *= 2;
    char shape[512];
    train_shape(shape, sizeof shape, ir, nd);
    fprintf(f, "    {.mode = %d, .step = %d, .name = \"%s\", .per_layer = %d, .op = \"%s\",\n"
               "     .shape = \"%s\", .qtype = -1, .w_extra = %.17g, .w_row = %.17g, .flops_row = %.17g, .act_row = %.17g,\n"
               "     .head_dim = %lld},\n",
            mode, step, o->layer >= 0 ? o->base : o->name, nd->section == CKE_SEC_LAYER, cke_op_names[nd->op], shape, wx, wr,
            flops, act, (long long)(nd->op == CKE_OP_ATTENTION ? nd->a.head_dim : 0));
}

/* train_run's ops in the order codegen_train.c times them: the forward (prologue, layer body,
 * epilogue), the loss, the backward in reverse; then AdamW. */
static void train_prof_entries(FILE *f, const cke_train_plan *tp) {
    const cke_ir *ir = tp->p->ir;
    int step = 0;
    static const cke_section fwd[3] = {CKE_SEC_PROLOGUE, CKE_SEC_LAYER, CKE_SEC_EPILOGUE};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < ir->nn; i++)
            if (ir->n[i].section == fwd[k] && (fwd[k] != CKE_SEC_LAYER || (ir->n[i].layer == 0 && cke_ir_node_ever(ir, &ir->n[i])))) train_entry(f, tp, &ir->n[i], 2, step++);
    double V = (double)ir->v[ir->n[ir->nn - 1].out].dims[1];
    fprintf(f, "    {.mode = 2, .step = %d, .name = \"loss\", .per_layer = 0, .op = \"xent\",\n"
               "     .shape = \"[R,%.0f] logits, targets[R] -> loss[R], dlogits[R,%.0f]\", .qtype = -1,\n"
               "     .flops_row = %.17g, .act_row = %.17g}, /* max, exp, sum, log, scale per logit */\n",
            step++, V, V, 5 * V, 8 * V);
    for (int k = 2; k >= 0; k--)
        for (int i = ir->nn - 1; i >= 0; i--)
            if (ir->n[i].section == fwd[k] && (fwd[k] != CKE_SEC_LAYER || (ir->n[i].layer == 0 && cke_ir_node_ever(ir, &ir->n[i])))) train_entry(f, tp, &ir->n[i], 3, step++);
    double params = 0;
    for (int i = 0; i < tp->p->nw; i++) params += (double)cke_value_numel(&ir->v[tp->p->w[i].value], 1);
    fprintf(f, "    {.mode = 4, .step = %d, .name = \"adamw\", .per_layer = 0, .op = \"adamw\",\n"
               "     .shape = \"%.0f parameters\", .qtype = -1,\n"
               "     .w_extra = %.17g, .flops_row = %.17g}, /* reads w, m, v, g, writes w, m, v; ~12 FLOPs each */\n",
            step, params, 28 * params, 12 * params);
}

/* prof_ops (model_abi.h, ckm_prof_op): prefill's schedule, its all-rows head, then decode's,
 * then decode_batch's (mode 5), in the order the PROF_END ids count them, then training's; and the hook setter. Only in the
 * profile build. */
static void emit_prof_table(const cke_plan *p, const cke_train_plan *tp, FILE *f) {
    fprintf(f, "#ifdef CKM_PROFILE\n/* ---- profile build: what each op computes and moves, per call (see ckm_prof_op) ---- */\n"
               "static const ckm_prof_op prof_ops[] = {\n");
    const cke_mode_plan *modes[3] = {&p->prefill, &p->decode, &p->batch};
    static const int mode_id[3] = {0, 1, 5}; /* 2-4 are training's */
    for (int mi = 0; mi < 3; mi++) {
        const cke_mode_plan *m = modes[mi];
        emit_ctx e = {.p = p, .m = m, .f = f, .pre = "PDB"[mi]};
        for (int i = 0; i < m->n_sched; i++) prof_entry(&e, &m->sched[i], mode_id[mi], i);
        e.head = 1;
        for (int k = 0; k < m->n_head; k++) prof_entry(&e, &m->head[k], mode_id[mi], m->n_sched + k);
    }
    if (tp) train_prof_entries(f, tp);
    fprintf(f, "};\n"
               "static void model_set_profile(ckm_model *m, ckm_prof_fn fn, void *ud) { m->prof = fn; m->prof_ud = ud; }\n"
               "#define PROF_N_OPS ((int)(sizeof prof_ops / sizeof prof_ops[0]))\n"
               "#define PROF_OPS prof_ops\n#define PROF_SET model_set_profile\n"
               "#else\n#define PROF_N_OPS 0\n#define PROF_OPS NULL\n#define PROF_SET NULL\n#endif\n\n");
}

/* The embedded model.c after the shared head (hyperparameters, rope tables, KV type, weight
 * offsets): the instance struct with only what the forward functions read, prefill and decode
 * from the same emitters, then the embedded shell (codegen_embed.c). */
static cke_status emit_embedded_rest(const cke_plan *p, const cke_codegen_opts *o, FILE *f, cke_err *err) {
    fputs("/* The one instance: every pointer into a static array (see the shell below). */\n"
          "typedef struct ckm_model {\n"
          "    const cke_ktable *kt;       /* the ref kernels this model calls */\n"
          "    const char *w;              /* weights payload: the const array, or the caller's blob */\n"
          "    char *arena;                /* activations: max of prefill's and decode's arenas */\n"
          "    char *scratch;              /* kernel workspace */\n"
          "    unsigned char *kv;          /* [2][N_LAYER][CTX] rows of KV_ROW bytes, K then V */\n"
          "    const float *rope_cs;       /* [ROPE_TABLES][CTX][ROPE_DIM/2][2] cos, sin: computed by the compiler */\n"
          "    int32_t *posbuf;            /* [PREFILL_T] */\n"
          "    const float *last_logits;   /* [VOCAB] */\n"
          "    int64_t pos;                /* tokens in the cache */\n"
          "    const char *err;            /* the last error, a constant string */\n"
          "} ckm_model;\n\n", f);
    emit_ctx e = {.p = p, .m = &p->prefill, .f = f, .pre = 'P'};
    emit_mode(&e);
    e.m = &p->decode;
    e.pre = 'D';
    emit_mode(&e);
    cke_status st = cke_codegen_emit_embed_shell(p, o, f, err);
    if (!st && ferror(f)) st = cke_fail(err, CKE_ERR_IO, "codegen: write error");
    return st;
}

cke_status cke_codegen_emit(const cke_plan *p, const cke_codegen_opts *o, FILE *f, cke_err *err) {
    const cke_ir *ir = p->ir;
    double vocab = 0;
    for (int i = 0; i < ir->nv; i++)
        if (!strcmp(ir->v[i].name, "logits")) vocab = (double)ir->v[i].dims[1];
    if (vocab <= 0) return cke_fail(err, CKE_ERR_FORMAT, "codegen: the graph has no [T, vocab] value named 'logits'");
    /* RoPE parameters: all rope nodes must agree (one cos/sin table) */
    /* RoPE: the compiler resolved every rope node's frequencies into ir->rope_freq (one table, or
     * two the layers choose from); the nodes must rotate the same number of dims */
    int64_t rot = 0;
    float theta = 0;
    for (int i = 0; i < ir->nn; i++)
        if (ir->n[i].op == CKE_OP_ROPE) {
            if (rot && rot != ir->n[i].a.rot) return cke_fail(err, CKE_ERR_UNSUPPORTED, "codegen: rope nodes rotate different dims");
            rot = ir->n[i].a.rot;
            if (!theta) theta = ir->n[i].a.theta;
        }
    if (rot > 0 && (!ir->rope_freq || ir->n_rope_freq != rot / 2))
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "codegen: the rope nodes' frequency table was not computed");
    if (o->embedded && p->canaries) return cke_fail(err, CKE_ERR_UNSUPPORTED, "codegen: the embedded build has no canaries");
    cke_status cst = check_layer_attrs(ir, err);
    if (cst) return cst;

    fprintf(f, "/* %s: model.c%s generated by cke from %s with the %s template (%s).\n"
               " * Do not edit: recompile the model. Every name is an IR value (see ir.json); every offset\n"
               " * is in layout.json and memory_map.txt. */\n",
            o->model_name, o->embedded ? " (embedded build: static buffers, one thread, no I/O)" : "", o->source_desc,
            ir->family, ir->template_path);
    static const char *const includes[2] = {
        "#include \"cke/kernels.h\"\n#include \"cke/model_abi.h\"\n\n#include <fcntl.h>\n#include <stdio.h>\n"
        "#include <omp.h>\n#include <stdlib.h>\n#include <string.h>\n#include <sys/mman.h>\n#include <sys/stat.h>\n#include <unistd.h>\n\n",
        /* embedded: the kernel sources copied beside it, no libc beyond string.h (and the kernels' math.h) */
        "#include \"kernels/kdecl.h\"\n#include \"model.h\"\n\n#include <string.h>\n\n"};
    fputs(includes[o->embedded != 0], f);
    fprintf(f, "/* ---- hyperparameters ---- */\n");
    for (int i = 0; i < ir->n_hp; i++) fprintf(f, "/* %-12s = %.9g */\n", ir->hp[i].name, ir->hp[i].value);
    fprintf(f, "#define N_LAYER %d\n#define VOCAB %lld\n#define CTX %lld\n#define KV_DIM %lld\n#define PREFILL_T %lld\n",
            ir->n_layer, (long long)vocab, (long long)p->ctx, (long long)p->kv_dim, (long long)p->prefill.T);
    fprintf(f, "#define ROPE_DIM %lld\n#define ROPE_THETA %.9g\n", (long long)rot, (double)theta);
    if (rot > 0) emit_rope_tables(ir, rot, f);
    else fprintf(f, "#define ROPE_TABLES 1 /* no rope: an unused table */\n#define ROPE_CS(l) (m->rope_cs)\n");
    fprintf(f, "#define TP_RANK %d /* tensor parallel: this model is rank TP_RANK's block of TP_SIZE */\n#define TP_SIZE %d\n",
            ir->tp_rank, ir->tp_size);
    fprintf(f, "#define MAX_THREADS %d\n#define LAYOUT_HASH 0x%016llxull\n", p->max_threads,
            (unsigned long long)cke_plan_layout_hash(p));
    fprintf(f, "#define WEIGHTS_HEADER %zuu\n#define WEIGHTS_BYTES %zuu\n#define KV_BYTES %zuu /* one slot (sequence) */\n",
            p->weights_header, p->weights_bytes, p->kv_bytes);
    fprintf(f, "#define BATCH_T %lld /* decode_batch: rows per forward */\n", (long long)p->batch.T);
    emit_kv_type(f, p);

    /* weights: globals as constants, per-layer tensors as arrays over layers */
    fprintf(f, "/* ---- weights: byte offsets into weights.bin's payload, in the order the forward pass reads them ---- */\n");
    char c[CKE_IR_NAME], s[64];
    for (int i = 0; i < p->nw; i++) {
        const cke_value *v = &ir->v[p->w[i].value];
        if (v->layer >= 0) continue;
        cname(c, sizeof c, v);
        shape_c(s, sizeof s, v, "");
        fprintf(f, "#define W_%-14s %10zuu /* %s %s */\n", c, p->w[i].offset, s, qname(p->w[i].dtype));
        if (p->w[i].dtype) fprintf(f, "#define Q_%-14s %10d /* ggml type id: %s blocks */\n", c, p->w[i].dtype, qname(p->w[i].dtype));
    }
    for (int i = 0; i < p->nw; i++) {
        const cke_value *v = &ir->v[p->w[i].value];
        if (v->layer < 0) continue;
        int dup = 0; /* one array per layer weight, at its first layer holding bytes (a layer kind may skip layer 0) */
        for (int j = 0; j < i && !dup; j++) dup = ir->v[p->w[j].value].layer >= 0 && !strcmp(ir->v[p->w[j].value].base, v->base);
        if (dup) continue;
        cname(c, sizeof c, v);
        shape_c(s, sizeof s, v, "");
        int anyq = 0, dt = wdtype_all(p, p->w[i].value, &anyq);
        if (anyq) { /* per-layer stored format (ggml type ids; 0 = f32) */
            fprintf(f, "static const int Q_%s[N_LAYER] = { /* %s */\n   ", c, dt >= 0 ? qname(dt) : "formats differ by layer");
            for (int l = 0; l < ir->n_layer; l++) {
                char nm[CKE_IR_NAME + 16];
                snprintf(nm, sizeof nm, "l%d.%s", l, v->base);
                fprintf(f, " %d%s", cke_plan_wdtype(p, cke_ir_find(ir, nm)), l + 1 < ir->n_layer ? "," : "");
                if (l % 16 == 15 && l + 1 < ir->n_layer) fprintf(f, "\n   ");
            }
            fprintf(f, "};\n");
        }
        fprintf(f, "static const size_t W_%s[N_LAYER] = { /* %s %s */\n   ", c, s, dt >= 0 ? qname(dt) : "mixed");
        for (int l = 0; l < ir->n_layer; l++) {
            char nm[CKE_IR_NAME];
            snprintf(nm, sizeof nm, "l%d.%s", l, v->base);
            int vi = cke_ir_find(ir, nm);
            size_t off = 0; /* 0 also for a layer whose kind has no such tensor (never read there) */
            for (int k = 0; k < p->nw; k++)
                if (p->w[k].value == vi) off = p->w[k].offset;
            fprintf(f, " %zu%s", off, l + 1 < ir->n_layer ? "," : "");
            if (l % 8 == 7 && l + 1 < ir->n_layer) fprintf(f, "\n   ");
        }
        fprintf(f, "};\n");
    }
    emit_layer_attrs(ir, f);
    /* a weight tied to another (output -> tok_embd) reads its bytes: no constant of its own */
    fprintf(f, "\n#define WT(off) ((const float *)(m->w + (off)))\n");    fprintf(f, "#define WQ(off) ((const void *)(m->w + (off))) /* raw blocks of a Q_ format */\n");
    if (o->embedded) {
        fputs("/* embedded: one thread; no profiling or tracing hooks */\n#define NTH(work) 1\n#define PROF_DECL ((void)0)\n"
              "#define PROF_BEGIN() ((void)0)\n#define PROF_END(id, layer, rows) ((void)0)\n"
              "#define TRACE(name, layer, p, rows, cols) ((void)0)\n\n", f);
        return emit_embedded_rest(p, o, f, err);
    }
    fprintf(f, "/* Threads for an op doing `work` multiply-adds: below ~64K a parallel region costs more than it saves. */\n"
               "#define NTH(work) ((work) >= 65536 ? m->nth : 1)\n");
    fprintf(f, "/* Slot s's K and V cache of layer l (decode_batch): slot s's region starts s x KV_BYTES in. */\n"
               "#define SLOT_K(s, l) (m->kv_all + (size_t)(s) * KV_BYTES + (size_t)(l) * CTX * KV_ROW)\n"
               "#define SLOT_V(s, l) (m->kv_all + (size_t)(s) * KV_BYTES + ((size_t)N_LAYER + (l)) * CTX * KV_ROW)\n");
    fputs("/* Profile build (-DCKM_PROFILE: model_prof.so, built by `cke profile`): every op timed on the\n"
          " * calling thread and reported to the hook with its prof_ops index, layer and rows. Without it\n"
          " * the macros are empty: model.so has no timing code. */\n"
          "#ifdef CKM_PROFILE\n"
          "#define PROF_DECL double prof_t0 = 0; (void)prof_t0\n"
          "#define PROF_BEGIN() (prof_t0 = m->prof ? omp_get_wtime() : 0)\n"
          "#define PROF_END(id, layer, rows) \\\n"
          "    do { if (m->prof) m->prof(m->prof_ud, id, layer, -1, rows, pos0, prof_t0, omp_get_wtime()); } while (0)\n"
          "#define PROF_TH(stmt) stmt /* a parallel region of model.c: each thread's own interval */\n"
          "#define PROF_THREADS(id, th, n) \\\n"
          "    do { for (int i_ = 0; m->prof && i_ < (n); i_++) m->prof(m->prof_ud, id, -1, i_, 0, 0, th[i_][0], th[i_][1]); } while (0)\n"
          "#else\n"
          "#define PROF_DECL ((void)0)\n"
          "#define PROF_BEGIN() ((void)0)\n"
          "#define PROF_END(id, layer, rows) ((void)0)\n"
          "#define PROF_TH(stmt)\n"
          "#define PROF_THREADS(id, th, n) ((void)0)\n"
          "#endif\n", f);
    fprintf(f, "#define TRACE(name, layer, p, rows, cols) \\\n"
               "    do { if (m->trace) m->trace(m->trace_ud, name, layer, pos0 + T - (rows), p, rows, cols); } while (0)\n\n");

    fprintf(f, "/* tensor parallel: the partial sums of a row-parallel linear, summed over the ranks by the caller's\n"
               " * collective (set_allreduce); a failure (or none set) makes the call return -1, and the rest of\n"
               " * the forward skips its collectives (each would wait for the same missing rank) */\n"
               "#define TP_ALLREDUCE(out, in, n) \\\n"
               "    do { if (!m->tp_bad && (!m->tp_fn || m->tp_fn(m->tp_ud, out, in, n))) tp_fail(m); } while (0)\n\n");
    fprintf(f, "typedef struct ckm_train ckm_train;\nstatic void train_free(ckm_model *m);\n\n");
    fprintf(f, "struct ckm_model {\n"
               "    const cke_ktable *kt;  /* kernels of this CPU (or CKE_ISA) */\n"
               "    int nth;               /* threads, <= MAX_THREADS (the scratch is planned for that many) */\n"
               "    void *map;             /* weights.bin mapping */\n"
               "    char *wcopy;           /* CKE_WEIGHTS=copy: the payload in huge-page memory (else NULL) */\n"
               "    size_t map_len;\n"
               "    const char *w;         /* weights payload */\n"
               "    char *arena;           /* activations: max of the modes' arenas */\n"
               "    char *scratch;         /* kernel workspace */\n"
               "    unsigned char *kv;     /* the slot prefill/decode run on: [2][N_LAYER][CTX] rows of KV_ROW bytes, K then V */\n"
               "    unsigned char *kv_all; /* [n_slots] such regions, KV_BYTES apart */\n"
               "    int n_slots;\n"
               "    int64_t *slot_pos;     /* [n_slots] tokens in each slot's context */\n"
               "    unsigned char *slot_mark; /* [n_slots] decode_batch's duplicate check */\n"
               "    float *rope_cs;        /* [CTX][ROPE_DIM/2][2] cos, sin */\n"
               "    int32_t *posbuf;       /* [max(PREFILL_T, BATCH_T)] */\n"
               "    const float *last_logits; /* [VOCAB] */\n"
               "    int64_t pos;           /* of the slot prefill/decode run on (slot_pos[] holds every slot's) */\n"
               "    ckm_trace_fn trace;\n"
               "    void *trace_ud;\n"
               "    ckm_prof_fn prof;      /* profile build: the hook, else unused */\n"
               "    void *prof_ud;\n"
               "    char err[256];\n"
               "    ckm_train *train;      /* training state, NULL until train_init */\n"
               "    int canary_bad;        /* debug build: a canary was overwritten (err says where) */\n"
               "    ckm_allreduce_fn tp_fn; /* tensor parallel: the collective (TP_SIZE > 1) */\n"
               "    void *tp_ud;\n"
               "    int tp_bad;            /* a collective failed during the call (err says so) */\n"
               "};\n\n"
               "static void tp_fail(ckm_model *m) {\n"
               "    if (!m->tp_bad)\n"
               "        snprintf(m->err, sizeof m->err, \"tensor parallel rank %%d of %%d: %%s\", TP_RANK, TP_SIZE,\n"
               "                 m->tp_fn ? \"the allreduce failed\" : \"no allreduce was set (set_allreduce)\");\n"
               "    m->tp_bad = 1;\n"
               "}\n\n");

    if (p->canaries)
        fputs("/* ---- debug build: a 64-byte canary after every activation, set before the op that writes it,\n"
              " * checked for every live activation after every op ---- */\n"
              "typedef struct {\n"
              "    const char *name;\n"
              "    size_t offset, row_bytes; /* the canary sits right after the rows in use */\n"
              "    int64_t rows;             /* 0: the call's T rows */\n"
              "    int first, last;          /* schedule steps it must survive */\n"
              "} ckm_canary;\n"
              "#define CANARY_WORD 0xC4A4A7E5u\n"
              "static size_t canary_at(const ckm_canary *c, int64_t T) { return c->offset + (size_t)(c->rows ? c->rows : T) * c->row_bytes; }\n"
              "static void canary_set(char *A, const ckm_canary *c, int64_t T) {\n"
              "    const uint32_t w = CANARY_WORD;\n"
              "    for (int i = 0; i < 16; i++) memcpy(A + canary_at(c, T) + 4 * i, &w, 4);\n"
              "}\n"
              "static void canary_check(ckm_model *m, const ckm_canary *c, int n, int64_t T, int step, const char *op, int layer) {\n"
              "    for (int i = 0; i < n && !m->canary_bad; i++) {\n"
              "        if (step < c[i].first || step > c[i].last) continue;\n"
              "        for (int k = 0; k < 16; k++) {\n"
              "            uint32_t w;\n"
              "            memcpy(&w, m->arena + canary_at(&c[i], T) + 4 * k, 4);\n"
              "            if (w == CANARY_WORD) continue;\n"
              "            snprintf(m->err, sizeof m->err, \"canary after %s overwritten: found after step %d (%s) of layer %d\",\n"
              "                     c[i].name, step, op, layer);\n"
              "            m->canary_bad = 1;\n"
              "            break;\n"
              "        }\n"
              "    }\n"
              "}\n\n",
              f);
    emit_ctx e = {.p = p, .m = &p->prefill, .f = f, .pre = 'P'};
    emit_mode(&e);
    e.m = &p->decode;
    e.pre = 'D';
    e.prof_id = p->prefill.n_sched + p->prefill.n_head;
    emit_mode(&e);
    e.m = &p->batch;
    e.pre = 'B';
    e.prof_id += p->decode.n_sched;
    emit_mode(&e);
    emit_prof_table(p, o->train, f);

    fputs(
        "/* ---- runtime: load, run, free ---- */\n"
        "#define MAX2(a, b) ((a) > (b) ? (a) : (b))\n"
        "#define ARENA_BYTES MAX2(MAX2(P_ARENA, D_ARENA), B_ARENA)\n"
        "#define SCRATCH_BYTES MAX2(MAX2(P_SCRATCH, D_SCRATCH), B_SCRATCH)\n\n"
        "/* Large buffers come from anonymous mappings with transparent huge pages requested:\n"
        " * with 4 KiB pages one core reads only about 60% of the bandwidth it gets with 2 MiB pages. */\n"
        "static void *big_alloc(size_t n) {\n"
        "    if (n == 0) n = 64;\n"
        "    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n"
        "    if (p == MAP_FAILED) return NULL;\n"
        "    madvise(p, n, MADV_HUGEPAGE);\n"
        "    return p;\n"
        "}\n"
        "static void big_free(void *p, size_t n) { if (p) munmap(p, n ? n : 64); }\n\n"
        "static void model_free(ckm_model *m) {\n"
        "    if (!m) return;\n"
        "    train_free(m);\n"
        "    if (m->map) munmap(m->map, m->map_len);\n"
        "    big_free(m->wcopy, WEIGHTS_BYTES);\n"
        "    big_free(m->arena, ARENA_BYTES);\n"
        "    big_free(m->scratch, SCRATCH_BYTES);\n"
        "    big_free(m->kv_all, KV_BYTES * (size_t)m->n_slots);\n"
        "    free(m->slot_pos);\n"
        "    free(m->slot_mark);\n"
        "    free(m->rope_cs);\n"
        "    free(m->posbuf);\n"
        "    free(m);\n"
        "}\n\n"
        "/* An instance whose KV cache holds n_slots sequences of CTX positions (open: one). */\n"
        "static ckm_model *model_open_slots(const char *path, int nthreads, int n_slots, char *err, size_t errlen) {\n"
        "    if (n_slots < 1 || (size_t)n_slots > SIZE_MAX / 2 / KV_BYTES) {\n"
        "        snprintf(err, errlen, \"%d KV slots: %s\", n_slots, n_slots < 1 ? \"need at least 1\" : \"too many to address\");\n"
        "        return NULL;\n"
        "    }\n"
        "    ckm_model *m = calloc(1, sizeof *m);\n"
        "    if (!m) { snprintf(err, errlen, \"out of memory\"); return NULL; }\n"
        "    m->n_slots = n_slots;\n"
        "    cke_kernels_init();\n"
        "    m->kt = cke_k();\n"
        "    m->nth = nthreads < 1 ? 1 : nthreads > MAX_THREADS ? MAX_THREADS : nthreads;\n"
        "    int fd = open(path, O_RDONLY);\n"
        "    if (fd < 0) { snprintf(err, errlen, \"cannot open weights %s\", path); model_free(m); return NULL; }\n"
        "    struct stat st;\n"
        "    if (fstat(fd, &st) != 0 || (size_t)st.st_size != WEIGHTS_HEADER + WEIGHTS_BYTES) {\n"
        "        snprintf(err, errlen, \"weights %s: %lld bytes, this model needs %zu (truncated or not this model's file)\",\n"
        "                 path, (long long)st.st_size, (size_t)(WEIGHTS_HEADER + WEIGHTS_BYTES));\n"
        "        close(fd); model_free(m); return NULL;\n"
        "    }\n"
        "    m->map_len = (size_t)st.st_size;\n"
        "    void *map = mmap(NULL, m->map_len, PROT_READ, MAP_PRIVATE, fd, 0);\n"
        "    close(fd);\n"
        "    if (map == MAP_FAILED) { snprintf(err, errlen, \"cannot map %s\", path); model_free(m); return NULL; }\n"
        "    m->map = map;\n"
        "    madvise(map, m->map_len, MADV_WILLNEED);\n"
        "    const unsigned char *h = map;\n"
        "    uint64_t hash;\n"
        "    memcpy(&hash, h + 8, 8);\n"
        "    if (memcmp(h, \"CKEWGT01\", 8) != 0 || hash != LAYOUT_HASH) {\n"
        "        snprintf(err, errlen, \"weights %s: not a cke weights file for this model (layout hash differs)\", path);\n"
        "        model_free(m); return NULL;\n"
        "    }\n"
        "    m->w = (const char *)map + WEIGHTS_HEADER;\n"
        "    /* CKE_WEIGHTS=copy: weights copied into anonymous memory with huge pages requested (no TLB\n"
        "     * misses while decode streams them); mmap (default): the page cache, shared, nothing copied.\n"
        "     * cke bench --weights both measures the two; on Zen 4 decode ran within noise of each other. */\n"
        "    const char *wm = getenv(\"CKE_WEIGHTS\");\n"
        "    if (wm && !strcmp(wm, \"copy\")) {\n"
        "        m->wcopy = big_alloc(WEIGHTS_BYTES);\n"
        "        if (!m->wcopy) { snprintf(err, errlen, \"out of memory copying the weights\"); model_free(m); return NULL; }\n"
        "        memcpy(m->wcopy, m->w, WEIGHTS_BYTES);\n"
        "        munmap(m->map, m->map_len);\n"
        "        m->map = NULL;\n"
        "        m->w = m->wcopy;\n"
        "    } else if (wm && *wm && strcmp(wm, \"mmap\")) {\n"
        "        snprintf(err, errlen, \"CKE_WEIGHTS=%s: expected copy or mmap\", wm); model_free(m); return NULL;\n"
        "    }\n"
        "    m->arena = big_alloc(ARENA_BYTES);\n"
        "    m->scratch = big_alloc(SCRATCH_BYTES);\n"
        "    m->kv_all = m->kv = big_alloc(KV_BYTES * (size_t)n_slots);\n"
        "    m->slot_pos = calloc((size_t)n_slots, sizeof(int64_t));\n"
        "    m->slot_mark = calloc((size_t)n_slots, 1);\n"
        "    m->rope_cs = malloc(sizeof(float) * (size_t)ROPE_TABLES * CTX * (ROPE_DIM > 0 ? ROPE_DIM : 2));\n"
        "    m->posbuf = malloc(sizeof(int32_t) * MAX2(PREFILL_T, BATCH_T));\n"
        "    if (!m->arena || !m->scratch || !m->kv || !m->slot_pos || !m->slot_mark || !m->rope_cs || !m->posbuf) {\n"
        "        snprintf(err, errlen, \"out of memory\"); model_free(m); return NULL;\n"
        "    }\n"

        "#ifdef ROPE_TABLE\n"
        "    for (int t = 0; t < ROPE_TABLES; t++) {\n"
        "        float *cs = m->rope_cs + (size_t)t * CTX * ROPE_DIM;\n"
        "        cke_rope_table(cs, ROPE_FREQ[t], CTX, ROPE_DIM);\n"
        "        if (ROPE_ATTN_FACTOR[t] != 1.0f)\n"
        "            for (size_t i = 0; i < (size_t)CTX * ROPE_DIM; i++) cs[i] *= ROPE_ATTN_FACTOR[t];\n"
        "    }\n"
        "#endif\n"
        "    return m;\n"
        "}\n\n"
        "static ckm_model *model_open(const char *path, int nthreads, char *err, size_t errlen) {\n"
        "    return model_open_slots(path, nthreads, 1, err, errlen);\n"
        "}\n\n"
        "/* Slots: prefill and decode run on m->pos and m->kv, the slot entered last; slot_pos[] holds\n"
        " * every slot's length. The single-sequence calls (prefill, decode, pos, reset) are slot 0's. */\n"
        "static int slot_enter(ckm_model *m, int s) {\n"
        "    if (s < 0 || s >= m->n_slots) {\n"
        "        snprintf(m->err, sizeof m->err, \"slot %d out of range [0, %d)\", s, m->n_slots);\n"
        "        return -1;\n"
        "    }\n"
        "    m->pos = m->slot_pos[s];\n"
        "    m->kv = m->kv_all + (size_t)s * KV_BYTES;\n"
        "    return 0;\n"
        "}\n\n"
        "static int check_tokens(ckm_model *m, const int32_t *tok, int64_t n) {\n"
        "    if (n < 0 || m->pos + n > CTX) {\n"
        "        snprintf(m->err, sizeof m->err, \"%lld tokens at position %lld exceed the context of %d\", (long long)n,\n"
        "                 (long long)m->pos, CTX);\n"
        "        return -1;\n"
        "    }\n"
        "    for (int64_t i = 0; i < n; i++)\n"
        "        if (tok[i] < 0 || tok[i] >= VOCAB) {\n"
        "            snprintf(m->err, sizeof m->err, \"token id %d out of range [0, %d)\", tok[i], VOCAB);\n"
        "            return -1;\n"
        "        }\n"
        "    return 0;\n"
        "}\n\n"
        "static int run_prefill(ckm_model *m, const int32_t *tok, int64_t n) {\n"
        "    if (check_tokens(m, tok, n)) return -1;\n"
        "    for (int64_t i = 0; i < n;) {\n"
        "        int64_t t = n - i < PREFILL_T ? n - i : PREFILL_T;\n"
        "        if (t == 1) forward_decode(m, tok + i, 1);\n"
        "        else forward_prefill(m, tok + i, t, NULL);\n"
        "        m->pos += t;\n"
        "        i += t;\n"
        "    }\n"
        "    return m->canary_bad || m->tp_bad ? -1 : 0;\n"
        "}\n\n"
        "/* Like prefill, and every position's logits into out [n, VOCAB] (row i predicts token i + 1). */\n"
        "static int model_slot_prefill(ckm_model *m, int slot, const int32_t *tok, int64_t n) {\n"
        "    if (slot_enter(m, slot)) return -1;\n"
        "    int rc = run_prefill(m, tok, n);\n"
        "    m->slot_pos[slot] = m->pos;\n"
        "    return rc;\n"
        "}\n\n"
        "static int model_prefill(ckm_model *m, const int32_t *tok, int64_t n) { return model_slot_prefill(m, 0, tok, n); }\n\n"
        "static int model_prefill_all(ckm_model *m, const int32_t *tok, int64_t n, float *out) {\n"
        "    slot_enter(m, 0);\n"
        "    if (check_tokens(m, tok, n)) return -1;\n"
        "    for (int64_t i = 0; i < n;) {\n"
        "        int64_t t = n - i < PREFILL_T ? n - i : PREFILL_T;\n"
        "        if (t == 1) {\n"
        "            forward_decode(m, tok + i, 1);\n"
        "            memcpy(out + i * VOCAB, m->last_logits, VOCAB * sizeof(float));\n"
        "        } else {\n"
        "            forward_prefill(m, tok + i, t, out + i * VOCAB);\n"
        "        }\n"
        "        m->pos += t;\n"
        "        m->slot_pos[0] = m->pos;\n"
        "        i += t;\n"
        "    }\n"
        "    return m->canary_bad || m->tp_bad ? -1 : 0;\n"
        "}\n\n"
        "static int model_decode(ckm_model *m, int32_t token) {\n"
        "    slot_enter(m, 0);\n"
        "    if (check_tokens(m, &token, 1)) return -1;\n"
        "    forward_decode(m, &token, 1);\n"
        "    m->slot_pos[0] = ++m->pos;\n"
        "    return m->canary_bad || m->tp_bad ? -1 : 0;\n"
        "}\n\n"
        "/* Checks every row before anything runs: a bad row appends nothing to any slot. */\n"
        "static int check_batch(ckm_model *m, int64_t n, const int32_t *tok, const int32_t *slots, const float *out) {\n"
        "    if (n < 1 || n > m->n_slots || !tok || !slots || !out) {\n"
        "        snprintf(m->err, sizeof m->err, \"decode_batch: %lld rows for %d slots (need 1..%d, and tokens, slots, logits)\",\n"
        "                 (long long)n, m->n_slots, m->n_slots);\n"
        "        return -1;\n"
        "    }\n"
        "    int bad = 0;\n"
        "    for (int64_t i = 0; i < n && !bad; i++) {\n"
        "        int s = slots[i];\n"
        "        bad = 1;\n"
        "        if (s < 0 || s >= m->n_slots)\n"
        "            snprintf(m->err, sizeof m->err, \"decode_batch row %lld: slot %d out of range [0, %d)\", (long long)i, s, m->n_slots);\n"
        "        else if (m->slot_mark[s])\n"
        "            snprintf(m->err, sizeof m->err, \"decode_batch row %lld: slot %d appears twice\", (long long)i, s);\n"
        "        else if (m->slot_pos[s] >= CTX)\n"
        "            snprintf(m->err, sizeof m->err, \"decode_batch row %lld: slot %d is full (context %d)\", (long long)i, s, CTX);\n"
        "        else if (tok[i] < 0 || tok[i] >= VOCAB)\n"
        "            snprintf(m->err, sizeof m->err, \"decode_batch row %lld: token id %d out of range [0, %d)\", (long long)i, tok[i], VOCAB);\n"
        "        else\n"
        "            m->slot_mark[s] = 1, bad = 0;\n"
        "    }\n"
        "    for (int64_t i = 0; i < n; i++)\n"
        "        if (slots[i] >= 0 && slots[i] < m->n_slots) m->slot_mark[slots[i]] = 0;\n"
        "    return bad ? -1 : 0;\n"
        "}\n\n"
        "/* Appends tok[i] to slot slots[i] for every row, in forwards of up to BATCH_T rows; out [n, VOCAB]. */\n"
        "static int model_decode_batch(ckm_model *m, int64_t n, const int32_t *tok, const int32_t *slots, float *out) {\n"
        "    if (check_batch(m, n, tok, slots, out)) return -1;\n"
        "    for (int64_t i = 0; i < n;) {\n"
        "        int64_t t = n - i < BATCH_T ? n - i : BATCH_T;\n"
        "        forward_decode_batch(m, tok + i, t, slots + i);\n"
        "        memcpy(out + i * VOCAB, m->last_logits, (size_t)t * VOCAB * sizeof(float));\n"
        "        m->last_logits += (t - 1) * VOCAB; /* logits(): the last row */\n"
        "        for (int64_t r = i; r < i + t; r++) m->slot_pos[slots[r]]++;\n"
        "        i += t;\n"
        "    }\n"
        "    m->pos = m->slot_pos[0];\n"
        "    return m->canary_bad || m->tp_bad ? -1 : 0;\n"
        "}\n\n"
        "static int model_slot_reset(ckm_model *m, int slot) {\n"
        "    if (slot_enter(m, slot)) return -1;\n"
        "    m->slot_pos[slot] = 0;\n"
        "    return 0;\n"
        "}\n"
        "static int64_t model_slot_pos(const ckm_model *m, int slot) {\n"
        "    return slot >= 0 && slot < m->n_slots ? m->slot_pos[slot] : -1;\n"
        "}\n"
        "/* Keeps the first n positions (a shared prompt prefix); the rest is overwritten as it refills. */\n"
        "static int model_slot_truncate(ckm_model *m, int slot, int64_t n) {\n"
        "    if (slot_enter(m, slot)) return -1;\n"
        "    if (n < 0 || n > m->slot_pos[slot]) {\n"
        "        snprintf(m->err, sizeof m->err, \"slot %d holds %lld positions: cannot keep %lld\", slot,\n"
        "                 (long long)m->slot_pos[slot], (long long)n);\n"
        "        return -1;\n"
        "    }\n"
        "    m->slot_pos[slot] = n;\n"
        "    return 0;\n"
        "}\n\n"
        "static const float *model_logits(const ckm_model *m) { return m->last_logits; }\n"
        "static int64_t model_pos(const ckm_model *m) { return m->slot_pos[0]; }\n"
        "static void model_reset(ckm_model *m) { m->pos = m->slot_pos[0] = 0; m->last_logits = NULL; }\n"
        "static void model_set_trace(ckm_model *m, ckm_trace_fn fn, void *ud) { m->trace = fn; m->trace_ud = ud; }\n"
        "static const char *model_last_error(const ckm_model *m) { return m->err; }\n"
        "static void model_set_allreduce(ckm_model *m, ckm_allreduce_fn fn, void *ud) { m->tp_fn = fn; m->tp_ud = ud; m->tp_bad = 0; }\n\n",
        f);
    cke_status tst = cke_codegen_emit_train_glue(p, o->train, f, err);
    if (tst) return tst;
    fprintf(f,
            "static const ckm_api api = {\n"
            "    .abi_version = CKM_ABI_VERSION,\n"
            "    .family = \"%s\",\n"
            "    .model_name = \"%s\",\n"
            "    .vocab = VOCAB,\n"
            "    .ctx = CTX,\n"
            "    .prefill_chunk = PREFILL_T,\n"
            "    .layout_hash = LAYOUT_HASH,\n"
            "    .open = model_open,\n"
            "    .free = model_free,\n"
            "    .prefill = model_prefill,\n"
            "    .decode = model_decode,\n"
            "    .logits = model_logits,\n"
            "    .pos = model_pos,\n"
            "    .reset = model_reset,\n"
            "    .set_trace = model_set_trace,\n"
            "    .last_error = model_last_error,\n"
            "    .train_batch = TRAIN_B,\n"
            "    .train_seq = TRAIN_T,\n"
            "    .n_tensors = (int)(sizeof model_tensors / sizeof model_tensors[0]),\n"
            "    .tensors = model_tensors,\n"
            "    .train_init = TRAIN_FN(model_train_init),\n"
            "    .train_run = TRAIN_FN(train_run),\n"
            "    .zero_grad = TRAIN_FN(model_zero_grad),\n"
            "    .grad_sumsq = TRAIN_FN(train_grad_sumsq),\n"
            "    .adamw = TRAIN_FN(train_adamw),\n"
            "    .state = TRAIN_FN(model_state),\n"
            "    .prefill_all = model_prefill_all,\n"
            "    .n_prof_ops = PROF_N_OPS,\n"
            "    .prof_ops = PROF_OPS,\n"
            "    .set_profile = PROF_SET,\n"
            "    .batch_rows = BATCH_T,\n"
            "    .open_slots = model_open_slots,\n"
            "    .slot_prefill = model_slot_prefill,\n"
            "    .slot_reset = model_slot_reset,\n"
            "    .slot_pos = model_slot_pos,\n"
            "    .slot_truncate = model_slot_truncate,\n"
            "    .decode_batch = model_decode_batch,\n"
            "    .tp_rank = TP_RANK,\n"
            "    .tp_size = TP_SIZE,\n"
            "    .set_allreduce = model_set_allreduce,\n"
            "    .set_grad_hook = TRAIN_FN(model_set_grad_hook),\n"
            "};\n\n"
            "const ckm_api *ckm_api_get(void) { return &api; }\n",
            ir->family, o->model_name);
    if (ferror(f)) return cke_fail(err, CKE_ERR_IO, "codegen: write error");
    return CKE_OK;
}

/* ------------------------------------------------------------------ weights.bin */

cke_status cke_weights_write(const cke_plan *p, const char *path, cke_weight_fetch fetch, cke_weight_fetch_raw fetch_raw,
                             void *ud, cke_err *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", tmp);
    unsigned char *hdr = calloc(1, p->weights_header);
    if (!hdr) { fclose(f); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    uint64_t hash = cke_plan_layout_hash(p), bytes = p->weights_bytes, hb = p->weights_header;
    uint32_t nt = (uint32_t)p->nw;
    memcpy(hdr, "CKEWGT01", 8);
    memcpy(hdr + 8, &hash, 8);
    memcpy(hdr + 16, &bytes, 8);
    memcpy(hdr + 24, &hb, 8);
    memcpy(hdr + 32, &nt, 4);
    cke_status st = CKE_OK;
    if (fwrite(hdr, 1, p->weights_header, f) != p->weights_header) st = cke_fail(err, CKE_ERR_IO, "write error on %s", tmp);
    free(hdr);
    size_t at = 0;
    static const unsigned char zeros[CKE_ALIGN];
    for (int i = 0; !st && i < p->nw; i++) {
        const cke_value *v = &p->ir->v[p->w[i].value];
        while (!st && at < p->w[i].offset) {
            size_t z = p->w[i].offset - at < sizeof zeros ? p->w[i].offset - at : sizeof zeros;
            if (fwrite(zeros, 1, z, f) != z) st = cke_fail(err, CKE_ERR_IO, "write error on %s", tmp);
            at += z;
        }
        if (p->w[i].dtype) { /* raw blocks in the file's format */
            void *raw = malloc(p->w[i].size);
            if (!raw) { st = cke_fail(err, CKE_ERR_NOMEM, "out of memory for tensor %s", v->name); break; }
            st = fetch_raw(ud, v->name, p->w[i].dtype, raw, p->w[i].size, err);
            if (!st && fwrite(raw, 1, p->w[i].size, f) != p->w[i].size) st = cke_fail(err, CKE_ERR_IO, "write error on %s", tmp);
            at += p->w[i].size;
            free(raw);
            continue;
        }
        int64_t numel = cke_value_numel(v, 1);
        float *buf = malloc((size_t)numel * sizeof(float));
        if (!buf) { st = cke_fail(err, CKE_ERR_NOMEM, "out of memory for tensor %s", v->name); break; }
        st = fetch(ud, v->name, buf, numel, err);
        if (!st && fwrite(buf, sizeof(float), (size_t)numel, f) != (size_t)numel)
            st = cke_fail(err, CKE_ERR_IO, "write error on %s", tmp);
        at += (size_t)numel * sizeof(float);
        free(buf);
    }
    while (!st && at < p->weights_bytes) {
        size_t z = p->weights_bytes - at < sizeof zeros ? p->weights_bytes - at : sizeof zeros;
        if (fwrite(zeros, 1, z, f) != z) st = cke_fail(err, CKE_ERR_IO, "write error on %s", tmp);
        at += z;
    }
    if (fclose(f) != 0 && !st) st = cke_fail(err, CKE_ERR_IO, "error closing %s", tmp);
    if (!st && rename(tmp, path) != 0) st = cke_fail(err, CKE_ERR_IO, "cannot rename %s to %s", tmp, path);
    if (st) remove(tmp);
    return st;
}

/* ------------------------------------------------------------------ compile */

/* The compiler runs from an argv array (posix_spawnp), never through a shell: no path, however
 * named (quotes, spaces, $(...), newlines), is ever interpreted. CC may name a command with
 * arguments ("ccache gcc"): it is split at blanks, without quoting rules. */
#define CC_MAX_WORDS 16

/* A file argument that begins with '-' would read as an option: "./-x". */
static const char *file_arg(char *buf, size_t n, const char *path) {
    if (path[0] != '-') return path;
    snprintf(buf, n, "./%s", path);
    return buf;
}

/* The end of the compiler's log, flattened to one line, for the error message. */
static void log_tail(const char *path, char *out, size_t n) {
    out[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char buf[320];
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long from = len > (long)sizeof buf - 1 ? len - (long)sizeof buf + 1 : 0;
    size_t got = len >= 0 && fseek(f, from, SEEK_SET) == 0 ? fread(buf, 1, sizeof buf - 1, f) : 0;
    fclose(f);
    while (got && (buf[got - 1] == '\n' || buf[got - 1] == ' ')) got--;
    buf[got] = 0;
    for (size_t i = 0; i < got; i++)
        if (buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r') buf[i] = ' ';
    snprintf(out, n, "%s%s", from > 0 ? "..." : "", buf);
}

static void nap_ms(long ms) { nanosleep(&(struct timespec){0, ms * 1000 * 1000}, NULL); }

/* Waits for the compiler; when *cancel becomes set, stops its whole process group (cc runs cc1,
 * as, ld as children): SIGTERM first, so gcc deletes its temporary files, SIGKILL after a second.
 * Polls, so a signal that lands between the check and the wait cannot be missed.
 * 0: exited with status *ws; 1: cancelled; -1: wait failed. */
static int wait_child(pid_t pid, const volatile sig_atomic_t *cancel, int *ws) {
    for (;;) {
        pid_t w = waitpid(pid, ws, cancel ? WNOHANG : 0);
        if (w == pid) return 0;
        if (w < 0 && errno != EINTR) return -1;
        if (cancel && *cancel) {
            kill(-pid, SIGTERM);
            for (int i = 0; i < 50 && (w = waitpid(pid, ws, WNOHANG)) == 0; i++) nap_ms(20);
            kill(-pid, SIGKILL); /* cc itself, or what it left running */
            if (w != pid)
                while (waitpid(pid, ws, 0) < 0 && errno == EINTR) {}
            return 1;
        }
        if (cancel) nap_ms(20);
    }
}

cke_status cke_codegen_compile(const char *c_path, const char *so_path, const char *include_dir, const char *libk,
                               const char *log_path, const volatile sig_atomic_t *cancel, cke_err *err) {
    return cke_codegen_compile_defs(c_path, so_path, include_dir, libk, log_path, NULL, cancel, err);
}

cke_status cke_codegen_compile_defs(const char *c_path, const char *so_path, const char *include_dir, const char *libk,
                                    const char *log_path, const char *define, const volatile sig_atomic_t *cancel,
                                    cke_err *err) {
    return cke_codegen_compile_cc(NULL, c_path, so_path, include_dir, libk, log_path, define, cancel, err);
}

cke_status cke_codegen_compile_cc(const char *cc_name, const char *c_path, const char *so_path, const char *include_dir,
                                  const char *libk, const char *log_path, const char *define,
                                  const volatile sig_atomic_t *cancel, cke_err *err) {
    const char *cc_env = cc_name ? cc_name : getenv("CC");
    char cc[1024];
    snprintf(cc, sizeof cc, "%s", cc_env && *cc_env ? cc_env : "cc");
    char *argv[CC_MAX_WORDS + 16];
    int argc = 0;
    for (char *save = NULL, *w = strtok_r(cc, " \t", &save); w && argc < CC_MAX_WORDS; w = strtok_r(NULL, " \t", &save))
        argv[argc++] = w;
    if (argc == 0) return cke_fail(err, CKE_ERR_ARG, "compile: CC is blank");
    char tmp_so[4096], inc[4096], cb[4096], lb[4096];
    if ((size_t)snprintf(tmp_so, sizeof tmp_so, "%s.tmp", so_path) >= sizeof tmp_so ||
        (size_t)snprintf(inc, sizeof inc, "-I%s", include_dir) >= sizeof inc)
        return cke_fail(err, CKE_ERR_ARG, "compile: paths too long");
    /* -O2, no fast-math: the numbers are compared with references. The kernels come in statically,
     * so the .so needs only libc, libm and libgomp. */
    static const char *const flags[] = {"-std=c11", "-D_DEFAULT_SOURCE", "-O2", "-fPIC", "-shared", "-fopenmp", "-Wall"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) argv[argc++] = (char *)flags[i];
    char dflag[128];
    if (define) {
        snprintf(dflag, sizeof dflag, "-D%s", define);
        argv[argc++] = dflag;
    }
    argv[argc++] = inc;
    argv[argc++] = "-o";
    argv[argc++] = tmp_so;
    argv[argc++] = (char *)file_arg(cb, sizeof cb, c_path);
    argv[argc++] = (char *)file_arg(lb, sizeof lb, libk);
    argv[argc++] = "-lm";
    argv[argc] = NULL;

    /* stdin from /dev/null, stdout and stderr into the log; a process group of its own, so a
     * Ctrl-C at the terminal reaches cke only, which decides (kills the group, cleans up) */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_init(&at);
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    extern char **environ;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) return cke_fail(err, CKE_ERR_IO, "cannot run the C compiler '%s': %s (set CC)", argv[0], strerror(rc));
    int ws = 0;
    int w = wait_child(pid, cancel, &ws);
    if (w != 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        remove(tmp_so);
        if (w == 1) return cke_fail(err, CKE_ERR_IO, "interrupted: the C compiler was stopped");
        if (w < 0) return cke_fail(err, CKE_ERR_IO, "waiting for the C compiler: %s", strerror(errno));
        char tail[360];
        log_tail(log_path, tail, sizeof tail);
        const char *cbase = strrchr(c_path, '/'); /* the directory is temporary: gone after this */
        c_path = cbase ? cbase + 1 : c_path;
        if (WIFSIGNALED(ws))
            return cke_fail(err, CKE_ERR_IO, "the C compiler '%s' was killed by signal %d compiling %s: %s", argv[0],
                            WTERMSIG(ws), c_path, tail);
        return cke_fail(err, CKE_ERR_IO, "the C compiler '%s' failed (exit %d) on %s: %s", argv[0], WEXITSTATUS(ws),
                        c_path, tail);
    }
    if (rename(tmp_so, so_path) != 0) return cke_fail(err, CKE_ERR_IO, "cannot rename %s: %s", tmp_so, strerror(errno));
    return CKE_OK;
}
