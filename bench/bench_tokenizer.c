/* Tokenizer throughput: encode MB/s of a text file with one or more tokenizers.
 *   bench_tokenizer TEXTFILE MODEL [MODEL...]
 * The text is encoded in newline-aligned chunks of about 4 KiB (documents-sized pieces, the
 * same split bench_tokenizer.sh hands the peer), single-threaded, best of 3 runs. */
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer TEXTFILE MODEL [MODEL...]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)sz + 1);
    if (!text || fread(text, 1, (size_t)sz, f) != (size_t)sz) { fprintf(stderr, "read failed\n"); return 1; }
    fclose(f);
    size_t n = (size_t)sz;
    for (int m = 2; m < argc; m++) {
        cke_tok *t;
        cke_err e = {0};
        double t0 = now();
        if (cke_tok_load(argv[m], &t, &e)) { fprintf(stderr, "%s: %s\n", argv[m], e.msg); return 1; }
        double load_s = now() - t0, best = 1e30;
        size_t ntok = 0;
        for (int rep = 0; rep < 3; rep++) {
            cke_tok_encode_opts o = {0, 0, false};
            ntok = 0;
            t0 = now();
            for (size_t pos = 0; pos < n;) {
                size_t end = pos + 4096 < n ? pos + 4096 : n;
                const char *nl = end < n ? memchr(text + end, '\n', n - end) : NULL;
                end = nl ? (size_t)(nl - text) + 1 : n;
                int32_t *ids;
                size_t ni;
                if (cke_tok_encode(t, text + pos, end - pos, &o, &ids, &ni, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
                ntok += ni;
                free(ids);
                pos = end;
            }
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("cke  %-60s %8.2f MB/s  %9zu tokens  (load %.2f s)\n", argv[m], (double)n / best / 1e6, ntok, load_s);
        cke_tok_free(t);
    }
    free(text);
    return 0;
}
