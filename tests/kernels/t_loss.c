/* Tests of the loss family: simd vs _ref sweeps, finite-difference gradients, PyTorch parity.
 * xent (fused softmax + cross-entropy), adamw, sumsq. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* xent loss: max + log(sum) - x_y with sums in double on both sides; exp differs by ~2 ulp */
static const tol_t TOL_XLOSS = {1e-12, 1e-5, 1e-5};
/* dlogits = e * (dscale/sum): e from a ~2 ulp vector exp vs libm expf */
static const tol_t TOL_XGRAD = {1e-11, 1e-9, 1e-5};
/* adamw: same float ops in the same order: bitwise */
static const tol_t TOL_EXACT = {0, 0, 0};

static int same_bits(const char *what, const void *a, const void *b, size_t bytes) {
    if (memcmp(a, b, bytes) == 0) return 0;
    printf("    FAIL %s: nth=1 and nth=2 differ bitwise\n", what);
    return 1;
}

/* ---- xent ---- */
static int xent_case(const cke_ktable *kt, const cke_ktable *ref, int64_t T, int64_t V, uint64_t seed) {
    trng r = {seed};
    const int32_t IGN = -100;
    float *x = tallocf(T * V);
    tfill_normal(&r, x, T * V, 3.0f);
    int32_t *y = talloc((size_t)T * sizeof(int32_t));
    for (int64_t t = 0; t < T; t++) y[t] = (t % 4 == 2) ? IGN : (int32_t)(trng_u64(&r) % (uint64_t)V);
    const float dscale = 1.0f / (float)T;
    float *rl = tallocf(T), *rd = tallocf(T * V);
    ref->xent_fwd_bwd(rl, rd, x, y, T, V, IGN, dscale, 1);
    int fails = 0;
    char what[160];
    float *l[2], *d[2];
    for (int i = 0; i < 2; i++) {
        l[i] = tallocf(T);
        d[i] = tallocf(T * V);
        kt->xent_fwd_bwd(l[i], d[i], x, y, T, V, IGN, dscale, i + 1);
        snprintf(what, sizeof what, "xent loss T=%lld V=%lld nth=%d", (long long)T, (long long)V, i + 1);
        fails += tcheck(what, l[i], rl, T, TOL_XLOSS);
        snprintf(what, sizeof what, "xent dlogits T=%lld V=%lld nth=%d", (long long)T, (long long)V, i + 1);
        fails += tcheck(what, d[i], rd, T * V, TOL_XGRAD);
    }
    fails += same_bits("xent loss", l[0], l[1], (size_t)T * 4) + same_bits("xent dlogits", d[0], d[1], (size_t)T * V * 4);
    /* dlogits aliasing logits, and dlogits == NULL (loss only) */
    float *xa = tcopyf(x, T * V), *la = tallocf(T), *ln = tallocf(T);
    kt->xent_fwd_bwd(la, xa, xa, y, T, V, IGN, dscale, 2);
    kt->xent_fwd_bwd(ln, NULL, x, y, T, V, IGN, dscale, 2);
    fails += same_bits("xent aliased dlogits", xa, d[0], (size_t)T * V * 4) +
             same_bits("xent aliased loss", la, l[0], (size_t)T * 4) + same_bits("xent loss (no dlogits)", ln, l[0], (size_t)T * 4);
    for (int64_t t = 0; t < T; t++)
        if (y[t] == IGN && l[0][t] != 0.0f) { printf("    FAIL xent ignored row %lld loss %g\n", (long long)t, l[0][t]); fails++; }
    for (int i = 0; i < 2; i++) { free(l[i]); free(d[i]); }
    free(x); free(y); free(rl); free(rd); free(xa); free(la); free(ln);
    return fails;
}

static int simd_xent(const cke_ktable *kt, const cke_ktable *ref) {
    static const int64_t Vs[] = {1, 3, 17, 33, 127, 1025, 4099, 152064};
    static const int64_t Tsz[] = {1, 3, 5};
    int fails = 0;
    for (int a = 0; a < 8; a++)
        for (int b = 0; b < 3; b++) {
            if (tquick && Vs[a] > 4099 && Tsz[b] > 1) continue;
            fails += xent_case(kt, ref, Tsz[b], Vs[a], 700 + (uint64_t)(a * 10 + b));
        }
    return fails;
}

/* ref dlogits vs central differences of sum_t dscale * loss_t computed in double */
static int grad_xent(const cke_ktable *ref) {
    const int64_t T = 4, V = 37;
    const int32_t IGN = -1;
    trng r = {77};
    float *x = tallocf(T * V), *l = tallocf(T), *d = tallocf(T * V);
    tfill_normal(&r, x, T * V, 2.0f);
    int32_t y[4] = {3, IGN, 36, 0};
    const float dscale = 0.7f;
    ref->xent_fwd_bwd(l, d, x, y, T, V, IGN, dscale, 1);
    double *xd = malloc((size_t)(T * V) * sizeof(double)), *fd = malloc((size_t)(T * V) * sizeof(double));
    double *gd = malloc((size_t)(T * V) * sizeof(double));
    for (int64_t i = 0; i < T * V; i++) xd[i] = x[i];
    for (int64_t i = 0; i < T * V; i++) {
        double keep = xd[i], L[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            xd[i] = keep + (sgn ? -1e-5 : 1e-5);
            double tot = 0;
            for (int64_t t = 0; t < T; t++) {
                if (y[t] == IGN) continue;
                double m = -INFINITY, s = 0;
                for (int64_t j = 0; j < V; j++) m = xd[t * V + j] > m ? xd[t * V + j] : m;
                for (int64_t j = 0; j < V; j++) s += exp(xd[t * V + j] - m);
                tot += dscale * (m + log(s) - xd[t * V + y[t]]);
            }
            L[sgn] = tot;
        }
        xd[i] = keep;
        fd[i] = (L[0] - L[1]) / 2e-5;
        gd[i] = d[i];
    }
    /* float softmax vs double FD (error ~1e-10): float rounding of e/sum dominates */
    int fails = tcheck_d("xent dlogits vs FD", gd, fd, T * V, (tol_t){1e-10, 1e-7, 1e-5});
    free(x); free(l); free(d); free(xd); free(fd); free(gd);
    return fails;
}

static int torch_xent(const cke_ktable *kt, const fx_file *fx) {
    int fails = 0;
    static const char *cases[] = {"small", "vocab"};
    for (int c = 0; c < 2; c++) {
        char nm[96];
#define FXN(x) (snprintf(nm, sizeof nm, "xent.%s." x, cases[c]), nm)
        int64_t T = fx_scalar_i(fx, FXN("T"), -1), V = fx_scalar_i(fx, FXN("V"), -1);
        int32_t ign = (int32_t)fx_scalar_i(fx, FXN("ignore_index"), -100);
        float dscale = (float)fx_scalar_f(fx, FXN("dscale"), 1);
        if (T <= 0 || V <= 0) { printf("    xent.%s: shape scalars missing\n", cases[c]); fails++; continue; }
        const float *x = fx_f32(fx, FXN("logits"), T * V), *wl = fx_f32(fx, FXN("loss"), T);
        const float *wd = fx_f32(fx, FXN("dlogits"), T * V);
        const int32_t *y = fx_i32(fx, FXN("y"), T);
#undef FXN
        if (!x || !wl || !wd || !y) { fails++; continue; }
        float *l = tallocf(T), *d = tallocf(T * V);
        kt->xent_fwd_bwd(l, d, x, y, T, V, ign, dscale, 2);
        char what[96];
        snprintf(what, sizeof what, "xent.%s loss", cases[c]);
        fails += tcheck(what, l, wl, T, TOL_XLOSS);
        snprintf(what, sizeof what, "xent.%s dlogits", cases[c]);
        fails += tcheck(what, d, wd, T * V, TOL_XGRAD);
        free(l); free(d);
    }
    return fails;
}

/* ---- adamw ---- */
static int simd_adamw(const cke_ktable *kt, const cke_ktable *ref) {
    int fails = 0;
    for (int a = 0; tsizes[a]; a++) {
        int64_t n = tsizes[a];
        trng r = {800 + (uint64_t)a};
        float *p = tallocf(n), *m = tallocf(n), *v = tallocf(n), *g = tallocf(n);
        tfill_normal(&r, p, n, 1.0f);
        float *p2 = tcopyf(p, n), *m2 = tallocf(n), *v2 = tallocf(n);
        for (int64_t step = 1; step <= 4; step++) {
            tfill_normal(&r, g, n, 1.0f);
            float gs = step == 3 ? 0.25f : 1.0f;
            ref->adamw(p, m, v, g, n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, gs);
            kt->adamw(p2, m2, v2, g, n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, gs);
        }
        char what[64];
        snprintf(what, sizeof what, "adamw p n=%lld", (long long)n);
        fails += tcheck(what, p2, p, n, TOL_EXACT);
        snprintf(what, sizeof what, "adamw m n=%lld", (long long)n);
        fails += tcheck(what, m2, m, n, TOL_EXACT);
        snprintf(what, sizeof what, "adamw v n=%lld", (long long)n);
        fails += tcheck(what, v2, v, n, TOL_EXACT);
        free(p); free(m); free(v); free(g); free(p2); free(m2); free(v2);
    }
    return fails;
}

/* torch.optim.AdamW (float64) for `steps` steps vs our adamw called once per step */
static int torch_adamw(const cke_ktable *kt, const fx_file *fx) {
    int64_t n = fx_scalar_i(fx, "adamw.n", -1), steps = fx_scalar_i(fx, "adamw.steps", -1);
    if (n <= 0 || steps <= 0) { printf("    adamw: scalars missing\n"); return 1; }
    float lr = (float)fx_scalar_f(fx, "adamw.lr", 0), b1 = (float)fx_scalar_f(fx, "adamw.beta1", 0);
    float b2 = (float)fx_scalar_f(fx, "adamw.beta2", 0), eps = (float)fx_scalar_f(fx, "adamw.eps", 0);
    float wd = (float)fx_scalar_f(fx, "adamw.wd", 0), gs = (float)fx_scalar_f(fx, "adamw.grad_scale", 1);
    const float *p0 = fx_f32(fx, "adamw.p0", n), *g = fx_f32(fx, "adamw.g", steps * n);
    const float *wp = fx_f32(fx, "adamw.p", n), *wm = fx_f32(fx, "adamw.m", n), *wv = fx_f32(fx, "adamw.v", n);
    if (!p0 || !g || !wp || !wm || !wv) return 1;
    float *p = tcopyf(p0, n), *m = tallocf(n), *v = tallocf(n);
    for (int64_t s = 0; s < steps; s++) kt->adamw(p, m, v, g + s * n, n, lr, b1, b2, eps, wd, s + 1, gs);
    /* float32 state vs float64 torch over a few steps: a few ulp; m/v small values near 0 */
    int fails = tcheck("adamw p", p, wp, n, (tol_t){1e-13, 1e-7, 2e-6}) +
                tcheck("adamw m", m, wm, n, (tol_t){1e-12, 1e-7, 1e-5}) +
                tcheck("adamw v", v, wv, n, (tol_t){1e-12, 1e-8, 1e-5});
    free(p); free(m); free(v);
    return fails;
}

/* ---- sumsq ---- */
static int simd_sumsq(const cke_ktable *kt, const cke_ktable *ref) {
    int fails = 0;
    int64_t big = tquick ? 100003 : 10000019;
    for (int a = 0; ; a++) {
        int64_t n = tsizes[a] ? tsizes[a] : big;
        trng r = {900 + (uint64_t)a};
        float *x = tallocf(n);
        tfill_normal(&r, x, n, 1.0f);
        double want = ref->sumsq(x, n), got = kt->sumsq(x, n);
        char what[64];
        snprintf(what, sizeof what, "sumsq n=%lld", (long long)n);
        /* float lane blocks (<= 64 terms per lane) summed in double: ~1e-7 relative at worst */
        fails += tcheck_d(what, &got, &want, 1, (tol_t){1e-14, 0, 1e-7});
        free(x);
        if (!tsizes[a]) break;
    }
    return fails;
}

static int torch_sumsq(const cke_ktable *kt, const fx_file *fx) {
    int64_t n = fx_scalar_i(fx, "sumsq.n", -1);
    const float *x = n > 0 ? fx_f32(fx, "sumsq.x", n) : NULL;
    const float *w = fx_f32(fx, "sumsq.out_hi", 1), *wl = fx_f32(fx, "sumsq.out_lo", 1);
    if (!x || !w || !wl) return 1;
    double want = (double)w[0] + (double)wl[0], got = kt->sumsq(x, n); /* double split in 2 floats */
    return tcheck_d("sumsq", &got, &want, 1, (tol_t){1e-14, 0, 1e-7});
}

const test_op tests_loss[] = {
    {"xent", simd_xent, grad_xent, torch_xent},
    {"adamw", simd_adamw, NULL, torch_adamw},
    {"sumsq", simd_sumsq, NULL, torch_sumsq},
    {0},
};
