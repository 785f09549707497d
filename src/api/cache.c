#define _GNU_SOURCE /* realpath, utimensat */
#include "api/cache.h"

#include "cke/cke.h"
#include "cke/model_abi.h"
#include "driver/compile.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKE_STR_(x) #x
#define CKE_STR(x) CKE_STR_(x)

void cke_cache_base(char *base, size_t n) {
    const char *env = getenv("CKE_CACHE");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (env && *env) snprintf(base, n, "%s", env);
    else if (xdg && *xdg) snprintf(base, n, "%s/cke", xdg);
    else snprintf(base, n, "%s/.cache/cke", home && *home ? home : "/tmp");
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

static uint64_t fnv_stat(uint64_t h, const struct stat *st) {
    int64_t v[3] = {(int64_t)st->st_size, (int64_t)st->st_mtim.tv_sec, (int64_t)st->st_mtim.tv_nsec};
    return fnv(h, v, sizeof v);
}

/* A model directory (Hugging Face) changes when any file in it does, which its own mtime does
 * not show: every file's name, size and mtime go into the key. */
static uint64_t fnv_dir_files(uint64_t h, const char *dir) {
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        char p[PATH_MAX + 300];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
            h = fnv_stat(fnv(h, names[i]->d_name, strlen(names[i]->d_name) + 1), &st);
        free(names[i]);
    }
    free(names);
    return h;
}

/* The entry of a model: CACHE/NAME-HASH, where HASH covers the absolute path, size, mtime and
 * tokenizer, not the ctx (ctx variants live inside). */
static cke_status entry_dir(const char *model, const char *tok, char *abs, char *entry, size_t n, cke_err *err) {
    struct stat st;
    if (stat(model, &st) != 0) return cke_fail(err, CKE_ERR_IO, "cannot open %s: %s", model, strerror(errno));
    if (!realpath(model, abs)) snprintf(abs, PATH_MAX, "%s", model);
    uint64_t h = fnv(1469598103934665603ull, abs, strlen(abs) + 1);
    h = fnv_stat(h, &st);
    if (S_ISDIR(st.st_mode)) h = fnv_dir_files(h, abs);
    /* a cke of another version or model ABI compiles its own entry: it cannot load the old .so */
    static const char version[] = CKE_VERSION "/abi" CKE_STR(CKM_ABI_VERSION);
    h = fnv(h, version, sizeof version);
    if (tok) {
        char tabs[PATH_MAX];
        struct stat ts;
        if (!realpath(tok, tabs)) snprintf(tabs, sizeof tabs, "%s", tok);
        h = fnv(h, tabs, strlen(tabs) + 1);
        if (stat(tok, &ts) == 0) h = fnv_stat(h, &ts);
    }
    char base[PATH_MAX];
    cke_cache_base(base, sizeof base);
    const char *name = strrchr(abs, '/');
    name = name && name[1] ? name + 1 : abs;
    /* the name is only for people: keep it short and free of control characters */
    char nm[64];
    size_t j = 0;
    for (; *name && j + 1 < sizeof nm; name++) nm[j++] = (unsigned char)*name < 0x20 || *name == 0x7f ? '_' : *name;
    nm[j] = 0;
    if ((size_t)snprintf(entry, n, "%s/%s-%016llx", base, nm, (unsigned long long)h) >= n)
        return cke_fail(err, CKE_ERR_ARG, "cache path too long under %s", base);
    return CKE_OK;
}

/* The variant of one compile: the ctx and the settings that change the compiled files (a KV cache
 * other than the default f16 is named: "ctx-512-kv-f32"). */
static void variant_name(int64_t ctx, int keep_f32, int kv_type, char *out, size_t n) {
    const char *rp = getenv("CKE_REPACK");
    char c[32], kv[32] = "";
    if (ctx > 0) snprintf(c, sizeof c, "%lld", (long long)ctx);
    else snprintf(c, sizeof c, "auto");
    if (kv_type != CKE_KV_F16) snprintf(kv, sizeof kv, "-kv-%s", cke_kv_type_name((cke_kv_type)kv_type));
    snprintf(out, n, "ctx-%s%s%s%s", c, keep_f32 ? "-f32" : "", rp && !strcmp(rp, "0") ? "-norepack" : "", kv);
}

cke_status cke_cache_find(const char *model, const char *tok, int64_t ctx, int kv_type, cke_cache_slot *slot,
                          cke_err *err) {
    memset(slot, 0, sizeof *slot);
    cke_status s = entry_dir(model, tok, slot->abs, slot->entry, sizeof slot->entry, err);
    if (s) return s;
    const char *kf = getenv("CKE_KEEP_F32");
    slot->keep_f32 = kf && atoi(kf) != 0;
    slot->tok = tok;
    slot->ctx = ctx;
    slot->kv_type = kv_type;
    char var[96];
    variant_name(ctx, slot->keep_f32, kv_type, var, sizeof var);
    if ((size_t)snprintf(slot->dir, sizeof slot->dir, "%s/%s", slot->entry, var) >= sizeof slot->dir)
        return cke_fail(err, CKE_ERR_ARG, "cache path too long: %s", slot->entry);
    char so[PATH_MAX + 16];
    snprintf(so, sizeof so, "%s/model.so", slot->dir);
    slot->present = access(so, R_OK) == 0;
    return CKE_OK;
}

cke_status cke_cache_set_tp(cke_cache_slot *slot, int rank, int size, cke_err *err) {
    if (size <= 1) return CKE_OK;
    if (rank < 0 || rank >= size) return cke_fail(err, CKE_ERR_ARG, "tensor parallel: rank %d of %d", rank, size);
    slot->tp_rank = rank, slot->tp_size = size;
    char so[PATH_MAX + 16];
    size_t l = strlen(slot->dir);
    if ((size_t)snprintf(slot->dir + l, sizeof slot->dir - l, "-tp%dr%d", size, rank) >= sizeof slot->dir - l)
        return cke_fail(err, CKE_ERR_ARG, "cache path too long: %s", slot->entry);
    snprintf(so, sizeof so, "%s/model.so", slot->dir);
    slot->present = access(so, R_OK) == 0;
    return CKE_OK;
}

/* entry/source: the model's path, for `cke cache list`; written whole or not at all. */
static void write_source(const char *entry, const char *abs) {
    char p[PATH_MAX + 16], t[PATH_MAX + 48];
    snprintf(p, sizeof p, "%s/source", entry);
    if (access(p, F_OK) == 0) return;
    snprintf(t, sizeof t, "%s/.source.%ld", entry, (long)getpid());
    FILE *f = fopen(t, "w");
    if (!f) return;
    int bad = fputs(abs, f) < 0;
    if (fclose(f) != 0 || bad || rename(t, p) != 0) remove(t);
}

cke_status cke_cache_compile(const cke_cache_slot *slot, const volatile sig_atomic_t *cancel, cke_err *err) {
    char inc[PATH_MAX], tpl[PATH_MAX], libk[PATH_MAX];
    cke_status s = cke_locate_resources(inc, tpl, libk, sizeof inc, err);
    if (s) return s;
    if ((s = cke_mkdirs(slot->entry, err))) return s;
    cke_compile_opts o = {.out_dir = slot->dir, .tokenizer = slot->tok, .templates_dir = tpl, .include_dir = inc,
                          .libk = libk, .ctx = slot->ctx, .quiet = 1, .keep_f32 = slot->keep_f32, .kv_type = slot->kv_type,
                          .keep_existing = 1, .reuse_weights = slot->tp_size > 1 ? NULL : slot->entry, .cancel = cancel,
                          .tp_rank = slot->tp_rank, .tp_size = slot->tp_size};
    s = cke_compile(slot->abs, &o, err);
    if (s || (cancel && *cancel)) {
        rmdir(slot->entry); /* an entry this compile created stays only with a variant in it */
        return s ? s : cke_fail(err, CKE_ERR_ARG, "the compile was cancelled");
    }
    write_source(slot->entry, slot->abs);
    return CKE_OK;
}

void cke_cache_touch(const cke_cache_slot *slot) { utimensat(AT_FDCWD, slot->dir, NULL, 0); }
