/* Tests of the gemm family: simd vs _ref sweeps, finite-difference gradients, PyTorch parity. */
#include "harness.h"
#include "kernels/kdecl.h" /* cke_gemm_bf16_generic: the portable BF16 kernel every table must match */
#include "kernels/quant_blocks.h" /* qb_f2bf_daz: the rounding round_bf16 must give */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FEPS 1.1920929e-7

/* GEMM vs the double-accumulating ref: float sums of K terms of N(0,1) products drift like
 * eps * K at worst (sequential), so atol scales with K; nmse 1e-10 sits well above the typical
 * eps^2 * K (~2e-11 at K = 1025) and far below any indexing bug. */
static tol_t gemm_tol(int64_t K, float alpha, float beta) {
    double s = fabs(alpha) + fabs(beta) + 1e-3;
    return (tol_t){1e-10, 8.0 * FEPS * (double)K * s + 1e-6, 1e-5};
}

typedef struct { int64_t M, N, K; } mnk;

typedef __typeof__(((cke_ktable *)0)->gemm) gemm_fn;
typedef __typeof__(((cke_ktable *)0)->gemm_bf16_b16) b16_fn;

/* Runs one (M,N,K,trans,alpha,beta) case on kt (nth 1 and 2) against ref; 0 = pass.
 * bf16: the tables' gemm_bf16 (both round operands the same way, so the fp32 tolerance holds),
 * and the portable BF16 kernel must give kt's bits (same pairs, same order, normal values). */
static int gemm_case_p(const cke_ktable *kt, const cke_ktable *ref, trng *r, int64_t M, int64_t N,
                       int64_t K, cke_trans ta, cke_trans tb, float alpha, float beta, int pad, int bf16) {
    const gemm_fn kg = bf16 ? kt->gemm_bf16 : kt->gemm, rg = bf16 ? ref->gemm_bf16 : ref->gemm;
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb, nc = M * ldc;
    float *A = tallocf(na), *B = tallocf(nb), *C0 = tallocf(nc);
    tfill_normal(r, A, na, 1.0f);
    tfill_normal(r, B, nb, 1.0f);
    if (beta == 0.0f) for (int64_t i = 0; i < nc; i++) C0[i] = NAN; /* beta == 0 must not read C */
    else tfill_normal(r, C0, nc, 1.0f);
    float *want = tcopyf(C0, nc), *g1 = tcopyf(C0, nc), *g2 = tcopyf(C0, nc);
    void *ws = talloc(cke_gemm_ws_size(M, N, K, 2));
    rg(want, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, NULL, 1);
    kg(g1, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, 1);
    kg(g2, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, 2);
    char what[160];
    snprintf(what, sizeof what, "gemm%s %s M=%lld N=%lld K=%lld t%c%c a=%g b=%g pad=%d", bf16 ? "_bf16" : "", kt->name,
             (long long)M, (long long)N, (long long)K, ta ? 'T' : 'N', tb ? 'T' : 'N', alpha, beta,
             pad);
    int fails = 0;
    /* compare the M x N block as a whole (nmse over one row is meaningless when N is tiny);
     * padding columns are checked untouched below */
    float *cg = tallocf(M * N), *cw = tallocf(M * N);
    for (int64_t i = 0; i < M; i++) {
        memcpy(cg + i * N, g1 + i * ldc, (size_t)N * sizeof(float));
        memcpy(cw + i * N, want + i * ldc, (size_t)N * sizeof(float));
    }
    fails += tcheck(what, cg, cw, M * N, gemm_tol(K, alpha, beta));
    free(cg);
    free(cw);
    /* the partition never changes an element's summation order: bitwise equal across nth */
    if (memcmp(g1, g2, (size_t)nc * sizeof(float)) != 0) {
        printf("    FAIL %s: nth=1 and nth=2 differ bitwise\n", what);
        fails++;
    }
    if (bf16 && kg != cke_gemm_bf16_ref) { /* every fast BF16 form this CPU runs: the same bits */
        gemm_fn forms[3] = {cke_gemm_bf16_generic, NULL, NULL};
#if defined(__x86_64__)
        if (kg == cke_gemm_bf16_avx512) {
            forms[1] = cke_gemm_bf16_fma_avx512;
            __builtin_cpu_init();
            if (__builtin_cpu_supports("avx512bf16")) forms[2] = cke_gemm_bf16_dp_avx512;
        }
#endif
        for (int f = 0; f < 3; f++) {
            if (!forms[f]) continue;
            float *g3 = tcopyf(C0, nc);
            forms[f](g3, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, 2 - f % 2);
            if (memcmp(g1, g3, (size_t)nc * sizeof(float)) != 0) {
                printf("    FAIL %s: BF16 form %d (0 portable, 1 FMA, 2 vdpbf16ps) differs bitwise\n", what, f);
                fails++;
            }
            free(g3);
        }
    }
    if (bf16) { /* B stored as bf16 (rounded by the spec's round_bf16): gemm_bf16's bits, every form */
        uint16_t *B16 = talloc((size_t)nb * sizeof(uint16_t));
        ref->round_bf16(B16, B, nb);
        b16_fn forms[5] = {kt->gemm_bf16_b16, ref->gemm_bf16_b16, cke_gemm_bf16_b16_generic, NULL, NULL};
        const float *same[5] = {g1, want, g1, g1, g1};
#if defined(__x86_64__)
        if (kt->gemm_bf16_b16 == cke_gemm_bf16_b16_avx512) {
            forms[3] = cke_gemm_bf16_b16_fma_avx512;
            __builtin_cpu_init();
            if (__builtin_cpu_supports("avx512bf16")) forms[4] = cke_gemm_bf16_b16_dp_avx512;
        }
#endif
        for (int f = 0; f < 5; f++) {
            if (!forms[f] || (f == 2 && kg == cke_gemm_bf16_ref)) continue;
            float *g3 = tcopyf(C0, nc);
            forms[f](g3, A, B16, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, 1 + f % 2);
            if (memcmp(same[f], g3, (size_t)nc * sizeof(float)) != 0) {
                printf("    FAIL %s: B stored as bf16, form %d (0 table, 1 ref, 2 portable, 3 FMA, 4 vdpbf16ps) differs "
                       "bitwise from gemm_bf16\n", what, f);
                fails++;
            }
            free(g3);
        }
        free(B16);
    }
    for (int64_t i = 0; i < M && pad; i++)
        for (int64_t j = N; j < ldc; j++)
            if (memcmp(&g1[i * ldc + j], &C0[i * ldc + j], 4)) {
                printf("    FAIL %s: wrote ldc padding at [%lld,%lld]\n", what, (long long)i, (long long)j);
                fails++;
                i = M;
                break;
            }
    free(A); free(B); free(C0); free(want); free(g1); free(g2); free(ws);
    return fails;
}

static int gemm_case(const cke_ktable *kt, const cke_ktable *ref, trng *r, int64_t M, int64_t N,
                     int64_t K, cke_trans ta, cke_trans tb, float alpha, float beta, int pad) {
    return gemm_case_p(kt, ref, r, M, N, K, ta, tb, alpha, beta, pad, 0);
}

/* The mixed-precision GEMM: every trans combo over odd sizes (odd K: a half-empty last pair),
 * sizes past the tiles and KC blocks, alpha/beta as the backward's accumulation uses them. */
static int gemm_bf16_simd(const cke_ktable *kt, const cke_ktable *ref) {
    trng r = {43};
    int fails = 0;
    static const int64_t small[] = {1, 2, 3, 17, 33};
    for (int t = 0; t < 4; t++)
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 5; b++)
                for (int c = 0; c < 5; c++)
                    fails += gemm_case_p(kt, ref, &r, small[a], small[b], small[c], (cke_trans)(t >> 1), (cke_trans)(t & 1),
                                         1.0f, 0.0f, (a + b + c) % 3 == 0 ? 5 : 0, 1);
    static const mnk big[] = {{1, 65, 1025}, {15, 33, 17}, {29, 70, 513}, {300, 129, 257}, {33, 1025, 300},
                              {230, 600, 300}};
    /* -0.7: alpha * acc is rounded, so every form must round the store the same way (one FMA) */
    static const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {-0.7f, 1.3f}};
    for (int i = 0; i < (tquick ? 3 : 6); i++)
        for (int t = 0; t < 4; t++)
            for (int v = 0; v < 3; v++)
                fails += gemm_case_p(kt, ref, &r, big[i].M, big[i].N, big[i].K, (cke_trans)(t >> 1), (cke_trans)(t & 1),
                                     ab[v][0], ab[v][1], (i + t + v) % 2 ? 3 : 0, 1);
    return fails;
}

/* round_bf16 against the spec's rounding, bit for bit: ties both ways, denormals, infinities,
 * NaNs, values that round up to infinity, and odd lengths (the vector tail) */
static int round_bf16_simd(const cke_ktable *kt, const cke_ktable *ref) {
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x3f808000u, 0x3f818000u, 0x3f80c000u, 0x3f807fffu,
                                       0x00000001u, 0x807fffffu, 0x00800000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                       0x7f800001u, 0xffbfffffu, 0x7f7fffffu, 0xff7f8000u, 0x3effffffu, 0x40490fdbu};
    const int ns = (int)(sizeof special / sizeof special[0]);
    trng r = {44};
    int fails = 0;
    for (int64_t n = 1; n <= 67; n += (n < 20 ? 1 : 23)) {
        float *x = tallocf(n);
        tfill_normal(&r, x, n, 100.0f);
        for (int64_t i = 0; i < n; i++)
            if (i % 3 == 0) memcpy(&x[i], &special[(i / 3) % ns], 4);
        uint16_t *y = talloc((size_t)n * 2), *w = talloc((size_t)n * 2);
        kt->round_bf16(y, x, n);
        ref->round_bf16(w, x, n);
        for (int64_t i = 0; i < n && kt == ref; i++) w[i] = qb_f2bf_daz(x[i]); /* the ref itself: against the rounding it names */
        for (int64_t i = 0; i < n; i++)
            if (y[i] != w[i]) {
                uint32_t u;
                memcpy(&u, &x[i], 4);
                printf("    FAIL round_bf16 %s n=%lld: x=0x%08x -> 0x%04x, want 0x%04x\n", kt->name, (long long)n, u, y[i], w[i]);
                fails++;
                break;
            }
        free(x), free(y), free(w);
    }
    return fails;
}

static int gemm_simd(const cke_ktable *kt, const cke_ktable *ref) {
    trng r = {42};
    int fails = 0;
    static const int64_t small[] = {1, 3, 17, 33, 127};
    int ns = tquick ? 4 : 5;
    /* all trans combos over a cube of odd sizes */
    for (int t = 0; t < 4; t++)
        for (int a = 0; a < ns; a++)
            for (int b = 0; b < ns; b++)
                for (int c = 0; c < ns; c++)
                    fails += gemm_case(kt, ref, &r, small[a], small[b], small[c], (cke_trans)(t >> 1),
                                       (cke_trans)(t & 1), 1.0f, 0.0f, (a + b + c) % 3 == 0 ? 5 : 0);
    /* 1025 combos, small-M paths (M <= 8), several KC/MC/NC blocks, alpha/beta variants; 230 x 1030
     * x 300: A packed whole (2 MC chunks) for 2 N blocks and 2 K blocks */
    static const mnk big[] = {{1, 1025, 1025}, {1, 4096, 300}, {2, 1025, 33}, {5, 127, 1025},
                              {8, 1025, 17},   {6, 33, 1025},  {230, 1030, 300}, {7, 17, 3},    {1025, 3, 17},
                              {17, 1025, 33},  {33, 127, 1025}, {300, 600, 700}, {127, 1025, 127}};
    static const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.5f}, {-2.0f, 1.0f}};
    int nbig = tquick ? 7 : (int)(sizeof big / sizeof big[0]);
    for (int i = 0; i < nbig; i++)
        for (int t = 0; t < 4; t++)
            for (int v = 0; v < 3; v++) {
                if (tquick && v && t) continue;
                fails += gemm_case(kt, ref, &r, big[i].M, big[i].N, big[i].K, (cke_trans)(t >> 1),
                                   (cke_trans)(t & 1), ab[v][0], ab[v][1], (i + t + v) % 2 ? 3 : 0);
            }
    /* batched: 5 batches of [9 x 33] . [33 x 20]^T with strides, nth = 2 vs ref one by one */
    {
        int64_t bt = 5, M = 9, N = 20, K = 33, sa = M * K + 7, sb = N * K + 3, sc = M * N + 1;
        float *A = tallocf(bt * sa), *B = tallocf(bt * sb), *C = tallocf(bt * sc), *W = tallocf(bt * sc);
        tfill_normal(&r, A, bt * sa, 1.0f);
        tfill_normal(&r, B, bt * sb, 1.0f);
        tfill_normal(&r, C, bt * sc, 1.0f);
        memcpy(W, C, (size_t)(bt * sc) * sizeof(float));
        for (int nth = 1; nth <= 3; nth += 2) {
            void *ws = talloc(cke_gemm_batched_ws_size(M, N, K, nth));
            float *G = tcopyf(C, bt * sc);
            cke_gemm_batched(kt, G, A, B, bt, sc, sa, sb, M, N, K, K, K, N, CKE_NOTRANS, CKE_TRANS,
                             0.5f, 1.0f, ws, nth);
            if (nth == 1)
                for (int64_t b = 0; b < bt; b++)
                    ref->gemm(W + b * sc, A + b * sa, B + b * sb, M, N, K, K, K, N, CKE_NOTRANS,
                              CKE_TRANS, 0.5f, 1.0f, NULL, 1);
            fails += tcheck(nth == 1 ? "gemm_batched nth=1" : "gemm_batched nth=3", G, W, bt * sc,
                            gemm_tol(K, 0.5f, 1.0f));
            free(G);
            free(ws);
        }
        free(A); free(B); free(C); free(W);
    }
    return fails;
}

/* ---- linear ---- */

/* SIMD linear vs ref linear (fwd with/without bias, bwd accumulating into nonzero grads). */
static int linear_simd(const cke_ktable *kt, const cke_ktable *ref) {
    trng r = {7};
    int fails = 0;
    static const mnk sh[] = {{1, 64, 96}, {3, 17, 33}, {8, 127, 65}, {64, 128, 96}, {130, 257, 300}};
    int nsh = tquick ? 4 : 5;
    for (int s = 0; s < nsh; s++) {
        int64_t M = sh[s].M, K = sh[s].N, N = sh[s].K;
        float *X = tallocf(M * K), *W = tallocf(N * K), *b = tallocf(N), *dY = tallocf(M * N);
        tfill_normal(&r, X, M * K, 1.0f);
        tfill_normal(&r, W, N * K, 0.1f);
        tfill_normal(&r, b, N, 1.0f);
        tfill_normal(&r, dY, M * N, 1.0f);
        size_t wsz = cke_gemm_ws_size(M, N, K, 2);
        size_t wb1 = cke_gemm_ws_size(M, K, N, 2), wb2 = cke_gemm_ws_size(N, K, M, 2);
        if (wb1 > wsz) wsz = wb1;
        if (wb2 > wsz) wsz = wb2;
        void *ws = talloc(wsz);
        float *Yw = tallocf(M * N), *Yg = tallocf(M * N);
        float *g[2][3];
        for (int v = 0; v < 2; v++) {
            g[v][0] = tallocf(M * K); g[v][1] = tallocf(N * K); g[v][2] = tallocf(N);
            trng r2 = {99}; /* same nonzero starting gradients: bwd accumulates */
            tfill_normal(&r2, g[v][0], M * K, 1.0f);
            tfill_normal(&r2, g[v][1], N * K, 1.0f);
            tfill_normal(&r2, g[v][2], N, 1.0f);
        }
        char what[128];
        for (int bias = 0; bias < 2; bias++) {
            cke_linear_fwd(ref, Yw, X, W, bias ? b : NULL, M, K, N, NULL, 1);
            cke_linear_fwd(kt, Yg, X, W, bias ? b : NULL, M, K, N, ws, 2);
            snprintf(what, sizeof what, "linear_fwd %s M=%lld K=%lld N=%lld bias=%d", kt->name,
                     (long long)M, (long long)K, (long long)N, bias);
            fails += tcheck(what, Yg, Yw, M * N, gemm_tol(K, 1.0f, 1.0f));
        }
        cke_linear_bwd(ref, g[0][0], g[0][1], g[0][2], dY, X, W, M, K, N, NULL, 1);
        cke_linear_bwd(kt, g[1][0], g[1][1], g[1][2], dY, X, W, M, K, N, ws, 2);
        static const char *gn[3] = {"dX", "dW", "db"};
        int64_t gl[3] = {M * K, N * K, N}, inner[3] = {N, M, M};
        for (int q = 0; q < 3; q++) {
            snprintf(what, sizeof what, "linear_bwd %s %s M=%lld K=%lld N=%lld", kt->name, gn[q],
                     (long long)M, (long long)K, (long long)N);
            fails += tcheck(what, g[1][q], g[0][q], gl[q], gemm_tol(inner[q], 1.0f, 1.0f));
        }
        for (int v = 0; v < 2; v++) for (int q = 0; q < 3; q++) free(g[v][q]);
        free(X); free(W); free(b); free(dY); free(ws); free(Yw); free(Yg);
    }
    return fails;
}

/* loss = sum(Y * R), Y = X W^T + b, in double from double copies of the parameters */
static double lin_loss(const double *X, const double *W, const double *b, const float *R,
                       int64_t M, int64_t K, int64_t N) {
    double L = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double y = b[j];
            for (int64_t k = 0; k < K; k++) y += X[i * K + k] * W[j * K + k];
            L += y * (double)R[i * N + j];
        }
    return L;
}

static int linear_grad(const cke_ktable *ref) {
    trng r = {11};
    int fails = 0;
    static const mnk sh[] = {{3, 5, 4}, {7, 17, 9}};
    for (int s = 0; s < 2; s++) {
        int64_t M = sh[s].M, K = sh[s].N, N = sh[s].K;
        int64_t n[3] = {M * K, N * K, N};
        float *p[3], *g[3], *g0[3], *R = tallocf(M * N);
        double *d[3];
        for (int q = 0; q < 3; q++) {
            p[q] = tallocf(n[q]);
            tfill_normal(&r, p[q], n[q], 1.0f);
            g0[q] = tallocf(n[q]);
            tfill_normal(&r, g0[q], n[q], 1.0f); /* nonzero: bwd must accumulate */
            g[q] = tcopyf(g0[q], n[q]);
            d[q] = malloc((size_t)n[q] * sizeof(double));
            for (int64_t i = 0; i < n[q]; i++) d[q][i] = p[q][i];
        }
        tfill_normal(&r, R, M * N, 1.0f);
        cke_linear_bwd(ref, g[0], g[1], g[2], R, p[0], p[1], M, K, N, NULL, 1);
        static const char *gn[3] = {"dX", "dW", "db"};
        for (int q = 0; q < 3; q++) {
            double *fd = malloc((size_t)n[q] * sizeof(double)), *an = malloc((size_t)n[q] * sizeof(double));
            const double h = 1e-3;
            for (int64_t i = 0; i < n[q]; i++) {
                double keep = d[q][i];
                d[q][i] = keep + h;
                double lp = lin_loss(d[0], d[1], d[2], R, M, K, N);
                d[q][i] = keep - h;
                double lm = lin_loss(d[0], d[1], d[2], R, M, K, N);
                d[q][i] = keep;
                fd[i] = (lp - lm) / (2 * h);
                an[i] = (double)g[q][i] - (double)g0[q][i];
            }
            char what[64];
            snprintf(what, sizeof what, "linear grad %s M=%lld K=%lld N=%lld", gn[q], (long long)M,
                     (long long)K, (long long)N);
            /* loss is linear in each parameter: central FD is exact up to double rounding; the
             * analytic side is float (ref sums in double, rounds once; minus g0 in float) */
            fails += tcheck_d(what, an, fd, n[q], (tol_t){1e-10, 1e-5, 1e-5});
            free(fd); free(an);
        }
        for (int q = 0; q < 3; q++) { free(p[q]); free(g[q]); free(g0[q]); free(d[q]); }
        free(R);
    }
    return fails;
}

/* PyTorch: F.linear forward and autograd dX, dW, db (float64 from float32 inputs). */
static int linear_torch(const cke_ktable *kt, const fx_file *fx) {
    int fails = 0, ncase = (int)fx_scalar_i(fx, "linear.ncase", 0);
    if (ncase == 0) { printf("    no linear fixtures\n"); return 1; }
    for (int c = 0; c < ncase; c++) {
        char nm[64];
        snprintf(nm, sizeof nm, "linear.c%d.X", c);
        const fx_tensor *tx = fx_get(fx, nm);
        snprintf(nm, sizeof nm, "linear.c%d.W", c);
        const fx_tensor *tw = fx_get(fx, nm);
        if (!tx || !tw || tx->ndim != 2 || tw->ndim != 2) { fails++; continue; }
        int64_t M = tx->dims[0], K = tx->dims[1], N = tw->dims[0];
        const float *X = tx->data, *W = tw->data, *b, *dY, *Y, *dX, *dW, *db;
#define GET(var, what, n) snprintf(nm, sizeof nm, "linear.c%d." what, c); var = fx_f32(fx, nm, n);
        GET(b, "b", N) GET(dY, "dY", M * N) GET(Y, "Y", M * N) GET(dX, "dX", M * K)
        GET(dW, "dW", N * K) GET(db, "db", N)
#undef GET
        snprintf(nm, sizeof nm, "linear.c%d.hasb", c);
        int64_t hasb = fx_scalar_i(fx, nm, 1);
        if (!b || !dY || !Y || !dX || !dW || !db) { fails++; continue; }
        size_t wsz = cke_gemm_ws_size(M, N, K, 2);
        size_t wb1 = cke_gemm_ws_size(M, K, N, 2), wb2 = cke_gemm_ws_size(N, K, M, 2);
        if (wb1 > wsz) wsz = wb1;
        if (wb2 > wsz) wsz = wb2;
        void *ws = talloc(wsz);
        float *y = tallocf(M * N), *gx = tallocf(M * K), *gw = tallocf(N * K), *gb = tallocf(N);
        cke_linear_fwd(kt, y, X, W, hasb ? b : NULL, M, K, N, ws, 2);
        cke_linear_bwd(kt, gx, gw, hasb ? gb : NULL, dY, X, W, M, K, N, ws, 2);
        char what[96];
        /* float32 result vs float64 torch rounded to f32: fp32 summation error only */
        snprintf(what, sizeof what, "linear torch c%d %s Y", c, kt->name);
        fails += tcheck(what, y, Y, M * N, gemm_tol(K, 1.0f, 1.0f));
        snprintf(what, sizeof what, "linear torch c%d %s dX", c, kt->name);
        fails += tcheck(what, gx, dX, M * K, gemm_tol(N, 1.0f, 0.0f));
        snprintf(what, sizeof what, "linear torch c%d %s dW", c, kt->name);
        fails += tcheck(what, gw, dW, N * K, gemm_tol(M, 1.0f, 0.0f));
        if (hasb) {
            snprintf(what, sizeof what, "linear torch c%d %s db", c, kt->name);
            fails += tcheck(what, gb, db, N, gemm_tol(M, 1.0f, 0.0f));
        }
        free(ws); free(y); free(gx); free(gw); free(gb);
    }
    return fails;
}

const test_op tests_gemm[] = {
    {"gemm", gemm_simd, NULL, NULL},
    {"gemm_bf16", gemm_bf16_simd, NULL, NULL},
    {"round_bf16", round_bf16_simd, NULL, NULL},
    {"linear", linear_simd, linear_grad, linear_torch},
    {0},
};
