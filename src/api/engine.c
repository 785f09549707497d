/* cke_engine: a model opened from a compiled directory or through the compile cache, its
 * tokenizer and chat template. Read-only once open, so any thread may use it. */
#define _DEFAULT_SOURCE /* strdup */
#include "api/api.h"
#include "api/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cke_free(void *p) { free(p); }
const char *cke_version(void) { return CKE_VERSION; }

static char *piece_str(const cke_tok *t, int32_t id) {
    if (id < 0) return NULL;
    size_t n;
    const char *p = cke_tok_piece(t, id, &n);
    if (!p) return NULL;
    char *s = malloc(n + 1);
    if (s) memcpy(s, p, n), s[n] = 0;
    return s;
}

/* The compiled directory for `model`: itself when it holds a model.so, else the cache's. */
static cke_status model_dir(const char *model, const cke_engine_opts *o, char *dir, size_t n, cke_err *err) {
    char so[PATH_MAX + 16];
    snprintf(so, sizeof so, "%s/model.so", model);
    if (access(so, R_OK) == 0) {
        if ((size_t)snprintf(dir, n, "%s", model) >= n) return cke_fail(err, CKE_ERR_ARG, "path too long: %s", model);
        return CKE_OK;
    }
    if ((int)o->kv_type < CKE_KV_F16 || (int)o->kv_type > CKE_KV_Q8_0)
        return cke_fail(err, CKE_ERR_ARG, "kv_type %d is not a KV cache type (CKE_KV_F16, CKE_KV_F32, CKE_KV_Q8_0)",
                        (int)o->kv_type);
    cke_cache_slot slot;
    cke_status s = cke_cache_find(model, o->tokenizer, o->ctx, (int)o->kv_type, &slot, err);
    if (!s) s = cke_cache_set_tp(&slot, o->tp_rank, o->tp_size, err);
    if (!s && !slot.present) s = cke_cache_compile(&slot, (const volatile sig_atomic_t *)o->cancel, err);
    if (s) return s;
    cke_cache_touch(&slot);
    snprintf(dir, n, "%s", slot.dir);
    return CKE_OK;
}

static cke_status load_template(cke_engine *e, const cke_engine_opts *o, const char *dir, cke_err *err) {
    char *src = NULL;
    cke_status s = cke_api_find_template(o->chat_template, dir, o->tokenizer, e->r->tok, &src, &e->tpl_bos,
                                         &e->tpl_eos, e->origin, sizeof e->origin, err);
    if (!s && src) {
        cke_err pe = {0};
        s = cke_jinja_parse(src, strlen(src), &e->tpl, &pe);
        if (s) cke_fail(err, s, "%s: %s", e->origin, pe.msg);
    }
    free(src);
    if (s) return s;
    if (!e->tpl) snprintf(e->origin, sizeof e->origin, "none (plain continuation)");
    if (!e->tpl_bos) e->tpl_bos = piece_str(e->r->tok, cke_tok_bos(e->r->tok));
    if (!e->tpl_eos) e->tpl_eos = piece_str(e->r->tok, cke_tok_eos(e->r->tok));
    return CKE_OK;
}

/* The one instance with a slot per session, instead of the single-slot one the runner opened. */
static cke_status open_batch(cke_engine *e, const cke_engine_opts *o, int n_slots, cke_err *err) {
    if (!(e->batch = malloc(sizeof *e->batch))) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    const ckm_api *api = e->r->api;
    if (e->r->m) api->free(e->r->m), e->r->m = NULL;
    cke_status s = cke_batch_open(e->batch, api, e->weights, e->threads, n_slots, err);
    if (s || !o->tp_bcast || o->tp_size <= 1) return s;
    /* tensor parallel: rank 0's executor announces every call; the instance sums over the ranks */
    api->set_allreduce(e->batch->m, o->tp_allreduce, o->tp_ud);
    pthread_mutex_lock(&e->batch->mu);
    e->batch->tp_bcast = o->tp_bcast, e->batch->tp_ud = o->tp_ud, e->batch->tp_leader = o->tp_rank == 0;
    pthread_mutex_unlock(&e->batch->mu);
    return CKE_OK;
}

/* Tensor parallel: the model must be this rank's block, and gets the caller's collective. */
static cke_status set_tp(cke_engine *e, const cke_engine_opts *o, const char *dir, cke_err *err) {
    const ckm_api *api = e->r->api;
    const int size = o->tp_size > 1 ? o->tp_size : 1, have = api->tp_size > 1 ? api->tp_size : 1;
    if (have != size || (size > 1 && api->tp_rank != o->tp_rank))
        return cke_fail(err, CKE_ERR_ARG, "%s is compiled as tensor-parallel rank %d of %d, this process is rank %d of %d%s", dir,
                        api->tp_rank, have, size > 1 ? o->tp_rank : 0, size,
                        have > 1 && size == 1 ? " (run it with mpirun -np as many ranks)" : "");
    if (size == 1) return CKE_OK;
    if (!o->tp_allreduce) return cke_fail(err, CKE_ERR_ARG, "cke_engine_open: tensor parallel needs tp_allreduce");
    if (o->batch_slots && !o->tp_bcast)
        return cke_fail(err, CKE_ERR_ARG, "cke_engine_open: tensor parallel with batch_slots needs tp_bcast");
    api->set_allreduce(e->r->m, o->tp_allreduce, o->tp_ud);
    e->tp = 1;
    return CKE_OK;
}

cke_status cke_engine_tp_follow(cke_engine *e, cke_err *err) {
    if (!e || !e->batch || !e->batch->tp_bcast || e->batch->tp_leader)
        return cke_fail(err, CKE_ERR_ARG, "cke_engine_tp_follow: not a tensor-parallel batch_slots engine of a rank other than 0");
    return cke_batch_follow(e->batch, err);
}

cke_status cke_engine_open(const char *model, const cke_engine_opts *opts, cke_engine **out, cke_err *err) {
    if (!out) return cke_fail(err, CKE_ERR_ARG, "cke_engine_open: out is NULL");
    *out = NULL;
    if (!model || !*model) return cke_fail(err, CKE_ERR_ARG, "cke_engine_open: no model given");
    cke_engine_opts o = opts ? *opts : CKE_ENGINE_DEFAULTS;
    if (o.threads < 0 || o.threads > 1024 || o.n_sessions < 0 || o.ctx < 0 || o.ctx > INT32_MAX || o.batch_slots < 0 ||
        o.batch_slots > 4096)
        return cke_fail(err, CKE_ERR_ARG, "cke_engine_open: threads (0-1024), n_sessions (>= 0), ctx (>= 0), batch_slots "
                                          "(0-4096) out of range");
    if (o.batch_slots) o.n_sessions = 1; /* one instance runs every session's rows */
    if (o.threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        int ns = o.n_sessions > 0 ? o.n_sessions : 1;
        o.threads = nc / ns > 0 ? (int)(nc / ns) : 1;
    }
    char dir[PATH_MAX];
    cke_status s = model_dir(model, &o, dir, sizeof dir, err);
    if (s) return s;
    cke_engine *e = calloc(1, sizeof *e);
    if (!e) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&e->lock, NULL);
    e->threads = o.threads;
    snprintf(e->weights, sizeof e->weights, "%s/weights.bin", dir);
    s = cke_runner_open(dir, o.threads, &e->r, err);
    if (!s && !e->r->tok) s = cke_fail(err, CKE_ERR_MISSING, "%s has no tokenizer (compile with --tokenizer)", dir);
    if (!s) s = load_template(e, &o, dir, err);
    if (!s) s = set_tp(e, &o, dir, err);
    if (!s && o.batch_slots) s = open_batch(e, &o, o.batch_slots, err);
    if (s) { cke_engine_close(e); return s; }
    const ckm_api *api = e->r->api;
    e->n_eot = cke_chat_stop_tokens(e->r->tok, e->eot, 16);
    char *d = strdup(dir);
    if (!d) { cke_engine_close(e); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    e->info = (cke_model_info){.name = api->model_name, .family = api->family, .dir = d, .vocab = api->vocab,
                               .ctx = api->ctx, .bos = cke_tok_bos(e->r->tok), .eos = cke_tok_eos(e->r->tok),
                               .add_bos = cke_tok_add_bos(e->r->tok), .has_chat_template = e->tpl != NULL,
                               .chat_template_origin = e->origin};
    *out = e;
    return CKE_OK;
}

void cke_engine_close(cke_engine *e) {
    if (!e) return;
    if (e->batch) cke_batch_close(e->batch, e->r->api);
    free(e->batch);
    cke_runner_close(e->r);
    cke_jinja_free(e->tpl);
    free(e->tpl_bos);
    free(e->tpl_eos);
    free((char *)e->info.dir);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

const cke_model_info *cke_engine_info(const cke_engine *e) { return e ? &e->info : NULL; }

cke_status cke_engine_batch_stats(cke_engine *e, uint64_t *steps, uint64_t *rows, cke_err *err) {
    if (!e || !steps || !rows) return cke_fail(err, CKE_ERR_ARG, "cke_engine_batch_stats: NULL argument");
    if (!e->batch) return cke_fail(err, CKE_ERR_ARG, "cke_engine_batch_stats: the engine was opened without batch_slots");
    pthread_mutex_lock(&e->batch->mu);
    *steps = e->batch->step, *rows = e->batch->rows;
    pthread_mutex_unlock(&e->batch->mu);
    return CKE_OK;
}

cke_status cke_tokenize(const cke_engine *e, const char *text, size_t len, int add_bos, int parse_special,
                        int32_t **ids, size_t *n_ids, cke_err *err) {
    if (!e || !ids || !n_ids || (!text && len)) return cke_fail(err, CKE_ERR_ARG, "cke_tokenize: NULL argument");
    if (add_bos < -1 || add_bos > 1) return cke_fail(err, CKE_ERR_ARG, "cke_tokenize: add_bos is -1, 0 or 1");
    cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
    eo.add_bos = add_bos;
    eo.add_eos = 0;
    eo.parse_special = parse_special != 0;
    return cke_tok_encode(e->r->tok, text ? text : "", len, &eo, ids, n_ids, err);
}

cke_status cke_detokenize(const cke_engine *e, const int32_t *ids, size_t n, int flags, char **text, size_t *len,
                          cke_err *err) {
    if (!e || !text || !len || (!ids && n)) return cke_fail(err, CKE_ERR_ARG, "cke_detokenize: NULL argument");
    int f = (flags & CKE_DETOK_SKIP_SPECIAL ? CKE_TOK_DECODE_SKIP_SPECIAL : 0) |
            (flags & CKE_DETOK_KEEP_PREFIX ? CKE_TOK_DECODE_KEEP_PREFIX : 0);
    return cke_tok_decode(e->r->tok, ids, n, f, text, len, err);
}

/* Without a template: the contents, one per line. */
static cke_status join_contents(const cke_message *msgs, size_t n, char **text, size_t *len, cke_err *err) {
    size_t total = 1;
    for (size_t i = 0; i < n; i++) total += strlen(msgs[i].content) + 1;
    char *t = malloc(total), *p = t;
    if (!t) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(msgs[i].content);
        if (i) *p++ = '\n';
        memcpy(p, msgs[i].content, l), p += l;
    }
    *p = 0;
    *text = t, *len = (size_t)(p - t);
    return CKE_OK;
}

cke_status cke_chat_apply(const cke_engine *e, const cke_message *msgs, size_t n, int add_generation_prompt,
                          char **text, size_t *len, cke_err *err) {
    if (!e || !text || !len || (!msgs && n)) return cke_fail(err, CKE_ERR_ARG, "cke_chat_apply: NULL argument");
    *text = NULL, *len = 0;
    if (n > (size_t)1 << 24) return cke_fail(err, CKE_ERR_RANGE, "cke_chat_apply: %zu messages", n);
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return cke_fail(err, CKE_ERR_ARG, "cke_chat_apply: message %zu has no %s", i, msgs[i].role ? "content" : "role");
    if (!e->tpl) return join_contents(msgs, n, text, len, err);
    cke_chat_msg *m = calloc(n ? n : 1, sizeof *m);
    if (!m) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) m[i] = (cke_chat_msg){.role = msgs[i].role, .content = msgs[i].content};
    cke_jinja_chat jc = {.messages = m, .n_messages = (int64_t)n, .bos_token = e->tpl_bos, .eos_token = e->tpl_eos,
                         .add_generation_prompt = add_generation_prompt != 0};
    cke_status s = cke_jinja_render(e->tpl, &jc, text, len, err);
    free(m);
    return s;
}
