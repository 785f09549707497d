/* Tokenizers: SentencePiece-style BPE (Llama 1/2, Mistral, Phi-3, Baichuan, llama2.c) and
 * byte-level BPE (GPT-2 family, Llama 3, Qwen2/3, Falcon, StarCoder, DeepSeek ...), behind one
 * object. Loaders: llama2.c tokenizer.bin, GGUF metadata (tokenizer.ggml.*), Hugging Face
 * tokenizer.json, and GPT-2's encoder.json + vocab.bpe.
 *
 * Encoding follows llama.cpp / Hugging Face exactly for the supported cases: special and
 * added tokens are matched first (leftmost, longest), the rest is pre-tokenized (regexes via
 * PCRE2 with UTF+UCP for byte-level BPE; dummy prefix + U+2581 for SPM) and merged with a
 * heap over adjacent pairs (rank or score order, leftmost on ties).
 * A cke_tok is immutable after loading: encode/decode may run concurrently on one object. */
#ifndef CKE_TOKENIZER_H
#define CKE_TOKENIZER_H

#include "cke/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cke_tok cke_tok;

typedef enum {
    CKE_TOK_SPM = 1, /* SentencePiece BPE: scores are merge priorities, <0xNN> byte fallback */
    CKE_TOK_BPE = 2  /* byte-level BPE: GPT-2 byte->unicode mapping, ranked merges */
} cke_tok_kind;

/* Token types, numbered as GGUF's tokenizer.ggml.token_type (and SentencePiece). */
typedef enum {
    CKE_TOKT_UNDEFINED = 0,
    CKE_TOKT_NORMAL = 1,
    CKE_TOKT_UNKNOWN = 2,
    CKE_TOKT_CONTROL = 3,      /* BOS/EOS, <|im_start|> ...: matched only with parse_special */
    CKE_TOKT_USER_DEFINED = 4, /* added tokens that are not special: always matched in text */
    CKE_TOKT_UNUSED = 5,
    CKE_TOKT_BYTE = 6          /* SPM <0xNN> */
} cke_tok_type;

/* ---- loading ---- */
/* By file kind: *.gguf, tokenizer.json (any *.json with a "model" object), a llama2.c
 * tokenizer.bin, encoder.json (then vocab.bpe must sit beside it), or a directory holding
 * tokenizer.json (or encoder.json + vocab.bpe, or vocab.json + merges.txt). */
cke_status cke_tok_load(const char *path, cke_tok **out, cke_err *err);
/* llama2.c tokenizer.bin: int32 max_len, then per token f32 score, int32 len, bytes.
 * Ids 0/1/2 = unk/BOS/EOS as llama2.c assumes; spaces in pieces stand for U+2581. */
cke_status cke_tok_load_llama2c(const void *data, size_t size, cke_tok **out, cke_err *err);
cke_status cke_tok_load_llama2c_file(const char *path, cke_tok **out, cke_err *err);
/* tokenizer.json text (need not be NUL-terminated). */
cke_status cke_tok_load_hf_json(const char *json, size_t len, cke_tok **out, cke_err *err);
/* encoder.json / vocab.json text and vocab.bpe / merges.txt text (GPT-2 regex, <|endoftext|>
 * as the control token when present). */
cke_status cke_tok_load_gpt2(const char *encoder_json, size_t enc_len, const char *merges,
                             size_t merges_len, cke_tok **out, cke_err *err);
/* GGUF metadata; the open file is only read during the call. `g` is a cke_gguf *. */
struct cke_gguf;
cke_status cke_tok_load_gguf(const struct cke_gguf *g, cke_tok **out, cke_err *err);
cke_status cke_tok_load_gguf_file(const char *path, cke_tok **out, cke_err *err);
void cke_tok_free(cke_tok *t);

/* ---- export (GGUF tokenizer.ggml.* metadata, llama.cpp's conventions) ---- */
struct cke_gguf_writer;
/* SPM: model "llama", tokens, scores, token types; byte-level BPE: model "gpt2", tokens, types,
 * merges (by rank) and tokenizer.ggml.pre = pre; both: special ids and add_bos/add_eos. */
cke_status cke_tok_write_gguf(const cke_tok *t, struct cke_gguf_writer *w, const char *pre, cke_err *err);
/* The GGUF pre-tokenizer name (into name) under which t splits `probe` and a sample of its own
 * vocabulary as it does itself, trying `prefer` (may be NULL) first; CKE_ERR_UNSUPPORTED when
 * none does. A normalizer (tokenizer.json's NFC) has no GGUF key and is not part of the match. */
cke_status cke_tok_match_gguf_pre(const cke_tok *t, const char *prefer, const char *probe, size_t len, char *name,
                                  size_t name_len, cke_err *err);
/* true when the tokenizer NFC-normalizes text first (tokenizer.json normalizer), which GGUF cannot say */
bool cke_tok_normalizes_nfc(const cke_tok *t);

/* ---- encode / decode ---- */
typedef struct {
    int add_bos;       /* 1 add, 0 don't, -1 as the model says (GGUF add_bos_token / post-processor) */
    int add_eos;       /* same for EOS */
    bool parse_special;/* match CONTROL/UNKNOWN tokens written in the text (e.g. "<|im_start|>") */
} cke_tok_encode_opts;
#define CKE_TOK_ENCODE_DEFAULTS ((cke_tok_encode_opts){-1, -1, false})

/* text -> ids. *ids is malloc'd (free() it); it is set even when *n_ids is 0. opts NULL means
 * the defaults. Any bytes are accepted: invalid UTF-8 becomes byte tokens. */
cke_status cke_tok_encode(const cke_tok *t, const char *text, size_t len, const cke_tok_encode_opts *opts,
                          int32_t **ids, size_t *n_ids, cke_err *err);

enum {
    CKE_TOK_DECODE_SKIP_SPECIAL = 1, /* leave out CONTROL/UNKNOWN tokens (BOS, EOS, <unk> ...) */
    CKE_TOK_DECODE_KEEP_PREFIX = 2   /* SPM: keep the leading space the dummy prefix added */
};
/* ids -> bytes (malloc'd, NUL-terminated for convenience; *len excludes the NUL).
 * An id outside [0, n_vocab) gives CKE_ERR_RANGE. */
cke_status cke_tok_decode(const cke_tok *t, const int32_t *ids, size_t n, int flags, char **out,
                          size_t *len, cke_err *err);

/* ---- vocabulary ---- */
cke_tok_kind cke_tok_kind_of(const cke_tok *t);
const char *cke_tok_pre_name(const cke_tok *t); /* pre-tokenizer ("gpt2", "llama3", "hf-regex", "spm") */
int32_t cke_tok_n_vocab(const cke_tok *t);
/* The stored piece (GGUF/JSON form: U+2581 or byte-level characters), not NUL-terminated;
 * NULL for an id out of range. */
const char *cke_tok_piece(const cke_tok *t, int32_t id, size_t *len);
int cke_tok_type_of(const cke_tok *t, int32_t id); /* cke_tok_type; -1 out of range */
float cke_tok_score(const cke_tok *t, int32_t id);
int32_t cke_tok_find(const cke_tok *t, const char *piece, size_t len); /* -1 if absent */
int32_t cke_tok_bos(const cke_tok *t); /* -1 when the vocabulary has none */
int32_t cke_tok_eos(const cke_tok *t);
int32_t cke_tok_unk(const cke_tok *t);
int32_t cke_tok_pad(const cke_tok *t);
bool cke_tok_add_bos(const cke_tok *t);
bool cke_tok_add_eos(const cke_tok *t);

#endif
