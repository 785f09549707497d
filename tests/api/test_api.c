/* The public API (include/cke/cke.h) on stories260K: two sessions in two threads give the texts
 * they give one at a time, prompt-prefix reuse gives the logits and text of a fresh prefill,
 * the callback's pieces make up the result text, cancel, stop strings, logprobs, seeds and
 * presence/frequency penalties, the context
 * limit, the chat template, and bad input answered with statuses; continuous batching (four
 * sessions as slots of one instance give the texts alone, a cancelled row, slots reused). Ends with "N passed, N failed".
 * Needs $CKE_MODELS; compiles into $CKE_CACHE (a temporary folder when unset). */
#define _DEFAULT_SOURCE /* mkdtemp, setenv */
#include "cke/cke.h"
#include "driver/compile.h" /* cke_rmtree */

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int n_pass, n_fail;

static void check(int ok, const char *what) {
    if (ok) n_pass++;
    else n_fail++, printf("FAIL %s\n", what);
}

static cke_engine *g_e;

/* the whole greedy continuation of `prompt`, generated in a session of its own */
static char *greedy(const char *prompt, int64_t max) {
    cke_err err = {0};
    cke_session *s = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    char *out = NULL;
    if (cke_session_new(g_e, &s, &err) || cke_tokenize(g_e, prompt, strlen(prompt), -1, 1, &ids, &n, &err) ||
        cke_session_prefill(s, ids, n, NULL, &err)) {
        printf("   greedy: %s\n", err.msg);
    } else {
        cke_gen_opts g = CKE_GEN_DEFAULTS;
        g.temp = 0, g.max_tokens = max;
        cke_gen_result r;
        if (!cke_session_generate(s, &g, &r, &err)) out = r.text, r.text = NULL;
        cke_gen_result_free(&r);
    }
    cke_free(ids);
    cke_session_free(s);
    return out;
}

typedef struct {
    const char *prompt;
    char *text;
} job;

static void *run_job(void *p) {
    job *j = p;
    for (int k = 0; k < 3 && !j->text; k++) j->text = greedy(j->prompt, 40);
    return NULL;
}

static void test_threads(void) {
    const char *prompts[2] = {"Once upon a time", "The cat sat"};
    char *one[2];
    for (int i = 0; i < 2; i++) one[i] = greedy(prompts[i], 40);
    check(one[0] && one[1] && strcmp(one[0], one[1]), "greedy texts of two prompts differ");
    job jobs[2] = {{prompts[0], NULL}, {prompts[1], NULL}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, run_job, &jobs[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        check(jobs[i].text && one[i] && !strcmp(jobs[i].text, one[i]), "two sessions in two threads: each its own greedy text");
        free(jobs[i].text);
        free(one[i]);
    }
}

typedef struct {
    char buf[4096];
    size_t len;
    int calls, cancel_after, flushes;
    int32_t last_id;
    float last_lp, top0_lp;
    int32_t top0;
} sink;

static int collect(void *user, const cke_token *t) {
    sink *k = user;
    if (k->len + t->len < sizeof k->buf) memcpy(k->buf + k->len, t->text, t->len), k->len += t->len;
    if (t->id < 0) { k->flushes++; return 0; }
    k->calls++;
    k->last_id = t->id, k->last_lp = t->logprob;
    if (t->n_top > 0) k->top0 = t->top_ids[0], k->top0_lp = t->top_logprobs[0];
    return k->cancel_after && k->calls >= k->cancel_after;
}

/* tol: how far the reused session's logits may be from a fresh prefill's (decode vs prefill
 * kernels: rounding only) */
static void test_prefix_reuse(cke_engine *e, double tol) {
    cke_err err = {0};
    cke_session *a = NULL, *b = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    if (cke_session_new(e, &a, &err) || cke_session_new(e, &b, &err) ||
        cke_tokenize(e, "Once upon a time", 16, -1, 1, &ids, &n, &err) || cke_session_prefill(a, ids, n, NULL, &err)) {
        check(0, err.msg);
        goto out;
    }
    cke_gen_opts g = CKE_GEN_DEFAULTS;
    g.temp = 0, g.max_tokens = 12;
    cke_gen_result r;
    check(!cke_session_generate(a, &g, &r, &err) && r.n_generated == 12, "generate 12 tokens");
    cke_gen_result_free(&r);
    size_t held;
    const int32_t *t = cke_session_tokens(a, &held);
    check(held == n + 12, "the session holds prompt + reply");
    int32_t next[40];
    memcpy(next, t, held * sizeof *t);
    int32_t more[3] = {next[1], next[2], next[3]}; /* a follow-up turn: any tokens */
    memcpy(next + held, more, sizeof more);
    size_t reused = 0;
    check(!cke_session_prefill(a, next, held + 3, &reused, &err), "prefill the follow-up");
    check(reused + 1 == held, "all but the pending last token reused");
    check(!cke_session_prefill(b, next, held + 3, &reused, &err) && reused == 0, "a fresh session reuses nothing");
    const float *la = cke_session_logits(a), *lb = cke_session_logits(b);
    double worst = 0;
    for (int64_t i = 0; la && lb && i < cke_engine_info(e)->vocab; i++) worst = fmax(worst, fabs(la[i] - lb[i]));
    check(la && lb && worst < tol, "reused prefix: the logits of a fresh prefill");
    if (worst >= tol) printf("   worst logit difference %g (tol %g)\n", worst, tol);
    g.max_tokens = 30;
    cke_gen_result ra, rb;
    check(!cke_session_generate(a, &g, &ra, &err) && !cke_session_generate(b, &g, &rb, &err) && !strcmp(ra.text, rb.text),
          "reused prefix: the greedy text of a fresh prefill");
    cke_gen_result_free(&ra);
    cke_gen_result_free(&rb);
    /* a prompt that is not a continuation: the session starts again */
    check(!cke_session_prefill(a, ids, n, &reused, &err) && reused == 0, "a different prompt: nothing reused");
out:
    cke_free(ids);
    cke_session_free(a);
    cke_session_free(b);
}

static void test_callback_stop_cancel(void) {
    cke_err err = {0};
    cke_session *s = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    char *full = greedy("Once upon a time", 40);
    if (!full || cke_session_new(g_e, &s, &err) || cke_tokenize(g_e, "Once upon a time", 16, -1, 1, &ids, &n, &err)) {
        check(0, "setup");
        goto out;
    }
    cke_gen_opts g = CKE_GEN_DEFAULTS;
    g.temp = 0, g.max_tokens = 40, g.on_token = collect;
    sink k = {0};
    g.user = &k;
    cke_gen_result r;
    g.logprobs = 1, g.top_logprobs = 3;
    cke_session_prefill(s, ids, n, NULL, &err);
    check(!cke_session_generate(s, &g, &r, &err), "generate with a callback");
    check(r.stop == CKE_STOP_LENGTH && r.n_generated == 40 && k.calls == 40, "40 tokens, one call each, stop: length");
    check(k.len == r.text_len && !memcmp(k.buf, r.text, k.len) && !strcmp(r.text, full), "the pieces make the result text");
    check(k.top0 == k.last_id && fabsf(k.top0_lp - k.last_lp) < 1e-6f && k.last_lp <= 0, "greedy: the token is the top logprob");
    cke_gen_result_free(&r);
    /* a stop string: the second word of the text */
    const char *sp = strchr(full + 1, ' ');
    char stop[16] = "";
    if (sp) snprintf(stop, sizeof stop, "%.*s", (int)strcspn(sp + 1, " ,.") + 1, sp);
    const char *stops[1] = {stop};
    memset(&k, 0, sizeof k);
    g.stop = stops, g.n_stop = 1, g.logprobs = 0, g.top_logprobs = 0;
    cke_session_prefill(s, ids, n, NULL, &err);
    check(!cke_session_generate(s, &g, &r, &err) && r.stop == CKE_STOP_STRING, "stop string: stop reason");
    check(r.text_len == (size_t)(sp - full) && !memcmp(r.text, full, r.text_len), "stop string: the text ends before it");
    check(k.len == r.text_len && !memcmp(k.buf, r.text, k.len), "stop string: the callback got exactly the text");
    cke_gen_result_free(&r);
    /* cancel after 5 tokens */
    memset(&k, 0, sizeof k);
    k.cancel_after = 5;
    g.n_stop = 0;
    cke_session_prefill(s, ids, n, NULL, &err);
    check(!cke_session_generate(s, &g, &r, &err) && r.stop == CKE_STOP_CANCELLED && r.n_generated == 5 && k.calls == 5 &&
              k.flushes == 0,
          "cancel from the callback: 5 tokens");
    cke_gen_result_free(&r);
out:
    free(full);
    cke_free(ids);
    cke_session_free(s);
}

/* the text of one generation from "Once upon a time" with these options */
static char *gen_text(cke_session *s, const cke_gen_opts *g) {
    cke_err err = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    char *out = NULL;
    cke_gen_result r;
    if (!cke_tokenize(g_e, "Once upon a time", 16, -1, 1, &ids, &n, &err) && !cke_session_prefill(s, ids, n, NULL, &err) &&
        !cke_session_generate(s, g, &r, &err))
        out = r.text, r.text = NULL;
    cke_gen_result_free(&r);
    cke_free(ids);
    return out;
}

/* a seed reproduces a sampled text; the OpenAI penalties change a greedy one */
static void test_sampling(void) {
    cke_err err = {0};
    cke_session *s = NULL;
    if (cke_session_new(g_e, &s, &err)) { check(0, err.msg); return; }
    cke_gen_opts g = CKE_GEN_DEFAULTS;
    g.max_tokens = 40, g.temp = 1.0f, g.seed = 7;
    char *a = gen_text(s, &g), *b = gen_text(s, &g);
    g.seed = 8;
    char *c = gen_text(s, &g);
    check(a && b && !strcmp(a, b), "the same seed: the same sampled text");
    check(a && c && strcmp(a, c), "another seed: another text");
    g.temp = 0;
    char *plain = gen_text(s, &g);
    g.frequency_penalty = 2.0f;
    char *freq = gen_text(s, &g);
    g.frequency_penalty = 0, g.presence_penalty = 2.0f;
    char *pres = gen_text(s, &g);
    check(plain && freq && pres && strcmp(plain, freq) && strcmp(plain, pres), "presence/frequency penalties change the greedy text");
    free(a), free(b), free(c), free(plain), free(freq), free(pres);
    cke_session_free(s);
}

static void test_limits_and_bad_input(void) {
    cke_err err = {0};
    cke_session *s = NULL;
    cke_engine *e2 = NULL;
    const cke_model_info *mi = cke_engine_info(g_e);
    check(cke_engine_open(NULL, NULL, &e2, &err) == CKE_ERR_ARG && !e2, "open NULL: CKE_ERR_ARG");
    check(cke_engine_open("/nonexistent/model.gguf", NULL, &e2, &err) == CKE_ERR_IO && !e2, "open a missing file: CKE_ERR_IO");
    check(cke_session_new(NULL, &s, &err) == CKE_ERR_ARG, "session of NULL");
    check(!cke_session_new(g_e, &s, &err), "session_new");
    int32_t *ids = NULL;
    size_t n = 0;
    check(cke_tokenize(g_e, NULL, 3, -1, 0, &ids, &n, &err) == CKE_ERR_ARG, "tokenize NULL text");
    int32_t bad[2] = {1, (int32_t)mi->vocab};
    check(cke_session_prefill(s, bad, 2, NULL, &err) == CKE_ERR_RANGE, "token id == vocab: CKE_ERR_RANGE");
    bad[1] = -1;
    check(cke_session_prefill(s, bad, 2, NULL, &err) == CKE_ERR_RANGE, "token id -1: CKE_ERR_RANGE");
    check(cke_session_prefill(s, NULL, 2, NULL, &err) == CKE_ERR_ARG, "prefill NULL");
    check(cke_session_prefill(s, bad, 0, NULL, &err) == CKE_ERR_ARG, "prefill no tokens");
    cke_gen_opts g = CKE_GEN_DEFAULTS;
    check(cke_session_generate(s, &g, NULL, &err) == CKE_ERR_ARG, "generate in an empty session");
    check(cke_session_logits(s) == NULL, "no logits in an empty session");
    size_t big = (size_t)mi->ctx + 1;
    int32_t *many = calloc(big, sizeof *many);
    for (size_t i = 0; many && i < big; i++) many[i] = 1 + (int32_t)(i % 50);
    check(many && cke_session_prefill(s, many, big, NULL, &err) == CKE_ERR_RANGE && strstr(err.msg, "longer than the context"),
          "a prompt longer than ctx: CKE_ERR_RANGE");
    /* a prompt of ctx - 5 tokens: generation stops with the context full */
    check(many && !cke_session_prefill(s, many, (size_t)mi->ctx - 5, NULL, &err), "prefill ctx - 5 tokens");
    cke_gen_result r;
    g.temp = 0, g.max_tokens = -1;
    check(!cke_session_generate(s, &g, &r, &err) && (r.stop == CKE_STOP_CONTEXT_FULL || r.stop == CKE_STOP_EOS),
          "max_tokens -1: until the context is full");
    if (r.stop == CKE_STOP_CONTEXT_FULL) check(r.n_generated == 5, "5 tokens fill the context");
    cke_gen_result_free(&r);
    g.temp = -1;
    check(cke_session_generate(s, &g, &r, &err) == CKE_ERR_ARG, "temp -1: CKE_ERR_ARG");
    cke_gen_result_free(&r);
    g.temp = 0, g.top_logprobs = 21;
    check(cke_session_generate(s, &g, &r, &err) == CKE_ERR_ARG, "top_logprobs 21: CKE_ERR_ARG");
    cke_gen_result_free(&r);
    const char *empty[1] = {""};
    g.top_logprobs = 0, g.stop = empty, g.n_stop = 1;
    check(cke_session_generate(s, &g, &r, &err) == CKE_ERR_ARG, "an empty stop string: CKE_ERR_ARG");
    cke_gen_result_free(&r);
    free(many);
    cke_session_free(s);
    cke_message m[2] = {{"user", "hi"}, {NULL, "x"}};
    char *text = NULL;
    size_t len = 0;
    check(cke_chat_apply(g_e, m, 2, 1, &text, &len, &err) == CKE_ERR_ARG, "chat_apply: a message without a role");
}

static void test_chat_template(const char *model) {
    cke_err err = {0};
    cke_engine *e = NULL;
    cke_engine_opts o = CKE_ENGINE_DEFAULTS;
    o.threads = 1, o.ctx = 128, o.chat_template = "chatml";
    if (cke_engine_open(model, &o, &e, &err)) { check(0, err.msg); return; }
    check(cke_engine_info(e)->has_chat_template, "chatml: has a template");
    cke_message m[2] = {{"system", "Be brief."}, {"user", "hi"}};
    char *text = NULL;
    size_t len = 0;
    check(!cke_chat_apply(e, m, 2, 1, &text, &len, &err) && text &&
              !strcmp(text, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"),
          "chatml rendering");
    if (text) printf("   rendered %zu bytes\n", len);
    cke_free(text);
    cke_engine_close(e);
    o.chat_template = "/nonexistent.jinja";
    check(cke_engine_open(model, &o, &e, &err) == CKE_ERR_ARG && !e, "a missing template file: CKE_ERR_ARG");
}

/* ------------------------------------------------------------------ continuous batching */

typedef struct {
    cke_engine *e;
    const char *prompt;
    int cancel_after; /* 0: run to max_tokens */
    int slow_at;      /* > 0: the callback sleeps 0.3 s at this token (a slow stream reader) */
    char *text;
    int64_t n_gen;
    cke_stop_reason stop;
    pthread_barrier_t *go; /* every job prefilled before any generates */
} bjob;

static int cancel_cb(void *user, const cke_token *t) {
    bjob *j = user;
    if (t->id >= 0 && j->slow_at && j->n_gen + 1 == j->slow_at) nanosleep(&(struct timespec){0, 300000000L}, NULL);
    if (j->slow_at && t->id >= 0) j->n_gen++;
    return t->id >= 0 && j->cancel_after && ++j->n_gen >= j->cancel_after;
}

/* a session of the batched engine, greedy 40 tokens; the thread's sessions step together */
static void *run_bjob(void *p) {
    bjob *j = p;
    cke_err err = {0};
    cke_session *s = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    if (cke_session_new(j->e, &s, &err) || cke_tokenize(j->e, j->prompt, strlen(j->prompt), -1, 1, &ids, &n, &err) ||
        cke_session_prefill(s, ids, n, NULL, &err)) {
        printf("   batched job: %s\n", err.msg);
        pthread_barrier_wait(j->go);
    } else {
        pthread_barrier_wait(j->go);
        cke_gen_opts g = CKE_GEN_DEFAULTS;
        g.temp = 0, g.max_tokens = 40, g.on_token = cancel_cb, g.user = j;
        cke_gen_result r;
        if (!cke_session_generate(s, &g, &r, &err)) j->text = r.text, r.text = NULL, j->stop = r.stop;
        cke_gen_result_free(&r);
    }
    cke_free(ids);
    cke_session_free(s);
    return NULL;
}

static void run_bjobs(bjob *jobs, int n) {
    pthread_t th[8];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) jobs[i].go = &go;
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, run_bjob, &jobs[i]);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
}

static void test_batched(const char *model) {
    static const char *const prompts[4] = {"Once upon a time", "The cat sat", "Lily and Tom went to the park",
                                           "One day, a little bird"};
    char *alone[4];
    for (int i = 0; i < 4; i++) alone[i] = greedy(prompts[i], 40);
    cke_err err = {0};
    cke_engine_opts o = CKE_ENGINE_DEFAULTS;
    o.threads = 1, o.ctx = 128, o.batch_slots = 4;
    cke_engine *e = NULL;
    if (cke_engine_open(model, &o, &e, &err)) {
        check(0, err.msg);
        goto out;
    }
    bjob jobs[4];
    for (int i = 0; i < 4; i++) jobs[i] = (bjob){.e = e, .prompt = prompts[i]};
    run_bjobs(jobs, 4);
    for (int i = 0; i < 4; i++) {
        check(jobs[i].text && alone[i] && !strcmp(jobs[i].text, alone[i]), "batched: 4 prompts, each the greedy text alone");
        free(jobs[i].text);
    }
    uint64_t steps = 0, rows = 0;
    check(!cke_engine_batch_stats(e, &steps, &rows, &err) && rows >= 40 * 4 - 4 && rows > steps,
          "batched: the rows went through shared steps");
    printf("   batched: %llu rows in %llu steps\n", (unsigned long long)rows, (unsigned long long)steps);
    check(cke_engine_batch_stats(g_e, &steps, &rows, &err) == CKE_ERR_ARG, "batch stats of an unbatched engine: CKE_ERR_ARG");
    /* row 1 cancels after 5 tokens; the others go on to the same texts */
    for (int i = 0; i < 4; i++) jobs[i] = (bjob){.e = e, .prompt = prompts[i], .cancel_after = i == 1 ? 5 : 0};
    run_bjobs(jobs, 4);
    check(jobs[1].stop == CKE_STOP_CANCELLED && jobs[1].n_gen == 5, "batched: the cancelled row stops after 5 tokens");
    for (int i = 0; i < 4; i++) {
        if (i != 1) check(jobs[i].text && alone[i] && !strcmp(jobs[i].text, alone[i]), "batched: a cancel leaves the other rows alone");
        free(jobs[i].text);
    }
    /* row 2's callback blocks 0.3 s: the others step on without it, and all get their texts */
    cke_engine_batch_stats(e, &steps, &rows, &err);
    uint64_t rows0 = rows;
    for (int i = 0; i < 4; i++) jobs[i] = (bjob){.e = e, .prompt = prompts[i], .slow_at = i == 2 ? 3 : 0};
    run_bjobs(jobs, 4);
    for (int i = 0; i < 4; i++) {
        check(jobs[i].text && alone[i] && !strcmp(jobs[i].text, alone[i]), "batched: a slow callback: every row its own text");
        free(jobs[i].text);
    }
    check(!cke_engine_batch_stats(e, &steps, &rows, &err) && rows - rows0 >= 4 * 40 - 4, "batched: rows counted");
    /* the slots were given back: 4 sessions again, a 5th is refused until one is freed */
    cke_session *s[5] = {0};
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= !cke_session_new(e, &s[i], &err);
    check(ok, "batched: 4 slots free again after the jobs");
    check(cke_session_new(e, &s[4], &err) == CKE_ERR_RANGE && !s[4], "batched: a 5th session is refused");
    cke_session_free(s[2]);
    s[2] = NULL;
    check(!cke_session_new(e, &s[2], &err), "batched: a freed slot is taken again");
    /* one slot, prompt after prompt: the second cuts the first's cache back (prefix reuse) */
    int32_t *ids = NULL;
    size_t n = 0, reused = 0;
    cke_gen_opts g = CKE_GEN_DEFAULTS;
    g.temp = 0, g.max_tokens = 40;
    cke_gen_result r = {0};
    for (int k = 0; k < 2; k++) {
        const char *p = prompts[k ? 0 : 2];
        if (cke_tokenize(e, p, strlen(p), -1, 1, &ids, &n, &err) || cke_session_prefill(s[0], ids, n, &reused, &err) ||
            cke_session_generate(s[0], &g, &r, &err))
            check(0, err.msg);
        cke_free(ids);
        ids = NULL;
        if (k) check(reused == 1 && r.text && alone[0] && !strcmp(r.text, alone[0]),
                     "batched: a reused slot (common prefix: BOS) gives the greedy text alone");
        cke_gen_result_free(&r);
    }
    for (int i = 0; i < 5; i++) cke_session_free(s[i]);
out:
    cke_engine_close(e);
    for (int i = 0; i < 4; i++) free(alone[i]);
}

/* The default f16 KV cache: its own compiled variant in the cache (not the f32 engine's), prefix
 * reuse against a fresh prefill within 2e-2 (decode and prefill compute k/v ~1e-6 apart, which
 * the cache's rounding to 2^-11 sometimes turns into one f16 step: 7.8e-3 measured); and an
 * unknown kv_type is refused. */
static void test_kv_f16(const char *model) {
    cke_err err = {0};
    cke_engine *e = NULL;
    cke_engine_opts o = CKE_ENGINE_DEFAULTS;
    o.threads = 1, o.ctx = 128, o.n_sessions = 2;
    if (cke_engine_open(model, &o, &e, &err)) { check(0, err.msg); return; }
    check(strcmp(cke_engine_info(e)->dir, cke_engine_info(g_e)->dir) != 0, "f16 and f32 KV: different compiled variants");
    test_prefix_reuse(e, 2e-2);
    cke_engine_close(e);
    cke_engine *bad = NULL;
    o.kv_type = (cke_kv_type)7;
    check(cke_engine_open(model, &o, &bad, &err) == CKE_ERR_ARG && !bad && strstr(err.msg, "kv_type"),
          "kv_type 7: CKE_ERR_ARG naming kv_type");
}

int main(void) {
    const char *dir = getenv("CKE_MODELS");
    char model[4096];
    snprintf(model, sizeof model, "%s/stories260K/stories260K.gguf", dir ? dir : "../shared/models");
    char tmp[] = "/tmp/cke-api.XXXXXX";
    const char *cache = getenv("CKE_CACHE");
    if (!cache || !*cache) {
        if (!mkdtemp(tmp)) { puts("FAIL mkdtemp\n0 passed, 1 failed"); return 1; }
        setenv("CKE_CACHE", tmp, 1);
    }
    cke_err err = {0};
    cke_engine_opts o = CKE_ENGINE_DEFAULTS;
    /* an f32 KV cache: prefix reuse (decode steps) against a fresh prefill is then float rounding
     * only (1e-3); the default f16 cache is checked by test_kv_f16 */
    o.threads = 1, o.ctx = 128, o.n_sessions = 2, o.kv_type = CKE_KV_F32;
    if (cke_engine_open(model, &o, &g_e, &err)) {
        printf("FAIL open %s: %s\n0 passed, 1 failed\n", model, err.msg);
        return 1;
    }
    const cke_model_info *mi = cke_engine_info(g_e);
    check(mi->ctx == 128 && mi->vocab == 512 && mi->bos == 1 && mi->eos == 2 && mi->add_bos == 1 && !strcmp(mi->family, "llama"),
          "model facts");
    test_threads();
    test_prefix_reuse(g_e, 1e-3);
    test_kv_f16(model);
    test_callback_stop_cancel();
    test_sampling();
    test_limits_and_bad_input();
    test_chat_template(model);
    test_batched(model);
    cke_engine_close(g_e);
    if (!cache || !*cache) cke_rmtree(tmp, NULL); /* the cache this test made */
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
