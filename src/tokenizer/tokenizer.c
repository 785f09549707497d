/* Tokenizer core: vocabulary tables, special-token partition, SPM and byte-level BPE merging,
 * decode. Loaders live in tok_load.c. */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---------------------------------------------------------------- small helpers */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

size_t tok_utf8_len(const unsigned char *s, size_t avail) {
    if (avail == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; min = 0x10000; }
    else return 0;
    if (avail < n) return 0;
    uint32_t cp = c & (0x3F >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static uint32_t utf8_cp(const unsigned char *s, size_t n) {
    if (n == 1) return s[0];
    uint32_t cp = s[0] & (0x3F >> (n - 1));
    for (size_t i = 1; i < n; i++) cp = (cp << 6) | (s[i] & 0x3F);
    return cp;
}

size_t tok_utf8_put(char *dst, uint32_t cp) {
    unsigned char *d = (unsigned char *)dst;
    if (cp < 0x80) { d[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { d[0] = (unsigned char)(0xC0 | (cp >> 6)); d[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        d[0] = (unsigned char)(0xE0 | (cp >> 12)); d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (unsigned char)(0x80 | (cp & 0x3F)); return 3;
    }
    d[0] = (unsigned char)(0xF0 | (cp >> 18)); d[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); d[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * map to U+0100.. in byte order, so every byte has a visible character. */
uint32_t tok_byte_cp(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    uint32_t k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) k++;
    return 256 + k;
}

/* growable arrays */
typedef struct { int32_t *v; size_t n, cap; } ivec;
static bool ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 64;
        int32_t *p = realloc(a->v, c * sizeof *p);
        if (!p) return false;
        a->v = p; a->cap = c;
    }
    a->v[a->n++] = x;
    return true;
}

typedef struct { char *v; size_t n, cap; } cvec;
static bool cvec_put(cvec *a, const void *s, size_t n) {
    if (n > SIZE_MAX - a->n - 1) return false;
    if (a->n + n + 1 > a->cap) {
        size_t c = a->cap ? a->cap : 256;
        while (c < a->n + n + 1) c *= 2;
        char *p = realloc(a->v, c);
        if (!p) return false;
        a->v = p; a->cap = c;
    }
    if (n) memcpy(a->v + a->n, s, n);
    a->n += n;
    a->v[a->n] = 0;
    return true;
}

/* ---------------------------------------------------------------- vocabulary */

cke_status tok_alloc(cke_tok **out, cke_tok_kind kind, int64_t n, cke_err *err) {
    *out = NULL;
    if (n <= 0 || n > CKE_TOK_MAX_VOCAB)
        return cke_fail(err, CKE_ERR_FORMAT, "tokenizer: vocabulary size %lld out of range", (long long)n);
    cke_tok *t = calloc(1, sizeof *t);
    if (!t) return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory");
    t->kind = kind;
    t->n = (int32_t)n;
    t->off = calloc((size_t)n, sizeof *t->off);
    t->len = calloc((size_t)n, sizeof *t->len);
    t->score = calloc((size_t)n, sizeof *t->score);
    t->type = malloc((size_t)n);
    /* the piece arena exists even when every piece is empty: piece() is arena + offset */
    t->arena_cap = 4096;
    t->arena = malloc(t->arena_cap);
    if (!t->off || !t->len || !t->score || !t->type || !t->arena) {
        cke_tok_free(t);
        return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory for %lld tokens", (long long)n);
    }
    memset(t->type, CKE_TOKT_UNUSED, (size_t)n);
    t->bos = t->eos = t->unk = t->pad = -1;
    strcpy(t->pre_name, kind == CKE_TOK_SPM ? "spm" : "none");
    *out = t;
    return CKE_OK;
}

cke_status tok_set(cke_tok *t, int32_t id, const char *s, size_t len, float score, int type, cke_err *err) {
    if (id < 0 || id >= t->n) return cke_fail(err, CKE_ERR_RANGE, "tokenizer: token id %d out of range", id);
    if (len > UINT32_MAX / 2) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer: token %d too long", id);
    if (t->arena_len + len > t->arena_cap) {
        size_t c = t->arena_cap ? t->arena_cap : 4096;
        while (c < t->arena_len + len) {
            if (c > SIZE_MAX / 2) return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: arena overflow");
            c *= 2;
        }
        char *p = realloc(t->arena, c);
        if (!p) return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory");
        t->arena = p; t->arena_cap = c;
    }
    if (len) memcpy(t->arena + t->arena_len, s, len);
    t->off[id] = t->arena_len;
    t->len[id] = (uint32_t)len;
    t->arena_len += len;
    t->score[id] = score;
    t->type[id] = (uint8_t)(type >= 0 && type <= CKE_TOKT_BYTE ? type : CKE_TOKT_NORMAL);
    return CKE_OK;
}

static inline const char *piece(const cke_tok *t, int32_t id) { return t->arena + t->off[id]; }

int32_t tok_find(const cke_tok *t, const char *s, size_t len) {
    if (!t->hslot) return -1;
    for (size_t i = hash_bytes(s, len) & t->hmask;; i = (i + 1) & t->hmask) {
        int32_t id = t->hslot[i];
        if (id < 0) return -1;
        if (t->len[id] == len && !memcmp(piece(t, id), s, len)) return id;
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

cke_status tok_finish_vocab(cke_tok *t, cke_err *err) {
    size_t cap = pow2_at_least((size_t)t->n * 2);
    t->hslot = malloc(cap * sizeof *t->hslot);
    if (!t->hslot) return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory");
    memset(t->hslot, 0xff, cap * sizeof *t->hslot);
    t->hmask = cap - 1;
    for (int32_t id = 0; id < t->n; id++) {
        if (t->len[id] == 0) continue;
        const char *s = piece(t, id);
        size_t i = hash_bytes(s, t->len[id]) & t->hmask;
        for (;; i = (i + 1) & t->hmask) {
            int32_t o = t->hslot[i];
            if (o < 0) break;
            if (t->len[o] == t->len[id] && !memcmp(piece(t, o), s, t->len[id])) break;
        }
        t->hslot[i] = id; /* a duplicate piece maps to its last id, as in llama.cpp */
    }
    for (int b = 0; b < 256; b++) {
        char buf[8];
        if (t->kind == CKE_TOK_SPM) {
            static const char hx[] = "0123456789ABCDEF";
            memcpy(buf, "<0x", 3); buf[3] = hx[b >> 4]; buf[4] = hx[b & 15]; buf[5] = '>';
            t->byte_id[b] = tok_find(t, buf, 6);
        } else {
            t->byte_id[b] = tok_find(t, buf, tok_utf8_put(buf, tok_byte_cp((uint8_t)b)));
        }
    }
    size_t ns = 0;
    for (int32_t id = 0; id < t->n; id++) {
        int ty = t->type[id];
        if (t->len[id] && (ty == CKE_TOKT_CONTROL || ty == CKE_TOKT_USER_DEFINED || ty == CKE_TOKT_UNKNOWN)) ns++;
    }
    /* sort keys: first byte ascending, then length descending (longest match first), then id */
    uint64_t *keys = malloc((ns ? ns : 1) * sizeof *keys);
    t->special = malloc((ns ? ns : 1) * sizeof *t->special);
    if (!t->special || !keys) { free(keys); return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory"); }
    ns = 0;
    for (int32_t id = 0; id < t->n; id++) {
        int ty = t->type[id];
        if (t->len[id] && (ty == CKE_TOKT_CONTROL || ty == CKE_TOKT_USER_DEFINED || ty == CKE_TOKT_UNKNOWN)) {
            uint64_t l = t->len[id] > 0xFFFFFF ? 0xFFFFFF : t->len[id];
            keys[ns++] = ((uint64_t)(unsigned char)piece(t, id)[0] << 56) | ((0xFFFFFF - l) << 32) | (uint32_t)id;
        }
    }
    qsort(keys, ns, sizeof *keys, cmp_u64);
    for (size_t k = 0; k < ns; k++) t->special[k] = (int32_t)(keys[k] & 0xFFFFFFFFu);
    free(keys);
    t->n_special = ns;
    for (int i = 0; i < 324; i++) t->cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) t->cp_byte[tok_byte_cp((uint8_t)b)] = (int16_t)b;
    size_t j = 0;
    for (int b = 0; b <= 256; b++) {
        while (j < ns && (unsigned char)piece(t, t->special[j])[0] < b) j++;
        t->special_start[b] = j;
    }
    return CKE_OK;
}

static int64_t merge_slot(const cke_tok *t, uint64_t key) {
    for (size_t i = hash_u64(key) & t->mmask;; i = (i + 1) & t->mmask) {
        if (t->mres[i] < 0) return (int64_t)i;
        if (t->mkey[i] == key) return (int64_t)i;
    }
}

cke_status tok_add_merge(cke_tok *t, const char *a, size_t alen, const char *b, size_t blen,
                         size_t n_expected, cke_err *err) {
    if (!t->mkey) {
        if (n_expected > (size_t)1 << 28) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer: %zu merges", n_expected);
        size_t cap = pow2_at_least(n_expected * 2 + 16);
        t->mkey = malloc(cap * sizeof *t->mkey);
        t->mrank = malloc(cap * sizeof *t->mrank);
        t->mres = malloc(cap * sizeof *t->mres);
        if (!t->mkey || !t->mrank || !t->mres) return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory");
        memset(t->mres, 0xff, cap * sizeof *t->mres);
        t->mmask = cap - 1;
    }
    if (t->n_merges >= n_expected || t->n_merges * 2 >= t->mmask)
        return cke_fail(err, CKE_ERR_FORMAT, "tokenizer: more merges than announced");
    int rank = (int)t->n_merges++;
    int32_t ia = tok_find(t, a, alen), ib = tok_find(t, b, blen);
    if (ia < 0 || ib < 0) return CKE_OK;
    char stackbuf[256];
    char *buf = stackbuf;
    if (alen + blen > sizeof stackbuf) {
        buf = malloc(alen + blen);
        if (!buf) return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory");
    }
    memcpy(buf, a, alen);
    memcpy(buf + alen, b, blen);
    int32_t r = tok_find(t, buf, alen + blen);
    if (buf != stackbuf) free(buf);
    if (r < 0) return CKE_OK;
    uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
    int64_t s = merge_slot(t, key);
    if (t->mres[s] >= 0) return CKE_OK; /* duplicate pair: the first (lowest) rank wins */
    t->mkey[s] = key;
    t->mrank[s] = rank;
    t->mres[s] = r;
    return CKE_OK;
}

static inline bool merge_lookup(const cke_tok *t, int32_t a, int32_t b, int32_t *rank, int32_t *res) {
    if (!t->mkey) return false;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    int64_t s = merge_slot(t, key);
    if (t->mres[s] < 0) return false;
    *rank = t->mrank[s];
    *res = t->mres[s];
    return true;
}

/* ---------------------------------------------------------------- pre-tokenizer regexes */

cke_status tok_add_regex(cke_tok *t, const char *pat, size_t len, cke_err *err) {
    if (t->n_re >= CKE_TOK_MAX_RE) return cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer: too many split regexes");
    int ec;
    PCRE2_SIZE eo;
    /* DOLLAR_ENDONLY: `\s+$` means the end of the piece, as in std::regex and Rust regexes. */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer regex at offset %zu: %s", (size_t)eo,
                        (const char *)msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    t->re[t->n_re++] = re;
    return CKE_OK;
}

static const char RE_GPT2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
static const char RE_LLAMA3[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Code points that NFC would rewrite (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) are written
 * as \\x{...} so that no editor or copy can change the class. */
static const char RE_DS_LETTERS[] =
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-"
    "ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
    "ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
static const char RE_CJK[] = "[一-龥ࠀ-一가-퟿]+";

typedef struct {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *re[6];
    bool llama3;       /* ignore_merges + add BOS by default, as llama.cpp's LLAMA3 type */
} pre_def;

static const pre_def PRE_DEFS[] = {
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|dbrx|smaug-bpe|chatglm-bpe|glm4", {RE_LLAMA3}, true},
    {"qwen2|deepseek-r1-qwen|megrez|stablelm2|hunyuan|grok-2", {RE_QWEN2}, false},
    {"gpt-2|gpt2|mpt|olmo|jais|phi-2|jina-es|jina-de|gigachat|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|"
     "roberta-bpe|trillion|granite-docling",
     {RE_GPT2}, false},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", {"\\p{N}", RE_GPT2}, false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, false},
    {"deepseek-llm", {"[\r\n]", RE_DS_LETTERS, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", RE_CJK, "\\p{N}+"}, false},
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}"}, false},
    {"poro-chat|bloom|gpt3-finnish", {" ?[^(\\s|.,!?…。，、।۔،)]+"}, false},
    {"viking", {" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"}, false},
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false},
};

static bool name_in(const char *list, const char *name, size_t len) {
    for (const char *p = list; *p;) {
        const char *e = strchr(p, '|');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && !memcmp(p, name, len)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

cke_status tok_set_pre(cke_tok *t, const char *name, size_t len, cke_err *err) {
    for (size_t i = 0; i < sizeof PRE_DEFS / sizeof PRE_DEFS[0]; i++) {
        const pre_def *d = &PRE_DEFS[i];
        if (!name_in(d->names, name, len)) continue;
        for (int k = 0; k < 6 && d->re[k]; k++) {
            cke_status s = tok_add_regex(t, d->re[k], strlen(d->re[k]), err);
            if (s) return s;
        }
        if (d->llama3) { t->ignore_merges = true; t->add_bos = true; }
        size_t n = len < sizeof t->pre_name - 1 ? len : sizeof t->pre_name - 1;
        memcpy(t->pre_name, name, n);
        t->pre_name[n] = 0;
        return CKE_OK;
    }
    return cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer: unknown pre-tokenizer type '%.*s'", (int)(len > 64 ? 64 : len), name);
}

/* The first GGUF tokenizer.ggml.pre name whose regexes (and llama3-style merge skipping) split
 * `probe` into exactly the tokens t gives it: how a tokenizer.json's own pre-tokenizer is named
 * when the vocabulary is written to GGUF. Compared by behaviour, not by pattern text (HF writes
 * the same split as "(?i:'s|...)" where llama.cpp writes "'[sS]|..."). */
cke_status cke_tok_match_gguf_pre(const cke_tok *t, const char *prefer, const char *probe0, size_t len0, char *name,
                                  size_t name_len, cke_err *err) {
    /* the probe, then the text of up to 4096 tokens spread over the vocabulary, space separated:
     * splits that differ only on words the vocabulary holds whole (llama3's ignore_merges) or on
     * digit runs it has merges for show up there */
    const int32_t stride = t->n / 4096 + 1;
    size_t cap = len0 + 1;
    for (int32_t id = 0; id < t->n; id += stride) cap += t->len[id] + 1;
    char *probe = malloc(cap);
    if (!probe) return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(probe, probe0, len0);
    size_t len = len0;
    for (int32_t id = 0; id < t->n; id += stride) {
        if (t->type[id] == CKE_TOKT_CONTROL || t->type[id] == CKE_TOKT_UNUSED) continue;
        char *txt = NULL;
        size_t tl = 0;
        if (cke_tok_decode(t, &id, 1, CKE_TOK_DECODE_SKIP_SPECIAL, &txt, &tl, NULL) == CKE_OK && len + tl + 1 <= cap) {
            probe[len++] = ' ';
            memcpy(probe + len, txt, tl);
            len += tl;
        }
        free(txt);
    }
    const cke_tok_encode_opts o = {0, 0, false};
    int32_t *want = NULL, *got = NULL;
    size_t nw = 0, ng = 0;
    cke_status est = cke_tok_encode(t, probe, len, &o, &want, &nw, err);
    if (est) { free(probe); return est; }
    bool found = false;
    /* the preferred name's entry first, then the table's order */
    size_t order[sizeof PRE_DEFS / sizeof PRE_DEFS[0]], no = 0;
    for (size_t i = 0; prefer && i < sizeof PRE_DEFS / sizeof PRE_DEFS[0]; i++)
        if (name_in(PRE_DEFS[i].names, prefer, strlen(prefer))) order[no++] = i;
    for (size_t i = 0; i < sizeof PRE_DEFS / sizeof PRE_DEFS[0]; i++)
        if (!no || order[0] != i) order[no++] = i;
    for (size_t oi = 0; oi < no && !found; oi++) {
        const size_t i = order[oi];
        cke_tok tmp = *t; /* shares the vocabulary; only the split regexes differ */
        tmp.n_re = 0;
        cke_status st = CKE_OK;
        for (int k = 0; k < 6 && PRE_DEFS[i].re[k] && !st; k++) st = tok_add_regex(&tmp, PRE_DEFS[i].re[k], strlen(PRE_DEFS[i].re[k]), err);
        tmp.ignore_merges = PRE_DEFS[i].llama3;
        if (!st && !cke_tok_encode(&tmp, probe, len, &o, &got, &ng, err) && ng == nw && !memcmp(got, want, nw * sizeof *got)) {
            const char *bar = strchr(PRE_DEFS[i].names, '|');
            size_t n = bar ? (size_t)(bar - PRE_DEFS[i].names) : strlen(PRE_DEFS[i].names);
            if (prefer && name_in(PRE_DEFS[i].names, prefer, strlen(prefer))) snprintf(name, name_len, "%s", prefer);
            else snprintf(name, name_len, "%.*s", (int)n, PRE_DEFS[i].names);
            found = true;
        }
        free(got);
        got = NULL;
        for (int k = 0; k < tmp.n_re; k++) pcre2_code_free(tmp.re[k]);
    }
    free(want);
    free(probe);
    if (!found)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer: its pre-tokenizer splits text like none of the GGUF "
                        "pre-tokenizers cke knows, so GGUF cannot name it");
    return CKE_OK;
}

bool cke_tok_normalizes_nfc(const cke_tok *t) { return t->nfc; }

/* ---------------------------------------------------------------- merge heap */

typedef struct {
    uint64_t key;   /* primary order (rank or inverted score) << 32 | left position */
    int32_t left, right;
    int32_t a, b;   /* BPE: expected ids of the pair; SPM: expected total byte length in a */
    int32_t res;    /* BPE: the merged token */
} bigram;

typedef struct { bigram *v; size_t n, cap; } heap;

static bool heap_push(heap *h, bigram x) {
    if (h->n == h->cap) {
        size_t c = h->cap ? h->cap * 2 : 64;
        bigram *p = realloc(h->v, c * sizeof *p);
        if (!p) return false;
        h->v = p; h->cap = c;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p].key <= x.key) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
    return true;
}

static bigram heap_pop(heap *h) {
    bigram top = h->v[0], x = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1].key < h->v[c].key) c++;
        if (x.key <= h->v[c].key) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = x;
    return top;
}

typedef struct { int32_t prev, next, id; uint32_t start, n; } symbol;

/* Per-call scratch, reused across the words of one encode call. */
typedef struct {
    symbol *sym;
    size_t sym_cap;
    heap hp;
    cvec buf;
    pcre2_match_data *md;
} scratch;

static bool sym_reserve(scratch *s, size_t n) {
    if (n <= s->sym_cap) return true;
    size_t c = s->sym_cap ? s->sym_cap : 256;
    while (c < n) c *= 2;
    symbol *p = realloc(s->sym, c * sizeof *p);
    if (!p) return false;
    s->sym = p; s->sym_cap = c;
    return true;
}

/* ---------------------------------------------------------------- SPM */

/* Float -> unsigned key increasing with the value (total order on non-NaN). */
static uint32_t float_key(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static bool spm_try_bigram(const cke_tok *t, scratch *s, const char *text, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    const symbol *L = &s->sym[l], *R = &s->sym[r];
    int32_t id = tok_find(t, text + L->start, (size_t)L->n + R->n);
    if (id < 0) return true;
    /* highest score first, then leftmost */
    bigram b = {((uint64_t)(~float_key(t->score[id])) << 32) | (uint32_t)l, l, r, (int32_t)(L->n + R->n), 0, 0};
    return heap_push(&s->hp, b);
}

/* text: already escaped (spaces as U+2581, dummy prefix added). */
static cke_status spm_encode(const cke_tok *t, scratch *s, const char *text, size_t len, ivec *out) {
    if (len == 0) return CKE_OK;
    if (len > INT32_MAX || !sym_reserve(s, len)) return CKE_ERR_NOMEM;
    int32_t ns = 0;
    for (size_t off = 0; off < len;) {
        size_t n = tok_utf8_len((const unsigned char *)text + off, len - off);
        if (n == 0) n = 1;
        s->sym[ns] = (symbol){ns - 1, -1, -1, (uint32_t)off, (uint32_t)n};
        if (ns > 0) s->sym[ns - 1].next = ns;
        ns++;
        off += n;
    }
    s->hp.n = 0;
    for (int32_t i = 1; i < ns; i++)
        if (!spm_try_bigram(t, s, text, i - 1, i)) return CKE_ERR_NOMEM;
    while (s->hp.n) {
        bigram b = heap_pop(&s->hp);
        symbol *L = &s->sym[b.left], *R = &s->sym[b.right];
        if (L->n == 0 || R->n == 0 || (int32_t)(L->n + R->n) != b.a) continue; /* stale */
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) s->sym[R->next].prev = b.left;
        if (!spm_try_bigram(t, s, text, L->prev, b.left) || !spm_try_bigram(t, s, text, b.left, L->next))
            return CKE_ERR_NOMEM;
    }
    for (int32_t i = 0; i != -1; i = s->sym[i].next) {
        const symbol *x = &s->sym[i];
        int32_t id = tok_find(t, text + x->start, x->n);
        if (id >= 0) {
            if (!ivec_push(out, id)) return CKE_ERR_NOMEM;
            continue;
        }
        for (uint32_t k = 0; k < x->n; k++) { /* byte fallback */
            int32_t bid = t->byte_id[(unsigned char)text[x->start + k]];
            if (bid < 0) bid = t->unk;
            if (bid >= 0 && !ivec_push(out, bid)) return CKE_ERR_NOMEM;
        }
    }
    return CKE_OK;
}

static cke_status spm_fragment(const cke_tok *t, scratch *s, const char *text, size_t len, bool prefix, ivec *out) {
    s->buf.n = 0;
    if (prefix && !cvec_put(&s->buf, "\xE2\x96\x81", 3)) return CKE_ERR_NOMEM;
    size_t i = 0;
    while (i < len) {
        const char *sp = memchr(text + i, ' ', len - i);
        size_t e = sp ? (size_t)(sp - text) : len;
        if (!cvec_put(&s->buf, text + i, e - i)) return CKE_ERR_NOMEM;
        if (!sp) break;
        if (!cvec_put(&s->buf, "\xE2\x96\x81", 3)) return CKE_ERR_NOMEM;
        i = e + 1;
    }
    return spm_encode(t, s, s->buf.v, s->buf.n, out);
}

/* ---------------------------------------------------------------- byte-level BPE */

static bool bpe_try_bigram(const cke_tok *t, scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    int32_t rank, res;
    if (!merge_lookup(t, s->sym[l].id, s->sym[r].id, &rank, &res)) return true;
    bigram b = {((uint64_t)(uint32_t)rank << 32) | (uint32_t)l, l, r, s->sym[l].id, s->sym[r].id, res};
    return heap_push(&s->hp, b);
}

/* One pre-tokenized word (raw bytes). Symbols are token ids from the start: byte b is the
 * token of its unicode stand-in, and merges map id pairs to ids, so no strings are built. */
static cke_status bpe_word(const cke_tok *t, scratch *s, const unsigned char *w, size_t len, ivec *out) {
    if (len == 0) return CKE_OK;
    if (t->ignore_merges) { /* Llama 3: a word that is a whole token is taken as is */
        char tmp[256];
        size_t k = 0;
        bool fits = len * 2 <= sizeof tmp;
        for (size_t i = 0; fits && i < len; i++) k += tok_utf8_put(tmp + k, tok_byte_cp(w[i]));
        int32_t id = fits ? tok_find(t, tmp, k) : -1;
        if (id >= 0) return ivec_push(out, id) ? CKE_OK : CKE_ERR_NOMEM;
    }
    if (len > INT32_MAX || !sym_reserve(s, len)) return CKE_ERR_NOMEM;
    int32_t ns = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_id[w[i]];
        if (id < 0) { /* a vocabulary without this byte: unk, or nothing */
            if (t->unk >= 0 && !ivec_push(out, t->unk)) return CKE_ERR_NOMEM;
            continue;
        }
        s->sym[ns] = (symbol){ns - 1, -1, id, (uint32_t)i, 1};
        if (ns > 0) s->sym[ns - 1].next = ns;
        ns++;
    }
    if (ns == 0) return CKE_OK;
    s->hp.n = 0;
    for (int32_t i = 1; i < ns; i++)
        if (!bpe_try_bigram(t, s, i - 1, i)) return CKE_ERR_NOMEM;
    while (s->hp.n) {
        bigram b = heap_pop(&s->hp);
        symbol *L = &s->sym[b.left], *R = &s->sym[b.right];
        if (L->n == 0 || R->n == 0 || L->next != b.right || L->id != b.a || R->id != b.b) continue; /* stale */
        L->id = b.res;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) s->sym[R->next].prev = b.left;
        if (!bpe_try_bigram(t, s, L->prev, b.left) || !bpe_try_bigram(t, s, b.left, L->next)) return CKE_ERR_NOMEM;
    }
    for (int32_t i = 0; i != -1; i = s->sym[i].next)
        if (!ivec_push(out, s->sym[i].id)) return CKE_ERR_NOMEM;
    return CKE_OK;
}

typedef struct { size_t s, e; int raw; } span; /* raw: invalid UTF-8 byte, never regex-split */
typedef struct { span *v; size_t n, cap; } spanvec;
static bool span_push(spanvec *a, size_t s, size_t e, int raw) {
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 64;
        span *p = realloc(a->v, c * sizeof *p);
        if (!p) return false;
        a->v = p; a->cap = c;
    }
    a->v[a->n++] = (span){s, e, raw};
    return true;
}

/* Splits each span by re: matches and the gaps between them both become spans (llama.cpp's
 * unicode_regex_split and HF's Split "Isolated" behave alike). */
static cke_status regex_split(const pcre2_code *re, pcre2_match_data *md, const char *text, const spanvec *in,
                              spanvec *out) {
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        span p = in->v[k];
        if (p.raw) {
            if (!span_push(out, p.s, p.e, 1)) return CKE_ERR_NOMEM;
            continue;
        }
        size_t n = p.e - p.s, pos = 0, last = 0;
        while (pos < n) {
            int rc = pcre2_match(re, (PCRE2_SPTR)(text + p.s), n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc < 0) break; /* no further match (or a resource limit): the rest stays one span */
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me <= ms) { /* empty match: step one character */
                size_t c = tok_utf8_len((const unsigned char *)text + p.s + ms, n - ms);
                pos = ms + (c ? c : 1);
                continue;
            }
            if (ms > last && !span_push(out, p.s + last, p.s + ms, 0)) return CKE_ERR_NOMEM;
            if (!span_push(out, p.s + ms, p.s + me, 0)) return CKE_ERR_NOMEM;
            last = pos = me;
        }
        if (last < n && !span_push(out, p.s + last, p.e, 0)) return CKE_ERR_NOMEM;
    }
    return CKE_OK;
}

/* Valid UTF-8 runs become spans for the regexes; each invalid byte is a raw span of its own. */
static cke_status utf8_spans(const char *text, size_t len, spanvec *out) {
    out->n = 0;
    size_t i = 0, run = 0;
    while (i < len) {
        size_t n = tok_utf8_len((const unsigned char *)text + i, len - i);
        if (n) { i += n; continue; }
        if (i > run && !span_push(out, run, i, 0)) return CKE_ERR_NOMEM;
        if (!span_push(out, i, i + 1, 1)) return CKE_ERR_NOMEM;
        run = ++i;
    }
    if (len > run && !span_push(out, run, len, 0)) return CKE_ERR_NOMEM;
    return CKE_OK;
}

/* NFC over the valid UTF-8 runs; invalid bytes pass through. Text whose bytes are all below
 * 0xCC has only code points < U+0300, which NFC leaves alone, so it is not touched. */
static cke_status nfc_into(const char *text, size_t len, cvec *dst, bool *changed) {
    *changed = false;
    size_t i;
    for (i = 0; i < len && (unsigned char)text[i] < 0xCC; i++) {}
    if (i == len) return CKE_OK;
    dst->n = 0;
    size_t run = 0;
    i = 0;
    while (i <= len) {
        size_t n = i < len ? tok_utf8_len((const unsigned char *)text + i, len - i) : 0;
        if (n) { i += n; continue; }
        if (i > run) {
            utf8proc_uint8_t *o = NULL;
            utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)text + run, (utf8proc_ssize_t)(i - run), &o,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            bool ok = r >= 0 ? cvec_put(dst, o, (size_t)r) : cvec_put(dst, text + run, i - run);
            free(o);
            if (!ok) return CKE_ERR_NOMEM;
        }
        if (i < len && !cvec_put(dst, text + i, 1)) return CKE_ERR_NOMEM;
        run = ++i;
    }
    *changed = true;
    return CKE_OK;
}

static cke_status bpe_fragment(const cke_tok *t, scratch *s, const char *text, size_t len, ivec *out) {
    cvec norm = {0};
    cke_status st = CKE_OK;
    if (t->nfc) {
        bool changed;
        if ((st = nfc_into(text, len, &norm, &changed))) goto done;
        if (changed) { text = norm.v; len = norm.n; }
    }
    if (t->prefix_space && len && text[0] != ' ') { /* HF ByteLevel(add_prefix_space) */
        s->buf.n = 0;
        if (!cvec_put(&s->buf, " ", 1) || !cvec_put(&s->buf, text, len)) { st = CKE_ERR_NOMEM; goto done; }
        text = s->buf.v;
        len = s->buf.n;
    }
    spanvec a = {0}, b = {0};
    if ((st = utf8_spans(text, len, &a))) goto spans;
    for (int r = 0; r < t->n_re; r++) {
        if ((st = regex_split(t->re[r], s->md, text, &a, &b))) goto spans;
        spanvec tmp = a; a = b; b = tmp;
    }
    for (size_t k = 0; k < a.n; k++)
        if ((st = bpe_word(t, s, (const unsigned char *)text + a.v[k].s, a.v[k].e - a.v[k].s, out))) break;
spans:
    free(a.v);
    free(b.v);
done:
    free(norm.v);
    return st;
}

/* ---------------------------------------------------------------- encode */

/* Longest special token starting at text[i], or -1. */
static int32_t match_special(const cke_tok *t, const char *text, size_t len, size_t i, bool parse_special) {
    unsigned char c = (unsigned char)text[i];
    for (size_t k = t->special_start[c]; k < t->special_start[c + 1]; k++) {
        int32_t id = t->special[k];
        if (!parse_special && t->type[id] != CKE_TOKT_USER_DEFINED) continue;
        size_t n = t->len[id];
        if (n <= len - i && !memcmp(text + i, piece(t, id), n)) return id;
    }
    return -1;
}

static cke_status fragment(const cke_tok *t, scratch *s, const char *text, size_t len, bool prev_special, ivec *out) {
    if (len == 0) return CKE_OK;
    if (t->kind == CKE_TOK_SPM) return spm_fragment(t, s, text, len, t->add_space_prefix && prev_special, out);
    return bpe_fragment(t, s, text, len, out);
}

cke_status cke_tok_encode(const cke_tok *t, const char *text, size_t len, const cke_tok_encode_opts *opts,
                          int32_t **ids, size_t *n_ids, cke_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!t || (!text && len)) return cke_fail(err, CKE_ERR_ARG, "tokenizer: encode: NULL argument");
    cke_tok_encode_opts o = opts ? *opts : CKE_TOK_ENCODE_DEFAULTS;
    bool add_bos = o.add_bos < 0 ? t->add_bos : o.add_bos != 0;
    bool add_eos = o.add_eos < 0 ? t->add_eos : o.add_eos != 0;
    ivec out = {0};
    scratch s = {0};
    cke_status st = CKE_OK;
    if (t->n_re) {
        s.md = pcre2_match_data_create(4, NULL);
        if (!s.md) { st = CKE_ERR_NOMEM; goto fail; }
    }
    if (add_bos) {
        if (t->bos < 0) { st = cke_fail(err, CKE_ERR_MISSING, "tokenizer: no BOS token to add"); goto fail; }
        if (!ivec_push(&out, t->bos)) { st = CKE_ERR_NOMEM; goto fail; }
    }
    bool prev_special = true; /* SPM: the first fragment gets the dummy prefix */
    size_t start = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        int32_t id = t->special_start[c] < t->special_start[c + 1] ? match_special(t, text, len, i, o.parse_special) : -1;
        if (id < 0) { i++; continue; }
        if ((st = fragment(t, &s, text + start, i - start, prev_special, &out))) goto fail;
        if (!ivec_push(&out, id)) { st = CKE_ERR_NOMEM; goto fail; }
        prev_special = true;
        i += t->len[id];
        start = i;
    }
    if ((st = fragment(t, &s, text + start, len - start, prev_special, &out))) goto fail;
    if (add_eos) {
        if (t->eos < 0) { st = cke_fail(err, CKE_ERR_MISSING, "tokenizer: no EOS token to add"); goto fail; }
        if (!ivec_push(&out, t->eos)) { st = CKE_ERR_NOMEM; goto fail; }
    }
    if (!out.v && !(out.v = malloc(sizeof(int32_t)))) { st = CKE_ERR_NOMEM; goto fail; }
    *ids = out.v;
    *n_ids = out.n;
    free(s.sym); free(s.hp.v); free(s.buf.v);
    if (s.md) pcre2_match_data_free(s.md);
    return CKE_OK;
fail:
    if (st == CKE_ERR_NOMEM) cke_fail(err, st, "tokenizer: out of memory while encoding %zu bytes", len);
    free(out.v);
    free(s.sym); free(s.hp.v); free(s.buf.v);
    if (s.md) pcre2_match_data_free(s.md);
    return st;
}

/* ---------------------------------------------------------------- decode */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

cke_status cke_tok_decode(const cke_tok *t, const int32_t *ids, size_t n, int flags, char **out, size_t *len,
                          cke_err *err) {
    *out = NULL;
    *len = 0;
    if (!t || (!ids && n)) return cke_fail(err, CKE_ERR_ARG, "tokenizer: decode: NULL argument");
    cvec o = {0};
    if (!cvec_put(&o, "", 0)) return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory");
    bool strip = t->kind == CKE_TOK_SPM && t->add_space_prefix && !(flags & CKE_TOK_DECODE_KEEP_PREFIX);
    for (size_t k = 0; k < n; k++) {
        int32_t id = ids[k];
        if (id < 0 || id >= t->n) {
            free(o.v);
            return cke_fail(err, CKE_ERR_RANGE, "tokenizer: decode: token id %d at %zu outside [0, %d)", id, k, t->n);
        }
        const char *p = piece(t, id);
        size_t pl = t->len[id], before = o.n;
        int ty = t->type[id];
        bool ok = true;
        if (ty == CKE_TOKT_CONTROL || ty == CKE_TOKT_UNKNOWN) {
            if (flags & CKE_TOK_DECODE_SKIP_SPECIAL) continue;
            ok = cvec_put(&o, p, pl);
        } else if (ty == CKE_TOKT_USER_DEFINED) {
            ok = cvec_put(&o, p, pl);
        } else if (t->kind == CKE_TOK_SPM) {
            if (ty == CKE_TOKT_BYTE && pl == 6 && hexval(p[3]) >= 0 && hexval(p[4]) >= 0) {
                char b = (char)(hexval(p[3]) * 16 + hexval(p[4]));
                ok = cvec_put(&o, &b, 1);
            } else {
                for (size_t i = 0; ok && i < pl;) {
                    if (pl - i >= 3 && !memcmp(p + i, "\xE2\x96\x81", 3)) { ok = cvec_put(&o, " ", 1); i += 3; }
                    else { ok = cvec_put(&o, p + i, 1); i++; }
                }
            }
        } else {
            for (size_t i = 0; ok && i < pl;) {
                size_t cl = tok_utf8_len((const unsigned char *)p + i, pl - i);
                uint32_t cp = cl ? utf8_cp((const unsigned char *)p + i, cl) : 324;
                int b = cp < 324 ? t->cp_byte[cp] : -1;
                if (!cl) cl = 1;
                if (b >= 0) { char c = (char)b; ok = cvec_put(&o, &c, 1); }
                else ok = cvec_put(&o, p + i, cl); /* not a byte stand-in: copy as is */
                i += cl;
            }
        }
        if (!ok) { free(o.v); return cke_fail(err, CKE_ERR_NOMEM, "tokenizer: out of memory"); }
        if (strip && o.n > before) { /* SentencePiece drops the dummy prefix's space */
            if (o.v[before] == ' ') { memmove(o.v + before, o.v + before + 1, o.n - before); o.n--; }
            strip = false;
        }
    }
    *out = o.v;
    *len = o.n;
    return CKE_OK;
}

/* ---------------------------------------------------------------- access */

void cke_tok_free(cke_tok *t) {
    if (!t) return;
    free(t->arena); free(t->off); free(t->len); free(t->score); free(t->type); free(t->hslot);
    free(t->mkey); free(t->mrank); free(t->mres); free(t->special);
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    free(t);
}

cke_tok_kind cke_tok_kind_of(const cke_tok *t) { return t->kind; }
const char *cke_tok_pre_name(const cke_tok *t) { return t->pre_name; }
int32_t cke_tok_n_vocab(const cke_tok *t) { return t->n; }
const char *cke_tok_piece(const cke_tok *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n) { if (len) *len = 0; return NULL; }
    if (len) *len = t->len[id];
    return piece(t, id);
}
int cke_tok_type_of(const cke_tok *t, int32_t id) { return id < 0 || id >= t->n ? -1 : t->type[id]; }
float cke_tok_score(const cke_tok *t, int32_t id) { return id < 0 || id >= t->n ? 0.0f : t->score[id]; }
int32_t cke_tok_find(const cke_tok *t, const char *s, size_t len) { return tok_find(t, s, len); }
int32_t cke_tok_bos(const cke_tok *t) { return t->bos; }
int32_t cke_tok_eos(const cke_tok *t) { return t->eos; }
int32_t cke_tok_unk(const cke_tok *t) { return t->unk; }
int32_t cke_tok_pad(const cke_tok *t) { return t->pad; }
bool cke_tok_add_bos(const cke_tok *t) { return t->add_bos; }
bool cke_tok_add_eos(const cke_tok *t) { return t->add_eos; }
