/* Tests of the act family: simd vs _ref sweeps, finite-difference gradients, PyTorch parity.
 * The ref evaluates transcendentals in double, so simd mode measures the vmath.h
 * approximations (exp, sigmoid, normal CDF) directly; inputs span [-20, 20] to hit both tails
 * and the polynomial switch points. */
#include "harness.h"
#include "telt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int64_t sweep_sizes(int64_t *out) {
    int64_t k = 0;
    for (const int64_t *s = tsizes; *s; s++) out[k++] = *s;
    out[k++] = tquick ? 4099 : 65537;
    return k;
}

/* inputs: half N(0, 3^2), a quarter uniform [-20, 20], a quarter uniform [-1.5, 1.5] */
static void fill_act(trng *r, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        int64_t q = i % 4;
        x[i] = q < 2 ? 3.0f * trng_normal(r) : q == 2 ? trng_uniform(r, -20, 20) : trng_uniform(r, -1.5f, 1.5f);
    }
}

/* ================= softmax ================= */

/* exp ~1-2 ulp, float row sum and one reciprocal: ~1e-6 relative; values <= 1, and the
 * smallest ones (e^-40) are covered by atol. Masked entries must be exactly 0 (atol is
 * far below any unmasked value of these rows, and the check below is exact). */
static const tol_t TOL_SOFTMAX = {1e-12, 1e-8, 4e-6};
/* din = y (dy - dot): cancels where dy ~ dot; bound relative to |dy| ~ 1 */
static const tol_t TOL_SOFTMAX_BWD = {1e-11, 1e-7, 1e-5};

static int softmax_simd_mode(const cke_ktable *kt, const cke_ktable *ref, int causal) {
    int fails = 0;
    trng r = {6000u + (uint64_t)causal};
    int64_t Cs[16], nc = sweep_sizes(Cs);
    for (int ci = 0; ci < nc; ci++) {
        int64_t C = Cs[ci] > 8192 ? 4096 : Cs[ci], R = 4, n = R * C;
        int64_t pos0 = causal ? (C > 2 ? C / 3 : 0) : -1;
        float *x = tallocf(n), *y1 = tallocf(n), *y2 = tallocf(n), *dy = tallocf(n);
        for (int64_t i = 0; i < n; i++) x[i] = 6.0f * trng_normal(&r);
        tfill_normal(&r, dy, n, 1.0f);
        for (int64_t i = 0; i < n; i++) y2[i] = NAN; /* masked entries must be written */
        ref->softmax_fwd(y1, x, R, C, pos0);
        kt->softmax_fwd(y2, x, R, C, pos0);
        char what[80];
        snprintf(what, sizeof what, "fwd C=%lld pos0=%lld", (long long)C, (long long)pos0);
        fails += tcheck(what, y2, y1, n, TOL_SOFTMAX);
        for (int64_t rr = 0; causal && rr < R; rr++)
            for (int64_t j = pos0 + rr + 1; j < C; j++)
                if (y2[rr * C + j] != 0.0f) {
                    printf("    FAIL masked entry [%lld,%lld] = %g\n", (long long)rr, (long long)j, y2[rr * C + j]);
                    fails++;
                    rr = R;
                    break;
                }
        float *d1 = tallocf(n);
        tfill_normal(&r, d1, n, 1.0f);
        float *d2 = tcopyf(d1, n);
        ref->softmax_bwd(d1, dy, y1, R, C);
        kt->softmax_bwd(d2, dy, y1, R, C);
        snprintf(what, sizeof what, "bwd C=%lld", (long long)C);
        fails += tcheck(what, d2, d1, n, TOL_SOFTMAX_BWD);
        free(x); free(y1); free(y2); free(dy); free(d1); free(d2);
    }
    /* a row of large equal logits and one of huge magnitude: stability (no inf/nan) */
    float big[6] = {80, 80, 80, -1e30f, 88.5f, -88.5f}, o1[6], o2[6];
    ref->softmax_fwd(o1, big, 1, 6, causal ? 10 : -1);
    kt->softmax_fwd(o2, big, 1, 6, causal ? 10 : -1);
    fails += tcheck("fwd extreme logits", o2, o1, 6, TOL_SOFTMAX);
    return fails;
}

typedef struct {
    const cke_ktable *k;
    float *x, *out, *R;
    int64_t rows, cols, pos0;
} sm_ctx;

static double sm_loss(void *p) {
    sm_ctx *c = p;
    c->k->softmax_fwd(c->out, c->x, c->rows, c->cols, c->pos0);
    return tloss_dot(c->out, c->R, c->rows * c->cols);
}

/* eps 1e-3 on logits ~N(0, 2): rounding noise in L ~1e-8 / 2e-3, truncation ~eps^2 */
static const tol_t TOL_ACT_GRAD = {1e-6, 2e-4, 1e-3};

static int softmax_grad_mode(const cke_ktable *ref, int causal) {
    trng r = {6100u + (uint64_t)causal};
    sm_ctx c = {ref, tallocf(4 * 11), tallocf(4 * 11), tallocf(4 * 11), 4, 11, causal ? 2 : -1};
    tfill_normal(&r, c.x, 44, 2.0f);
    tfill_normal(&r, c.R, 44, 1.0f);
    float *dx = tallocf(44);
    ref->softmax_fwd(c.out, c.x, c.rows, c.cols, c.pos0);
    ref->softmax_bwd(dx, c.R, c.out, c.rows, c.cols);
    int fails = tgrad_fd("dx", c.x, dx, 44, sm_loss, &c, 1e-3f, TOL_ACT_GRAD);
    free(c.x); free(c.out); free(c.R); free(dx);
    return fails;
}

/* vs torch float64 (rounded to float32): the kernels' own float error */
static const tol_t TOL_ACT_TORCH = {1e-11, 1e-7, 4e-6};
static const tol_t TOL_ACT_TORCH_BWD = {1e-11, 2e-6, 1e-5};

static int softmax_torch_mode(const cke_ktable *kt, const fx_file *fx, int causal) {
    const char *op = causal ? "softmax_causal" : "softmax";
    int fails = 0, c;
    for (c = 0; tfx_has(fx, op, c); c++) {
        char nm[80], what[80];
#define FX(field) (snprintf(nm, sizeof nm, "%s.%d.%s", op, c, field), nm)
        const fx_tensor *tx = fx_get(fx, FX("x"));
        if (!tx || tx->ndim != 2) return fails + 1;
        int64_t R = tx->dims[0], C = tx->dims[1], n = R * C, pos0 = fx_scalar_i(fx, FX("pos0"), -1);
        const float *out = fx_f32(fx, FX("out"), n), *dy = fx_f32(fx, FX("dout"), n);
        const float *dxw = fx_f32(fx, FX("dx"), n);
#undef FX
        if (!out || !dy || !dxw) return fails + 1;
        float *y = tallocf(n), *dx = tallocf(n);
        kt->softmax_fwd(y, tx->data, R, C, pos0);
        snprintf(what, sizeof what, "%s.%d out", op, c);
        fails += tcheck(what, y, out, n, TOL_ACT_TORCH);
        kt->softmax_bwd(dx, dy, y, R, C);
        snprintf(what, sizeof what, "%s.%d dx", op, c);
        fails += tcheck(what, dx, dxw, n, TOL_ACT_TORCH_BWD);
        free(y); free(dx);
    }
    if (c == 0) { printf("    no %s cases in the fixture file\n", op); fails++; }
    return fails;
}

/* ================= activations ================= */

enum { SILU, GELU_E, GELU_T, SWIGLU, GEGLU_E, GEGLU_T };
static int is_gated(int op) { return op >= SWIGLU; }
static cke_gelu_kind gkind(int op) { return (op == GELU_T || op == GEGLU_T) ? CKE_GELU_TANH : CKE_GELU_ERF; }

/* unary: in = a; gated: gate = a, up = b */
static void act_fwd(const cke_ktable *k, int op, float *out, const float *a, const float *b, int64_t n) {
    switch (op) {
    case SILU: k->silu_fwd(out, a, n); break;
    case GELU_E: case GELU_T: k->gelu_fwd(out, a, n, gkind(op)); break;
    case SWIGLU: k->swiglu_fwd(out, a, b, n); break;
    default: k->geglu_fwd(out, a, b, n, gkind(op)); break;
    }
}
static void act_bwd(const cke_ktable *k, int op, float *da, float *db, const float *dy, const float *a,
                    const float *b, int64_t n) {
    switch (op) {
    case SILU: k->silu_bwd(da, dy, a, n); break;
    case GELU_E: case GELU_T: k->gelu_bwd(da, dy, a, n, gkind(op)); break;
    case SWIGLU: k->swiglu_bwd(da, db, dy, a, b, n); break;
    default: k->geglu_bwd(da, db, dy, a, b, n, gkind(op)); break;
    }
}

/* sigmoid ~2 ulp, normal CDF ~5e-7 relative, times x: outputs ~1e-6 relative; near the
 * zeros of silu'/gelu' (x ~ -1.28 / -0.75) the derivative cancels, so bwd gets an atol
 * on the O(1) scale of its terms. */
static const tol_t TOL_ACT_FWD = {1e-12, 1e-7, 2e-6};
static const tol_t TOL_ACT_BWD = {1e-11, 2e-6, 1e-5};

static int act_simd(const cke_ktable *kt, const cke_ktable *ref, int op) {
    int fails = 0;
    trng r = {7000u + (uint64_t)op};
    int64_t Ns[16], nn = sweep_sizes(Ns);
    for (int ni = 0; ni < nn; ni++) {
        int64_t n = Ns[ni];
        float *a = tallocf(n), *b = tallocf(n), *dy = tallocf(n), *o1 = tallocf(n), *o2 = tallocf(n);
        fill_act(&r, a, n);
        tfill_normal(&r, b, n, 1.0f);
        tfill_normal(&r, dy, n, 1.0f);
        act_fwd(ref, op, o1, a, b, n);
        act_fwd(kt, op, o2, a, b, n);
        char what[64];
        snprintf(what, sizeof what, "fwd n=%lld", (long long)n);
        fails += tcheck(what, o2, o1, n, TOL_ACT_FWD);
        float *da1 = tallocf(n), *db1 = tallocf(n);
        tfill_normal(&r, da1, n, 1.0f);
        tfill_normal(&r, db1, n, 1.0f);
        float *da2 = tcopyf(da1, n), *db2 = tcopyf(db1, n);
        act_bwd(ref, op, da1, db1, dy, a, b, n);
        act_bwd(kt, op, da2, db2, dy, a, b, n);
        snprintf(what, sizeof what, "bwd d%s n=%lld", is_gated(op) ? "gate" : "in", (long long)n);
        fails += tcheck(what, da2, da1, n, TOL_ACT_BWD);
        if (is_gated(op)) {
            snprintf(what, sizeof what, "bwd dup n=%lld", (long long)n);
            fails += tcheck(what, db2, db1, n, TOL_ACT_BWD);
        }
        free(a); free(b); free(dy); free(o1); free(o2); free(da1); free(db1); free(da2); free(db2);
    }
    return fails;
}

typedef struct {
    const cke_ktable *k;
    int op;
    float *a, *b, *out, *R;
    int64_t n;
} act_ctx;

static double act_loss(void *p) {
    act_ctx *c = p;
    act_fwd(c->k, c->op, c->out, c->a, c->b, c->n);
    return tloss_dot(c->out, c->R, c->n);
}

static int act_grad(const cke_ktable *ref, int op) {
    trng r = {7100u + (uint64_t)op};
    int64_t n = 64;
    act_ctx c = {ref, op, tallocf(n), tallocf(n), tallocf(n), tallocf(n), n};
    for (int64_t i = 0; i < n; i++) c.a[i] = -6.0f + 12.0f * (float)i / (float)(n - 1); /* a ramp */
    tfill_normal(&r, c.b, n, 1.0f);
    tfill_normal(&r, c.R, n, 1.0f);
    float *da = tallocf(n), *db = tallocf(n);
    act_bwd(ref, op, da, db, c.R, c.a, c.b, n);
    int fails = tgrad_fd(is_gated(op) ? "dgate" : "din", c.a, da, n, act_loss, &c, 1e-3f, TOL_ACT_GRAD);
    if (is_gated(op)) fails += tgrad_fd("dup", c.b, db, n, act_loss, &c, 1e-3f, TOL_ACT_GRAD);
    free(c.a); free(c.b); free(c.out); free(c.R); free(da); free(db);
    return fails;
}

static int act_torch(const cke_ktable *kt, const fx_file *fx, int op, const char *name) {
    int fails = 0, c;
    for (c = 0; tfx_has(fx, name, c); c++) {
        char nm[80], what[80];
#define FX(field) (snprintf(nm, sizeof nm, "%s.%d.%s", name, c, field), nm)
        const fx_tensor *ta = fx_get(fx, FX(is_gated(op) ? "gate" : "x"));
        if (!ta) return fails + 1;
        int64_t n = ta->numel;
        const float *b = is_gated(op) ? fx_f32(fx, FX("up"), n) : NULL;
        const float *out = fx_f32(fx, FX("out"), n), *dy = fx_f32(fx, FX("dout"), n);
        const float *daw = fx_f32(fx, FX(is_gated(op) ? "dgate" : "dx"), n);
        const float *dbw = is_gated(op) ? fx_f32(fx, FX("dup"), n) : NULL;
#undef FX
        if (!out || !dy || !daw || (is_gated(op) && (!b || !dbw))) return fails + 1;
        float *o = tallocf(n), *da = tallocf(n), *db = tallocf(n);
        act_fwd(kt, op, o, ta->data, b, n);
        snprintf(what, sizeof what, "%s.%d out", name, c);
        fails += tcheck(what, o, out, n, TOL_ACT_TORCH);
        act_bwd(kt, op, da, db, dy, ta->data, b, n);
        snprintf(what, sizeof what, "%s.%d d%s", name, c, is_gated(op) ? "gate" : "x");
        fails += tcheck(what, da, daw, n, TOL_ACT_TORCH_BWD);
        if (dbw) {
            snprintf(what, sizeof what, "%s.%d dup", name, c);
            fails += tcheck(what, db, dbw, n, TOL_ACT_TORCH_BWD);
        }
        free(o); free(da); free(db);
    }
    if (c == 0) { printf("    no %s cases in the fixture file\n", name); fails++; }
    return fails;
}

/* ================= elementwise ================= */

/* add and scale are one rounding in both; axpy is one FMA vs mul + add (1 ulp of a x) */
static const tol_t TOL_ELT = {1e-13, 1e-6, 1e-6};

enum { ADD, AXPY, SCALE };
static void elt_run(const cke_ktable *k, int op, float *y, const float *a, const float *b, int64_t n) {
    if (op == ADD) k->add_fwd(y, a, b, n);
    else if (op == AXPY) { memcpy(y, a, (size_t)n * sizeof(float)); k->axpy(y, 0.37f, b, n); }
    else k->scale_fwd(y, a, -1.7f, n);
}

static int elt_simd(const cke_ktable *kt, const cke_ktable *ref, int op) {
    int fails = 0;
    trng r = {8000u + (uint64_t)op};
    int64_t Ns[16], nn = sweep_sizes(Ns);
    for (int ni = 0; ni < nn; ni++) {
        int64_t n = Ns[ni];
        float *a = tallocf(n), *b = tallocf(n), *y1 = tallocf(n), *y2 = tallocf(n);
        tfill_normal(&r, a, n, 1.0f);
        tfill_normal(&r, b, n, 1.0f);
        elt_run(ref, op, y1, a, b, n);
        elt_run(kt, op, y2, a, b, n);
        char what[64];
        snprintf(what, sizeof what, "n=%lld", (long long)n);
        fails += tcheck(what, y2, y1, n, TOL_ELT);
        if (op != AXPY) { /* out aliasing an input */
            float *ya = tcopyf(a, n);
            if (op == ADD) kt->add_fwd(ya, ya, b, n);
            else kt->scale_fwd(ya, ya, -1.7f, n);
            snprintf(what, sizeof what, "in place n=%lld", (long long)n);
            fails += tcheck(what, ya, y1, n, TOL_ELT);
            free(ya);
        }
        free(a); free(b); free(y1); free(y2);
    }
    return fails;
}

static int elt_torch(const cke_ktable *kt, const fx_file *fx, int op) {
    const char *name = op == ADD ? "add" : op == AXPY ? "axpy" : "scale";
    int fails = 0, c;
    for (c = 0; tfx_has(fx, name, c); c++) {
        char nm[64];
#define FX(field) (snprintf(nm, sizeof nm, "%s.%d.%s", name, c, field), nm)
        const fx_tensor *tout = fx_get(fx, FX("out"));
        if (!tout) return fails + 1;
        int64_t n = tout->numel;
        float *y = tallocf(n);
        if (op == ADD) {
            const float *a = fx_f32(fx, FX("a"), n), *b = fx_f32(fx, FX("b"), n);
            if (a && b) kt->add_fwd(y, a, b, n);
        } else if (op == AXPY) {
            const float *y0 = fx_f32(fx, FX("y"), n), *x = fx_f32(fx, FX("x"), n);
            float al = (float)fx_scalar_f(fx, FX("a"), 0);
            if (y0 && x) { memcpy(y, y0, (size_t)n * sizeof(float)); kt->axpy(y, al, x, n); }
        } else {
            const float *x = fx_f32(fx, FX("x"), n);
            float s = (float)fx_scalar_f(fx, FX("s"), 0);
            if (x) kt->scale_fwd(y, x, s, n);
        }
#undef FX
        fails += tcheck(name, y, tout->data, n, TOL_ELT);
        free(y);
    }
    if (c == 0) { printf("    no %s cases in the fixture file\n", name); fails++; }
    return fails;
}

/* ================= softcap ================= */

/* Every table points at the _ref today (kernels.h); the check keeps a future SIMD variant honest:
 * a vector tanh of ~2 ulp on values <= cap. Inputs reach 4 * cap so that tanh saturates. */
static const tol_t TOL_SOFTCAP = {1e-12, 1e-6, 4e-6};
static const float SOFTCAP_CAP = 30.0f;

static int softcap_simd(const cke_ktable *kt, const cke_ktable *ref) {
    int fails = 0;
    trng r = {8100u};
    int64_t Ns[16], nn = sweep_sizes(Ns);
    for (int ni = 0; ni < nn; ni++) {
        int64_t n = Ns[ni];
        float *x = tallocf(n), *y1 = tallocf(n), *y2 = tallocf(n);
        tfill_uniform(&r, x, n, -4 * SOFTCAP_CAP, 4 * SOFTCAP_CAP);
        ref->softcap_fwd(y1, x, SOFTCAP_CAP, n);
        kt->softcap_fwd(y2, x, SOFTCAP_CAP, n);
        char what[64];
        snprintf(what, sizeof what, "n=%lld", (long long)n);
        fails += tcheck(what, y2, y1, n, TOL_SOFTCAP);
        kt->softcap_fwd(x, x, SOFTCAP_CAP, n); /* out aliasing in */
        snprintf(what, sizeof what, "in place n=%lld", (long long)n);
        fails += tcheck(what, x, y1, n, TOL_SOFTCAP);
        free(x); free(y1); free(y2);
    }
    return fails;
}

/* backward against central differences of the forward, in double; and it accumulates */
static int softcap_grad(const cke_ktable *ref) {
    int fails = 0;
    trng r = {8101u};
    const int64_t n = 257;
    float *x = tallocf(n), *dy = tallocf(n), *dx = tallocf(n);
    double *num = malloc((size_t)n * sizeof(double)), *got = malloc((size_t)n * sizeof(double));
    tfill_uniform(&r, x, n, -3 * SOFTCAP_CAP, 3 * SOFTCAP_CAP);
    tfill_normal(&r, dy, n, 1.0f);
    for (int64_t i = 0; i < n; i++) dx[i] = 0.5f;
    ref->softcap_bwd(dx, dy, x, SOFTCAP_CAP, n);
    for (int64_t i = 0; i < n; i++) {
        const double h = 1e-3, c = SOFTCAP_CAP;
        double f1 = c * tanh(((double)x[i] + h) / c), f0 = c * tanh(((double)x[i] - h) / c);
        num[i] = 0.5 + dy[i] * (f1 - f0) / (2 * h);
        got[i] = dx[i];
    }
    fails += tcheck_d("dx (+= 0.5)", got, num, n, (tol_t){1e-10, 1e-6, 1e-5});
    free(x); free(dy); free(dx); free(num); free(got);
    return fails;
}

/* ================= table ================= */

static int sm_simd(const cke_ktable *kt, const cke_ktable *ref) { return softmax_simd_mode(kt, ref, 0); }
static int sm_grad(const cke_ktable *ref) { return softmax_grad_mode(ref, 0); }
static int sm_torch(const cke_ktable *kt, const fx_file *fx) { return softmax_torch_mode(kt, fx, 0); }
static int smc_simd(const cke_ktable *kt, const cke_ktable *ref) { return softmax_simd_mode(kt, ref, 1); }
static int smc_grad(const cke_ktable *ref) { return softmax_grad_mode(ref, 1); }
static int smc_torch(const cke_ktable *kt, const fx_file *fx) { return softmax_torch_mode(kt, fx, 1); }

#define ACT_OP(fn, OP, NAME)                                                                     \
    static int fn##_simd(const cke_ktable *kt, const cke_ktable *ref) { return act_simd(kt, ref, OP); } \
    static int fn##_grad(const cke_ktable *ref) { return act_grad(ref, OP); }                      \
    static int fn##_torch(const cke_ktable *kt, const fx_file *fx) { return act_torch(kt, fx, OP, NAME); }
ACT_OP(silu, SILU, "silu")
ACT_OP(gelue, GELU_E, "gelu_erf")
ACT_OP(gelut, GELU_T, "gelu_tanh")
ACT_OP(swiglu, SWIGLU, "swiglu")
ACT_OP(geglue, GEGLU_E, "geglu")
ACT_OP(geglut, GEGLU_T, "geglu_tanh")
#undef ACT_OP

static int add_simd(const cke_ktable *kt, const cke_ktable *ref) { return elt_simd(kt, ref, ADD); }
static int add_torch(const cke_ktable *kt, const fx_file *fx) { return elt_torch(kt, fx, ADD); }
static int axpy_simd(const cke_ktable *kt, const cke_ktable *ref) { return elt_simd(kt, ref, AXPY); }
static int axpy_torch(const cke_ktable *kt, const fx_file *fx) { return elt_torch(kt, fx, AXPY); }
static int scale_simd(const cke_ktable *kt, const cke_ktable *ref) { return elt_simd(kt, ref, SCALE); }
static int scale_torch(const cke_ktable *kt, const fx_file *fx) { return elt_torch(kt, fx, SCALE); }

const test_op tests_act[] = {
    {"softmax", sm_simd, sm_grad, sm_torch},
    {"softmax_causal", smc_simd, smc_grad, smc_torch},
    {"silu", silu_simd, silu_grad, silu_torch},
    {"gelu_erf", gelue_simd, gelue_grad, gelue_torch},
    {"gelu_tanh", gelut_simd, gelut_grad, gelut_torch},
    {"swiglu", swiglu_simd, swiglu_grad, swiglu_torch},
    {"geglu", geglue_simd, geglue_grad, geglue_torch},
    {"geglu_tanh", geglut_simd, geglut_grad, geglut_torch},
    {"add", add_simd, NULL, add_torch},     /* no backward kernel: d(a+b) is the identity */
    {"axpy", axpy_simd, NULL, axpy_torch},
    {"scale", scale_simd, NULL, scale_torch},
    /* no torch fixture: the formula is one tanh, checked against libm in grad mode and against
     * PyTorch end to end by the Gemma 2 family test (tests/compiler/test_families.c) */
    {"softcap", softcap_simd, softcap_grad, NULL},
    {0},
};
