/* Tests of the mixture-of-experts FFN: the grouped fast path (cke_moe_fwd on each table's GEMM)
 * against the _ref spec over odd shapes, T = 1 (decode) and T > 1 (prefill, experts with several
 * rows and experts with none), k = 1, 2 and k = E; ties in the router go to the lower index. The
 * routers: softmax (Mixtral, Qwen-MoE, OLMoE) and sigmoid with a choice bias, groups and a scale
 * (DeepSeek-V3, GLM-4.5), the routing itself checked exactly against hand-made cases and an
 * independent transcription of HF's Glm4MoeTopkRouter. */
#include "harness.h"
#include "kernels/moe_route.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* float GEMM sums of D (then F) terms against the ref's double sums, routing weights <= 1:
 * ~eps * sqrt(K) relative on outputs of size ~1; a wrong expert or weight is off by ~1e-1 */
static const tol_t TOL_MOE = {1e-10, 2e-5, 1e-4};

/* renorm: weights renormalized over the k; sigmoid scoring; bias: a choice bias (moe_in.bias);
 * ng, tg: n_group, topk_group; scale (0 in a table: 1) */
typedef struct {
    int64_t T, D, F, E, k;
    int renorm, sigmoid, bias;
    int64_t ng, tg;
    float scale;
} moe_shape;

typedef struct {
    float *x, *router, *gate, *up, *down, *bias;
} moe_in;

static moe_in moe_alloc(trng *r, moe_shape s) {
    moe_in m = {tallocf(s.T * s.D), tallocf(s.E * s.D), tallocf(s.E * s.F * s.D), tallocf(s.E * s.F * s.D),
                tallocf(s.E * s.D * s.F), tallocf(s.E)};
    tfill_normal(r, m.x, s.T * s.D, 1.0f);
    tfill_normal(r, m.router, s.E * s.D, 1.0f);
    tfill_normal(r, m.gate, s.E * s.F * s.D, 1.0f / sqrtf((float)s.D));
    tfill_normal(r, m.up, s.E * s.F * s.D, 1.0f / sqrtf((float)s.D));
    tfill_normal(r, m.down, s.E * s.D * s.F, 1.0f / sqrtf((float)s.F));
    tfill_normal(r, m.bias, s.E, 0.3f); /* as large as the sigmoid scores' spread: it changes choices */
    return m;
}

static void moe_free(moe_in *m) { free(m->x), free(m->router), free(m->gate), free(m->up), free(m->down), free(m->bias); }

static cke_moe_gate gate_of(moe_shape s, const moe_in *m) {
    return (cke_moe_gate){.sigmoid = s.sigmoid, .renorm = s.renorm, .bias = s.bias ? m->bias : NULL, .n_group = s.ng,
                          .topk_group = s.tg, .scale = s.scale != 0 ? s.scale : 1.0f};
}

/* "T=.. D=.. F=.. E=.. k=.. softmax|sigmoid renorm=.. [bias] [groups ng/tg] [scale ..]" */
static const char *shape_str(moe_shape s) {
    static char b[160];
    int n = snprintf(b, sizeof b, "T=%lld D=%lld F=%lld E=%lld k=%lld %s renorm=%d", (long long)s.T, (long long)s.D,
                     (long long)s.F, (long long)s.E, (long long)s.k, s.sigmoid ? "sigmoid" : "softmax", s.renorm);
    if (s.bias) n += snprintf(b + n, sizeof b - (size_t)n, " bias");
    if (s.ng > 1) n += snprintf(b + n, sizeof b - (size_t)n, " groups %lld/%lld", (long long)s.tg, (long long)s.ng);
    if (s.scale != 0 && s.scale != 1) snprintf(b + n, sizeof b - (size_t)n, " scale %g", (double)s.scale);
    return b;
}

static void run_ref(float *out, const moe_in *m, moe_shape s) {
    void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, s.k, 0, 0, 0, 1));
    const cke_moe_gate g = gate_of(s, m);
    cke_moe_fwd_ref(out, m->x, m->router, m->gate, m->up, m->down, s.T, s.D, s.F, s.E, s.k, &g, ws);
    free(ws);
}

static void run_fast(const cke_ktable *kt, float *out, const moe_in *m, moe_shape s, int nth) {
    void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, s.k, 0, 0, 0, nth));
    const cke_moe_gate g = gate_of(s, m);
    for (int64_t i = 0; i < s.T * s.D; i++) out[i] = NAN; /* every element must be written */
    if (cke_moe_fwd(kt, out, m->x, m->router, m->gate, m->up, m->down, 0, 0, 0, s.T, s.D, s.F, s.E, s.k, &g, ws, nth))
        printf("    FAIL cke_moe_fwd refused f32 experts\n");
    free(ws);
}

static int moe_simd(const cke_ktable *kt, const cke_ktable *ref) {
    (void)ref;
    static const moe_shape shapes[] = {
        {1, 17, 33, 4, 1, 1, 0, 0, 0, 0, 1}, {1, 33, 17, 8, 2, 1, 0, 0, 0, 0, 1}, {5, 17, 33, 4, 2, 1, 0, 0, 0, 0, 1}, {13, 64, 48, 8, 2, 1, 0, 0, 0, 0, 1},
        {7, 3, 5, 3, 3, 1, 0, 0, 0, 0, 1},   {33, 40, 24, 6, 2, 1, 0, 0, 0, 0, 1}, {2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        {1, 33, 17, 8, 2, 0, 0, 0, 0, 0, 1}, {13, 64, 48, 8, 3, 0, 0, 0, 0, 0, 1}, {6, 9, 7, 3, 3, 0, 0, 0, 0, 0, 1}, /* probabilities as they are */
        /* scaled softmax; softmax probabilities + bias, with groups */
        {5, 17, 33, 4, 2, 1, 0, 0, 0, 0, 2.5f}, {13, 24, 16, 8, 2, 0, 0, 1, 4, 2, 2.5f}, {9, 24, 16, 8, 3, 1, 0, 1, 4, 2, 1},
        /* sigmoid (DeepSeek-V3, GLM-4.5): renormalized or not, a bias, groups, a scale */
        {1, 17, 33, 8, 2, 1, 1, 0, 0, 0, 1}, {13, 64, 48, 8, 3, 0, 1, 0, 0, 0, 1}, {9, 33, 17, 8, 2, 1, 1, 1, 0, 0, 1},
        {13, 40, 24, 16, 4, 1, 1, 1, 4, 2, 2.5f}, {1, 33, 17, 16, 4, 1, 1, 1, 4, 2, 2.5f}, /* prefill, decode */
        {4, 33, 17, 16, 4, 0, 1, 1, 4, 2, 2.5f}, {7, 17, 9, 6, 2, 1, 1, 1, 3, 1, 2.5f}, /* groups of 2, one kept */
        {5, 9, 7, 6, 2, 0, 1, 1, 6, 3, 1}, /* groups of one expert */
        {33, 40, 24, 16, 6, 1, 1, 1, 8, 3, 1.5f},
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
        char what[192];
        snprintf(what, sizeof what, "moe %s %s", kt->name, shape_str(s));
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
        moe_shape a = {5, 11, 13, 3, k, 1, 0, 0, 0, 0, 1}, b = {5, 11, 13, 3, k, 0, 0, 0, 0, 0, 1};
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
        moe_shape s = {6, 9, 7, 4, k, 1, 0, 0, 0, 0, 1};
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
 * activations: the f32 tolerance. T = 1 (GEMV) and T = 9 (grouped rows); Mixtral's softmax router
 * and a DeepSeek-V3 one (sigmoid, bias, groups, scale 2.5). */
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
        for (int64_t it = 0; it < 4; it++) {
            const int qt = fmts[fi].qt;
            const int64_t T = it % 2 ? 9 : 1;
            if (!kt->qops[qt] || !ref->qops[qt]) continue;
            moe_shape s = it < 2 ? (moe_shape){T, 64, 96, 5, 2, 1, 0, 0, 0, 0, 1} : (moe_shape){T, 64, 96, 8, 3, 1, 1, 1, 4, 2, 2.5f};
            moe_in m = moe_alloc(&r, s);
            moe_in dq = {m.x, m.router, tallocf(s.E * s.F * s.D), tallocf(s.E * s.F * s.D), tallocf(s.E * s.D * s.F), m.bias};
            void *g = stack_q(ref, qt, m.gate, dq.gate, s.E * s.F, s.D), *u = stack_q(ref, qt, m.up, dq.up, s.E * s.F, s.D),
                 *d = stack_q(ref, qt, m.down, dq.down, s.E * s.D, s.F);
            float *want = tallocf(s.T * s.D), *got = tallocf(s.T * s.D);
            run_ref(want, &dq, s);
            void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, s.k, qt, qt, qt, 2));
            char what[224];
            snprintf(what, sizeof what, "moe %s experts %s %s", kt->name, ref->qops[qt]->name, shape_str(s));
            const cke_moe_gate gt = gate_of(s, &m);
            if (cke_moe_fwd(kt, got, m.x, m.router, g, u, d, qt, qt, qt, s.T, s.D, s.F, s.E, s.k, &gt, ws, 2)) {
                printf("    FAIL %s: refused\n", what);
                fails++;
            } else {
                /* the scale multiplies the outputs and their activation-rounding errors alike: the absolute
                 * part of the tolerance scales with it (nmse and rtol are relative already) */
                tol_t tol = fmts[fi].tol;
                tol.atol *= gt.scale;
                fails += tcheck(what, got, want, s.T * s.D, tol);
            }
            free(ws), free(g), free(u), free(d), free(want), free(got);
            free(dq.gate), free(dq.up), free(dq.down);
            moe_free(&m);
        }
    /* a stack whose rows are not whole blocks is refused, not read past */
    moe_shape s = {1, 33, 32, 2, 1, 1, 0, 0, 0, 0, 1};
    moe_in m = moe_alloc(&r, s);
    void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, s.k, 0, 0, 0, 1));
    float *got = tallocf(s.T * s.D);
    const cke_moe_gate mixtral = {.renorm = 1, .scale = 1};
    if (cke_moe_fwd(kt, got, m.x, m.router, m.gate, m.up, m.down, 8, 8, 0, s.T, s.D, s.F, s.E, s.k, &mixtral, ws, 1) != -1) {
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
    const cke_moe_gate gt = gate_of(s, m);
    cke_moe_bwd_ref(g->dx, g->dr, g->dg, g->du, g->dd, dout, m->x, m->router, m->gate, m->up, m->down, aux, s.T, s.D, s.F,
                    s.E, s.k, &gt, ws);
    free(ws);
}

static void bwd_fast(const cke_ktable *kt, moe_grads *g, const float *dout, const float *aux, const moe_in *m, moe_shape s,
                     int nth) {
    void *ws = talloc(cke_moe_bwd_ws_size(s.T, s.D, s.F, s.E, s.k, nth));
    const cke_moe_gate gt = gate_of(s, m);
    cke_moe_bwd(kt, g->dx, g->dr, g->dg, g->du, g->dd, dout, m->x, m->router, m->gate, m->up, m->down, aux, s.T, s.D, s.F,
                s.E, s.k, &gt, ws, nth);
    free(ws);
}

/* The fast backward (each table's GEMMs, rows grouped per expert) against the _ref over odd
 * shapes, renormalized or not, with and without the load-balancing term, softmax and sigmoid
 * routers; gradients accumulate (both start from the same nonzero values); nth = 1 and 2 give the
 * same bits. A sigmoid router ignores aux_g: the gradients with and without it are the same bits. */
static int moe_bwd_simd(const cke_ktable *kt, const cke_ktable *ref) {
    (void)ref;
    static const moe_shape shapes[] = {
        {1, 17, 33, 4, 1, 1, 0, 0, 0, 0, 1}, {5, 17, 33, 4, 2, 1, 0, 0, 0, 0, 1}, {13, 64, 48, 8, 2, 1, 0, 0, 0, 0, 1}, {7, 3, 5, 3, 3, 1, 0, 0, 0, 0, 1}, {33, 40, 24, 6, 2, 0, 0, 0, 0, 0, 1},
        {13, 64, 48, 8, 3, 0, 0, 0, 0, 0, 1}, {6, 9, 7, 3, 3, 0, 0, 0, 0, 0, 1}, {9, 5, 3, 70, 4, 1, 0, 0, 0, 0, 1},
        {5, 17, 33, 4, 2, 1, 0, 0, 0, 0, 2.5f}, {13, 24, 16, 8, 3, 0, 0, 1, 4, 2, 2.5f}, /* scaled softmax, bias, groups */
        {5, 17, 33, 8, 2, 1, 1, 0, 0, 0, 1}, {13, 64, 48, 8, 3, 0, 1, 1, 0, 0, 1}, {1, 17, 9, 16, 4, 1, 1, 1, 4, 2, 2.5f},
        {13, 40, 24, 16, 4, 1, 1, 1, 4, 2, 2.5f}, {7, 17, 9, 6, 2, 0, 1, 1, 3, 1, 2.5f}, {9, 5, 3, 64, 8, 1, 1, 1, 8, 4, 2.5f},
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
            moe_grads want = grads_alloc(s), g1 = grads_alloc(s), g2 = grads_alloc(s), g3 = grads_alloc(s);
            float *const wv[] = {want.dx, want.dr, want.dg, want.du, want.dd}, *const v1[] = {g1.dx, g1.dr, g1.dg, g1.du, g1.dd},
                        *const v2[] = {g2.dx, g2.dr, g2.dg, g2.du, g2.dd}, *const v3[] = {g3.dx, g3.dr, g3.dg, g3.du, g3.dd};
            const int64_t n[] = {s.T * s.D, s.E * s.D, s.E * s.F * s.D, s.E * s.F * s.D, s.E * s.D * s.F};
            for (int j = 0; j < 5; j++) { /* += : a common nonzero start */
                tfill_normal(&r, wv[j], n[j], 0.1f);
                memcpy(v1[j], wv[j], (size_t)n[j] * sizeof(float));
                memcpy(v2[j], wv[j], (size_t)n[j] * sizeof(float));
                memcpy(v3[j], wv[j], (size_t)n[j] * sizeof(float));
            }
            bwd_ref(&want, dout, with_aux ? aux : NULL, &m, s);
            bwd_fast(kt, &g1, dout, with_aux ? aux : NULL, &m, s, 1);
            bwd_fast(kt, &g2, dout, with_aux ? aux : NULL, &m, s, 2);
            if (s.sigmoid && with_aux) bwd_fast(kt, &g3, dout, NULL, &m, s, 1);
            static const char *nm[] = {"dx", "drouter", "dgate", "dup", "ddown"};
            for (int j = 0; j < 5; j++) {
                char what[224];
                snprintf(what, sizeof what, "moe_bwd %s %s %s aux=%d", kt->name, nm[j], shape_str(s), with_aux);
                fails += tcheck(what, v1[j], wv[j], n[j], TOL_MOE);
                if (memcmp(v1[j], v2[j], (size_t)n[j] * sizeof(float))) {
                    printf("    FAIL %s: nth=1 and nth=2 differ bitwise\n", what);
                    fails++;
                }
                if (s.sigmoid && with_aux && memcmp(v1[j], v3[j], (size_t)n[j] * sizeof(float))) {
                    printf("    FAIL %s: aux_g changed a sigmoid router's gradients\n", what);
                    fails++;
                }
            }
            grads_free(&want), grads_free(&g1), grads_free(&g2), grads_free(&g3);
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

/* loss = sum(dout * moe(x)) + sum_t aux . softmax(router x_t) (the second term for a softmax
 * router only): the objective whose gradients cke_moe_bwd_ref returns, in double where the kernel
 * is (the forward's f32 roundings aside) */
static double moe_objective(const moe_in *m, moe_shape s, const float *dout, const float *aux, float *out, void *ws) {
    const cke_moe_gate g = gate_of(s, m);
    cke_moe_fwd_ref(out, m->x, m->router, m->gate, m->up, m->down, s.T, s.D, s.F, s.E, s.k, &g, ws);
    double L = 0;
    for (int64_t i = 0; i < s.T * s.D; i++) L += (double)dout[i] * out[i];
    for (int64_t t = 0; t < s.T && !s.sigmoid; t++) {
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
        float w[16] = {0}, sc[CKE_MOE_ROUTE_SCRATCH(16)];
        for (int64_t e = 0; e < s.E; e++) {
            double a = 0;
            for (int64_t d = 0; d < s.D; d++) a += (double)m->router[e * s.D + d] * m->x[t * s.D + d];
            l[e] = (float)a;
        }
        const cke_moe_gate g = gate_of(s, m);
        cke_moe_route(sel, w, l, s.E, s.k, &g, sc);
        sets[t] = 0;
        for (int64_t j = 0; j < s.k; j++) sets[t] |= 1u << sel[j];
    }
}

/* The _ref backward against central differences of moe_objective on elements of every input, for
 * softmax routers (scaled too) and sigmoid ones (renormalized or not, bias, groups, scale);
 * a perturbation that changes some row's chosen experts (the routing is piecewise) is skipped.
 * eps 1e-2 keeps the f32 rounding of the forward's outputs (~1e-7 x the objective's ~30 terms,
 * over 2 eps) near 2e-4: 2e-3 absolute + 2% relative as the model-level tests. */
static int moe_bwd_grad(const cke_ktable *ref) {
    (void)ref;
    static const moe_shape shapes[] = {
        {4, 6, 5, 4, 2, 1, 0, 0, 0, 0, 1}, {5, 7, 4, 5, 2, 0, 0, 0, 0, 0, 1}, {3, 5, 3, 3, 1, 1, 0, 0, 0, 0, 1},
        {4, 6, 5, 4, 2, 1, 0, 0, 0, 0, 2.5f}, {5, 7, 4, 6, 2, 0, 0, 1, 3, 2, 2.5f}, /* softmax: scaled; bias and groups */
        {4, 6, 5, 8, 3, 1, 1, 1, 4, 2, 2.5f}, /* DeepSeek-V3: sigmoid, renorm, bias, groups, scale */
        {5, 7, 4, 6, 2, 0, 1, 1, 3, 2, 2.5f}, {3, 5, 3, 6, 2, 1, 1, 0, 6, 2, 1}, {4, 6, 5, 4, 2, 1, 1, 0, 0, 0, 1},
    };
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
                    printf("    FAIL moe_bwd_ref d%s[%lld] %s: backward %.6g, central difference %.6g\n", nm[j], (long long)idx,
                           shape_str(s), an, fd);
                    fails++;
                }
            }
        if (checked < 40) {
            printf("    FAIL moe_bwd_ref %s: only %d elements checked (%d skipped for a routing change)\n", shape_str(s), checked,
                   skipped);
            fails++;
        }
        free(ws), free(dout), free(aux), free(out);
        grads_free(&g);
        moe_free(&m);
    }
    return fails;
}

/* ---- the routing itself (cke_moe_route, moe_route.h) ---- */

/* The routing before cke_moe_gate, verbatim: a softmax router without bias, groups or scale must
 * keep its bits (the generated models' numbers and their tests rest on them). */
static void route_v0(int32_t *sel, float *w, const float *logits, int64_t E, int64_t k, int renorm) {
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++) {
            int taken = 0;
            for (int64_t i = 0; i < j && !taken; i++) taken = sel[i] == e;
            if (taken) continue;
            if (best < 0 || logits[e] > logits[best] || (isnan(logits[best]) && !isnan(logits[e]))) best = e;
        }
        sel[j] = (int32_t)best;
    }
    double sum = 0, m = logits[sel[0]];
    if (renorm)
        for (int64_t j = 0; j < k; j++) sum += exp((double)logits[sel[j]] - m);
    else
        for (int64_t e = 0; e < E; e++) sum += exp((double)logits[e] - m);
    for (int64_t j = 0; j < k; j++) w[j] = (float)(exp((double)logits[sel[j]] - m) / sum);
}

/* idx[n] <- 0..n-1 ordered by v descending, equals by index (torch.topk's order on distinct values) */
static void order_desc(int32_t *idx, const float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        int64_t j = i;
        while (j > 0 && v[i] > v[idx[j - 1]]) { idx[j] = idx[j - 1]; j--; }
        idx[j] = (int32_t)i;
    }
}

/* HF's Glm4MoeTopkRouter.forward (= DeepseekV3TopkRouter's) transcribed tensor by tensor in f32:
 * group scores the sum of each group's top 2, the topk_group best groups, the others masked to
 * -inf, the top k of the masked choice, the unbiased scores gathered, / (sum + 1e-20), * scale. */
static void route_hf(int32_t *sel, float *w, const float *logits, const float *bias, int64_t E, int64_t k, int64_t ng,
                     int64_t tg, int renorm, float scale) {
    float s[256], c[256], gs[256], tmp[256];
    int32_t ord[256];
    const int64_t n = E / ng;
    for (int64_t e = 0; e < E; e++) {
        s[e] = (float)(1.0 / (1.0 + exp(-(double)logits[e])));
        c[e] = s[e] + (bias ? bias[e] : 0.0f);
    }
    for (int64_t q = 0; q < ng; q++) {
        for (int64_t i = 0; i < n; i++) tmp[i] = c[q * n + i];
        order_desc(ord, tmp, n);
        gs[q] = n == 1 ? tmp[ord[0]] : tmp[ord[0]] + tmp[ord[1]];
    }
    order_desc(ord, gs, ng);
    for (int64_t q = tg; q < ng; q++)
        for (int64_t i = 0; i < n; i++) c[ord[q] * n + i] = -INFINITY;
    order_desc(ord, c, E);
    float sum = 0;
    for (int64_t j = 0; j < k; j++) sel[j] = ord[j], w[j] = s[ord[j]], sum += w[j];
    for (int64_t j = 0; j < k; j++) w[j] = (renorm ? w[j] / (sum + 1e-20f) : w[j]) * scale;
}

/* one hand-made routing: sel and w as written (w within 1e-6 relative: the weights' rounding) */
static int route_case(const char *what, const float *l, int64_t E, int64_t k, const cke_moe_gate *g, const int32_t *want_sel,
                      const double *want_w) {
    int32_t sel[8];
    float w[8], sc[CKE_MOE_ROUTE_SCRATCH(16)];
    cke_moe_route(sel, w, l, E, k, g, sc);
    for (int64_t j = 0; j < k; j++)
        if (sel[j] != want_sel[j] || fabs(w[j] - want_w[j]) > 1e-6 * fabs(want_w[j])) {
            printf("    FAIL moe route %s: choice %lld is expert %d weight %.8g, want expert %d weight %.8g\n", what, (long long)j,
                   sel[j], (double)w[j], want_sel[j], want_w[j]);
            return 1;
        }
    return 0;
}

static double sig(double x) { return (double)(float)(1.0 / (1.0 + exp(-x))); } /* the scores as the router rounds them */

/* The routing exactly: hand-made cases (the bias moves the choice, never the weights; a group
 * mask passes over a better expert; ties among groups; groups of one; NaNs), the softmax router
 * bit for bit as before cke_moe_gate, the sigmoid router against HF's transcribed; then gates
 * cke_moe_gate_check refuses, refused by the forward (-1) and the backward (outputs untouched). */
static int moe_route_simd(const cke_ktable *kt, const cke_ktable *ref) {
    (void)ref;
    int fails = 0;
    {   /* sigmoid scores .881 .731 .5 .269; a bias of .5 on expert 2 puts it first, its weight stays .5 */
        const float l[] = {2, 1, 0, -1}, b[] = {0, 0, 0.5f, 0};
        cke_moe_gate g = {.sigmoid = 1, .scale = 1};
        fails += route_case("sigmoid", l, 4, 2, &g, (const int32_t[]){0, 1}, (const double[]){sig(2), sig(1)});
        g.bias = b;
        fails += route_case("sigmoid, bias", l, 4, 2, &g, (const int32_t[]){2, 0}, (const double[]){0.5, sig(2)});
        g.renorm = 1, g.scale = 2.5f;
        const double S = 0.5 + sig(2);
        fails += route_case("sigmoid, bias, renorm, scale", l, 4, 2, &g, (const int32_t[]){2, 0},
                            (const double[]){2.5 * 0.5 / S, 2.5 * sig(2) / S});
    }
    {   /* HF's + 1e-20: scores of ~4e-44 (float denormals) renormalized give ~4e-24, not 1/2 */
        const float l[] = {-100, -101, -102, -103};
        const cke_moe_gate g = {.sigmoid = 1, .renorm = 1, .scale = 1};
        const double S = sig(-100) + sig(-101) + 1e-20;
        fails += route_case("sigmoid, renorm of tiny scores", l, 4, 2, &g, (const int32_t[]){0, 1},
                            (const double[]){sig(-100) / S, sig(-101) / S});
    }
    {   /* groups of 2 scored .953+.007, .731+.731, .622+.622, .269+.269: groups 1 and 2 kept, so expert 0
         * (the best score) is passed over; 2 and 3 tie, the lower index first */
        const float l[] = {3, -5, 1, 1, 0.5f, 0.5f, -1, -1};
        cke_moe_gate g = {.sigmoid = 1, .renorm = 1, .n_group = 4, .topk_group = 2, .scale = 1};
        fails += route_case("groups", l, 8, 2, &g, (const int32_t[]){2, 3}, (const double[]){0.5, 0.5});
        g.n_group = 1;
        fails += route_case("groups off", l, 8, 2, &g, (const int32_t[]){0, 2},
                            (const double[]){sig(3) / (sig(3) + sig(1)), sig(1) / (sig(3) + sig(1))});
        g.n_group = 4, g.topk_group = 3; /* group 0 (.960) now kept: expert 0 first */
        fails += route_case("groups, 3 kept", l, 8, 2, &g, (const int32_t[]){0, 2},
                            (const double[]){sig(3) / (sig(3) + sig(1)), sig(1) / (sig(3) + sig(1))});
    }
    {   /* two groups of equal score: the lower group wins, so expert 1 and not expert 2 */
        const float l[] = {0, 1, 1, 0};
        const cke_moe_gate g = {.sigmoid = 1, .n_group = 2, .topk_group = 1, .scale = 1};
        fails += route_case("group tie", l, 4, 1, &g, (const int32_t[]){1}, (const double[]){sig(1)});
    }
    {   /* groups of one expert: a group's score is its expert's, the best topk_group experts stay */
        const float l[] = {0, 2, 1, -1, 3, 0.5f}, b[] = {0, 0, 0, 0, -0.5f, 0};
        const cke_moe_gate g = {.sigmoid = 1, .bias = b, .n_group = 6, .topk_group = 2, .scale = 1};
        fails += route_case("groups of one", l, 6, 2, &g, (const int32_t[]){1, 2}, (const double[]){sig(2), sig(1)});
    }
    {   /* NaN logits never win: not as experts, not as groups */
        const float l[] = {NAN, -3, -4, NAN}, l2[] = {NAN, NAN, -4, -5};
        cke_moe_gate g = {.sigmoid = 1, .scale = 1};
        fails += route_case("NaN", l, 4, 2, &g, (const int32_t[]){1, 2}, (const double[]){sig(-3), sig(-4)});
        g.n_group = 2, g.topk_group = 1;
        fails += route_case("NaN group", l2, 4, 1, &g, (const int32_t[]){2}, (const double[]){sig(-4)});
    }
    {   /* softmax + bias: p = .460 .416 .062 .062; a bias of .2 on expert 1 chooses it, its weight stays p1 */
        const float l[] = {1, 0.9f, -1, -1}, b[] = {0, 0.2f, 0, 0};
        const double Z = exp(1.0) + exp((double)0.9f) + 2 * exp(-1.0), p1 = exp((double)0.9f) / Z;
        cke_moe_gate g = {.bias = b, .scale = 1};
        fails += route_case("softmax, bias", l, 4, 1, &g, (const int32_t[]){1}, (const double[]){p1});
        g.renorm = 1, g.scale = 2.5f;
        fails += route_case("softmax, bias, renorm, scale", l, 4, 1, &g, (const int32_t[]){1}, (const double[]){2.5});
    }
    trng r = {9500u};
    /* softmax without bias or groups: the bits of before */
    for (int it = 0; it < 400; it++) {
        static const int64_t Es[] = {1, 3, 8, 64};
        const int64_t E = Es[it % 4], k = 1 + (int64_t)(trng_u64(&r) % (uint64_t)(E < 8 ? E : 8));
        const int renorm = it / 4 % 2;
        float l[64], w0[8], w1[8], sc[CKE_MOE_ROUTE_SCRATCH(64)];
        int32_t s0[8] = {0}, s1[8] = {0};
        tfill_normal(&r, l, E, 3.0f);
        if (it % 7 == 0) l[E / 2] = l[0]; /* a tie */
        const cke_moe_gate g = {.renorm = renorm, .scale = 1};
        route_v0(s0, w0, l, E, k, renorm);
        cke_moe_route(s1, w1, l, E, k, &g, sc);
        if (memcmp(s0, s1, (size_t)k * sizeof *s0) || memcmp(w0, w1, (size_t)k * sizeof *w0)) {
            printf("    FAIL moe route softmax E=%lld k=%lld renorm=%d: not the bits of before\n", (long long)E, (long long)k, renorm);
            fails++;
            break;
        }
    }
    /* sigmoid against HF's router: DeepSeek-V3 (256 experts, 8 groups, 4 kept, k 8, scale 2.5), GLM-4.5 (160, no
     * groups, k 8, scale 2.5) and small ones; random logits and bias (no ties) */
    static const struct { int64_t E, k, ng, tg; int renorm, bias; float scale; } cfg[] = {
        {256, 8, 8, 4, 1, 1, 2.5f}, {160, 8, 1, 1, 1, 1, 2.5f}, {16, 4, 4, 2, 1, 1, 2.5f}, {16, 4, 4, 2, 0, 1, 1},
        {6, 2, 3, 1, 1, 1, 1}, {6, 2, 6, 2, 0, 0, 1}, {8, 3, 1, 1, 0, 0, 1}, {64, 6, 8, 3, 1, 0, 1.5f},
    };
    for (size_t ci = 0; ci < sizeof cfg / sizeof cfg[0]; ci++) {
        float l[256], b[256], w0[8], w1[8], sc[CKE_MOE_ROUTE_SCRATCH(256)];
        int32_t s0[8] = {0}, s1[8] = {0};
        int bad = 0;
        for (int it = 0; it < 100 && !bad; it++) {
            tfill_normal(&r, l, cfg[ci].E, 2.0f);
            tfill_normal(&r, b, cfg[ci].E, 0.3f);
            const cke_moe_gate g = {.sigmoid = 1, .renorm = cfg[ci].renorm, .bias = cfg[ci].bias ? b : NULL,
                                    .n_group = cfg[ci].ng, .topk_group = cfg[ci].tg, .scale = cfg[ci].scale};
            route_hf(s0, w0, l, g.bias, cfg[ci].E, cfg[ci].k, cfg[ci].ng, cfg[ci].tg, cfg[ci].renorm, cfg[ci].scale);
            cke_moe_route(s1, w1, l, cfg[ci].E, cfg[ci].k, &g, sc);
            for (int64_t j = 0; j < cfg[ci].k && !bad; j++)
                if (s0[j] != s1[j] || fabsf(w0[j] - w1[j]) > 1e-6f * fabsf(w0[j])) { /* f32 divide then scale: 2 roundings to 1 */
                    printf("    FAIL moe route vs HF E=%lld k=%lld groups %lld/%lld renorm=%d bias=%d: choice %lld expert %d "
                           "weight %.8g, HF expert %d weight %.8g\n", (long long)cfg[ci].E, (long long)cfg[ci].k,
                           (long long)cfg[ci].tg, (long long)cfg[ci].ng, cfg[ci].renorm, cfg[ci].bias, (long long)j, s1[j],
                           (double)w1[j], s0[j], (double)w0[j]);
                    bad = 1;
                }
        }
        fails += bad;
    }
    /* gates refused: each by cke_moe_gate_check, the forward (-1, out untouched) and both backwards
     * (every output untouched); then the edges that are valid */
    static const struct { const char *what; int null; int64_t k, ng, tg; float scale; } badg[] = {
        {"NULL", 1, 2, 0, 0, 1},         {"scale 0 (a zeroed gate)", 0, 2, 0, 0, 0}, {"scale -1", 0, 2, 0, 0, -1},
        {"scale NaN", 0, 2, 0, 0, NAN},  {"scale inf", 0, 2, 0, 0, INFINITY},       {"k 0", 0, 0, 0, 0, 1},
        {"k 9 of 8", 0, 9, 0, 0, 1},     {"8 experts in 3 groups", 0, 2, 3, 1, 1},  {"topk_group 0", 0, 2, 4, 0, 1},
        {"topk_group 5 of 4", 0, 2, 4, 5, 1}, {"k 3 from 1 group of 2", 0, 3, 4, 1, 1}, {"16 groups of 8", 0, 2, 16, 1, 1},
    };
    for (size_t i = 0; i < sizeof badg / sizeof badg[0]; i++) {
        const moe_shape s = {3, 9, 7, 8, badg[i].k, 1, 1, 0, 0, 0, 1};
        moe_in m = moe_alloc(&r, s);
        const cke_moe_gate g = {.sigmoid = 1, .renorm = 1, .n_group = badg[i].ng, .topk_group = badg[i].tg, .scale = badg[i].scale};
        const cke_moe_gate *gp = badg[i].null ? NULL : &g;
        const int64_t kw = s.k < 1 ? 1 : s.k;
        void *ws = talloc(cke_moe_ws_size(s.T, s.D, s.F, s.E, kw, 0, 0, 0, 2) + cke_moe_bwd_ws_size(s.T, s.D, s.F, s.E, kw, 2));
        float *out = tallocf(s.T * s.D), *dout = tallocf(s.T * s.D);
        moe_grads gr = grads_alloc(s);
        float *const gv[] = {out, gr.dx, gr.dr, gr.dg, gr.du, gr.dd};
        const int64_t n[] = {s.T * s.D, s.T * s.D, s.E * s.D, s.E * s.F * s.D, s.E * s.F * s.D, s.E * s.D * s.F};
        for (int j = 0; j < 6; j++)
            for (int64_t q = 0; q < n[j]; q++) gv[j][q] = 7.0f;
        tfill_normal(&r, dout, s.T * s.D, 1.0f);
        const int chk = cke_moe_gate_check(gp, s.E, s.k);
        const int fwd = cke_moe_fwd(kt, out, m.x, m.router, m.gate, m.up, m.down, 0, 0, 0, s.T, s.D, s.F, s.E, s.k, gp, ws, 2);
        cke_moe_fwd_ref(out, m.x, m.router, m.gate, m.up, m.down, s.T, s.D, s.F, s.E, s.k, gp, ws);
        cke_moe_bwd(kt, gr.dx, gr.dr, gr.dg, gr.du, gr.dd, dout, m.x, m.router, m.gate, m.up, m.down, NULL, s.T, s.D, s.F, s.E,
                    s.k, gp, ws, 2);
        cke_moe_bwd_ref(gr.dx, gr.dr, gr.dg, gr.du, gr.dd, dout, m.x, m.router, m.gate, m.up, m.down, NULL, s.T, s.D, s.F, s.E,
                        s.k, gp, ws);
        int touched = 0;
        for (int j = 0; j < 6; j++)
            for (int64_t q = 0; q < n[j]; q++) touched |= gv[j][q] != 7.0f;
        if (chk != -1 || fwd != -1 || touched) {
            printf("    FAIL moe %s gate %s: check %d, forward %d, %s\n", kt->name, badg[i].what, chk, fwd,
                   touched ? "outputs written" : "outputs untouched");
            fails++;
        }
        free(ws), free(out), free(dout);
        grads_free(&gr);
        moe_free(&m);
    }
    static const struct { int64_t E, k, ng, tg; } okg[] = {
        {8, 2, 0, 0}, {8, 2, 1, 0}, {8, 4, 4, 2}, {8, 8, 4, 4}, {6, 2, 6, 2}, {6, 1, 3, 1}, {1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof okg / sizeof okg[0]; i++) {
        const cke_moe_gate g = {.sigmoid = 1, .n_group = okg[i].ng, .topk_group = okg[i].tg, .scale = 1};
        if (cke_moe_gate_check(&g, okg[i].E, okg[i].k)) {
            printf("    FAIL moe gate E=%lld k=%lld groups %lld/%lld refused\n", (long long)okg[i].E, (long long)okg[i].k,
                   (long long)okg[i].tg, (long long)okg[i].ng);
            fails++;
        }
    }
    return fails;
}

const test_op tests_moe[] = {
    {"moe", moe_simd, NULL, NULL},
    {"moe_route", moe_route_simd, NULL, NULL},
    {"moe_quant", moe_quant, NULL, NULL},
    {"moe_bwd", moe_bwd_simd, moe_bwd_grad, NULL},
    {0},
};
