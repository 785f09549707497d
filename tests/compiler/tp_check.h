/* Tensor parallel in one process: the rank models of one compile (cke compile --tp-size N
 * --tp-rank r) run in N threads, their allreduce an in-process sum in rank order, so tests check
 * the compiler's sharding against the whole model without MPI (which the `mpirun cke run` tests
 * add on top). Header-only, like batch_check.h: included by the test programs that use it. */
#ifndef CKE_TESTS_TP_CHECK_H
#define CKE_TESTS_TP_CHECK_H

#include "runtime/runner.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TP_MAX 8

typedef struct tp_group tp_group;
typedef struct {
    tp_group *g;
    int rank;
    cke_runner *r;
    float *tmp; /* this rank's sum, before it is copied out */
    int64_t tmp_n;
    int rc;     /* of this rank's last call */
} tp_rank_ctx;

struct tp_group {
    int n;
    pthread_barrier_t bar;
    const float *in[TP_MAX];
    tp_rank_ctx rk[TP_MAX];
    /* the call every rank makes: prefill (tokens, n) or decode (tokens[0]) */
    const int32_t *tokens;
    int64_t n_tokens;
    int decode;
};

/* out = sum over ranks of in, in rank order (the same bits on every rank); out may be in. */
static int tp_allreduce_local(void *ud, float *out, const float *in, int64_t n) {
    tp_rank_ctx *c = ud;
    tp_group *g = c->g;
    if (c->tmp_n < n) {
        float *t = realloc(c->tmp, (size_t)n * sizeof(float));
        if (!t) return -1; /* the other ranks then wait forever: tests only, and n is small */
        c->tmp = t, c->tmp_n = n;
    }
    g->in[c->rank] = in;
    pthread_barrier_wait(&g->bar);
    for (int64_t i = 0; i < n; i++) {
        float s = g->in[0][i];
        for (int r = 1; r < g->n; r++) s += g->in[r][i];
        c->tmp[i] = s;
    }
    pthread_barrier_wait(&g->bar); /* every rank has read every in[] before any out is written */
    memcpy(out, c->tmp, (size_t)n * sizeof(float));
    return 0;
}

static void *tp_rank_main(void *arg) {
    tp_rank_ctx *c = arg;
    const ckm_api *api = c->r->api;
    c->rc = c->g->decode ? api->decode(c->r->m, c->g->tokens[0]) : api->prefill(c->r->m, c->g->tokens, c->g->n_tokens);
    return NULL;
}

/* Opens the rank directories dirs[0..n) (nthreads each); msg on failure. */
static int tp_open(tp_group *g, const char *const *dirs, int n, int nthreads, char *msg, size_t len) {
    memset(g, 0, sizeof *g);
    if (n < 1 || n > TP_MAX) { snprintf(msg, len, "%d ranks", n); return -1; }
    g->n = n;
    pthread_barrier_init(&g->bar, NULL, (unsigned)n);
    for (int r = 0; r < n; r++) {
        cke_err e = {0};
        g->rk[r] = (tp_rank_ctx){.g = g, .rank = r};
        if (cke_runner_open(dirs[r], nthreads, &g->rk[r].r, &e)) { snprintf(msg, len, "open rank %d: %s", r, e.msg); return -1; }
        const ckm_api *api = g->rk[r].r->api;
        if (api->tp_size != n || api->tp_rank != r) {
            snprintf(msg, len, "%s is rank %d of %d, expected %d of %d", dirs[r], api->tp_rank, api->tp_size, r, n);
            return -1;
        }
        api->set_allreduce(g->rk[r].r->m, tp_allreduce_local, &g->rk[r]);
    }
    return 0;
}

static void tp_close(tp_group *g) {
    for (int r = 0; r < g->n; r++) {
        cke_runner_close(g->rk[r].r);
        free(g->rk[r].tmp);
    }
    if (g->n) pthread_barrier_destroy(&g->bar);
    g->n = 0;
}

/* One call on every rank at once; 0 when all succeeded and all ranks' logits are the same bits. */
static int tp_step(tp_group *g, const int32_t *tokens, int64_t n, int decode, char *msg, size_t len) {
    g->tokens = tokens, g->n_tokens = n, g->decode = decode;
    pthread_t th[TP_MAX];
    for (int r = 0; r < g->n; r++) pthread_create(&th[r], NULL, tp_rank_main, &g->rk[r]);
    for (int r = 0; r < g->n; r++) pthread_join(th[r], NULL);
    const ckm_api *api = g->rk[0].r->api;
    for (int r = 0; r < g->n; r++)
        if (g->rk[r].rc) {
            snprintf(msg, len, "rank %d: %s", r, g->rk[r].r->api->last_error(g->rk[r].r->m));
            return -1;
        }
    for (int r = 1; r < g->n; r++)
        if (memcmp(api->logits(g->rk[0].r->m), g->rk[r].r->api->logits(g->rk[r].r->m), (size_t)api->vocab * sizeof(float))) {
            snprintf(msg, len, "rank %d's logits differ from rank 0's", r);
            return -1;
        }
    return 0;
}

static const float *tp_logits(const tp_group *g) { return g->rk[0].r->api->logits(g->rk[0].r->m); }

#endif
