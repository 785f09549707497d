/* Embedding cke: open a model, tokenize a prompt, and print its greedy continuation as it is
 * generated, through libcke's token callback. Build against an installed cke:
 *
 *   cc examples/embed.c $(pkg-config --cflags --libs cke) -o embed
 *   ./embed MODEL "Once upon a time" [N]
 *
 * MODEL is a .gguf / Hugging Face directory (compiled into the cache on first use) or a compiled
 * directory. The output is what `cke run MODEL -p PROMPT -n N --temp 0` prints on stdout. */
#include <cke/cke.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_piece(void *user, const cke_token *t) {
    fwrite(t->text, 1, t->len, (FILE *)user);
    fflush((FILE *)user);
    return 0; /* nonzero would stop the generation */
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL PROMPT [N]\n", argv[0]);
        return 2;
    }
    const char *prompt = argv[2];
    cke_err err = {0};
    cke_engine *e = NULL;
    cke_session *s = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    cke_engine_opts eo = CKE_ENGINE_DEFAULTS;
    cke_status st = cke_engine_open(argv[1], &eo, &e, &err);
    if (!st) st = cke_session_new(e, &s, &err);
    if (!st) st = cke_tokenize(e, prompt, strlen(prompt), -1 /* BOS as the model says */, 1, &ids, &n, &err);
    if (!st) st = cke_session_prefill(s, ids, n, NULL, &err);
    if (!st) {
        cke_gen_opts g = CKE_GEN_DEFAULTS;
        g.temp = 0; /* greedy */
        g.max_tokens = argc > 3 ? atoll(argv[3]) : 256;
        g.on_token = print_piece;
        g.user = stdout;
        cke_gen_result r;
        fputs(prompt, stdout);
        st = cke_session_generate(s, &g, &r, &err);
        printf("\n");
        if (!st) fprintf(stderr, "%lld tokens, stop: %s\n", (long long)r.n_generated, cke_stop_reason_name(r.stop));
        cke_gen_result_free(&r);
    }
    if (st) fprintf(stderr, "embed: %s: %s\n", cke_status_name(st), err.msg);
    cke_free(ids);
    cke_session_free(s);
    cke_engine_close(e);
    return st ? 1 : 0;
}
