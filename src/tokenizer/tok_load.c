/* Tokenizer loaders: llama2.c tokenizer.bin, GGUF metadata, HF tokenizer.json, GPT-2's
 * encoder.json + vocab.bpe. Every input is untrusted: lengths are checked before reading. */
#include "tokenizer/tok_internal.h"
#include "formats/gguf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE ((size_t)1 << 31) /* tokenizer files are megabytes; refuse absurd ones */

static cke_status read_file(const char *path, char **data, size_t *size, cke_err *err) {
    *data = NULL;
    *size = 0;
    /* O_NONBLOCK: a FIFO must be refused, not waited on */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return cke_fail(err, CKE_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE) {
        close(fd);
        return cke_fail(err, CKE_ERR_IO, "%s: not a regular file of sane size", path);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) { close(fd); return cke_fail(err, CKE_ERR_IO, "%s: %s", path, strerror(errno)); }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) { fclose(f); return cke_fail(err, CKE_ERR_NOMEM, "%s: out of memory", path); }
    if (n && fread(buf, 1, n, f) != n) {
        fclose(f); free(buf);
        return cke_fail(err, CKE_ERR_IO, "%s: short read", path);
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    *size = n;
    return CKE_OK;
}

/* ---------------------------------------------------------------- llama2.c */

cke_status cke_tok_load_llama2c(const void *data, size_t size, cke_tok **out, cke_err *err) {
    *out = NULL;
    const unsigned char *p = data;
    if (!p || size < 4) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.bin: too short (%zu bytes)", size);
    int32_t max_len;
    memcpy(&max_len, p, 4);
    if (max_len <= 0 || max_len > (1 << 20))
        return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.bin: max_token_length %d out of range", max_len);
    /* first pass: count and validate records */
    int64_t n = 0;
    size_t expand = 0; /* extra bytes from ' ' -> U+2581 */
    for (size_t off = 4; off < size; n++) {
        if (size - off < 8) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.bin: truncated record %lld at %zu", (long long)n, off);
        int32_t len;
        memcpy(&len, p + off + 4, 4);
        if (len < 0 || len > max_len)
            return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.bin: token %lld length %d outside [0, %d]", (long long)n, len, max_len);
        off += 8;
        if ((size_t)len > size - off)
            return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.bin: token %lld runs past the end", (long long)n);
        for (int32_t i = 0; i < len; i++) expand += p[off + (size_t)i] == ' ' ? 2 : 0;
        off += (size_t)len;
        if (n >= CKE_TOK_MAX_VOCAB) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.bin: too many tokens");
    }
    if (n < 3) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.bin: %lld tokens, need unk/BOS/EOS", (long long)n);
    cke_tok *t;
    cke_status s = tok_alloc(&t, CKE_TOK_SPM, n, err);
    if (s) return s;
    char *tmp = malloc((size_t)max_len * 3 + 1);
    if (!tmp) { cke_tok_free(t); return cke_fail(err, CKE_ERR_NOMEM, "tokenizer.bin: out of memory"); }
    size_t off = 4;
    for (int32_t id = 0; id < n; id++) {
        float score;
        int32_t len;
        memcpy(&score, p + off, 4);
        memcpy(&len, p + off + 4, 4);
        off += 8;
        size_t k = 0;
        for (int32_t i = 0; i < len; i++) { /* llama2.c keeps the marker as a plain space */
            if (p[off + (size_t)i] == ' ') { memcpy(tmp + k, "\xE2\x96\x81", 3); k += 3; }
            else tmp[k++] = (char)p[off + (size_t)i];
        }
        off += (size_t)len;
        int type = id == 0 ? CKE_TOKT_UNKNOWN : id <= 2 ? CKE_TOKT_CONTROL : CKE_TOKT_NORMAL;
        if (k == 6 && !memcmp(tmp, "<0x", 3) && tmp[5] == '>') type = CKE_TOKT_BYTE;
        if ((s = tok_set(t, id, tmp, k, score, type, err))) break;
    }
    free(tmp);
    (void)expand;
    if (!s) s = tok_finish_vocab(t, err);
    if (s) { cke_tok_free(t); return s; }
    t->unk = 0; t->bos = 1; t->eos = 2;
    t->add_bos = true;
    t->add_space_prefix = true;
    *out = t;
    return CKE_OK;
}

cke_status cke_tok_load_llama2c_file(const char *path, cke_tok **out, cke_err *err) {
    char *d;
    size_t n;
    cke_status s = read_file(path, &d, &n, err);
    if (s) return s;
    s = cke_tok_load_llama2c(d, n, out, err);
    free(d);
    return s;
}

/* ---------------------------------------------------------------- GGUF */

static int32_t gguf_id(const cke_gguf *g, const char *key, int32_t dflt, int32_t n) {
    int64_t v;
    if (cke_gguf_get_i64(g, key, &v) != CKE_OK || v < 0 || v >= n) return dflt;
    return (int32_t)v;
}

cke_status cke_tok_load_gguf(const cke_gguf *g, cke_tok **out, cke_err *err) {
    *out = NULL;
    const char *model;
    size_t mlen;
    cke_status s = cke_gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen);
    if (s) return cke_fail(err, s == CKE_ERR_MISSING ? CKE_ERR_MISSING : CKE_ERR_FORMAT,
                           "gguf: tokenizer.ggml.model %s", s == CKE_ERR_MISSING ? "absent" : "is not a string");
    cke_tok_kind kind;
    if (mlen == 5 && !memcmp(model, "llama", 5)) kind = CKE_TOK_SPM;
    else if (mlen == 4 && !memcmp(model, "gpt2", 4)) kind = CKE_TOK_BPE;
    else return cke_fail(err, CKE_ERR_UNSUPPORTED, "gguf: tokenizer model '%.*s' (cke has llama/SPM and gpt2/BPE)",
                         (int)(mlen > 32 ? 32 : mlen), model);
    const cke_gguf_kv *tk = cke_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (!tk) return cke_fail(err, CKE_ERR_MISSING, "gguf: tokenizer.ggml.tokens absent");
    if (tk->val.type != CKE_GGUF_ARR || tk->val.arr.elem != CKE_GGUF_STR)
        return cke_fail(err, CKE_ERR_FORMAT, "gguf: tokenizer.ggml.tokens is not a string array");
    uint64_t n = tk->val.arr.n;
    const cke_gguf_kv *sk = cke_gguf_find_kv(g, "tokenizer.ggml.scores");
    const cke_gguf_kv *yk = cke_gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (sk && (sk->val.type != CKE_GGUF_ARR || sk->val.arr.n != n || cke_gguf_type_size(sk->val.arr.elem) == 0))
        return cke_fail(err, CKE_ERR_FORMAT, "gguf: tokenizer.ggml.scores is not a numeric array of %llu", (unsigned long long)n);
    if (yk && (yk->val.type != CKE_GGUF_ARR || yk->val.arr.n != n || cke_gguf_type_size(yk->val.arr.elem) == 0))
        return cke_fail(err, CKE_ERR_FORMAT, "gguf: tokenizer.ggml.token_type is not a numeric array of %llu", (unsigned long long)n);
    if (n > CKE_TOK_MAX_VOCAB) return cke_fail(err, CKE_ERR_FORMAT, "gguf: %llu tokens", (unsigned long long)n);
    cke_tok *t;
    if ((s = tok_alloc(&t, kind, (int64_t)n, err))) return s;
    for (uint64_t i = 0; i < n && !s; i++) {
        double sc = 0;
        int64_t ty = CKE_TOKT_NORMAL;
        if (sk && cke_gguf_arr_f64(&sk->val, i, &sc)) sc = 0;
        if (yk && cke_gguf_arr_i64(&yk->val, i, &ty)) ty = CKE_TOKT_NORMAL;
        s = tok_set(t, (int32_t)i, tk->val.arr.strs[i].s, tk->val.arr.strs[i].len, (float)sc, (int)ty, err);
    }
    if (!s) s = tok_finish_vocab(t, err);
    if (s) goto fail;
    int32_t nv = t->n;
    bool b;
    if (kind == CKE_TOK_SPM) {
        t->unk = gguf_id(g, "tokenizer.ggml.unknown_token_id", 0 < nv ? 0 : -1, nv);
        t->bos = gguf_id(g, "tokenizer.ggml.bos_token_id", 1 < nv ? 1 : -1, nv);
        t->eos = gguf_id(g, "tokenizer.ggml.eos_token_id", 2 < nv ? 2 : -1, nv);
        t->add_bos = true;
        t->add_space_prefix = true;
        if (!cke_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) t->add_space_prefix = b;
    } else {
        const char *pre = "default";
        size_t plen = 7;
        if (cke_gguf_find_kv(g, "tokenizer.ggml.pre") && (s = cke_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &plen))) {
            s = cke_fail(err, CKE_ERR_FORMAT, "gguf: tokenizer.ggml.pre is not a string");
            goto fail;
        }
        if ((s = tok_set_pre(t, pre, plen, err))) goto fail;
        const cke_gguf_kv *mk = cke_gguf_find_kv(g, "tokenizer.ggml.merges");
        if (!mk || mk->val.type != CKE_GGUF_ARR || mk->val.arr.elem != CKE_GGUF_STR) {
            s = cke_fail(err, CKE_ERR_FORMAT, "gguf: tokenizer.ggml.merges absent or not a string array");
            goto fail;
        }
        uint64_t nm = mk->val.arr.n;
        for (uint64_t i = 0; i < nm; i++) {
            const char *m = mk->val.arr.strs[i].s;
            size_t ml = mk->val.arr.strs[i].len;
            const char *sp = ml > 1 ? memchr(m + 1, ' ', ml - 1) : NULL;
            if (!sp) { s = cke_fail(err, CKE_ERR_FORMAT, "gguf: merge %llu has no space", (unsigned long long)i); goto fail; }
            size_t al = (size_t)(sp - m);
            if ((s = tok_add_merge(t, m, al, sp + 1, ml - al - 1, (size_t)nm, err))) goto fail;
        }
        t->bos = gguf_id(g, "tokenizer.ggml.bos_token_id", -1, nv);
        t->eos = gguf_id(g, "tokenizer.ggml.eos_token_id", -1, nv);
        t->unk = gguf_id(g, "tokenizer.ggml.unknown_token_id", -1, nv);
    }
    t->pad = gguf_id(g, "tokenizer.ggml.padding_token_id", -1, nv);
    if (!cke_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (!cke_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;
    if (t->add_bos && t->bos < 0) t->add_bos = false;
    if (t->add_eos && t->eos < 0) t->add_eos = false;
    *out = t;
    return CKE_OK;
fail:
    cke_tok_free(t);
    return s;
}

cke_status cke_tok_load_gguf_file(const char *path, cke_tok **out, cke_err *err) {
    cke_gguf *g;
    cke_status s = cke_gguf_open(path, &g, err);
    if (s) return s;
    s = cke_tok_load_gguf(g, out, err);
    cke_gguf_close(g);
    return s;
}

/* ---------------------------------------------------------------- JSON helpers */

/* Vocab object {piece: id} -> max id; FORMAT on non-integer or out-of-range ids. */
static cke_status vocab_max_id(const cJSON *vocab, int64_t *max_id, cke_err *err) {
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || !it->string || it->valuedouble < 0 || it->valuedouble >= CKE_TOK_MAX_VOCAB ||
            it->valuedouble != (double)(int64_t)it->valuedouble)
            return cke_fail(err, CKE_ERR_FORMAT, "tokenizer json: vocab entry with a bad id");
        if ((int64_t)it->valuedouble > *max_id) *max_id = (int64_t)it->valuedouble;
    }
    return CKE_OK;
}

static cke_status vocab_fill(cke_tok *t, const cJSON *vocab, cke_err *err) {
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = (int32_t)it->valuedouble;
        if (t->type[id] != CKE_TOKT_UNUSED)
            return cke_fail(err, CKE_ERR_FORMAT, "tokenizer json: id %d appears twice in the vocab", id);
        cke_status s = tok_set(t, id, it->string, strlen(it->string), 0.0f, CKE_TOKT_NORMAL, err);
        if (s) return s;
    }
    return CKE_OK;
}

static cke_status add_merge_line(cke_tok *t, const char *m, size_t ml, size_t nm, size_t i, cke_err *err) {
    const char *sp = ml > 1 ? memchr(m + 1, ' ', ml - 1) : NULL;
    if (!sp) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer: merge %zu '%.*s' is not 'a b'", i, (int)(ml > 40 ? 40 : ml), m);
    size_t al = (size_t)(sp - m);
    return tok_add_merge(t, m, al, sp + 1, ml - al - 1, nm, err);
}

/* ---------------------------------------------------------------- HF tokenizer.json */

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static bool jbool(const cJSON *o, const char *k, bool dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

typedef struct { bool byte_level; } pre_state;

static cke_status hf_pre(cke_tok *t, const cJSON *p, pre_state *ps, int depth, cke_err *err) {
    if (!p || cJSON_IsNull(p)) return CKE_OK;
    const char *type = jstr(p, "type");
    if (!type || depth > 4) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: pre_tokenizer without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *it;
        if (!cJSON_IsArray(arr)) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: Sequence without pretokenizers");
        cJSON_ArrayForEach(it, arr) {
            cke_status s = hf_pre(t, it, ps, depth + 1, err);
            if (s) return s;
        }
        return CKE_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        ps->byte_level = true;
        if (jbool(p, "add_prefix_space", false)) t->prefix_space = true;
        static const char gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
        if (jbool(p, "use_regex", true)) return tok_add_regex(t, gpt2, strlen(gpt2), err);
        return CKE_OK;
    }
    if (!strcmp(type, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const char *beh = jstr(p, "behavior");
        if (!beh || strcmp(beh, "Isolated") || jbool(p, "invert", false))
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer.json: Split behavior '%s'%s (cke has Isolated)",
                            beh ? beh : "?", jbool(p, "invert", false) ? " inverted" : "");
        const char *re = jstr(pat, "Regex");
        if (re) return tok_add_regex(t, re, strlen(re), err);
        const char *lit = jstr(pat, "String");
        if (!lit) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: Split without a pattern");
        /* a literal: quote it for PCRE2 */
        size_t n = strlen(lit);
        if (n > 4096) return cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer.json: Split string too long");
        char q[4096 + 8];
        snprintf(q, sizeof q, "\\Q%s\\E", lit);
        return tok_add_regex(t, q, strlen(q), err);
    }
    if (!strcmp(type, "Digits"))
        return jbool(p, "individual_digits", false) ? tok_add_regex(t, "\\p{N}", 5, err) : tok_add_regex(t, "\\p{N}+", 6, err);
    return cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer.json: pre_tokenizer '%.40s'", type);
}

static cke_status hf_normalizer(cke_tok *t, const cJSON *n, int depth, cke_err *err) {
    if (!n || cJSON_IsNull(n)) return CKE_OK;
    const char *type = jstr(n, "type");
    if (!type || depth > 4) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: normalizer without a type");
    if (!strcmp(type, "NFC")) { t->nfc = true; return CKE_OK; }
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *it;
        if (!cJSON_IsArray(arr)) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: normalizer Sequence without normalizers");
        cJSON_ArrayForEach(it, arr) {
            cke_status s = hf_normalizer(t, it, depth + 1, err);
            if (s) return s;
        }
        return CKE_OK;
    }
    return cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer.json: normalizer '%.40s' (cke has NFC)", type);
}

/* TemplateProcessing: a SpecialToken before $A means BOS, after it EOS. */
static void hf_post(cke_tok *t, const cJSON *p, int depth) {
    if (!p || depth > 4) return;
    const char *type = jstr(p, "type");
    if (!type) return;
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(p, "processors"), *it;
        cJSON_ArrayForEach(it, arr) hf_post(t, it, depth + 1);
        return;
    }
    if (strcmp(type, "TemplateProcessing")) return;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single"), *it;
    bool seen_a = false;
    cJSON_ArrayForEach(it, single) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        if (cJSON_GetObjectItemCaseSensitive(it, "Sequence")) { seen_a = true; continue; }
        const char *id = jstr(sp, "id");
        if (!id) continue;
        int32_t tid = tok_find(t, id, strlen(id));
        if (tid < 0) continue;
        if (!seen_a) { t->bos = tid; t->add_bos = true; }
        else { t->eos = tid; t->add_eos = true; }
    }
}

cke_status cke_tok_load_hf_json(const char *json, size_t len, cke_tok **out, cke_err *err) {
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: not valid JSON");
    cke_tok *t = NULL;
    cke_status s = CKE_OK;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    const char *mtype = jstr(model, "type");
    if (!cJSON_IsObject(model)) { s = cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: no model object"); goto done; }
    if (mtype && strcmp(mtype, "BPE")) {
        s = cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer.json: model type '%.40s' (cke has BPE)", mtype);
        goto done;
    }
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        s = cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: model.vocab must be an object and model.merges an array");
        goto done;
    }
    int64_t max_id = -1;
    if ((s = vocab_max_id(vocab, &max_id, err))) goto done;
    const cJSON *it;
    if (added && !cJSON_IsArray(added)) { s = cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: added_tokens is not an array"); goto done; }
    cJSON_ArrayForEach(it, added) {
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsNumber(idj) || idj->valuedouble < 0 || idj->valuedouble >= CKE_TOK_MAX_VOCAB || !jstr(it, "content")) {
            s = cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: added token without a valid id/content");
            goto done;
        }
        if ((int64_t)idj->valuedouble > max_id) max_id = (int64_t)idj->valuedouble;
    }
    if ((s = tok_alloc(&t, CKE_TOK_BPE, max_id + 1, err))) goto done;
    if ((s = vocab_fill(t, vocab, err))) goto done;
    cJSON_ArrayForEach(it, added) {
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        const char *c = jstr(it, "content");
        int ty = jbool(it, "special", false) ? CKE_TOKT_CONTROL : CKE_TOKT_USER_DEFINED;
        if ((s = tok_set(t, id, c, strlen(c), 0.0f, ty, err))) goto done;
    }
    if ((s = tok_finish_vocab(t, err))) goto done;
    if (jbool(model, "byte_fallback", false)) {
        s = cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer.json: SentencePiece-style BPE with byte_fallback (use the GGUF)");
        goto done;
    }
    pre_state ps = {false};
    if ((s = hf_pre(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &ps, 0, err))) goto done;
    if (!ps.byte_level) {
        s = cke_fail(err, CKE_ERR_UNSUPPORTED, "tokenizer.json: BPE without a ByteLevel pre-tokenizer");
        goto done;
    }
    if ((s = hf_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), 0, err))) goto done;
    t->ignore_merges = jbool(model, "ignore_merges", false);
    strcpy(t->pre_name, "hf-regex");
    size_t nm = (size_t)cJSON_GetArraySize(merges), i = 0;
    cJSON_ArrayForEach(it, merges) {
        if (cJSON_IsString(it)) {
            s = add_merge_line(t, it->valuestring, strlen(it->valuestring), nm, i, err);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
                   cJSON_IsString(it->child->next)) {
            const char *a = it->child->valuestring, *b = it->child->next->valuestring;
            s = tok_add_merge(t, a, strlen(a), b, strlen(b), nm, err);
        } else {
            s = cke_fail(err, CKE_ERR_FORMAT, "tokenizer.json: merge %zu is neither \"a b\" nor [a, b]", i);
        }
        if (s) goto done;
        i++;
    }
    const char *unk = jstr(model, "unk_token");
    if (unk) t->unk = tok_find(t, unk, strlen(unk));
    hf_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), 0);
done:
    cJSON_Delete(root);
    if (s) { cke_tok_free(t); return s; }
    *out = t;
    return CKE_OK;
}

/* ---------------------------------------------------------------- GPT-2 encoder.json + vocab.bpe */

cke_status cke_tok_load_gpt2(const char *enc, size_t enc_len, const char *merges, size_t mlen, cke_tok **out,
                             cke_err *err) {
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(enc, enc_len);
    if (!root) return cke_fail(err, CKE_ERR_FORMAT, "encoder.json: not valid JSON");
    cke_tok *t = NULL;
    cke_status s = CKE_OK;
    int64_t max_id = -1;
    if (!cJSON_IsObject(root)) { s = cke_fail(err, CKE_ERR_FORMAT, "encoder.json: not an object"); goto done; }
    if ((s = vocab_max_id(root, &max_id, err))) goto done;
    if ((s = tok_alloc(&t, CKE_TOK_BPE, max_id + 1, err))) goto done;
    if ((s = vocab_fill(t, root, err))) goto done;
    static const char eot[] = "<|endoftext|>";
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, eot);
    if (e) t->type[(int32_t)e->valuedouble] = CKE_TOKT_CONTROL;
    if ((s = tok_finish_vocab(t, err))) goto done;
    if (e) t->bos = t->eos = (int32_t)e->valuedouble;
    if ((s = tok_set_pre(t, "gpt-2", 5, err))) goto done;
    size_t nlines = 1;
    for (size_t i = 0; i < mlen; i++) nlines += merges[i] == '\n';
    size_t ln = 0;
    for (size_t i = 0; i < mlen;) {
        const char *nl = memchr(merges + i, '\n', mlen - i);
        size_t e2 = nl ? (size_t)(nl - merges) : mlen, l = e2 - i;
        if (l && merges[i + l - 1] == '\r') l--;
        if (l && !(ln == 0 && merges[i] == '#')) {
            if ((s = add_merge_line(t, merges + i, l, nlines, ln, err))) goto done;
        }
        ln++;
        i = e2 + 1;
    }
done:
    cJSON_Delete(root);
    if (s) { cke_tok_free(t); return s; }
    *out = t;
    return CKE_OK;
}

/* ---------------------------------------------------------------- tokenizer_config.json */

static int32_t cfg_token(const cke_tok *t, const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    const char *s = cJSON_IsString(v) ? v->valuestring : jstr(v, "content"); /* "x" or {"content": "x"} */
    return s ? tok_find(t, s, strlen(s)) : -1;
}

/* tokenizer.json leaves BOS/EOS to transformers' tokenizer_config.json: read it when it sits
 * beside the tokenizer.json. Missing or malformed is not an error: it only adds information. */
static void apply_config(cke_tok *t, const char *json_path) {
    char p[4096];
    const char *slash = strrchr(json_path, '/');
    size_t dl = slash ? (size_t)(slash - json_path) + 1 : 0;
    if (dl + 32 > sizeof p) return;
    memcpy(p, json_path, dl);
    strcpy(p + dl, "tokenizer_config.json");
    char *d;
    size_t n;
    if (read_file(p, &d, &n, NULL)) return;
    cJSON *cfg = cJSON_ParseWithLength(d, n);
    free(d);
    if (!cJSON_IsObject(cfg)) { cJSON_Delete(cfg); return; }
    int32_t id;
    if ((id = cfg_token(t, cfg, "bos_token")) >= 0) t->bos = id;
    if ((id = cfg_token(t, cfg, "eos_token")) >= 0) t->eos = id;
    if ((id = cfg_token(t, cfg, "pad_token")) >= 0) t->pad = id;
    if ((id = cfg_token(t, cfg, "unk_token")) >= 0) t->unk = id;
    t->add_bos = jbool(cfg, "add_bos_token", t->add_bos) && t->bos >= 0;
    t->add_eos = jbool(cfg, "add_eos_token", t->add_eos) && t->eos >= 0;
    cJSON_Delete(cfg);
}

/* ---------------------------------------------------------------- by path */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static cke_status load_gpt2_files(const char *encp, const char *mp, cke_tok **out, cke_err *err) {
    char *a, *b;
    size_t an, bn;
    cke_status s = read_file(encp, &a, &an, err);
    if (s) return s;
    if ((s = read_file(mp, &b, &bn, err))) { free(a); return s; }
    s = cke_tok_load_gpt2(a, an, b, bn, out, err);
    free(a);
    free(b);
    return s;
}

cke_status cke_tok_load(const char *path, cke_tok **out, cke_err *err) {
    *out = NULL;
    if (!path) return cke_fail(err, CKE_ERR_ARG, "tokenizer: NULL path");
    struct stat st;
    if (stat(path, &st) != 0) return cke_fail(err, CKE_ERR_IO, "%s: %s", path, strerror(errno));
    char p1[4096], p2[4096];
    if (S_ISDIR(st.st_mode)) {
        snprintf(p1, sizeof p1, "%s/tokenizer.json", path);
        if (exists(p1)) return cke_tok_load(p1, out, err);
        snprintf(p1, sizeof p1, "%s/encoder.json", path);
        snprintf(p2, sizeof p2, "%s/vocab.bpe", path);
        if (exists(p1) && exists(p2)) return load_gpt2_files(p1, p2, out, err);
        snprintf(p1, sizeof p1, "%s/vocab.json", path);
        snprintf(p2, sizeof p2, "%s/merges.txt", path);
        if (exists(p1) && exists(p2)) return load_gpt2_files(p1, p2, out, err);
        snprintf(p1, sizeof p1, "%s/tokenizer.bin", path);
        if (exists(p1)) return cke_tok_load_llama2c_file(p1, out, err);
        return cke_fail(err, CKE_ERR_MISSING, "%s: no tokenizer.json, encoder.json+vocab.bpe or tokenizer.bin", path);
    }
    if (ends_with(path, ".gguf")) return cke_tok_load_gguf_file(path, out, err);
    if (ends_with(path, "encoder.json") || ends_with(path, "vocab.json")) {
        size_t dl = strlen(path) - (ends_with(path, "encoder.json") ? 12 : 10);
        if (dl >= sizeof p2 - 16) return cke_fail(err, CKE_ERR_ARG, "tokenizer: path too long");
        memcpy(p2, path, dl);
        strcpy(p2 + dl, ends_with(path, "encoder.json") ? "vocab.bpe" : "merges.txt");
        return load_gpt2_files(path, p2, out, err);
    }
    char *d;
    size_t n;
    cke_status s = read_file(path, &d, &n, err);
    if (s) return s;
    size_t i = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t')) i++;
    if (ends_with(path, ".json") || (i < n && d[i] == '{')) {
        s = cke_tok_load_hf_json(d, n, out, err);
        if (!s) apply_config(*out, path);
    }
    else if (n >= 4 && !memcmp(d, "GGUF", 4)) { free(d); return cke_tok_load_gguf_file(path, out, err); }
    else s = cke_tok_load_llama2c(d, n, out, err);
    free(d);
    return s;
}
