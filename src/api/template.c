/* Finding a model's chat template (moved from cke chat: one lookup for the CLI and the library). */
#define _DEFAULT_SOURCE /* strdup */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *t = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 > cap) {
            char *nt = realloc(t, cap = cap * 2 + 4096);
            if (!nt) { free(t); fclose(f); return NULL; }
            t = nt;
        }
        size_t k = fread(t + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    fclose(f);
    t[n] = 0;
    return t;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

typedef struct {
    char **src, **bos, **eos;
    char *what;
    size_t what_len;
} found;

/* tokenizer_config.json in the folder of `path` (or `path` itself when it is a folder) */
static int try_hf_beside(const char *path, found *f) {
    char cfg[PATH_MAX + 32];
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", path);
    else {
        const char *sl = strrchr(path, '/');
        if (sl) snprintf(cfg, sizeof cfg, "%.*s/tokenizer_config.json", (int)(sl - path), path);
        else snprintf(cfg, sizeof cfg, "tokenizer_config.json");
    }
    if (access(cfg, R_OK) != 0) return 0;
    cke_err e = {0};
    if (cke_chat_template_from_hf_config(cfg, f->src, f->bos, f->eos, &e)) return 0;
    snprintf(f->what, f->what_len, "chat_template of %s", cfg);
    return 1;
}

static cke_status from_option(const char *opt, found *f, cke_err *err) {
    const char *b = cke_chat_builtin(opt);
    cke_status s = CKE_OK;
    cke_err e = {0};
    if (b) {
        if (!(*f->src = strdup(b))) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        snprintf(f->what, f->what_len, "built-in %s format", opt);
        return CKE_OK;
    }
    if (ends_with(opt, ".json")) s = cke_chat_template_from_hf_config(opt, f->src, f->bos, f->eos, &e);
    else if (ends_with(opt, ".gguf")) s = cke_chat_template_from_gguf(opt, f->src, &e);
    else if (!(*f->src = read_text(opt)))
        return cke_fail(err, CKE_ERR_ARG, "--template: '%s' is neither a built-in format (chatml, llama2, gemma, phi3) nor a readable file", opt);
    if (s) return cke_fail(err, s, "--template: %s", e.msg);
    snprintf(f->what, f->what_len, "template %s", opt);
    return CKE_OK;
}

cke_status cke_api_find_template(const char *opt, const char *dir, const char *tok_path, const cke_tok *tok,
                                 char **src, char **bos, char **eos, char *what, size_t what_len, cke_err *err) {
    *src = *bos = *eos = NULL;
    found f = {src, bos, eos, what, what_len};
    if (opt) return from_option(opt, &f, err);
    cke_err e = {0};
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/tokenizer.gguf", dir);
    if (access(p, R_OK) == 0 && cke_chat_template_from_gguf(p, src, &e) == CKE_OK) {
        snprintf(what, what_len, "tokenizer.chat_template of the GGUF");
        return CKE_OK;
    }
    if (try_hf_beside(dir, &f)) return CKE_OK;
    /* the compiled directory records its source: an HF folder has tokenizer_config.json */
    snprintf(p, sizeof p, "%s/cke-model.txt", dir);
    char *info = read_text(p);
    if (info) {
        char *s = strstr(info, "\nsource ");
        if (s || !strncmp(info, "source ", 7)) {
            s = s ? s + 8 : info + 7;
            char *nl = strchr(s, '\n');
            if (nl) *nl = 0;
            int ok = try_hf_beside(s, &f);
            if (ok) { free(info); return CKE_OK; }
        }
        free(info);
    }
    if (tok_path && try_hf_beside(tok_path, &f)) return CKE_OK;
    const char *b = cke_chat_builtin_for_vocab(tok);
    if (b) {
        if (!(*src = strdup(cke_chat_builtin(b)))) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        snprintf(what, what_len, "no template in the model files; built-in %s format (its tokens are in the vocabulary)", b);
    }
    return CKE_OK; /* none: plain continuation */
}
