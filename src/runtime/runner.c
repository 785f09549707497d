#define _DEFAULT_SOURCE /* realpath */
#include "runtime/runner.h"
#include "driver/compile.h" /* cke_compiled_field */

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

cke_status cke_runner_open(const char *dir, int nthreads, cke_runner **out, cke_err *err) {
    *out = NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.so", dir);
    if (access(path, R_OK) != 0) return cke_fail(err, CKE_ERR_MISSING, "%s is not a cke model directory (no model.so)", dir);
    /* cross-compiled for another machine (cke compile --target): dlopen would only say "cannot
     * open shared object file" */
    char target[64];
    cke_compiled_field(dir, "target", target, sizeof target);
#if defined(__aarch64__)
    const char *host = "aarch64-linux-gnu";
#else
    const char *host = "";
#endif
    if (target[0] && strcmp(target, host))
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s was compiled for %s (cke compile --target): run it there, or compile it again here",
                        dir, target);
    cke_runner *r = calloc(1, sizeof *r);
    if (!r) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    /* dlopen needs a path with a slash, or it searches the library path */
    char abs[PATH_MAX];
    if (path[0] != '/' && realpath(path, abs)) snprintf(path, sizeof path, "%s", abs);
    r->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!r->dl) {
        const char *e = dlerror();
        cke_fail(err, CKE_ERR_FORMAT, "cannot load %s: %s", path, e ? e : "?");
        free(r);
        return CKE_ERR_FORMAT;
    }
    /* model.so brings libgomp, whose idle worker threads outlive every parallel region: in a
     * program that does not link libgomp itself, dlclose(model.so) would unmap it under those
     * threads (a crash at exit, seen in bench/batch). This handle, never closed, keeps it. */
    (void)dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    const ckm_api *(*get)(void);
    *(void **)&get = dlsym(r->dl, "ckm_api_get");
    if (!get || !(r->api = get()) || r->api->abi_version != CKM_ABI_VERSION) {
        cke_runner_close(r);
        return cke_fail(err, CKE_ERR_FORMAT, "%s: not a cke model of ABI version %d", path, CKM_ABI_VERSION);
    }
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    char msg[512] = "";
    r->m = r->api->open(path, nthreads, msg, sizeof msg);
    if (!r->m) {
        cke_runner_close(r);
        return cke_fail(err, CKE_ERR_FORMAT, "%s", msg);
    }
    static const char *const toks[] = {"tokenizer.gguf", "tokenizer.json", "tokenizer.bin"};
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, toks[i]);
        if (access(path, R_OK) != 0) continue;
        cke_status st = cke_tok_load(path, &r->tok, err);
        if (st) { cke_runner_close(r); return st; }
        break;
    }
    *out = r;
    return CKE_OK;
}

void cke_runner_close(cke_runner *r) {
    if (!r) return;
    if (r->m) r->api->free(r->m);
    cke_tok_free(r->tok);
    if (r->dl) dlclose(r->dl);
    free(r);
}
