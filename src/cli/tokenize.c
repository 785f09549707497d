/* cke tokenize MODEL [--bos|--no-bos] [--eos] [--special] [--pieces] TEXT...
 * cke tokenize MODEL --decode [--skip-special] ID...
 * MODEL: a .gguf, a tokenizer.json, a llama2.c tokenizer.bin, encoder.json, or an HF directory. */
#include "cli/tokenize.h"
#include "cli/util.h"
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tok_usage_to(FILE *f) {
    fprintf(f,
            "usage: cke tokenize MODEL [--bos|--no-bos] [--eos] [--special] [--pieces] TEXT...\n"
            "       cke tokenize MODEL --decode [--skip-special] ID...\n"
            "  MODEL: .gguf, tokenizer.json, tokenizer.bin (llama2.c), encoder.json, or a directory\n"
            "  --special  match control tokens written in the text (<|im_start|>, <s> ...)\n"
            "  --pieces   print id:piece pairs instead of bare ids\n");
    return 2;
}
static int tok_usage(void) { return tok_usage_to(stderr); }

int cke_cli_tokenize(int argc, char **argv) {
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (cke_cli_is_help(argv[i])) return tok_usage_to(stdout), 0;
    if (argc < 2) return tok_usage();
    const char *model = argv[1];
    cke_tok_encode_opts o = CKE_TOK_ENCODE_DEFAULTS;
    bool decode = false, pieces = false;
    int flags = 0, first = argc;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--decode")) decode = true;
        else if (!strcmp(argv[i], "--bos")) o.add_bos = 1;
        else if (!strcmp(argv[i], "--no-bos")) o.add_bos = 0;
        else if (!strcmp(argv[i], "--eos")) o.add_eos = 1;
        else if (!strcmp(argv[i], "--special")) o.parse_special = true;
        else if (!strcmp(argv[i], "--skip-special")) flags |= CKE_TOK_DECODE_SKIP_SPECIAL;
        else if (!strcmp(argv[i], "--pieces")) pieces = true;
        else if (!strcmp(argv[i], "--")) { first = i + 1; break; }
        else if (argv[i][0] == '-' && argv[i][1] == '-') return cke_cli_unknown("tokenize", argv[i]);
        else { first = i; break; }
    }
    cke_tok *t;
    cke_err e = {0};
    if (cke_tok_load(model, &t, &e)) {
        fprintf(stderr, "cke tokenize: %s\n", e.msg);
        return 1;
    }
    int rc = 0;
    if (decode) {
        size_t n = (size_t)(argc - first);
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        for (size_t i = 0; ids && i < n; i++) {
            char *end;
            errno = 0;
            long v = strtol(argv[first + (int)i], &end, 10);
            if (errno || *end || v < INT32_MIN || v > INT32_MAX) {
                fprintf(stderr, "cke tokenize: '%s' is not a token id\n", argv[first + (int)i]);
                free(ids);
                cke_tok_free(t);
                return 2;
            }
            ids[i] = (int32_t)v;
        }
        char *out;
        size_t len;
        if (!ids || cke_tok_decode(t, ids, n, flags, &out, &len, &e)) {
            fprintf(stderr, "cke tokenize: %s\n", ids ? e.msg : "out of memory");
            rc = 1;
        } else {
            fwrite(out, 1, len, stdout);
            putchar('\n');
            free(out);
        }
        free(ids);
    } else {
        /* the arguments joined by single spaces are the text */
        size_t total = 1;
        for (int i = first; i < argc; i++) total += strlen(argv[i]) + 1;
        char *text = malloc(total);
        size_t k = 0;
        for (int i = first; text && i < argc; i++) {
            if (i > first) text[k++] = ' ';
            memcpy(text + k, argv[i], strlen(argv[i]));
            k += strlen(argv[i]);
        }
        int32_t *ids;
        size_t n;
        if (!text || cke_tok_encode(t, text, k, &o, &ids, &n, &e)) {
            fprintf(stderr, "cke tokenize: %s\n", text ? e.msg : "out of memory");
            rc = 1;
        } else {
            for (size_t i = 0; i < n; i++) {
                if (pieces) {
                    size_t pl;
                    const char *p = cke_tok_piece(t, ids[i], &pl);
                    printf("%s%d:'%.*s'", i ? " " : "", ids[i], (int)pl, p);
                } else {
                    printf("%s%d", i ? " " : "", ids[i]);
                }
            }
            putchar('\n');
            free(ids);
        }
        free(text);
    }
    cke_tok_free(t);
    return rc;
}
