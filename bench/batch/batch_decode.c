/* Aggregate decode speed of continuous batching (ABI 5, decode_batch) against single-sequence
 * decode, on one compiled model directory. Not a test: numbers only.
 *
 *   batch_decode DIR [THREADS] [STEPS] [ROWS...]   (defaults: 1 thread, 32 steps, rows 1 2 4 8)
 *   batch_decode --check DIR TOL   the equivalence check of tests/compiler/batch_check.h on any
 *                                  compiled model (tests/cli/t_batch.sh: quantized formats)
 *
 * Single: prefill a 16-token prompt, then STEPS decode() calls: tokens/s. Batched with n rows: n
 * sequences with different 16-token prompts in n KV slots, then STEPS decode_batch calls of n
 * rows: n x STEPS tokens / time. Each row's next token is the greedy one of its logits, so the
 * sequences really diverge; timing covers the decode steps only. The speedup column is the
 * aggregate tokens/s over the single-sequence rate measured in the same run, on the same instance.
 * Every number is the best of REPEAT (default 3) runs, interleaved over the configurations, so
 * that a burst of other load on a shared machine does not decide a ratio. */
#define _POSIX_C_SOURCE 200809L
#include "runtime/runner.h"

#include "../../tests/compiler/batch_check.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PROMPT = 16, MAX_ROWS = 64 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int32_t argmax(const float *x, int64_t n) {
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

static void prompt_of(int32_t *p, int seq, int64_t V) {
    for (int j = 0; j < PROMPT; j++) p[j] = (int32_t)(1 + (seq * 7919 + j * 104729) % (V - 1));
}

/* tokens/s of single-sequence decode */
static double single(const ckm_api *api, ckm_model *m, int steps) {
    int32_t p[PROMPT];
    prompt_of(p, 0, api->vocab);
    api->reset(m);
    if (api->prefill(m, p, PROMPT)) return -1;
    int32_t t = argmax(api->logits(m), api->vocab);
    double t0 = now();
    for (int s = 0; s < steps; s++) {
        if (api->decode(m, t)) return -1;
        t = argmax(api->logits(m), api->vocab);
    }
    return steps / (now() - t0);
}

/* aggregate tokens/s of decode_batch over n rows */
static double batched(const ckm_api *api, ckm_model *m, int n, int steps, float *logits) {
    int32_t p[PROMPT], tok[MAX_ROWS], slot[MAX_ROWS];
    const int64_t V = api->vocab;
    for (int i = 0; i < n; i++) {
        prompt_of(p, i, V);
        slot[i] = i;
        if (api->slot_reset(m, i) || api->slot_prefill(m, i, p, PROMPT)) return -1;
        tok[i] = argmax(api->logits(m), V);
    }
    for (int s = 0; s < 2; s++) { /* warm: the slots' first KV pages, the batch arena */
        if (api->decode_batch(m, n, tok, slot, logits)) return -1;
        for (int i = 0; i < n; i++) tok[i] = argmax(logits + (size_t)i * (size_t)V, V);
    }
    double t0 = now();
    for (int s = 0; s < steps; s++) {
        if (api->decode_batch(m, n, tok, slot, logits)) return -1;
        for (int i = 0; i < n; i++) tok[i] = argmax(logits + (size_t)i * (size_t)V, V);
    }
    return (double)n * steps / (now() - t0);
}

static int check(const char *dir, double tol) {
    cke_err e = {0};
    cke_runner *r = NULL;
    if (cke_runner_open(dir, 2, &r, &e)) { fprintf(stderr, "batch_decode: %s\n", e.msg); return 1; }
    char wpath[PATH_MAX], msg[1024];
    snprintf(wpath, sizeof wpath, "%s/weights.bin", dir);
    int ok = batch_check(r->api, wpath, 2, tol, msg, sizeof msg);
    printf("%s: %s\n", ok ? "ok" : "FAILED", msg);
    cke_runner_close(r);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--check")) return check(argv[2], atof(argv[3]));
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: batch_decode DIR [THREADS] [STEPS] [ROWS...] | --check DIR TOL\n");
        return argc < 2 ? 2 : 0;
    }
    int nth = argc > 2 ? atoi(argv[2]) : 1, steps = argc > 3 ? atoi(argv[3]) : 32;
    int rows[MAX_ROWS], nr = 0;
    for (int i = 4; i < argc && nr < MAX_ROWS; i++) rows[nr++] = atoi(argv[i]);
    if (!nr) rows[0] = 1, rows[1] = 2, rows[2] = 4, rows[3] = 8, nr = 4;
    int max_rows = 1;
    for (int i = 0; i < nr; i++) {
        if (rows[i] < 1 || rows[i] > MAX_ROWS) { fprintf(stderr, "batch_decode: rows must be 1..%d\n", MAX_ROWS); return 2; }
        if (rows[i] > max_rows) max_rows = rows[i];
    }
    if (nth < 1 || steps < 1) { fprintf(stderr, "batch_decode: threads and steps must be >= 1\n"); return 2; }
    cke_err e = {0};
    cke_runner *r = NULL;
    if (cke_runner_open(argv[1], nth, &r, &e)) { fprintf(stderr, "batch_decode: %s\n", e.msg); return 1; }
    const ckm_api *api = r->api;
    if (api->ctx < PROMPT + steps + 3) { fprintf(stderr, "batch_decode: context %lld too short\n", (long long)api->ctx); return 1; }
    char wpath[PATH_MAX], err[256];
    snprintf(wpath, sizeof wpath, "%s/weights.bin", argv[1]);
    ckm_model *m = api->open_slots(wpath, nth, max_rows, err, sizeof err);
    float *logits = malloc((size_t)max_rows * (size_t)api->vocab * sizeof(float));
    if (!m || !logits) { fprintf(stderr, "batch_decode: %s\n", m ? "out of memory" : err); return 1; }
    single(api, m, 2); /* warm: page the weights in; the same instance as the batches */
    const char *rv = getenv("REPEAT");
    int rep = rv && atoi(rv) > 0 ? atoi(rv) : 3;
    double s1 = 0, best[MAX_ROWS] = {0};
    for (int k = 0; k < rep; k++) {
        double x = single(api, m, steps);
        if (x < 0) { fprintf(stderr, "batch_decode: %s\n", api->last_error(m)); return 1; }
        if (x > s1) s1 = x;
        for (int i = 0; i < nr; i++) {
            double b = batched(api, m, rows[i], steps, logits);
            if (b < 0) { fprintf(stderr, "batch_decode: %s\n", api->last_error(m)); return 1; }
            if (b > best[i]) best[i] = b;
        }
    }
    printf("%s, %d thread%s, %d steps, best of %d (decode_batch runs up to %lld rows per forward)\n", argv[1], nth,
           nth > 1 ? "s" : "", steps, rep, (long long)api->batch_rows);
    printf("  %-22s %10.2f tok/s\n", "decode (1 sequence)", s1);
    for (int i = 0; i < nr; i++) {
        double b = best[i];
        char lab[32];
        snprintf(lab, sizeof lab, "decode_batch %d row%s", rows[i], rows[i] > 1 ? "s" : "");
        printf("  %-22s %10.2f tok/s aggregate  %5.2fx decode\n", lab, b, b / s1);
    }
    api->free(m);
    free(logits);
    cke_runner_close(r);
    return 0;
}
