/* FLOPs and bytes of one op from its shapes and stored formats (see cke_plan_op_cost in plan.h).
 * The profiler turns these per-row / per-call terms into each call's totals. */
#include "plan/plan.h"

#include "cke/kernels.h"

#include <string.h>

static int64_t cols_of(const cke_value *v) {
    int64_t c = 1;
    for (int d = 1; d < v->ndim; d++) c *= v->dims[d];
    return c;
}

static double numel_f32_bytes(const cke_value *v) { return 4.0 * (double)cke_value_numel(v, 1); }

/* Arithmetic per output element of the elementwise ops (an exp, tanh or erf counts 1). */
static const struct { cke_op op; int flops, reads; } elementwise[] = {
    {CKE_OP_ADD, 1, 2},    {CKE_OP_SCALE, 1, 1},  {CKE_OP_SILU, 4, 1},    /* x / (1 + exp(-x)) */
    {CKE_OP_SWIGLU, 5, 2}, {CKE_OP_GELU, 8, 1},   {CKE_OP_GEGLU, 9, 2},
    {CKE_OP_SOFTCAP, 3, 1},                                                /* cap * tanh(x / cap) */
    {CKE_OP_SIGMOID_MUL, 1, 1},                                            /* one sigmoid per row, a product per element */
    {CKE_OP_HEAD_WINDOW, 0, 1}, {CKE_OP_HEAD_CAT, 0, 1},                  /* copies */
};

void cke_plan_op_cost(const cke_plan *p, const cke_node *n, cke_op_cost *c) {
    const cke_ir *ir = p->ir;
    const cke_value *o = &ir->v[n->out], *x = &ir->v[n->in[0]];
    const double C = (double)cols_of(o), Cin = (double)cols_of(x);
    memset(c, 0, sizeof *c);
    c->qtype = -1;
    switch (n->op) {
    case CKE_OP_EMBED: /* one table row per token: the weight bytes grow with T */
        c->w_row = 4.0 * C;
        c->act_row = 4.0 * C + 4.0; /* the row written, its token id read */
        break;
    case CKE_OP_POSEMB:
        c->w_row = 4.0 * C;
        c->flops_row = C;
        c->act_row = 2.0 * 4.0 * C;
        break;
    case CKE_OP_RMSNORM: /* x^2 summed, times rstd, times w */
    case CKE_OP_LAYERNORM: /* mean, centre, square-sum, times rstd, times w, plus b */
        c->flops_row = (n->op == CKE_OP_RMSNORM ? 4.0 : 7.0) * C;
        c->act_row = 2.0 * 4.0 * C;
        for (int i = 1; i < n->n_in; i++) c->w_extra += numel_f32_bytes(&ir->v[n->in[i]]);
        break;
    case CKE_OP_LINEAR: {
        const cke_value *w = &ir->v[n->in[1]];
        c->qtype = cke_plan_wdtype(p, n->in[1]);
        c->w_rows = w->dims[0];
        c->w_cols = w->dims[1];
        c->flops_row = 2.0 * (double)w->dims[0] * (double)w->dims[1];
        if (n->n_in > 2) {
            c->flops_row += (double)w->dims[0];
            c->w_extra = numel_f32_bytes(&ir->v[n->in[2]]);
        }
        c->act_row = 4.0 * (Cin + C);
        break;
    }
    case CKE_OP_ROPE: /* each rotated pair: 4 multiplies, 2 adds; reads its cos/sin row */
        c->flops_row = 3.0 * (double)n->a.n_head * (double)n->a.rot;
        c->act_row = 2.0 * 4.0 * C + 4.0 * (double)n->a.rot;
        break;
    case CKE_OP_ATTENTION: {
        /* per (query, key) pair and head: q.k and p*v, 2 * head_dim multiply-adds; softmax uncounted.
         * Rows: q read, out written, this step's k and v read and written into the cache; the
         * cache's K and V rows the call can see are read once, in the cache's element type. */
        double kvd = (double)(n->a.n_kv_head * n->a.head_dim), kve = (double)cke_plan_kv_bytes(p->kv_type, 32) / 32.0;
        c->flops_pair = 4.0 * (double)n->a.n_head * (double)n->a.head_dim;
        c->act_row = 4.0 * (Cin + C + 2.0 * kvd);
        c->kv_row = 2.0 * kve * kvd;
        c->kv_key = 2.0 * kve * kvd;
        break;
    }
    case CKE_OP_ALLREDUCE: /* this rank's partial sums out, the total back (the transport's own traffic uncounted) */
        c->flops_row = C;
        c->act_row = 2.0 * 4.0 * C;
        break;
    case CKE_OP_MOE: {
        /* per row: the router over all E experts, then k experts' SwiGLU FFNs (3 F x D matrices in
         * their stored formats). Weight bytes are counted per row, the k experts a decode step streams; a prefill
         * chunk reads each chosen expert once, which this overcounts when rows share experts. */
        const cke_value *g = &ir->v[n->in[2]];
        const double E = (double)g->dims[0], F = (double)g->dims[1], D = (double)g->dims[2], k = (double)n->a.n_expert_used;
        double expert = 0; /* bytes of one expert's three matrices in their stored formats */
        for (int j = 0; j < 3; j++) {
            const int qt = cke_plan_wdtype(p, n->in[2 + j]);
            const int64_t K = ir->v[n->in[2 + j]].dims[2], N = ir->v[n->in[2 + j]].dims[1];
            expert += (double)N * (double)(qt ? cke_qtype_row_size(qt, K) : (size_t)K * sizeof(float));
        }
        c->w_extra = 4.0 * E * D;
        c->w_row = k * expert;
        c->flops_row = 2.0 * E * D + k * (3.0 * 2.0 * F * D + 5.0 * F + 2.0 * D);
        c->act_row = 4.0 * (Cin + C);
        break;
    }
    case CKE_OP_LAST_ROW: /* one row copied: the op runs with rows = 1 */
        c->act_row = 2.0 * 4.0 * C;
        break;
    default:
        for (size_t i = 0; i < sizeof elementwise / sizeof elementwise[0]; i++)
            if (elementwise[i].op == n->op) {
                int cap0 = n->op == CKE_OP_SOFTCAP && n->a.softcap == 0; /* no cap: a copy */
                c->flops_row = cap0 ? 0 : elementwise[i].flops * C;
                c->act_row = 4.0 * C * (1 + elementwise[i].reads);
            }
        break;
    }
}
