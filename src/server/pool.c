/* Slots, the waiting queue and the workers. One mutex (pool.mu) guards the queue and which slot
 * holds which job; each job has its own mutex for its output. The generation loop is the
 * library's (cke_session_generate); this file only turns its tokens into answers. */
#include "server/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    cke_srv_pool *pool;
    int idx;
    cke_session *s;
    pthread_t th;
    int started;
    pthread_cond_t cv;  /* job assigned or stopping */
    cke_srv_job *job;   /* under pool.mu */
    int32_t *cached;    /* the tokens the session holds after its last job (routing) */
    size_t n_cached;
    uint64_t last_used; /* under pool.mu: when it last took a job */
} slot;

struct cke_srv_pool {
    cke_engine *e;
    cke_srv_metrics *m;
    pthread_mutex_t mu;
    cke_srv_job *head, *tail;
    int queued, queue_cap, stopping;
    slot *slots;
    int n_slots;
    uint64_t clock;     /* jobs dispatched so far */
};

/* ------------------------------------------------------------------ jobs */

cke_srv_job *cke_srv_job_new(cke_srv_req *req, const int32_t *ids, size_t n_ids, const char *model_id) {
    static atomic_ulong serial;
    cke_srv_job *j = calloc(1, sizeof *j);
    if (!j || !(j->ids = malloc(n_ids * sizeof *ids + 1))) {
        free(j);
        return NULL;
    }
    memcpy(j->ids, ids, n_ids * sizeof *ids);
    j->n_ids = n_ids;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->req = *req;
    memset(req, 0, sizeof *req);
    snprintf(j->id, sizeof j->id, "%s-%lx%08lx", j->req.kind == CKE_SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long)atomic_fetch_add(&serial, 1), (unsigned long)time(NULL));
    j->ans = (cke_srv_answer){.req = &j->req, .id = j->id, .model = model_id, .created = (int64_t)time(NULL)};
    return j;
}

void cke_srv_job_release(cke_srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) return;
    cke_srv_req_free(&j->req);
    free(j->ids);
    free(j->out);
    free(j->text);
    for (size_t i = 0; i < j->n_lp; i++) cke_srv_logprob_free(&j->lp[i]);
    free(j->lp);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static void job_finish(cke_srv_job *j) {
    pthread_mutex_lock(&j->mu);
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void job_fail(cke_srv_job *j, int http, const char *type, const char *msg) {
    cke_srv_error_set(&j->err, http, type, NULL, NULL, "%s", msg);
    j->failed = 1;
    job_finish(j);
}

/* appends "data: JSON\n\n" (json freed) to the stream; 0, or -1 out of memory */
static int job_emit(cke_srv_job *j, char *json) {
    if (!json) return -1;
    size_t n = strlen(json), need = n + 8;
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    if (j->out_len + need > j->out_cap) {
        size_t cap = (j->out_cap + need) * 2;
        char *o = realloc(j->out, cap);
        if (!o) rc = -1;
        else { j->out = o; j->out_cap = cap; }
    }
    if (!rc) {
        memcpy(j->out + j->out_len, "data: ", 6);
        memcpy(j->out + j->out_len + 6, json, n);
        memcpy(j->out + j->out_len + 6 + n, "\n\n", 2);
        j->out_len += need;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    free(json);
    return rc;
}

static int job_emit_raw(cke_srv_job *j, const char *s) {
    char *d = malloc(strlen(s) + 1);
    if (!d) return -1;
    strcpy(d, s);
    return job_emit(j, d);
}

/* fails the job; a stream (already answered 200) gets the error object as its last event */
static void stream_fail(cke_srv_job *j, int http, const char *type, const char *msg) {
    cke_srv_error_set(&j->err, http, type, NULL, NULL, "%s", msg);
    if (j->req.stream) {
        job_emit(j, cke_srv_json_error(&j->err));
        job_emit_raw(j, "[DONE]");
    }
    j->failed = 1;
    job_finish(j);
}

/* ------------------------------------------------------------------ one generation */

typedef struct {
    cke_srv_job *j;
    const cke_engine *e;
    int oom;
} gen_ctx;

static char *token_text(const cke_engine *e, int32_t id) {
    char *t = NULL;
    size_t n;
    if (cke_detokenize(e, &id, 1, CKE_DETOK_KEEP_PREFIX, &t, &n, NULL)) {
        t = malloc(1);
        if (t) *t = 0;
    }
    return t;
}

static int fill_logprob(const cke_engine *e, const cke_token *t, cke_srv_logprob *l) {
    memset(l, 0, sizeof *l);
    l->logprob = t->logprob;
    if (!(l->text = token_text(e, t->id))) return -1;
    for (int k = 0; k < t->n_top && k < CKE_SRV_MAX_TOP; k++) {
        if (!(l->top_text[k] = token_text(e, t->top_ids[k]))) return -1;
        l->top_logprob[k] = t->top_logprobs[k];
        l->n_top = k + 1;
    }
    return 0;
}

/* A stream is at most this far ahead of its reader: a slow client slows its own generation
 * (and holds its slot) instead of the server buffering the whole reply for it. */
#define STREAM_AHEAD (32u << 10)

static void wait_for_reader(cke_srv_job *j) {
    pthread_mutex_lock(&j->mu);
    while (j->out_len - j->read_pos > STREAM_AHEAD && !atomic_load(&j->cancel)) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 50000000L;
        if (t.tv_nsec >= 1000000000L) { t.tv_sec++; t.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&j->cv, &j->mu, &t);
    }
    pthread_mutex_unlock(&j->mu);
}

static int on_token(void *user, const cke_token *t) {
    gen_ctx *g = user;
    cke_srv_job *j = g->j;
    if (atomic_load(&j->cancel)) return 1;
    cke_srv_logprob lp = {0}, *lpp = NULL;
    if (j->req.logprobs && t->id >= 0) {
        if (fill_logprob(g->e, t, &lp)) { cke_srv_logprob_free(&lp); g->oom = 1; return 1; }
        lpp = &lp;
    }
    if (j->req.stream) {
        if (t->len || lpp) {
            cke_srv_chunk c = {.text = t->text, .len = t->len, .lp = lpp};
            if (job_emit(j, cke_srv_json_chunk(&j->ans, &c))) g->oom = 1;
            wait_for_reader(j);
        }
        cke_srv_logprob_free(&lp);
    } else if (lpp) {
        if (j->n_lp == j->cap_lp) {
            size_t cap = j->cap_lp ? 2 * j->cap_lp : 64;
            cke_srv_logprob *n = realloc(j->lp, cap * sizeof *n);
            if (!n) { cke_srv_logprob_free(&lp); g->oom = 1; return 1; }
            j->lp = n;
            j->cap_lp = cap;
        }
        j->lp[j->n_lp++] = lp;
    }
    return g->oom;
}

static const char *finish_reason(cke_stop_reason r) {
    return r == CKE_STOP_LENGTH || r == CKE_STOP_CONTEXT_FULL ? "length" : "stop";
}

static void gen_opts_of(const cke_srv_req *q, cke_gen_opts *g) {
    *g = CKE_GEN_DEFAULTS;
    g->temp = (float)q->temperature;
    g->top_k = (int)q->top_k;
    g->top_p = (float)q->top_p;
    g->min_p = (float)q->min_p;
    g->repeat_penalty = 1.0f;
    g->presence_penalty = (float)q->presence_penalty;
    g->frequency_penalty = (float)q->frequency_penalty;
    if (q->has_seed) g->seed = q->seed;
    else {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        g->seed = (uint64_t)t.tv_nsec * 2654435761u ^ (uint64_t)t.tv_sec;
    }
    g->max_tokens = q->max_tokens;
    g->stop = (const char *const *)q->stop;
    g->n_stop = q->n_stop;
    g->stop_at_eot = 1;
    g->logprobs = q->logprobs;
    g->top_logprobs = q->top_logprobs;
}

static void run_job(slot *sl, cke_srv_job *j) {
    cke_srv_pool *p = sl->pool;
    cke_err err = {0};
    size_t reused = 0;
    if (cke_session_prefill(sl->s, j->ids, j->n_ids, &reused, &err)) {
        cke_session_reset(sl->s);
        return stream_fail(j, err.code == CKE_ERR_RANGE ? 400 : 500,
                           err.code == CKE_ERR_RANGE ? "invalid_request_error" : "server_error", err.msg);
    }
    if (j->req.stream && j->req.kind == CKE_SRV_CHAT) { /* the assistant's role comes first */
        cke_srv_chunk c = {.first = 1};
        if (job_emit(j, cke_srv_json_chunk(&j->ans, &c))) return stream_fail(j, 500, "server_error", "out of memory");
    }
    gen_ctx g = {.j = j, .e = p->e};
    cke_gen_opts o;
    gen_opts_of(&j->req, &o);
    o.on_token = on_token;
    o.user = &g;
    cke_gen_result r = {0};
    cke_status s = cke_session_generate(sl->s, &o, &r, &err);
    int cancelled = r.stop == CKE_STOP_CANCELLED || atomic_load(&j->cancel);
    cke_srv_metrics_done(p->m, r.n_prompt, (int64_t)reused, r.n_generated, r.t_gen_s, cancelled && !g.oom);
    j->n_prompt = (int64_t)j->n_ids;
    j->n_gen = r.n_generated;
    j->finish = finish_reason(r.stop);
    if (s || g.oom) {
        cke_gen_result_free(&r);
        return stream_fail(j, 500, "server_error", s ? err.msg : "out of memory");
    }
    if (j->req.stream && !cancelled) {
        cke_srv_chunk c = {.finish_reason = j->finish};
        job_emit(j, cke_srv_json_chunk(&j->ans, &c));
        if (j->req.include_usage) {
            cke_srv_chunk u = {.usage_only = 1, .prompt_tokens = j->n_prompt, .completion_tokens = j->n_gen};
            job_emit(j, cke_srv_json_chunk(&j->ans, &u));
        }
        job_emit_raw(j, "[DONE]");
    }
    j->text = r.text;
    j->text_len = r.text_len;
    r.text = NULL;
    cke_gen_result_free(&r);
    job_finish(j);
}

/* ------------------------------------------------------------------ queue and routing */

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* Hands waiting jobs (FIFO) to free slots, each to the free slot whose cached tokens share the
 * longest prefix with its prompt; when no slot shares more than BOS, to the one least recently
 * used (so that a new conversation does not evict the cache a follow-up would reuse).
 * Under p->mu. */
static void dispatch_locked(cke_srv_pool *p) {
    while (p->head) {
        cke_srv_job *j = p->head;
        if (atomic_load(&j->cancel)) { /* its client left while it waited */
            p->head = j->next;
            if (!p->head) p->tail = NULL;
            p->queued--;
            job_finish(j);
            cke_srv_job_release(j);
            continue;
        }
        slot *best = NULL, *lru = NULL;
        size_t best_n = 0;
        for (int i = 0; i < p->n_slots; i++) {
            slot *s = &p->slots[i];
            if (s->job) continue;
            size_t n = common_prefix(s->cached, s->n_cached, j->ids, j->n_ids);
            if (!best || n > best_n) { best = s; best_n = n; }
            if (!lru || s->last_used < lru->last_used) lru = s;
        }
        if (!best) break;
        if (best_n <= 1) best = lru;
        best->last_used = ++p->clock;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        p->queued--;
        j->next = NULL;
        best->job = j;
        pthread_cond_signal(&best->cv);
    }
    cke_srv_metrics_queue(p->m, p->queued);
}

int cke_srv_pool_submit(cke_srv_pool *p, cke_srv_job *j) {
    pthread_mutex_lock(&p->mu);
    int idle = 0;
    for (int i = 0; i < p->n_slots; i++) idle += !p->slots[i].job;
    /* jobs beyond the free slots wait; no more than queue_cap of them */
    if (p->stopping || p->queued - idle >= p->queue_cap) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
    if (p->tail) p->tail->next = j;
    else p->head = j;
    p->tail = j;
    p->queued++;
    dispatch_locked(p);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void cke_srv_pool_cancel(cke_srv_pool *p, cke_srv_job *j) {
    atomic_store(&j->cancel, 1);
    pthread_mutex_lock(&p->mu);
    int waiting = 0;
    for (cke_srv_job **q = &p->head, *prev = NULL; *q; prev = *q, q = &(*q)->next)
        if (*q == j) {
            *q = j->next;
            if (p->tail == j) p->tail = prev;
            p->queued--;
            waiting = 1;
            break;
        }
    cke_srv_metrics_queue(p->m, p->queued);
    pthread_mutex_unlock(&p->mu);
    if (waiting) { /* it never reached a slot: done now, and the queue's reference goes */
        cke_srv_metrics_done(p->m, 0, 0, 0, 0, 1);
        job_finish(j);
        cke_srv_job_release(j);
    }
}

int cke_srv_pool_idle(cke_srv_pool *p) {
    pthread_mutex_lock(&p->mu);
    int idle = 0;
    for (int i = 0; i < p->n_slots; i++) idle += !p->slots[i].job;
    pthread_mutex_unlock(&p->mu);
    return idle;
}

static void remember_tokens(slot *sl) {
    size_t n = 0;
    const int32_t *t = cke_session_tokens(sl->s, &n);
    int32_t *c = realloc(sl->cached, n * sizeof *c + 1);
    if (!c) { sl->n_cached = 0; return; }
    if (n) memcpy(c, t, n * sizeof *c);
    sl->cached = c;
    sl->n_cached = n;
}

static void *worker(void *arg) {
    slot *sl = arg;
    cke_srv_pool *p = sl->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!sl->job && !p->stopping) pthread_cond_wait(&sl->cv, &p->mu);
        if (!sl->job) break;
        cke_srv_job *j = sl->job;
        pthread_mutex_unlock(&p->mu);
        cke_srv_metrics_active(p->m, +1);
        run_job(sl, j);
        remember_tokens(sl);
        cke_srv_metrics_active(p->m, -1);
        cke_srv_job_release(j);
        pthread_mutex_lock(&p->mu);
        sl->job = NULL;
        if (!p->stopping) dispatch_locked(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

cke_status cke_srv_pool_new(cke_engine *e, int n_slots, int queue_cap, cke_srv_metrics *m, cke_srv_pool **out,
                            cke_err *err) {
    *out = NULL;
    cke_srv_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->slots = calloc((size_t)n_slots, sizeof *p->slots))) {
        free(p);
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    }
    p->e = e;
    p->m = m;
    p->queue_cap = queue_cap;
    pthread_mutex_init(&p->mu, NULL);
    for (int i = 0; i < n_slots; i++) {
        slot *s = &p->slots[i];
        s->pool = p;
        s->idx = i;
        pthread_cond_init(&s->cv, NULL);
        p->n_slots = i + 1;
        cke_status st = cke_session_new(e, &s->s, err);
        if (!st && pthread_create(&s->th, NULL, worker, s)) st = cke_fail(err, CKE_ERR_NOMEM, "cannot start a worker thread");
        if (st) {
            cke_srv_pool_free(p);
            return st;
        }
        s->started = 1;
    }
    *out = p;
    return CKE_OK;
}

void cke_srv_pool_shutdown(cke_srv_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->stopping = 1;
    while (p->head) {
        cke_srv_job *j = p->head;
        p->head = j->next;
        job_fail(j, 503, "server_error", "the server is shutting down");
        cke_srv_job_release(j);
    }
    p->tail = NULL;
    p->queued = 0;
    for (int i = 0; i < p->n_slots; i++) {
        if (p->slots[i].job) atomic_store(&p->slots[i].job->cancel, 1);
        pthread_cond_signal(&p->slots[i].cv);
    }
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_slots; i++)
        if (p->slots[i].started) {
            pthread_join(p->slots[i].th, NULL);
            p->slots[i].started = 0;
        }
}

void cke_srv_pool_free(cke_srv_pool *p) {
    if (!p) return;
    cke_srv_pool_shutdown(p);
    for (int i = 0; i < p->n_slots; i++) {
        slot *s = &p->slots[i];
        cke_session_free(s->s);
        free(s->cached);
        pthread_cond_destroy(&s->cv);
    }
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    free(p);
}
