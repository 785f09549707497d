/* Mixture-of-experts FFN on the dispatch table's linears (kernels.h, cke_moe_fwd). Prefill groups
 * the rows routed to each expert so each expert's weights are read once per call: its rows are
 * gathered into a [n_e, D] block, the three linears run over the block, and the result is
 * scattered back with each row's routing weight. Decode (T = 1) is k expert FFNs as GEMVs; the
 * other experts' weights are never touched. An expert's matrix is a block of rows of the stacked
 * tensor, so stored formats (Q8_0, Q4_K ...) run through cke_qlinear_fwd on that block as they
 * would for a dense linear.
 *
 * Threads: with few rows (decode, decode_batch) and at least as many chosen experts as threads,
 * the experts are divided among the threads, each running whole experts on one thread, all in
 * one parallel region: a decode step of 8 small experts would otherwise open 24 regions, and
 * waking the team for each (OMP_WAIT_POLICY=PASSIVE) cost more than the experts' work. Otherwise
 * each expert's linears use all threads. Either way every expert's rows are computed the same
 * way, and they are added in expert order, rows in order: the result depends on the routing, not
 * on the thread count. */
#include "kdecl.h"
#include "kthreads.h"
#include "moe_route.h"

#include <math.h>
#include <string.h>

#define MOE_SMALL_T 8 /* rows up to which the experts may be divided among the threads */

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

/* One expert's scratch (one per thread on the expert-parallel path). */
typedef struct {
    float *xe;   /* [T,D] the expert's gathered rows */
    float *g, *u;/* [T,F] gate, up; g then holds silu(g) * u */
    void *lin;   /* the linears' own workspace */
} expert_ws;

/* The workspace, carved in this order (each piece 64-byte aligned). */
typedef struct {
    float *logits;  /* [T,E] router logits */
    int32_t *sel;   /* [T,k] chosen experts per row */
    float *w;       /* [T,k] their weights */
    int64_t *start; /* [E+1] first slot of each expert in rows/roww */
    int32_t *rows;  /* [T*k] rows grouped by expert, in row order */
    float *roww;    /* [T*k] their weights */
    int32_t *act;   /* [E] the experts some row chose, in order */
    float *rsc;     /* [CKE_MOE_ROUTE_SCRATCH(E)] the routing's scratch */
    float *y;       /* [T*k,D] each slot's expert output (the serial path: [T,D], one expert at a time) */
    char *per;      /* nth (expert-parallel) or 1 expert_ws areas of per_bytes */
    size_t per_bytes;
} moe_ws;

static size_t lin_ws(int64_t T, int64_t D, int64_t F, int64_t E, int qg, int qu, int qd, int nth) {
    size_t a = cke_qlinear_ws_size(qg, T, D, F, nth), b = cke_qlinear_ws_size(qu, T, D, F, nth);
    size_t c = cke_qlinear_ws_size(qd, T, F, D, nth), r = cke_gemm_ws_size(T, E, D, nth);
    a = a > b ? a : b;
    a = a > c ? a : c;
    return a > r ? a : r;
}

/* carving a workspace: field `field` of *m gets n items of type at offset o of base (NULL base:
 * sizes only), o moves on 64-byte aligned; both carves below (forward, backward) use it */
#define TAKE(field, type, n) (m->field = base ? (type *)(base + o) : NULL, o += align64((size_t)(n) * sizeof(type)))

static int expert_parallel(int64_t T, int nth) { return nth > 1 && T <= MOE_SMALL_T; }

/* base NULL: sizes only */
static size_t carve(moe_ws *m, char *base, int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, int qg, int qu, int qd,
                    int nth) {
    const int par = expert_parallel(T, nth);
    size_t o = 0;
    TAKE(logits, float, T * E);
    TAKE(sel, int32_t, T * k);
    TAKE(w, float, T * k);
    TAKE(start, int64_t, E + 1);
    TAKE(rows, int32_t, T * k);
    TAKE(roww, float, T * k);
    TAKE(act, int32_t, E);
    TAKE(rsc, float, CKE_MOE_ROUTE_SCRATCH(E));
    TAKE(y, float, (par ? T * k : T) * D);
    /* a thread's expert: one-thread linears; the serial path's: all threads (and the router's GEMM) */
    m->per_bytes = align64((size_t)(T * D) * sizeof(float)) + 2 * align64((size_t)(T * F) * sizeof(float)) +
                   align64(lin_ws(T, D, F, E, qg, qu, qd, par ? 1 : nth));
    m->per = base ? base + o : NULL;
    o += m->per_bytes * (size_t)(par ? nth : 1);
    return o + align64(cke_gemm_ws_size(T, E, D, nth)); /* the router's GEMM, after the experts' areas */
}

static expert_ws expert_area(const moe_ws *m, int i, int64_t T, int64_t D, int64_t F) {
    char *p = m->per + (size_t)i * m->per_bytes;
    expert_ws x = {.xe = (float *)p};
    p += align64((size_t)(T * D) * sizeof(float));
    x.g = (float *)p, p += align64((size_t)(T * F) * sizeof(float));
    x.u = (float *)p, p += align64((size_t)(T * F) * sizeof(float));
    x.lin = p;
    return x;
}

size_t cke_moe_ws_size(int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, int qgate, int qup, int qdown, int nth) {
    if (nth < 1) nth = 1;
    moe_ws m;
    size_t fast = carve(&m, NULL, T, D, F, E, k, qgate, qup, qdown, nth);
    /* the _ref: [E] logits, [k] w, [F] h, [k] sel, the routing's scratch */
    size_t ref = align64((size_t)(E + k) * sizeof(float)) + (size_t)F * sizeof(double) + align64((size_t)k * sizeof(int32_t)) +
                 (size_t)CKE_MOE_ROUTE_SCRATCH(E) * sizeof(float);
    return 64 + (fast > ref ? fast : ref); /* 64: ws need not be aligned */
}

/* Bytes of one row of K elements stored as qtype (0: f32). */
static size_t row_bytes(int qtype, int64_t K) { return qtype ? cke_qtype_row_size(qtype, K) : (size_t)K * sizeof(float); }

typedef struct {
    const cke_ktable *kt;
    const void *gate, *up, *down;
    int qg, qu, qd;
    size_t sg, su, sd; /* bytes of one expert's matrix in each stack */
    int64_t D, F;
} experts;

/* y[n,D] = expert e's FFN of the n rows of x listed in rows (all T rows, in order, when n == T). */
static int run_expert(const experts *X, const expert_ws *s, float *y, const float *x, const int32_t *rows, int64_t n,
                      int64_t T, int64_t e, int nth) {
    const int64_t D = X->D, F = X->F;
    const float *xe = x;
    if (n != T) { /* gather (every row chose e: its rows are 0..T-1 in order, x itself) */
        for (int64_t i = 0; i < n; i++) memcpy(s->xe + i * D, x + (int64_t)rows[i] * D, (size_t)D * sizeof(float));
        xe = s->xe;
    }
    /* expert e's matrices: rows [e*F, (e+1)*F) of the gate and up stacks, [e*D, (e+1)*D) of down */
    if (cke_qlinear_fwd(X->kt, s->g, xe, (const char *)X->gate + (size_t)e * X->sg, X->qg, NULL, n, D, F, s->lin, nth) ||
        cke_qlinear_fwd(X->kt, s->u, xe, (const char *)X->up + (size_t)e * X->su, X->qu, NULL, n, D, F, s->lin, nth))
        return -1;
    X->kt->swiglu_fwd(s->g, s->g, s->u, n * F);
    return cke_qlinear_fwd(X->kt, y, s->g, (const char *)X->down + (size_t)e * X->sd, X->qd, NULL, n, F, D, s->lin, nth);
}

/* A counting sort of the (row, choice) pairs by expert, rows ascending within each: expert e's
 * slots are [start[e], start[e + 1]); each slot's row, and its pair index t * k + j (pair) or
 * routing weight (roww) where asked for. The forward and the backward group alike. */
static void group_by_expert(int64_t *start /* [E+1] */, int32_t *rows /* [T*k] */, int32_t *pair /* [T*k] or NULL */,
                            float *roww /* [T*k] or NULL */, const int32_t *sel /* [T,k] */, const float *w /* [T,k] */,
                            int64_t T, int64_t k, int64_t E) {
    memset(start, 0, (size_t)(E + 1) * sizeof(int64_t));
    for (int64_t i = 0; i < T * k; i++) start[sel[i] + 1]++;
    for (int64_t e = 0; e < E; e++) start[e + 1] += start[e];
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++) {
            const int64_t slot = start[sel[t * k + j]]++;
            rows[slot] = (int32_t)t;
            if (pair) pair[slot] = (int32_t)(t * k + j);
            if (roww) roww[slot] = w[t * k + j];
        }
    for (int64_t e = E; e > 0; e--) start[e] = start[e - 1]; /* the increments moved each start to the next */
    start[0] = 0;
}

/* out rows += each slot's weight * its expert output, slots in expert order */
static void scatter(const cke_ktable *kt, float *out, const float *y, const int32_t *rows, const float *roww, int64_t n,
                    int64_t D) {
    for (int64_t i = 0; i < n; i++) {
        float *o = out + (int64_t)rows[i] * D; /* [D] */
        const float *yi = y + i * D, a = roww[i];
        if (kt->axpy) kt->axpy(o, a, yi, D);
        else for (int64_t d = 0; d < D; d++) o[d] += a * yi[d];
    }
}

int cke_moe_gate_check(const cke_moe_gate *gate, int64_t E, int64_t k) { return cke_moe_gate_ok(gate, E, k) ? 0 : -1; }

int cke_moe_fwd(const cke_ktable *kt, float *out /* [T,D] */, const float *x /* [T,D] */,
                const float *router /* [E,D] */, const void *gate /* [E,F,D] */, const void *up /* [E,F,D] */,
                const void *down /* [E,D,F] */, int qgate, int qup, int qdown, int64_t T, int64_t D, int64_t F,
                int64_t E, int64_t k, const cke_moe_gate *route, void *ws, int nth) {
    if (nth < 1) nth = 1;
    if (!cke_moe_gate_ok(route, E, k)) return -1;
    const experts X = {kt, gate, up, down, qgate, qup, qdown, (size_t)F * row_bytes(qgate, D), (size_t)F * row_bytes(qup, D),
                       (size_t)D * row_bytes(qdown, F), D, F};
    if (!X.sg || !X.su || !X.sd) return -1; /* a format without kernels, or rows that are not whole blocks */
    moe_ws m;
    char *base = (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    const size_t router_ws = carve(&m, base, T, D, F, E, k, qgate, qup, qdown, nth) - align64(cke_gemm_ws_size(T, E, D, nth));
    /* route: logits of every row in one GEMM, then each row's top k */
    cke_linear_fwd(kt, m.logits, x, router, NULL, T, D, E, base + router_ws, nth);
    for (int64_t t = 0; t < T; t++) cke_moe_route(m.sel + t * k, m.w + t * k, m.logits + t * E, E, k, route, m.rsc);
    group_by_expert(m.start, m.rows, NULL, m.roww, m.sel, m.w, T, k, E);
    int64_t n_act = 0; /* experts no row chose: their weights are not read */
    for (int64_t e = 0; e < E; e++)
        if (m.start[e + 1] > m.start[e]) m.act[n_act++] = (int32_t)e;
    memset(out, 0, (size_t)(T * D) * sizeof(float));
    if (expert_parallel(T, nth) && n_act >= nth) {
        int bad = 0;
#pragma omp parallel num_threads(nth) reduction(| : bad)
        {
            const int t = omp_get_thread_num();
            const expert_ws s = expert_area(&m, t, T, D, F);
            for (int64_t i = n_act * t / nth; i < n_act * (t + 1) / nth; i++) {
                const int64_t e = m.act[i], s0 = m.start[e];
                bad |= run_expert(&X, &s, m.y + s0 * D, x, m.rows + s0, m.start[e + 1] - s0, T, e, 1) != 0;
            }
        }
        if (bad) return -1;
        scatter(kt, out, m.y, m.rows, m.roww, T * k, D);
        return 0;
    }
    const expert_ws s = expert_area(&m, 0, T, D, F);
    for (int64_t i = 0; i < n_act; i++) {
        const int64_t e = m.act[i], s0 = m.start[e], n = m.start[e + 1] - s0;
        if (run_expert(&X, &s, m.y, x, m.rows + s0, n, T, e, nth)) return -1;
        scatter(kt, out, m.y, m.rows + s0, m.roww + s0, n, D);
    }
    return 0;
}

void cke_sigmoid_mul_fwd(float *out /* [T,D] */, const float *x /* [T,D] */, const float *g /* [T] */, int64_t T, int64_t D) {
    for (int64_t t = 0; t < T; t++) {
        const float s = (float)(1.0 / (1.0 + exp(-(double)g[t])));
        for (int64_t d = 0; d < D; d++) out[t * D + d] = s * x[t * D + d];
    }
}

void cke_sigmoid_mul_bwd(float *dx /* [T,D] += */, float *dg /* [T] += */, const float *dout /* [T,D] */,
                         const float *x /* [T,D] */, const float *g /* [T] */, int64_t T, int64_t D) {
    for (int64_t t = 0; t < T; t++) {
        const double s = 1.0 / (1.0 + exp(-(double)g[t]));
        double dot = 0;
        for (int64_t d = 0; d < D; d++) {
            dot += (double)dout[t * D + d] * x[t * D + d];
            dx[t * D + d] += (float)s * dout[t * D + d];
        }
        dg[t] += (float)(s * (1.0 - s) * dot);
    }
}

/* ---- training: the backward (cke_moe_bwd) and the load-balancing statistics ---- */

/* The backward's workspace, carved in this order (64-byte aligned pieces). */
typedef struct {
    float *logits;  /* [T,E] router logits */
    float *dl;      /* [T,E] their gradient */
    int32_t *sel;   /* [T,k] */
    float *w, *dw;  /* [T,k] routing weights and their gradients */
    int64_t *start; /* [E+1] */
    int32_t *rows;  /* [T*k] rows grouped by expert */
    int32_t *pair;  /* [T*k] each slot's t*k + j */
    float *rsc;     /* [CKE_MOE_ROUTE_SCRATCH(E)] the routing's scratch */
    float *xe, *y, *dy, *dxe;         /* [T,D] an expert's rows, output, output gradient, input gradient */
    float *g, *u, *h, *dh, *dg, *du;  /* [T,F] */
    void *gemm;
} moe_bwd_ws;

static size_t gemm_ws_max(int64_t T, int64_t D, int64_t F, int64_t E, int nth) {
    const size_t s[] = {cke_gemm_ws_size(T, F, D, nth), cke_gemm_ws_size(T, D, F, nth), cke_gemm_ws_size(D, F, T, nth),
                        cke_gemm_ws_size(F, D, T, nth), cke_gemm_ws_size(T, E, D, nth), cke_gemm_ws_size(T, D, E, nth),
                        cke_gemm_ws_size(E, D, T, nth)};
    size_t m = 0;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) m = s[i] > m ? s[i] : m;
    return m;
}

static size_t carve_bwd(moe_bwd_ws *m, char *base, int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, int nth) {
    size_t o = 0;
    TAKE(logits, float, T * E);
    TAKE(dl, float, T * E);
    TAKE(sel, int32_t, T * k);
    TAKE(w, float, T * k);
    TAKE(dw, float, T * k);
    TAKE(start, int64_t, E + 1);
    TAKE(rows, int32_t, T * k);
    TAKE(pair, int32_t, T * k);
    TAKE(rsc, float, CKE_MOE_ROUTE_SCRATCH(E));
    TAKE(xe, float, T * D);
    TAKE(y, float, T * D);
    TAKE(dy, float, T * D);
    TAKE(dxe, float, T * D);
    TAKE(g, float, T * F);
    TAKE(u, float, T * F);
    TAKE(h, float, T * F);
    TAKE(dh, float, T * F);
    TAKE(dg, float, T * F);
    TAKE(du, float, T * F);
    m->gemm = base ? base + o : NULL;
    return o + align64(gemm_ws_max(T, D, F, E, nth));
}

size_t cke_moe_bwd_ws_size(int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, int nth) {
    if (nth < 1) nth = 1;
    moe_bwd_ws m;
    size_t fast = carve_bwd(&m, NULL, T, D, F, E, k, nth);
    /* the _ref: [E] p, dl; [k] dw; [F] g, u, h; [F] dh; [D] dy; [F] du; [E] logits; [k] w, sel; the routing's
     * scratch (+ alignment) */
    size_t ref = (size_t)(2 * E + k + 2 * F + D) * sizeof(double) + (size_t)(3 * F + E + k) * sizeof(float) +
                 (size_t)k * sizeof(int32_t) + (size_t)CKE_MOE_ROUTE_SCRATCH(E) * sizeof(float) + 256;
    return 64 + (fast > ref ? fast : ref);
}

/* route every row (as the forward does) into m->sel, m->w from m->logits */
static void route_rows(moe_bwd_ws *m, const cke_ktable *kt, const float *x, const float *router, int64_t T, int64_t D,
                       int64_t E, int64_t k, const cke_moe_gate *route, int nth) {
    cke_linear_fwd(kt, m->logits, x, router, NULL, T, D, E, m->gemm, nth);
    for (int64_t t = 0; t < T; t++) cke_moe_route(m->sel + t * k, m->w + t * k, m->logits + t * E, E, k, route, m->rsc);
}

void cke_moe_router_stats(const cke_ktable *kt, double *stats /* [2E] += */, const float *x /* [T,D] */,
                          const float *router /* [E,D] */, int64_t T, int64_t D, int64_t E, int64_t k, void *ws, int nth) {
    if (nth < 1) nth = 1;
    if (k < 1 || k > E) return;
    moe_bwd_ws m;
    carve_bwd(&m, (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63), T, D, 0, E, k, nth);
    const cke_moe_gate softmax = {.renorm = 1, .scale = 1}; /* only the choice is used: the top k of the logits */
    route_rows(&m, kt, x, router, T, D, E, k, &softmax, nth);
    for (int64_t t = 0; t < T; t++) {
        double mx = m.logits[t * E], s = 0;
        for (int64_t e = 1; e < E; e++) mx = m.logits[t * E + e] > mx ? m.logits[t * E + e] : mx;
        for (int64_t e = 0; e < E; e++) s += exp((double)m.logits[t * E + e] - mx);
        for (int64_t e = 0; e < E; e++) stats[E + e] += exp((double)m.logits[t * E + e] - mx) / s;
        for (int64_t j = 0; j < k; j++) stats[m.sel[t * k + j]] += 1.0;
    }
}

/* One expert's part of the backward: its n rows (slots s0..s0+n of the grouping) recomputed and
 * differentiated; dw of each slot, the expert's weight gradients, dx of its rows. */
static void expert_bwd(const cke_ktable *kt, const moe_bwd_ws *m, float *dx, float *dG, float *dU, float *dDn,
                       const float *dout, const float *x, const float *G, const float *U, const float *Dn, int64_t s0,
                       int64_t n, int64_t D, int64_t F, int64_t k, int nth) {
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = m->rows[s0 + i], j = m->pair[s0 + i] % k;
        memcpy(m->xe + i * D, x + t * D, (size_t)D * sizeof(float));
        const float a = m->w[t * k + j];
        for (int64_t d = 0; d < D; d++) m->dy[i * D + d] = a * dout[t * D + d];
    }
    cke_linear_fwd(kt, m->g, m->xe, G, NULL, n, D, F, m->gemm, nth);
    cke_linear_fwd(kt, m->u, m->xe, U, NULL, n, D, F, m->gemm, nth);
    kt->swiglu_fwd(m->h, m->g, m->u, n * F);
    cke_linear_fwd(kt, m->y, m->h, Dn, NULL, n, F, D, m->gemm, nth);
    for (int64_t i = 0; i < n; i++) { /* dw = dout_t . y: the routing weight's gradient */
        const int64_t t = m->rows[s0 + i];
        double s = 0;
        for (int64_t d = 0; d < D; d++) s += (double)dout[t * D + d] * m->y[i * D + d];
        m->dw[m->pair[s0 + i]] = (float)s;
    }
    memset(m->dh, 0, (size_t)(n * F) * sizeof(float));
    memset(m->dg, 0, (size_t)(n * F) * sizeof(float));
    memset(m->du, 0, (size_t)(n * F) * sizeof(float));
    memset(m->dxe, 0, (size_t)(n * D) * sizeof(float));
    cke_linear_bwd(kt, m->dh, dDn, NULL, m->dy, m->h, Dn, n, F, D, m->gemm, nth);
    kt->swiglu_bwd(m->dg, m->du, m->dh, m->g, m->u, n * F);
    cke_linear_bwd(kt, m->dxe, dG, NULL, m->dg, m->xe, G, n, D, F, m->gemm, nth);
    cke_linear_bwd(kt, m->dxe, dU, NULL, m->du, m->xe, U, n, D, F, m->gemm, nth);
    for (int64_t i = 0; i < n; i++) { /* rows in order within the expert, experts in order */
        float *o = dx + (int64_t)m->rows[s0 + i] * D;
        if (kt->axpy) kt->axpy(o, 1.0f, m->dxe + i * D, D);
        else for (int64_t d = 0; d < D; d++) o[d] += m->dxe[i * D + d];
    }
}

/* dl[E] <- one row's router-logit gradient (kernels.h, cke_moe_bwd). Softmax scoring: the
 * softmax's backward of scale * dw (over the k chosen with renorm, over all E without), plus the
 * load-balancing term p (aux_g - p . aux_g); with scale 1 the bits of before the scale existed.
 * Sigmoid scoring: the renormalization's quotient rule, then the sigmoid's s (1 - s), on the
 * chosen only. */
static void router_grad_row(float *dl /* [E] */, const float *l /* [E] */, const int32_t *sel /* [k] */,
                            const float *w /* [k] */, const float *dw /* [k] */, const float *aux_g /* [E] or NULL */,
                            int64_t E, int64_t k, const cke_moe_gate *g) {
    const double scale = g->scale;
    if (g->sigmoid) {
        double S = 0, sd = 0;
        for (int64_t j = 0; j < k; j++) {
            const double sj = cke_moe_sigmoid(l[sel[j]]);
            S += sj, sd += (double)dw[j] * sj;
        }
        if (g->renorm) S += 1e-20;
        memset(dl, 0, (size_t)E * sizeof(float));
        for (int64_t j = 0; j < k; j++) {
            const double ds = g->renorm ? scale * ((double)dw[j] / S - sd / (S * S)) : scale * dw[j];
            const double sg = 1.0 / (1.0 + exp(-(double)l[sel[j]]));
            dl[sel[j]] = (float)(ds * sg * (1.0 - sg));
        }
        return;
    }
    double mx = l[0], sum = 0, s = 0, sa = 0;
    for (int64_t e = 1; e < E; e++) mx = l[e] > mx ? l[e] : mx;
    for (int64_t e = 0; e < E; e++) sum += exp((double)l[e] - mx);
#define P(e) (exp((double)l[e] - mx) / sum)
#define Q(j) ((double)w[j] / scale)  /* the weight before the scale: the softmax over the k */
#define DW(j) ((double)dw[j] * scale) /* the gradient of the probability */
    if (g->renorm) for (int64_t j = 0; j < k; j++) s += Q(j) * DW(j);
    else for (int64_t j = 0; j < k; j++) s += P(sel[j]) * DW(j);
    if (aux_g) for (int64_t e = 0; e < E; e++) sa += P(e) * aux_g[e];
    for (int64_t e = 0; e < E; e++) {
        double v = g->renorm ? 0 : -P(e) * s;
        if (aux_g) v += P(e) * ((double)aux_g[e] - sa);
        dl[e] = (float)v;
    }
    for (int64_t j = 0; j < k; j++)
        dl[sel[j]] += g->renorm ? (float)(Q(j) * (DW(j) - s)) : (float)(P(sel[j]) * DW(j));
#undef P
#undef Q
#undef DW
}

void cke_moe_bwd(const cke_ktable *kt, float *dx /* [T,D] += */, float *drouter /* [E,D] += */,
                 float *dgate /* [E,F,D] += */, float *dup /* [E,F,D] += */, float *ddown /* [E,D,F] += */,
                 const float *dout /* [T,D] */, const float *x /* [T,D] */, const float *router /* [E,D] */,
                 const float *gate /* [E,F,D] */, const float *up /* [E,F,D] */, const float *down /* [E,D,F] */,
                 const float *aux_g /* [E] or NULL */, int64_t T, int64_t D, int64_t F, int64_t E, int64_t k,
                 const cke_moe_gate *route, void *ws, int nth) {
    if (nth < 1) nth = 1;
    if (!cke_moe_gate_ok(route, E, k)) return;
    moe_bwd_ws m;
    carve_bwd(&m, (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63), T, D, F, E, k, nth);
    route_rows(&m, kt, x, router, T, D, E, k, route, nth);
    group_by_expert(m.start, m.rows, m.pair, NULL, m.sel, m.w, T, k, E);
    for (int64_t e = 0; e < E; e++) {
        const int64_t s0 = m.start[e], n = m.start[e + 1] - s0;
        if (n > 0)
            expert_bwd(kt, &m, dx, dgate + e * F * D, dup + e * F * D, ddown + e * D * F, dout, x, gate + e * F * D,
                       up + e * F * D, down + e * D * F, s0, n, D, F, k, nth);
    }
    for (int64_t t = 0; t < T; t++)
        router_grad_row(m.dl + t * E, m.logits + t * E, m.sel + t * k, m.w + t * k, m.dw + t * k, aux_g, E, k, route);
    cke_linear_bwd(kt, dx, drouter, NULL, m.dl, x, router, T, D, E, m.gemm, nth);
}
