/* Mixture-of-experts FFN on the dispatch table's linears (kernels.h, cke_moe_fwd). Prefill groups
 * the rows routed to each expert so each expert's weights are read once per call: its rows are
 * gathered into a [n_e, D] block, the three linears run over the block, and the result is
 * scattered back with each row's routing weight. Decode (T = 1) is k expert FFNs as GEMVs; the
 * other experts' weights are never touched. An expert's matrix is a block of rows of the stacked
 * tensor, so stored formats (Q8_0, Q4_K ...) run through cke_qlinear_fwd on that block as they
 * would for a dense linear. Experts are added in index order, rows in order: the result depends
 * only on the routing, not on the thread count. */
#include "kdecl.h"
#include "moe_route.h"

#include <math.h>
#include <string.h>

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

/* The workspace, carved in this order (each piece 64-byte aligned). */
typedef struct {
    float *logits;  /* [T,E] router logits */
    int32_t *sel;   /* [T,k] chosen experts per row */
    float *w;       /* [T,k] their weights */
    int64_t *start; /* [E+1] first slot of each expert in rows/roww */
    int32_t *rows;  /* [T*k] rows grouped by expert, in row order */
    float *roww;    /* [T*k] their weights */
    float *xe;      /* [T,D] an expert's gathered rows */
    float *g, *u;   /* [T,F] gate, up; g then holds silu(g) * u */
    float *y;       /* [T,D] the expert's output rows */
    void *gemm;     /* the GEMM's own workspace */
} moe_ws;

static size_t carve(moe_ws *m, char *base, int64_t T, int64_t D, int64_t F, int64_t E, int64_t k) {
    size_t o = 0;
#define TAKE(field, type, n) (m->field = base ? (type *)(base + o) : NULL, o += align64((size_t)(n) * sizeof(type)))
    TAKE(logits, float, T * E);
    TAKE(sel, int32_t, T * k);
    TAKE(w, float, T * k);
    TAKE(start, int64_t, E + 1);
    TAKE(rows, int32_t, T * k);
    TAKE(roww, float, T * k);
    TAKE(xe, float, T * D);
    TAKE(g, float, T * F);
    TAKE(u, float, T * F);
    TAKE(y, float, T * D);
#undef TAKE
    m->gemm = base ? base + o : NULL;
    return o;
}

static size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

size_t cke_moe_ws_size(int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, int qgate, int qup, int qdown, int nth) {
    moe_ws m;
    size_t lin = max3(cke_qlinear_ws_size(qgate, T, D, F, nth), cke_qlinear_ws_size(qup, T, D, F, nth),
                      cke_qlinear_ws_size(qdown, T, F, D, nth));
    size_t fast = carve(&m, NULL, T, D, F, E, k) + (lin > cke_gemm_ws_size(T, E, D, nth) ? lin : cke_gemm_ws_size(T, E, D, nth));
    size_t ref = align64((size_t)(E + k) * sizeof(float)) + (size_t)F * sizeof(double) + (size_t)k * sizeof(int32_t);
    return 64 + (fast > ref ? fast : ref); /* 64: ws need not be aligned */
}

/* Bytes of one row of K elements stored as qtype (0: f32). */
static size_t row_bytes(int qtype, int64_t K) { return qtype ? cke_qtype_row_size(qtype, K) : (size_t)K * sizeof(float); }

int cke_moe_fwd(const cke_ktable *kt, float *out /* [T,D] */, const float *x /* [T,D] */,
                const float *router /* [E,D] */, const void *gate /* [E,F,D] */, const void *up /* [E,F,D] */,
                const void *down /* [E,D,F] */, int qgate, int qup, int qdown, int64_t T, int64_t D, int64_t F,
                int64_t E, int64_t k, int renorm, void *ws, int nth) {
    const size_t sg = (size_t)F * row_bytes(qgate, D), su = (size_t)F * row_bytes(qup, D), sd = (size_t)D * row_bytes(qdown, F);
    if (!sg || !su || !sd || k < 1 || k > E) return -1; /* a format without kernels, or rows that are not whole blocks */
    moe_ws m;
    carve(&m, (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63), T, D, F, E, k);
    /* route: logits of every row in one GEMM, then each row's top k */
    cke_linear_fwd(kt, m.logits, x, router, NULL, T, D, E, m.gemm, nth);
    for (int64_t t = 0; t < T; t++) cke_moe_route(m.sel + t * k, m.w + t * k, m.logits + t * E, E, k, renorm);
    /* group: a counting sort of the (row, expert) pairs by expert, rows ascending within each */
    memset(m.start, 0, (size_t)(E + 1) * sizeof(int64_t));
    for (int64_t i = 0; i < T * k; i++) m.start[m.sel[i] + 1]++;
    for (int64_t e = 0; e < E; e++) m.start[e + 1] += m.start[e];
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++) {
            const int64_t e = m.sel[t * k + j], slot = m.start[e]++;
            m.rows[slot] = (int32_t)t;
            m.roww[slot] = m.w[t * k + j];
        }
    for (int64_t e = E; e > 0; e--) m.start[e] = m.start[e - 1]; /* the increments moved each start to the next */
    m.start[0] = 0;
    memset(out, 0, (size_t)(T * D) * sizeof(float));
    for (int64_t e = 0; e < E; e++) {
        const int64_t s0 = m.start[e], n = m.start[e + 1] - s0;
        if (!n) continue; /* an expert no row chose: its weights are not read */
        const float *xe = x;
        if (n != T) { /* gather (every row chose e: its rows are 0..T-1 in order, x itself) */
            for (int64_t i = 0; i < n; i++) memcpy(m.xe + i * D, x + (int64_t)m.rows[s0 + i] * D, (size_t)D * sizeof(float));
            xe = m.xe;
        }
        /* expert e's matrices: rows [e*F, (e+1)*F) of the gate and up stacks, [e*D, (e+1)*D) of down */
        if (cke_qlinear_fwd(kt, m.g, xe, (const char *)gate + (size_t)e * sg, qgate, NULL, n, D, F, m.gemm, nth) ||
            cke_qlinear_fwd(kt, m.u, xe, (const char *)up + (size_t)e * su, qup, NULL, n, D, F, m.gemm, nth))
            return -1;
        kt->swiglu_fwd(m.g, m.g, m.u, n * F);
        if (cke_qlinear_fwd(kt, m.y, m.g, (const char *)down + (size_t)e * sd, qdown, NULL, n, F, D, m.gemm, nth)) return -1;
        for (int64_t i = 0; i < n; i++) { /* scatter-add with the routing weight */
            float *o = out + (int64_t)m.rows[s0 + i] * D; /* [D] */
            const float *yi = m.y + i * D, a = m.roww[s0 + i];
            if (kt->axpy) kt->axpy(o, a, yi, D);
            else for (int64_t d = 0; d < D; d++) o[d] += a * yi[d];
        }
    }
    return 0;
}

void cke_sigmoid_mul_fwd(float *out /* [T,D] */, const float *x /* [T,D] */, const float *g /* [T] */, int64_t T, int64_t D) {
    for (int64_t t = 0; t < T; t++) {
        const float s = (float)(1.0 / (1.0 + exp(-(double)g[t])));
        for (int64_t d = 0; d < D; d++) out[t * D + d] = s * x[t * D + d];
    }
}
