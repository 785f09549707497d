/* fuzz-src: src/server/request.c src/server/response.c */
/* libFuzzer target: cke serve's request bodies come from anyone who can reach the port. The
 * first byte picks the endpoint (even: /v1/completions, odd: /v1/chat/completions), the rest is
 * the body, parsed and validated by cke_srv_req_parse. A body must end in a request or an
 * OpenAI error object (status 400/413/500, a message): never a crash, a hang or a leak. Valid
 * requests are also rendered as answers (whole, a stream chunk, the error shape) to exercise
 * the JSON writers with the request's own strings.
 *
 * Seeds: tests/fuzz/corpus/http_request/ (real OpenAI-client bodies and broken ones); crashes
 * found are kept in tests/fuzz/regress/http_request/. tests/fuzz/run.sh http_request builds it. */
#include "server/request.h"
#include "server/response.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* strict UTF-8 (RFC 3629), written apart from the server's own check */
static int valid_utf8(const char *p) {
    const unsigned char *s = (const unsigned char *)p;
    while (*s) {
        uint32_t c = *s, n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        if (n == 9) return 0;
        uint32_t cp = n ? c & (0x3F >> n) : c;
        for (uint32_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i] & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        s += n + 1;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    cke_srv_kind kind = data[0] & 1 ? CKE_SRV_CHAT : CKE_SRV_COMPLETIONS;
    cke_srv_req r;
    cke_srv_error e;
    if (cke_srv_req_parse((const char *)data + 1, size - 1, kind, "stories260K", &r, &e)) {
        if (e.http != 400 && e.http != 413 && e.http != 500) abort();
        if (!e.message[0] || !e.type) abort();
        free(cke_srv_json_error(&e));
        return 0;
    }
    if (r.kind != kind || (kind == CKE_SRV_CHAT ? !r.n_msgs : !r.prompt)) abort();
    if (r.n_stop > CKE_SRV_MAX_STOP || r.top_logprobs > 20 || !(r.temperature >= 0 && r.temperature <= 2)) abort();
    const char *text = kind == CKE_SRV_CHAT ? r.msgs[r.n_msgs - 1].content : r.prompt;
    cke_srv_logprob lp = {.text = (char *)text, .logprob = -1.5f, .n_top = 1, .top_text = {(char *)text}, .top_logprob = {-2}};
    cke_srv_answer a = {.req = &r, .id = "cmpl-fuzz", .model = "stories260K", .created = 1};
    char *res = cke_srv_json_result(&a, text, strlen(text), "stop", &lp, 1, 3, 1);
    cke_srv_chunk c = {.text = text, .len = strlen(text), .first = 1, .lp = &lp};
    char *chunk = cke_srv_json_chunk(&a, &c);
    /* answers are UTF-8 whatever bytes the text holds (a model's lone byte tokens) */
    if ((res && !valid_utf8(res)) || (chunk && !valid_utf8(chunk))) abort();
    free(res);
    free(chunk);
    cke_srv_req_free(&r);
    return 0;
}
