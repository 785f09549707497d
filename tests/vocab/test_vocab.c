/* cke vocab: BPE vocabulary training on data/stories.txt (in the repository), checked through
 * cke's own tokenizer loader and SPM encoder. One PASS/FAIL line per check; ends with
 * "N passed, N failed"; exit 1 on failure. Run from the repository root. */
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_train.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int n_pass, n_fail;

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

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *d = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
    if (d && fread(d, 1, (size_t)sz, f) != (size_t)sz) { free(d); d = NULL; }
    fclose(f);
    if (d) { d[sz] = 0; *n = (size_t)sz; }
    return d;
}

/* encode (no BOS/EOS) then decode must give the bytes back; returns the token count or -1 */
static int64_t round_trip(const cke_tok *t, const char *s, size_t n) {
    cke_tok_encode_opts o = {0, 0, false};
    int32_t *ids = NULL;
    size_t nid = 0;
    cke_err e = {0};
    if (cke_tok_encode(t, s, n, &o, &ids, &nid, &e)) { printf("   encode: %s\n", e.msg); return -1; }
    char *back = NULL;
    size_t bl = 0;
    cke_status st = cke_tok_decode(t, ids, nid, 0, &back, &bl, &e);
    free(ids);
    if (st) { printf("   decode: %s\n", e.msg); return -1; }
    bool same = bl == n && !memcmp(back, s, n);
    if (!same) printf("   round trip differs: '%.*s' -> '%.*s'\n", (int)(n > 80 ? 80 : n), s, (int)(bl > 80 ? 80 : bl), back);
    free(back);
    return same ? (int64_t)nid : -1;
}

static cke_tok *load_mem(const char *bin, size_t n) {
    cke_tok *t = NULL;
    cke_err e = {0};
    if (cke_tok_load_llama2c(bin, n, &t, &e)) { printf("   load: %s\n", e.msg); return NULL; }
    return t;
}

static void test_stories(void) {
    size_t n = 0;
    char *text = slurp("data/stories.txt", &n);
    if (!check(text && n > 10000, "data/stories.txt readable (%zu bytes)", n)) { free(text); return; }
    char *bin = NULL, *bin2 = NULL;
    size_t bl = 0, bl2 = 0;
    cke_vocab_stats s = {0};
    cke_err e = {0};
    cke_status st = cke_vocab_train(text, n, 512, &bin, &bl, &s, &e);
    if (!check(st == CKE_OK, "train 512 on data/stories.txt%s%s", st ? ": " : "", st ? e.msg : "")) { free(text); return; }
    printf("   %lld chars, %lld merges, %lld words (%lld distinct), longest token %lld bytes, file %zu bytes\n",
           (long long)s.n_chars, (long long)s.n_merges, (long long)s.n_words, (long long)s.n_distinct_words,
           (long long)s.max_token_length, bl);
    check(s.n_vocab == 512 && 259 + s.n_chars + s.n_merges == 512, "stats add up to 512 tokens");
    st = cke_vocab_train(text, n, 512, &bin2, &bl2, NULL, &e);
    check(st == CKE_OK && bl == bl2 && !memcmp(bin, bin2, bl), "same input gives a byte-identical file");
    free(bin2);

    /* through the file path and cke_tok_load's format detection, as cke train/run would */
    char path[] = "/tmp/cke-test-vocab-XXXXXX";
    int fd = mkstemp(path);
    cke_tok *tf = NULL;
    if (fd >= 0) {
        close(fd);
        st = cke_vocab_train_file("data/stories.txt", path, 512, NULL, &e);
        size_t fl = 0;
        char *fb = st ? NULL : slurp(path, &fl);
        check(fb && fl == bl && !memcmp(fb, bin, bl), "cke_vocab_train_file writes the same bytes");
        free(fb);
        st = cke_tok_load(path, &tf, &e);
        check(st == CKE_OK && cke_tok_n_vocab(tf) == 512, "cke_tok_load reads it: %d tokens%s%s",
              tf ? cke_tok_n_vocab(tf) : -1, st ? ": " : "", st ? e.msg : "");
        unlink(path);
    } else check(false, "mkstemp");

    cke_tok *t = load_mem(bin, bl);
    if (!check(t != NULL, "cke_tok_load_llama2c reads it")) goto out;
    check(cke_tok_kind_of(t) == CKE_TOK_SPM && cke_tok_n_vocab(t) == 512 && cke_tok_bos(t) == 1 && cke_tok_eos(t) == 2 &&
              cke_tok_unk(t) == 0, "SPM, 512 tokens, unk/BOS/EOS = 0/1/2");
    size_t pl;
    const char *p = cke_tok_piece(t, 3 + 0x41, &pl);
    check(p && pl == 6 && !memcmp(p, "<0x41>", 6) && cke_tok_type_of(t, 3 + 0x41) == CKE_TOKT_BYTE, "id 68 is <0x41>");
    bool dec = true; /* merges: strictly decreasing scores, all above every character's */
    int32_t first_merge = (int32_t)(259 + s.n_chars);
    for (int32_t id = first_merge + 1; id < 512; id++) dec = dec && cke_tok_score(t, id) < cke_tok_score(t, id - 1);
    for (int32_t id = 259; id < first_merge; id++) dec = dec && cke_tok_score(t, id) < cke_tok_score(t, 511);
    check(dec, "merge scores decrease, characters score below every merge");
    check(cke_tok_find(t, "\xE2\x96\x81the", 5) >= 0, "'\\u2581the' is a learned token");

    /* every story (split at blank lines) and the whole file round-trip exactly */
    int64_t stories = 0, bad = 0;
    for (size_t i = 0; i < n;) {
        const char *end = strstr(text + i, "\n\n");
        size_t e2 = end ? (size_t)(end - text) : n;
        if (e2 > i) { stories++; bad += round_trip(t, text + i, e2 - i) < 0; }
        i = e2 + 2;
    }
    check(stories > 50 && bad == 0, "round trip of each of %lld stories (%lld differ)", (long long)stories, (long long)bad);
    int64_t ntok = round_trip(t, text, n);
    check(ntok > 0, "round trip of the whole file");
    double ratio = (double)ntok / (double)n;
    /* 512 tokens leave ~190 merges after the 259 fixed tokens and the characters: ~0.4 */
    check(ntok > 0 && ratio < 0.5, "tokens/byte %.3f (%lld tokens for %zu bytes) well below 1", ratio, (long long)ntok, n);
    const char *samples[] = {"Once upon a time, there was a little girl named Lily.", "\"Can I play too?\" asked the dog.",
                             "Tom's ball rolled  under the big   tree!", ""};
    for (int k = 0; k < 4; k++)
        check(round_trip(t, samples[k], strlen(samples[k])) >= 0, "round trip '%s'", samples[k]);
    cke_tok_free(t);
out:
    cke_tok_free(tf);
    free(bin);
    free(text);
}

/* Characters outside ASCII, invalid UTF-8 and text the vocabulary never saw. */
static void test_unicode(void) {
    const char txt[] = "caf\xC3\xA9 na\xC3\xAFve caf\xC3\xA9 caf\xC3\xA9 \xE2\x9C\x93 ok\n bad\xFF byte caf\xC3\xA9s";
    char *bin = NULL;
    size_t bl = 0;
    cke_vocab_stats s = {0};
    cke_err e = {0};
    cke_status st = cke_vocab_train(txt, sizeof txt - 1, 290, &bin, &bl, &s, &e);
    if (!check(st == CKE_OK, "train 290 on a unicode text%s%s", st ? ": " : "", st ? e.msg : "")) return;
    cke_tok *t = load_mem(bin, bl);
    if (check(t != NULL, "it loads")) {
        check(round_trip(t, txt, sizeof txt - 1) > 0, "round trip with invalid UTF-8");
        const char other[] = "\xE4\xB8\xAD zebra \xF0\x9F\x98\x80 \x80";
        check(round_trip(t, other, sizeof other - 1) > 0, "round trip of unseen characters (byte fallback)");
        check(cke_tok_find(t, "\xE2\x96\x81" "caf\xC3\xA9", 8) >= 0, "'\\u2581caf\\u00e9' learned");
    }
    cke_tok_free(t);
    free(bin);
}

static void test_bad(void) {
    char *bin = NULL;
    size_t bl = 0;
    cke_err e = {0};
    cke_status st = cke_vocab_train("", 0, 512, &bin, &bl, NULL, &e);
    check(st == CKE_ERR_ARG && bin == NULL && strstr(e.msg, "empty"), "empty text: %s", e.msg);
    /* "abc ab" has 4 characters (a b c and the marker): 263 is the least size */
    st = cke_vocab_train("abc ab", 6, 262, &bin, &bl, NULL, &e);
    check(st == CKE_ERR_ARG && bin == NULL && strstr(e.msg, "263"), "size below 259 + characters: %s", e.msg);
    st = cke_vocab_train("abc ab", 6, 100, &bin, &bl, NULL, &e);
    check(st == CKE_ERR_ARG && bin == NULL, "size below 259: %s", e.msg);
    st = cke_vocab_train("abc ab", 6, 263, &bin, &bl, NULL, &e);
    check(st == CKE_OK && bl > 0, "size exactly 259 + characters works");
    free(bin);
    bin = NULL;
    st = cke_vocab_train("abc ab", 6, 5000, &bin, &bl, NULL, &e);
    check(st == CKE_ERR_ARG && bin == NULL && strstr(e.msg, "too large"), "size beyond the text's pairs: %s", e.msg);
    st = cke_vocab_train_file("data/no-such-file.txt", "/tmp/cke-never-written.bin", 512, NULL, &e);
    check(st == CKE_ERR_IO && strstr(e.msg, "no-such-file"), "missing file: %s", e.msg);
}

int main(void) {
    test_stories();
    test_unicode();
    test_bad();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
