/* Tests of the norm family: simd vs _ref sweeps, finite-difference gradients, PyTorch parity.
 * One driver for the three ops (kind: RMS, RMS with (1 + w), LayerNorm). */
#include "harness.h"
#include "telt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { RMS = 0, RMS1P = 1, LN = 2 };

/* simd vs ref. Forward: SIMD row sums are float vectors reduced in double, the ref sums in
 * double: rstd differs by ~1e-6 relative at D = 16384, so out agrees to ~1e-6 relative.
 * Backward: dx = r g dy - c x cancels, so the bound is relative to the row's scale. */
static const tol_t TOL_NORM_FWD = {1e-11, 1e-5, 1e-5};
static const tol_t TOL_NORM_BWD = {1e-10, 2e-5, 1e-4};

static void run_fwd(const cke_ktable *k, int kind, float *out, float *mean, float *rstd, const float *x,
                    const float *w, const float *b, int64_t T, int64_t D, float eps) {
    if (kind == LN) k->layernorm_fwd(out, mean, rstd, x, w, b, T, D, eps);
    else k->rmsnorm_fwd(out, rstd, x, w, T, D, eps, kind == RMS1P ? 1.0f : 0.0f);
}
static void run_bwd(const cke_ktable *k, int kind, float *dx, float *dw, float *db, const float *dy,
                    const float *x, const float *w, const float *mean, const float *rstd, int64_t T,
                    int64_t D) {
    if (kind == LN) k->layernorm_bwd(dx, dw, db, dy, x, w, mean, rstd, T, D);
    else k->rmsnorm_bwd(dx, dw, dy, x, w, rstd, T, D, kind == RMS1P ? 1.0f : 0.0f);
}

static int norm_simd(const cke_ktable *kt, const cke_ktable *ref, int kind) {
    int fails = 0;
    trng r = {1000u + (uint64_t)kind};
    int64_t Ds[16];
    int nd = 0;
    for (const int64_t *s = tsizes; *s; s++) Ds[nd++] = *s;
    Ds[nd++] = 4096;
    if (!tquick) Ds[nd++] = 16384; /* the longest rows the accumulation has to cope with */
    for (int di = 0; di < nd; di++) {
        int64_t D = Ds[di], T = D >= 4096 ? 2 : 5, n = T * D;
        for (int bias = 0; bias < (kind == LN ? 2 : 1); bias++) {
            float *x = tallocf(n), *w = tallocf(D), *b = tallocf(D), *dy = tallocf(n);
            tfill_normal(&r, x, n, 1.5f);
            if (kind == LN) for (int64_t i = 0; i < n; i++) x[i] += 3.0f; /* offset mean */
            tfill_normal(&r, w, D, 0.5f);
            tfill_normal(&r, b, D, 0.2f);
            tfill_normal(&r, dy, n, 1.0f);
            float *o1 = tallocf(n), *o2 = tallocf(n), *m1 = tallocf(T), *m2 = tallocf(T);
            float *r1 = tallocf(T), *r2 = tallocf(T);
            const float *bb = bias ? b : NULL;
            run_fwd(ref, kind, o1, m1, r1, x, w, bb, T, D, 1e-5f);
            run_fwd(kt, kind, o2, m2, r2, x, w, bb, T, D, 1e-5f);
            char what[96];
            snprintf(what, sizeof what, "fwd out T=%lld D=%lld bias=%d", (long long)T, (long long)D, bias);
            fails += tcheck(what, o2, o1, n, TOL_NORM_FWD);
            snprintf(what, sizeof what, "fwd rstd D=%lld", (long long)D);
            fails += tcheck(what, r2, r1, T, TOL_NORM_FWD);
            if (kind == LN) {
                snprintf(what, sizeof what, "fwd mean D=%lld", (long long)D);
                fails += tcheck(what, m2, m1, T, TOL_NORM_FWD);
            }
            /* NULL stats (inference) must give the same out */
            run_fwd(kt, kind, o2, NULL, NULL, x, w, bb, T, D, 1e-5f);
            snprintf(what, sizeof what, "fwd out (NULL stats) D=%lld", (long long)D);
            fails += tcheck(what, o2, o1, n, TOL_NORM_FWD);
            /* backward from the same saved stats; gradients start nonzero (they accumulate) */
            float *dx1 = tallocf(n), *dw1 = tallocf(D), *db1 = tallocf(D);
            tfill_normal(&r, dx1, n, 1.0f);
            tfill_normal(&r, dw1, D, 1.0f);
            tfill_normal(&r, db1, D, 1.0f);
            float *dx2 = tcopyf(dx1, n), *dw2 = tcopyf(dw1, D), *db2 = tcopyf(db1, D);
            run_bwd(ref, kind, dx1, dw1, bias ? db1 : NULL, dy, x, w, m1, r1, T, D);
            run_bwd(kt, kind, dx2, dw2, bias ? db2 : NULL, dy, x, w, m1, r1, T, D);
            snprintf(what, sizeof what, "bwd dx T=%lld D=%lld", (long long)T, (long long)D);
            fails += tcheck(what, dx2, dx1, n, TOL_NORM_BWD);
            snprintf(what, sizeof what, "bwd dw D=%lld", (long long)D);
            fails += tcheck(what, dw2, dw1, D, TOL_NORM_BWD);
            snprintf(what, sizeof what, "bwd db D=%lld", (long long)D);
            fails += tcheck(what, db2, db1, D, TOL_NORM_BWD);
            free(x); free(w); free(b); free(dy); free(o1); free(o2); free(m1); free(m2); free(r1);
            free(r2); free(dx1); free(dw1); free(db1); free(dx2); free(dw2); free(db2);
        }
    }
    return fails;
}

/* ---- grad: finite differences of L = sum(out * R) through the ref forward ---- */
typedef struct {
    const cke_ktable *k;
    int kind;
    float *x, *w, *b, *out, *R;
    int64_t T, D;
} norm_ctx;

static double norm_loss(void *p) {
    norm_ctx *c = p;
    run_fwd(c->k, c->kind, c->out, NULL, NULL, c->x, c->w, c->b, c->T, c->D, 1e-5f);
    return tloss_dot(c->out, c->R, c->T * c->D);
}

/* eps 4e-3 on O(1) inputs: float rounding noise in L ~ 1e-7 / 8e-3 ~ 1e-5 and truncation
 * ~eps^2 ~ 2e-5, so 1e-3 abs/rel leaves a wide margin while still catching a wrong term. */
static const tol_t TOL_NORM_GRAD = {1e-6, 1e-3, 1e-3};

static int norm_grad(const cke_ktable *ref, int kind) {
    int fails = 0;
    trng r = {2000u + (uint64_t)kind};
    static const int64_t Ds[] = {3, 8, 17}; /* D <= 2: the normalized output is ~constant, the gradient ~0 */
    for (int di = 0; di < 3; di++) {
        int64_t T = 3, D = Ds[di], n = T * D;
        norm_ctx c = {ref, kind, tallocf(n), tallocf(D), tallocf(D), tallocf(n), tallocf(n), T, D};
        tfill_normal(&r, c.x, n, 1.0f);
        if (kind == LN) for (int64_t i = 0; i < n; i++) c.x[i] += 1.0f;
        tfill_normal(&r, c.w, D, 0.5f);
        tfill_normal(&r, c.b, D, 0.5f);
        tfill_normal(&r, c.R, n, 1.0f);
        float *m = tallocf(T), *rs = tallocf(T), *dx = tallocf(n), *dw = tallocf(D), *db = tallocf(D);
        run_fwd(ref, kind, c.out, m, rs, c.x, c.w, c.b, T, D, 1e-5f);
        run_bwd(ref, kind, dx, dw, db, c.R, c.x, c.w, m, rs, T, D);
        char what[64];
        snprintf(what, sizeof what, "dx D=%lld", (long long)D);
        fails += tgrad_fd(what, c.x, dx, n, norm_loss, &c, 4e-3f, TOL_NORM_GRAD);
        snprintf(what, sizeof what, "dw D=%lld", (long long)D);
        fails += tgrad_fd(what, c.w, dw, D, norm_loss, &c, 4e-3f, TOL_NORM_GRAD);
        if (kind == LN) {
            snprintf(what, sizeof what, "db D=%lld", (long long)D);
            fails += tgrad_fd(what, c.b, db, D, norm_loss, &c, 4e-3f, TOL_NORM_GRAD);
        }
        free(c.x); free(c.w); free(c.b); free(c.out); free(c.R); free(m); free(rs); free(dx); free(dw);
        free(db);
    }
    return fails;
}

/* torch: fixtures hold float64 results rounded to float32, so the bound is the kernel's own
 * float error (out ~1e-6 rel; gradients cancel, ~1e-5 of the row scale). */
static const tol_t TOL_NORM_TORCH_FWD = {1e-11, 1e-5, 1e-5};
static const tol_t TOL_NORM_TORCH_BWD = {1e-10, 3e-5, 1e-4};

static int norm_torch(const cke_ktable *kt, const fx_file *fx, int kind) {
    const char *op = kind == RMS ? "rmsnorm" : kind == RMS1P ? "rmsnorm_1p" : "layernorm";
    int fails = 0, c;
    for (c = 0; tfx_has(fx, op, c); c++) {
        char nm[96], what[96];
#define FX(field) (snprintf(nm, sizeof nm, "%s.%d.%s", op, c, field), nm)
        const fx_tensor *tx = fx_get(fx, FX("x"));
        if (!tx || tx->ndim != 2) return fails + 1;
        int64_t T = tx->dims[0], D = tx->dims[1], n = T * D;
        const float *x = tx->data, *w = fx_f32(fx, FX("w"), D), *out = fx_f32(fx, FX("out"), n);
        const float *rstd = fx_f32(fx, FX("rstd"), T), *dy = fx_f32(fx, FX("dout"), n);
        const float *dxw = fx_f32(fx, FX("dx"), n), *dww = fx_f32(fx, FX("dw"), D);
        float eps = (float)fx_scalar_f(fx, FX("eps"), 1e-5);
        const float *b = NULL, *dbw = NULL, *meanw = NULL;
        if (kind == LN) {
            meanw = fx_f32(fx, FX("mean"), T);
            if (fx_count_prefix(fx, FX("b")) > 0) {
                b = fx_f32(fx, FX("b"), D);
                dbw = fx_f32(fx, FX("db"), D);
            }
        }
#undef FX
        if (!w || !out || !rstd || !dy || !dxw || !dww || (kind == LN && !meanw)) return fails + 1;
        float *o = tallocf(n), *m = tallocf(T), *rs = tallocf(T), *dx = tallocf(n), *dw = tallocf(D),
              *db = tallocf(D);
        run_fwd(kt, kind, o, m, rs, x, w, b, T, D, eps);
        snprintf(what, sizeof what, "%s.%d out", op, c);
        fails += tcheck(what, o, out, n, TOL_NORM_TORCH_FWD);
        snprintf(what, sizeof what, "%s.%d rstd", op, c);
        fails += tcheck(what, rs, rstd, T, TOL_NORM_TORCH_FWD);
        if (kind == LN) {
            snprintf(what, sizeof what, "%s.%d mean", op, c);
            fails += tcheck(what, m, meanw, T, TOL_NORM_TORCH_FWD);
        }
        run_bwd(kt, kind, dx, dw, b ? db : NULL, dy, x, w, m, rs, T, D);
        snprintf(what, sizeof what, "%s.%d dx", op, c);
        fails += tcheck(what, dx, dxw, n, TOL_NORM_TORCH_BWD);
        snprintf(what, sizeof what, "%s.%d dw", op, c);
        fails += tcheck(what, dw, dww, D, TOL_NORM_TORCH_BWD);
        if (b) {
            snprintf(what, sizeof what, "%s.%d db", op, c);
            fails += tcheck(what, db, dbw, D, TOL_NORM_TORCH_BWD);
        }
        free(o); free(m); free(rs); free(dx); free(dw); free(db);
    }
    if (c == 0) { printf("    no %s cases in the fixture file\n", op); fails++; }
    return fails;
}

static int rms_simd(const cke_ktable *kt, const cke_ktable *ref) { return norm_simd(kt, ref, RMS); }
static int rms_grad(const cke_ktable *ref) { return norm_grad(ref, RMS); }
static int rms_torch(const cke_ktable *kt, const fx_file *fx) { return norm_torch(kt, fx, RMS); }
static int rms1p_simd(const cke_ktable *kt, const cke_ktable *ref) { return norm_simd(kt, ref, RMS1P); }
static int rms1p_grad(const cke_ktable *ref) { return norm_grad(ref, RMS1P); }
static int rms1p_torch(const cke_ktable *kt, const fx_file *fx) { return norm_torch(kt, fx, RMS1P); }
static int ln_simd(const cke_ktable *kt, const cke_ktable *ref) { return norm_simd(kt, ref, LN); }
static int ln_grad(const cke_ktable *ref) { return norm_grad(ref, LN); }
static int ln_torch(const cke_ktable *kt, const fx_file *fx) { return norm_torch(kt, fx, LN); }

const test_op tests_norm[] = {
    {"rmsnorm", rms_simd, rms_grad, rms_torch},
    {"rmsnorm_1p", rms1p_simd, rms1p_grad, rms1p_torch}, /* Gemma: (1 + w) */
    {"layernorm", ln_simd, ln_grad, ln_torch},
    {0},
};
