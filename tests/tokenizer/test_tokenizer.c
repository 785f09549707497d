/* Tokenizer tests against real vocabularies in $CKE_MODELS (default ../shared/models).
 * One PASS/FAIL/SKIP line per check; ends with "N passed, N failed"; exit 1 on failure.
 * A missing model file is a SKIP, not a failure. */
#include "tokenizer/tokenizer.h"
#include "formats/gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

void *memmem(const void *, size_t, const void *, size_t); /* glibc; not in POSIX 2008 headers */

static int n_pass, n_fail, n_skip;
static const char *models;

static bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool check(bool ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok) n_pass++; else n_fail++;
    fflush(stdout);
    return ok;
}

static void skip(const char *what) { printf("SKIP %s (not found under %s)\n", what, models); n_skip++; }

static char *mpath(const char *rel) {
    static char buf[8][1024];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 1024, "%s/%s", models, rel);
    return b;
}

static bool have(const char *rel) {
    struct stat st;
    return stat(mpath(rel), &st) == 0;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *d = malloc((size_t)sz + 1);
    if (d && fread(d, 1, (size_t)sz, f) != (size_t)sz) { free(d); d = NULL; }
    fclose(f);
    if (d) { d[sz] = 0; *n = (size_t)sz; }
    return d;
}

static cke_tok *load(const char *rel) {
    if (!have(rel)) { skip(rel); return NULL; }
    cke_tok *t = NULL;
    cke_err e = {0};
    cke_status s = cke_tok_load(mpath(rel), &t, &e);
    check(s == CKE_OK, "load %s%s%s", rel, s ? ": " : "", s ? e.msg : "");
    return t;
}

static bool enc(const cke_tok *t, const char *s, size_t n, int bos, bool special, int32_t **ids, size_t *nid) {
    cke_tok_encode_opts o = {bos, 0, special};
    cke_err e = {0};
    if (cke_tok_encode(t, s, n, &o, ids, nid, &e)) { printf("   encode error: %s\n", e.msg); return false; }
    return true;
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    printf("   %s:", label);
    for (size_t i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

/* ---- .inp/.out test vectors (llama.cpp's format) */
static void vectors(const char *tokrel, const char *inprel, const char *outrel, const char *label) {
    if (!have(inprel) || !have(outrel)) { skip(inprel); return; }
    cke_tok *t = load(tokrel);
    if (!t) return;
    size_t ni, no;
    char *inp = slurp(mpath(inprel), &ni), *out = slurp(mpath(outrel), &no);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t pos = 0, opos = 0;
    int k = 0, bad = 0;
    while (pos < ni) {
        char *f = strstr(inp + pos, sep);
        if (!f) break;
        size_t len = (size_t)(f - (inp + pos));
        char *nl = memchr(out + opos, '\n', no - opos);
        size_t ol = nl ? (size_t)(nl - (out + opos)) : no - opos;
        /* expected ids */
        int32_t exp[512];
        size_t ne = 0;
        char *line = strndup(out + opos, ol), *q = line, *end;
        for (long v; ne < 512 && (v = strtol(q, &end, 10), end != q); q = end) exp[ne++] = (int32_t)v;
        free(line);
        int32_t *ids;
        size_t nid;
        bool ok = enc(t, inp + pos, len, 0, false, &ids, &nid) && nid == ne && !memcmp(ids, exp, ne * sizeof *ids);
        if (!ok) {
            bad++;
            printf("   %s vector %d: '%.*s'\n", label, k, (int)(len > 60 ? 60 : len), inp + pos);
            print_ids("want", exp, ne);
            print_ids("got ", ids, nid);
        }
        free(ids);
        k++;
        pos = (size_t)(f - inp) + sizeof sep - 1;
        opos += ol + 1;
    }
    check(bad == 0 && k > 0, "%s: %d/%d test vectors exact", label, k - bad, k);
    free(inp); free(out);
    cke_tok_free(t);
}

/* ---- round trips */
static const char *CORPUS[] = {
    "Hello world", " Hello world", "Hello, world! How are you today?", "  leading and trailing  ", "\ttabs\tand\nnewlines\n\n",
    "Führer naïve café", "нещо на Български", "日本語のテキストと中文文本", "한국어 텍스트", "कान्तिपुर हिन्दी",
    "emoji 🦙🚀😶‍🌫️ ✅ 👨‍👩‍👧‍👦", "combining: e\xCC\x81 a\xCC\x8A n\xCC\x83", "control \x01\x02\x1f\x7f bytes",
    "numbers 1234567890 3.14159 1,000,000", "code: for (int i = 0; i < n; i++) { x += y[i]; }", "'s 're 've 'll 'd 'm 'S 'T",
    "a", " ", "   ", "\n", "!!!???...", "Ω≈ç√∫˜µ≤≥÷ ¡™£¢∞§¶•ªº–≠", "ﬀﬁﬂ ℌℍ Ａｂｃ", "tab\t\t\tend", "mixed\r\nline\rendings",
};

static uint32_t rng = 12345;
static uint32_t rnd(void) { rng = rng * 1664525u + 1013904223u; return rng >> 8; }

/* random valid UTF-8 from a fixed seed: ASCII, Latin, CJK, emoji, combining marks, controls */
static size_t rand_utf8(char *buf, size_t max) {
    size_t n = 0;
    while (n + 4 < max) {
        uint32_t cp, r = rnd() % 10;
        if (r < 4) cp = 0x20 + rnd() % 95;
        else if (r == 4) cp = rnd() % 0x20;
        else if (r == 5) cp = 0xA0 + rnd() % 0x500;
        else if (r == 6) cp = 0x300 + rnd() % 0x70;
        else if (r == 7) cp = 0x4E00 + rnd() % 0x5000;
        else if (r == 8) cp = 0x1F300 + rnd() % 0x300;
        else cp = 0x80 + rnd() % 0x10F000;
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
        if (cp > 0x10FFFF) cp = 'y';
        n += (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)buf + n);
        if (rnd() % 16 == 0) break;
    }
    return n;
}

/* GPT-2's bytes_to_unicode, to ask whether a byte-level vocabulary can spell byte b at all:
 * some (falcon, mpt, starcoder ...) lack the stand-ins of bytes that never occur in their data,
 * and deepseek-coder has them only as added tokens, so those bytes cannot round-trip. */
static bool byte_spellable(const cke_tok *t, unsigned char b) {
    if (cke_tok_kind_of(t) == CKE_TOK_SPM) return true;
    unsigned cp = b, k = 0;
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    if (!printable) {
        for (unsigned x = 0; x < b; x++) k += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174);
        cp = 256 + k;
    }
    char u[4];
    size_t n = cp < 0x80 ? (u[0] = (char)cp, 1) : (u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), 2);
    int32_t id = cke_tok_find(t, u, n);
    return id >= 0 && cke_tok_type_of(t, id) == CKE_TOKT_NORMAL;
}

static bool spellable(const cke_tok *t, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!byte_spellable(t, (unsigned char)s[i])) return false;
    return true;
}

static bool roundtrip_one(const cke_tok *t, const char *s, size_t n, bool nfc, int *bad) {
    int32_t *ids;
    size_t nid;
    if (!enc(t, s, n, 0, false, &ids, &nid)) { (*bad)++; return false; }
    char *out;
    size_t ol;
    cke_err e;
    cke_status st = cke_tok_decode(t, ids, nid, 0, &out, &ol, &e);
    free(ids);
    if (st) { (*bad)++; return false; }
    const char *want = s;
    size_t wl = n;
    utf8proc_uint8_t *norm = NULL;
    if (nfc) {
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &norm, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r >= 0) { want = (const char *)norm; wl = (size_t)r; }
    }
    bool ok = ol == wl && !memcmp(out, want, wl);
    if (!ok && *bad < 3) printf("   round trip: '%.*s' -> '%.*s'\n", (int)(n > 60 ? 60 : n), s, (int)(ol > 60 ? 60 : ol), out);
    free(norm);
    free(out);
    if (!ok) (*bad)++;
    return ok;
}

static void roundtrip(const cke_tok *t, const char *label, bool nfc, bool random_bytes) {
    int bad = 0, total = 0, unspellable = 0;
    for (size_t i = 0; i < sizeof CORPUS / sizeof *CORPUS; i++) {
        if (!spellable(t, CORPUS[i], strlen(CORPUS[i]))) { unspellable++; continue; }
        roundtrip_one(t, CORPUS[i], strlen(CORPUS[i]), nfc, &bad);
        total++;
    }
    rng = 12345;
    char buf[512];
    for (int i = 0; i < 300; i++) {
        size_t n = rand_utf8(buf, sizeof buf);
        if (!spellable(t, buf, n)) { unspellable++; continue; }
        roundtrip_one(t, buf, n, nfc, &bad);
        total++;
    }
    if (random_bytes) /* arbitrary bytes, invalid UTF-8 included */
        for (int i = 0; i < 200; i++) {
            size_t n = rnd() % 64;
            for (size_t k = 0; k < n; k++) buf[k] = (char)rnd();
            if (!spellable(t, buf, n)) { unspellable++; continue; }
            roundtrip_one(t, buf, n, false, &bad);
            total++;
        }
    check(bad == 0 && total >= 150, "%s: decode(encode(s)) == s on %d strings (%d left out: bytes the vocab cannot spell)",
          label, total, unspellable);
}

static void expect_ids(const cke_tok *t, const char *s, int bos, bool special, const int32_t *want, size_t nw, const char *label) {
    int32_t *ids;
    size_t nid;
    bool ok = enc(t, s, strlen(s), bos, special, &ids, &nid) && nid == nw && !memcmp(ids, want, nw * sizeof *ids);
    if (!ok) { print_ids("want", want, nw); print_ids("got ", ids, nid); }
    check(ok, "%s", label);
    free(ids);
}

static int32_t find(const cke_tok *t, const char *s) { return cke_tok_find(t, s, strlen(s)); }

/* ---- same ids from two loaders */
static void agree(const cke_tok *a, const cke_tok *b, const char *label, bool no_space_runs, bool nfc_stable_only) {
    int bad = 0, total = 0;
    rng = 777;
    char buf[512];
    for (int i = 0; i < 300 + (int)(sizeof CORPUS / sizeof *CORPUS); i++, total++) {
        const char *s = buf;
        size_t n;
        if (i < (int)(sizeof CORPUS / sizeof *CORPUS)) { s = CORPUS[i]; n = strlen(s); }
        else n = rand_utf8(buf, sizeof buf);
        if (no_space_runs && (memmem(s, n, "  ", 2) || memmem(s, n, "\t\t", 2))) { total--; continue; }
        if (nfc_stable_only) { /* strings NFC would change */
            char *z = strndup(s, n);
            utf8proc_uint8_t *nf = z ? utf8proc_NFC((const utf8proc_uint8_t *)z) : NULL;
            bool stable = nf && strlen((const char *)nf) == n && !memcmp(nf, s, n);
            free(nf);
            free(z);
            if (!stable) { total--; continue; }
        }
        int32_t *x, *y;
        size_t nx, ny;
        bool ok = enc(a, s, n, -1, false, &x, &nx) & enc(b, s, n, -1, false, &y, &ny);
        ok = ok && nx == ny && !memcmp(x, y, nx * sizeof *x);
        if (!ok && bad < 2) { printf("   '%.*s'\n", (int)(n > 60 ? 60 : n), s); print_ids("a", x, nx); print_ids("b", y, ny); }
        bad += !ok;
        free(x); free(y);
    }
    check(bad == 0, "%s: identical ids on %d strings", label, total);
}

static void test_stories(void) {
    if (!have("stories260K/tok512.bin") || !have("stories260K/stories260K.gguf")) { skip("stories260K"); return; }
    cke_tok *a = load("stories260K/tok512.bin"), *b = load("stories260K/stories260K.gguf");
    if (!a || !b) { cke_tok_free(a); cke_tok_free(b); return; }
    check(cke_tok_n_vocab(a) == 512 && cke_tok_n_vocab(b) == 512, "stories260K: 512 tokens in both");
    agree(a, b, "stories260K tok512.bin vs gguf", false, false);
    roundtrip(a, "stories260K tok512.bin", false, true);
    /* decode of the published greedy sample's ids gives its text */
    size_t ni, nt;
    char *idtxt = slurp(mpath("stories260K/reference_greedy_t0_256steps.ids.txt"), &ni);
    char *txt = slurp(mpath("stories260K/reference_greedy_t0_256steps.txt"), &nt);
    if (idtxt && txt) {
        char *q = strchr(idtxt, ':');
        int32_t ids[300];
        size_t n = 0;
        char *end;
        for (long v; q && n < 300 && (v = strtol(q + 1, &end, 10), end != q + 1); q = end) ids[n++] = (int32_t)v;
        char *out;
        size_t ol;
        cke_err e;
        bool ok = !cke_tok_decode(a, ids, n, CKE_TOK_DECODE_SKIP_SPECIAL, &out, &ol, &e);
        while (nt && (txt[nt - 1] == '\n')) nt--;
        size_t cmp = ol < nt ? ol : nt;
        ok = ok && n == 256 && cmp > 100 && !memcmp(out, txt, cmp);
        check(ok, "stories260K: decode(reference ids) == reference text (%zu bytes)", cmp);
        if (!ok) printf("   got '%.*s'\n", (int)(ol > 120 ? 120 : ol), out);
        free(out);
        /* and its text encodes with BOS into ids the model starts with: 1 403 407 (Once upon) */
        int32_t want[] = {1, 403, 407};
        int32_t *x;
        size_t nx;
        ok = enc(a, "Once upon", 9, 1, false, &x, &nx) && nx == 3 && !memcmp(x, want, sizeof want);
        check(ok, "stories260K: 'Once upon' -> 1 403 407 (the reference run's first input tokens)");
        free(x);
    }
    free(idtxt); free(txt);
    cke_tok_free(a); cke_tok_free(b);
}

/* ---- bad input */
static void test_bad_llama2c(void) {
    size_t n;
    char *d = have("stories260K/tok512.bin") ? slurp(mpath("stories260K/tok512.bin"), &n) : NULL;
    if (!d) { skip("stories260K/tok512.bin"); return; }
    /* record boundaries: a shorter file there is a smaller valid vocabulary */
    char *bound = calloc(n + 1, 1);
    for (size_t off = 4; off + 8 <= n;) {
        int32_t len;
        memcpy(&len, d + off + 4, 4);
        off += 8 + (size_t)len;
        if (off <= n) bound[off] = 1;
    }
    int bad = 0, n3 = 0;
    for (size_t len = 0; len < n; len++) {
        cke_tok *t = NULL;
        cke_err e;
        char *c = malloc(len ? len : 1);
        memcpy(c, d, len);
        cke_status s = cke_tok_load_llama2c(c, len, &t, &e);
        if (s == CKE_OK) {
            n3++;
            if (!bound[len]) bad++;
            int32_t *ids; size_t ni;
            if (enc(t, "Once upon a time", 16, 1, false, &ids, &ni)) free(ids);
        }
        cke_tok_free(t);
        free(c);
    }
    check(bad == 0, "tokenizer.bin truncated at all %zu lengths: errors except at %d record boundaries", n, n3);
    /* byte flips: any outcome but a crash; whatever loads must encode and decode */
    rng = 99;
    int loaded = 0;
    for (int i = 0; i < 2000; i++) {
        char *c = malloc(n);
        memcpy(c, d, n);
        for (int k = 0; k < 1 + i % 4; k++) c[rnd() % n] ^= (char)(1u << (rnd() % 8));
        cke_tok *t = NULL;
        cke_err e;
        if (cke_tok_load_llama2c(c, n, &t, &e) == CKE_OK) {
            loaded++;
            int32_t *ids; size_t ni;
            if (enc(t, "Once upon a time, Lily", 22, 1, false, &ids, &ni)) {
                char *o; size_t ol;
                if (!cke_tok_decode(t, ids, ni, 0, &o, &ol, &e)) free(o);
                free(ids);
            }
        }
        cke_tok_free(t);
        free(c);
    }
    check(true, "tokenizer.bin with 2000 random bit flips: no crash (%d still loaded)", loaded);
    free(bound);
    free(d);
}

static void test_bad_json(void) {
    static const char *bad[] = {
        "", "{", "[]", "null", "{\"model\":{}}", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1e20},\"merges\":[]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0.5},\"merges\":[]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[[1,2]]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"ab\"]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Whatever\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"added_tokens\":[{\"content\":\"x\"}]}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"normalizer\":{\"type\":\"NFKD\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
        "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":[1,2],\"merges\":[]}}",
    };
    int ok = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cke_tok *t = NULL;
        cke_err e = {0};
        cke_status s = cke_tok_load_hf_json(bad[i], strlen(bad[i]), &t, &e);
        if (s != CKE_OK && t == NULL && e.msg[0]) ok++;
        else printf("   accepted: %s\n", bad[i]);
        cke_tok_free(t);
    }
    check(ok == (int)(sizeof bad / sizeof *bad), "malformed tokenizer.json: %d/%zu rejected with a message", ok, sizeof bad / sizeof *bad);
    /* a small valid one, truncated at every length */
    static const char good[] =
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\xC4\xA0\":3},\"merges\":[\"a b\",[\"\xC4\xA0\",\"a\"]]},"
        "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},\"added_tokens\":[{\"id\":4,\"content\":\"<e>\",\"special\":true}]}";
    cke_tok *t = NULL;
    cke_err e = {0};
    bool gok = !cke_tok_load_hf_json(good, strlen(good), &t, &e);
    check(gok, "small tokenizer.json loads%s%s", gok ? "" : ": ", gok ? "" : e.msg);
    if (gok) {
        int32_t want[] = {2, 4, 2};
        expect_ids(t, "ab<e>ab", 0, true, want, 3, "small tokenizer.json: 'ab<e>ab' -> 2 4 2 ([a,b] and \"a b\" merges, added token)");
    }
    cke_tok_free(t);
    int crashfree = 0;
    for (size_t len = 0; len < strlen(good); len++) {
        t = NULL;
        if (cke_tok_load_hf_json(good, len, &t, &e) != CKE_OK) crashfree++;
        cke_tok_free(t);
    }
    check(crashfree == (int)strlen(good), "small tokenizer.json truncated at every length: all %d rejected", crashfree);
}

static void test_bad_gguf(void) {
    /* GGUFs with bad tokenizer metadata, written with the formats writer */
    const char *path = "/tmp/cke_test_tok_bad.gguf";
    int ok = 0, total = 0;
    for (int k = 0; k < 5; k++) {
        cke_gguf_writer *w;
        cke_err e = {0};
        if (cke_gguf_writer_new(&w, &e)) break;
        const char *toks[] = {"a", "b", "ab"};
        const char *merges_bad[] = {"ab"};
        const char *merges_ok[] = {"a b"};
        float scores[2] = {0, 0};
        cke_gguf_writer_set_str(w, "tokenizer.ggml.model", k == 0 ? "bert" : "gpt2", k == 0 ? 4 : 4, &e);
        if (k != 1) cke_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3, &e);
        if (k == 2) cke_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges_bad, NULL, 1, &e);
        if (k == 3) {
            cke_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges_ok, NULL, 1, &e);
            cke_gguf_writer_set_arr(w, "tokenizer.ggml.scores", CKE_GGUF_F32, scores, 2, &e);
        }
        if (k == 4) {
            cke_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges_ok, NULL, 1, &e);
            cke_gguf_writer_set_str(w, "tokenizer.ggml.pre", "no-such-pre", 11, &e);
        }
        cke_status ws = cke_gguf_writer_write(w, path, &e);
        cke_gguf_writer_free(w);
        if (ws) break;
        cke_tok *t = NULL;
        total++;
        if (cke_tok_load_gguf_file(path, &t, &e) != CKE_OK && !t) ok++;
        else printf("   bad gguf case %d accepted\n", k);
        cke_tok_free(t);
    }
    remove(path);
    check(total == 5 && ok == total, "GGUF with bad tokenizer metadata (model bert, no tokens, bad merge, short scores, unknown pre): %d/%d rejected", ok, total);
}

static void test_vocab_ggufs(void) {
    static const struct { const char *name; bool spm; } V[] = {
        {"llama-spm", true}, {"phi-3", true}, {"baichuan", true}, {"gpt-2", false}, {"falcon", false}, {"starcoder", false},
        {"refact", false}, {"mpt", false}, {"gpt-neox", false}, {"deepseek-llm", false}, {"deepseek-coder", false},
    };
    for (size_t i = 0; i < sizeof V / sizeof *V; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tokenizers/ggml-vocab-%s.gguf", V[i].name);
        cke_tok *t = load(rel);
        if (!t) continue;
        check(cke_tok_kind_of(t) == (V[i].spm ? CKE_TOK_SPM : CKE_TOK_BPE), "%s: kind %s, pre %s, %d tokens", V[i].name,
              V[i].spm ? "SPM" : "BPE", cke_tok_pre_name(t), cke_tok_n_vocab(t));
        roundtrip(t, V[i].name, false, !V[i].spm || true);
        if (!strcmp(V[i].name, "starcoder") || !strcmp(V[i].name, "refact") || !strcmp(V[i].name, "deepseek-coder")) {
            /* their pre-tokenizers split every digit: \p{N} */
            int32_t w[5] = {find(t, "1"), find(t, "2"), find(t, "3"), find(t, "4"), find(t, "5")};
            char lab[128];
            snprintf(lab, sizeof lab, "%s: '12345' -> one token per digit", V[i].name);
            expect_ids(t, "12345", 0, false, w, 5, lab);
        }
        if (!strcmp(V[i].name, "gpt-2")) {
            int32_t w[] = {15496, 995}; /* "Hello", "Ġworld" */
            check(find(t, "Hello") == 15496 && find(t, "\xC4\xA0world") == 995, "gpt-2: vocab Hello=15496 Ġworld=995");
            expect_ids(t, "Hello world", -1, false, w, 2, "gpt-2: 'Hello world' -> 15496 995 (no BOS by default)");
            int32_t e2[] = {50256};
            expect_ids(t, "<|endoftext|>", 0, true, e2, 1, "gpt-2: '<|endoftext|>' with parse_special -> 50256");
            int32_t *ids; size_t n;
            bool ok = enc(t, "<|endoftext|>", 13, 0, false, &ids, &n) && n > 1;
            for (size_t k = 0; ok && k < n; k++) ok = ids[k] != 50256;
            check(ok, "gpt-2: '<|endoftext|>' as text without parse_special -> ordinary tokens");
            free(ids);
        }
        if (!strcmp(V[i].name, "llama-spm")) {
            int32_t w[] = {1, 15043, 3186};
            expect_ids(t, "Hello world", -1, false, w, 3, "llama-spm: BOS + 'Hello world' -> 1 15043 3186 (model adds BOS)");
            int32_t w2[] = {1, 15043};
            expect_ids(t, "<s>Hello", 0, true, w2, 2, "llama-spm: '<s>Hello' with parse_special -> 1 15043");
            int32_t *ids; size_t n;
            bool ok = enc(t, "<s>", 3, 0, false, &ids, &n) && n > 1 && ids[0] != 1;
            check(ok, "llama-spm: '<s>' as text without parse_special -> not BOS");
            free(ids);
            /* byte fallback: U+10FFFF is not in the vocab -> 4 byte tokens <0xF4><0x8F><0xBF><0xBF> */
            int32_t w3[] = {29871, 0xF4 + 3, 0x8F + 3, 0xBF + 3, 0xBF + 3};
            expect_ids(t, "\xF4\x8F\xBF\xBF", 0, false, w3, 5, "llama-spm: unknown char -> ▁ + 4 <0xNN> byte tokens");
        }
        cke_tok_free(t);
    }
}

static void test_hf(void) {
    cke_tok *q = load("tokenizers/qwen3-hf/tokenizer.json");
    if (q) {
        roundtrip(q, "qwen3-hf (NFC)", true, false);
        int32_t w[] = {151644, find(q, "user"), find(q, "\xC4\x8A"), find(q, "hi"), 151645};
        expect_ids(q, "<|im_start|>user\nhi<|im_end|>", 0, true, w, 5, "qwen3-hf: chat markup with parse_special -> 151644 user Ċ hi 151645");
        int32_t *ids; size_t n;
        bool ok = enc(q, "<|im_start|>", 12, 0, false, &ids, &n) && n > 1 && ids[0] != 151644;
        check(ok, "qwen3-hf: '<|im_start|>' without parse_special -> ordinary tokens");
        free(ids);
        /* NFC: 'e' + U+0301 encodes as the precomposed é */
        int32_t *a, *b; size_t na, nb;
        ok = enc(q, "caf\x65\xCC\x81", 6, 0, false, &a, &na) && enc(q, "caf\xC3\xA9", 5, 0, false, &b, &nb) && na == nb &&
             !memcmp(a, b, na * sizeof *a);
        check(ok, "qwen3-hf: NFC normalizer: decomposed and precomposed é give the same ids");
        free(a); free(b);
        cke_tok_free(q);
    }
    cke_tok *l = load("tokenizers/llama3-hf/tokenizer.json");
    if (l) {
        roundtrip(l, "llama3-hf", false, true);
        check(find(l, "Hello") == 9906 && find(l, "\xC4\xA0world") == 1917 && find(l, "<|begin_of_text|>") == 128000,
              "llama3-hf: vocab Hello=9906 Ġworld=1917 <|begin_of_text|>=128000");
        int32_t w[] = {128000, 9906, 1917};
        expect_ids(l, "Hello world", 1, false, w, 3, "llama3-hf: 'Hello world' + BOS -> 128000 9906 1917 (BOS from tokenizer_config.json)");
        check(cke_tok_eos(l) == 128001, "llama3-hf: EOS <|end_of_text|> = 128001 from tokenizer_config.json");
        /* \p{N}{1,3}: 1234567 -> 123 456 7 */
        int32_t w2[] = {find(l, "123"), find(l, "456"), find(l, "7")};
        expect_ids(l, "1234567", 0, false, w2, 3, "llama3-hf: '1234567' -> 123 456 7");
        cke_tok_free(l);
    }
    /* GPT-2 three ways: GGUF, OpenAI's encoder.json + vocab.bpe, HF tokenizer.json */
    if (have("tokenizers/ggml-vocab-gpt-2.gguf") && have("tokenizers/gpt2-openai/encoder.json") &&
        have("tiny-random-gpt2/tokenizer.json")) {
        cke_tok *a = load("tokenizers/ggml-vocab-gpt-2.gguf"), *b = load("tokenizers/gpt2-openai/encoder.json"),
                *c = load("tiny-random-gpt2/tokenizer.json");
        if (a && b) agree(a, b, "gpt-2 gguf vs encoder.json+vocab.bpe", false, false);
        /* that tokenizer.json adds tokens for runs of spaces and tabs (ids 50257+), which HF matches
         * before BPE: strings with such runs legitimately differ */
        if (a && c) agree(a, c, "gpt-2 gguf vs tiny-random-gpt2 tokenizer.json (no space/tab runs)", true, false);
        if (c) {
            int32_t w[] = {cke_tok_find(c, "  ", 2)};
            check(w[0] >= 50257, "tiny-random-gpt2: '  ' is added token %d", w[0]);
            if (w[0] >= 0) expect_ids(c, "  ", 0, false, w, 1, "tiny-random-gpt2: '  ' -> the added token (matched before BPE)");
        }
        cke_tok_free(a); cke_tok_free(b); cke_tok_free(c);
    } else skip("gpt-2 cross-check files");
}

/* ---- export: a vocabulary written as GGUF tokenizer.ggml.* metadata (what `cke quantize` does
 * for HF / llama2.c inputs) reloads to the same tokenizer; a tokenizer.json's pre-tokenizer is
 * named by the GGUF pre-tokenizer that splits like it */
static void test_export(void) {
    static const struct { const char *rel, *pre; } cases[] = {
        {"tokenizers/qwen3-hf/tokenizer.json", "qwen2"},
        {"tokenizers/llama3-hf/tokenizer.json", "llama3"},
        {"tokenizers/gpt2-openai/encoder.json", "gpt-2"},
        {"stories260K/tok512.bin", NULL},
        {"tokenizers/ggml-vocab-llama-spm.gguf", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!have(cases[i].rel)) { skip(cases[i].rel); continue; }
        cke_tok *t = load(cases[i].rel);
        if (!t) continue;
        cke_err e = {0};
        char pre[64] = "";
        const char *probe = "Hello world! It's 2024; WE'LL see 1234567 caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd I've\n\n  x";
        cke_status st = CKE_OK;
        if (cases[i].pre) {
            /* the CLI's preference for the family; it must split like the tokenizer itself */
            st = cke_tok_match_gguf_pre(t, cases[i].pre, probe, strlen(probe), pre, sizeof pre, &e);
            check(!st && !strcmp(pre, cases[i].pre), "export %s: pre-tokenizer named '%s' (want %s) %s", cases[i].rel, pre,
                  cases[i].pre, st ? e.msg : "");
        }
        char path[] = "/tmp/cke-tok-export-XXXXXX";
        int fd = mkstemp(path);
        if (fd >= 0) close(fd);
        cke_gguf_writer *w = NULL;
        if (!st) st = cke_gguf_writer_new(&w, &e);
        if (!st) st = cke_gguf_writer_set_str(w, "general.architecture", "llama", 5, &e);
        if (!st) st = cke_tok_write_gguf(t, w, pre[0] ? pre : NULL, &e);
        if (!st) st = cke_gguf_writer_write(w, path, &e);
        cke_gguf_writer_free(w);
        cke_tok *b = NULL;
        if (!st) st = cke_tok_load_gguf_file(path, &b, &e);
        check(!st, "export %s: written and reloaded (%s)", cases[i].rel, st ? e.msg : "ok");
        if (b) {
            char label[256];
            /* NFC normalizers (qwen3's tokenizer.json) have no GGUF key: compare on NFC-stable text */
            snprintf(label, sizeof label, "export %s: reloaded GGUF vocabulary%s", cases[i].rel,
                     cke_tok_normalizes_nfc(t) ? " (NFC-stable strings)" : "");
            agree(t, b, label, false, cke_tok_normalizes_nfc(t));
            check(cke_tok_bos(t) == cke_tok_bos(b) && cke_tok_eos(t) == cke_tok_eos(b) && cke_tok_n_vocab(t) == cke_tok_n_vocab(b),
                  "export %s: same size, BOS and EOS", cases[i].rel);
        }
        remove(path);
        cke_tok_free(b);
        cke_tok_free(t);
    }
}

static void test_speed(void) {
    cke_tok *t = have("tokenizers/ggml-vocab-gpt-2.gguf") ? load("tokenizers/ggml-vocab-gpt-2.gguf") : NULL;
    if (!t) return;
    /* one 1 MB pre-token: the heap keeps this n log n (a quadratic merge loop would take minutes) */
    size_t n = 1 << 20;
    char *s = malloc(n);
    for (size_t i = 0; i < n; i++) s[i] = (char)('a' + (i * 7 + i / 3) % 26);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int32_t *ids; size_t ni;
    bool ok = enc(t, s, n, 0, false, &ids, &ni);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    check(ok && sec < 20, "gpt-2: one 1 MB word encodes in %.2f s (%zu tokens)", sec, ni);
    if (ok) free(ids);
    free(s);
    cke_tok_free(t);
}

/* issue 15 item 8: a tokenizer.bin whose pieces are all empty left the piece arena NULL, and
 * every piece lookup computed NULL + 0 (UBSan: applying zero offset to null pointer). Loading,
 * encoding and decoding must work or fail cleanly; a FIFO must be refused, not waited on. */
static void test_empty_pieces(void) {
    unsigned char b[4 + 5 * 8];
    int32_t max_len = 4;
    memcpy(b, &max_len, 4);
    for (int i = 0; i < 5; i++) {
        float score = (float)-i;
        int32_t len = 0;
        memcpy(b + 4 + 8 * i, &score, 4);
        memcpy(b + 8 + 8 * i, &len, 4);
    }
    cke_tok *t = NULL;
    cke_err e = {0};
    cke_status s = cke_tok_load_llama2c(b, sizeof b, &t, &e);
    bool ok = true;
    if (s == CKE_OK) {
        int32_t *ids = NULL;
        size_t ni = 0;
        cke_tok_encode_opts o = {-1, -1, true};
        if (cke_tok_encode(t, "Once upon a time", 16, &o, &ids, &ni, &e) == CKE_OK) {
            char *out;
            size_t ol;
            if (cke_tok_decode(t, ids, ni, 0, &out, &ol, &e) == CKE_OK) free(out);
            free(ids);
        }
        size_t l = 99;
        const char *p = cke_tok_piece(t, 3, &l);
        ok = p != NULL && l == 0 && cke_tok_n_vocab(t) == 5;
    }
    cke_tok_free(t);
    check(ok, "tokenizer.bin with 5 empty pieces: loads or fails cleanly (%s)", s ? e.msg : "loaded");

    char dir[] = "/tmp/cke_tok_fifo_XXXXXX", p[64];
    if (!mkdtemp(dir)) { check(false, "mkdtemp"); return; }
    snprintf(p, sizeof p, "%s/tokenizer.bin", dir);
    alarm(20); /* a blocking open would hang: make that a failure */
    if (mkfifo(p, 0600) == 0) {
        s = cke_tok_load(p, &t, &e);
        check(s == CKE_ERR_IO && strstr(e.msg, "not a regular file"), "tokenizer path is a FIFO -> refused (%s)", e.msg);
        s = cke_tok_load(dir, &t, &e);
        check(s != CKE_OK, "tokenizer dir whose tokenizer.bin is a FIFO -> refused (%s)", e.msg);
        unlink(p);
    } else {
        check(false, "mkfifo %s", p);
    }
    alarm(0);
    rmdir(dir);
}

int main(void) {
    models = getenv("CKE_MODELS");
    if (!models || !*models) models = "../shared/models";
    vectors("tokenizers/ggml-vocab-llama-spm.gguf", "tokenizers/ggml-vocab-llama-spm.gguf.inp",
            "tokenizers/ggml-vocab-llama-spm.gguf.out", "llama-spm gguf");
    vectors("tokenizers/ggml-vocab-gpt-2.gguf", "tokenizers/ggml-vocab-gpt-2.gguf.inp", "tokenizers/ggml-vocab-gpt-2.gguf.out",
            "gpt-2 gguf");
    vectors("tokenizers/gpt2-openai/encoder.json", "tokenizers/ggml-vocab-gpt-2.gguf.inp",
            "tokenizers/ggml-vocab-gpt-2.gguf.out", "gpt-2 encoder.json+vocab.bpe");
    vectors("tokenizers/qwen3-hf/tokenizer.json", "tokenizers/qwen2.inp", "tokenizers/qwen2.out", "qwen3-hf tokenizer.json");
    test_stories();
    test_vocab_ggufs();
    test_hf();
    test_export();
    test_bad_llama2c();
    test_bad_json();
    test_bad_gguf();
    test_empty_pieces();
    test_speed();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
