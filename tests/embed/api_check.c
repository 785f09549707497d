/* The embedded API on bad input and on rewinding, built with an embedded DIR's sources in place of
 * its main.c (tests/embed/test_embed.sh):
 *   cc -I DIR api_check.c DIR/model.c DIR/weights.c DIR/kernels/\*.c -lm
 * Prints one line per case and "N passed, N failed". */
#include "model.h"

#include <stdio.h>

#if CKM_WEIGHTS_BLOB
#error "api_check is for a build with the weights compiled in (--weights const)"
#endif

#include <string.h>

static int pass, fail;

static void expect(const char *name, int ok, const char *detail) {
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", name, ok ? "" : ": ", ok ? "" : detail);
    if (ok) pass++;
    else fail++;
}

/* a call that must fail, with this text in ckm_embed_last_error() */
static void refused(const char *name, const void *r, const char *want) {
    char d[256];
    snprintf(d, sizeof d, "returned %s, error '%s', want '%s'", r ? "a result" : "NULL", ckm_embed_last_error(), want);
    expect(name, !r && strstr(ckm_embed_last_error(), want) != NULL, d);
}

static int argmax(const float *x) {
    int b = 0;
    for (int i = 1; i < CKM_VOCAB; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

int main(void) {
    static int32_t ids[CKM_CTX + 1];
    for (int i = 0; i <= CKM_CTX; i++) ids[i] = 1 + i % (CKM_VOCAB - 1);
    refused("prefill_before_init", ckm_embed_prefill(ids, 3, 0), "call ckm_embed_init first");
    expect("init_const_refuses_a_pointer", ckm_embed_init(ids, sizeof ids) == -1 && strstr(ckm_embed_last_error(), "compiled in"),
           ckm_embed_last_error());
    expect("init", ckm_embed_init(NULL, 0) == 0, ckm_embed_last_error());
    refused("no_tokens", ckm_embed_prefill(ids, 0, 0), "no tokens");
    refused("null_tokens", ckm_embed_prefill(NULL, 3, 0), "no tokens");
    refused("pos_past_cache", ckm_embed_prefill(ids, 3, 1), "past the tokens in the cache");
    refused("negative_pos", ckm_embed_prefill(ids, 3, -1), "negative");
    refused("past_context", ckm_embed_prefill(ids, CKM_CTX + 1, 0), "past the context");
    int32_t bad[2] = {1, CKM_VOCAB};
    refused("token_out_of_range", ckm_embed_prefill(bad, 2, 0), "out of range");
    bad[1] = -1;
    refused("negative_token", ckm_embed_prefill(bad, 2, 0), "out of range");

    /* a whole context, then one more is refused */
    const float *lg = ckm_embed_prefill(ids, CKM_CTX, 0);
    expect("fill_context", lg != NULL && ckm_embed_pos() == CKM_CTX, ckm_embed_last_error());
    refused("decode_past_context", ckm_embed_decode(1, CKM_CTX), "past the context");

    /* rewinding to position 0 and again: the same logits; a rewind to the middle continues as if
     * the tail had never been written */
    static float a[CKM_VOCAB], b[CKM_VOCAB];
    lg = ckm_embed_prefill(ids, 40, 0);
    if (lg) memcpy(a, lg, sizeof a);
    const float *l2 = ckm_embed_prefill(ids, 17, 0);
    l2 = l2 ? ckm_embed_prefill(ids + 17, 23, 17) : NULL;
    if (l2) memcpy(b, l2, sizeof b);
    expect("rewind_same_logits", lg && l2 && !memcmp(a, b, sizeof a), "prefill(40) differs from prefill(17) + prefill(23) at 17");
    /* decode one by one equals prefill */
    ckm_embed_prefill(ids, 1, 0);
    const float *l3 = NULL;
    for (int i = 1; i < 40; i++) l3 = ckm_embed_decode(ids[i], i);
    expect("decode_steps_same_argmax", l3 && argmax(l3) == argmax(a), "decode one by one: another next token than prefill");
    expect("pos_after", ckm_embed_pos() == 40, "ckm_embed_pos() is not 40");
    expect("logits_is_the_last", ckm_embed_logits() == l3, "ckm_embed_logits() is not the last call's");
    ckm_embed_reset();
    expect("reset", ckm_embed_pos() == 0 && !ckm_embed_logits(), "after reset: pos or logits remain");
    refused("pos_past_cache_after_reset", ckm_embed_decode(1, 1), "past the tokens in the cache");
    printf("%d passed, %d failed\n", pass, fail);
    return fail != 0;
}
