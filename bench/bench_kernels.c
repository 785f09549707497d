/* bench_kernels: cke kernels against the machine's limits and OpenBLAS, measured in one run.
 *   bench_kernels [--quick]
 * 1. Machine limits (machine.c, shared with `cke bench`): FP32 FMA peak (register-only FMA loop, many independent accumulators) and
 *    memory read bandwidth (1 GiB huge-page-advised buffer, SIMD reads), at 1 and 2 threads.
 * 2. Linear-layer GEMM Y[M,N] = X[M,K] . W[N,K]^T: cke (active ISA) vs OpenBLAS cblas_sgemm
 *    (RowMajor, NoTrans, Trans) at the same thread count; GEMV (M = 1) also as GB/s of W read.
 *    Rows marked NN / TN are the training backward's forms at the 110M model's shapes (1024
 *    tokens): dX = dY . W (NN) and dW = dY^T . X (TN).
 * 3. Memory-bound table kernels (when their slot is non-NULL) as GB/s vs 1-thread bandwidth.
 * 4. Causal attention, forward and backward (T 512, 12 heads x 64: the 110M prefill / training
 *    shape), GFLOPS and % of peak (no peer: OpenBLAS has none).
 * Timing: warmup, then best of N (the box is shared and noisy). CKE_ISA picks the table. */
#define _GNU_SOURCE
#include "cke/kernels.h"
#include "machine.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int num_threads); /* from OpenBLAS (not in every cblas.h) */

static int quick;
static const char *only; /* --only SUBSTR: run the GEMM/GEMV cases whose name contains it */

static double now(void) { return cke_now(); }

/* cke_hp_alloc or exit: a benchmark cannot go on without its buffers. */
static void *hp_alloc(size_t bytes) {
    void *p = cke_hp_alloc(bytes);
    if (!p) { fprintf(stderr, "bench: out of memory (%zu bytes)\n", bytes); exit(2); }
    return p;
}

static void fill(float *x, int64_t n, unsigned seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
}

/* ---- timing: warmup, then best of reps (at least min_reps, about max_s seconds). Two
 * functions are timed interleaved (a, b, a, b, ...) so background load hits both alike. ---- */
typedef void (*run_fn)(void *ctx);
static void best_time2(run_fn fa, void *ca, run_fn fb, void *cb, double max_s, double *ta,
                       double *tb) {
    fa(ca); /* warmup */
    if (fb) fb(cb);
    double start = now();
    int min_reps = quick ? 3 : 7;
    *ta = *tb = 1e30;
    for (int r = 0;; r++) {
        double t0 = now();
        fa(ca);
        double t1 = now();
        if (t1 - t0 < *ta) *ta = t1 - t0;
        if (fb) {
            fb(cb);
            double t2 = now();
            if (t2 - t1 < *tb) *tb = t2 - t1;
        }
        if (r + 1 >= min_reps && now() - start > (quick ? max_s / 4 : max_s)) break;
        if (r > 5000) break;
    }
}
static double best_time(run_fn f, void *ctx, double max_s) {
    double t, u;
    best_time2(f, ctx, NULL, NULL, max_s, &t, &u);
    return t;
}

/* GEMV rotates through ncopy copies of W (>= the bandwidth buffer in all) so every call
 * streams W from DRAM, as decode does, instead of from a large L3. */
typedef struct {
    const cke_ktable *kt;
    float *Y, *X, *W;
    int64_t M, N, K;
    void *ws;
    int nth, ncopy, cur, ta, tb;
} gemm_ctx;

static const float *next_w(gemm_ctx *c) {
    const float *w = c->W + (int64_t)c->cur * c->N * c->K;
    c->cur = (c->cur + 1) % c->ncopy;
    return w;
}
static void run_cke(void *p) {
    gemm_ctx *c = p; /* X [M, K] or (ta) [K, M]; W [N, K] or (!tb) [K, N] */
    c->kt->gemm(c->Y, c->X, next_w(c), c->M, c->N, c->K, c->ta ? c->M : c->K, c->tb ? c->K : c->N, c->N,
                c->ta ? CKE_TRANS : CKE_NOTRANS, c->tb ? CKE_TRANS : CKE_NOTRANS, 1.0f, 0.0f, c->ws, c->nth);
}
static void run_blas(void *p) {
    gemm_ctx *c = p;
    cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans, (int)c->M, (int)c->N,
                (int)c->K, 1.0f, c->X, (int)(c->ta ? c->M : c->K), next_w(c), (int)(c->tb ? c->K : c->N), 0.0f, c->Y, (int)c->N);
}

/* ---- attention ---- */
typedef struct {
    const cke_ktable *kt;
    float *q, *k, *v, *o, *lse, *dq, *dk, *dv;
    cke_attn_shape s;
    void *ws;
    int nth, bwd;
} attn_ctx;
static void run_attn(void *p) {
    attn_ctx *c = p;
    if (c->bwd) c->kt->attn_bwd(c->dq, c->dk, c->dv, c->o, c->q, c->k, c->v, c->o, c->lse, &c->s, c->ws, c->nth);
    else c->kt->attn_fwd(c->o, c->lse, c->q, c->k, c->v, &c->s, c->ws, c->nth);
}

/* ---- memory-bound table kernels ---- */
typedef struct {
    const cke_ktable *kt;
    float *out, *a, *b, *w, *cs, *rstd;
    int32_t *pos;
    int64_t T, D;
    int which;
} mb_ctx;

static void run_mb(void *p) {
    mb_ctx *c = p;
    int64_t n = c->T * c->D;
    switch (c->which) {
    case 0: c->kt->rmsnorm_fwd(c->out, c->rstd, c->a, c->w, c->T, c->D, 1e-5f, 0.0f); break;
    case 1: c->kt->softmax_fwd(c->out, c->a, c->T, c->D, -1); break;
    case 2: c->kt->rope_fwd(c->out, c->a, c->cs, c->pos, c->T, c->D / 128, 128, 128, CKE_ROPE_HALVES); break;
    case 3: c->kt->silu_fwd(c->out, c->a, n); break;
    case 4: c->kt->swiglu_fwd(c->out, c->a, c->b, n); break;
    default: break;
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else { fprintf(stderr, "usage: %s [--quick] [--only SUBSTR]\n", argv[0]); return 2; }
    }
    cke_kernels_init();
    const cke_ktable *kt = cke_k();
    int avx512 = cke_machine_avx512();
    enum { NTH = 2 };
    printf("cke bench_kernels: isa %s%s\n", cke_isa_name(cke_isa_active()), quick ? " (quick)" : "");

    /* 1. machine limits, measured before and after the kernels; the best of both is used (the
     * box is shared: a neighbour's burst during one pass must not deflate the limits) */
    double peak[NTH + 1] = {0}, bw[NTH + 1] = {0};
    int64_t nbw = (quick ? ((int64_t)256 << 20) : ((int64_t)1 << 30)) / 4;
    float *bwbuf = hp_alloc((size_t)nbw * 4);
    fill(bwbuf, nbw, 1);
    cke_machine_measure(peak, bw, NTH, bwbuf, nbw, quick);
    printf("(measuring; the table is printed at the end)\n");
    fflush(stdout);

    /* 2. GEMV and GEMM */
    static const struct { int64_t M, K, N; int ta, tb; } cases[] = {
        {1, 4096, 4096, 0, 1}, {1, 2048, 5632, 0, 1}, {1, 768, 2048, 0, 1}, {1, 288, 32000, 0, 1}, {128, 2048, 2048, 0, 1},
        {128, 2048, 5632, 0, 1}, {128, 768, 768, 0, 1}, {512, 2048, 2048, 0, 1}, {512, 2048, 5632, 0, 1}, {512, 768, 768, 0, 1},
        {1024, 768, 2048, 0, 1}, {1024, 2048, 768, 0, 0}, {2048, 1024, 768, 1, 0}, {1024, 768, 32000, 0, 1},
    };
    struct { char name[40]; int t, gemv; double gc, gb, gbs, md; } rows[64];
    int nrows = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int64_t M = cases[ci].M, K = cases[ci].K, N = cases[ci].N;
        char name[40];
        snprintf(name, sizeof name, "%s %lldx%lld->%lld%s", M == 1 ? "gemv" : "gemm", (long long)M,
                 (long long)K, (long long)N, cases[ci].tb ? "" : cases[ci].ta ? " TN" : " NN");
        if (only && !strstr(name, only)) continue;
        int ncopy = M == 1 ? (int)((nbw + N * K - 1) / (N * K)) : 1;
        float *X = hp_alloc((size_t)(M * K) * 4), *W = hp_alloc((size_t)(N * K) * 4 * (size_t)ncopy);
        float *Y = hp_alloc((size_t)(M * N) * 4), *Yb = hp_alloc((size_t)(M * N) * 4);
        fill(X, M * K, 2);
        fill(W, N * K, 3);
        for (int cp = 1; cp < ncopy; cp++) memcpy(W + cp * N * K, W, (size_t)(N * K) * 4);
        void *ws = hp_alloc(cke_gemm_ws_size(M, N, K, NTH));
        for (int t = 1; t <= NTH; t++) {
            gemm_ctx c = {kt, Y, X, W, M, N, K, ws, t, ncopy, 0, cases[ci].ta, cases[ci].tb}, cb = c;
            cb.Y = Yb;
            openblas_set_num_threads(t);
            double tc, tb;
            best_time2(run_cke, &c, run_blas, &cb, 2.0, &tc, &tb);
            double fl = 2.0 * (double)M * (double)N * (double)K;
            double gc = fl / tc * 1e-9, gb = fl / tb * 1e-9;
            /* both computed from copy 0's values (copies are equal) */
            double md = 0;
            for (int64_t i = 0; i < M * N; i++) md = fmax(md, fabs((double)Y[i] - (double)Yb[i]));
            memcpy(rows[nrows].name, name, sizeof name);
            rows[nrows].t = t;
            rows[nrows].gemv = M == 1;
            rows[nrows].gc = gc;
            rows[nrows].gb = gb;
            rows[nrows].gbs = (double)(N * K + K + N) * 4 / tc * 1e-9;
            rows[nrows].md = md;
            nrows++;
        }
        free(X); free(W); free(Y); free(Yb); free(ws);
    }

    struct { const char *name; double gbs, us; int skip; } mrows[5];
    int nm = 0;
    if (!only) {
    /* 3. memory-bound kernels, one thread (they take no nth) */
    int64_t T = 512, D = 4096, n = T * D;
    mb_ctx m = {kt, hp_alloc((size_t)n * 4), hp_alloc((size_t)n * 4), hp_alloc((size_t)n * 4),
                hp_alloc((size_t)D * 4), NULL, hp_alloc((size_t)T * 4), NULL, T, D, 0};
    fill(m.a, n, 4);
    fill(m.b, n, 5);
    fill(m.w, D, 6);
    m.cs = hp_alloc((size_t)T * 64 * 2 * 4);
    {
        float freq[64];
        cke_rope_freqs(freq, 128, 10000.0);
        cke_rope_table(m.cs, freq, T, 128);
    }
    m.pos = hp_alloc((size_t)T * 4);
    for (int64_t i = 0; i < T; i++) m.pos[i] = (int32_t)i;
    static const char *mbn[5] = {"rmsnorm_fwd", "softmax_fwd", "rope_fwd", "silu_fwd", "swiglu_fwd"};
    const void *slot[5] = {(const void *)kt->rmsnorm_fwd, (const void *)kt->softmax_fwd,
                           (const void *)kt->rope_fwd, (const void *)kt->silu_fwd,
                           (const void *)kt->swiglu_fwd};
    static const double tensors[5] = {2, 2, 2, 2, 3};
    for (int k = 0; k < 5; k++) {
        mrows[nm].name = mbn[k];
        mrows[nm].skip = !slot[k];
        if (slot[k]) {
            m.which = k;
            double t = best_time(run_mb, &m, 0.5);
            mrows[nm].gbs = tensors[k] * (double)n * 4 / t * 1e-9;
            mrows[nm].us = t * 1e6;
        }
        nm++;
    }
    free(m.out); free(m.a); free(m.b); free(m.w); free(m.rstd); free(m.cs); free(m.pos);
    }

    /* 4. attention */
    struct { int bwd, t; double gf; } arows[4];
    int na = 0;
    if (!only || strstr("attention", only)) {
        attn_ctx a = {.kt = kt, .s = {512, 512, 12, 12, 64, 0.125f, 0, 0.0f}};
        const int64_t n = a.s.T * a.s.n_head * a.s.head_dim;
        float **bufs[] = {&a.q, &a.k, &a.v, &a.o, &a.dq, &a.dk, &a.dv};
        for (int i = 0; i < 7; i++) { *bufs[i] = hp_alloc((size_t)n * 4); fill(*bufs[i], n, 10 + (unsigned)i); }
        a.lse = hp_alloc((size_t)(a.s.n_head * a.s.T) * 4);
        size_t wsz = cke_attn_ws_size(&a.s, NTH), wb = cke_attn_bwd_ws_size(&a.s, NTH);
        a.ws = hp_alloc(wsz > wb ? wsz : wb);
        /* causal: T (T + 1) / 2 (query, key) pairs, 2 hd FLOPs each for q.k and for p.v;
         * the backward's 5 products (dv, dp, ds.k, ds^T.q and the recomputed q.k) count 2.5x */
        const double fl = 4.0 * (double)a.s.n_head * (double)a.s.head_dim * (double)a.s.T * (double)(a.s.T + 1) / 2;
        for (int bwd = 0; bwd <= 1; bwd++)
            for (int t = 1; t <= NTH; t++) {
                a.nth = t;
                a.bwd = bwd;
                run_attn(&a); /* the forward's out and lse feed the backward */
                arows[na].bwd = bwd, arows[na].t = t;
                arows[na++].gf = (bwd ? 2.5 : 1.0) * fl / best_time(run_attn, &a, 1.0) * 1e-9;
            }
        for (int i = 0; i < 7; i++) free(*bufs[i]);
        free(a.lse); free(a.ws);
    }

    cke_machine_measure(peak, bw, NTH, bwbuf, nbw, quick);
    free(bwbuf);
    for (int t = 1; t <= NTH; t++)
        printf("machine, %d thread%s: FP32 FMA peak %.1f GFLOPS (%s), memory read %.1f GB/s (%lld MiB, "
               "huge pages advised); best of a pass before and after\n",
               t, t > 1 ? "s" : " ", peak[t], avx512 ? "zmm" : "ymm", bw[t], (long long)(nbw * 4 >> 20));
    printf("\nY[M,N] = X[M,K] . W[N,K]^T (fp32); best-of-N, cke and OpenBLAS interleaved; OpenBLAS: "
           "cblas_sgemm RowMajor NoTrans,Trans\nGEMV cycles through copies of W totalling >= %lld MiB "
           "(cold W each call, as in decode)\n",
           (long long)(nbw * 4 >> 20));
    printf("%-22s %3s %10s %10s %8s %8s %8s %8s %9s\n", "case (M x K->N)", "thr", "cke GF/s", "OBLAS GF/s",
           "cke/OB", "%peak", "cke GB/s", "%bw", "max|d|");
    for (int i = 0; i < nrows; i++) {
        int t = rows[i].t;
        if (rows[i].gemv)
            printf("%-22s %3d %10.1f %10.1f %8.2f %7.1f%% %8.1f %7.1f%% %9.2g\n", rows[i].name, t,
                   rows[i].gc, rows[i].gb, rows[i].gc / rows[i].gb, 100 * rows[i].gc / peak[t],
                   rows[i].gbs, 100 * rows[i].gbs / bw[t], rows[i].md);
        else
            printf("%-22s %3d %10.1f %10.1f %8.2f %7.1f%% %8s %8s %9.2g\n", rows[i].name, t, rows[i].gc,
                   rows[i].gb, rows[i].gc / rows[i].gb, 100 * rows[i].gc / peak[t], "", "", rows[i].md);
    }
    if (nm) {
        printf("\nmemory-bound kernels, %dx%d fp32 (8 MiB per tensor: may sit in the 32 MiB L3, so\n"
               "fractions of DRAM bandwidth can exceed 100%%), 1 thread, bytes = tensors read + written\n",
               512, 4096);
        printf("%-14s %10s %8s %10s\n", "kernel", "GB/s", "%bw(1t)", "us");
    }
    for (int i = 0; i < nm; i++) {
        if (mrows[i].skip) printf("%-14s %10s\n", mrows[i].name, "(NULL slot, skipped)");
        else printf("%-14s %10.1f %7.1f%% %10.1f\n", mrows[i].name, mrows[i].gbs, 100 * mrows[i].gbs / bw[1], mrows[i].us);
    }
    if (na) printf("\ncausal attention, T 512, 12 heads x 64 (f32)\n%-14s %3s %10s %8s\n", "kernel", "thr", "GF/s", "%peak");
    for (int i = 0; i < na; i++)
        printf("%-14s %3d %10.1f %7.1f%%\n", arows[i].bwd ? "attn_bwd" : "attn_fwd", arows[i].t, arows[i].gf, 100 * arows[i].gf / peak[arows[i].t]);
    return 0;
}
