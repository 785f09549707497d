/* Tests of the mixture-of-experts FFN: the grouped fast path (cke_moe_fwd on each table's GEMM)
 * against the _ref spec over odd shapes, T = 1 (decode) and T > 1 (prefill, experts with several
 * rows and experts with none), k = 1, 2 and k = E; ties in the router go to the lower index. */
#include "harness.h"
#include "kernels/moe_route.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* float GEMM sums of D (then F) terms against the ref's double sums, routing weights <= 1:
 * ~eps * sqrt(K) relative on outputs of size ~1; a wrong expert or weight is off by ~1e-1 */
static const tol_t TOL_MOE = {1e-10, 2e-5, 1e-4};

typedef struct { int64_t T, D, F, E, k; int renorm; } moe_shape; /* renorm: weights renormalized over the k */

typedef struct {
    float *x, *router, *gate, *up, *down;
} moe_in;

static moe_in moe_alloc(trng *r, moe_shape s) {
    moe_in m = {tallocf(s.T * s.D), tallocf(s.E * s.D), tallocf(s.E * s.F * s.D), tallocf(s.E * s.F * s.D),
                tallocf(s.E * s.D * s.F)};
    tfill_normal(r, m.x, s.T * s.D, 1.0f);
    tfill_normal(r, m.router, s.E * s.D, 1.0f);
    tfill_normal(r, m.gate, s.E * s.F * s.D, 1.0f / sqrtf((float)s.D));
    tfill_normal(r, m.up, s.E * s.F * s.D, 1.0f / sqrtf((float)s.D));
    tfill_normal(r, m.down, s.E * s.D * s.F, 1.0f / sqrtf((float)s.F));
    return m;
}

static void moe_free(moe_in *m) { free(m->x), free(m->router), free(m->gate), free(m->up), free(m->down); }

static void run_ref(float *out, const moe_in *m, moe_shape s) {
    void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, s.k, 0, 0, 0, 1));
    cke_moe_fwd_ref(out, m->x, m->router, m->gate, m->up, m->down, s.T, s.D, s.F, s.E, s.k, s.renorm, ws);
    free(ws);
}

static void run_fast(const cke_ktable *kt, float *out, const moe_in *m, moe_shape s, int nth) {
    void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, s.k, 0, 0, 0, nth));
    for (int64_t i = 0; i < s.T * s.D; i++) out[i] = NAN; /* every element must be written */
    if (cke_moe_fwd(kt, out, m->x, m->router, m->gate, m->up, m->down, 0, 0, 0, s.T, s.D, s.F, s.E, s.k, s.renorm, ws, nth))
        printf("    FAIL cke_moe_fwd refused f32 experts\n");
    free(ws);
}

static int moe_simd(const cke_ktable *kt, const cke_ktable *ref) {
    (void)ref;
    static const moe_shape shapes[] = {
        {1, 17, 33, 4, 1, 1}, {1, 33, 17, 8, 2, 1}, {5, 17, 33, 4, 2, 1}, {13, 64, 48, 8, 2, 1},
        {7, 3, 5, 3, 3, 1},   {33, 40, 24, 6, 2, 1}, {2, 1, 1, 1, 1, 1},
        {1, 33, 17, 8, 2, 0}, {13, 64, 48, 8, 3, 0}, {6, 9, 7, 3, 3, 0}, /* probabilities as they are */
    };
    int fails = 0;
    trng r = {9100u};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        moe_shape s = shapes[i];
        moe_in m = moe_alloc(&r, s);
        float *want = tallocf(s.T * s.D), *g1 = tallocf(s.T * s.D), *g2 = tallocf(s.T * s.D);
        run_ref(want, &m, s);
        run_fast(kt, g1, &m, s, 1);
        run_fast(kt, g2, &m, s, 2);
        char what[128];
        snprintf(what, sizeof what, "moe %s T=%lld D=%lld F=%lld E=%lld k=%lld renorm=%d", kt->name, (long long)s.T,
                 (long long)s.D, (long long)s.F, (long long)s.E, (long long)s.k, s.renorm);
        fails += tcheck(what, g1, want, s.T * s.D, TOL_MOE);
        if (memcmp(g1, g2, (size_t)(s.T * s.D) * sizeof(float))) {
            printf("    FAIL %s: nth=1 and nth=2 differ bitwise\n", what);
            fails++;
        }
        free(want), free(g1), free(g2);
        moe_free(&m);
    }
    /* the shared expert's gate: sigmoid of one logit per row times the row, in place too */
    {
        const int64_t T = 5, D = 17;
        float *x = tallocf(T * D), *g = tallocf(T), *want = tallocf(T * D), *got = tallocf(T * D);
        tfill_normal(&r, x, T * D, 1.0f);
        tfill_normal(&r, g, T, 4.0f);
        for (int64_t i = 0; i < T * D; i++) want[i] = (float)(1.0 / (1.0 + exp(-(double)g[i / D]))) * x[i];
        cke_sigmoid_mul_fwd(got, x, g, T, D);
        fails += tcheck("sigmoid_mul", got, want, T * D, (tol_t){1e-12, 1e-7, 1e-6});
        cke_sigmoid_mul_fwd(x, x, g, T, D);
        fails += tcheck("sigmoid_mul in place", x, want, T * D, (tol_t){1e-12, 1e-7, 1e-6});
        free(x), free(g), free(want), free(got);
    }
    /* k = E: the probabilities over all experts already sum to 1, so renorm changes nothing; with
     * k < E unrenormalized weights sum to less than 1 and the outputs differ */
    for (int64_t k = 2; k <= 3; k++) {
        moe_shape a = {5, 11, 13, 3, k, 1}, b = {5, 11, 13, 3, k, 0};
        moe_in m = moe_alloc(&r, a);
        float *ya = tallocf(a.T * a.D), *yb = tallocf(a.T * a.D);
        run_fast(kt, ya, &m, a, 1);
        run_fast(kt, yb, &m, b, 1);
        double diff = 0;
        for (int64_t i = 0; i < a.T * a.D; i++) diff = fmax(diff, fabs((double)ya[i] - yb[i]));
        if (k == 3 ? diff > 1e-5 : diff < 1e-3) {
            printf("    FAIL moe %s k=%lld of 3: renorm on/off differ by %g\n", kt->name, (long long)k, diff);
            fails++;
        }
        free(ya), free(yb);
        moe_free(&m);
    }
    /* ties: experts 1 and 2 (and 0 for k = 2) have equal router rows, above the rest. k = 1 must
     * pick expert 1; k = 2 over three equal logits picks 0 and 1 at 0.5 each. Checked against the
     * same model with the tie broken by hand (the loser's row lowered). */
    for (int64_t k = 1; k <= 2; k++) {
        moe_shape s = {6, 9, 7, 4, k, 1};
        moe_in m = moe_alloc(&r, s);
        tfill_uniform(&r, m.x, s.T * s.D, 0.1f, 1.0f); /* positive rows: v . x > 0 > -v . x */
        for (int64_t d = 0; d < s.D; d++) {
            float v = 0.5f + 0.01f * (float)d;
            for (int64_t e = 0; e < s.E; e++) m.router[e * s.D + d] = (k == 2 ? e <= 2 : e == 1 || e == 2) ? v : -v;
        }
        float *tie_ref = tallocf(s.T * s.D), *tie_fast = tallocf(s.T * s.D), *want = tallocf(s.T * s.D);
        run_ref(tie_ref, &m, s);
        run_fast(kt, tie_fast, &m, s, 2);
        for (int64_t d = 0; d < s.D; d++) m.router[2 * s.D + d] = -m.router[2 * s.D + d]; /* expert 2 loses */
        run_ref(want, &m, s);
        char what[96];
        snprintf(what, sizeof what, "moe %s tie k=%lld: ref", kt->name, (long long)k);
        fails += tcheck(what, tie_ref, want, s.T * s.D, (tol_t){0, 0, 0});
        snprintf(what, sizeof what, "moe %s tie k=%lld: fast", kt->name, (long long)k);
        fails += tcheck(what, tie_fast, want, s.T * s.D, TOL_MOE);
        free(tie_ref), free(tie_fast), free(want);
        moe_free(&m);
    }
    return fails;
}

/* Stacks of E experts' [N, K] matrices in a stored format: each row quantized (and repacked, for
 * cke's ids 40..), and the f32 values the blocks hold, which the _ref then runs on. */
static void *stack_q(const cke_ktable *ref, int qt, const float *w, float *deq, int64_t rows, int64_t K) {
    const cke_qtype_ops *q = ref->qops[qt], *src = q->repack_of ? ref->qops[q->repack_of] : q;
    const size_t rs = cke_qtype_row_size(qt, K);
    char *out = talloc(rs * (size_t)rows), *tmp = talloc(rs);
    for (int64_t r = 0; r < rows; r++) {
        src->quantize_row(tmp, w + r * K, K);
        src->dequantize_row(deq + r * K, tmp, K);
        if (q->repack_of) q->repack_row(out + (size_t)r * rs, tmp, K);
        else memcpy(out + (size_t)r * rs, tmp, rs);
    }
    free(tmp);
    return out;
}

/* Experts in stored formats (an expert = a block of rows of the stack, through cke_qlinear_fwd):
 * against the _ref on the values the blocks hold. The activations are quantized to the format's
 * vec_dot_type (Q8_0 for the _0 formats), twice (x before gate/up, the SwiGLU before down): a
 * block's largest element sets its step, so the error is ~1% rms (measured nmse 1.1e-4 to 1.7e-4);
 * nmse 1e-3 and 3e-2 per element, where a wrong expert or weight gives nmse ~1. F16 dots f32
 * activations: the f32 tolerance. T = 1 (GEMV) and T = 9 (grouped rows). */
static int moe_quant(const cke_ktable *kt, const cke_ktable *ref) {
    static const struct { int qt; tol_t tol; } fmts[] = {
        {1, {1e-10, 2e-5, 1e-4}},  /* f16: the dequantized values exactly, f32 activations */
        {8, {1e-3, 3e-2, 3e-2}},   /* q8_0 */
        {2, {1e-3, 3e-2, 3e-2}},   /* q4_0: activation rounding as q8_0 */
        {40, {1e-3, 3e-2, 3e-2}},  /* q8_0r: repacked in weights.bin */
        {41, {1e-3, 3e-2, 3e-2}},  /* q4_0r */
    };
    int fails = 0;
    trng r = {9200u};
    for (size_t fi = 0; fi < sizeof fmts / sizeof fmts[0]; fi++)
        for (int64_t T = 1; T <= 9; T += 8) {
            const int qt = fmts[fi].qt;
            if (!kt->qops[qt] || !ref->qops[qt]) continue;
            moe_shape s = {T, 64, 96, 5, 2, 1};
            moe_in m = moe_alloc(&r, s);
            moe_in dq = {m.x, m.router, tallocf(s.E * s.F * s.D), tallocf(s.E * s.F * s.D), tallocf(s.E * s.D * s.F)};
            void *g = stack_q(ref, qt, m.gate, dq.gate, s.E * s.F, s.D), *u = stack_q(ref, qt, m.up, dq.up, s.E * s.F, s.D),
                 *d = stack_q(ref, qt, m.down, dq.down, s.E * s.D, s.F);
            float *want = tallocf(s.T * s.D), *got = tallocf(s.T * s.D);
            run_ref(want, &dq, s);
            void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, s.k, qt, qt, qt, 2));
            char what[96];
            snprintf(what, sizeof what, "moe %s experts %s T=%lld", kt->name, ref->qops[qt]->name, (long long)T);
            if (cke_moe_fwd(kt, got, m.x, m.router, g, u, d, qt, qt, qt, s.T, s.D, s.F, s.E, s.k, 1, ws, 2)) {
                printf("    FAIL %s: refused\n", what);
                fails++;
            } else {
                fails += tcheck(what, got, want, s.T * s.D, fmts[fi].tol);
            }
            free(ws), free(g), free(u), free(d), free(want), free(got);
            free(dq.gate), free(dq.up), free(dq.down);
            moe_free(&m);
        }
    /* a stack whose rows are not whole blocks is refused, not read past */
    moe_shape s = {1, 33, 32, 2, 1, 1};
    moe_in m = moe_alloc(&r, s);
    void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, s.k, 0, 0, 0, 1));
    float *got = tallocf(s.T * s.D);
    if (cke_moe_fwd(kt, got, m.x, m.router, m.gate, m.up, m.down, 8, 8, 0, s.T, s.D, s.F, s.E, s.k, 1, ws, 1) != -1) {
        printf("    FAIL moe %s: q8_0 rows of 33 accepted\n", kt->name);
        fails++;
    }
    free(ws), free(got);
    moe_free(&m);
    return fails;
}


/* ---- backward (training) ---- */

typedef struct {
    float *dx, *dr, *dg, *du, *dd; /* gradients of x, router, gate, up, down */
} moe_grads;

static moe_grads grads_alloc(moe_shape s) {
    moe_grads g = {tallocf(s.T * s.D), tallocf(s.E * s.D), tallocf(s.E * s.F * s.D), tallocf(s.E * s.F * s.D),
                   tallocf(s.E * s.D * s.F)};
    return g;
}
static void grads_free(moe_grads *g) { free(g->dx), free(g->dr), free(g->dg), free(g->du), free(g->dd); }

static void bwd_ref(moe_grads *g, const float *dout, const float *aux, const moe_in *m, moe_shape s) {
    void *ws = talloc(cke_moe_bwd_ws_size(s.T, s.D, s.F, s.E, s.k, 1));
    cke_moe_bwd_ref(g->dx, g->dr, g->dg, g->du, g->dd, dout, m->x, m->router, m->gate, m->up, m->down, aux, s.T, s.D, s.F,
                    s.E, s.k, s.renorm, ws);
    free(ws);
}

static void bwd_fast(const cke_ktable *kt, moe_grads *g, const float *dout, const float *aux, const moe_in *m, moe_shape s,
                     int nth) {
    void *ws = talloc(cke_moe_bwd_ws_size(s.T, s.D, s.F, s.E, s.k, nth));
    cke_moe_bwd(kt, g->dx, g->dr, g->dg, g->du, g->dd, dout, m->x, m->router, m->gate, m->up, m->down, aux, s.T, s.D, s.F,
                s.E, s.k, s.renorm, ws, nth);
    free(ws);
}

/* The fast backward (each table's GEMMs, rows grouped per expert) against the _ref over odd
 * shapes, renormalized or not, with and without the load-balancing term; gradients accumulate
 * (both start from the same nonzero values); nth = 1 and 2 give the same bits. */
static int moe_bwd_simd(const cke_ktable *kt, const cke_ktable *ref) {
    (void)ref;
    static const moe_shape shapes[] = {
        {1, 17, 33, 4, 1, 1}, {5, 17, 33, 4, 2, 1}, {13, 64, 48, 8, 2, 1}, {7, 3, 5, 3, 3, 1}, {33, 40, 24, 6, 2, 0},
        {13, 64, 48, 8, 3, 0}, {6, 9, 7, 3, 3, 0}, {9, 5, 3, 70, 4, 1},
    };
    int fails = 0;
    trng r = {9300u};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int with_aux = 0; with_aux < 2; with_aux++) {
            moe_shape s = shapes[i];
            moe_in m = moe_alloc(&r, s);
            float *dout = tallocf(s.T * s.D), *aux = tallocf(s.E);
            tfill_normal(&r, dout, s.T * s.D, 1.0f);
            tfill_normal(&r, aux, s.E, 0.5f);
            moe_grads want = grads_alloc(s), g1 = grads_alloc(s), g2 = grads_alloc(s);
            float *const wv[] = {want.dx, want.dr, want.dg, want.du, want.dd}, *const v1[] = {g1.dx, g1.dr, g1.dg, g1.du, g1.dd},
                        *const v2[] = {g2.dx, g2.dr, g2.dg, g2.du, g2.dd};
            const int64_t n[] = {s.T * s.D, s.E * s.D, s.E * s.F * s.D, s.E * s.F * s.D, s.E * s.D * s.F};
            for (int j = 0; j < 5; j++) { /* += : a common nonzero start */
                tfill_normal(&r, wv[j], n[j], 0.1f);
                memcpy(v1[j], wv[j], (size_t)n[j] * sizeof(float));
                memcpy(v2[j], wv[j], (size_t)n[j] * sizeof(float));
            }
            bwd_ref(&want, dout, with_aux ? aux : NULL, &m, s);
            bwd_fast(kt, &g1, dout, with_aux ? aux : NULL, &m, s, 1);
            bwd_fast(kt, &g2, dout, with_aux ? aux : NULL, &m, s, 2);
            static const char *nm[] = {"dx", "drouter", "dgate", "dup", "ddown"};
            for (int j = 0; j < 5; j++) {
                char what[160];
                snprintf(what, sizeof what, "moe_bwd %s %s T=%lld D=%lld F=%lld E=%lld k=%lld renorm=%d aux=%d", kt->name, nm[j],
                         (long long)s.T, (long long)s.D, (long long)s.F, (long long)s.E, (long long)s.k, s.renorm, with_aux);
                fails += tcheck(what, v1[j], wv[j], n[j], TOL_MOE);
                if (memcmp(v1[j], v2[j], (size_t)n[j] * sizeof(float))) {
                    printf("    FAIL %s: nth=1 and nth=2 differ bitwise\n", what);
                    fails++;
                }
            }
            grads_free(&want), grads_free(&g1), grads_free(&g2);
            free(dout), free(aux);
            moe_free(&m);
        }
    /* the shared expert's gate backward against the product rule in double */
    {
        const int64_t T = 5, D = 17;
        float *x = tallocf(T * D), *g = tallocf(T), *dy = tallocf(T * D), *dx = tallocf(T * D), *dg = tallocf(T);
        float *wx = tallocf(T * D), *wg = tallocf(T);
        tfill_normal(&r, x, T * D, 1.0f);
        tfill_normal(&r, g, T, 2.0f);
        tfill_normal(&r, dy, T * D, 1.0f);
        for (int64_t t = 0; t < T; t++) {
            const double sg = 1.0 / (1.0 + exp(-(double)g[t]));
            double dot = 0;
            for (int64_t d = 0; d < D; d++) dot += (double)dy[t * D + d] * x[t * D + d], wx[t * D + d] = (float)(sg * dy[t * D + d]);
            wg[t] = (float)(sg * (1 - sg) * dot);
        }
        cke_sigmoid_mul_bwd(dx, dg, dy, x, g, T, D);
        fails += tcheck("sigmoid_mul_bwd dx", dx, wx, T * D, (tol_t){1e-12, 1e-7, 1e-6});
        fails += tcheck("sigmoid_mul_bwd dg", dg, wg, T, (tol_t){1e-12, 1e-7, 1e-6});
        free(x), free(g), free(dy), free(dx), free(dg), free(wx), free(wg);
    }
    return fails;
}

/* loss = sum(dout * moe(x)) + sum_t aux . softmax(router x_t): the objective whose gradients
 * cke_moe_bwd_ref returns, in double where the kernel is (the forward's f32 roundings aside) */
static double moe_objective(const moe_in *m, moe_shape s, const float *dout, const float *aux, float *out, void *ws) {
    cke_moe_fwd_ref(out, m->x, m->router, m->gate, m->up, m->down, s.T, s.D, s.F, s.E, s.k, s.renorm, ws);
    double L = 0;
    for (int64_t i = 0; i < s.T * s.D; i++) L += (double)dout[i] * out[i];
    for (int64_t t = 0; t < s.T; t++) {
        double l[16], mx = -1e300, sum = 0, a = 0;
        for (int64_t e = 0; e < s.E; e++) {
            l[e] = 0;
            for (int64_t d = 0; d < s.D; d++) l[e] += (double)m->router[e * s.D + d] * m->x[t * s.D + d];
            mx = l[e] > mx ? l[e] : mx;
        }
        for (int64_t e = 0; e < s.E; e++) sum += exp(l[e] - mx);
        for (int64_t e = 0; e < s.E; e++) a += aux[e] * exp(l[e] - mx) / sum;
        L += a;
    }
    return L;
}

/* the top-k sets of every row, as a bitmask per row (E <= 16 here) */
static void topk_sets(uint32_t *sets, const moe_in *m, moe_shape s) {
    for (int64_t t = 0; t < s.T; t++) {
        float l[16];
        int32_t sel[16] = {0};
        float w[16] = {0};
        for (int64_t e = 0; e < s.E; e++) {
            double a = 0;
            for (int64_t d = 0; d < s.D; d++) a += (double)m->router[e * s.D + d] * m->x[t * s.D + d];
            l[e] = (float)a;
        }
        cke_moe_route(sel, w, l, s.E, s.k, s.renorm);
        sets[t] = 0;
        for (int64_t j = 0; j < s.k; j++) sets[t] |= 1u << sel[j];
    }
}

/* The _ref backward against central differences of moe_objective on elements of every input;
 * a perturbation that changes some row's chosen experts (the routing is piecewise) is skipped.
 * eps 1e-2 keeps the f32 rounding of the forward's outputs (~1e-7 x the objective's ~30 terms,
 * over 2 eps) near 2e-4: 2e-3 absolute + 2% relative as the model-level tests. */
static int moe_bwd_grad(const cke_ktable *ref) {
    (void)ref;
    static const moe_shape shapes[] = {{4, 6, 5, 4, 2, 1}, {5, 7, 4, 5, 2, 0}, {3, 5, 3, 3, 1, 1}};
    int fails = 0;
    trng r = {9400u};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        moe_shape s = shapes[i];
        moe_in m = moe_alloc(&r, s);
        float *dout = tallocf(s.T * s.D), *aux = tallocf(s.E), *out = tallocf(s.T * s.D);
        tfill_normal(&r, dout, s.T * s.D, 1.0f);
        tfill_normal(&r, aux, s.E, 1.0f);
        moe_grads g = grads_alloc(s);
        bwd_ref(&g, dout, aux, &m, s);
        void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, s.k, 0, 0, 0, 1));
        uint32_t base[16], plus[16], minus[16];
        topk_sets(base, &m, s);
        float *const pv[] = {m.x, m.router, m.gate, m.up, m.down}, *const gv[] = {g.dx, g.dr, g.dg, g.du, g.dd};
        const int64_t n[] = {s.T * s.D, s.E * s.D, s.E * s.F * s.D, s.E * s.F * s.D, s.E * s.D * s.F};
        static const char *nm[] = {"x", "router", "gate", "up", "down"};
        int checked = 0, skipped = 0;
        for (int j = 0; j < 5; j++)
            for (int64_t idx = 0; idx < n[j]; idx += 1 + n[j] / 11) {
                float *p = pv[j] + idx, keep = *p;
                const float eps = 1e-2f;
                *p = keep + eps;
                topk_sets(plus, &m, s);
                double lp = moe_objective(&m, s, dout, aux, out, ws);
                *p = keep - eps;
                topk_sets(minus, &m, s);
                double lm = moe_objective(&m, s, dout, aux, out, ws);
                *p = keep;
                if (memcmp(plus, base, (size_t)s.T * 4) || memcmp(minus, base, (size_t)s.T * 4)) { skipped++; continue; }
                double fd = (lp - lm) / (2.0 * eps), an = gv[j][idx];
                checked++;
                if (fabs(fd - an) > 2e-3 + 0.02 * fabs(fd)) {
                    printf("    FAIL moe_bwd_ref d%s[%lld] T=%lld E=%lld k=%lld renorm=%d: backward %.6g, central difference %.6g\n",
                           nm[j], (long long)idx, (long long)s.T, (long long)s.E, (long long)s.k, s.renorm, an, fd);
                    fails++;
                }
            }
        if (checked < 40) {
            printf("    FAIL moe_bwd_ref: only %d elements checked (%d skipped for a routing change)\n", checked, skipped);
            fails++;
        }
        free(ws), free(dout), free(aux), free(out);
        grads_free(&g);
        moe_free(&m);
    }
    return fails;
}

const test_op tests_moe[] = {
    {"moe", moe_simd, NULL, NULL},
    {"moe_quant", moe_quant, NULL, NULL},
    {"moe_bwd", moe_bwd_simd, moe_bwd_grad, NULL},
    {0},
};
