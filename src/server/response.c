/* OpenAI response shapes built with cJSON (which escapes any bytes a model produces). */
#include "server/response.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

void cke_srv_logprob_free(cke_srv_logprob *l) {
    free(l->text);
    for (int i = 0; i < l->n_top; i++) free(l->top_text[i]);
    memset(l, 0, sizeof *l);
}

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, surrogates or code
 * points above U+10FFFF), or 0 when s starts with an invalid one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

/* A model can emit a lone byte token (<0xE7>) in the middle of its text; cJSON copies bytes >= 0x80
 * as they are, and JSON must be UTF-8. Outside strings the printed JSON is ASCII, so every invalid
 * byte is inside a string and becomes the escape \ufffd (U+FFFD, as a lossy decoder shows it). */
static char *utf8_clean(char *json) {
    size_t n = strlen(json), bad = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq((const unsigned char *)json + i, n - i);
        bad += !l;
        i += l ? l : 1;
    }
    if (!bad) return json;
    char *out = malloc(n + 5 * bad + 1), *w = out;
    if (out)
        for (size_t i = 0; i < n;) {
            size_t l = utf8_seq((const unsigned char *)json + i, n - i);
            if (l) memcpy(w, json + i, l), w += l, i += l;
            else memcpy(w, "\\ufffd", 6), w += 6, i++;
        }
    if (out) *w = 0;
    free(json); /* cJSON allocates with malloc (no hooks are set) */
    return out;
}

/* renders and frees o; NULL when anything failed on the way (o NULL). The text is always valid
 * UTF-8. */
static char *finish(cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s ? utf8_clean(s) : NULL;
}

/* cJSON strings stop at a NUL: a model's text with one gets it cut there, never overread */
static cJSON *add_text(cJSON *o, const char *name, const char *text, size_t len) {
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, text, len);
    s[len] = 0;
    cJSON *v = cJSON_AddStringToObject(o, name, s);
    free(s);
    return v;
}

char *cke_srv_json_error(const cke_srv_error *err) {
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    if (!e) return finish(o);
    cJSON_AddStringToObject(e, "message", err->message);
    cJSON_AddStringToObject(e, "type", err->type ? err->type : "invalid_request_error");
    if (err->param[0]) cJSON_AddStringToObject(e, "param", err->param);
    else cJSON_AddNullToObject(e, "param");
    if (err->code) cJSON_AddStringToObject(e, "code", err->code);
    else cJSON_AddNullToObject(e, "code");
    return finish(o);
}

char *cke_srv_json_models(const char *model, int64_t created, int64_t ctx) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    if (!data || !m || !cJSON_AddItemToArray(data, m)) {
        cJSON_Delete(m);
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddStringToObject(m, "id", model);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "cke");
    cJSON_AddNumberToObject(m, "context_length", (double)ctx);
    return finish(o);
}

static void add_header(cJSON *o, const cke_srv_answer *a, int chunk) {
    int chat = a->req->kind == CKE_SRV_CHAT;
    cJSON_AddStringToObject(o, "id", a->id);
    cJSON_AddStringToObject(o, "object",
                            chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)a->created);
    cJSON_AddStringToObject(o, "model", a->model);
}

static cJSON *bytes_of(const char *s) {
    cJSON *b = cJSON_CreateArray();
    for (const unsigned char *p = (const unsigned char *)s; b && *p; p++)
        cJSON_AddItemToArray(b, cJSON_CreateNumber(*p));
    return b;
}

/* chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]} */
static cJSON *chat_logprobs(const cke_srv_logprob *lp, size_t n) {
    cJSON *o = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(o, "content");
    for (size_t i = 0; content && i < n; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(content, t);
        cJSON_AddStringToObject(t, "token", lp[i].text);
        cJSON_AddNumberToObject(t, "logprob", lp[i].logprob);
        cJSON_AddItemToObject(t, "bytes", bytes_of(lp[i].text));
        cJSON *top = cJSON_AddArrayToObject(t, "top_logprobs");
        for (int k = 0; top && k < lp[i].n_top; k++) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddItemToArray(top, a);
            cJSON_AddStringToObject(a, "token", lp[i].top_text[k]);
            cJSON_AddNumberToObject(a, "logprob", lp[i].top_logprob[k]);
            cJSON_AddItemToObject(a, "bytes", bytes_of(lp[i].top_text[k]));
        }
    }
    return o;
}

/* completions: {"tokens", "token_logprobs", "top_logprobs": [{text: lp}], "text_offset"} */
static cJSON *completion_logprobs(const cke_srv_logprob *lp, size_t n, size_t offset0) {
    cJSON *o = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens"), *lps = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(o, "top_logprobs"), *offs = cJSON_AddArrayToObject(o, "text_offset");
    size_t at = offset0;
    for (size_t i = 0; tops && i < n; i++) {
        cJSON_AddItemToArray(toks, cJSON_CreateString(lp[i].text));
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(lp[i].logprob));
        cJSON *t = cJSON_CreateObject();
        for (int k = 0; t && k < lp[i].n_top; k++)
            if (!cJSON_GetObjectItemCaseSensitive(t, lp[i].top_text[k]))
                cJSON_AddNumberToObject(t, lp[i].top_text[k], lp[i].top_logprob[k]);
        cJSON_AddItemToArray(tops, t);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)at));
        at += strlen(lp[i].text);
    }
    return o;
}

static void add_usage(cJSON *o, int64_t prompt, int64_t completion) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)completion);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(prompt + completion));
}

char *cke_srv_json_result(const cke_srv_answer *a, const char *text, size_t len, const char *finish_reason,
                          const cke_srv_logprob *lp, size_t n_lp, int64_t prompt_tokens, int64_t completion_tokens) {
    cJSON *o = cJSON_CreateObject();
    add_header(o, a, 0);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (a->req->kind == CKE_SRV_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        add_text(m, "content", text, len);
        if (a->req->logprobs) cJSON_AddItemToObject(c, "logprobs", chat_logprobs(lp, n_lp));
        else cJSON_AddNullToObject(c, "logprobs");
    } else {
        add_text(c, "text", text, len);
        if (a->req->logprobs) cJSON_AddItemToObject(c, "logprobs", completion_logprobs(lp, n_lp, 0));
        else cJSON_AddNullToObject(c, "logprobs");
    }
    cJSON_AddStringToObject(c, "finish_reason", finish_reason);
    add_usage(o, prompt_tokens, completion_tokens);
    return finish(o);
}

char *cke_srv_json_chunk(const cke_srv_answer *a, const cke_srv_chunk *k) {
    cJSON *o = cJSON_CreateObject();
    add_header(o, a, 1);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (k->usage_only) {
        add_usage(o, k->prompt_tokens, k->completion_tokens);
        return finish(o);
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (a->req->kind == CKE_SRV_CHAT) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (k->first) cJSON_AddStringToObject(d, "role", "assistant");
        if (k->len || !k->finish_reason) add_text(d, "content", k->text ? k->text : "", k->len);
        if (a->req->logprobs && k->lp) cJSON_AddItemToObject(c, "logprobs", chat_logprobs(k->lp, 1));
        else cJSON_AddNullToObject(c, "logprobs");
    } else {
        add_text(c, "text", k->text ? k->text : "", k->len);
        if (a->req->logprobs && k->lp) cJSON_AddItemToObject(c, "logprobs", completion_logprobs(k->lp, 1, 0));
        else cJSON_AddNullToObject(c, "logprobs");
    }
    if (k->finish_reason) cJSON_AddStringToObject(c, "finish_reason", k->finish_reason);
    else cJSON_AddNullToObject(c, "finish_reason");
    return finish(o);
}
