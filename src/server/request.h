/* cke serve: an OpenAI request body -> a validated request. A pure function of its input (no
 * engine, no I/O), so it is fuzzed on its own (tests/fuzz/fuzz_http_request.c). Anything a
 * client may send that the server cannot honour is refused here with an OpenAI-style error:
 * HTTP status, message, the offending parameter and a code. */
#ifndef CKE_SERVER_REQUEST_H
#define CKE_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define CKE_SRV_MAX_BODY   (1u << 20) /* bytes; larger bodies get 413 */
#define CKE_SRV_MAX_STOP   4          /* as OpenAI */
#define CKE_SRV_MAX_STOP_LEN 256      /* bytes per stop string */
#define CKE_SRV_MAX_MSGS   1024

typedef enum { CKE_SRV_COMPLETIONS, CKE_SRV_CHAT } cke_srv_kind;

typedef struct {
    char *role;    /* system, user or assistant */
    char *content; /* text (content parts of type "text" are joined) */
} cke_srv_msg;

typedef struct {
    cke_srv_kind kind;
    char *model;             /* as sent, or NULL */
    char *prompt;            /* completions */
    cke_srv_msg *msgs;       /* chat */
    size_t n_msgs;
    int64_t max_tokens;      /* -1: up to the end of the context */
    double temperature, top_p, min_p, presence_penalty, frequency_penalty;
    int64_t top_k;           /* 0: off */
    int has_seed;
    uint64_t seed;
    char *stop[CKE_SRV_MAX_STOP];
    int n_stop;
    int logprobs;            /* return the chosen token's logprob */
    int top_logprobs;        /* and this many alternatives (0..20) */
    int stream, include_usage;
} cke_srv_req;

typedef struct {
    int http;                /* 400, 401, 404, 405, 413, 503, 500 */
    const char *type;        /* "invalid_request_error", "server_error" ... */
    const char *code;        /* short machine code or NULL */
    char param[64];          /* offending field, "" when none */
    char message[384];
} cke_srv_error;

/* Parses and validates body[0..len) (not NUL-terminated) as a request of `kind`. served_model is
 * the id the server answers to (a request naming another model is refused). Returns 0 with *r
 * filled (free with cke_srv_req_free), or -1 with *err filled and *r empty. */
int cke_srv_req_parse(const char *body, size_t len, cke_srv_kind kind, const char *served_model, cke_srv_req *r,
                      cke_srv_error *err);
void cke_srv_req_free(cke_srv_req *r);

/* Fills err and returns -1 (printf-style message). */
int cke_srv_error_set(cke_srv_error *err, int http, const char *type, const char *code, const char *param,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
