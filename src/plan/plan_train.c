#include "plan/plan_train.h"

#include "cke/kernels.h"

#include <stdlib.h>
#include <string.h>

static size_t align_up(size_t x) { return (x + CKE_ALIGN - 1) / CKE_ALIGN * CKE_ALIGN; }

static int64_t cols_of(const cke_value *v) {
    int64_t c = 1;
    for (int d = 1; d < v->ndim; d++) c *= v->dims[d];
    return c;
}

/* Layer-0 counterpart of a body value of any layer ("l4.q" -> "l0.q"). */
static int to_layer0(const cke_ir *ir, int vi) {
    const cke_value *v = &ir->v[vi];
    if (v->layer <= 0) return vi;
    char name[CKE_IR_NAME];
    snprintf(name, sizeof name, "l0.%s", v->base);
    int j = cke_ir_find(ir, name);
    return j >= 0 ? j : vi;
}

static int add_buf(cke_train_plan *tp, int value, int node, int kind, int body, size_t size) {
    cke_tbuf *b = &tp->b[tp->nb];
    memset(b, 0, sizeof *b);
    b->value = value;
    b->node = node;
    b->kind = kind;
    b->body = body;
    b->size = align_up(size);
    b->alias_of = -1;
    b->first = b->last = -1;
    return tp->nb++;
}

/* Greedy placement, biggest first at the lowest offset free over the buffer's lifetime; the
 * same rule as the inference planner. Buffers with first < 0 are not in this phase. fixed >= 0:
 * a buffer already placed that every one of these must avoid, whatever its lifetime. */
static size_t place(cke_tbuf *b, const int *ids, int n, int fixed) {
    int *ord = malloc((size_t)n * sizeof(int));
    if (!ord) return (size_t)-1;
    memcpy(ord, ids, (size_t)n * sizeof(int));
    for (int i = 1; i < n; i++) {
        int x = ord[i], j = i - 1;
        while (j >= 0 && b[ord[j]].size < b[x].size) { ord[j + 1] = ord[j]; j--; }
        ord[j + 1] = x;
    }
    size_t top = fixed >= 0 ? b[fixed].offset + b[fixed].size : 0;
    for (int i = 0; i < n; i++) {
        cke_tbuf *x = &b[ord[i]];
        size_t off = 0;
        for (int again = 1; again;) {
            again = 0;
            if (fixed >= 0 && off < b[fixed].offset + b[fixed].size && b[fixed].offset < off + x->size) {
                off = b[fixed].offset + b[fixed].size;
                again = 1;
            }
            for (int j = 0; j < i; j++) {
                const cke_tbuf *c = &b[ord[j]];
                int live = !(c->last < x->first || x->last < c->first);
                if (live && off < c->offset + c->size && c->offset < off + x->size) { off = c->offset + c->size; again = 1; }
            }
        }
        x->offset = off;
        if (off + x->size > top) top = off + x->size;
    }
    free(ord);
    return top;
}

cke_status cke_train_plan_new(cke_train_plan **out, const cke_plan *p, int64_t B, int64_t T, int recompute, int bf16,
                              int nth, cke_err *err) {
    *out = NULL;
    const cke_ir *ir = p->ir;
    if (B < 1 || T < 1 || T > p->ctx)
        return cke_fail(err, CKE_ERR_ARG, "training batch %lld x %lld: need B >= 1 and 1 <= T <= ctx (%lld)", (long long)B,
                        (long long)T, (long long)p->ctx);
    for (int i = 0; i < p->nw; i++)
        if (cke_plan_wdtype(p, p->w[i].value) != 0)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "training needs f32 weights; %s is stored quantized/f16 (compile "
                                                      "the model for training from f32 or f16 source weights)",
                            ir->v[p->w[i].value].name);
    for (int i = 0; i < ir->nn; i++)
        if (!cke_grad_rules[ir->n[i].op].differentiable)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "training through op %s (%s) is not supported",
                            cke_op_names[ir->n[i].op], ir->v[ir->n[i].out].name);
    cke_train_plan *tp = calloc(1, sizeof *tp);
    if (!tp) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    tp->p = p;
    tp->B = B, tp->T = T, tp->rows = B * T;
    tp->recompute = recompute;
    tp->bf16 = bf16;
    /* per value at most a forward buffer, a bf16 copy and a gradient; statistics per node */
    tp->b = calloc((size_t)ir->nv * 3 + (size_t)ir->nn + 8, sizeof(cke_tbuf));
    tp->fwd_of = malloc((size_t)ir->nv * sizeof(int));
    tp->grad_of = malloc((size_t)ir->nv * sizeof(int));
    tp->save16_of = malloc((size_t)ir->nv * sizeof(int));
    tp->aux_of = malloc((size_t)ir->nn * sizeof(int));
    /* needed: some gradient rule reads the value; needed_other: one other than a linear layer's
     * weight gradient reading its input (that one rounds it to bf16 under mixed precision) */
    char *needed = calloc((size_t)ir->nv, 1), *needs_grad = calloc((size_t)ir->nv, 1), *needed_other = calloc((size_t)ir->nv, 1);
    if (!tp->b || !tp->fwd_of || !tp->grad_of || !tp->save16_of || !tp->aux_of || !needed || !needs_grad || !needed_other) {
        free(needed), free(needs_grad), free(needed_other);
        cke_train_plan_free(tp);
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < ir->nv; i++) tp->fwd_of[i] = tp->grad_of[i] = tp->save16_of[i] = -1;
    for (int i = 0; i < ir->nn; i++) tp->aux_of[i] = -1;
    const int64_t rows = tp->rows;

    /* 1. which forward values the backward reads (over all layers, mapped to layer 0) */
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        const cke_grad_rule *g = &cke_grad_rules[n->op];
        for (int k = 0; k < n->n_in; k++)
            if (g->needs & CKE_GRAD_IN(k)) {
                needed[to_layer0(ir, n->in[k])] = 1;
                if (!(n->op == CKE_OP_LINEAR && k == 0)) needed_other[to_layer0(ir, n->in[k])] = 1;
            }
        if (g->needs & CKE_GRAD_OUT) needed[to_layer0(ir, n->out)] = needed_other[to_layer0(ir, n->out)] = 1;
        for (int k = 0; k < n->n_in; k++)
            if (ir->v[n->in[k]].kind == CKE_V_ACT) needs_grad[to_layer0(ir, n->in[k])] = 1;
    }
    /* the logits get a gradient from the loss */
    int logits = ir->n[ir->nn - 1].out;
    needs_grad[logits] = 1;
    needed[logits] = 1;

    /* 2. the residual stream: a layer-0 value the next layer reads under a name the body also
     * reads from before the first layer */
    tp->carry_in = tp->carry_out = -1;
    for (int i = 0; i < ir->nn && tp->carry_out < 0; i++) {
        const cke_node *n = &ir->n[i];
        if (n->section != CKE_SEC_LAYER || n->layer != 0) continue;
        for (int k = 0; k < n->n_in; k++) {
            const cke_value *u = &ir->v[n->in[k]];
            if (u->kind != CKE_V_ACT || u->layer >= 0) continue;
            char nm[CKE_IR_NAME];
            snprintf(nm, sizeof nm, "l0.%s", u->base);
            int co = cke_ir_find(ir, nm);
            if (co >= 0) { tp->carry_in = n->in[k]; tp->carry_out = co; break; }
        }
    }
    if (tp->carry_in < 0) {
        free(needed), free(needs_grad), free(needed_other);
        cke_train_plan_free(tp);
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: no residual stream carried across layers", ir->family);
    }
    needed[tp->carry_in] = needed[tp->carry_out] = 1; /* each layer's input is the previous layer's output */

    /* 3. forward buffers: globals are saved; body values saved when needed, else temps; under
     * mixed precision a body value only a weight gradient reads: a temp plus its bf16 copy */
    size_t f32_extra = 0;
    for (int i = 0; i < ir->nv; i++) {
        const cke_value *v = &ir->v[i];
        if (v->kind != CKE_V_ACT || v->layer > 0 || v->producer < 0) continue;
        size_t n = (size_t)(v->dims[0] == CKE_DIM_T ? rows : v->dims[0]) * (size_t)cols_of(v);
        int body = v->layer == 0;
        int b16 = bf16 && body && needed[i] && !needed_other[i] && i != tp->carry_in && i != tp->carry_out;
        tp->fwd_of[i] = add_buf(tp, i, -1, (needed[i] && !b16) || !body ? CKE_TB_SAVED : CKE_TB_TEMP, body, n * sizeof(float));
        if (b16) {
            tp->save16_of[i] = add_buf(tp, i, -1, CKE_TB_SAVED, 1, n * sizeof(uint16_t));
            tp->b[tp->save16_of[i]].bf16 = 1;
            f32_extra += align_up(n * sizeof(float)) - tp->b[tp->save16_of[i]].size;
        }
    }
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        if (n->section == CKE_SEC_LAYER && n->layer != 0) continue;
        int aux = cke_grad_rules[n->op].aux;
        /* a norm per head (Qwen3 QK-norm) has one statistic per head row */
        int64_t nrows = rows * (n->op == CKE_OP_RMSNORM && n->a.head_dim > 0 ? cols_of(&ir->v[n->out]) / n->a.head_dim : 1);
        size_t sz = aux == 1 ? (size_t)nrows : aux == 2 ? 2 * (size_t)nrows : aux == 3 ? (size_t)(rows * n->a.n_head) : 0;
        if (sz) tp->aux_of[i] = add_buf(tp, -1, i, CKE_TB_SAVED, n->section == CKE_SEC_LAYER, sz * sizeof(float));
    }
    /* saved: slab (body) and globals, packed in order */
    for (int i = 0; i < tp->nb; i++) {
        cke_tbuf *b = &tp->b[i];
        if (b->kind != CKE_TB_SAVED) continue;
        size_t *top = b->body ? &tp->slab_bytes : &tp->saved_global;
        b->offset = *top;
        *top += b->size;
    }
    tp->slab_bytes_f32 = tp->slab_bytes + f32_extra;

    /* 4. body schedule: forward positions for temps, reverse positions for gradients */
    int nbody = 0;
    int *body = malloc((size_t)ir->nn * sizeof(int));
    int *ids = malloc((size_t)(tp->nb + ir->nv + 8) * sizeof(int)); /* temps (<= nb), then gradients (<= nv + 1) */
    if (!body || !ids) {
        free(body), free(ids), free(needed), free(needs_grad), free(needed_other);
        cke_train_plan_free(tp);
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < ir->nn; i++)
        if (ir->n[i].section == CKE_SEC_LAYER && ir->n[i].layer == 0 && cke_ir_node_ever(ir, &ir->n[i])) body[nbody++] = i;
    int nids = 0;
    for (int s = 0; s < nbody; s++) {
        const cke_node *n = &ir->n[body[s]];
        int bo = tp->fwd_of[n->out];
        int again = 0; /* a value two layer kinds define: its life starts at the first definition */
        for (int j = 0; j < nids && !again; j++) again = ids[j] == bo;
        if (bo >= 0 && tp->b[bo].kind == CKE_TB_TEMP && !again) { tp->b[bo].first = s; tp->b[bo].last = s; ids[nids++] = bo; }
        for (int k = 0; k < n->n_in; k++) {
            int bi = tp->fwd_of[n->in[k]];
            if (bi >= 0 && tp->b[bi].kind == CKE_TB_TEMP && tp->b[bi].last < s) tp->b[bi].last = s;
        }
    }
    const int ntemp = nids; /* ids[0, ntemp): the temps; the gradients' ids follow */
    int *gids = ids + ntemp;

    /* gradients of body values: backward position of node s is nbody-1-s. A value's gradient
     * is first written by the backward of its last consumer and read by its producer's. */
    nids = 0;
    for (int s = 0; s < nbody; s++) {
        const cke_node *n = &ir->n[body[s]];
        if (!needs_grad[n->out] || n->out == tp->carry_out) continue;
        if (tp->grad_of[n->out] >= 0) continue; /* defined by two layer kinds: read by the first one's backward, last */
        const cke_value *v = &ir->v[n->out];
        int g = add_buf(tp, n->out, -1, CKE_TB_GRAD, 1, (size_t)rows * (size_t)cols_of(v) * sizeof(float));
        tp->grad_of[n->out] = g;
        tp->b[g].last = nbody - 1 - s;
        tp->b[g].first = nbody; /* lowered below */
        gids[nids++] = g;
    }
    /* the carried gradient: d(carry_out) enters the body, d(carry_in) leaves it, one buffer */
    {
        const cke_value *v = &ir->v[tp->carry_out];
        int g = add_buf(tp, tp->carry_out, -1, CKE_TB_GRAD, 1, (size_t)rows * (size_t)cols_of(v) * sizeof(float));
        tp->grad_of[tp->carry_out] = g;
        tp->grad_of[tp->carry_in] = g;
        tp->b[g].first = 0;
        tp->b[g].last = nbody;
        gids[nids++] = g;
    }
    for (int s = 0; s < nbody; s++) {
        const cke_node *n = &ir->n[body[s]];
        for (int k = 0; k < n->n_in; k++) {
            int g = tp->grad_of[n->in[k]];
            if (g >= 0 && n->in[k] != tp->carry_in && tp->b[g].first > nbody - 1 - s) tp->b[g].first = nbody - 1 - s;
        }
    }
    size_t grad_top = place(tp->b, gids, nids, -1);
    /* with recompute a layer's forward runs again in the backward, while the carried gradient
     * holds the layers above's result: its temps keep out of that buffer */
    size_t temp_top = place(tp->b, ids, ntemp, recompute ? tp->grad_of[tp->carry_out] : -1);
    tp->temp_bytes = temp_top > grad_top ? temp_top : grad_top;

    /* global gradients (epilogue values): own region after the temps; dlogits lives in logits */
    size_t gtop = align_up(tp->temp_bytes);
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        if (n->section != CKE_SEC_EPILOGUE && n->section != CKE_SEC_PROLOGUE) continue;
        if (n->out == tp->carry_in) continue; /* the prologue's output gets the carried gradient */
        if (!needs_grad[n->out]) continue;
        const cke_value *v = &ir->v[n->out];
        int g = add_buf(tp, n->out, -1, CKE_TB_GRAD, 0, (size_t)rows * (size_t)cols_of(v) * sizeof(float));
        tp->grad_of[n->out] = g;
        if (n->out == logits) {
            tp->b[g].alias_of = tp->fwd_of[logits];
        } else {
            tp->b[g].offset = gtop;
            gtop += tp->b[g].size;
        }
    }
    tp->temp_bytes = gtop;
    tp->saved_bytes_norecompute = tp->slab_bytes * (size_t)ir->n_layer + tp->saved_global;
    tp->carry_bytes = tp->b[tp->fwd_of[tp->carry_out]].size;
    tp->saved_bytes = recompute ? tp->saved_global + tp->slab_bytes + (size_t)ir->n_layer * tp->carry_bytes
                                : tp->saved_bytes_norecompute;

    /* 5. scratch: the largest workspace of any forward/backward kernel */
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        size_t ws = 0;
        if (n->op == CKE_OP_LINEAR) {
            int64_t N = ir->v[n->in[1]].dims[0], K = ir->v[n->in[1]].dims[1];
            size_t a = cke_gemm_ws_size(rows, N, K, nth), b = cke_gemm_ws_size(rows, K, N, nth),
                   c = cke_gemm_ws_size(N, K, rows, nth);
            ws = a > b ? a : b;
            ws = ws > c ? ws : c;
        } else if (n->op == CKE_OP_ATTENTION) {
            cke_attn_shape as = {.T = T, .Tk = T, .n_head = n->a.n_head, .n_kv_head = n->a.n_kv_head,
                                 .head_dim = n->a.head_dim, .scale = n->a.scale, .window = n->a.window,
                                 .softcap = n->a.softcap};
            size_t a = cke_attn_ws_size(&as, nth), b = cke_attn_bwd_ws_size(&as, nth);
            ws = a > b ? a : b;
        } else if (n->op == CKE_OP_MOE) { /* gate experts [E, F, D] */
            const cke_value *g = &ir->v[n->in[2]];
            size_t a = cke_moe_ws_size(rows, g->dims[2], g->dims[1], g->dims[0], n->a.n_expert_used, 0, 0, 0, nth),
                   b = cke_moe_bwd_ws_size(rows, g->dims[2], g->dims[1], g->dims[0], n->a.n_expert_used, nth);
            ws = a > b ? a : b;
        }
        if (align_up(ws) > tp->scratch_bytes) tp->scratch_bytes = align_up(ws);
    }
    free(body), free(ids), free(needed), free(needs_grad), free(needed_other);
    *out = tp;
    return CKE_OK;
}

void cke_train_plan_free(cke_train_plan *tp) {
    if (!tp) return;
    free(tp->b);
    free(tp->fwd_of);
    free(tp->grad_of);
    free(tp->aux_of);
    free(tp->save16_of);
    free(tp);
}

void cke_train_plan_write_map(const cke_train_plan *tp, FILE *f) {
    const cke_ir *ir = tp->p->ir;
    size_t w = tp->p->weights_bytes;
    fprintf(f, "\ntrain (B = %lld sequences x T = %lld tokens):\n", (long long)tp->B, (long long)tp->T);
    fprintf(f, "  weights, gradients, AdamW m and v: 4 x %zu bytes (fp32)\n", w);
    if (!tp->bf16) fprintf(f, "  precision: fp32\n");
    else {
        int n16 = 0;
        for (int i = 0; i < tp->nb; i++) n16 += tp->b[i].bf16;
        fprintf(f, "  precision: bf16 mixed: each linear GEMM rounds its operands (weights, activations, output gradients)\n"
                   "    to bf16 while packing them and sums in fp32; the %d layer values only a weight gradient reads are\n"
                   "    saved in bf16 (dtype bf16 below; their fp32 forward copy is a temp): the slab is %zu bytes, %zu\n"
                   "    with them in fp32 (%.1f%% less)\n",
                n16, tp->slab_bytes, tp->slab_bytes_f32,
                tp->slab_bytes_f32 ? 100.0 * (1.0 - (double)tp->slab_bytes / (double)tp->slab_bytes_f32) : 0.0);
    }
    if (tp->recompute)
        fprintf(f, "  saved activations (recomputing each layer in the backward): one %zu-byte slab + %d x %zu layer "
                   "outputs + %zu global = %zu; saving every layer would take %zu (%.1f%% saved)\n",
                tp->slab_bytes, ir->n_layer, tp->carry_bytes, tp->saved_global, tp->saved_bytes,
                tp->saved_bytes_norecompute,
                100.0 * (1.0 - (double)tp->saved_bytes / (double)tp->saved_bytes_norecompute));
    else
        fprintf(f, "  saved activations: %zu bytes per layer x %d layers + %zu global = %zu\n", tp->slab_bytes, ir->n_layer,
                tp->saved_global, tp->saved_bytes);
    fprintf(f, "  temps and activation gradients (shared, by liveness): %zu; scratch %zu\n", tp->temp_bytes,
            tp->scratch_bytes);
    fprintf(f, "  %-18s %-6s %-5s %10s %10s %s\n", "value", "kind", "dtype", "offset", "size", "lifetime");
    for (int i = 0; i < tp->nb; i++) {
        const cke_tbuf *b = &tp->b[i];
        char name[CKE_IR_NAME + 8];
        if (b->value >= 0) snprintf(name, sizeof name, "%s%s", b->kind == CKE_TB_GRAD ? "d " : "", b->body ? ir->v[b->value].base : ir->v[b->value].name);
        else snprintf(name, sizeof name, "%s.stats", ir->v[ir->n[b->node].out].base);
        const char *kind = b->kind == CKE_TB_SAVED ? (b->body ? "slab" : "saved") : b->kind == CKE_TB_TEMP ? "temp" : "grad";
        const char *dt = b->bf16 ? "bf16" : "f32";
        if (b->alias_of >= 0) fprintf(f, "  %-18s %-6s %-5s %10s %10zu shares %s\n", name, kind, dt, "-", b->size, "its forward buffer");
        else if (b->first >= 0) fprintf(f, "  %-18s %-6s %-5s %10zu %10zu %d..%d\n", name, kind, dt, b->offset, b->size, b->first, b->last);
        else fprintf(f, "  %-18s %-6s %-5s %10zu %10zu\n", name, kind, dt, b->offset, b->size);
    }
}
