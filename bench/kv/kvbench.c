/* Decode speed of two compiled directories side by side in one process (e.g. the same model
 * compiled with --kv-type f32 and f16): both prefilled to DEPTH tokens, then decode steps
 * alternate A, B, A, B ... (each step timed; who goes first alternates too), so a shared
 * machine's load falls on both alike; median and best tokens/s per model and their ratio, and
 * the two logits after the prompt. Not a test: numbers only (docs/PERFORMANCE.md).
 *   build: cc -O2 -fopenmp -Iinclude -Isrc bench/kv/kvbench.c -o build/kvbench build/libcke.a \
 *          build/libckekernels.a -lcjson -lpcre2-8 -ldl -lutf8proc -lm
 *   run:   build/kvbench DIR_A DIR_B THREADS DEPTH STEPS   (DEPTH + STEPS <= the compiled ctx)
 *   model: build/bench_quant make-model M.gguf 768 2048 12 12 12 32000 TOKSRC.gguf  (110M shape),
 *          cke quantize M.gguf Q.gguf Q4_0, cke compile Q.gguf -o A --ctx 4096 --kv-type f32 ... */
#define _POSIX_C_SOURCE 200809L
#include "runtime/runner.h"
#include "cke/model_abi.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: kvbench DIR_A DIR_B THREADS DEPTH STEPS\n"); return 2; }
    int nth = atoi(argv[3]), depth = atoi(argv[4]), steps = atoi(argv[5]);
    cke_runner *r[2];
    cke_err e = {0};
    for (int k = 0; k < 2; k++)
        if (cke_runner_open(argv[1 + k], nth, &r[k], &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(depth + steps));
    for (int i = 0; i < depth + steps; i++) tok[i] = 1 + (i * 7919) % 31999;
    for (int k = 0; k < 2; k++) {
        double t0 = now();
        if (r[k]->api->prefill(r[k]->m, tok, depth)) { fprintf(stderr, "prefill failed\n"); return 1; }
        fprintf(stderr, "%s: prefill %d in %.2f s\n", argv[1 + k], depth, now() - t0);
    }
    { /* the two caches' logits after the same prompt */
        const float *a = r[0]->api->logits(r[0]->m), *b = r[1]->api->logits(r[1]->m);
        double w = 0, amax = 0;
        for (int64_t i = 0; i < r[0]->api->vocab; i++) {
            double d = a[i] - b[i]; if (d < 0) d = -d; if (d > w) w = d;
            double x = a[i] < 0 ? -a[i] : a[i]; if (x > amax) amax = x;
        }
        if (getenv("DUMP")) { FILE *f = fopen(getenv("DUMP"), "wb"); fwrite(a, 4, (size_t)r[0]->api->vocab, f); fclose(f); }
        printf("after prefill: max |logit A - logit B| %.3g (max |logit A| %.3g)\n", w, amax);
    }
    double *t[2] = {malloc(sizeof(double) * steps), malloc(sizeof(double) * steps)};
    for (int i = 0; i < steps; i++)
        for (int k = 0; k < 2; k++) {
            int kk = (i & 1) ? 1 - k : k; /* alternate who goes first */
            double t0 = now();
            r[kk]->api->decode(r[kk]->m, tok[depth + i]);
            t[kk][i] = now() - t0;
        }
    double med[2];
    for (int k = 0; k < 2; k++) {
        qsort(t[k], (size_t)steps, sizeof(double), cmpd);
        med[k] = t[k][steps / 2];
        printf("%-24s depth %5d threads %d: decode median %7.2f tok/s, best %7.2f tok/s\n", argv[1 + k], depth, nth,
               1 / med[k], 1 / t[k][0]);
    }
    printf("ratio B/A (tok/s, median): %.3f  (best: %.3f)\n", med[0] / med[1], t[0][0] / t[1][0]);
    return 0;
}
