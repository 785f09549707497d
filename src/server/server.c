/* The HTTP side of cke serve on libmicrohttpd, one thread per connection (so a connection may
 * block waiting for its answer). Routes, API key, body cap, request -> prompt tokens -> job,
 * the answer whole or as server-sent events. A connection whose peer has gone (checked while it
 * waits, and by every failed write) cancels its job, which frees its slot. */
#define _DEFAULT_SOURCE /* MSG_DONTWAIT */
#include "server/server.h"

#include "cke/cke.h"
#include "server/metrics.h"
#include "server/pool.h"
#include "server/request.h"
#include "server/response.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct cke_srv {
    cke_engine *e;
    const cke_model_info *info;
    cke_srv_pool *pool;
    cke_srv_metrics m;
    struct MHD_Daemon *d;
    char model_id[256];
    char *api_key;
    int port;
    int64_t started;
};

/* per-connection state: the body as it arrives, then the job */
typedef struct {
    cke_srv *srv;
    char *body;
    size_t len, cap;
    int too_large;
    int endpoint;
    int fd;
    cke_srv_job *job;
} conn;

#define WAIT_NS 50000000L /* how often a waiting connection checks its peer */

static int peer_gone(int fd) {
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void wait_a_little(cke_srv_job *j) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += WAIT_NS;
    if (t.tv_nsec >= 1000000000L) { t.tv_sec++; t.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(&j->cv, &j->mu, &t);
}

/* ------------------------------------------------------------------ answering */

static enum MHD_Result answer(cke_srv *s, struct MHD_Connection *c, conn *k, int status, const char *type,
                              char *body) {
    if (!body) {
        status = 500;
        type = "application/json";
        body = strdup("{\"error\": {\"message\": \"out of memory\", \"type\": \"server_error\", \"param\": null, \"code\": null}}");
        if (!body) return MHD_NO;
    }
    size_t n = strlen(body);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(body); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 405) {
        const char *allow = k->endpoint == CKE_SRV_EP_COMPLETIONS || k->endpoint == CKE_SRV_EP_CHAT ? "POST" : "GET";
        MHD_add_response_header(r, "Allow", allow);
    }
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    cke_srv_metrics_request(&s->m, k->endpoint, status);
    return rc;
}

static enum MHD_Result answer_json(cke_srv *s, struct MHD_Connection *c, conn *k, int status, char *json) {
    return answer(s, c, k, status, "application/json", json);
}

static enum MHD_Result answer_error(cke_srv *s, struct MHD_Connection *c, conn *k, const cke_srv_error *e) {
    return answer_json(s, c, k, e->http, cke_srv_json_error(e));
}

__attribute__((format(printf, 6, 7))) static enum MHD_Result fail(cke_srv *s, struct MHD_Connection *c, conn *k,
                                                                   int status, const char *code, const char *fmt, ...) {
    cke_srv_error e = {.http = status, .type = status >= 500 ? "server_error" : "invalid_request_error", .code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return answer_error(s, c, k, &e);
}

/* ------------------------------------------------------------------ GET endpoints */

static enum MHD_Result get_models(cke_srv *s, struct MHD_Connection *c, conn *k) {
    return answer_json(s, c, k, 200, cke_srv_json_models(s->model_id, s->started, s->info->ctx));
}

static enum MHD_Result get_health(cke_srv *s, struct MHD_Connection *c, conn *k) {
    char b[128];
    snprintf(b, sizeof b, "{\"status\": \"ok\", \"slots_idle\": %d}", cke_srv_pool_idle(s->pool));
    return answer_json(s, c, k, 200, strdup(b));
}

static enum MHD_Result get_metrics(cke_srv *s, struct MHD_Connection *c, conn *k) {
    char *t = cke_srv_metrics_text(&s->m);
    if (!t) return answer_json(s, c, k, 500, NULL);
    uint64_t steps, rows;
    if (!cke_engine_batch_stats(s->e, &steps, &rows, NULL)) { /* continuous batching: how full the steps are */
        char more[512];
        int n = snprintf(more, sizeof more,
                         "# HELP cke_batch_steps_total Batched decode steps (one forward over the active slots).\n"
                         "# TYPE cke_batch_steps_total counter\ncke_batch_steps_total %llu\n"
                         "# HELP cke_batch_rows_total Rows (tokens) those steps decoded; rows/steps is the mean batch.\n"
                         "# TYPE cke_batch_rows_total counter\ncke_batch_rows_total %llu\n",
                         (unsigned long long)steps, (unsigned long long)rows);
        size_t tl = strlen(t);
        char *u = realloc(t, tl + (size_t)n + 1);
        if (!u) { free(t); return answer_json(s, c, k, 500, NULL); }
        memcpy(u + tl, more, (size_t)n + 1);
        t = u;
    }
    return answer(s, c, k, 200, "text/plain; version=0.0.4", t);
}

/* ------------------------------------------------------------------ POST: the prompt */

/* the request's prompt as tokens (chat: through the model's chat template); 0 or -1 with e */
static int prompt_ids(cke_srv *s, const cke_srv_req *q, int32_t **ids, size_t *n, cke_srv_error *e) {
    cke_err err = {0};
    *ids = NULL;
    if (q->kind == CKE_SRV_COMPLETIONS) {
        if (cke_tokenize(s->e, q->prompt, strlen(q->prompt), -1, 0, ids, n, &err))
            return cke_srv_error_set(e, 400, "invalid_request_error", NULL, "prompt", "%s", err.msg);
    } else {
        cke_message *m = calloc(q->n_msgs, sizeof *m);
        if (!m) return cke_srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        for (size_t i = 0; i < q->n_msgs; i++) m[i] = (cke_message){.role = q->msgs[i].role, .content = q->msgs[i].content};
        char *text = NULL;
        size_t len = 0;
        cke_status st = cke_chat_apply(s->e, m, q->n_msgs, 1, &text, &len, &err);
        free(m);
        if (st) return cke_srv_error_set(e, 400, "invalid_request_error", NULL, "messages", "%s", err.msg);
        st = cke_tokenize(s->e, text, len, 0, 1, ids, n, &err);
        cke_free(text);
        if (st) return cke_srv_error_set(e, 400, "invalid_request_error", NULL, "messages", "%s", err.msg);
    }
    const char *param = q->kind == CKE_SRV_CHAT ? "messages" : "prompt";
    if (*n == 0) {
        cke_free(*ids);
        *ids = NULL;
        return cke_srv_error_set(e, 400, "invalid_request_error", NULL, param, "the prompt is empty");
    }
    if ((int64_t)*n >= s->info->ctx) {
        int64_t have = (int64_t)*n;
        cke_free(*ids);
        *ids = NULL;
        return cke_srv_error_set(e, 400, "invalid_request_error", "context_length_exceeded", param,
                                 "the prompt has %lld tokens; this server's context holds %lld (prompt and reply)",
                                 (long long)have, (long long)s->info->ctx);
    }
    return 0;
}

/* ------------------------------------------------------------------ POST: streaming */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    conn *k = cls;
    cke_srv_job *j = k->job;
    pthread_mutex_lock(&j->mu);
    while (j->read_pos == j->out_len && !j->done) {
        wait_a_little(j);
        if (j->read_pos == j->out_len && !j->done && peer_gone(k->fd)) {
            pthread_mutex_unlock(&j->mu);
            cke_srv_pool_cancel(k->srv->pool, j);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    ssize_t n;
    if (j->read_pos < j->out_len) {
        size_t take = j->out_len - j->read_pos < max ? j->out_len - j->read_pos : max;
        memcpy(buf, j->out + j->read_pos, take);
        j->read_pos += take;
        n = (ssize_t)take;
        if (j->read_pos == j->out_len) j->read_pos = j->out_len = 0; /* all sent: reuse the buffer */
        pthread_cond_broadcast(&j->cv); /* a generation waiting for its reader goes on */
    } else n = MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_unlock(&j->mu);
    return n;
}

static enum MHD_Result answer_stream(cke_srv *s, struct MHD_Connection *c, conn *k) {
    /* no free callback: the job is released with the connection (on_completed) */
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, k, NULL);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    cke_srv_metrics_request(&s->m, k->endpoint, 200);
    return rc;
}

/* ------------------------------------------------------------------ POST: whole answers */

static enum MHD_Result answer_whole(cke_srv *s, struct MHD_Connection *c, conn *k) {
    cke_srv_job *j = k->job;
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        wait_a_little(j);
        if (!j->done && !atomic_load(&j->cancel) && peer_gone(k->fd)) {
            pthread_mutex_unlock(&j->mu);
            cke_srv_pool_cancel(s->pool, j);
            pthread_mutex_lock(&j->mu);
        }
    }
    pthread_mutex_unlock(&j->mu);
    if (atomic_load(&j->cancel) && !j->failed) return MHD_NO; /* nobody to answer */
    if (j->failed) return answer_error(s, c, k, &j->err);
    return answer_json(s, c, k, 200,
                       cke_srv_json_result(&j->ans, j->text ? j->text : "", j->text_len, j->finish, j->lp, j->n_lp,
                                           j->n_prompt, j->n_gen));
}

static enum MHD_Result post_generate(cke_srv *s, struct MHD_Connection *c, conn *k, cke_srv_kind kind) {
    cke_srv_error e;
    cke_srv_req q;
    if (k->too_large)
        return fail(s, c, k, 413, "request_too_large", "the request body is larger than %u bytes", CKE_SRV_MAX_BODY);
    if (cke_srv_req_parse(k->body ? k->body : "", k->len, kind, s->model_id, &q, &e)) return answer_error(s, c, k, &e);
    int32_t *ids;
    size_t n;
    if (prompt_ids(s, &q, &ids, &n, &e)) {
        cke_srv_req_free(&q);
        return answer_error(s, c, k, &e);
    }
    k->job = cke_srv_job_new(&q, ids, n, s->model_id);
    cke_free(ids);
    if (!k->job) {
        cke_srv_req_free(&q);
        return answer_json(s, c, k, 500, NULL);
    }
    if (cke_srv_pool_submit(s->pool, k->job))
        return fail(s, c, k, 503, "queue_full", "the server is busy (all slots and the queue are full); try again later");
    return k->job->req.stream ? answer_stream(s, c, k) : answer_whole(s, c, k);
}

static enum MHD_Result post_completions(cke_srv *s, struct MHD_Connection *c, conn *k) {
    return post_generate(s, c, k, CKE_SRV_COMPLETIONS);
}

static enum MHD_Result post_chat(cke_srv *s, struct MHD_Connection *c, conn *k) {
    return post_generate(s, c, k, CKE_SRV_CHAT);
}

/* ------------------------------------------------------------------ routing */

typedef enum MHD_Result (*handler)(cke_srv *, struct MHD_Connection *, conn *);

static const struct {
    const char *path, *method;
    handler fn;
} routes[] = {
    {"/v1/models", "GET", get_models},           {"/v1/completions", "POST", post_completions},
    {"/v1/chat/completions", "POST", post_chat}, {"/health", "GET", get_health},
    {"/metrics", "GET", get_metrics},
};

/* constant-time comparison of the bearer token with the key */
static int key_ok(const cke_srv *s, struct MHD_Connection *c) {
    if (!s->api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t n = strlen(h), m = strlen(s->api_key);
    unsigned diff = (unsigned)(n != m);
    for (size_t i = 0; i < m; i++) diff |= (unsigned char)s->api_key[i] ^ (unsigned char)(i < n ? h[i] : 0);
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state) {
    (void)version;
    cke_srv *s = cls;
    conn *k = *state;
    if (!k) { /* headers only so far */
        if (!(k = calloc(1, sizeof *k))) return MHD_NO;
        k->srv = s;
        k->endpoint = cke_srv_endpoint(url);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = ci ? ci->connect_fd : -1;
        /* a fixed send buffer: the kernel would otherwise grow it to megabytes for a slow
         * reader, and a stream's generation would run that far ahead of its client */
        int sndbuf = 64 << 10;
        if (k->fd >= 0) setsockopt(k->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        *state = k;
        /* a body announced larger than the cap is refused before it is read */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > CKE_SRV_MAX_BODY) {
            k->too_large = 1;
            return fail(s, c, k, 413, "request_too_large", "the request body is larger than %u bytes", CKE_SRV_MAX_BODY);
        }
        return MHD_YES;
    }
    if (*upload_size) { /* body bytes: keep up to the cap, then only count */
        size_t n = *upload_size;
        *upload_size = 0;
        if (k->too_large || k->len + n > CKE_SRV_MAX_BODY) {
            k->too_large = 1;
            return MHD_YES;
        }
        if (k->len + n + 1 > k->cap) {
            size_t cap = (k->len + n + 1) * 2;
            char *b = realloc(k->body, cap);
            if (!b) return MHD_NO;
            k->body = b;
            k->cap = cap;
        }
        memcpy(k->body + k->len, upload, n);
        k->len += n;
        return MHD_YES;
    }
    if (!key_ok(s, c)) return fail(s, c, k, 401, "invalid_api_key", "a valid API key is required (Authorization: Bearer KEY)");
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(url, routes[i].path)) continue;
        if (strcmp(method, routes[i].method))
            return fail(s, c, k, 405, "method_not_allowed", "%s %s: use %s", method, url, routes[i].method);
        return routes[i].fn(s, c, k);
    }
    return fail(s, c, k, 404, "not_found", "no such endpoint: %s %s", method, url);
}

/* the connection is over (answered, or the client went away): cancel what it still waits for */
static void on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why) {
    (void)c;
    (void)why;
    cke_srv *s = cls;
    conn *k = *state;
    if (!k) return;
    if (k->job) {
        cke_srv_pool_cancel(s->pool, k->job); /* a no-op when it is done */
        cke_srv_job_release(k->job);
    }
    free(k->body);
    free(k);
    *state = NULL;
}

/* ------------------------------------------------------------------ start and stop */

static void model_id_of(const char *path, char *out, size_t n) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && path[b - 1] != '/') b--;
    size_t e = len;
    for (size_t i = len; i > b; i--)
        if (path[i - 1] == '.') { e = i - 1; break; }
    if (e == b) e = len;
    snprintf(out, n, "%.*s", (int)(e - b), path + b);
}

void cke_srv_engine_opts(const cke_srv_opts *o, cke_engine_opts *eo) {
    *eo = CKE_ENGINE_DEFAULTS;
    eo->threads = o->threads;
    eo->ctx = o->ctx;
    eo->kv_type = (cke_kv_type)o->kv_type;
    eo->tokenizer = o->tokenizer;
    eo->chat_template = o->chat_template;
    eo->n_sessions = o->parallel;
    eo->batch_slots = o->parallel > 1 && !o->no_batch ? o->parallel : 0;
    if (o->tp && o->tp->tp_size > 1) { /* every model call on the executor, announced to the other ranks */
        eo->tp_rank = o->tp->tp_rank, eo->tp_size = o->tp->tp_size;
        eo->tp_allreduce = o->tp->tp_allreduce, eo->tp_bcast = o->tp->tp_bcast, eo->tp_ud = o->tp->tp_ud;
        eo->batch_slots = o->parallel;
    }
}

cke_status cke_srv_start(const cke_srv_opts *o, cke_srv **out, cke_err *err) {
    *out = NULL;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    const char *host = o->host ? o->host : "127.0.0.1";
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return cke_fail(err, CKE_ERR_ARG, "--host %s: not an IPv4 address", host);
    if (o->parallel < 1 || o->queue < 0 || o->port < 0 || o->port > 65535)
        return cke_fail(err, CKE_ERR_ARG, "bad server options");
    cke_srv *s = calloc(1, sizeof *s);
    if (!s) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_srv_metrics_init(&s->m, o->parallel, o->queue);
    s->started = (int64_t)time(NULL);
    model_id_of(o->model, s->model_id, sizeof s->model_id);
    if (o->api_key && !(s->api_key = strdup(o->api_key))) {
        cke_srv_stop(s);
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    }
    cke_engine_opts eo;
    cke_srv_engine_opts(o, &eo);
    cke_status st = cke_engine_open(o->model, &eo, &s->e, err);
    if (!st) {
        s->info = cke_engine_info(s->e);
        st = cke_srv_pool_new(s->e, o->parallel, o->queue, &s->m, &s->pool, err);
    }
    if (st) {
        cke_srv_stop(s);
        return st;
    }
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                            on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT, 256u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 300u, MHD_OPTION_END);
    if (!s->d) {
        int port = o->port;
        cke_srv_stop(s);
        return cke_fail(err, CKE_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this machine)", host, port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    *out = s;
    return CKE_OK;
}

int cke_srv_port(const cke_srv *s) { return s->port; }
const char *cke_srv_model_id(const cke_srv *s) { return s->model_id; }

void cke_srv_stop(cke_srv *s) {
    if (!s) return;
    /* the pool's workers first: waiting connections get their jobs finished (cancelled or 503)
     * and end, so the daemon can stop; the pool itself lives until no connection can use it */
    cke_srv_pool_shutdown(s->pool);
    if (s->d) MHD_stop_daemon(s->d);
    cke_srv_pool_free(s->pool);
    cke_engine_close(s->e);
    cke_srv_metrics_destroy(&s->m);
    free(s->api_key);
    free(s);
}
