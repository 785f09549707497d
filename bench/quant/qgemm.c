/* Quantized GEMM micro-benchmark (prefill, decode_batch): cke_qlinear_fwd with M rows of a
 * repacked format against the previous driver (dot_rows 1 x 4, weight row outer, all M rows
 * inner) in the same process, same weights, same thread count; both results compared bit for
 * bit (the K formats' column panels, M >= CKE_QPANEL_MIN_M: the largest difference). Rates in GOPS (2 M N K / s) next to the vpdpbusd peak measured in the same run. Weights
 * hot in cache (N x K small enough for L2/L3): a compute-speed comparison. Not part of the
 * build: compile by hand, e.g.
 *   gcc -O2 -fopenmp -Iinclude -Isrc bench/quant/qgemm.c bench/machine.c build/libckekernels.a -lm -o /tmp/qgemm
 *   /tmp/qgemm [THREADS] [FORMATS...]   (default q4_0r q8_0r q4_Kr q6_Kr); QG_M="2 4 8 256", QG_K, QG_N
 * -DQG_OLD: the old side runs another build's kernels, compiled under the suffix avx512old (a
 * file defining QS_SFX avx512old, QS_VNNI 1 and including that build's quant_simd.h and
 * quant_r_simd.h, linked in): a before / after comparison in one process. */
#include "../machine.h"
#include "cke/kernels.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 88172645463325252ull;
static float frand(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
}
static const struct { const char *n; int id; } FMT[] = {
    {"q8_0r", 40}, {"q4_0r", 41}, {"q4_Kr", 42}, {"q6_Kr", 45}, {"q5_Kr", 47}, {"q4_1r", 48}, {"q5_0r", 49}, {"q5_1r", 50}};

#ifdef QG_OLD
extern const cke_qtype_ops cke_qops_q8_0r_avx512old, cke_qops_q4_0r_avx512old, cke_qops_q4_Kr_avx512old,
    cke_qops_q6_Kr_avx512old, cke_qops_q5_Kr_avx512old, cke_qops_q4_1r_avx512old, cke_qops_q5_0r_avx512old,
    cke_qops_q5_1r_avx512old;
static const cke_qtype_ops *old_ops(const cke_ktable *kt, int id) {
    (void)kt;
    switch (id) {
    case 40: return &cke_qops_q8_0r_avx512old;
    case 41: return &cke_qops_q4_0r_avx512old;
    case 42: return &cke_qops_q4_Kr_avx512old;
    case 45: return &cke_qops_q6_Kr_avx512old;
    case 47: return &cke_qops_q5_Kr_avx512old;
    case 48: return &cke_qops_q4_1r_avx512old;
    case 49: return &cke_qops_q5_0r_avx512old;
    default: return &cke_qops_q5_1r_avx512old;
    }
}
#else
static const cke_qtype_ops *old_ops(const cke_ktable *kt, int id) { return kt->qops[id]; }
#endif

/* the driver before register tiles: per weight row, dot_rows over the M rows 4 at a time */
static void old_fwd(const cke_ktable *kt, float *Y, const float *X, const char *W, int qt, int64_t M, int64_t K, int64_t N, char *A, int nth) {
    const cke_qtype_ops *q = old_ops(kt, qt), *aq = kt->qops[q->vec_dot_type];
    const size_t rsz = cke_qtype_row_size(qt, K), as = (size_t)(K / aq->blck) * (size_t)aq->type_size;
    for (int64_t m = 0; m < M; m++) aq->quantize_row(A + (size_t)m * as, X + m * K, K);
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int64_t n = N * t / nt; n < N * (t + 1) / nt; n++)
            for (int64_t m = 0; m < M; m += 4)
                q->dot_rows(Y + m * N + n, N, W + (size_t)n * rsz, A + (size_t)m * as, as, M - m < 4 ? (int)(M - m) : 4, K);
    }
}

int main(int argc, char **argv) {
    int nth = argc > 1 ? atoi(argv[1]) : 1;
    int ids[16], nf = 0;
    for (int i = 2; i < argc && nf < 16; i++)
        for (size_t f = 0; f < sizeof FMT / sizeof FMT[0]; f++)
            if (!strcmp(argv[i], FMT[f].n)) ids[nf++] = FMT[f].id;
    if (!nf) { ids[0] = 41; ids[1] = 40; ids[2] = 42; ids[3] = 45; nf = 4; }
    int64_t Ms[16] = {2, 4, 8, 256};
    int nm = 4;
    if (getenv("QG_M")) {
        nm = 0;
        for (char *s = getenv("QG_M"), *e; nm < 16; s = e) {
            long v = strtol(s, &e, 10);
            if (e == s) break;
            Ms[nm++] = v;
        }
    }
    const int64_t K = getenv("QG_K") ? atoi(getenv("QG_K")) : 2048, N = getenv("QG_N") ? atoi(getenv("QG_N")) : 512;
    const cke_ktable *kt = cke_k();
    const double peak = cke_machine_peak_int8(nth, 10000000, 3);
    printf("isa %s threads %d  K %lld N %lld  int8 peak %.0f GOPS\n", kt->name, nth, (long long)K, (long long)N, peak);
    for (int f = 0; f < nf; f++) {
        const int qt = ids[f];
        const cke_qtype_ops *q = kt->qops[qt];
        const size_t rsz = cke_qtype_row_size(qt, K);
        char *W = malloc(rsz * (size_t)N);
        float *row = malloc((size_t)K * sizeof(float));
        for (int64_t n = 0; n < N; n++) {
            for (int64_t k = 0; k < K; k++) row[k] = frand();
            q->quantize_row(W + (size_t)n * rsz, row, K);
        }
        for (int im = 0; im < nm; im++) {
            const int64_t M = Ms[im];
            float *X = malloc((size_t)(M * K) * sizeof(float)), *Y0 = malloc((size_t)(M * N) * sizeof(float)), *Y1 = malloc((size_t)(M * N) * sizeof(float));
            for (int64_t i = 0; i < M * K; i++) X[i] = frand();
            void *ws = malloc(cke_qlinear_ws_size(qt, M, K, N, nth));
            const int reps = (int)(2e9 / (2.0 * M * N * K)) + 3;
            double best[2] = {1e30, 1e30};
            for (int rnd = 0; rnd < 3; rnd++) /* interleaved: a neighbour's burst hits both */
                for (int v = 0; v < 2; v++) {
                    double t0 = cke_now();
                    for (int r = 0; r < reps; r++)
                        if (v) cke_qlinear_fwd(kt, Y1, X, W, qt, NULL, M, K, N, ws, nth);
                        else old_fwd(kt, Y0, X, W, qt, M, K, N, ws, nth);
                    double t = (cke_now() - t0) / reps;
                    if (t < best[v]) best[v] = t;
                }
            /* the K formats' column panels (M >= CKE_QPANEL_MIN_M) sum in another order than the
             * row tiles: their largest difference relative to the output's scale */
            double dmax = 0, ymax = 0;
            for (int64_t i = 0; i < M * N; i++) {
                if (fabs(Y0[i] - Y1[i]) > dmax) dmax = fabs(Y0[i] - Y1[i]);
                if (fabs(Y0[i]) > ymax) ymax = fabs(Y0[i]);
            }
            char same[40];
            if (dmax == 0) snprintf(same, sizeof same, "equal");
            else snprintf(same, sizeof same, "max diff %.1e of max |y|", ymax > 0 ? dmax / ymax : dmax);
            const double ops = 2.0 * M * N * K;
            printf("  %-5s M %4lld  old %8.1f us %6.1f GOPS (%4.1f%%)  new %8.1f us %6.1f GOPS (%4.1f%%)  new/old speed %.2fx  %s\n",
                   q->name, (long long)M, best[0] * 1e6, ops / best[0] / 1e9, 100 * ops / best[0] / 1e9 / peak, best[1] * 1e6,
                   ops / best[1] / 1e9, 100 * ops / best[1] / 1e9 / peak, best[0] / best[1], same);
            free(ws); free(X); free(Y0); free(Y1);
        }
        free(W); free(row);
    }
    return 0;
}
