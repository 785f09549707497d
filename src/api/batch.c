/* Continuous batching: the sessions of a batch_slots engine share one model instance with a KV
 * slot each. A session that needs its next token's logits hands the token in as a row and waits;
 * when every session generating has handed one in, the last one starts the step (one
 * decode_batch over all rows) and wakes the rest. Prefills (prompts, in chunks) take the
 * instance between steps. The per-token work (sampling, stop strings, the callback) stays in each
 * session's own cke_session_generate on its own thread.
 * The model calls themselves run on one executor thread: the instance's OpenMP team is then the
 * process's only one. When each session's thread ran the steps it started, every such thread
 * grew a team of its own; with more OpenMP threads than cores libgomp stops spinning between
 * parallel regions and sleeps in the kernel instead, which measured 4-5x slower per token
 * (SmolLM2, 2 cores: 18 ms instead of 4). */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A step waits this long for the rows of sessions still busy in their callback (a stream whose
 * reader is slow blocks there); then it runs without them, and they are not waited for again
 * until they hand a row in. One slow client cannot stall the others. */
#define LAG_WAIT_S 0.02

/* One call into the instance: 1 prefill, 2 truncate, 3 reset, 4 step (decode_batch over the rows
 * in b->tok / b->slot). */
static int model_call(cke_batch *b, int kind, int slot, const int32_t *tok, int64_t n) {
    if (kind == 1) return b->api->slot_prefill(b->m, slot, tok, n);
    if (kind == 2) return b->api->slot_truncate(b->m, slot, n);
    if (kind == 3) return b->api->slot_reset(b->m, slot), 0;
    return b->api->decode_batch(b->m, (int)n, b->tok, b->slot, b->logits);
}

/* Tensor parallel: what rank 0 announces before each call (kind 0: the engine closes). The
 * tokens follow (prefill: n; step: n tokens then n slots). */
typedef struct {
    int32_t kind, slot;
    int64_t n;
} tp_call;

static int announce(cke_batch *b, int kind, int slot, const int32_t *tok, int64_t n) {
    tp_call c = {kind, slot, n};
    if (b->tp_bcast(b->tp_ud, &c, sizeof c)) return -1;
    if (kind == 1 && b->tp_bcast(b->tp_ud, (void *)tok, (size_t)n * sizeof *tok)) return -1;
    if (kind == 4 && (b->tp_bcast(b->tp_ud, b->tok, (size_t)n * sizeof *b->tok) ||
                      b->tp_bcast(b->tp_ud, b->slot, (size_t)n * sizeof *b->slot)))
        return -1;
    return 0;
}

cke_status cke_batch_follow(cke_batch *b, cke_err *err) {
    int32_t *tok = NULL;
    int64_t cap = 0;
    for (;;) {
        tp_call c;
        if (b->tp_bcast(b->tp_ud, &c, sizeof c)) { free(tok); return cke_fail(err, CKE_ERR_IO, "rank 0's next call did not arrive"); }
        if (c.kind == 0) break;
        const int bad_n = c.kind == 4 ? c.n < 1 || c.n > b->n_slots : c.n < 0 || c.n > ((int64_t)1 << 30);
        if (c.kind < 0 || c.kind > 4 || bad_n) { free(tok); return cke_fail(err, CKE_ERR_FORMAT, "rank 0 announced call %d of %lld rows", c.kind, (long long)c.n); }
        if (c.kind == 1 && c.n > cap) {
            int32_t *t = realloc(tok, (size_t)c.n * sizeof *t);
            if (!t) { free(tok); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
            tok = t, cap = c.n;
        }
        if ((c.kind == 1 && b->tp_bcast(b->tp_ud, tok, (size_t)c.n * sizeof *tok)) ||
            (c.kind == 4 && (b->tp_bcast(b->tp_ud, b->tok, (size_t)c.n * sizeof *b->tok) ||
                             b->tp_bcast(b->tp_ud, b->slot, (size_t)c.n * sizeof *b->slot)))) {
            free(tok);
            return cke_fail(err, CKE_ERR_IO, "rank 0's call did not arrive whole");
        }
        /* a call rank 0 refused (a full slot ...) is refused here too, before any collective */
        model_call(b, c.kind, c.slot, tok, c.n);
    }
    free(tok);
    return CKE_OK;
}

/* The executor thread: runs each job handed in through exec_call, one at a time. */
static void *executor(void *arg) {
    cke_batch *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->job.pending && !b->exec_stop) pthread_cond_wait(&b->exec_cv, &b->mu);
        if (b->exec_stop) break;
        const int kind = b->job.kind, slot = b->job.slot;
        const int32_t *tok = b->job.tok;
        const int64_t n = b->job.n;
        pthread_mutex_unlock(&b->mu);
        int rc = b->tp_leader && announce(b, kind, slot, tok, n) ? -1 : model_call(b, kind, slot, tok, n);
        pthread_mutex_lock(&b->mu);
        b->job.rc = rc;
        b->job.pending = 0;
        pthread_cond_broadcast(&b->exec_cv);
    }
    pthread_mutex_unlock(&b->mu);
    if (b->tp_leader) announce(b, 0, 0, NULL, 0); /* the other ranks' follow loops end */
    return NULL;
}

/* A model call on the executor, from the thread that holds the instance (busy); b->mu held on
 * entry and exit. */
static int exec_call(cke_batch *b, int kind, int slot, const int32_t *tok, int64_t n) {
    b->job.kind = kind, b->job.slot = slot, b->job.tok = tok, b->job.n = n;
    b->job.pending = 1;
    pthread_cond_broadcast(&b->exec_cv);
    while (b->job.pending) pthread_cond_wait(&b->exec_cv, &b->mu);
    return b->job.rc;
}

cke_status cke_batch_open(cke_batch *b, const ckm_api *api, const char *weights, int threads, int n_slots, cke_err *err) {
    memset(b, 0, sizeof *b);
    if (api->abi_version < 5 || !api->open_slots || !api->decode_batch)
        return cke_fail(err, CKE_ERR_FORMAT, "the compiled model predates batched decode (ABI 5): recompile it");
    if (n_slots < 1 || n_slots > 4096) return cke_fail(err, CKE_ERR_ARG, "batch_slots %d: 1 to 4096", n_slots);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    pthread_cond_init(&b->exec_cv, NULL);
    b->api = api;
    b->n_slots = n_slots;
    b->used = calloc((size_t)n_slots, 1);
    b->in_gen = calloc((size_t)n_slots, 1);
    b->lag = calloc((size_t)n_slots, 1);
    b->has_row = calloc((size_t)n_slots, 1);
    b->tok = malloc((size_t)n_slots * sizeof *b->tok);
    b->slot = malloc((size_t)n_slots * sizeof *b->slot);
    b->logits = malloc((size_t)n_slots * (size_t)api->vocab * sizeof *b->logits);
    if (!b->used || !b->in_gen || !b->lag || !b->has_row || !b->tok || !b->slot || !b->logits) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    char msg[512] = "";
    b->m = api->open_slots(weights, threads, n_slots, msg, sizeof msg);
    if (!b->m) return cke_fail(err, CKE_ERR_FORMAT, "%s", msg);
    if (pthread_create(&b->exec, NULL, executor, b)) return cke_fail(err, CKE_ERR_NOMEM, "cannot start the batch's executor thread");
    b->exec_started = 1;
    return CKE_OK;
}

/* Also after a failed open (what was made is freed). */
void cke_batch_close(cke_batch *b, const ckm_api *api) {
    if (b->exec_started) {
        pthread_mutex_lock(&b->mu);
        b->exec_stop = 1;
        pthread_cond_broadcast(&b->exec_cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->exec, NULL);
    }
    if (b->m) api->free(b->m);
    free(b->used);
    free(b->in_gen);
    free(b->lag);
    free(b->has_row);
    free(b->tok);
    free(b->slot);
    free(b->logits);
    if (b->n_slots) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
        pthread_cond_destroy(&b->exec_cv);
    }
    memset(b, 0, sizeof *b);
}

int cke_batch_take(cke_batch *b) {
    pthread_mutex_lock(&b->mu);
    int slot = -1;
    for (int i = 0; i < b->n_slots && slot < 0; i++)
        if (!b->used[i]) b->used[i] = 1, slot = i;
    pthread_mutex_unlock(&b->mu);
    return slot;
}

/* The instance to oneself, between steps. */
static void acquire(cke_batch *b) {
    pthread_mutex_lock(&b->mu);
    while (b->busy) pthread_cond_wait(&b->cv, &b->mu);
    b->busy = 1;
    pthread_mutex_unlock(&b->mu);
}

static void release(cke_batch *b) {
    pthread_mutex_lock(&b->mu);
    b->busy = 0;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void cke_batch_give(cke_batch *b, const ckm_api *api, int slot) {
    (void)api;
    acquire(b);
    pthread_mutex_lock(&b->mu);
    exec_call(b, 3, slot, NULL, 0);
    pthread_mutex_unlock(&b->mu);
    release(b);
    pthread_mutex_lock(&b->mu);
    b->used[slot] = 0;
    pthread_mutex_unlock(&b->mu);
}

int cke_batch_prefill(cke_batch *b, const ckm_api *api, int slot, const int32_t *tok, int64_t n, float *lg) {
    acquire(b);
    pthread_mutex_lock(&b->mu);
    int rc = exec_call(b, 1, slot, tok, n);
    pthread_mutex_unlock(&b->mu);
    if (!rc && lg) memcpy(lg, api->logits(b->m), (size_t)api->vocab * sizeof *lg);
    release(b);
    return rc;
}

int cke_batch_truncate(cke_batch *b, const ckm_api *api, int slot, int64_t n) {
    (void)api;
    acquire(b);
    pthread_mutex_lock(&b->mu);
    int rc = exec_call(b, 2, slot, NULL, n);
    pthread_mutex_unlock(&b->mu);
    release(b);
    return rc;
}

void cke_batch_enter(cke_batch *b, int slot) {
    pthread_mutex_lock(&b->mu);
    b->in_gen[slot] = 1, b->lag[slot] = 0;
    pthread_mutex_unlock(&b->mu);
}

void cke_batch_leave(cke_batch *b, int slot) {
    pthread_mutex_lock(&b->mu);
    b->in_gen[slot] = 0, b->lag[slot] = 0;
    pthread_cond_broadcast(&b->cv); /* the others may all be waiting for this one's row */
    pthread_mutex_unlock(&b->mu);
}

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Generating sessions the next step still waits for (b->mu held). */
static int missing(const cke_batch *b) {
    int n = 0;
    for (int i = 0; i < b->n_slots; i++) n += b->in_gen[i] && !b->lag[i] && !b->has_row[i];
    return n;
}

/* Waits on b->cv until the step's lag deadline at most; 1 when it passed (b->mu held). */
static int wait_lag(cke_batch *b) {
    double left = b->first_row_t + LAG_WAIT_S - mono_s();
    if (left <= 0) return 1;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t); /* the condition variable's clock */
    long ns = t.tv_nsec + (long)(left * 1e9);
    t.tv_sec += ns / 1000000000L, t.tv_nsec = ns % 1000000000L;
    return pthread_cond_timedwait(&b->cv, &b->mu, &t) == ETIMEDOUT;
}

int cke_batch_decode(cke_batch *b, const ckm_api *api, int slot, int32_t tok, float *lg, char *msg, size_t msg_len) {
    pthread_mutex_lock(&b->mu);
    while (b->busy) pthread_cond_wait(&b->cv, &b->mu); /* a step running reads the rows */
    int row = b->posted++;
    b->tok[row] = tok, b->slot[row] = slot;
    b->has_row[slot] = 1, b->lag[slot] = 0;
    if (row == 0) b->first_row_t = mono_s();
    uint64_t mine = b->step;
    while (b->step == mine) {
        if (b->busy) pthread_cond_wait(&b->cv, &b->mu);
        else if (missing(b)) {
            if (wait_lag(b) && b->step == mine && !b->busy) /* go without the late ones */
                for (int i = 0; i < b->n_slots; i++) b->lag[i] |= b->in_gen[i] && !b->has_row[i];
        } else { /* every generating session is in: run the step */
            b->busy = 1;
            for (int i = 0; i < b->posted; i++) b->has_row[b->slot[i]] = 0;
            int rc = exec_call(b, 4, -1, NULL, b->posted);
            const int n = b->posted;
            b->rc = rc;
            if (rc) snprintf(b->msg, sizeof b->msg, "%s", api->last_error(b->m));
            b->rows += (uint64_t)n;
            b->posted = 0, b->busy = 0, b->step++;
            pthread_cond_broadcast(&b->cv);
        }
    }
    /* the rows stay until this session hands in its next one: the next step cannot run before */
    int rc = b->rc;
    if (rc) snprintf(msg, msg_len, "%s", b->msg);
    else memcpy(lg, b->logits + (size_t)row * (size_t)api->vocab, (size_t)api->vocab * sizeof *lg);
    pthread_mutex_unlock(&b->mu);
    return rc;
}
