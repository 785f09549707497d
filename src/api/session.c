/* cke_session: one sequence with its own model instance, or a slot of the engine's shared one
 * (batch_slots: src/api/batch.c runs its forward passes together with the other sessions'). Prefill with prompt-prefix reuse, and
 * the generation loop (sampling, stop tokens and strings, UTF-8-safe incremental text, logprobs)
 * that cke run, cke chat and cke serve share. */
#include "api/api.h"
#include "runtime/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cke_session {
    cke_engine *e;
    const ckm_api *api;
    ckm_model *m;
    int32_t *tok; /* [ctx + 1]: the context; tok[0 .. kv) are in the KV cache, the rest pending */
    size_t n, kv;
    float *work;  /* [vocab]: logits with the presence/frequency penalties */
    int32_t *count; /* [vocab]: times each token was generated in this call */
    cke_batch *b;   /* batched: the engine's shared instance, m NULL */
    int slot;       /* batched: this session's KV slot */
    float *lg;      /* batched: [vocab] the logits after tok[kv-1] */
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static cke_status new_batched(cke_session *s, cke_session **out, cke_err *err) {
    s->slot = -1;
    if (!(s->lg = malloc((size_t)s->api->vocab * sizeof *s->lg))) {
        cke_session_free(s);
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    }
    if ((s->slot = cke_batch_take(s->e->batch)) < 0) {
        int n = s->e->batch->n_slots;
        cke_session_free(s);
        return cke_fail(err, CKE_ERR_RANGE, "all %d batch slots are in use (free a session first)", n);
    }
    s->b = s->e->batch;
    *out = s;
    return CKE_OK;
}

cke_status cke_session_new(cke_engine *e, cke_session **out, cke_err *err) {
    if (!e || !out) return cke_fail(err, CKE_ERR_ARG, "cke_session_new: NULL argument");
    *out = NULL;
    cke_session *s = calloc(1, sizeof *s);
    const ckm_api *api = e->r->api;
    if (s) {
        s->tok = malloc(((size_t)api->ctx + 1) * sizeof *s->tok);
        s->work = malloc((size_t)api->vocab * sizeof *s->work);
        s->count = malloc((size_t)api->vocab * sizeof *s->count);
    }
    if (!s || !s->tok || !s->work || !s->count) {
        cke_session_free(s);
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    }
    s->e = e, s->api = api;
    if (e->batch) return new_batched(s, out, err);
    pthread_mutex_lock(&e->lock); /* the instance the engine opened is the first session's */
    s->m = e->r->m;
    e->r->m = NULL;
    pthread_mutex_unlock(&e->lock);
    if (!s->m && e->tp) {
        cke_session_free(s);
        return cke_fail(err, CKE_ERR_ARG, "a tensor-parallel engine runs one session at a time (the ranks' calls must match)");
    }
    if (!s->m) {
        char msg[512] = "";
        s->m = api->open(e->weights, e->threads, msg, sizeof msg);
        if (!s->m) {
            cke_session_free(s);
            return cke_fail(err, CKE_ERR_FORMAT, "%s", msg);
        }
    }
    api->reset(s->m);
    *out = s;
    return CKE_OK;
}

void cke_session_free(cke_session *s) {
    if (!s) return;
    if (s->b) cke_batch_give(s->b, s->api, s->slot);
    if (s->m) {
        pthread_mutex_lock(&s->e->lock); /* kept for the next session rather than unmapped */
        if (!s->e->r->m) s->e->r->m = s->m, s->m = NULL;
        pthread_mutex_unlock(&s->e->lock);
        if (s->m) s->api->free(s->m);
    }
    free(s->tok);
    free(s->work);
    free(s->count);
    free(s->lg);
    free(s);
}

void cke_session_reset(cke_session *s) {
    if (!s) return;
    if (s->b) cke_batch_truncate(s->b, s->api, s->slot, 0);
    else s->api->reset(s->m);
    s->n = s->kv = 0;
}

const int32_t *cke_session_tokens(const cke_session *s, size_t *n) {
    if (n) *n = s ? s->n : 0;
    return s ? s->tok : NULL;
}

/* Batched: tok[kv..n) into the slot, prompt_chunk tokens a time so that the sessions
 * generating meanwhile step between the chunks. */
static int batch_prefill(cke_session *s, char *msg, size_t msg_len) {
    int64_t chunk = s->api->prefill_chunk > 0 ? s->api->prefill_chunk : 256;
    while (s->kv < s->n) {
        int64_t k = (int64_t)(s->n - s->kv) < chunk ? (int64_t)(s->n - s->kv) : chunk;
        if (cke_batch_prefill(s->b, s->api, s->slot, s->tok + s->kv, k, s->lg)) {
            snprintf(msg, msg_len, "slot %d: prefill failed (context full or a bad token)", s->slot);
            return -1;
        }
        s->kv += (size_t)k;
    }
    return 0;
}

/* Runs the pending tokens through the model: one decode step (batched: a row of the next
 * step), or a prefill for several. */
static cke_status sync_kv(cke_session *s, cke_err *err) {
    if (s->kv == s->n) return CKE_OK;
    size_t k = s->n - s->kv;
    int rc;
    char msg[256] = "";
    if (s->b)
        rc = k == 1 ? cke_batch_decode(s->b, s->api, s->slot, s->tok[s->kv], s->lg, msg, sizeof msg)
                    : batch_prefill(s, msg, sizeof msg);
    else {
        rc = k == 1 ? s->api->decode(s->m, s->tok[s->kv]) : s->api->prefill(s->m, s->tok + s->kv, (int64_t)k);
        if (rc) snprintf(msg, sizeof msg, "%s", s->api->last_error(s->m));
    }
    if (rc) {
        cke_status st = cke_fail(err, CKE_ERR_RANGE, "%s", msg);
        cke_session_reset(s);
        return st;
    }
    s->kv = s->n;
    return CKE_OK;
}

/* The logits after tok[kv-1] */
static const float *cur_logits(const cke_session *s) { return s->b ? s->lg : s->api->logits(s->m); }

const float *cke_session_logits(cke_session *s) {
    if (!s || s->n == 0 || sync_kv(s, NULL)) return NULL;
    return cur_logits(s);
}

cke_status cke_session_prefill(cke_session *s, const int32_t *ids, size_t n, size_t *n_reused, cke_err *err) {
    if (n_reused) *n_reused = 0;
    if (!s || !ids || n == 0) return cke_fail(err, CKE_ERR_ARG, "cke_session_prefill: %s", !s || !ids ? "NULL argument" : "no tokens");
    const ckm_api *api = s->api;
    if ((uint64_t)n > (uint64_t)api->ctx) {
        cke_session_reset(s);
        return cke_fail(err, CKE_ERR_RANGE, "the prompt is %zu tokens, longer than the context of %lld", n, (long long)api->ctx);
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= api->vocab)
            return cke_fail(err, CKE_ERR_RANGE, "token %zu: id %d is outside the vocabulary [0, %lld)", i, (int)ids[i],
                            (long long)api->vocab);
    size_t lcp = 0;
    while (lcp < n && lcp < s->n && s->tok[lcp] == ids[lcp]) lcp++;
    if (s->b && lcp < s->kv) { /* a slot is cut back to the common prefix (one token to run at least) */
        size_t keep = lcp == n ? n - 1 : lcp;
        if (cke_batch_truncate(s->b, api, s->slot, (int64_t)keep)) keep = 0, cke_batch_truncate(s->b, api, s->slot, 0);
        s->kv = keep;
    }
    /* a single instance's KV cache is not cut back: reuse only when what it holds is a prefix of ids */
    if (lcp < s->kv) api->reset(s->m), s->kv = 0;
    memmove(s->tok, ids, n * sizeof *ids); /* ids may be cke_session_tokens(s) itself */
    s->n = n;
    if (n_reused) *n_reused = s->kv;
    if (s->kv == n) return CKE_OK; /* the logits are already those of ids[n-1] */
    if (s->b) {
        char msg[256];
        if (batch_prefill(s, msg, sizeof msg)) {
            cke_session_reset(s);
            return cke_fail(err, CKE_ERR_RANGE, "%s", msg);
        }
        return CKE_OK;
    }
    size_t k = n - s->kv;
    if (api->prefill(s->m, s->tok + s->kv, (int64_t)k) != 0) {
        cke_status st = cke_fail(err, CKE_ERR_RANGE, "%s", api->last_error(s->m));
        cke_session_reset(s);
        return st;
    }
    s->kv = n;
    return CKE_OK;
}

const char *cke_stop_reason_name(cke_stop_reason r) {
    static const char *const names[] = {"length", "stop", "eos", "cancelled", "context_full"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

void cke_gen_result_free(cke_gen_result *r) {
    if (!r) return;
    free(r->text);
    r->text = NULL, r->text_len = 0;
}

/* ------------------------------------------------------------------ generation */

/* Bytes at the end of t[0..len) that begin a UTF-8 character not complete yet. */
static size_t utf8_incomplete(const char *t, size_t len) {
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)t[len - back];
        if ((c & 0xC0) == 0x80) continue; /* a continuation byte: look further back */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Where the first stop string starts in text[0..len), or len. *hold: bytes at the end that could
 * still become a stop string. */
static size_t find_stop(const cke_gen_opts *o, const char *text, size_t len, size_t *hold) {
    size_t first = len;
    *hold = 0;
    for (int k = 0; k < o->n_stop; k++) {
        const char *st = o->stop[k];
        size_t sl = strlen(st);
        for (size_t p = 0; p + sl <= len && p < first; p++)
            if (!memcmp(text + p, st, sl)) { first = p; break; }
        for (size_t h = sl - 1; h > *hold; h--) /* longest end of text that begins st */
            if (h <= len && !memcmp(text + len - h, st, h)) { *hold = h; break; }
    }
    return first;
}

static cke_status check_opts(const cke_gen_opts *o, cke_err *err) {
    if (!(o->temp >= 0) || !(o->top_p >= 0 && o->top_p <= 1) || !(o->min_p >= 0 && o->min_p <= 1) || o->top_k < 0 ||
        !(o->repeat_penalty > 0) || o->repeat_last_n < 0 || !isfinite(o->presence_penalty) ||
        !isfinite(o->frequency_penalty) || o->max_tokens < -1 || o->n_stop < 0 || (o->n_stop && !o->stop) ||
        o->top_logprobs < 0 || o->top_logprobs > 20)
        return cke_fail(err, CKE_ERR_ARG, "cke_session_generate: an option is out of range (temp >= 0, top_p and min_p "
                                          "0-1, top_k >= 0, repeat_penalty > 0, max_tokens >= -1, top_logprobs 0-20)");
    for (int k = 0; k < o->n_stop; k++)
        if (!o->stop[k] || !o->stop[k][0]) return cke_fail(err, CKE_ERR_ARG, "cke_session_generate: stop string %d is empty", k);
    return CKE_OK;
}

/* The logits sampled from: OpenAI's presence/frequency penalties over this call's tokens. */
static const float *penalized(cke_session *s, const cke_gen_opts *o, const float *lg, size_t first) {
    if (o->presence_penalty == 0 && o->frequency_penalty == 0) return lg;
    memcpy(s->work, lg, (size_t)s->api->vocab * sizeof *lg);
    for (size_t i = first; i < s->n; i++) s->count[s->tok[i]] = 0;
    for (size_t i = first; i < s->n; i++) s->count[s->tok[i]]++;
    for (size_t i = first; i < s->n; i++) {
        int32_t t = s->tok[i];
        if (s->count[t] <= 0) continue; /* once per distinct token */
        s->work[t] -= o->presence_penalty + o->frequency_penalty * (float)s->count[t];
        s->count[t] = 0;
    }
    return s->work;
}

typedef struct {
    int32_t ids[20];
    float lp[20];
} top_lp;

/* log-softmax of the raw logits at `id`, and the n best alternatives */
static float logprobs(const float *lg, int64_t vocab, int32_t id, int n, top_lp *top) {
    float mx = lg[0];
    for (int64_t i = 1; i < vocab; i++) mx = lg[i] > mx ? lg[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < vocab; i++) sum += exp((double)(lg[i] - mx));
    float lse = mx + (float)log(sum);
    int have = 0;
    for (int64_t i = 0; i < vocab && n > 0; i++) { /* insertion into the n best, best first */
        if (have == n && lg[i] <= lg[top->ids[n - 1]]) continue;
        int j = have < n ? have++ : n - 1;
        while (j > 0 && lg[top->ids[j - 1]] < lg[i]) top->ids[j] = top->ids[j - 1], j--;
        top->ids[j] = (int32_t)i;
    }
    for (int j = 0; j < have; j++) top->lp[j] = lg[top->ids[j]] - lse;
    return lg[id] - lse;
}

typedef struct {
    cke_session *s;
    const cke_gen_opts *o;
    size_t first;   /* where this call's tokens begin */
    int flags;      /* detokenize flags */
    char *text;     /* the decoded continuation */
    size_t len, sent;
    cke_status st;
} gen_state;

static int is_end(const cke_session *s, const cke_gen_opts *o, int32_t t) {
    const cke_engine *e = s->e;
    if (t == e->info.eos) return 1;
    for (int k = 0; o->stop_at_eot && k < e->n_eot; k++)
        if (t == e->eot[k]) return 1;
    return 0;
}

/* Decodes the continuation again (bytes split across tokens merge) and gives the callback what
 * became final. 1 when a stop string appeared, 2 when the callback cancelled, -1 on error. */
static int emit(gen_state *g, const float *raw, int32_t id, cke_err *err) {
    free(g->text);
    g->text = NULL;
    cke_session *s = g->s;
    cke_err de = {0};
    cke_status st = cke_tok_decode(s->e->r->tok, s->tok + g->first, s->n - g->first, g->flags, &g->text, &g->len, &de);
    if (st) {
        g->st = cke_fail(err, st, "%s", de.msg);
        return -1;
    }
    size_t hold, end = find_stop(g->o, g->text, g->len, &hold);
    int stopped = end < g->len;
    if (stopped) hold = 0;
    else {
        size_t u = utf8_incomplete(g->text, end);
        hold = u > hold ? u : hold;
    }
    cke_token t = {.id = id, .text = g->text + g->sent, .len = end - hold > g->sent ? end - hold - g->sent : 0};
    top_lp top;
    if (g->o->logprobs || g->o->top_logprobs) {
        t.logprob = logprobs(raw, s->api->vocab, id, g->o->top_logprobs, &top);
        t.n_top = g->o->top_logprobs < s->api->vocab ? g->o->top_logprobs : (int)s->api->vocab;
        t.top_ids = top.ids, t.top_logprobs = top.lp;
    }
    g->sent += t.len;
    if (stopped) g->len = end; /* the text ends before the stop string: the flush sends the rest */
    if (g->o->on_token && g->o->on_token(g->o->user, &t)) return 2;
    return stopped;
}

cke_status cke_session_generate(cke_session *s, const cke_gen_opts *o, cke_gen_result *res, cke_err *err) {
    cke_gen_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    if (!s || !o) return cke_fail(err, CKE_ERR_ARG, "cke_session_generate: NULL argument");
    cke_status st = check_opts(o, err);
    if (st) return st;
    if (s->n == 0) return cke_fail(err, CKE_ERR_ARG, "cke_session_generate: the session is empty (prefill a prompt first)");
    const ckm_api *api = s->api;
    cke_sampler_opts so = {.temp = o->temp, .top_k = o->top_k, .top_p = o->top_p, .min_p = o->min_p,
                           .repeat_penalty = o->repeat_penalty, .repeat_last_n = o->repeat_last_n, .seed = o->seed};
    cke_sampler *smp = NULL;
    if ((st = cke_sampler_new(&smp, api->vocab, &so, err))) return st;
    /* SentencePiece's leading space is part of the reply, except after a bare BOS */
    int bare_bos = s->n == 1 && s->tok[0] == s->e->info.bos;
    gen_state g = {.s = s, .o = o, .first = s->n,
                   .flags = CKE_TOK_DECODE_SKIP_SPECIAL | (bare_bos ? 0 : CKE_TOK_DECODE_KEEP_PREFIX)};
    res->n_prompt = (int64_t)s->n;
    if (s->b) cke_batch_enter(s->b, s->slot); /* this session's rows join the steps until it leaves */
    double t0 = now();
    st = sync_kv(s, err);
    double t1 = now();
    int done = st ? -1 : 0;
    while (!done) {
        int64_t gen = (int64_t)(s->n - g.first);
        if (o->max_tokens >= 0 && gen >= o->max_tokens) { res->stop = CKE_STOP_LENGTH; break; }
        if ((int64_t)s->n >= api->ctx) { res->stop = CKE_STOP_CONTEXT_FULL; break; }
        if ((st = sync_kv(s, err))) break;
        const float *raw = cur_logits(s);
        int32_t next = cke_sampler_next(smp, penalized(s, o, raw, g.first), s->tok, (int64_t)s->n);
        if (next < 0) { st = cke_fail(err, CKE_ERR_ARG, "the model gave no logits to sample from"); break; }
        if (is_end(s, o, next)) { res->stop = CKE_STOP_EOS; break; }
        s->tok[s->n++] = next; /* pending: it enters the KV cache when the next one is needed */
        done = emit(&g, raw, next, err);
        if (done == 1) res->stop = CKE_STOP_STRING;
        if (done == 2) res->stop = CKE_STOP_CANCELLED;
        if (done < 0) st = g.st;
    }
    if (s->b) cke_batch_leave(s->b, s->slot);
    if (!st && res->stop != CKE_STOP_CANCELLED && g.len > g.sent && o->on_token) {
        cke_token t = {.id = -1, .text = g.text + g.sent, .len = g.len - g.sent};
        o->on_token(o->user, &t); /* the held bytes: the generation is over, a cancel changes nothing */
    }
    if (st || res->stop != CKE_STOP_CANCELLED) g.sent = g.len;
    res->n_generated = (int64_t)(s->n - g.first);
    res->t_prompt_s = t1 - t0;
    res->t_gen_s = now() - t1;
    if (!g.text && !(g.text = calloc(1, 1)) && !st) st = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    if (g.text) g.text[g.sent] = 0;
    res->text = g.text, res->text_len = g.text ? g.sent : 0;
    if (res == &dummy) free(g.text);
    cke_sampler_free(smp);
    return st;
}
