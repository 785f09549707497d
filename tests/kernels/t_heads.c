/* Per-head windows and concatenations (heads.c; multi-head latent attention): copies, so exact.
 * simd: every shape against the definition written as plain index arithmetic (zero padding past a
 * head, a shared head broadcast); grad: each backward is the forward's adjoint, <dout, fwd(x)> =
 * <bwd(dout), x> in double, and accumulates (+=) into what its output held. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct { int64_t T, H, d, lo, w; } win[] = {
    {1, 1, 7, 0, 3}, {5, 4, 12, 8, 4}, {3, 4, 14, 8, 14}, /* a value head of 6 padded to 14 */
    {2, 1, 20, 16, 4}, {7, 3, 9, 0, 9}, {4, 2, 5, 4, 7},
};
static const struct { int64_t T, H, da, Hb, db; } cat[] = {{1, 1, 3, 1, 2}, {5, 4, 8, 4, 4}, {3, 4, 8, 1, 4}, {6, 3, 1, 1, 5}};

static float *rnd(trng *r, int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = trng_normal(r);
    return p;
}

static int heads_simd(const cke_ktable *kt, const cke_ktable *ref) {
    (void)kt, (void)ref;
    int fails = 0;
    trng r = {7};
    for (size_t i = 0; i < sizeof win / sizeof win[0]; i++) {
        const int64_t T = win[i].T, H = win[i].H, d = win[i].d, lo = win[i].lo, w = win[i].w;
        float *x = rnd(&r, T * H * d), *got = rnd(&r, T * H * w), *want = rnd(&r, T * H * w);
        for (int64_t q = 0; q < T * H; q++)
            for (int64_t j = 0; j < w; j++) want[q * w + j] = lo + j < d ? x[q * d + lo + j] : 0.0f;
        cke_head_window_fwd(got, x, T, H, d, lo, w);
        if (memcmp(got, want, (size_t)(T * H * w) * sizeof(float))) {
            printf("  head_window T%lld H%lld d%lld lo%lld w%lld: not the window\n", (long long)T, (long long)H, (long long)d,
                   (long long)lo, (long long)w);
            fails++;
        }
        free(x), free(got), free(want);
    }
    for (size_t i = 0; i < sizeof cat / sizeof cat[0]; i++) {
        const int64_t T = cat[i].T, H = cat[i].H, da = cat[i].da, Hb = cat[i].Hb, db = cat[i].db, w = da + db;
        float *a = rnd(&r, T * H * da), *b = rnd(&r, T * Hb * db), *got = rnd(&r, T * H * w), *want = rnd(&r, T * H * w);
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t j = 0; j < w; j++)
                    want[(t * H + h) * w + j] = j < da ? a[(t * H + h) * da + j] : b[(t * Hb + (Hb > 1 ? h : 0)) * db + j - da];
        cke_head_cat_fwd(got, a, b, T, H, da, Hb, db);
        if (memcmp(got, want, (size_t)(T * H * w) * sizeof(float))) {
            printf("  head_cat T%lld H%lld da%lld Hb%lld db%lld: not the concatenation\n", (long long)T, (long long)H,
                   (long long)da, (long long)Hb, (long long)db);
            fails++;
        }
        free(a), free(b), free(got), free(want);
    }
    return fails;
}

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* <dout, fwd(x)> against <bwd(dout), x>, the backward run onto a gradient holding g0 (accumulation) */
static int heads_grad(const cke_ktable *ref) {
    (void)ref;
    int fails = 0;
    trng r = {11};
    for (size_t i = 0; i < sizeof win / sizeof win[0]; i++) {
        const int64_t T = win[i].T, H = win[i].H, d = win[i].d, lo = win[i].lo, w = win[i].w, n = T * H * d, m = T * H * w;
        float *x = rnd(&r, n), *y = rnd(&r, m), *dy = rnd(&r, m), *g0 = rnd(&r, n), *dx = malloc((size_t)n * sizeof(float));
        memcpy(dx, g0, (size_t)n * sizeof(float));
        cke_head_window_fwd(y, x, T, H, d, lo, w);
        cke_head_window_bwd(dx, dy, T, H, d, lo, w);
        const double lhs = dot(dy, y, m), rhs = dot(dx, x, n) - dot(g0, x, n);
        if (fabs(lhs - rhs) > 1e-5 * (1 + fabs(lhs))) {
            printf("  head_window_bwd case %zu: <dout, fwd x> %.9g vs <bwd dout, x> %.9g\n", i, lhs, rhs);
            fails++;
        }
        free(x), free(y), free(dy), free(g0), free(dx);
    }
    for (size_t i = 0; i < sizeof cat / sizeof cat[0]; i++) {
        const int64_t T = cat[i].T, H = cat[i].H, da = cat[i].da, Hb = cat[i].Hb, db = cat[i].db;
        const int64_t na = T * H * da, nb = T * Hb * db, m = T * H * (da + db);
        float *a = rnd(&r, na), *b = rnd(&r, nb), *y = rnd(&r, m), *dy = rnd(&r, m);
        float *ga = calloc((size_t)na, sizeof(float)), *gb = calloc((size_t)nb, sizeof(float));
        cke_head_cat_fwd(y, a, b, T, H, da, Hb, db);
        cke_head_cat_bwd(ga, gb, dy, T, H, da, Hb, db);
        const double lhs = dot(dy, y, m), rhs = dot(ga, a, na) + dot(gb, b, nb);
        if (fabs(lhs - rhs) > 1e-5 * (1 + fabs(lhs))) {
            printf("  head_cat_bwd case %zu: <dout, fwd> %.9g vs <bwd dout, (a, b)> %.9g\n", i, lhs, rhs);
            fails++;
        }
        free(a), free(b), free(y), free(dy), free(ga), free(gb);
    }
    return fails;
}

const test_op tests_heads[] = {
    {"heads", heads_simd, heads_grad, NULL},
    {0},
};
