/* cke vocab TEXT.txt -o tokenizer.bin --size N
 * Trains the vocabulary, then loads the written file back and encodes the text with it, so the
 * summary's tokens/byte is what the file really gives (and a file that does not load is caught). */
#include "cli/vocab.h"
#include "cli/util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vocab_usage_to(FILE *f) {
    fprintf(f, "usage: cke vocab TEXT.txt -o tokenizer.bin --size N\n"
                    "  learns a SentencePiece-style BPE vocabulary of N tokens (N >= 259 + the text's distinct\n"
                    "  characters) and writes it as a llama2.c tokenizer.bin\n");
    return 2;
}
static int vocab_usage(void) { return vocab_usage_to(stderr); }

/* Tokens per byte of the text under the written tokenizer (no BOS). */
static int report_ratio(const char *text_path, const char *tok_path) {
    cke_err e = {0};
    cke_tok *t = NULL;
    if (cke_tok_load(tok_path, &t, &e)) {
        fprintf(stderr, "cke vocab: the written file does not load: %s\n", e.msg);
        return 1;
    }
    FILE *f = fopen(text_path, "rb");
    char *text = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)n + 1)) && fread(text, 1, (size_t)n, f) == (size_t)n) {
        int32_t *ids = NULL;
        size_t nid = 0;
        cke_tok_encode_opts o = {0, 0, false};
        if (cke_tok_encode(t, text, (size_t)n, &o, &ids, &nid, &e) == CKE_OK)
            printf("encodes %s (%ld bytes) as %zu tokens: %.3f tokens/byte\n", text_path, n, nid,
                   n ? (double)nid / (double)n : 0.0);
        else
            fprintf(stderr, "cke vocab: encoding the text failed: %s\n", e.msg);
        free(ids);
    }
    if (f) fclose(f);
    free(text);
    cke_tok_free(t);
    return 0;
}

int cke_cli_vocab(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    long long size = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cke_cli_is_help(a)) return vocab_usage_to(stdout), 0;
        if (!strcmp(a, "-o") && v) out = v, i++;
        else if (!strcmp(a, "--size") && v) {
            char *end;
            errno = 0;
            size = strtoll(v, &end, 10);
            if (errno || *end || size <= 0) {
                fprintf(stderr, "cke vocab: --size '%s' is not a positive number\n", v);
                return 2;
            }
            i++;
        } else if (a[0] == '-' || in) return cke_cli_unknown("vocab", a);
        else in = a;
    }
    if (!in || !out || size < 0) return vocab_usage();
    cke_err e = {0};
    cke_vocab_stats s;
    cke_status st = cke_vocab_train_file(in, out, (int64_t)size, &s, &e);
    if (st) {
        fprintf(stderr, "cke vocab: %s: %s\n", cke_status_name(st), e.msg);
        return 1;
    }
    printf("wrote %s: %lld tokens = 259 special/byte + %lld characters + %lld merges; longest %lld bytes\n", out,
           (long long)s.n_vocab, (long long)s.n_chars, (long long)s.n_merges, (long long)s.max_token_length);
    printf("trained on %lld words (%lld distinct)\n", (long long)s.n_words, (long long)s.n_distinct_words);
    return report_ratio(in, out);
}
