#define _GNU_SOURCE /* realpath, nftw, utimensat */
#include "cli/cache.h"
#include "cli/target.h"

#include "cli/util.h"
#include "cke/model_abi.h"
#include "driver/compile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CKE_STR_(x) #x
#define CKE_STR(x) CKE_STR_(x)

/* ------------------------------------------------------------------ where and what */

static void cache_base(char *base, size_t n) {
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
 * tokenizer, not the ctx (ctx variants live inside). -1 when the model cannot be found. */
static int entry_dir(const char *model, const char *tok, char *abs, char *entry, size_t n) {
    struct stat st;
    if (stat(model, &st) != 0) {
        fprintf(stderr, "cke: cannot open %s: %s\n", model, strerror(errno));
        return -1;
    }
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
    cache_base(base, sizeof base);
    const char *name = strrchr(abs, '/');
    name = name && name[1] ? name + 1 : abs;
    /* the name is only for people: keep it short and free of control characters */
    char nm[64];
    size_t j = 0;
    for (; *name && j + 1 < sizeof nm; name++) nm[j++] = (unsigned char)*name < 0x20 || *name == 0x7f ? '_' : *name;
    nm[j] = 0;
    if ((size_t)snprintf(entry, n, "%s/%s-%016llx", base, nm, (unsigned long long)h) >= n) {
        fprintf(stderr, "cke: cache path too long under %s\n", base);
        return -1;
    }
    return 0;
}

/* The variant of one compile: the ctx and the settings that change the compiled files. */
static void variant_name(int64_t ctx, int keep_f32, char *out, size_t n) {
    const char *rp = getenv("CKE_REPACK");
    char c[32];
    if (ctx > 0) snprintf(c, sizeof c, "%lld", (long long)ctx);
    else snprintf(c, sizeof c, "auto");
    snprintf(out, n, "ctx-%s%s%s", c, keep_f32 ? "-f32" : "", rp && !strcmp(rp, "0") ? "-norepack" : "");
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

/* ------------------------------------------------------------------ compile on first use */

static volatile sig_atomic_t g_signal;
static void on_signal(int sig) { g_signal = sig; }

int cke_cli_compile_guarded(const char *cmd, const char *model, cke_compile_opts *o, const char *left) {
    /* Ctrl-C (or SIGTERM, SIGHUP) while compiling: the compile stops, its compiler child (in a
     * process group of its own, so the terminal's signal does not reach it) is killed and the
     * temporary directory removed; a second Ctrl-C kills at once (SA_RESETHAND) */
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND}, old[3];
    sigemptyset(&sa.sa_mask);
    g_signal = 0;
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, &old[i]);
    o->cancel = &g_signal;
    cke_err e = {0};
    cke_status s = cke_compile(model, o, &e);
    o->cancel = NULL;
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
    if (g_signal) {
        fprintf(stderr, "cke %s: interrupted; the compile was stopped and %s\n", cmd, left);
        return 128 + g_signal;
    }
    return s ? cke_cli_fail(cmd, s, &e) : 0;
}

static int compile_cached(const char *abs, const char *tok, int64_t ctx, int keep_f32, const char *entry, const char *dir) {
    char inc[PATH_MAX], tpl[PATH_MAX], libk[PATH_MAX];
    cke_err e = {0};
    cke_status s = cke_locate_resources(inc, tpl, libk, sizeof inc, &e);
    if (s) return cke_cli_fail("compile", s, &e);
    cke_compile_opts o = {.out_dir = dir, .tokenizer = tok, .templates_dir = tpl, .include_dir = inc, .libk = libk,
                          .ctx = ctx, .quiet = 1, .keep_f32 = keep_f32, .keep_existing = 1, .reuse_weights = entry};
    fprintf(stderr, "cke: compiling %s into the cache (first run) ...\n", abs);
    double t0 = cke_cli_now();
    int rc = cke_cli_compile_guarded("compile", abs, &o, "nothing was left in the cache");
    if (!rc) fprintf(stderr, "cke: compiled in %.1f s -> %s\n", cke_cli_now() - t0, dir);
    return rc;
}

int cke_cli_model_dir(const char *target_arg, const char *tok, int64_t ctx, char *dir, size_t n) {
    char so_path[PATH_MAX + 16];
    cke_target tg; /* a training --out directory or checkpoint stands for the model it holds */
    if (cke_cli_target(NULL, target_arg, &tg)) return 1;
    if (tg.kind == CKE_TARGET_COMPILED) {
        snprintf(dir, n, "%s", tg.model);
        return 0;
    }
    const char *target = tg.model;
    if (!tok && tg.tokenizer[0]) tok = tg.tokenizer;
    char abs[PATH_MAX], entry[PATH_MAX], var[64];
    if (entry_dir(target, tok, abs, entry, sizeof entry)) return 1;
    const char *kf = getenv("CKE_KEEP_F32");
    int keep_f32 = kf && atoi(kf) != 0;
    variant_name(ctx, keep_f32, var, sizeof var);
    if ((size_t)snprintf(dir, n, "%s/%s", entry, var) >= n) {
        fprintf(stderr, "cke: cache path too long: %s\n", entry);
        return 1;
    }
    snprintf(so_path, sizeof so_path, "%s/model.so", dir);
    if (access(so_path, R_OK) != 0) {
        if (cke_cli_mkdirs(entry) != 0) {
            fprintf(stderr, "cke: cannot create the cache directory %s: %s\n", entry, strerror(errno));
            return 1;
        }
        int rc = compile_cached(abs, tok, ctx, keep_f32, entry, dir);
        if (rc) {
            rmdir(entry); /* an entry this compile created stays only with a variant in it */
            return rc;
        }
        write_source(entry, abs);
    }
    utimensat(AT_FDCWD, dir, NULL, 0); /* last use, for `cke cache list` and `clean --older-than` */
    return 0;
}

/* ------------------------------------------------------------------ cke cache */

/* An entry's name ends in -<16 hex digits>: nothing else in the cache folder is ever touched. */
static int is_entry_name(const char *name) {
    size_t l = strlen(name);
    if (l < 18 || name[l - 17] != '-') return 0;
    for (size_t i = l - 16; i < l; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return 0;
    return 1;
}

/* A temporary directory whose process is gone. */
static int stale_tmp(const char *name) {
    long pid = cke_compile_tmp_pid(name);
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Disk usage of a tree, a file with several links counted once (weights.bin shared by variants). */
static struct {
    uint64_t bytes;
    ino_t seen[256];
    int n_seen;
} g_du;

static int du_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)path, (void)type, (void)ftw;
    if (sb->st_nlink > 1 && !S_ISDIR(sb->st_mode)) {
        for (int i = 0; i < g_du.n_seen; i++)
            if (g_du.seen[i] == sb->st_ino) return 0;
        if (g_du.n_seen < 256) g_du.seen[g_du.n_seen++] = sb->st_ino;
    }
    g_du.bytes += (uint64_t)sb->st_blocks * 512;
    return 0;
}

static uint64_t du(const char *path) {
    g_du.bytes = 0;
    g_du.n_seen = 0;
    nftw(path, du_entry, 16, FTW_PHYS);
    return g_du.bytes;
}

static void human(char *buf, size_t n, uint64_t b) {
    if (b >= (1ull << 30)) snprintf(buf, n, "%.2f GiB", (double)b / (1 << 30));
    else if (b >= (1u << 20)) snprintf(buf, n, "%.1f MiB", (double)b / (1 << 20));
    else snprintf(buf, n, "%.0f KiB", (double)b / 1024);
}

/* The model path of an entry (its `source`; an entry of an older cke has only cke-model.txt's
 * source line), control characters shown as '?'. */
static void entry_source(const char *entry, char *out, size_t n) {
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/source", entry);
    FILE *f = fopen(p, "rb");
    size_t got = f ? fread(out, 1, n - 1, f) : 0;
    if (f) fclose(f);
    out[got] = 0;
    snprintf(p, sizeof p, "%s/cke-model.txt", entry);
    if (!got && (f = fopen(p, "r"))) {
        char line[PATH_MAX + 16];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "source ", 7)) {
                line[strcspn(line, "\n")] = 0;
                snprintf(out, n, "%s", line + 7);
                got = strlen(out);
                break;
            }
        fclose(f);
    }
    for (size_t i = 0; i < got; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) out[i] = '?';
    if (!got) snprintf(out, n, "(being compiled)");
}

typedef struct {
    int variants, tmps, stale, removed_variants, removed_tmps;
    time_t last;
    char names[512];
} entry_info;

/* Walks one entry: its variants (last use = their mtime) and temporary directories. With remove:
 * deletes every variant (all) or those unused since `before`, and the temporaries of dead processes. */
static void walk_entry(const char *entry, int remove, int all, time_t before, entry_info *ei) {
    memset(ei, 0, sizeof *ei);
    char so[PATH_MAX + 16];
    snprintf(so, sizeof so, "%s/model.so", entry);
    int old_format = access(so, F_OK) == 0; /* an entry of cke <= 0.10: one compiled directory */
    struct dirent **names = NULL;
    int n = scandir(entry, &names, NULL, versionsort); /* ctx-64 before ctx-128 */
    for (int i = 0; i < n; free(names[i++])) {
        const struct dirent *e = names[i];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[PATH_MAX + 300];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", entry, e->d_name);
        if (lstat(p, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        if (cke_compile_tmp_pid(e->d_name)) {
            int dead = stale_tmp(e->d_name);
            ei->tmps++;
            ei->stale += dead;
            if (remove && dead && cke_rmtree(p, NULL) == CKE_OK) ei->removed_tmps++;
            continue;
        }
        if (e->d_name[0] == '.') continue;
        if (remove && (all || st.st_mtime < before) && cke_rmtree(p, NULL) == CKE_OK) {
            ei->removed_variants++;
            continue;
        }
        ei->variants++;
        if (st.st_mtime > ei->last) ei->last = st.st_mtime;
        size_t l = strlen(ei->names);
        snprintf(ei->names + l, sizeof ei->names - l, "%s%s", l ? " " : "", e->d_name);
    }
    free(names);
    if (old_format) {
        struct stat st;
        ei->variants++;
        if (stat(entry, &st) == 0 && st.st_mtime > ei->last) ei->last = st.st_mtime;
        size_t l = strlen(ei->names);
        snprintf(ei->names + l, sizeof ei->names - l, "%s(old format)", l ? " " : "");
        if (remove && (all || ei->last < before)) ei->variants = 0, ei->removed_variants++;
    }
}

static int cache_usage(FILE *f, int rc) {
    fprintf(f, "usage: cke cache list | clean [--older-than DAYS] | dir\n"
               "  list: each cached model: size on disk, last use, compiled variants (one per --ctx), path\n"
               "  clean: remove every cached model, or with --older-than those unused for DAYS days;\n"
               "         temporary directories left by killed compiles are removed too\n"
               "  dir: print the cache directory ($CKE_CACHE, else $XDG_CACHE_HOME/cke, else ~/.cache/cke)\n");
    return rc;
}

static int cache_list(const char *base) {
    struct dirent **names = NULL;
    int n = scandir(base, &names, NULL, alphasort);
    if (n < 0) {
        if (errno == ENOENT) { printf("the cache %s is empty\n", base); return 0; }
        fprintf(stderr, "cke cache: cannot read %s: %s\n", base, strerror(errno));
        return 1;
    }
    uint64_t total = 0;
    int shown = 0;
    for (int i = 0; i < n; i++) {
        char entry[PATH_MAX + 300], src[PATH_MAX], sz[32], when[32] = "-";
        snprintf(entry, sizeof entry, "%s/%s", base, names[i]->d_name);
        struct stat st;
        if (is_entry_name(names[i]->d_name) && lstat(entry, &st) == 0 && S_ISDIR(st.st_mode)) {
            entry_info ei;
            walk_entry(entry, 0, 0, 0, &ei);
            uint64_t b = du(entry);
            total += b;
            human(sz, sizeof sz, b);
            if (ei.last) strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&ei.last));
            entry_source(entry, src, sizeof src);
            if (!shown++) printf("%-10s  %-16s  %-24s  %s\n", "SIZE", "LAST USE", "VARIANTS", "MODEL");
            printf("%-10s  %-16s  %-24s  %s", sz, when, ei.names[0] ? ei.names : "(none)", src);
            if (ei.tmps) printf("  [%d compiling, %d stale]", ei.tmps - ei.stale, ei.stale);
            printf("\n");
        }
        free(names[i]);
    }
    free(names);
    char sz[32];
    human(sz, sizeof sz, total);
    if (shown) printf("%d model%s, %s in %s\n", shown, shown == 1 ? "" : "s", sz, base);
    else printf("the cache %s is empty\n", base);
    return 0;
}

static int cache_clean(const char *base, int all, double days) {
    DIR *d = opendir(base);
    if (!d) {
        if (errno == ENOENT) { printf("the cache %s is empty\n", base); return 0; }
        fprintf(stderr, "cke cache: cannot read %s: %s\n", base, strerror(errno));
        return 1;
    }
    time_t before = time(NULL) - (time_t)(days * 86400.0);
    int entries = 0, variants = 0, tmps = 0, failed = 0;
    uint64_t freed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_entry_name(e->d_name)) continue;
        char entry[PATH_MAX + 300];
        struct stat st;
        snprintf(entry, sizeof entry, "%s/%s", base, e->d_name);
        if (lstat(entry, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        uint64_t b0 = du(entry);
        entry_info ei;
        walk_entry(entry, 1, all, before, &ei);
        variants += ei.removed_variants;
        tmps += ei.removed_tmps;
        /* an entry left with no variant and no compile in progress goes too */
        if (ei.variants == 0 && ei.tmps == ei.removed_tmps) {
            if (cke_rmtree(entry, NULL) == CKE_OK) entries++;
            else failed++;
        }
        uint64_t b1 = access(entry, F_OK) == 0 ? du(entry) : 0;
        freed += b0 > b1 ? b0 - b1 : 0;
    }
    closedir(d);
    char sz[32];
    human(sz, sizeof sz, freed);
    printf("cke cache: removed %d model%s, %d compiled variant%s and %d stale temporary director%s (%s freed) from %s\n",
           entries, entries == 1 ? "" : "s", variants, variants == 1 ? "" : "s", tmps, tmps == 1 ? "y" : "ies", sz, base);
    if (failed) fprintf(stderr, "cke cache: %d entr%s could not be removed\n", failed, failed == 1 ? "y" : "ies");
    return failed ? 1 : 0;
}

int cke_cli_cache(int argc, char **argv) {
    if (argc < 2) return cache_usage(stderr, 2);
    if (cke_cli_is_help(argv[1])) return cache_usage(stdout, 0);
    char base[PATH_MAX];
    cache_base(base, sizeof base);
    const char *sub = argv[1];
    if (!strcmp(sub, "clean")) {
        double days = -1;
        for (int i = 2; i < argc; i++) {
            if (cke_cli_is_help(argv[i])) return cache_usage(stdout, 0);
            if (!strcmp(argv[i], "--older-than")) {
                int rc = cke_cli_opt_d("cache clean", argc, argv, &i, 0, 1e6, "a number of days (0 to 1e6)", &days);
                if (rc) return rc;
            } else {
                return cke_cli_unknown("cache clean", argv[i]);
            }
        }
        return cache_clean(base, days < 0, days);
    }
    if (strcmp(sub, "list") && strcmp(sub, "dir")) {
        fprintf(stderr, "cke cache: unknown subcommand '%s'\n", sub);
        return cache_usage(stderr, 2);
    }
    for (int i = 2; i < argc; i++) {
        if (cke_cli_is_help(argv[i])) return cache_usage(stdout, 0);
        return cke_cli_unknown(!strcmp(sub, "list") ? "cache list" : "cache dir", argv[i]);
    }
    if (!strcmp(sub, "dir")) {
        printf("%s\n", base);
        return 0;
    }
    return cache_list(base);
}
