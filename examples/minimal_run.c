/* A compiled cke model needs nothing of cke to run: this program uses only cke/model_abi.h,
 * dlopen and libc. Copy a model directory (cke compile MODEL -o DIR) to another machine of the
 * same ISA, build this with `cc -I include examples/minimal_run.c -ldl`, and run:
 *
 *   minimal_run DIR [-n N] [-t THREADS] TOKEN...
 *
 * It prefills the token ids, then prints N greedy (argmax) token ids, one line. (Text needs a
 * tokenizer; that is the caller's business, not the model's.) */
#include "cke/model_abi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *dir = NULL;
    int n = 16, threads = 1;
    int32_t tok[4096];
    int nt = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!dir) dir = argv[i];
        else if (nt < 4096) tok[nt++] = (int32_t)atoi(argv[i]);
    }
    if (!dir || nt == 0 || n < 0) {
        fprintf(stderr, "usage: %s DIR [-n N] [-t THREADS] TOKEN...\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.so", dir);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    const ckm_api *(*get)(void);
    *(void **)&get = dlsym(h, "ckm_api_get");
    const ckm_api *api = get ? get() : NULL;
    if (!api || api->abi_version != CKM_ABI_VERSION) { fprintf(stderr, "%s: not a cke model of this ABI\n", path); return 1; }
    char err[512];
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    ckm_model *m = api->open(path, threads, err, sizeof err);
    if (!m) { fprintf(stderr, "%s\n", err); return 1; }
    int rc = api->prefill(m, tok, nt);
    for (int i = 0; rc == 0 && i < n; i++) {
        const float *lg = api->logits(m);
        int32_t best = 0;
        for (int64_t v = 1; v < api->vocab; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        printf("%s%d", i ? " " : "", best);
        if (i + 1 < n) rc = api->decode(m, best);
    }
    printf("\n");
    if (rc) fprintf(stderr, "%s\n", api->last_error(m));
    api->free(m);
    dlclose(h);
    return rc ? 1 : 0;
}
