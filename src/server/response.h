/* cke serve: the JSON the server answers with, in OpenAI's shapes: error objects, the model
 * list, completions and chat completions whole or as stream chunks. Pure formatting (cJSON):
 * every function returns a malloc'd NUL-terminated string, or NULL when out of memory. */
#ifndef CKE_SERVER_RESPONSE_H
#define CKE_SERVER_RESPONSE_H

#include "server/request.h"

#include <stdint.h>

#define CKE_SRV_MAX_TOP 20

/* One generated token's log-probability and its alternatives, with their texts. */
typedef struct {
    char *text;
    float logprob;
    int n_top;
    char *top_text[CKE_SRV_MAX_TOP];
    float top_logprob[CKE_SRV_MAX_TOP];
} cke_srv_logprob;

void cke_srv_logprob_free(cke_srv_logprob *l);

/* What identifies one answer: the same id and creation time in every chunk. */
typedef struct {
    const cke_srv_req *req;
    const char *id;       /* "cmpl-..." / "chatcmpl-..." */
    const char *model;
    int64_t created;
} cke_srv_answer;

char *cke_srv_json_error(const cke_srv_error *err);
char *cke_srv_json_models(const char *model, int64_t created, int64_t ctx);

/* The whole answer (non-streaming). finish_reason: "stop" or "length". */
char *cke_srv_json_result(const cke_srv_answer *a, const char *text, size_t len, const char *finish_reason,
                          const cke_srv_logprob *lp, size_t n_lp, int64_t prompt_tokens, int64_t completion_tokens);

/* One stream chunk: a text delta (first: also the chat role), the final one with finish_reason,
 * or (usage_only) the usage chunk of stream_options.include_usage with no choices. */
typedef struct {
    const char *text;
    size_t len;
    int first;
    const char *finish_reason; /* NULL until the last chunk */
    const cke_srv_logprob *lp; /* this chunk's token, or NULL */
    int usage_only;
    int64_t prompt_tokens, completion_tokens;
} cke_srv_chunk;

char *cke_srv_json_chunk(const cke_srv_answer *a, const cke_srv_chunk *c);

#endif
