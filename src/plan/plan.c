#include "plan/plan.h"
#include "cke/cke.h"

#include "cke/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t align_up(size_t x) { return (x + CKE_ALIGN - 1) / CKE_ALIGN * CKE_ALIGN; }

/* The layer-0 counterpart of a value of another layer ("l4.x" -> "l0.x"), or itself. */
static int to_layer0(const cke_ir *ir, int vi) {
    const cke_value *v = &ir->v[vi];
    if (v->layer <= 0) return vi;
    char name[CKE_IR_NAME];
    snprintf(name, sizeof name, "l0.%s", v->base);
    int j = cke_ir_find(ir, name);
    return j >= 0 ? j : vi;
}

/* The value holding only the last row of vi, created once (inference lowering). */
static int last_row_value(cke_ir *ir, int vi, cke_err *err) {
    char name[CKE_IR_NAME];
    snprintf(name, sizeof name, "%s_last", ir->v[vi].base);
    int j = cke_ir_find(ir, name);
    if (j >= 0) return j;
    if (ir->nv + 1 > ir->cap_v) {
        int nc = ir->cap_v ? ir->cap_v * 2 : 64;
        cke_value *nv = realloc(ir->v, (size_t)nc * sizeof *nv);
        if (!nv) { cke_fail(err, CKE_ERR_NOMEM, "out of memory"); return -1; }
        ir->v = nv;
        ir->cap_v = nc;
    }
    cke_value *v = &ir->v[ir->nv];
    *v = ir->v[vi];
    snprintf(v->name, sizeof v->name, "%s", name);
    snprintf(v->base, sizeof v->base, "%s", name);
    v->layer = -1;
    v->dims[0] = 1;
    v->producer = -1;
    v->used = 0;
    return ir->nv++;
}

static int64_t cols_of(const cke_value *v) {
    int64_t c = 1;
    for (int d = 1; d < v->ndim; d++) c *= v->dims[d];
    return c;
}

/* Ops that may write their output over their input (the kernels allow it). */
static int elementwise_in_place(int op) { return op == CKE_OP_SOFTCAP || op == CKE_OP_SCALE; }

/* The all-rows output head of prefill (prefill_all): the epilogue nodes as the template writes
 * them, reading the T-row residual stream instead of its last row. Outputs of [T, vocab] go to
 * the caller's logits rather than the arena (T x vocab floats can be hundreds of MB): the last
 * node's, and one that only an elementwise op reads next (which then runs in place). */
static cke_status lower_head(cke_plan *p, cke_mode_plan *m, cke_err *err) {
    cke_ir *ir = p->ir;
    m->head = calloc((size_t)ir->nn + 1, sizeof(cke_node));
    m->head_buf = calloc((size_t)ir->nn + 1, sizeof(int));
    if (!m->head || !m->head_buf) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < ir->nn; i++) {
        if (ir->n[i].section != CKE_SEC_EPILOGUE) continue;
        cke_node c = ir->n[i];
        for (int k = 0; k < c.n_in; k++) c.in[k] = to_layer0(ir, c.in[k]);
        m->head[m->n_head++] = c;
    }
    if (!m->n_head) return CKE_OK;
    const cke_value *final = &ir->v[m->head[m->n_head - 1].out];
    for (int k = 0; k < m->n_head; k++) {
        const cke_node *n = &m->head[k];
        const cke_value *o = &ir->v[n->out];
        int readers = 0;
        for (int j = k + 1; j < m->n_head; j++)
            for (int q = 0; q < m->head[j].n_in; q++) readers += m->head[j].in[q] == n->out;
        int to_caller = k == m->n_head - 1 ||
                        (cols_of(o) == cols_of(final) && o->dims[0] == final->dims[0] && readers == 1 &&
                         elementwise_in_place(m->head[k + 1].op) && m->head[k + 1].in[0] == n->out);
        if (to_caller) { m->head_buf[k] = -1; continue; }
        cke_buf *b = &m->bufs[m->n_bufs];
        b->value = n->out;
        b->rows = o->dims[0] == CKE_DIM_T ? m->T : o->dims[0];
        b->data_bytes = (size_t)(b->rows * cols_of(o)) * sizeof(float);
        b->size = align_up(b->data_bytes + (p->canaries ? CKE_CANARY : 0));
        b->first = b->last = m->n_sched + k;
        b->alias_of = -1;
        b->head = 1;
        m->head_buf[k] = m->n_bufs++;
    }
    /* lifetimes: a head value lives until the head's last read; a schedule value the head reads
     * (the residual stream, pinned anyway) lives through the head */
    for (int k = 0; k < m->n_head; k++)
        for (int q = 0; q < m->head[k].n_in; q++) {
            int vi = m->head[k].in[q], bi = -1;
            for (int j = 0; j < k; j++)
                if (m->head[j].out == vi) bi = m->head_buf[j];
            if (bi < 0 && ir->v[vi].kind == CKE_V_ACT && m->buf_of[vi] >= 0) {
                bi = m->buf_of[vi];
                if (m->bufs[bi].alias_of >= 0) bi = m->bufs[bi].alias_of;
            }
            if (bi >= 0 && m->bufs[bi].last < m->n_sched + k) m->bufs[bi].last = m->n_sched + k;
        }
    return CKE_OK;
}

/* Rows of a head node's output: the mode's T for a T-dim value. */
static int64_t head_rows(const cke_ir *ir, const cke_mode_plan *m, const cke_node *n) {
    return ir->v[n->out].dims[0] == CKE_DIM_T ? m->T : ir->v[n->out].dims[0];
}

static cke_status lower_mode(cke_plan *p, cke_mode_plan *m, const char *mode, int64_t T, int nth, int with_head,
                             int all_rows, cke_err *err) {
    cke_ir *ir = p->ir;
    snprintf(m->mode, sizeof m->mode, "%s", mode);
    m->T = T;
    m->all_rows = all_rows;
    m->nth_planned = nth;
    m->sched = calloc((size_t)ir->nn + 8, sizeof(cke_node));
    if (!m->sched) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");

    /* 1. schedule: prologue, layer 0, epilogue (with last_row where it reads T rows, unless every
     * row needs its logits) */
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        if (n->section == CKE_SEC_LAYER && (n->layer != 0 || !cke_ir_node_ever(ir, n))) continue;
        cke_node c = *n;
        if (n->section == CKE_SEC_EPILOGUE) {
            for (int k = 0; k < c.n_in; k++) {
                int vi = to_layer0(ir, c.in[k]);
                if (all_rows) { c.in[k] = vi; continue; }
                const cke_value *v = &ir->v[vi];
                if (v->kind == CKE_V_ACT && v->ndim == 2 && v->dims[0] == CKE_DIM_T && v->producer >= 0 &&
                    ir->n[v->producer].section != CKE_SEC_EPILOGUE) {
                    int lv = last_row_value(ir, vi, err);
                    if (lv < 0) return err ? err->code : CKE_ERR_NOMEM;
                    int have = 0;
                    for (int s = 0; s < m->n_sched; s++) have |= m->sched[s].out == lv;
                    if (!have) {
                        cke_node lr;
                        memset(&lr, 0, sizeof lr);
                        lr.op = CKE_OP_LAST_ROW;
                        lr.section = CKE_SEC_EPILOGUE;
                        lr.layer = -1;
                        lr.out = lv;
                        lr.in[0] = vi;
                        lr.n_in = 1;
                        m->sched[m->n_sched++] = lr;
                    }
                    vi = lv;
                }
                c.in[k] = vi;
            }
        }
        m->sched[m->n_sched++] = c;
    }

    /* 2. rows of every value in this mode */
    int nv = ir->nv;
    int64_t *rows = calloc((size_t)nv, sizeof(int64_t));
    m->buf_of = malloc((size_t)nv * sizeof(int));
    m->bufs = calloc((size_t)m->n_sched + (size_t)ir->nn + 8, sizeof(cke_buf)); /* schedule + head */
    if (!rows || !m->buf_of || !m->bufs) { free(rows); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < nv; i++) m->buf_of[i] = -1;
    for (int s = 0; s < m->n_sched; s++) {
        const cke_node *n = &m->sched[s];
        const cke_value *o = &ir->v[n->out];
        int64_t r = o->dims[0] == CKE_DIM_T ? T : o->dims[0];
        if (n->op == CKE_OP_LAST_ROW) r = 1;
        else if (n->section == CKE_SEC_EPILOGUE && ir->v[n->in[0]].kind == CKE_V_ACT) r = rows[n->in[0]];
        rows[n->out] = r;
    }

    /* 3. buffers and lifetimes; carries pinned and shared */
    for (int s = 0; s < m->n_sched; s++) {
        const cke_node *n = &m->sched[s];
        if (m->buf_of[n->out] >= 0) continue; /* a value two layer kinds define: one buffer, from the first */
        cke_buf *b = &m->bufs[m->n_bufs];
        const cke_value *o = &ir->v[n->out];
        b->value = n->out;
        b->rows = rows[n->out];
        int64_t cols = 1;
        for (int d = 1; d < o->ndim; d++) cols *= o->dims[d];
        b->data_bytes = (size_t)(b->rows * cols) * sizeof(float);
        b->size = align_up(b->data_bytes + (p->canaries ? CKE_CANARY : 0));
        b->first = b->last = s;
        b->alias_of = -1;
        m->buf_of[n->out] = m->n_bufs++;
    }
    for (int s = 0; s < m->n_sched; s++) {
        const cke_node *n = &m->sched[s];
        for (int k = 0; k < n->n_in; k++) {
            int bi = m->buf_of[n->in[k]];
            if (bi >= 0 && m->bufs[bi].last < s) m->bufs[bi].last = s;
            /* a value from outside the body read inside it lives through the whole loop */
            if (bi >= 0 && n->section == CKE_SEC_LAYER && ir->v[n->in[k]].layer < 0) m->bufs[bi].pinned = 1;
        }
    }
    /* carries: a layer-0 value whose name the body also reads from before the first layer (the
     * residual stream "x") is the carry-out of that carry-in; the two share one buffer. */
    for (int b = 0; b < m->n_bufs; b++) {
        const cke_value *v = &ir->v[m->bufs[b].value];
        if (v->layer != 0) continue;
        for (int s = 0; s < m->n_sched && m->bufs[b].alias_of < 0; s++) {
            const cke_node *q = &m->sched[s];
            if (q->section != CKE_SEC_LAYER) continue;
            for (int j = 0; j < q->n_in; j++) {
                const cke_value *u = &ir->v[q->in[j]];
                if (u->kind == CKE_V_ACT && u->layer < 0 && !strcmp(u->base, v->base)) {
                    int in_b = m->buf_of[q->in[j]];
                    m->bufs[in_b].pinned = 1;
                    m->bufs[b].pinned = 1;
                    m->bufs[b].alias_of = in_b;
                    break;
                }
            }
        }
    }
    /* the loop reuses layer 0's buffers: layer 1 may read only carried values of layer 0 */
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        if (n->section != CKE_SEC_LAYER || n->layer != 1) continue;
        for (int k = 0; k < n->n_in; k++) {
            const cke_value *v = &ir->v[n->in[k]];
            int bi = m->buf_of[n->in[k]];
            if (v->kind == CKE_V_ACT && v->layer == 0 && (bi < 0 || m->bufs[bi].alias_of < 0)) {
                free(rows);
                return cke_fail(err, CKE_ERR_UNSUPPORTED,
                                "%s: layer 1 reads '%s' of layer 0, which is not a value carried from layer to layer "
                                "(the body must read '%s' from before the first layer too)",
                                ir->family, v->name, v->base);
            }
        }
    }
    if (with_head) {
        cke_status hs = lower_head(p, m, err);
        if (hs) { free(rows); return hs; }
    }
    for (int b = 0; b < m->n_bufs; b++)
        if (m->bufs[b].pinned) m->bufs[b].last = m->n_sched + m->n_head;

    /* 4. placement: biggest first, lowest offset free over the buffer's lifetime */
    size_t nb = m->n_bufs > 0 ? (size_t)m->n_bufs : 1;
    int *order = malloc(nb * sizeof(int));
    int *placed = calloc(nb, sizeof(int));
    if (!order || !placed) { free(rows); free(order); free(placed); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    int no = 0;
    for (int b = 0; b < m->n_bufs; b++) {
        m->sum_bytes += m->bufs[b].alias_of >= 0 ? 0 : m->bufs[b].size;
        if (m->bufs[b].alias_of < 0) order[no++] = b;
    }
    /* insertion sort: stable, deterministic, n is small */
    for (int i = 1; i < no; i++) {
        int x = order[i], j = i - 1;
        while (j >= 0 && m->bufs[order[j]].size < m->bufs[x].size) { order[j + 1] = order[j]; j--; }
        order[j + 1] = x;
    }
    for (int oi = 0; oi < no; oi++) {
        cke_buf *b = &m->bufs[order[oi]];
        size_t off = 0;
        for (int again = 1; again;) {
            again = 0;
            for (int pj = 0; pj < oi; pj++) {
                const cke_buf *c = &m->bufs[order[pj]];
                int live = !(c->last < b->first || b->last < c->first);
                if (live && off < c->offset + c->size && c->offset < off + b->size) {
                    off = c->offset + c->size;
                    again = 1;
                }
            }
        }
        b->offset = off;
        placed[order[oi]] = 1;
        if (off + b->size > m->arena_bytes) m->arena_bytes = off + b->size;
    }
    for (int b = 0; b < m->n_bufs; b++)
        if (m->bufs[b].alias_of >= 0) m->bufs[b].offset = m->bufs[m->bufs[b].alias_of].offset;
    free(order);
    free(placed);

    /* 5. scratch: the largest kernel workspace of the schedule */
    for (int s = 0; s < m->n_sched; s++) {
        const cke_node *n = &m->sched[s];
        size_t ws = 0;
        if (n->op == CKE_OP_LINEAR) {
            const cke_value *w = &ir->v[n->in[1]];
            ws = cke_gemm_ws_size(rows[n->out], w->dims[0], w->dims[1], nth);
        } else if (n->op == CKE_OP_MOE) {
            const cke_value *g = &ir->v[n->in[2]];
            ws = cke_moe_ws_size(rows[n->out], g->dims[2], g->dims[1], g->dims[0], n->a.n_expert_used, 0, 0, 0, nth);
        } else if (n->op == CKE_OP_ATTENTION) {
            /* the loop runs every layer's copy, whose attributes may differ (Gemma 2 windows) */
            for (int i = 0; i < ir->nn; i++) {
                const cke_node *q = &ir->n[i];
                if (q->op != CKE_OP_ATTENTION || strcmp(ir->v[q->out].base, ir->v[n->out].base)) continue;
                cke_attn_shape as = {.T = rows[n->out], .Tk = p->ctx, .n_head = q->a.n_head, .n_kv_head = q->a.n_kv_head,
                                     .head_dim = q->a.head_dim, .scale = q->a.scale, .window = q->a.window,
                                     .softcap = q->a.softcap};
                size_t w = cke_attn_ws_size(&as, nth);
                if (w > ws) ws = w;
            }
        }
        if (align_up(ws) > m->scratch_bytes) m->scratch_bytes = align_up(ws);
    }
    for (int k = 0; k < m->n_head; k++) { /* the head's linears run on all T rows */
        const cke_node *n = &m->head[k];
        if (n->op != CKE_OP_LINEAR) continue;
        const cke_value *w = &ir->v[n->in[1]];
        size_t ws = align_up(cke_gemm_ws_size(head_rows(ir, m, n), w->dims[0], w->dims[1], nth));
        if (ws > m->scratch_bytes) m->scratch_bytes = ws;
    }
    free(rows);
    return CKE_OK;
}

static cke_status plan_weights(cke_plan *p, cke_err *err) {
    cke_ir *ir = p->ir;
    p->w = calloc((size_t)ir->nv, sizeof(cke_wslot));
    if (!p->w) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    char *seen = calloc((size_t)ir->nv, 1);
    if (!seen) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    p->weights_header = 4096;
    size_t off = 0;
    /* planned order: first use in the graph, so a forward pass streams the file front to back */
    for (int i = 0; i < ir->nn; i++)
        for (int k = 0; k < ir->n[i].n_in; k++) {
            int vi = ir->n[i].in[k];
            const cke_value *v = &ir->v[vi];
            if (v->kind != CKE_V_WEIGHT || v->absent) continue; /* absent: not this layer's kind, no bytes */
            if (v->tied_to >= 0) vi = v->tied_to;
            if (seen[vi]) continue;
            seen[vi] = 1;
            cke_wslot *s = &p->w[p->nw++];
            s->value = vi;
            s->offset = off;
            s->size = (size_t)cke_value_numel(&ir->v[vi], 1) * sizeof(float);
            off = align_up(off + s->size);
        }
    free(seen);
    p->weights_bytes = off;
    return CKE_OK;
}

size_t cke_plan_moe_ws(const cke_plan *p, const cke_node *n, int64_t rows, int nth) {
    const cke_ir *ir = p->ir;
    const cke_value *g = &ir->v[n->in[2]]; /* [E, F, D] */
    size_t best = 0;
    for (int l = 0; l < ir->n_layer; l++) {
        int q[3];
        for (int j = 0; j < 3; j++) {
            char nm[CKE_IR_NAME + 16];
            snprintf(nm, sizeof nm, "l%d.%s", l, ir->v[n->in[2 + j]].base);
            const int vi = cke_ir_find(ir, nm);
            q[j] = vi >= 0 ? cke_plan_wdtype(p, vi) : 0;
        }
        const size_t ws = cke_moe_ws_size(rows, g->dims[2], g->dims[1], g->dims[0], n->a.n_expert_used, q[0], q[1], q[2], nth);
        if (ws > best) best = ws;
    }
    return best;
}

int cke_plan_wdtype(const cke_plan *p, int value) {
    if (value < 0) return 0;
    if (p->ir->v[value].absent) { /* a layer kind's tensor in a layer without it (the schedule's layer 0): the first
                                   * layer holding it stands for its format (per-op costs, shapes in profiles) */
        char nm[CKE_IR_NAME + 16];
        for (int l = 0; l < p->ir->n_layer; l++) {
            snprintf(nm, sizeof nm, "l%d.%s", l, p->ir->v[value].base);
            const int j = cke_ir_find(p->ir, nm);
            if (j >= 0 && !p->ir->v[j].absent) return cke_plan_wdtype(p, j);
        }
        return 0;
    }
    if (p->ir->v[value].tied_to >= 0) value = p->ir->v[value].tied_to;
    for (int i = 0; i < p->nw; i++)
        if (p->w[i].value == value) return p->w[i].dtype;
    return 0;
}

cke_status cke_plan_set_wdtypes(cke_plan *p, int (*dtype_of)(void *ud, const char *name), void *ud, cke_err *err) {
    cke_ir *ir = p->ir;
    /* a weight keeps its format only when every read is a LINEAR's matrix or an EMBED's table (a
     * tied output head and its embedding share the blocks: the lookup dequantizes its rows) */
    char *f32_only = calloc((size_t)ir->nv, 1);
    if (!f32_only) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < ir->nn; i++)
        for (int k = 0; k < ir->n[i].n_in; k++) {
            int vi = ir->n[i].in[k];
            if (ir->v[vi].kind != CKE_V_WEIGHT) continue;
            const int q_ok = (k == 1 && (ir->n[i].op == CKE_OP_LINEAR || ir->n[i].op == CKE_OP_EMBED)) ||
                             (k >= 2 && ir->n[i].op == CKE_OP_MOE); /* the expert stacks; the router stays f32 */
            if (!q_ok) f32_only[ir->v[vi].tied_to >= 0 ? ir->v[vi].tied_to : vi] = 1;
        }
    size_t off = 0;
    for (int i = 0; i < p->nw; i++) {
        cke_wslot *s = &p->w[i];
        const cke_value *v = &ir->v[s->value];
        /* matrices [N, K], and the experts' stacks [E, N, K]: rows of K */
        const int64_t K = v->dims[v->ndim - 1], rows = cke_value_numel(v, 1) / K;
        int dt = f32_only[s->value] || v->ndim < 2 ? 0 : dtype_of(ud, v->name);
        size_t qs = dt ? cke_qtype_row_size(dt, K) : 0;
        if (dt && !qs) dt = 0; /* format without kernels, or a row that is not whole blocks: f32 */
        s->dtype = dt;
        s->size = dt ? qs * (size_t)rows : (size_t)cke_value_numel(v, 1) * sizeof(float);
        s->offset = off;
        off = align_up(off + s->size);
    }
    free(f32_only);
    p->weights_bytes = off;
    /* scratch: the quantized linear's workspace at this mode's rows, for every layer's format */
    cke_mode_plan *ms[3] = {&p->prefill, &p->decode, &p->batch};
    for (int mi = 0; mi < 3; mi++) {
        cke_mode_plan *m = ms[mi];
        for (int si = 0; si < m->n_sched + m->n_head; si++) { /* the schedule, then the all-rows head */
            const cke_node *n = si < m->n_sched ? &m->sched[si] : &m->head[si - m->n_sched];
            if (n->op == CKE_OP_MOE && si < m->n_sched && m->buf_of[n->out] >= 0) { /* every layer's expert formats */
                size_t ws = align_up(cke_plan_moe_ws(p, n, m->bufs[m->buf_of[n->out]].rows, m->nth_planned));
                if (ws > m->scratch_bytes) m->scratch_bytes = ws;
                continue;
            }
            if (n->op != CKE_OP_LINEAR || (si < m->n_sched && m->buf_of[n->out] < 0)) continue;
            const cke_value *w = &ir->v[n->in[1]];
            int64_t rows = si < m->n_sched ? m->bufs[m->buf_of[n->out]].rows : head_rows(ir, m, n);
            for (int l = w->layer >= 0 ? 0 : -1; l < (w->layer >= 0 ? ir->n_layer : 0); l++) {
                int vi = n->in[1];
                if (l >= 0) {
                    char nm[CKE_IR_NAME + 16];
                    snprintf(nm, sizeof nm, "l%d.%s", l, w->base);
                    vi = cke_ir_find(ir, nm);
                }
                int dt = cke_plan_wdtype(p, vi);
                if (!dt) continue;
                size_t ws = align_up(cke_qlinear_ws_size(dt, rows, w->dims[1], w->dims[0], m->nth_planned));
                if (ws > m->scratch_bytes) m->scratch_bytes = ws;
            }
        }
    }
    return CKE_OK;
}

/* Per KV type: its name (--kv-type, cke-model.txt) and bytes per block of `blck` values. */
static const struct { const char *name; size_t bytes; int64_t blck; } kv_types[] = {
    [CKE_KV_F16] = {"f16", 2, 1},
    [CKE_KV_F32] = {"f32", 4, 1},
    [CKE_KV_Q8_0] = {"q8_0", 34, 32}, /* ggml's block: f16 scale + 32 int8 */
};
#define N_KV_TYPES ((int)(sizeof kv_types / sizeof kv_types[0]))

const char *cke_kv_type_name(cke_kv_type t) { return (int)t >= 0 && (int)t < N_KV_TYPES ? kv_types[t].name : "?"; }

int cke_kv_type_parse(const char *s, cke_kv_type *out) {
    for (int i = 0; s && i < N_KV_TYPES; i++)
        if (!strcmp(s, kv_types[i].name)) { *out = (cke_kv_type)i; return 0; }
    return -1;
}

size_t cke_plan_kv_bytes(int kv_type, int64_t n) {
    if (kv_type < 0 || kv_type >= N_KV_TYPES) return 0;
    return (size_t)(n / kv_types[kv_type].blck) * kv_types[kv_type].bytes;
}

cke_status cke_plan_new(cke_plan **out, cke_ir *ir, int64_t ctx, int64_t prefill_chunk, int nth_max, int canaries,
                        int kv_type, cke_err *err) {
    *out = NULL;
    if (ctx < 1 || prefill_chunk < 1 || nth_max < 1)
        return cke_fail(err, CKE_ERR_ARG, "plan: ctx, prefill chunk and threads must be >= 1");
    if (!cke_plan_kv_bytes(kv_type, 32))
        return cke_fail(err, CKE_ERR_ARG, "plan: KV cache type %d is not one of f16, f32, q8_0", kv_type);
    if (prefill_chunk > ctx) prefill_chunk = ctx;
    cke_plan *p = calloc(1, sizeof *p);
    if (!p) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    p->ir = ir;
    p->ctx = ctx;
    p->max_threads = nth_max;
    p->canaries = canaries;
    p->kv_type = kv_type;
    for (int i = 0; i < ir->nn; i++)
        if (ir->n[i].op == CKE_OP_ATTENTION) {
            int64_t kd = ir->n[i].a.n_kv_head * ir->n[i].a.head_dim;
            if (p->kv_dim && p->kv_dim != kd) {
                cke_plan_free(p);
                return cke_fail(err, CKE_ERR_UNSUPPORTED, "plan: attention layers with different kv widths");
            }
            p->kv_dim = kd;
            if (kv_type == CKE_KV_Q8_0 && ir->n[i].a.head_dim % 32) { /* a head's row: whole blocks */
                int64_t hd = ir->n[i].a.head_dim;
                cke_plan_free(p);
                return cke_fail(err, CKE_ERR_UNSUPPORTED,
                                "--kv-type q8_0 needs a head_dim that is a multiple of 32 (Q8_0 blocks); this model's is %lld: "
                                "use f16", (long long)hd);
            }
        }
    /* learned positions (GPT-2) exist only for the table's rows */
    for (int i = 0; i < ir->nn; i++)
        if (ir->n[i].op == CKE_OP_POSEMB && ctx > ir->v[ir->n[i].in[1]].dims[0]) {
            int64_t P = ir->v[ir->n[i].in[1]].dims[0];
            cke_plan_free(p);
            return cke_fail(err, CKE_ERR_ARG, "plan: context %lld exceeds the %lld learned positions of '%s'",
                            (long long)ctx, (long long)P, ir->v[ir->n[i].in[1]].name);
        }
    p->kv_row = cke_plan_kv_bytes(kv_type, p->kv_dim);
    p->kv_bytes = align_up((size_t)ir->n_layer * (size_t)ctx * p->kv_row) * 2;
    cke_status st = plan_weights(p, err);
    if (!st) st = lower_mode(p, &p->prefill, "prefill", prefill_chunk, nth_max, 1, 0, err);
    if (!st) st = lower_mode(p, &p->decode, "decode", 1, nth_max, 0, 0, err);
    if (!st) st = lower_mode(p, &p->batch, "decode_batch", CKE_PLAN_BATCH_T, nth_max, 0, 1, err);
    if (st) { cke_plan_free(p); return st; }
    *out = p;
    return CKE_OK;
}

static void mode_free(cke_mode_plan *m) {
    free(m->sched);
    free(m->bufs);
    free(m->buf_of);
    free(m->head);
    free(m->head_buf);
}

void cke_plan_free(cke_plan *p) {
    if (!p) return;
    mode_free(&p->prefill);
    mode_free(&p->decode);
    mode_free(&p->batch);
    free(p->w);
    free(p);
}

uint64_t cke_plan_layout_hash(const cke_plan *p) {
    uint64_t h = 1469598103934665603ull;
#define MIX(ptr, n)                                                                                \
    do {                                                                                           \
        const unsigned char *q_ = (const unsigned char *)(ptr);                                    \
        for (size_t i_ = 0; i_ < (size_t)(n); i_++) h = (h ^ q_[i_]) * 1099511628211ull;          \
    } while (0)
    for (int i = 0; i < p->nw; i++) {
        const cke_value *v = &p->ir->v[p->w[i].value];
        MIX(v->name, strlen(v->name));
        MIX(v->dims, sizeof v->dims[0] * (size_t)v->ndim);
        MIX(&p->w[i].offset, sizeof p->w[i].offset);
        MIX(&p->w[i].size, sizeof p->w[i].size);
        MIX(&p->w[i].dtype, sizeof p->w[i].dtype);
    }
    if (p->ir->tp_size > 1) { /* each rank's weights.bin holds its own block: not another rank's file */
        MIX(&p->ir->tp_rank, sizeof p->ir->tp_rank);
        MIX(&p->ir->tp_size, sizeof p->ir->tp_size);
    }
#undef MIX
    return h;
}

static void shape_str(char *buf, size_t n, const cke_value *v, int64_t rows) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < v->ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? "," : "", (long long)(d == 0 && v->dims[0] == CKE_DIM_T ? rows : v->dims[d]));
    if (o < n) snprintf(buf + o, n - o, "]");
}

cke_status cke_plan_write_layout(const cke_plan *p, const char *path, cke_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    const cke_ir *ir = p->ir;
    fprintf(f, "{\n  \"alignment\": %d,\n  \"layout_hash\": \"%016llx\",\n", CKE_ALIGN,
            (unsigned long long)cke_plan_layout_hash(p));
    fprintf(f, "  \"weights\": {\"file\": \"weights.bin\", \"header_bytes\": %zu, \"bytes\": %zu, \"tensors\": [",
            p->weights_header, p->weights_bytes);
    for (int i = 0; i < p->nw; i++) {
        const cke_value *v = &ir->v[p->w[i].value];
        char s[64];
        shape_str(s, sizeof s, v, 1);
        const cke_qtype_ops *qo = p->w[i].dtype ? cke_ktable_for(CKE_ISA_REF)->qops[p->w[i].dtype] : NULL;
        fprintf(f, "%s\n    {\"name\": \"%s\", \"layer\": %d, \"dtype\": \"%s\", \"shape\": \"%s\", \"offset\": %zu, \"size\": %zu}",
                i ? "," : "", v->name, v->layer, qo ? qo->name : "f32", s, p->w[i].offset, p->w[i].size);
    }
    fprintf(f, "\n  ]},\n  \"kv_cache\": {\"n_layer\": %d, \"ctx\": %lld, \"kv_dim\": %lld, \"type\": \"%s\", \"bytes\": %zu, "
               "\"bytes_per_slot\": %zu, \"slot_offset\": \"slot * bytes_per_slot\"},\n", ir->n_layer,
            (long long)p->ctx, (long long)p->kv_dim, cke_kv_type_name(p->kv_type), p->kv_bytes, p->kv_bytes);
    const cke_mode_plan *ms[3] = {&p->prefill, &p->decode, &p->batch};
    fprintf(f, "  \"modes\": [");
    for (int mi = 0; mi < 3; mi++) {
        const cke_mode_plan *m = ms[mi];
        fprintf(f, "%s\n    {\"mode\": \"%s\", \"T\": %lld, \"arena_bytes\": %zu, \"sum_of_buffers\": %zu, \"scratch_bytes\": %zu, \"threads\": %d, \"buffers\": [",
                mi ? "," : "", m->mode, (long long)m->T, m->arena_bytes, m->sum_bytes, m->scratch_bytes, m->nth_planned);
        for (int b = 0; b < m->n_bufs; b++) {
            const cke_buf *bf = &m->bufs[b];
            const cke_value *v = &ir->v[bf->value];
            char s[64];
            shape_str(s, sizeof s, v, bf->rows);
            fprintf(f, "%s\n      {\"name\": \"%s\", \"region\": \"activations\", \"offset\": %zu, \"size\": %zu, \"shape\": \"%s\", \"first\": %d, \"last\": %d%s%s%s%s%s}",
                    b ? "," : "", v->name, bf->offset, bf->size, s, bf->first, bf->last, bf->pinned ? ", \"pinned\": true" : "",
                    bf->head ? ", \"head\": true" : "",
                    bf->alias_of >= 0 ? ", \"shares\": \"" : "", bf->alias_of >= 0 ? ir->v[m->bufs[bf->alias_of].value].name : "",
                    bf->alias_of >= 0 ? "\"" : ""); /* the quote closes the name, inside the object */
        }
        fprintf(f, "\n    ]}");
    }
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0) return cke_fail(err, CKE_ERR_IO, "error writing %s", path);
    return CKE_OK;
}

static void human(char *buf, size_t n, size_t bytes) {
    if (bytes >= (1u << 30)) snprintf(buf, n, "%.2f GiB", (double)bytes / (1u << 30));
    else if (bytes >= (1u << 20)) snprintf(buf, n, "%.2f MiB", (double)bytes / (1u << 20));
    else if (bytes >= 1024) snprintf(buf, n, "%.1f KiB", (double)bytes / 1024);
    else snprintf(buf, n, "%zu B", bytes);
}

cke_status cke_plan_write_map(const cke_plan *p, const char *path, cke_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    const cke_ir *ir = p->ir;
    char a[32], b[32], c[32];
    human(a, sizeof a, p->weights_bytes);
    fprintf(f, "cke memory map: %s, %d layers\n\n", ir->family, ir->n_layer);
    fprintf(f, "weights   %12zu bytes (%s) in weights.bin after a %zu-byte header, %d tensors\n", p->weights_bytes, a,
            p->weights_header, p->nw);
    human(a, sizeof a, p->kv_bytes);
    fprintf(f, "kv cache  %12zu bytes (%s) per slot: K and V, %d layers x %lld positions x %lld %s\n", p->kv_bytes, a, ir->n_layer,
            (long long)p->ctx, (long long)p->kv_dim, cke_kv_type_name(p->kv_type));
    fprintf(f, "          an instance opened with n slots (open_slots) holds n such regions, slot s at s x %zu;\n"
               "          open() is one slot; decode_batch runs up to %lld slots' next tokens in one forward\n",
            p->kv_bytes, (long long)p->batch.T);
    const cke_mode_plan *ms[3] = {&p->prefill, &p->decode, &p->batch};
    for (int mi = 0; mi < 3; mi++) {
        const cke_mode_plan *m = ms[mi];
        human(a, sizeof a, m->arena_bytes);
        human(b, sizeof b, m->sum_bytes);
        human(c, sizeof c, m->scratch_bytes);
        fprintf(f, "\n%s (T = %lld): activations %zu bytes (%s) planned vs %zu (%s) without reuse: %.1f%% saved; "
                   "scratch %s for %d threads\n",
                m->mode, (long long)m->T, m->arena_bytes, a, m->sum_bytes, b,
                m->sum_bytes ? 100.0 * (1.0 - (double)m->arena_bytes / (double)m->sum_bytes) : 0.0, c, m->nth_planned);
        fprintf(f, "  %-18s %10s %10s %-14s %s\n", "value", "offset", "size", "shape", "lifetime (schedule steps)");
        for (int bi = 0; bi < m->n_bufs; bi++) {
            const cke_buf *bf = &m->bufs[bi];
            const cke_value *v = &ir->v[bf->value];
            char s[64];
            shape_str(s, sizeof s, v, bf->rows);
            fprintf(f, "  %-18s %10zu %10zu %-14s %3d..%-3d%s%s%s%s\n", v->layer == 0 ? v->base : v->name, bf->offset, bf->size, s,
                    bf->first, bf->last, bf->pinned ? " pinned" : "", bf->head ? " all-rows head (prefill_all)" : "",
                    bf->alias_of >= 0 ? " shares " : "",
                    bf->alias_of >= 0 ? ir->v[m->bufs[bf->alias_of].value].name : "");
        }
    }
    if (fclose(f) != 0) return cke_fail(err, CKE_ERR_IO, "error writing %s", path);
    return CKE_OK;
}
