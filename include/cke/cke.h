/* libcke: the public C API of cke. Open a model, tokenize, apply its chat template, and generate
 * text in sessions with a per-token callback. `cke run`, `cke chat` and `cke serve` are clients
 * of this API.
 *
 *   cke_engine *e;  cke_err err;
 *   cke_engine_opts o = CKE_ENGINE_DEFAULTS;
 *   if (cke_engine_open("model.gguf", &o, &e, &err)) { puts(err.msg); return 1; }
 *   cke_session *s;  cke_session_new(e, &s, &err);
 *   int32_t *ids; size_t n;
 *   cke_tokenize(e, "Once upon a time", 16, -1, 1, &ids, &n, &err);
 *   cke_session_prefill(s, ids, n, NULL, &err);  cke_free(ids);
 *   cke_gen_opts g = CKE_GEN_DEFAULTS;  g.temp = 0;  g.max_tokens = 64;
 *   g.on_token = print_piece;  g.user = stdout;
 *   cke_gen_result r;  cke_session_generate(s, &g, &r, &err);
 *   cke_gen_result_free(&r);  cke_session_free(s);  cke_engine_close(e);
 *
 * Errors: every function that can fail returns a cke_status (CKE_OK = 0) and, when err is not
 * NULL, a message in err->msg. The library never prints and never exits.
 *
 * Ownership: memory the library returns through a pointer-to-pointer (token ids, text) is the
 * caller's, freed with cke_free(). Strings inside cke_model_info and cke_token live as long as
 * the engine / until the callback returns. Inputs are only read during the call.
 *
 * Threads: a cke_engine is read-only once opened: tokenize, detokenize, chat_apply and
 * session_new may be called from any number of threads at once. A cke_session is one sequence
 * with its own model instance (arena + KV cache): different sessions run concurrently from
 * different threads; one session must not be used by two threads at once. Close every session
 * before its engine. Each session's forward pass uses its own OpenMP team of `threads` threads.
 *
 * Continuous batching (cke_engine_opts.batch_slots = N > 0): the engine opens ONE model instance
 * with N KV slots and every session is a slot of it (at most N sessions at once). The API is the
 * same; what changes is how the forward passes run: sessions generating at the same time on
 * different threads step together, each decode step one forward over all of them (one row per
 * session, its own position and cache), and a prefill runs in chunks between those steps. A
 * step runs once every session inside cke_session_generate has its next token ready, or 20 ms
 * after its first row: a session still in its callback then (a slow stream reader) misses steps
 * until it hands its next token in, so it cannot stall the others. One thread may still drive several
 * sessions one after another; driving two at once needs two threads. Outputs equal the unbatched
 * ones to float rounding (a product over n rows sums in another order). */
#ifndef CKE_CKE_H
#define CKE_CKE_H

#include "cke/status.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKE_API_VERSION 1
#define CKE_VERSION "0.10.0"

typedef struct cke_engine cke_engine;
typedef struct cke_session cke_session;

/* Frees memory the library returned (token arrays, text). NULL is fine. */
void cke_free(void *p);
const char *cke_version(void); /* CKE_VERSION of the library */

/* ------------------------------------------------------------------ engine: a loaded model */

/* Element type of the KV cache a model is compiled with (`--kv-type`). F16, the default, halves the
 * cache's memory and the bytes decode streams at depth; F32 keeps the activations' own values
 * (bit-exact with an f32 reference); Q8_0 (ggml's blocks of 32 int8 + an f16 scale, 34 bytes per
 * 32 values) about halves f16 again, for models whose head_dim is a multiple of 32. */
typedef enum { CKE_KV_F16 = 0, CKE_KV_F32 = 1, CKE_KV_Q8_0 = 2 } cke_kv_type;
const char *cke_kv_type_name(cke_kv_type t);            /* "f16", "f32", "q8_0" */
int cke_kv_type_parse(const char *s, cke_kv_type *out); /* 0, or -1 for any other name */

typedef struct {
    int threads;           /* threads per session's forward pass; 0: online cores / n_sessions */
    int64_t ctx;           /* context to compile a model file for; 0: the model's own. Ignored for a
                            * compiled directory (its ctx is fixed) */
    const char *tokenizer; /* tokenizer file for a llama2.c checkpoint, else NULL */
    const char *chat_template; /* NULL: the model's own (see cke_chat_apply); else a built-in
                                * format ("chatml", "llama2", "gemma", "phi3") or a file (Jinja
                                * text, tokenizer_config.json, .gguf) */
    int n_sessions;        /* hint: sessions expected to run at once (>= 1); divides threads */
    volatile int *cancel;  /* when set nonzero by another thread, a compile in progress stops */
    int batch_slots;       /* 0: each session its own model instance; N > 0: continuous batching,
                            * sessions are the N slots of one instance of `threads` threads (see
                            * the top of this file); cke_session_new fails when all are taken */
    cke_kv_type kv_type;   /* KV cache type to compile a model file for (CKE_KV_F16 default). Ignored
                            * for a compiled directory (its type is fixed: cke-model.txt's kv_type) */
    /* Tensor parallel (`mpirun -np N cke run`): this process is rank tp_rank of tp_size > 1. A
     * model file is compiled as that rank's block of the heads and FFN columns (its own cache
     * variant); a compiled directory must be that rank's (cke compile --tp-size --tp-rank).
     * tp_allreduce must leave in out[0..n) the sum over the ranks of their in[0..n), the same on
     * every rank, and return 0 (see ckm_allreduce_fn in model_abi.h); every rank must make the
     * same calls in the same order: one session at a time, or with batch_slots, rank 0's
     * sessions while the other ranks run cke_engine_tp_follow, rank 0 announcing each model call
     * through tp_bcast (rank 0's n bytes of buf to every rank; 0 or -1). */
    int tp_rank, tp_size;
    int (*tp_allreduce)(void *ud, float *out, const float *in, int64_t n);
    int (*tp_bcast)(void *ud, void *buf, size_t n);
    void *tp_ud;
} cke_engine_opts;

#define CKE_ENGINE_DEFAULTS ((cke_engine_opts){.threads = 0, .ctx = 0, .tokenizer = NULL, \
                                               .chat_template = NULL, .n_sessions = 1, .cancel = NULL, \
                                               .batch_slots = 0, .kv_type = CKE_KV_F16})

/* model: a compiled directory (cke compile: model.so + weights.bin), or a model file / directory
 * (.gguf, Hugging Face directory, llama2.c .bin) compiled on first use into the compile cache
 * ($CKE_CACHE, else $XDG_CACHE_HOME/cke, else ~/.cache/cke) exactly as `cke run` does; a later
 * open reuses the cached compile. The model must have a tokenizer. opts NULL: the defaults. */
cke_status cke_engine_open(const char *model, const cke_engine_opts *opts, cke_engine **out, cke_err *err);
/* NULL is fine. Every session of the engine must be freed first. */
void cke_engine_close(cke_engine *e);

typedef struct {
    const char *name;      /* model name (from the model file) */
    const char *family;    /* template family: "llama", "qwen2", "gemma" ... */
    const char *dir;       /* the compiled directory in use */
    int64_t vocab;         /* token ids are 0 .. vocab-1 */
    int64_t ctx;           /* tokens one session holds at most */
    int32_t bos, eos;      /* -1 when the vocabulary has none */
    int add_bos;           /* 1 when the tokenizer adds BOS to a prompt by default */
    int has_chat_template; /* 0: cke_chat_apply is plain concatenation of the contents */
    const char *chat_template_origin; /* where the template came from, for people */
} cke_model_info;

/* Tensor parallel with batch_slots, on ranks other than 0: makes the model calls rank 0's engine
 * announces, as it makes them, until rank 0's engine is closed (then CKE_OK). CKE_ERR_ARG for an
 * engine that is not such a follower; CKE_ERR_IO when an announcement does not arrive. */
cke_status cke_engine_tp_follow(cke_engine *e, cke_err *err);

/* Valid until cke_engine_close. */
const cke_model_info *cke_engine_info(const cke_engine *e);
/* batch_slots engines: decode steps run so far and the rows they held (rows / steps is the mean
 * batch). CKE_ERR_ARG for an engine without batching. Any thread. */
cke_status cke_engine_batch_stats(cke_engine *e, uint64_t *steps, uint64_t *rows, cke_err *err);

/* text[0..len) -> ids (*ids malloc'd: cke_free; set even when *n_ids is 0).
 * add_bos: 1 add, 0 don't, -1 as the model says. parse_special: text such as "<|im_start|>" is
 * the special token (as a chat template's output needs), else plain text. */
cke_status cke_tokenize(const cke_engine *e, const char *text, size_t len, int add_bos, int parse_special,
                        int32_t **ids, size_t *n_ids, cke_err *err);

enum {
    CKE_DETOK_SKIP_SPECIAL = 1, /* leave out control tokens (BOS, EOS, <|im_end|> ...) */
    CKE_DETOK_KEEP_PREFIX = 2   /* keep the leading space SentencePiece's dummy prefix adds */
};
/* ids[0..n) -> text (*text malloc'd, NUL-terminated, *len without the NUL: cke_free).
 * Decoding a range of a longer sequence is how incremental text is made: decode ids[first..k)
 * each step and emit what is new (cke_session_generate does this for you). An id outside
 * [0, vocab) gives CKE_ERR_RANGE. */
cke_status cke_detokenize(const cke_engine *e, const int32_t *ids, size_t n, int flags, char **text, size_t *len,
                          cke_err *err);

/* ------------------------------------------------------------------ chat template */

typedef struct {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} cke_message;

/* Renders messages with the model's chat template (GGUF tokenizer.chat_template, the Hugging
 * Face tokenizer_config.json beside the model, else a built-in format the vocabulary fits, or
 * opts.chat_template), as Hugging Face's apply_chat_template: the text contains BOS and special
 * tokens itself, so tokenize it with add_bos 0 and parse_special 1. add_generation_prompt: end
 * with the assistant's header. Without a template: the contents joined by "\n".
 * *text malloc'd (cke_free). CKE_ERR_ARG for a role the template refuses, NULL fields. */
cke_status cke_chat_apply(const cke_engine *e, const cke_message *msgs, size_t n, int add_generation_prompt,
                          char **text, size_t *len, cke_err *err);

/* ------------------------------------------------------------------ session: one sequence */

/* A new session with its own model instance and KV cache (costs the arena + cache of the model). */
cke_status cke_session_new(cke_engine *e, cke_session **out, cke_err *err);
void cke_session_free(cke_session *s); /* NULL is fine */

/* Makes the session's context exactly ids[0..n). Prompt-prefix reuse: when the tokens the session
 * already holds (earlier prompt + generated reply) are a prefix of ids, only the rest is run
 * through the model; otherwise the session starts again. *n_reused (may be NULL): how many tokens
 * were reused. The logits after it are identical to a fresh prefill's.
 * CKE_ERR_RANGE: an id outside [0, vocab), or n > ctx (the session is then empty);
 * CKE_ERR_ARG: n == 0 or ids NULL. */
cke_status cke_session_prefill(cke_session *s, const int32_t *ids, size_t n, size_t *n_reused, cke_err *err);
/* Empties the context. */
void cke_session_reset(cke_session *s);
/* The tokens the session holds (prompt + generated); valid until the next call on s. */
const int32_t *cke_session_tokens(const cke_session *s, size_t *n);
/* The logits [vocab] after the last token held (runs a pending token through the model first);
 * NULL when the session is empty or on error. Valid until the next call on s. */
const float *cke_session_logits(cke_session *s);

/* One generated token, given to the callback. */
typedef struct {
    int32_t id;           /* the token; -1 for the final flush (text only, see below) */
    const char *text;     /* the new text this token completes (not NUL-terminated; may be empty:
                           * bytes of an incomplete UTF-8 character, or that may begin a stop
                           * string, are held back and come with a later token or the flush) */
    size_t len;
    float logprob;        /* log p(id) under the model (raw logits) when opts.logprobs, else 0 */
    int n_top;            /* opts.top_logprobs alternatives, most likely first */
    const int32_t *top_ids;
    const float *top_logprobs;
} cke_token;

/* Return 0 to go on, nonzero to stop (stop reason CKE_STOP_CANCELLED). Called on the thread
 * that called cke_session_generate; must not call into the same session. */
typedef int (*cke_token_fn)(void *user, const cke_token *t);

typedef struct {
    float temp;               /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repeat_penalty;     /* 1: off (llama.cpp's, over the last repeat_last_n tokens) */
    int repeat_last_n;
    float presence_penalty;   /* OpenAI's: logit -= presence * (token generated before) */
    float frequency_penalty;  /*          logit -= frequency * (times generated) */
    uint64_t seed;
    int64_t max_tokens;       /* -1: until EOS or the context is full */
    const char *const *stop;  /* stop strings: the text ends before the first one; NULL/0: none */
    int n_stop;
    int stop_at_eot;          /* 1: end-of-turn tokens (<|im_end|>, <|eot_id|> ...) stop like EOS */
    int logprobs;             /* 1: fill cke_token.logprob */
    int top_logprobs;         /* 0 .. 20 alternatives per token */
    cke_token_fn on_token;    /* may be NULL */
    void *user;
} cke_gen_opts;

#define CKE_GEN_DEFAULTS ((cke_gen_opts){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, \
                                         .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 42, \
                                         .max_tokens = 256})

typedef enum {
    CKE_STOP_LENGTH = 0,    /* max_tokens reached */
    CKE_STOP_STRING,        /* a stop string appeared */
    CKE_STOP_EOS,           /* EOS (or an end-of-turn token with stop_at_eot) was sampled */
    CKE_STOP_CANCELLED,     /* the callback returned nonzero */
    CKE_STOP_CONTEXT_FULL   /* the session holds ctx tokens */
} cke_stop_reason;

typedef struct {
    int64_t n_prompt;       /* tokens in the context when generation began */
    int64_t n_generated;    /* tokens sampled and kept (EOS is not kept) */
    cke_stop_reason stop;
    char *text;             /* everything generated, stop string excluded (cke_gen_result_free) */
    size_t text_len;
    double t_prompt_s;      /* running a pending token before the first sample */
    double t_gen_s;         /* the generation loop */
} cke_gen_result;

/* Samples after the session's context until a stop; every kept token joins the context (a
 * follow-up prefill of prompt + reply + next turn reuses it). The callback gets each token's
 * new text; at the end (any reason but a cancel) the bytes of the result text not delivered yet
 * (held back, or before a stop string) come in one last call with id -1. result.text is exactly
 * the text delivered. result may be NULL; it is filled even on error (cke_gen_result_free it).
 * CKE_ERR_ARG: an empty session, NULL opts, bad options. */
cke_status cke_session_generate(cke_session *s, const cke_gen_opts *opts, cke_gen_result *result, cke_err *err);
void cke_gen_result_free(cke_gen_result *r);

const char *cke_stop_reason_name(cke_stop_reason r); /* "length", "stop", "eos", "cancelled", "context_full" */

#ifdef __cplusplus
}
#endif
#endif
