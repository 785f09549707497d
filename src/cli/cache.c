#define _GNU_SOURCE /* realpath, nftw, utimensat */
#include "cli/cache.h"
#include "api/cache.h"
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


/* ------------------------------------------------------------------ compile on first use */

static volatile sig_atomic_t g_signal;
static void on_signal(int sig) { g_signal = sig; }

/* Ctrl-C (or SIGTERM, SIGHUP) while compiling: the compile stops, its compiler child (in a
 * process group of its own, so the terminal's signal does not reach it) is killed and the
 * temporary directory removed; a second Ctrl-C kills at once (SA_RESETHAND) */
static const int g_sigs[] = {SIGINT, SIGTERM, SIGHUP};

static void signals_catch(struct sigaction old[3]) {
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    g_signal = 0;
    for (int i = 0; i < 3; i++) sigaction(g_sigs[i], &sa, &old[i]);
}

static void signals_restore(const struct sigaction old[3]) {
    for (int i = 0; i < 3; i++) sigaction(g_sigs[i], &old[i], NULL);
}

int cke_cli_compile_guarded(const char *cmd, const char *model, cke_compile_opts *o, const char *left) {
    struct sigaction old[3];
    signals_catch(old);
    o->cancel = &g_signal;
    cke_err e = {0};
    cke_status s = cke_compile(model, o, &e);
    o->cancel = NULL;
    signals_restore(old);
    if (g_signal) {
        fprintf(stderr, "cke %s: interrupted; the compile was stopped and %s\n", cmd, left);
        return 128 + g_signal;
    }
    return s ? cke_cli_fail(cmd, s, &e) : 0;
}

/* A compiled directory's KV cache type against the one asked for (-1: none asked). */
int cke_cli_compiled_kv_ok(const char *dir, int kv_type) {
    char have[32];
    cke_compiled_field(dir, "kv_type", have, sizeof have);
    if (kv_type < 0 || !strcmp(have, cke_kv_type_name((cke_kv_type)kv_type))) return 1;
    fprintf(stderr, "cke: %s was compiled with a %s KV cache, not %s: compile it again with --kv-type %s, or pass the model file\n",
            dir, have[0] ? have : "f32", cke_kv_type_name((cke_kv_type)kv_type), cke_kv_type_name((cke_kv_type)kv_type));
    return 0;
}

int cke_cli_model_dir(const char *target_arg, const char *tok, int64_t ctx, int kv_type, char *dir, size_t n) {
    return cke_cli_model_dir_tp(target_arg, tok, ctx, kv_type, 0, 0, dir, n);
}

int cke_cli_model_dir_tp(const char *target_arg, const char *tok, int64_t ctx, int kv_type, int tp_rank, int tp_size,
                         char *dir, size_t n) {
    cke_target tg; /* a training --out directory or checkpoint stands for the model it holds */
    if (cke_cli_target(NULL, target_arg, &tg)) return 1;
    if (tg.kind == CKE_TARGET_COMPILED) {
        if (!cke_cli_compiled_kv_ok(tg.model, kv_type)) return 1;
        snprintf(dir, n, "%s", tg.model);
        return 0;
    }
    if (!tok && tg.tokenizer[0]) tok = tg.tokenizer;
    cke_cache_slot slot;
    cke_err e = {0};
    cke_status s = cke_cache_find(tg.model, tok, ctx, kv_type < 0 ? CKE_KV_F16 : kv_type, &slot, &e);
    if (!s) s = cke_cache_set_tp(&slot, tp_rank, tp_size, &e);
    if (s) { fprintf(stderr, "cke: %s\n", e.msg); return 1; }
    if ((size_t)snprintf(dir, n, "%s", slot.dir) >= n) {
        fprintf(stderr, "cke: cache path too long: %s\n", slot.entry);
        return 1;
    }
    if (!slot.present) {
        if (tp_size > 1) fprintf(stderr, "cke: compiling %s as tensor-parallel rank %d of %d into the cache ...\n", slot.abs,
                                 tp_rank, tp_size);
        else fprintf(stderr, "cke: compiling %s into the cache (first run) ...\n", slot.abs);
        double t0 = cke_cli_now();
        struct sigaction old[3];
        signals_catch(old);
        s = cke_cache_compile(&slot, &g_signal, &e);
        signals_restore(old);
        if (g_signal) {
            fprintf(stderr, "cke compile: interrupted; the compile was stopped and nothing was left in the cache\n");
            return 128 + g_signal;
        }
        if (s) return cke_cli_fail("compile", s, &e);
        fprintf(stderr, "cke: compiled in %.1f s -> %s\n", cke_cli_now() - t0, dir);
    }
    cke_cache_touch(&slot);
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
    if (!got) { /* an older cke's entry: the compiled directory itself */
        cke_compiled_source(entry, out, n);
        got = strlen(out);
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
    cke_cache_base(base, sizeof base);
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
