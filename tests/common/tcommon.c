#define _DEFAULT_SOURCE /* mkdtemp */
#include "tcommon.h"

#include "driver/compile.h"
#include "runtime/runner.h"
#include "formats/model_export.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int tc_spawn(const char *in, const char *out, const char *err, const char *const argv[]) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in) posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
    if (out) posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err && out && !strcmp(err, out)) posix_spawn_file_actions_adddup2(&fa, 1, 2);
    else if (err) posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int tc_run_py(const char *script, const char *out_dir, ...) {
    const char *argv[24];
    char path[PATH_MAX], log[PATH_MAX + 8];
    snprintf(path, sizeof path, "tests/torch/%s", script);
    snprintf(log, sizeof log, "%s.log", out_dir);
    int n = 0;
    argv[n++] = "/usr/bin/python3";
    argv[n++] = path;
    argv[n++] = out_dir;
    va_list ap;
    va_start(ap, out_dir);
    for (const char *a; (a = va_arg(ap, const char *)) && n < 23;)
        if (a[0]) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return tc_spawn(NULL, log, log, argv);
}

char tc_tmp[PATH_MAX];
char tc_inc[PATH_MAX], tc_tpl[PATH_MAX], tc_libk[PATH_MAX];
const char *tc_models;
static int passed, failed;

void tc_result(const char *name, int ok, const char *fmt, ...) {
    if (ok) {
        passed++;
        printf("PASS %s\n", name);
    } else {
        failed++;
        printf("FAIL %s: ", name);
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
    fflush(stdout);
}

int tc_have(const char *path) { return access(path, R_OK) == 0; }

char *tc_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

char *tc_load_ref_bin(const char *path, int64_t vocab, int32_t *T, int32_t *V) {
    size_t len = 0;
    char *ref = tc_slurp(path, &len);
    *T = *V = 0;
    if (ref && len >= 8) memcpy(T, ref, 4), memcpy(V, ref + 4, 4);
    if (!ref || *T < 4 || *V != vocab || len != 8 + (size_t)*T * 4 + (size_t)*T * (size_t)*V * 4) {
        free(ref);
        return NULL;
    }
    return ref;
}

int tc_setup(const char *name) {
    tc_models = getenv("CKE_MODELS");
    if (!tc_models || !*tc_models) tc_models = "../shared/models";
    cke_err e = {0};
    if (cke_locate_resources(tc_inc, tc_tpl, tc_libk, sizeof tc_inc, &e)) {
        printf("FAIL locate_resources: %s\n0 passed, 1 failed\n", e.msg);
        return -1;
    }
    snprintf(tc_tmp, sizeof tc_tmp, "%s/cke-%s-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
    if (!mkdtemp(tc_tmp)) { printf("FAIL mkdtemp %s\n0 passed, 1 failed\n", tc_tmp); return -1; }
    return 0;
}

int tc_finish(void) {
    if (!getenv("CKE_KEEP_TMP")) {
        cke_err e = {0};
        if (cke_rmtree(tc_tmp, &e)) fprintf(stderr, "could not remove %s: %s\n", tc_tmp, e.msg);
    } else {
        fprintf(stderr, "kept %s\n", tc_tmp);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

cke_status tc_export_gguf(const char *src, const char *out, cke_err *e) {
    cke_model *m = NULL;
    cke_gguf_writer *w = NULL;
    cke_xtensor *x = NULL;
    int64_t n = 0;
    cke_status s = cke_model_open(src, &m, e);
    if (!s) s = cke_gguf_writer_new(&w, e);
    if (!s) s = cke_model_export_gguf(m, w, &x, &n, e);
    for (int64_t i = 0; !s && i < n; i++) s = cke_gguf_writer_add_tensor(w, x[i].name, CKE_DT_F32, x[i].ndim, x[i].ne, x[i].data, e);
    if (!s) s = cke_gguf_writer_write(w, out, e);
    cke_xtensors_free(x, n);
    cke_gguf_writer_free(w);
    cke_model_close(m);
    return s;
}

char *tc_ref_or_fail(const char *name, const char *path, cke_runner *r, int32_t *T, int32_t *V) {
    char *ref = tc_load_ref_bin(path, r->api->vocab, T, V);
    if (ref && *T >= 6) return ref;
    tc_result(name, 0, "bad ref.bin (%s)", path);
    free(ref);
    cke_runner_close(r);
    return NULL;
}
