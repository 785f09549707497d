/* Tests of the mixture-of-experts FFN: the grouped fast path (cke_moe_fwd on each table's GEMM)
 * against the _ref spec over odd shapes, T = 1 (decode) and T > 1 (prefill, experts with several
 * rows and experts with none), k = 1, 2 and k = E; ties in the router go to the lower index. */
#include "harness.h"

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

const test_op tests_moe[] = {
    {"moe", moe_simd, NULL, NULL},
    {"moe_quant", moe_quant, NULL, NULL},
    {0},
};
