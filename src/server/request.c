/* OpenAI request bodies -> cke_srv_req. Unknown fields are ignored (clients send extras such as
 * "user"); a known field of the wrong type or out of range is refused with its name as `param`.
 * null counts as absent, as in OpenAI's API. */
#include "server/request.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cke_srv_error_set(cke_srv_error *err, int http, const char *type, const char *code, const char *param,
                      const char *fmt, ...) {
    err->http = http;
    err->type = type;
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(param, ...) cke_srv_error_set(err, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

void cke_srv_req_free(cke_srv_req *r) {
    free(r->model);
    free(r->prompt);
    for (size_t i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

/* the field, or NULL when absent or null */
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Number fields: a table of name, range, integer-ness and where the value goes. */
typedef struct {
    const char *name;
    double lo, hi;
    int integer;
    size_t off;   /* offsetof in cke_srv_req */
    int is_i64;   /* stored as int64_t (else double) */
} num_field;

static const num_field num_fields[] = {
    {"temperature", 0, 2, 0, offsetof(cke_srv_req, temperature), 0},
    {"top_p", 0, 1, 0, offsetof(cke_srv_req, top_p), 0},
    {"min_p", 0, 1, 0, offsetof(cke_srv_req, min_p), 0},
    {"presence_penalty", -2, 2, 0, offsetof(cke_srv_req, presence_penalty), 0},
    {"frequency_penalty", -2, 2, 0, offsetof(cke_srv_req, frequency_penalty), 0},
    {"top_k", 0, 1 << 20, 1, offsetof(cke_srv_req, top_k), 1},
    {"max_tokens", 1, 1 << 30, 1, offsetof(cke_srv_req, max_tokens), 1},
    {"max_completion_tokens", 1, 1 << 30, 1, offsetof(cke_srv_req, max_tokens), 1},
};

static int parse_numbers(const cJSON *o, cke_srv_req *r, cke_srv_error *err) {
    for (size_t i = 0; i < sizeof num_fields / sizeof num_fields[0]; i++) {
        const num_field *f = &num_fields[i];
        const cJSON *v = field(o, f->name);
        if (!v) continue;
        if (!cJSON_IsNumber(v)) return BAD(f->name, "'%s' must be a number", f->name);
        double d = v->valuedouble;
        if (!isfinite(d) || d < f->lo || d > f->hi)
            return BAD(f->name, "'%s' must be between %g and %g", f->name, f->lo, f->hi);
        if (f->integer && d != floor(d)) return BAD(f->name, "'%s' must be an integer", f->name);
        char *dst = (char *)r + f->off;
        if (f->is_i64) *(int64_t *)(void *)dst = (int64_t)d;
        else *(double *)(void *)dst = d;
    }
    const cJSON *v = field(o, "seed");
    if (v) {
        /* a double holds integers exactly up to 2^53: enough for a seed, and refuses 1e300 */
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
            fabs(v->valuedouble) > 9007199254740992.0)
            return BAD("seed", "'seed' must be an integer");
        r->has_seed = 1;
        r->seed = (uint64_t)(int64_t)v->valuedouble;
    }
    v = field(o, "n");
    if (v) {
        if (!cJSON_IsNumber(v) || v->valuedouble != 1)
            return BAD("n", "only n = 1 is supported");
    }
    return 0;
}

static int parse_bool(const cJSON *o, const char *name, int *out, cke_srv_error *err) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return BAD(name, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int add_stop(cke_srv_req *r, const cJSON *s, cke_srv_error *err) {
    if (!cJSON_IsString(s)) return BAD("stop", "'stop' must be a string or a list of strings");
    size_t n = strlen(s->valuestring);
    if (n == 0 || n > CKE_SRV_MAX_STOP_LEN)
        return BAD("stop", "a stop string must have 1 to %d bytes", CKE_SRV_MAX_STOP_LEN);
    if (r->n_stop == CKE_SRV_MAX_STOP) return BAD("stop", "at most %d stop strings", CKE_SRV_MAX_STOP);
    if (!(r->stop[r->n_stop] = dup_str(s->valuestring)))
        return cke_srv_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    r->n_stop++;
    return 0;
}

static int parse_stop(const cJSON *o, cke_srv_req *r, cke_srv_error *err) {
    const cJSON *v = field(o, "stop"), *s;
    if (!v) return 0;
    if (!cJSON_IsArray(v)) return add_stop(r, v, err);
    cJSON_ArrayForEach(s, v) if (add_stop(r, s, err)) return -1;
    return 0;
}

/* completions: logprobs is an integer 0..5 (the number of alternatives);
 * chat: logprobs is a boolean and top_logprobs 0..20 needs it */
static int parse_logprobs(const cJSON *o, cke_srv_req *r, cke_srv_error *err) {
    const cJSON *v = field(o, "logprobs");
    if (r->kind == CKE_SRV_COMPLETIONS) {
        if (!v) return 0;
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 5)
            return BAD("logprobs", "'logprobs' must be an integer from 0 to 5");
        r->logprobs = 1;
        r->top_logprobs = (int)v->valuedouble;
        return 0;
    }
    if (parse_bool(o, "logprobs", &r->logprobs, err)) return -1;
    v = field(o, "top_logprobs");
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 20)
        return BAD("top_logprobs", "'top_logprobs' must be an integer from 0 to 20");
    if (!r->logprobs) return BAD("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r->top_logprobs = (int)v->valuedouble;
    return 0;
}

/* content: a string, or a list of {"type": "text", "text": ...} parts (joined) */
static char *message_content(const cJSON *c, size_t idx, cke_srv_error *err) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", idx);
    if (cJSON_IsString(c)) {
        char *s = dup_str(c->valuestring);
        if (!s) cke_srv_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
        return s;
    }
    if (!cJSON_IsArray(c)) {
        BAD(param, "'%s' must be a string or a list of text parts", param);
        return NULL;
    }
    size_t len = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(t) || strcmp(t->valuestring, "text") || !cJSON_IsString(x)) {
            BAD(param, "'%s': only parts {\"type\": \"text\", \"text\": ...} are supported", param);
            return NULL;
        }
        len += strlen(x->valuestring);
    }
    char *s = malloc(len + 1);
    if (!s) {
        cke_srv_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    size_t at = 0;
    cJSON_ArrayForEach(p, c) {
        const char *x = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        size_t n = strlen(x);
        memcpy(s + at, x, n);
        at += n;
    }
    s[at] = 0;
    return s;
}

static int parse_messages(const cJSON *o, cke_srv_req *r, cke_srv_error *err) {
    static const char *const roles[] = {"system", "user", "assistant"};
    const cJSON *v = field(o, "messages"), *m;
    if (!v) return BAD("messages", "'messages' is required");
    if (!cJSON_IsArray(v)) return BAD("messages", "'messages' must be a list");
    int n = cJSON_GetArraySize(v);
    if (n == 0) return BAD("messages", "'messages' must not be empty");
    if (n > CKE_SRV_MAX_MSGS) return BAD("messages", "at most %d messages", CKE_SRV_MAX_MSGS);
    if (!(r->msgs = calloc((size_t)n, sizeof *r->msgs)))
        return cke_srv_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    cJSON_ArrayForEach(m, v) {
        size_t i = r->n_msgs;
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!cJSON_IsObject(m)) return BAD(param, "'%s' must be an object", param);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) return BAD(param, "'%s.role' must be a string", param);
        size_t k = 0;
        while (k < 3 && strcmp(role->valuestring, roles[k])) k++;
        if (k == 3) return BAD(param, "'%s.role' must be system, user or assistant", param);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!c) return BAD(param, "'%s.content' is required", param);
        char *content = message_content(c, i, err);
        if (!content) return -1;
        r->msgs[i].content = content;
        r->n_msgs++;
        if (!(r->msgs[i].role = dup_str(roles[k])))
            return cke_srv_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    }
    return 0;
}

static int parse_prompt(const cJSON *o, cke_srv_req *r, cke_srv_error *err) {
    const cJSON *v = field(o, "prompt");
    if (!v) return BAD("prompt", "'prompt' is required");
    /* a list of one string is the same prompt; token-id prompts and batches are not supported */
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 && cJSON_IsString(v->child)) v = v->child;
    if (!cJSON_IsString(v)) return BAD("prompt", "'prompt' must be a string");
    if (!(r->prompt = dup_str(v->valuestring)))
        return cke_srv_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    return 0;
}

static int parse_model(const cJSON *o, cke_srv_req *r, const char *served, cke_srv_error *err) {
    const cJSON *v = field(o, "model");
    if (!v) return 0;
    if (!cJSON_IsString(v)) return BAD("model", "'model' must be a string");
    if (served && strcmp(v->valuestring, served))
        return cke_srv_error_set(err, 400, "invalid_request_error", "model_not_found", "model",
                                 "the model '%.128s' is not served here (GET /v1/models)", v->valuestring);
    if (!(r->model = dup_str(v->valuestring)))
        return cke_srv_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    return 0;
}

static int parse_object(const cJSON *o, cke_srv_req *r, const char *served, cke_srv_error *err) {
    if (!cJSON_IsObject(o)) return BAD(NULL, "the request body must be a JSON object");
    if (parse_model(o, r, served, err) || parse_numbers(o, r, err) || parse_stop(o, r, err) ||
        parse_logprobs(o, r, err) || parse_bool(o, "stream", &r->stream, err))
        return -1;
    const cJSON *so = field(o, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) return BAD("stream_options", "'stream_options' must be an object");
        if (parse_bool(so, "include_usage", &r->include_usage, err)) return -1;
    }
    return r->kind == CKE_SRV_CHAT ? parse_messages(o, r, err) : parse_prompt(o, r, err);
}

int cke_srv_req_parse(const char *body, size_t len, cke_srv_kind kind, const char *served_model, cke_srv_req *r,
                      cke_srv_error *err) {
    memset(r, 0, sizeof *r);
    memset(err, 0, sizeof *err);
    r->kind = kind;
    r->max_tokens = kind == CKE_SRV_COMPLETIONS ? 16 : -1; /* OpenAI's defaults */
    r->temperature = 1;
    r->top_p = 1;
    if (len > CKE_SRV_MAX_BODY)
        return cke_srv_error_set(err, 413, "invalid_request_error", "request_too_large", NULL,
                                 "the request body is larger than %u bytes", CKE_SRV_MAX_BODY);
    if (memchr(body, 0, len)) return BAD(NULL, "the request body contains a NUL byte");
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!o) return BAD(NULL, "the request body is not valid JSON (near byte %td)", end ? end - body : (ptrdiff_t)0);
    /* trailing bytes after the object other than whitespace are malformed too */
    for (const char *p = end; p && p < body + len; p++)
        if (!strchr(" \t\r\n", *p)) {
            cJSON_Delete(o);
            cke_srv_req_free(r);
            return BAD(NULL, "the request body has bytes after its JSON value");
        }
    int rc = parse_object(o, r, served_model, err);
    cJSON_Delete(o);
    if (rc) cke_srv_req_free(r);
    return rc;
}
