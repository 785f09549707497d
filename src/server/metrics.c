/* Prometheus text exposition of the server's counters. */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const ep_names[CKE_SRV_EP_COUNT] = {"/v1/models", "/v1/completions", "/v1/chat/completions",
                                                        "/health", "/metrics", "other"};
static const int codes[CKE_SRV_N_CODES - 1] = {200, 400, 401, 404, 405, 413, 500, 503};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cke_srv_metrics_init(cke_srv_metrics *m, int slots, int queue_cap) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->slots = slots;
    m->queue_cap = queue_cap;
}

void cke_srv_metrics_destroy(cke_srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

int cke_srv_endpoint(const char *path) {
    for (int i = 0; i < CKE_SRV_EP_OTHER; i++)
        if (!strcmp(path, ep_names[i])) return i;
    return CKE_SRV_EP_OTHER;
}

void cke_srv_metrics_request(cke_srv_metrics *m, int endpoint, int http_status) {
    int c = 0;
    while (c < CKE_SRV_N_CODES - 1 && codes[c] != http_status) c++;
    pthread_mutex_lock(&m->mu);
    m->requests[endpoint][c]++;
    pthread_mutex_unlock(&m->mu);
}

void cke_srv_metrics_active(cke_srv_metrics *m, int delta) {
    pthread_mutex_lock(&m->mu);
    double t = now_s();
    if (m->active == 0 && delta > 0) m->busy_since = t;
    m->active += delta;
    if (m->active == 0 && delta < 0) m->busy_s += t - m->busy_since;
    pthread_mutex_unlock(&m->mu);
}

void cke_srv_metrics_done(cke_srv_metrics *m, int64_t prompt, int64_t reused, int64_t generated, double gen_s,
                          int cancelled) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)prompt;
    m->reused_tokens += (uint64_t)reused;
    m->generated_tokens += (uint64_t)generated;
    m->gen_s += gen_s;
    m->cancelled += (uint64_t)(cancelled != 0);
    pthread_mutex_unlock(&m->mu);
}

void cke_srv_metrics_queue(cke_srv_metrics *m, int depth) {
    pthread_mutex_lock(&m->mu);
    m->queued = depth;
    pthread_mutex_unlock(&m->mu);
}

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} buf;

__attribute__((format(printf, 2, 3))) static void put(buf *b, const char *fmt, ...) {
    for (;;) {
        if (b->oom) return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = 1; return; }
        if (b->s && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return; }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) { b->oom = 1; return; }
        b->s = s;
        b->cap = cap;
    }
}

char *cke_srv_metrics_text(cke_srv_metrics *m) {
    buf b = {0};
    pthread_mutex_lock(&m->mu);
    double busy = m->busy_s + (m->active ? now_s() - m->busy_since : 0);
    put(&b, "# HELP cke_requests_total HTTP requests answered, by endpoint and status.\n"
            "# TYPE cke_requests_total counter\n");
    for (int e = 0; e < CKE_SRV_EP_COUNT; e++)
        for (int c = 0; c < CKE_SRV_N_CODES; c++)
            if (m->requests[e][c]) {
                char code[16] = "other";
                if (c < CKE_SRV_N_CODES - 1) snprintf(code, sizeof code, "%d", codes[c]);
                put(&b, "cke_requests_total{endpoint=\"%s\",status=\"%s\"} %llu\n", ep_names[e], code,
                    (unsigned long long)m->requests[e][c]);
            }
    put(&b, "# HELP cke_prompt_tokens_total Prompt tokens of finished requests.\n# TYPE cke_prompt_tokens_total counter\n"
            "cke_prompt_tokens_total %llu\n", (unsigned long long)m->prompt_tokens);
    put(&b, "# HELP cke_prompt_tokens_reused_total Prompt tokens reused from a slot's cache.\n"
            "# TYPE cke_prompt_tokens_reused_total counter\ncke_prompt_tokens_reused_total %llu\n",
        (unsigned long long)m->reused_tokens);
    put(&b, "# HELP cke_generated_tokens_total Tokens generated.\n# TYPE cke_generated_tokens_total counter\n"
            "cke_generated_tokens_total %llu\n", (unsigned long long)m->generated_tokens);
    put(&b, "# HELP cke_requests_cancelled_total Requests whose client went away.\n"
            "# TYPE cke_requests_cancelled_total counter\ncke_requests_cancelled_total %llu\n",
        (unsigned long long)m->cancelled);
    put(&b, "# HELP cke_queue_depth Requests waiting for a slot.\n# TYPE cke_queue_depth gauge\ncke_queue_depth %d\n",
        m->queued);
    put(&b, "# HELP cke_queue_capacity Requests that may wait before 503.\n# TYPE cke_queue_capacity gauge\n"
            "cke_queue_capacity %d\n", m->queue_cap);
    put(&b, "# HELP cke_slots_active Slots generating now.\n# TYPE cke_slots_active gauge\ncke_slots_active %d\n",
        m->active);
    put(&b, "# HELP cke_slots_total Slots (--parallel).\n# TYPE cke_slots_total gauge\ncke_slots_total %d\n", m->slots);
    put(&b, "# HELP cke_tokens_per_second Generated tokens per second of busy wall time (all slots together).\n"
            "# TYPE cke_tokens_per_second gauge\ncke_tokens_per_second %.3f\n",
        busy > 0 ? (double)m->generated_tokens / busy : 0.0);
    put(&b, "# HELP cke_busy_seconds_total Wall time with at least one slot generating.\n"
            "# TYPE cke_busy_seconds_total counter\ncke_busy_seconds_total %.3f\n", busy);
    pthread_mutex_unlock(&m->mu);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
