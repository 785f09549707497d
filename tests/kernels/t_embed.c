/* Tests of the embed family: simd vs _ref sweeps, finite-difference gradients, PyTorch parity.
 * The SIMD tables point at the ref (copies/adds at memory speed), so simd mode is a table
 * wiring check; the sums are exact orderings of float adds, so tolerances are ~0. */
#include "harness.h"
#include "telt.h"

#include <stdio.h>
#include <string.h>

static const tol_t TOL_EXACT = {0, 0, 0}; /* same float ops in the same order */

static int embed_simd(const cke_ktable *kt, const cke_ktable *ref) {
    int fails = 0;
    trng r = {5000};
    for (const int64_t *s = tsizes; *s; s++) {
        int64_t D = *s, T = 9, V = 4; /* V < T: repeated tokens accumulate */
        int32_t *tok = talloc((size_t)T * sizeof(int32_t));
        for (int64_t t = 0; t < T; t++) tok[t] = (int32_t)(trng_u64(&r) % V);
        float *tab = tallocf(V * D), *o1 = tallocf(T * D), *o2 = tallocf(T * D), *dy = tallocf(T * D);
        tfill_normal(&r, tab, V * D, 1.0f);
        tfill_normal(&r, dy, T * D, 1.0f);
        ref->embed_fwd(o1, tok, tab, T, D);
        kt->embed_fwd(o2, tok, tab, T, D);
        fails += tcheck("embed fwd", o2, o1, T * D, TOL_EXACT);
        float *g1 = tcopyf(tab, V * D), *g2 = tcopyf(tab, V * D);
        ref->embed_bwd(g1, dy, tok, T, D);
        kt->embed_bwd(g2, dy, tok, T, D);
        fails += tcheck("embed bwd", g2, g1, V * D, TOL_EXACT);
        free(tok); free(tab); free(o1); free(o2); free(dy); free(g1); free(g2);
    }
    return fails;
}

static int posemb_simd(const cke_ktable *kt, const cke_ktable *ref) {
    int fails = 0;
    trng r = {5100};
    for (const int64_t *s = tsizes; *s; s++) {
        int64_t D = *s, T = 5, P = 9, pos0 = 3;
        float *pos = tallocf(P * D), *x1 = tallocf(T * D);
        tfill_normal(&r, pos, P * D, 1.0f);
        tfill_normal(&r, x1, T * D, 1.0f);
        float *x2 = tcopyf(x1, T * D);
        ref->posemb_fwd(x1, pos, pos0, T, D);
        kt->posemb_fwd(x2, pos, pos0, T, D);
        fails += tcheck("posemb fwd", x2, x1, T * D, TOL_EXACT);
        float *g1 = tcopyf(pos, P * D), *g2 = tcopyf(pos, P * D);
        ref->posemb_bwd(g1, x1, pos0, T, D);
        kt->posemb_bwd(g2, x1, pos0, T, D);
        fails += tcheck("posemb bwd", g2, g1, P * D, TOL_EXACT);
        free(pos); free(x1); free(x2); free(g1); free(g2);
    }
    return fails;
}

/* The lookup of a table kept in blocks (a tied output head's): row tok[t] of every format with
 * kernels equals that row of the whole table dequantized by the _ref (exactly: one conversion per
 * element); the table under test and the ref table give the same bytes. Odd D are whole blocks. */
static int qembed_simd(const cke_ktable *kt, const cke_ktable *ref) {
    int fails = 0;
    trng r = {5200};
    for (int qt = 1; qt < CKE_QTYPE_COUNT; qt++) {
        const cke_qtype_ops *q = ref->qops[qt];
        if (!q || !q->vec_dot || !q->quantize_row) continue;
        const int64_t V = 7, T = 11;
        for (int64_t nbl = 1; nbl <= 9; nbl += 4) { /* 1, 5, 9 blocks: q8_0r's tail and whole groups */
            const int64_t D = nbl * q->blck;
            const size_t rs = cke_qtype_row_size(qt, D);
            float *x = tallocf(V * D), *full = tallocf(V * D), *o1 = tallocf(T * D), *o2 = tallocf(T * D);
            char *tab = talloc(rs * (size_t)V);
            int32_t *tok = talloc((size_t)T * sizeof(int32_t));
            tfill_normal(&r, x, V * D, 1.0f);
            for (int64_t v = 0; v < V; v++) q->quantize_row(tab + (size_t)v * rs, x + v * D, D);
            for (int64_t v = 0; v < V; v++) q->dequantize_row(full + v * D, tab + (size_t)v * rs, D);
            for (int64_t t = 0; t < T; t++) tok[t] = (int32_t)(trng_u64(&r) % V);
            for (int64_t t = 0; t < T; t++) memcpy(o1 + t * D, full + (int64_t)tok[t] * D, (size_t)D * sizeof(float));
            char nm[64];
            snprintf(nm, sizeof nm, "qembed %s D=%lld", q->name, (long long)D);
            if (cke_qembed_fwd(kt, o2, tok, tab, qt, T, D) != 0) {
                printf("  FAIL %s: refused\n", nm);
                fails++;
            } else {
                fails += tcheck(nm, o2, o1, T * D, TOL_EXACT);
            }
            free(x); free(full); free(o1); free(o2); free(tab); free(tok);
        }
    }
    /* a row that is not whole blocks, and an unknown type: refused, nothing read */
    float o[64];
    int32_t tok0 = 0;
    if (cke_qembed_fwd(kt, o, &tok0, o, 8 /* q8_0 */, 1, 31) != -1 || cke_qembed_fwd(kt, o, &tok0, o, 4, 1, 32) != -1) {
        printf("  FAIL qembed: a partial block row or type 4 (none) was not refused\n");
        fails++;
    }
    return fails;
}

typedef struct {
    const cke_ktable *k;
    int32_t *tok;
    float *tab, *x, *out, *R;
    int64_t T, D, pos0;
} emb_ctx;

static double embed_loss(void *p) {
    emb_ctx *c = p;
    c->k->embed_fwd(c->out, c->tok, c->tab, c->T, c->D);
    return tloss_dot(c->out, c->R, c->T * c->D);
}
static double posemb_loss(void *p) {
    emb_ctx *c = p;
    memcpy(c->out, c->x, (size_t)(c->T * c->D) * sizeof(float));
    c->k->posemb_fwd(c->out, c->tab, c->pos0, c->T, c->D);
    return tloss_dot(c->out, c->R, c->T * c->D);
}

/* linear in the table: central differences are exact up to rounding of L (~1e-7 / 2e-2) */
static const tol_t TOL_EMB_GRAD = {1e-8, 1e-4, 1e-4};

static int embed_grad(const cke_ktable *ref) {
    trng r = {5200};
    emb_ctx c = {ref, talloc(6 * sizeof(int32_t)), tallocf(4 * 5), NULL, tallocf(6 * 5), tallocf(6 * 5), 6, 5, 0};
    int32_t toks[6] = {2, 0, 2, 3, 2, 0}; /* row 1 unused: its gradient must stay 0 */
    memcpy(c.tok, toks, sizeof toks);
    tfill_normal(&r, c.tab, 20, 1.0f);
    tfill_normal(&r, c.R, 30, 1.0f);
    float *g = tallocf(20);
    ref->embed_bwd(g, c.R, c.tok, c.T, c.D);
    int fails = tgrad_fd("dtable", c.tab, g, 20, embed_loss, &c, 1e-2f, TOL_EMB_GRAD);
    free(c.tok); free(c.tab); free(c.out); free(c.R); free(g);
    return fails;
}

static int posemb_grad(const cke_ktable *ref) {
    trng r = {5300};
    emb_ctx c = {ref, NULL, tallocf(8 * 6), tallocf(3 * 6), tallocf(3 * 6), tallocf(3 * 6), 3, 6, 4};
    tfill_normal(&r, c.tab, 48, 1.0f);
    tfill_normal(&r, c.x, 18, 1.0f);
    tfill_normal(&r, c.R, 18, 1.0f);
    float *g = tallocf(48);
    ref->posemb_bwd(g, c.R, c.pos0, c.T, c.D);
    int fails = tgrad_fd("dpos", c.tab, g, 48, posemb_loss, &c, 1e-2f, TOL_EMB_GRAD);
    free(c.tab); free(c.x); free(c.out); free(c.R); free(g);
    return fails;
}

/* torch: a gather is exact; the scatter-add sums <= T floats in float (torch in double) */
static const tol_t TOL_EMB_TORCH = {1e-13, 1e-6, 1e-6};

static int embed_torch(const cke_ktable *kt, const fx_file *fx) {
    int fails = 0, c;
    for (c = 0; tfx_has(fx, "embed", c); c++) {
        char nm[64];
#define FX(field) (snprintf(nm, sizeof nm, "embed.%d.%s", c, field), nm)
        const fx_tensor *tt = fx_get(fx, FX("table"));
        const fx_tensor *tk = fx_get(fx, FX("tok"));
        if (!tt || !tk) return fails + 1;
        int64_t V = tt->dims[0], D = tt->dims[1], T = tk->numel;
        const float *out = fx_f32(fx, FX("out"), T * D), *dy = fx_f32(fx, FX("dout"), T * D);
        const float *dtab = fx_f32(fx, FX("dtable"), V * D);
#undef FX
        if (!out || !dy || !dtab) return fails + 1;
        float *o = tallocf(T * D), *g = tallocf(V * D);
        kt->embed_fwd(o, tk->data, tt->data, T, D);
        fails += tcheck("embed out", o, out, T * D, TOL_EMB_TORCH);
        kt->embed_bwd(g, dy, tk->data, T, D);
        fails += tcheck("embed dtable", g, dtab, V * D, TOL_EMB_TORCH);
        free(o); free(g);
    }
    if (c == 0) { printf("    no embed cases in the fixture file\n"); fails++; }
    return fails;
}

static int posemb_torch(const cke_ktable *kt, const fx_file *fx) {
    int fails = 0, c;
    for (c = 0; tfx_has(fx, "posemb", c); c++) {
        char nm[64];
#define FX(field) (snprintf(nm, sizeof nm, "posemb.%d.%s", c, field), nm)
        const fx_tensor *tx = fx_get(fx, FX("x")), *tp = fx_get(fx, FX("pos"));
        if (!tx || !tp) return fails + 1;
        int64_t T = tx->dims[0], D = tx->dims[1], P = tp->dims[0];
        int64_t pos0 = fx_scalar_i(fx, FX("pos0"), 0);
        const float *out = fx_f32(fx, FX("out"), T * D), *dy = fx_f32(fx, FX("dout"), T * D);
        const float *dpos = fx_f32(fx, FX("dpos"), P * D);
#undef FX
        if (!out || !dy || !dpos) return fails + 1;
        float *x = tcopyf(tx->data, T * D), *g = tallocf(P * D);
        kt->posemb_fwd(x, tp->data, pos0, T, D);
        fails += tcheck("posemb out", x, out, T * D, TOL_EMB_TORCH);
        kt->posemb_bwd(g, dy, pos0, T, D);
        fails += tcheck("posemb dpos", g, dpos, P * D, TOL_EMB_TORCH);
        free(x); free(g);
    }
    if (c == 0) { printf("    no posemb cases in the fixture file\n"); fails++; }
    return fails;
}

const test_op tests_embed[] = {
    {"embed", embed_simd, embed_grad, embed_torch},
    {"posemb", posemb_simd, posemb_grad, posemb_torch},
    {"qembed", qembed_simd, NULL, NULL},
    {0},
};
