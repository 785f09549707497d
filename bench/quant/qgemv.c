/* Quantized decode GEMV micro-benchmark: cke_qlinear_fwd with M=1 per weight format and shape,
 * weight bytes streamed per second against the read bandwidth measured in the same run (same
 * thread count). Weights are replicated over > 512 MB so every call streams from DRAM, like a
 * model's layers do. Not part of the build: compile by hand, e.g.
 *   gcc -O2 -fopenmp -Iinclude -Isrc bench/quant/qgemv.c bench/machine.c build-qp/libckekernels.a -lm -o /tmp/qgemv
 *   /tmp/qgemv [THREADS] [FORMATS...]   (formats by ggml id or name; default q8_0 q4_0 q4_K)
 * QG_SHAPES="NxK,NxK,NxK" replaces the three TinyLlama shapes; QG_HOT=N: N rows, in cache (compute speed). */
#include "../machine.h"
#include "cke/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 88172645463325252ull;
static float frand(void) {
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
}

static const struct { const char *n; int id; } FMT[] = {
    {"q8_0", 8}, {"q4_0", 2}, {"q4_1", 3}, {"q5_0", 6}, {"q5_1", 7}, {"q4_K", 12}, {"q5_K", 13}, {"q6_K", 14}, {"f16", 1}, {"bf16", 30}, {"q8_0r", 40}, {"q4_0r", 41}, {"q4_Kr", 42}, {"q6_Kr", 45}, {"q5_Kr", 47}, {"q4_1r", 48}, {"q5_0r", 49}, {"q5_1r", 50}};

int main(int argc, char **argv) {
    int nth = argc > 1 ? atoi(argv[1]) : 1;
    int ids[16], nf = 0;
    for (int i = 2; i < argc && nf < 16; i++)
        for (size_t f = 0; f < sizeof FMT / sizeof FMT[0]; f++)
            if (!strcmp(argv[i], FMT[f].n)) ids[nf++] = FMT[f].id;
    if (!nf) { ids[0] = 8; ids[1] = 2; ids[2] = 12; nf = 3; }
    const cke_ktable *kt = cke_k();
    int64_t nbw = (int64_t)1 << 28;
    float *bwbuf = cke_hp_alloc((size_t)nbw * sizeof(float));
    double bw = cke_machine_read_bw(bwbuf, nbw, nth, 3);
    int64_t shapes[][2] = {{2048, 2048}, {5632, 2048}, {2048, 5632}}; /* N, K */
    if (getenv("QG_HOT")) shapes[0][0] = shapes[1][0] = shapes[2][0] = atoi(getenv("QG_HOT")) > 1 ? atoi(getenv("QG_HOT")) : 128; /* in L2: compute speed */
    if (getenv("QG_SHAPES")) /* "NxK,NxK,NxK": other shapes (the 110M shape: 768x768,2048x768,768x2048) */
        sscanf(getenv("QG_SHAPES"), "%ldx%ld,%ldx%ld,%ldx%ld", &shapes[0][0], &shapes[0][1], &shapes[1][0], &shapes[1][1],
               &shapes[2][0], &shapes[2][1]);
    printf("isa %s threads %d  read bw %.1f GB/s\n", kt->name, nth, bw);
    for (int f = 0; f < nf; f++) {
        int qt = ids[f];
        const cke_qtype_ops *q = kt->qops[qt];
        double tb = 0, tt = 0;
        for (int s = 0; s < 3; s++) {
            int64_t N = shapes[s][0], K = shapes[s][1];
            size_t rsz = cke_qtype_row_size(qt, K), wsz = rsz * (size_t)N;
            int nc = getenv("QG_HOT") ? 1 : (int)((512u << 20) / wsz) + 1;
            char *W = cke_hp_alloc(wsz * (size_t)nc);
            float *row = malloc((size_t)K * sizeof(float));
            for (int64_t n = 0; n < N; n++) {
                for (int64_t k = 0; k < K; k++) row[k] = frand();
                q->quantize_row(W + (size_t)n * rsz, row, K);
            }
            for (int c = 1; c < nc; c++) memcpy(W + (size_t)c * wsz, W, wsz);
            float *X = malloc((size_t)K * sizeof(float)), *Y = malloc((size_t)N * sizeof(float));
            for (int64_t k = 0; k < K; k++) X[k] = frand();
            size_t wss = cke_qlinear_ws_size(qt, 1, K, N, nth);
            void *ws = malloc(wss);
            for (int c = 0; c < nc; c++) cke_qlinear_fwd(kt, Y, X, W + (size_t)c * wsz, qt, NULL, 1, K, N, ws, nth);
            double best = 1e30;
            for (int rep = 0; rep < (nc == 1 ? (getenv("QG_REPS") ? atoi(getenv("QG_REPS")) : 200) : 5); rep++) {
                double t0 = cke_now();
                for (int c = 0; c < nc; c++) cke_qlinear_fwd(kt, Y, X, W + (size_t)c * wsz, qt, NULL, 1, K, N, ws, nth);
                double t = cke_now() - t0;
                if (t < best) best = t;
            }
            double gbs = (double)wsz * nc / best / 1e9;
            tb += (double)wsz; tt += best / nc;
            printf("  %-5s N %5lld K %5lld  %6.1f MB  %7.1f us  %6.1f GB/s  %5.1f%% of bw\n", q->name, (long long)N,
                   (long long)K, wsz / 1e6, best / nc * 1e6, gbs, 100 * gbs / bw);
            free(ws); free(X); free(Y); free(row); free(W);
        }
        printf("  %-5s layer mix     %6.1f GB/s  %5.1f%% of bw\n", q->name, tb / tt / 1e9, 100 * tb / tt / 1e9 / bw);
    }
    free(bwbuf);
    return 0;
}
