/* Code generation of the training mode: train_run (forward keeping what the backward needs,
 * fused cross-entropy, backward node by node in reverse), gradient zeroing, norm and AdamW,
 * all in the same model.c as inference. Gradients accumulate (+=) as every backward kernel
 * does, so each gradient buffer is zeroed right before its first contribution. */
#include "codegen/codegen.h"
#include "plan/plan_train.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const cke_train_plan *tp;
    const cke_ir *ir;
    FILE *f;
    int logits;
    int *prof_id; /* the next op's index in prof_ops (the profile build's table: see codegen.c) */
    int recomputing; /* emitting a layer's forward again inside the backward (activation checkpointing) */
    int moe_aux;     /* the load-balancing loss is on: router statistics kept in t->moe_stats */
} tctx;

/* The mixture-of-experts load-balancing loss (HF load_balancing_loss_func, added to the loss times
 * router_aux_loss_coef): on when some moe node has aux_coef != 0; its experts per layer, the
 * number of moe layers and the coefficient (every layer's template node carries the same). */
static int moe_aux(const cke_ir *ir, int64_t *E, int *layers, double *coef) {
    *E = 0, *layers = 0, *coef = 0;
    for (int i = 0; i < ir->nn; i++)
        if (ir->n[i].op == CKE_OP_MOE && ir->n[i].a.aux_coef != 0 && cke_ir_node_on(ir, &ir->n[i], ir->n[i].layer)) {
            *E = ir->v[ir->n[i].in[2]].dims[0], *coef = ir->n[i].a.aux_coef;
            (*layers)++;
        }
    return *layers > 0;
}

/* An op of train_run timed in the profile build (PROF_* of codegen.c); the table's entries come
 * in the same order (cke_codegen_train_prof_ops). */
static void prof_begin(const tctx *c, const char *ind) { fprintf(c->f, "%sPROF_BEGIN();\n", ind); }
static void prof_end(const tctx *c, const char *ind, int in_loop) {
    fprintf(c->f, "%sPROF_END(%d, %s, R);\n", ind, (*c->prof_id)++, in_loop ? "l" : "-1");
}

static int64_t tcols(const cke_value *v) {
    int64_t c = 1;
    for (int d = 1; d < v->ndim; d++) c *= v->dims[d];
    return c;
}

static void tsan(char *out, size_t n, const char *s) {
    size_t j = 0;
    for (; *s && j + 1 < n; s++)
        out[j++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')) ? *s : '_';
    out[j] = 0;
}

/* C name of a forward value inside train_run. Layer values of another layer are named as
 * layer 0's (the loop), the residual stream's input inside the loop is "<x>_in". */
static void fname(char *out, size_t n, const tctx *c, int vi, int in_loop) {
    const cke_ir *ir = c->ir;
    int l0 = vi;
    const cke_value *v = &ir->v[vi];
    if (v->layer > 0) {
        char nm[CKE_IR_NAME];
        snprintf(nm, sizeof nm, "l0.%s", v->base);
        int j = cke_ir_find(ir, nm);
        if (j >= 0) l0 = j;
    }
    char b[CKE_IR_NAME];
    if (l0 == c->tp->carry_in && in_loop) { tsan(b, sizeof b, ir->v[l0].base); snprintf(out, n, "%s_in", b); return; }
    if (l0 == c->tp->carry_out) {
        tsan(b, sizeof b, ir->v[l0].base);
        snprintf(out, n, in_loop ? "%s_out" : "%s_final", b);
        return;
    }
    tsan(b, sizeof b, ir->v[l0].layer >= 0 ? ir->v[l0].base : ir->v[l0].name);
    snprintf(out, n, "%s", b);
}

static void gname(char *out, size_t n, const tctx *c, int vi, int in_loop) {
    const cke_ir *ir = c->ir;
    const cke_value *v = &ir->v[vi];
    if (v->kind == CKE_V_WEIGHT) {
        if (v->tied_to >= 0) v = &ir->v[v->tied_to];
        char b[CKE_IR_NAME];
        tsan(b, sizeof b, v->layer >= 0 ? v->base : v->name);
        if (v->layer >= 0) snprintf(out, n, "GW(W_%s[l])", b);
        else snprintf(out, n, "GW(W_%s)", b);
        return;
    }
    if (v->kind == CKE_V_INPUT) { snprintf(out, n, "NULL"); return; }
    char f[CKE_IR_NAME + 8];
    fname(f, sizeof f, c, vi, in_loop);
    /* the carried gradient has one name whichever side of the layer it is on */
    char nm[CKE_IR_NAME];
    snprintf(nm, sizeof nm, "l0.%s", v->base);
    int l0 = v->layer > 0 ? cke_ir_find(ir, nm) : vi;
    if (l0 == c->tp->carry_in || l0 == c->tp->carry_out) { tsan(f, sizeof f, ir->v[c->tp->carry_out].base); }
    snprintf(out, n, "d_%s", f);
}

static void wexpr(char *out, size_t n, const cke_ir *ir, int vi) {
    const cke_value *v = &ir->v[vi];
    if (v->tied_to >= 0) v = &ir->v[v->tied_to];
    char b[CKE_IR_NAME];
    tsan(b, sizeof b, v->layer >= 0 ? v->base : v->name);
    if (v->layer >= 0) snprintf(out, n, "WT(W_%s[l])", b);
    else snprintf(out, n, "WT(W_%s)", b);
}

/* the bf16 copy of a value saved in bf16 (mixed precision): its buffer, or -1; *name its pointer */
static int save16(char *name, size_t n, const tctx *c, int vi, int in_loop) {
    const cke_ir *ir = c->ir;
    int l0 = vi;
    if (ir->v[vi].layer > 0) {
        char nm[CKE_IR_NAME];
        snprintf(nm, sizeof nm, "l0.%s", ir->v[vi].base);
        l0 = cke_ir_find(ir, nm);
        if (l0 < 0) return -1;
    }
    int b = c->tp->save16_of[l0];
    if (b >= 0 && name) {
        char f[CKE_IR_NAME + 8];
        fname(f, sizeof f, c, vi, in_loop);
        snprintf(name, n, "%s_bf", f);
    }
    return b;
}

/* an input's forward pointer: weights through WT, activations by name, tokens as tok */
static void iexpr(char *out, size_t n, const tctx *c, int vi, int in_loop) {
    const cke_value *v = &c->ir->v[vi];
    if (v->kind == CKE_V_WEIGHT) wexpr(out, n, c->ir, vi);
    else if (v->kind == CKE_V_INPUT) snprintf(out, n, "tok");
    else fname(out, n, c, vi, in_loop);
}

#define FL(x) cke_codegen_flit(fl1, sizeof fl1, (x))
#define FL2(x) cke_codegen_flit(fl2, sizeof fl2, (x))
#define RC(x) x, (long long)C /* a pointer and the row width: "p + r0 * C" of a PAR_ROWS slice */
/* per-layer attention attributes (Gemma 2's interleaved windows) come from the L_ arrays */
#define AT(name, buf) cke_codegen_attn_attr(buf, sizeof buf, c->ir, n, name)

/* Opens the loop over the batch's sequences for attention (each attends within itself): the shape
 * with this layer's attributes and the row offsets q0 (queries/outputs) and k0 (keys/values). */
static void emit_seq_loop(const tctx *c, const cke_node *n, const char *ind) {
    char sa[64], wa[64], ca[64];
    int64_t qd = n->a.n_head * n->a.head_dim, kd = n->a.n_kv_head * n->a.head_dim;
    fprintf(c->f,
            "%sfor (int64_t b = 0; b < TR_B; b++) { /* each sequence attends within itself */\n"
            "%s    const cke_attn_shape s = {.T = TR_T, .Tk = TR_T, .n_head = %lld, .n_kv_head = %lld, .head_dim = %lld,\n"
            "%s                             .scale = %s, .window = %s, .softcap = %s};\n"
            "%s    const int64_t q0 = b * TR_T * %lld, k0 = b * TR_T * %lld;\n",
            ind, ind, (long long)n->a.n_head, (long long)n->a.n_kv_head, (long long)n->a.head_dim, ind, AT("scale", sa),
            AT("window", wa), AT("softcap", ca), ind, (long long)qd, (long long)kd);
}

/* The per-head ops' dimension arguments (heads.c), forward and backward alike: "R, H, d, lo, w" for a
 * window, "R, H, da, Hb, db" for a concatenation. */
static const char *head_dims(char *buf, size_t n, const cke_ir *ir, const cke_node *nd) {
    if (nd->op == CKE_OP_HEAD_WINDOW)
        snprintf(buf, n, "R, %lld, %lld, %lld, %lld", (long long)nd->a.n_head, (long long)nd->a.head_dim, (long long)nd->a.lo,
                 (long long)nd->a.width);
    else
        snprintf(buf, n, "R, %lld, %lld, %lld, %lld", (long long)nd->a.n_head, (long long)(tcols(&ir->v[nd->in[0]]) / nd->a.n_head),
                 (long long)nd->a.n_kv_head, (long long)(tcols(&ir->v[nd->in[1]]) / nd->a.n_kv_head));
    return buf;
}

static void emit_fwd(const tctx *c, int ni, const char *ind, int in_loop) {
    char fl1[32], fl2[32];
    const cke_ir *ir = c->ir;
    const cke_node *n = &ir->n[ni];
    FILE *f = c->f;
    char o[80], a[80], b[80], d[80], st[80] = "NULL", hdims[96];
    fname(o, sizeof o, c, n->out, in_loop);
    iexpr(a, sizeof a, c, n->in[0], in_loop);
    if (n->n_in > 1) iexpr(b, sizeof b, c, n->in[1], in_loop);
    if (n->n_in > 2) iexpr(d, sizeof d, c, n->in[2], in_loop);
    if (c->tp->aux_of[ni] >= 0) snprintf(st, sizeof st, "%s_stats", o);
    int64_t C = tcols(&ir->v[n->out]);
    fprintf(f, "%s/* %s: %s = %s(", ind, cke_op_names[n->op], o, cke_op_names[n->op]);
    for (int k = 0; k < n->n_in; k++) fprintf(f, "%s%s", k ? ", " : "", ir->v[n->in[k]].base);
    fprintf(f, ") [R,%lld] */\n", (long long)C);
    switch (n->op) {
    case CKE_OP_EMBED: fprintf(f, "%skt->embed_fwd(%s, tok, %s, R, %lld);\n", ind, o, b, (long long)C); break;
    case CKE_OP_RMSNORM: {
        int64_t hd = n->a.head_dim > 0 ? n->a.head_dim : C; /* per head: rows of head_dim (Qwen3 QK-norm) */
        char sp[96];
        if (strcmp(st, "NULL")) snprintf(sp, sizeof sp, "%s + r0 * %lld", st, (long long)(C / hd));
        else snprintf(sp, sizeof sp, "NULL");
        fprintf(f, "%sPAR_ROWS(R, kt->rmsnorm_fwd(%s + r0 * %lld, %s, %s + r0 * %lld, %s, nr * %lld, %lld, %s, %s));\n", ind, o,
                (long long)C, sp, a, (long long)C, b, (long long)(C / hd), (long long)hd, FL(n->a.eps), FL2(n->a.w_offset));
        break;
    }
    case CKE_OP_SOFTCAP:
        if (n->a.softcap == 0) fprintf(f, "%sif (%s != %s) memcpy(%s, %s, sizeof(float) * R * %lld);\n", ind, o, a, o, a, (long long)C);
        else fprintf(f, "%skt->softcap_fwd(%s, %s, %s, R * %lld);\n", ind, o, a, FL(n->a.softcap), (long long)C);
        break;
    case CKE_OP_LAYERNORM:
        fprintf(f, "%skt->layernorm_fwd(%s, %s, %s + R, %s, %s, %s, R, %lld, %s);\n", ind, o, st, st, a, b,
                n->n_in > 2 ? d : "NULL", (long long)C, FL(n->a.eps));
        break;
    case CKE_OP_LINEAR: {
        const cke_value *w = &ir->v[n->in[1]];
        fprintf(f, "%scke_linear_fwd(kl, %s, %s, %s, %s, R, %lld, %lld, t->scratch, m->nth);\n", ind, o, a, b,
                n->n_in > 2 ? d : "NULL", (long long)w->dims[1], (long long)w->dims[0]);
        break;
    }
    case CKE_OP_ROPE:
        fprintf(f, "%sPAR_ROWS(R, kt->rope_fwd(%s + r0 * %lld, %s + r0 * %lld, ROPE_CS(l), t->pos + r0, nr, %lld, %lld, %lld, %s));\n",
                ind, o, (long long)C, a, (long long)C, (long long)n->a.n_head, (long long)n->a.head_dim, (long long)n->a.rot,
                n->a.rope_layout ? "CKE_ROPE_HALVES" : "CKE_ROPE_INTERLEAVED");
        break;
    case CKE_OP_ATTENTION: {
        char k[80], v[80];
        iexpr(k, sizeof k, c, n->in[1], in_loop);
        iexpr(v, sizeof v, c, n->in[2], in_loop);
        emit_seq_loop(c, n, ind);
        fprintf(f, "%s    kt->attn_fwd(%s + q0, %s + b * TR_T * %lld, %s + q0, %s + k0, %s + k0, &s, t->scratch, m->nth);\n%s}\n",
                ind, o, st, (long long)n->a.n_head, a, k, v, ind);
        break;
    }
    /* elementwise: each thread its rows (PAR_ROWS), every element computed as on one thread */
    case CKE_OP_ADD: fprintf(f, "%sPAR_ROWS(R, kt->add_fwd(%s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, nr * %lld));\n", ind, RC(o), RC(a), RC(b), (long long)C); break;
    case CKE_OP_SCALE: fprintf(f, "%skt->scale_fwd(%s, %s, %s, R * %lld);\n", ind, o, a, FL(n->a.scale), (long long)C); break;
    case CKE_OP_SWIGLU:
        fprintf(f, "%sPAR_ROWS(R, kt->swiglu_fwd(%s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, nr * %lld));\n", ind, RC(o), RC(a), RC(b),
                (long long)C);
        break;
    case CKE_OP_GEGLU:
        fprintf(f, "%sPAR_ROWS(R, kt->geglu_fwd(%s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, nr * %lld, %s));\n", ind, RC(o), RC(a),
                RC(b), (long long)C, n->a.gelu ? "CKE_GELU_TANH" : "CKE_GELU_ERF");
        break;
    case CKE_OP_GELU:
        fprintf(f, "%sPAR_ROWS(R, kt->gelu_fwd(%s + r0 * %lld, %s + r0 * %lld, nr * %lld, %s));\n", ind, RC(o), RC(a), (long long)C,
                n->a.gelu ? "CKE_GELU_TANH" : "CKE_GELU_ERF");
        break;
    case CKE_OP_SILU: fprintf(f, "%sPAR_ROWS(R, kt->silu_fwd(%s + r0 * %lld, %s + r0 * %lld, nr * %lld));\n", ind, RC(o), RC(a), (long long)C); break;
    case CKE_OP_SIGMOID_MUL: fprintf(f, "%scke_sigmoid_mul_fwd(%s, %s, %s, R, %lld);\n", ind, o, a, b, (long long)C); break;
    case CKE_OP_HEAD_WINDOW: fprintf(f, "%scke_head_window_fwd(%s, %s, %s);\n", ind, o, a, head_dims(hdims, sizeof hdims, ir, n)); break;
    case CKE_OP_HEAD_CAT: fprintf(f, "%scke_head_cat_fwd(%s, %s, %s, %s);\n", ind, o, a, b, head_dims(hdims, sizeof hdims, ir, n)); break;
    case CKE_OP_MOE: {
        const cke_value *g = &ir->v[n->in[2]]; /* [E, F, D] */
        char wu[80], wd[80];
        iexpr(wu, sizeof wu, c, n->in[3], in_loop);
        iexpr(wd, sizeof wd, c, n->in[4], in_loop);
        char bias[96] = "NULL", gate[320];
        if (n->n_in > 5) iexpr(bias, sizeof bias, c, n->in[5], in_loop);
        fprintf(f, "%s(void)cke_moe_fwd(kl, %s, %s, %s, %s, %s, %s, 0, 0, 0, R, %lld, %lld, %lld, %lld,\n%s                  %s, t->scratch, m->nth);\n",
                ind, o, a, b, d, wu, wd, (long long)g->dims[2], (long long)g->dims[1], (long long)g->dims[0],
                (long long)n->a.n_expert_used, ind, cke_codegen_moe_gate(gate, sizeof gate, n, bias));
        if (c->moe_aux && n->a.aux_coef != 0 && !c->recomputing)
            fprintf(f, "%scke_moe_router_stats(kt, t->moe_stats, %s, %s, R, %lld, %lld, %lld, t->scratch, m->nth); /* for the "
                       "load-balancing loss */\n",
                    ind, a, b, (long long)g->dims[2], (long long)g->dims[0], (long long)n->a.n_expert_used);
        break;
    }
    case CKE_OP_POSEMB:
        fprintf(f, "%sif (%s != %s) memcpy(%s, %s, sizeof(float) * R * %lld);\n", ind, o, a, o, a, (long long)C);
        fprintf(f, "%sfor (int64_t b = 0; b < TR_B; b++) kt->posemb_fwd(%s + b * TR_T * %lld, %s, 0, TR_T, %lld);\n", ind, o,
                (long long)C, b, (long long)C);
        break;
    default: fprintf(f, "%s#error op %s has no training emission\n", ind, cke_op_names[n->op]); break;
    }
    char o16[96];
    if (save16(o16, sizeof o16, c, n->out, in_loop) >= 0) /* the copy the weight gradient reads */
        fprintf(f, "%sPAR_ROWS(R, kt->round_bf16(%s + r0 * %lld, %s + r0 * %lld, nr * %lld));\n", ind, RC(o16), RC(o), (long long)C);
}

/* zero a gradient buffer right before its first contribution */
static void emit_zero(const tctx *c, int vi, const char *ind, int in_loop, char *zeroed) {
    const cke_ir *ir = c->ir;
    const cke_value *v = &ir->v[vi];
    if (v->kind != CKE_V_ACT) return;
    int l0 = vi;
    if (v->layer > 0) {
        char nm[CKE_IR_NAME];
        snprintf(nm, sizeof nm, "l0.%s", v->base);
        l0 = cke_ir_find(ir, nm);
    }
    int g = c->tp->grad_of[l0];
    if (g < 0 || zeroed[g] || c->tp->b[g].alias_of >= 0) return;
    zeroed[g] = 1;
    char gn[96];
    gname(gn, sizeof gn, c, vi, in_loop);
    fprintf(c->f, "%smemset(%s, 0, sizeof(float) * R * %lld);\n", ind, gn, (long long)tcols(v));
}

static void emit_bwd(const tctx *c, int ni, const char *ind, int in_loop, char *zeroed) {
    char fl1[32];
    const cke_ir *ir = c->ir;
    const cke_node *n = &ir->n[ni];
    FILE *f = c->f;
    char o[80], a[80], b[80], go[96], ga[96], gb[96], gc[96], st[96] = "NULL", hdims[96];
    fname(o, sizeof o, c, n->out, in_loop);
    iexpr(a, sizeof a, c, n->in[0], in_loop);
    if (n->n_in > 1) iexpr(b, sizeof b, c, n->in[1], in_loop);
    gname(go, sizeof go, c, n->out, in_loop);
    gname(ga, sizeof ga, c, n->in[0], in_loop);
    if (n->n_in > 1) gname(gb, sizeof gb, c, n->in[1], in_loop);
    if (n->n_in > 2) gname(gc, sizeof gc, c, n->in[2], in_loop);
    if (c->tp->aux_of[ni] >= 0) snprintf(st, sizeof st, "%s_stats", o);
    /* a node of a layer kind: its gradients are zeroed in every layer (another node may add to them),
     * its backward runs, and is timed, in that kind's layers only */
    char kind_ind[64];
    const int kinded = in_loop && n->kind > 0;
    if (!kinded) prof_begin(c, ind);
    for (int k = 0; k < n->n_in; k++) emit_zero(c, n->in[k], ind, in_loop, zeroed);
    if (kinded) {
        fprintf(f, "%sif (L_is_%s[l]) { /* %s layers only */\n", ind, ir->kind_name[n->kind - 1], ir->kind_name[n->kind - 1]);
        snprintf(kind_ind, sizeof kind_ind, "%s    ", ind);
        ind = kind_ind;
        prof_begin(c, ind);
    }
    int64_t C = tcols(&ir->v[n->out]);
    fprintf(f, "%s/* backward of %s %s */\n", ind, cke_op_names[n->op], o);
    switch (n->op) {
    case CKE_OP_EMBED: fprintf(f, "%skt->embed_bwd(%s, %s, tok, R, %lld);\n", ind, gb, go, (long long)C); break;
    case CKE_OP_RMSNORM: {
        int64_t hd = n->a.head_dim > 0 ? n->a.head_dim : C;
        fprintf(f, "%skt->rmsnorm_bwd(%s, %s, %s, %s, %s, %s, R * %lld, %lld, %s);\n", ind, ga, gb, go, a, b, st,
                (long long)(C / hd), (long long)hd, FL(n->a.w_offset));
        break;
    }
    case CKE_OP_SOFTCAP:
        if (n->a.softcap == 0) fprintf(f, "%skt->axpy(%s, 1.0f, %s, R * %lld);\n", ind, ga, go, (long long)C);
        else fprintf(f, "%skt->softcap_bwd(%s, %s, %s, %s, R * %lld);\n", ind, ga, go, a, FL(n->a.softcap), (long long)C);
        break;
    case CKE_OP_LAYERNORM:
        fprintf(f, "%skt->layernorm_bwd(%s, %s, %s, %s, %s, %s, %s, %s + R, R, %lld);\n", ind, ga, gb, n->n_in > 2 ? gc : "NULL",
                go, a, b, st, st, (long long)C);
        break;
    case CKE_OP_LINEAR: {
        const cke_value *w = &ir->v[n->in[1]];
        char a16[96];
        int x16 = save16(a16, sizeof a16, c, n->in[0], in_loop) >= 0; /* its input saved in bf16 */
        fprintf(f, "%scke_linear_bwd%s(kl, %s, %s, %s, %s, %s, %s, R, %lld, %lld, t->scratch, m->nth);\n", ind, x16 ? "_b16" : "",
                ga, gb, n->n_in > 2 ? gc : "NULL", go, x16 ? a16 : a, b, (long long)w->dims[1], (long long)w->dims[0]);
        break;
    }
    case CKE_OP_ROPE:
        fprintf(f, "%sPAR_ROWS(R, kt->rope_bwd(%s + r0 * %lld, %s + r0 * %lld, ROPE_CS(l), t->pos + r0, nr, %lld, %lld, %lld, %s));\n",
                ind, RC(ga), RC(go), (long long)n->a.n_head, (long long)n->a.head_dim, (long long)n->a.rot,
                n->a.rope_layout ? "CKE_ROPE_HALVES" : "CKE_ROPE_INTERLEAVED");
        break;
    case CKE_OP_ATTENTION: {
        char k[80], v[80];
        iexpr(k, sizeof k, c, n->in[1], in_loop);
        iexpr(v, sizeof v, c, n->in[2], in_loop);
        emit_seq_loop(c, n, ind);
        fprintf(f,
                "%s    kt->attn_bwd(%s + q0, %s + k0, %s + k0, %s + q0, %s + q0, %s + k0, %s + k0, %s + q0,\n"
                "%s                 %s + b * TR_T * %lld, &s, t->scratch, m->nth);\n%s}\n",
                ind, ga, gb, gc, go, a, k, v, o, ind, st, (long long)n->a.n_head, ind);
        break;
    }
    case CKE_OP_ADD:
        fprintf(f, "%sPAR_ROWS(R, kt->axpy(%s + r0 * %lld, 1.0f, %s + r0 * %lld, nr * %lld);\n"
                   "%s              kt->axpy(%s + r0 * %lld, 1.0f, %s + r0 * %lld, nr * %lld));\n",
                ind, RC(ga), RC(go), (long long)C, ind, RC(gb), RC(go), (long long)C);
        break;
    case CKE_OP_SCALE: fprintf(f, "%skt->axpy(%s, %s, %s, R * %lld);\n", ind, ga, FL(n->a.scale), go, (long long)C); break;
    case CKE_OP_SWIGLU:
        fprintf(f, "%sPAR_ROWS(R, kt->swiglu_bwd(%s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, nr * %lld));\n",
                ind, RC(ga), RC(gb), RC(go), RC(a), RC(b), (long long)C);
        break;
    case CKE_OP_GEGLU:
        fprintf(f, "%sPAR_ROWS(R, kt->geglu_bwd(%s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, nr * %lld, %s));\n",
                ind, RC(ga), RC(gb), RC(go), RC(a), RC(b), (long long)C, n->a.gelu ? "CKE_GELU_TANH" : "CKE_GELU_ERF");
        break;
    case CKE_OP_GELU:
        fprintf(f, "%sPAR_ROWS(R, kt->gelu_bwd(%s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, nr * %lld, %s));\n", ind, RC(ga), RC(go),
                RC(a), (long long)C, n->a.gelu ? "CKE_GELU_TANH" : "CKE_GELU_ERF");
        break;
    case CKE_OP_SILU:
        fprintf(f, "%sPAR_ROWS(R, kt->silu_bwd(%s + r0 * %lld, %s + r0 * %lld, %s + r0 * %lld, nr * %lld));\n", ind, RC(ga), RC(go), RC(a),
                (long long)C);
        break;
    case CKE_OP_HEAD_WINDOW: fprintf(f, "%scke_head_window_bwd(%s, %s, %s);\n", ind, ga, go, head_dims(hdims, sizeof hdims, ir, n)); break;
    case CKE_OP_HEAD_CAT: fprintf(f, "%scke_head_cat_bwd(%s, %s, %s, %s);\n", ind, ga, gb, go, head_dims(hdims, sizeof hdims, ir, n)); break;
    case CKE_OP_SIGMOID_MUL:
        fprintf(f, "%scke_sigmoid_mul_bwd(%s, %s, %s, %s, %s, R, %lld);\n", ind, ga, gb, go, a, b, (long long)C);
        break;
    case CKE_OP_MOE: {
        const cke_value *g = &ir->v[n->in[2]]; /* [E, F, D] */
        char wg[80], wu[80], wd[80], gu[96], gd[96];
        iexpr(wg, sizeof wg, c, n->in[2], in_loop);
        iexpr(wu, sizeof wu, c, n->in[3], in_loop);
        iexpr(wd, sizeof wd, c, n->in[4], in_loop);
        gname(gu, sizeof gu, c, n->in[3], in_loop);
        gname(gd, sizeof gd, c, n->in[4], in_loop);
        char bias[96] = "NULL", gate[320];
        if (n->n_in > 5) iexpr(bias, sizeof bias, c, n->in[5], in_loop);
        fprintf(f, "%scke_moe_bwd(kl, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,\n"
                   "%s            %s, R, %lld, %lld, %lld, %lld,\n%s            %s, t->scratch, m->nth);\n",
                ind, ga, gb, gc, gu, gd, go, a, b, wg, wu, wd, ind,
                c->moe_aux && n->a.aux_coef != 0 ? "t->moe_auxg" : "NULL", (long long)g->dims[2], (long long)g->dims[1],
                (long long)g->dims[0], (long long)n->a.n_expert_used, ind, cke_codegen_moe_gate(gate, sizeof gate, n, bias));
        break;
    }
    case CKE_OP_POSEMB:
        fprintf(f, "%skt->axpy(%s, 1.0f, %s, R * %lld);\n", ind, ga, go, (long long)C);
        fprintf(f, "%sfor (int64_t b = 0; b < TR_B; b++) kt->posemb_bwd(%s, %s + b * TR_T * %lld, 0, TR_T, %lld);\n", ind, gb,
                go, (long long)C, (long long)C);
        break;
    default: fprintf(f, "%s#error op %s has no backward emission\n", ind, cke_op_names[n->op]); break;
    }
    prof_end(c, ind, in_loop);
    if (kinded) fprintf(f, "%.*s}\n", (int)strlen(ind) - 4, ind);
}

/* The forward of body node i, in its kind's layers only when it has a layer kind. */
static void emit_fwd_kind(const tctx *c, int i, int prof) {
    const cke_node *n = &c->ir->n[i];
    const char *ind = n->kind > 0 ? "            " : "        ";
    if (n->kind > 0)
        fprintf(c->f, "        if (L_is_%s[l]) { /* %s layers only */\n", c->ir->kind_name[n->kind - 1], c->ir->kind_name[n->kind - 1]);
    if (prof) prof_begin(c, ind);
    emit_fwd(c, i, ind, 1);
    if (prof) prof_end(c, ind, 1);
    if (n->kind > 0) fprintf(c->f, "        }\n");
}

/* pointer declarations of one section's values (and their stats and gradients) */
static void emit_decls(const tctx *c, cke_section sec, const char *ind, int with_grads) {
    const cke_ir *ir = c->ir;
    const cke_train_plan *tp = c->tp;
    FILE *f = c->f;
    int in_loop = sec == CKE_SEC_LAYER;
    int stats_of = -1; /* a value two layer kinds define is declared once; at most one of them keeps statistics */
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        if (n->section != sec || (in_loop && (n->layer != 0 || !cke_ir_node_ever(ir, n)))) continue;
        int again = 0;
        for (int j = 0; j < i && !again; j++)
            again = ir->n[j].out == n->out && ir->n[j].section == sec && cke_ir_node_ever(ir, &ir->n[j]);
        char o[80];
        fname(o, sizeof o, c, n->out, in_loop);
        if (again) {
            if (tp->aux_of[i] >= 0 && stats_of != n->out)
                fprintf(f, "%sfloat *%s_stats = (float *)(%s + %zuu); /* saved statistics */\n", ind, o, in_loop ? "S" : "SG",
                        tp->b[tp->aux_of[i]].offset);
            continue;
        }
        if (tp->aux_of[i] >= 0) stats_of = n->out;
        int bi = tp->fwd_of[n->out];
        const cke_tbuf *b = &tp->b[bi];
        const char *base = b->kind == CKE_TB_TEMP ? "TP" : in_loop ? "S" : "SG";
        if (n->out == tp->carry_out)
            fprintf(f, "%sfloat *%s = LAYER_OUT(l); /* the layer's output, kept for the next layer */\n", ind, o);
        else
            fprintf(f, "%sfloat *%s = (float *)(%s + %zuu); /* %s [R,%lld] */\n", ind, o, base, b->offset,
                    b->kind == CKE_TB_TEMP ? "temp" : "saved", (long long)tcols(&ir->v[n->out]));
        if (tp->aux_of[i] >= 0)
            fprintf(f, "%sfloat *%s_stats = (float *)(%s + %zuu); /* saved statistics */\n", ind, o, in_loop ? "S" : "SG",
                    tp->b[tp->aux_of[i]].offset);
        char o16[96];
        int b16 = save16(o16, sizeof o16, c, n->out, in_loop);
        if (b16 >= 0)
            fprintf(f, "%suint16_t *%s = (uint16_t *)(S + %zuu); /* saved bf16 [R,%lld]: for the weight gradient */\n%s(void)%s;\n",
                    ind, o16, tp->b[b16].offset, (long long)tcols(&ir->v[n->out]), ind, o16);
        int g = tp->grad_of[n->out];
        if (with_grads && g >= 0 && n->out != tp->carry_out && n->out != tp->carry_in) {
            char gn[96];
            gname(gn, sizeof gn, c, n->out, in_loop);
            if (tp->b[g].alias_of >= 0) fprintf(f, "%sfloat *%s = %s; /* written by the loss in place */\n", ind, gn, o);
            else fprintf(f, "%sfloat *%s = (float *)(TP + %zuu); /* gradient */\n", ind, gn, tp->b[g].offset);
        }
    }
}

cke_status cke_codegen_emit_train(const cke_train_plan *tp, FILE *f, cke_err *err) {
    const cke_ir *ir = tp->p->ir;
    int prof_id = cke_codegen_train_prof_base(tp->p);
    tctx c = {.tp = tp, .ir = ir, .f = f, .logits = ir->n[ir->nn - 1].out, .prof_id = &prof_id};
    int64_t moe_e;
    int moe_layers;
    double moe_coef;
    char coef_lit[32];
    c.moe_aux = moe_aux(ir, &moe_e, &moe_layers, &moe_coef);
    const cke_value *lg = &ir->v[c.logits];
    char cx[80];
    tsan(cx, sizeof cx, ir->v[tp->carry_out].base);
    fprintf(f, "/* ==== training: B = %lld sequences x T = %lld tokens per step (see memory_map.txt) ==== */\n",
            (long long)tp->B, (long long)tp->T);
    fprintf(f, "#define TR_B %lld\n#define TR_T %lld\n#define TR_SLAB %zuu\n#define TR_SAVED_GLOBAL %zuu\n"
               "#define TR_TEMP %zuu\n#define TR_SCRATCH %zuu\n#define TR_VOCAB %lld\n",
            (long long)tp->B, (long long)tp->T, tp->slab_bytes, tp->saved_global, tp->temp_bytes, tp->scratch_bytes,
            (long long)lg->dims[1]);
    if (tp->recompute)
        fprintf(f, "/* activation checkpointing: one slab, refilled by recomputing each layer's forward in the\n"
                   " * backward; every layer keeps only its output (TR_CARRY bytes) */\n"
                   "#define TR_RECOMPUTE 1\n#define TR_CARRY %zuu\n"
                   "#define TR_SAVED_BYTES (TR_SAVED_GLOBAL + TR_SLAB + (size_t)N_LAYER * TR_CARRY)\n"
                   "#define SLAB(l) ((void)(l), t->saved + TR_SAVED_GLOBAL)\n"
                   "#define LAYER_OUT(l) ((float *)(t->saved + TR_SAVED_GLOBAL + TR_SLAB + (size_t)(l) * TR_CARRY))\n\n",
                tp->carry_bytes);
    else
        fprintf(f, "#define TR_RECOMPUTE 0\n#define TR_SAVED_BYTES (TR_SAVED_GLOBAL + (size_t)N_LAYER * TR_SLAB)\n"
                   "#define SLAB(l) (t->saved + TR_SAVED_GLOBAL + (size_t)(l) * TR_SLAB)\n"
                   "#define LAYER_OUT(l) ((float *)(SLAB(l) + %zuu))\n\n",
                tp->b[tp->fwd_of[tp->carry_out]].offset);
    if (c.moe_aux)
        fprintf(f, "/* mixture of experts: HF's load-balancing loss (load_balancing_loss_func) over the router outputs\n"
                   " * of all %d moe layers, N = %d x R rows: aux = E / N^2 * sum_e (rows choosing e) * (sum of e's\n"
                   " * probability); the loss adds MOE_AUX_COEF * aux per target (as HF adds it to the mean) */\n"
                   "#define MOE_E %lld\n#define MOE_LAYERS %d\n#define MOE_AUX_COEF ((double)%s)\n\n",
                moe_layers, moe_layers, (long long)moe_e, moe_layers, cke_codegen_flit(coef_lit, sizeof coef_lit, (float)moe_coef));
    fprintf(f, "struct ckm_train {\n"
               "    char *saved;    /* [TR_SAVED_BYTES] what the backward reads */\n"
               "    char *tmp;      /* [TR_TEMP] forward temps, then activation gradients */\n"
               "    char *scratch;  /* [TR_SCRATCH] kernel workspace */\n"
               "    char *g, *m, *v;/* [WEIGHTS_BYTES] each: gradients, AdamW moments, in the weights' layout */\n"
               "    int32_t *pos;   /* [TR_B * TR_T] position of each row in its sequence */\n"
               "    float *loss;    /* [TR_B * TR_T] per-row loss */\n"
               "    void (*hook)(void *, int); /* set_grad_hook: told when a layer's weight gradients are complete */\n"
               "    void *hook_ud;\n"
               "%s"
               "};\n\n"
               "#define GW(off) ((float *)(t->g + (off)))\n\n"
               "/* Row-wise elementwise ops split over the threads: thread th takes rows [r0, r0 + nr) of R; each\n"
               " * element is computed exactly as on one thread, so results do not depend on the thread count */\n"
               "#define PAR_ROWS(R_, ...) do { \\\n"
               "    if (m->nth > 1 && (R_) >= 2 * (int64_t)m->nth) { \\\n"
               "        _Pragma(\"omp parallel num_threads(m->nth)\") { \\\n"
               "            const int64_t th_ = omp_get_thread_num(), nt_ = omp_get_num_threads(); \\\n"
               "            const int64_t r0 = (R_) * th_ / nt_, nr = (R_) * (th_ + 1) / nt_ - r0; \\\n"
               "            __VA_ARGS__; \\\n"
               "        } \\\n"
               "    } else { const int64_t r0 = 0, nr = (R_); __VA_ARGS__; } \\\n"
               "} while (0)\n\n",
            c.moe_aux ? "    double moe_stats[2 * MOE_E]; /* per expert: rows that chose it, sum of its router probability */\n"
                        "    float moe_auxg[MOE_E];       /* the load-balancing loss's gradient per expert probability */\n" : "");

    fprintf(f, "/* One forward (and, when backward != 0, backward) pass over TR_B x TR_T tokens. Returns the summed\n"
               " * loss over targets >= 0; gradients accumulate into t->g scaled by dscale. */\n"
               "static double train_run(ckm_model *m, const int32_t *tok /* [R] */, const int32_t *tgt /* [R] */,\n"
               "                        float dscale, int backward) {\n"
               "    ckm_train *t = m->train;\n    const cke_ktable *kt = m->kt;\n    const int64_t R = TR_B * TR_T;\n"
               "%s"
               "    char *SG = t->saved, *TP = t->tmp;\n    (void)SG; (void)TP;\n"
               "    const int64_t pos0 = 0; /* PROF_END: rows are positions 0.. of their sequences */\n    (void)pos0;\n    PROF_DECL;\n",
            tp->bf16 ? "    /* mixed precision (--precision bf16): the linear layers' GEMMs (and the experts') multiply\n"
                       "     * bf16-rounded operands with fp32 sums, as torch.autocast(\"cpu\", torch.bfloat16) does; weights,\n"
                       "     * activations, gradients and AdamW stay fp32 */\n"
                       "    cke_ktable kl_ = *kt;\n    kl_.gemm = kt->gemm_bf16;\n    const cke_ktable *kl = &kl_;\n"
                     : "    const cke_ktable *kl = kt; /* the linear layers' table: fp32 */\n");
    emit_decls(&c, CKE_SEC_PROLOGUE, "    ", 1);
    emit_decls(&c, CKE_SEC_EPILOGUE, "    ", 1);
    fprintf(f, "    float *%s_final = LAYER_OUT(N_LAYER - 1); /* the last layer's output */\n", cx);
    fprintf(f, "    float *d_%s = (float *)(TP + %zuu); /* the residual stream's gradient, carried between layers */\n\n",
            cx, tp->b[tp->grad_of[tp->carry_out]].offset);
    fprintf(f, "    /* ---- forward ---- */\n");
    if (c.moe_aux) fprintf(f, "    memset(t->moe_stats, 0, sizeof t->moe_stats);\n");
    for (int i = 0; i < ir->nn; i++)
        if (ir->n[i].section == CKE_SEC_PROLOGUE) { prof_begin(&c, "    "); emit_fwd(&c, i, "    ", 0); prof_end(&c, "    ", 0); }
    fprintf(f, "    for (int l = 0; l < N_LAYER; l++) {\n        char *S = SLAB(l);\n");
    fprintf(f, "        const float *%s_in = l == 0 ? %s : LAYER_OUT(l - 1);\n", cx, ir->v[tp->carry_in].name);
    emit_decls(&c, CKE_SEC_LAYER, "        ", 0);
    for (int i = 0; i < ir->nn; i++)
        if (ir->n[i].section == CKE_SEC_LAYER && ir->n[i].layer == 0 && cke_ir_node_ever(ir, &ir->n[i])) emit_fwd_kind(&c, i, 1);
    fprintf(f, "        (void)S;\n    }\n");
    for (int i = 0; i < ir->nn; i++)
        if (ir->n[i].section == CKE_SEC_EPILOGUE) { prof_begin(&c, "    "); emit_fwd(&c, i, "    ", 0); prof_end(&c, "    ", 0); }
    char lname[80];
    fname(lname, sizeof lname, &c, c.logits, 0);
    fprintf(f, "    /* loss: fused softmax + cross-entropy; dlogits written over the logits when training */\n"
               "    PROF_BEGIN();\n"
               "    kt->xent_fwd_bwd(t->loss, backward ? %s : NULL, %s, tgt, R, TR_VOCAB, -1, dscale, m->nth);\n"
               "    PROF_END(%d, -1, R);\n"
               "    double loss = 0;\n    for (int64_t r = 0; r < R; r++) if (tgt[r] >= 0) loss += t->loss[r];\n",
            lname, lname, prof_id++);
    if (c.moe_aux)
        fprintf(f, "    { /* the load-balancing loss and its gradient per expert probability (for each moe backward) */\n"
                   "        int64_t nv = 0;\n"
                   "        for (int64_t r = 0; r < R; r++) nv += tgt[r] >= 0;\n"
                   "        const double n_rows = (double)R * MOE_LAYERS, f = MOE_E / (n_rows * n_rows);\n"
                   "        double aux = 0;\n"
                   "        for (int e = 0; e < MOE_E; e++) aux += t->moe_stats[e] * t->moe_stats[MOE_E + e];\n"
                   "        loss += MOE_AUX_COEF * f * aux * (double)nv;\n"
                   "        for (int e = 0; e < MOE_E; e++) t->moe_auxg[e] = (float)(MOE_AUX_COEF * f * t->moe_stats[e] * (double)nv * dscale);\n"
                   "    }\n");
    fprintf(f, "    if (!backward) return loss;\n\n    /* ---- backward ---- */\n");
    int nbuf = tp->nb;
    char *zeroed = calloc((size_t)nbuf + 1, 1);
    if (!zeroed) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int i = ir->nn - 1; i >= 0; i--)
        if (ir->n[i].section == CKE_SEC_EPILOGUE) {
            emit_bwd(&c, i, "    ", 0, zeroed);
        }
    fprintf(f, "    for (int l = N_LAYER - 1; l >= 0; l--) {\n        char *S = SLAB(l);\n");
    fprintf(f, "        const float *%s_in = l == 0 ? %s : LAYER_OUT(l - 1);\n", cx, ir->v[tp->carry_in].name);
    emit_decls(&c, CKE_SEC_LAYER, "        ", 1);
    if (tp->recompute) {
        fprintf(f, "        /* recompute this layer's forward from its saved input (activation checkpointing) */\n");
        c.recomputing = 1;
        for (int i = 0; i < ir->nn; i++)
            if (ir->n[i].section == CKE_SEC_LAYER && ir->n[i].layer == 0 && cke_ir_node_ever(ir, &ir->n[i])) emit_fwd_kind(&c, i, 0);
        c.recomputing = 0;
    }
    /* body gradients are zeroed per layer at their first contribution; the carried one too */
    memset(zeroed, 0, (size_t)nbuf + 1);
    for (int i = ir->nn - 1; i >= 0; i--)
        if (ir->n[i].section == CKE_SEC_LAYER && ir->n[i].layer == 0 && cke_ir_node_ever(ir, &ir->n[i])) {
            emit_bwd(&c, i, "        ", 1, zeroed);
        }
    fprintf(f, "        if (t->hook) t->hook(t->hook_ud, l); /* layer l's weight gradients are final */\n");
    fprintf(f, "        (void)S; (void)%s_out;\n    }\n", cx);
    memset(zeroed, 0, (size_t)nbuf + 1);
    zeroed[tp->grad_of[tp->carry_in]] = 1; /* arrives from layer 0 */
    for (int i = ir->nn - 1; i >= 0; i--)
        if (ir->n[i].section == CKE_SEC_PROLOGUE) {
            emit_bwd(&c, i, "    ", 0, zeroed);
        }
    fprintf(f, "    return loss;\n}\n\n");
    free(zeroed);

    /* optimizer: one AdamW call per tensor; decay on matrices only (norm weights and biases are
     * not decayed, as in GPT-2/llm.c practice) */
    /* AdamW is elementwise: every thread takes the same slice of every tensor (balanced, and the
     * result does not depend on the thread count) */
    fprintf(f, "static const struct { size_t off; int64_t n; int decay; } train_params[] = {\n");
    for (int i = 0; i < tp->p->nw; i++) {
        const cke_value *v = &ir->v[tp->p->w[i].value];
        fprintf(f, "    {%zuu, %lld, %d}, /* %s */\n", tp->p->w[i].offset, (long long)cke_value_numel(v, 1), v->ndim >= 2,
                v->name);
    }
    fprintf(f, "};\n\n");
    fprintf(f, "static void train_adamw(ckm_model *m, float lr, float b1, float b2, float eps, float wd, int64_t step, float gscale) {\n"
               "    ckm_train *t = m->train;\n    const cke_ktable *kt = m->kt;\n"
               "    const int64_t pos0 = 0;\n    (void)pos0;\n    PROF_DECL;\n"
               "    PROF_TH(double prof_th[MAX_THREADS][2] = {{0}};) /* profile build: each thread's interval */\n"
               "    PROF_BEGIN();\n"
               "#pragma omp parallel num_threads(m->nth)\n"
               "    {\n"
               "        const int64_t th = omp_get_thread_num(), nt = omp_get_num_threads();\n"
               "        PROF_TH(prof_th[th][0] = omp_get_wtime();)\n"
               "        for (size_t i = 0; i < sizeof train_params / sizeof train_params[0]; i++) {\n"
               "            const int64_t n = train_params[i].n, a = n * th / nt, b = n * (th + 1) / nt;\n"
               "            const size_t o = train_params[i].off + (size_t)a * sizeof(float);\n"
               "            if (b > a)\n"
               "                kt->adamw((float *)(m->w + o), (float *)(t->m + o), (float *)(t->v + o), (const float *)(t->g + o),\n"
               "                          b - a, lr, b1, b2, eps, train_params[i].decay ? wd : 0.0f, step, gscale);\n"
               "        }\n"
               "        PROF_TH(prof_th[th][1] = omp_get_wtime();)\n"
               "    }\n"
               "    PROF_END(%d, -1, 1);\n"
               "    PROF_THREADS(%d, prof_th, m->nth);\n"
               "}\n\n", prof_id, prof_id);
    prof_id++;
    fprintf(f, "static double train_grad_sumsq(ckm_model *m) {\n    double s = 0;\n");
    for (int i = 0; i < tp->p->nw; i++)
        fprintf(f, "    s += m->kt->sumsq((const float *)(m->train->g + %zuu), %lld);\n", tp->p->w[i].offset,
                (long long)cke_value_numel(&ir->v[tp->p->w[i].value], 1));
    fprintf(f, "    return s;\n}\n\n");
    if (ferror(f)) return cke_fail(err, CKE_ERR_IO, "codegen: write error");
    return CKE_OK;
}

cke_status cke_codegen_emit_train_glue(const cke_plan *p, const cke_train_plan *tp, FILE *f, cke_err *err) {
    const cke_ir *ir = p->ir;
    /* the tensor table: names, shapes and offsets of weights.bin, for checkpoints and tools */
    fprintf(f, "static const ckm_tensor model_tensors[] = {\n");
    for (int i = 0; i < p->nw; i++) {
        const cke_value *v = &ir->v[p->w[i].value];
        fprintf(f, "    {\"%s\", %d, {%lld, %lld, %lld, %lld}, %zuu, %lld},\n", v->name, v->ndim, (long long)v->dims[0],
                (long long)(v->ndim > 1 ? v->dims[1] : 1), (long long)(v->ndim > 2 ? v->dims[2] : 1),
                (long long)(v->ndim > 3 ? v->dims[3] : 1), p->w[i].offset, (long long)cke_value_numel(v, 1));
    }
    fprintf(f, "};\n\n");
    if (!tp) {
        fprintf(f, "/* compiled without a training mode */\nstatic void train_free(ckm_model *m) { (void)m; }\n"
                   "#define TRAIN_FN(fn) NULL\n#define TRAIN_B 0\n#define TRAIN_T 0\n\n");
        return ferror(f) ? cke_fail(err, CKE_ERR_IO, "codegen: write error") : CKE_OK;
    }
    cke_status st = cke_codegen_emit_train(tp, f, err);
    if (st) return st;
    fputs("static void train_free(ckm_model *m) {\n"
          "    ckm_train *t = m->train;\n"
          "    if (!t) return;\n"
          "    big_free(t->saved, TR_SAVED_BYTES);\n"
          "    big_free(t->tmp, TR_TEMP);\n"
          "    big_free(t->scratch, TR_SCRATCH);\n"
          "    big_free(t->g, WEIGHTS_BYTES);\n"
          "    big_free(t->m, WEIGHTS_BYTES);\n"
          "    big_free(t->v, WEIGHTS_BYTES);\n"
          "    free(t->pos);\n"
          "    free(t->loss);\n"
          "    free(t);\n"
          "    m->train = NULL;\n"
          "}\n\n"
          "/* Makes the weights writable (private copy-on-write pages of the mapping) and allocates\n"
          " * gradients, AdamW moments (zero), saved activations, temps and scratch. */\n"
          "static int model_train_init(ckm_model *m) {\n"
          "    if (m->train) return 0;\n"
          "    if (mprotect(m->map, m->map_len, PROT_READ | PROT_WRITE) != 0) {\n"
          "        snprintf(m->err, sizeof m->err, \"cannot make the weights writable\");\n"
          "        return -1;\n"
          "    }\n"
          "    ckm_train *t = calloc(1, sizeof *t);\n"
          "    if (!t) { snprintf(m->err, sizeof m->err, \"out of memory\"); return -1; }\n"
          "    m->train = t;\n"
          "    t->saved = big_alloc(TR_SAVED_BYTES);\n"
          "    t->tmp = big_alloc(TR_TEMP);\n"
          "    t->scratch = big_alloc(TR_SCRATCH);\n"
          "    t->g = big_alloc(WEIGHTS_BYTES);\n"
          "    t->m = big_alloc(WEIGHTS_BYTES);\n"
          "    t->v = big_alloc(WEIGHTS_BYTES);\n"
          "    t->pos = malloc(sizeof(int32_t) * TR_B * TR_T);\n"
          "    t->loss = malloc(sizeof(float) * TR_B * TR_T);\n"
          "    if (!t->saved || !t->tmp || !t->scratch || !t->g || !t->m || !t->v || !t->pos || !t->loss) {\n"
          "        train_free(m);\n"
          "        snprintf(m->err, sizeof m->err, \"out of memory for training state\");\n"
          "        return -1;\n"
          "    }\n"
          "    for (int64_t r = 0; r < TR_B * TR_T; r++) t->pos[r] = (int32_t)(r % TR_T);\n"
          "    return 0;\n"
          "}\n\n"
          "static void model_zero_grad(ckm_model *m) { memset(m->train->g, 0, WEIGHTS_BYTES); }\n\n"
          "/* 0: weights, 1: gradients, 2: AdamW m, 3: AdamW v; each in the layout of model_tensors */\n"
          "static char *model_state(ckm_model *m, int which) {\n"
          "    if (which == 0) return (char *)m->w;\n"
          "    if (!m->train) return NULL;\n"
          "    return which == 1 ? m->train->g : which == 2 ? m->train->m : which == 3 ? m->train->v : NULL;\n"
          "}\n\n"
          "static int model_set_grad_hook(ckm_model *m, void (*fn)(void *ud, int layer), void *ud) {\n"
          "    if (!m->train) return -1;\n"
          "    m->train->hook = fn, m->train->hook_ud = ud;\n"
          "    return 0;\n"
          "}\n\n"
          "#define TRAIN_FN(fn) fn\n#define TRAIN_B TR_B\n#define TRAIN_T TR_T\n\n",
          f);
    return ferror(f) ? cke_fail(err, CKE_ERR_IO, "codegen: write error") : CKE_OK;
}
