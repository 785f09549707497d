/* Internals shared by the tokenizer's core (tokenizer.c) and its loaders (tok_load.c). */
#ifndef CKE_TOK_INTERNAL_H
#define CKE_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/tokenizer.h"

#include <pcre2.h>

#define CKE_TOK_MAX_RE 8
#define CKE_TOK_MAX_VOCAB (1 << 24) /* ids are int32; 16M tokens is far beyond any real vocab */

struct cke_tok {
    cke_tok_kind kind;
    int32_t n;              /* vocabulary size */
    char *arena;            /* all pieces back to back */
    size_t arena_len, arena_cap;
    size_t *off;            /* piece i = arena[off[i] .. off[i] + len[i]) */
    uint32_t *len;
    float *score;
    uint8_t *type;          /* cke_tok_type */
    int32_t *hslot;         /* open addressing piece -> id; -1 empty */
    size_t hmask;
    /* byte-level BPE merges: (left id, right id) -> rank and result id */
    uint64_t *mkey;
    int32_t *mrank, *mres;
    size_t mmask, n_merges;
    int32_t bos, eos, unk, pad;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, prefix_space, nfc;
    int32_t byte_id[256];   /* SPM: <0xNN>; BPE: the token of byte b's unicode character */
    int16_t cp_byte[324];   /* BPE decode: code point -> the byte it stands for, -1 for none */
    /* tokens matched in text before BPE: ids sorted by first byte, then length descending */
    int32_t *special;
    size_t n_special;
    size_t special_start[257];
    pcre2_code *re[CKE_TOK_MAX_RE];
    int n_re;
    char pre_name[32];
};

/* Allocates an empty vocabulary of n tokens (pieces empty, type UNUSED, score 0). */
cke_status tok_alloc(cke_tok **out, cke_tok_kind kind, int64_t n, cke_err *err);
cke_status tok_set(cke_tok *t, int32_t id, const char *s, size_t len, float score, int type, cke_err *err);
/* After all tok_set calls: piece hash, byte tokens, special list. Merges come after this. */
cke_status tok_finish_vocab(cke_tok *t, cke_err *err);
/* Merge `a b` (rank = order added); pairs whose parts or result are not in the vocab are
 * skipped as llama.cpp tolerates them. Sizes the table for n_expected merges on first call. */
cke_status tok_add_merge(cke_tok *t, const char *a, size_t alen, const char *b, size_t blen,
                         size_t n_expected, cke_err *err);
/* Pre-tokenizer by GGUF tokenizer.ggml.pre name (llama.cpp's regex lists). */
cke_status tok_set_pre(cke_tok *t, const char *name, size_t len, cke_err *err);
/* Appends one regex (UTF-8 pattern) to the split sequence. */
cke_status tok_add_regex(cke_tok *t, const char *pat, size_t len, cke_err *err);
int32_t tok_find(const cke_tok *t, const char *s, size_t len);
/* GPT-2 bytes_to_unicode: the code point standing for byte b. */
uint32_t tok_byte_cp(uint8_t b);
size_t tok_utf8_put(char *dst, uint32_t cp);
/* Length of a valid UTF-8 sequence at s (1..4), or 0 when invalid/truncated. */
size_t tok_utf8_len(const unsigned char *s, size_t avail);

#endif
