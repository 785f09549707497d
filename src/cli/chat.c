/* cke chat: an interactive conversation with a compiled model, formatted by the chat template
 * the model files carry (GGUF tokenizer.chat_template, HF tokenizer_config.json), else by a
 * built-in format the vocabulary fits (chatml, gemma, phi3, llama2), else plain continuation.
 *
 * Lines come from stdin (a terminal or a pipe). The KV cache is kept across turns: each turn the
 * whole conversation is rendered, and when the text already in the cache (the last prompt plus
 * the reply as generated) is a prefix of it, only the rest is tokenized and prefilled. A template
 * that rewrites earlier turns (Qwen3 drops old reasoning) breaks the prefix: then the cache is
 * reset and the conversation prefilled again (-v says which happened). */
#define _DEFAULT_SOURCE /* realpath, strdup, getline */
#include "cli/util.h"
#include "cli/chat.h"

#include "chat/chat.h"
#include "cli/run.h"
#include "runtime/runner.h"
#include "runtime/sampler.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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
    char *src;       /* Jinja source, NULL: plain continuation */
    char *bos, *eos; /* from tokenizer_config.json when it has them */
    char what[PATH_MAX + 64];
} tpl_found;

/* tokenizer_config.json in the folder of `path` (or `path` itself when it is a folder) */
static int try_hf_beside(const char *path, tpl_found *t) {
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
    if (cke_chat_template_from_hf_config(cfg, &t->src, &t->bos, &t->eos, &e)) return 0;
    snprintf(t->what, sizeof t->what, "chat_template of %s", cfg);
    return 1;
}

/* --template, then the compiled directory's tokenizer.gguf, then tokenizer_config.json beside
 * the source model or tokenizer, then a built-in format the vocabulary fits. */
static int find_template(const char *opt, const char *dir, const char *target, const char *tok_path, const cke_tok *tok,
                         tpl_found *t) {
    cke_err e = {0};
    if (opt) {
        const char *b = cke_chat_builtin(opt);
        if (b) {
            t->src = strdup(b);
            snprintf(t->what, sizeof t->what, "built-in %s format", opt);
            return t->src ? 0 : -1;
        }
        if (ends_with(opt, ".json")) {
            if (cke_chat_template_from_hf_config(opt, &t->src, &t->bos, &t->eos, &e)) goto bad;
        } else if (ends_with(opt, ".gguf")) {
            if (cke_chat_template_from_gguf(opt, &t->src, &e)) goto bad;
        } else if (!(t->src = read_text(opt))) {
            snprintf(e.msg, sizeof e.msg, "'%s' is neither a built-in format (chatml, llama2, gemma, phi3) nor a readable file", opt);
            goto bad;
        }
        snprintf(t->what, sizeof t->what, "template %s", opt);
        return 0;
    bad:
        fprintf(stderr, "cke chat: --template: %s\n", e.msg);
        return -1;
    }
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/tokenizer.gguf", dir);
    if (access(p, R_OK) == 0 && cke_chat_template_from_gguf(p, &t->src, &e) == CKE_OK) {
        snprintf(t->what, sizeof t->what, "tokenizer.chat_template of the GGUF");
        return 0;
    }
    if (try_hf_beside(dir, t)) return 0;
    /* the compiled directory records its source: an HF folder has tokenizer_config.json */
    snprintf(p, sizeof p, "%s/cke-model.txt", dir);
    char *info = read_text(p);
    if (info) {
        char *s = strstr(info, "\nsource ");
        if (s || !strncmp(info, "source ", 7)) {
            s = s ? s + 8 : info + 7;
            char *nl = strchr(s, '\n');
            if (nl) *nl = 0;
            int found = try_hf_beside(s, t);
            if (found) { free(info); return 0; }
        }
        free(info);
    }
    if ((target && try_hf_beside(target, t)) || (tok_path && try_hf_beside(tok_path, t))) return 0;
    const char *b = cke_chat_builtin_for_vocab(tok);
    if (b) {
        t->src = strdup(cke_chat_builtin(b));
        snprintf(t->what, sizeof t->what, "no template in the model files; built-in %s format (its tokens are in the vocabulary)", b);
        return t->src ? 0 : -1;
    }
    return 0; /* none: plain continuation */
}

typedef struct {
    cke_chat_msg *v;
    int64_t n, cap;
} msg_list;

static int push_msg(msg_list *l, const char *role, const char *content) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 16;
        cke_chat_msg *nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv) return -1;
        l->v = nv, l->cap = cap;
    }
    char *c = strdup(content);
    if (!c) return -1;
    l->v[l->n++] = (cke_chat_msg){.role = role, .content = c};
    return 0;
}

static char *piece_str(const cke_tok *t, int32_t id) {
    if (id < 0) return NULL;
    size_t n;
    const char *p = cke_tok_piece(t, id, &n);
    if (!p) return NULL;
    char *s = malloc(n + 1);
    if (s) memcpy(s, p, n), s[n] = 0;
    return s;
}

int cke_cli_chat(int argc, char **argv) {
    const char *target = NULL, *tok_path = NULL, *system = NULL, *tpl_opt = NULL;
    int64_t n_gen = 512, ctx = 0, threads = 0, seed = -1;
    int verbose = 0;
    cke_sampler_opts so = CKE_SAMPLER_DEFAULTS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--system") && v) system = v, i++;
        else if (!strcmp(a, "--template") && v) tpl_opt = v, i++;
        else if (!strcmp(a, "-n") && v) bad = cke_cli_parse_i64(v, &n_gen) || n_gen < 1, i++;
        else if (!strcmp(a, "--temp") && v) bad = cke_cli_parse_f(v, &so.temp) || so.temp < 0, i++;
        else if (!strcmp(a, "--top-k") && v) { int64_t k = 0; bad = cke_cli_parse_i64(v, &k) || k < 0 || k > INT32_MAX; so.top_k = (int)k; i++; }
        else if (!strcmp(a, "--top-p") && v) bad = cke_cli_parse_f(v, &so.top_p), i++;
        else if (!strcmp(a, "--min-p") && v) bad = cke_cli_parse_f(v, &so.min_p), i++;
        else if (!strcmp(a, "--repeat-penalty") && v) bad = cke_cli_parse_f(v, &so.repeat_penalty), i++;
        else if (!strcmp(a, "--seed") && v) bad = cke_cli_parse_i64(v, &seed), i++;
        else if (!strcmp(a, "--threads") && v) bad = cke_cli_parse_i64(v, &threads) || threads < 1 || threads > 1024, i++;
        else if (!strcmp(a, "--ctx") && v) bad = cke_cli_parse_i64(v, &ctx) || ctx < 1, i++;
        else if (!strcmp(a, "--tokenizer") && v) tok_path = v, i++;
        else if (!strcmp(a, "-v")) verbose = 1;
        else if (a[0] == '-' && a[1]) bad = 1;
        else if (!target) target = a;
        else bad = 1;
        if (bad) goto usage;
    }
    if (!target) goto usage;
    so.seed = seed >= 0 ? (uint64_t)seed : (uint64_t)time(NULL);

    char dir[PATH_MAX];
    int rc = cke_cli_model_dir(target, tok_path, ctx, dir, sizeof dir);
    if (rc) return rc;
    if (threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? nc : 1;
    }
    cke_err e = {0};
    cke_runner *r = NULL;
    cke_status s = cke_runner_open(dir, (int)threads, &r, &e);
    if (s) { fprintf(stderr, "cke chat: %s: %s\n", cke_status_name(s), e.msg); return 1; }
    if (!r->tok) {
        fprintf(stderr, "cke chat: %s has no tokenizer (compile with --tokenizer)\n", dir);
        cke_runner_close(r);
        return 1;
    }
    const ckm_api *api = r->api;
    tpl_found tf = {0};
    cke_jinja *tpl = NULL;
    if (find_template(tpl_opt, dir, target, tok_path, r->tok, &tf)) { cke_runner_close(r); return 1; }
    if (tf.src) {
        s = cke_jinja_parse(tf.src, strlen(tf.src), &tpl, &e);
        if (s) {
            fprintf(stderr, "cke chat: %s: %s\n", tf.what, e.msg);
            free(tf.src); free(tf.bos); free(tf.eos);
            cke_runner_close(r);
            return 1;
        }
        fprintf(stderr, "cke chat: using the %s\n", tf.what);
    } else {
        fprintf(stderr, "cke chat: the model has no chat template and no built-in format fits its vocabulary: "
                        "plain continuation (each line continues the text)\n");
        if (system) fprintf(stderr, "cke chat: --system is ignored without a template\n");
    }
    char *bos = tf.bos ? tf.bos : piece_str(r->tok, cke_tok_bos(r->tok));
    char *eos = tf.eos ? tf.eos : piece_str(r->tok, cke_tok_eos(r->tok));
    int32_t stops[16];
    int n_stops = cke_chat_stop_tokens(r->tok, stops, 16);

    cke_sampler *smp = NULL;
    int64_t cap = api->ctx + 1, nh = 0;
    int32_t *hist = malloc((size_t)cap * sizeof(int32_t)); /* every token in the KV cache */
    msg_list msgs = {0};
    char *cache_text = NULL; /* the text whose tokens are in the cache (template mode) */
    char *line = NULL;
    size_t line_cap = 0;
    rc = 0;
    if (!hist || (s = cke_sampler_new(&smp, api->vocab, &so, &e))) {
        if (s) fprintf(stderr, "cke chat: %s\n", e.msg);
        rc = 1;
        goto done;
    }
    if (tpl && system && push_msg(&msgs, "system", system)) { rc = 1; goto done; }
    int interactive = isatty(0);
    for (int turn = 1;; turn++) {
        if (interactive) { fputs("> ", stderr); fflush(stderr); }
        ssize_t ln = getline(&line, &line_cap, stdin);
        if (ln < 0) break;
        while (ln > 0 && (line[ln - 1] == '\n' || line[ln - 1] == '\r')) line[--ln] = 0;
        if (ln == 0) { turn--; continue; }

        /* the new tokens for this turn */
        int32_t *ids = NULL;
        size_t n_ids = 0;
        int reset = 0;
        cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
        char *full = NULL;
        if (tpl) {
            if (push_msg(&msgs, "user", line)) { rc = 1; break; }
            cke_jinja_chat c = {.messages = msgs.v, .n_messages = msgs.n, .bos_token = bos, .eos_token = eos,
                                .add_generation_prompt = true};
            size_t flen = 0;
            s = cke_jinja_render(tpl, &c, &full, &flen, &e);
            if (s) {
                fprintf(stderr, "cke chat: %s\n", e.msg);
                free((char *)msgs.v[--msgs.n].content); /* drop the turn the template refused */
                turn--;
                continue;
            }
            size_t have = cache_text ? strlen(cache_text) : 0;
            const char *delta = full;
            if (nh > 0 && have <= flen && !memcmp(full, cache_text, have)) delta = full + have;
            else if (nh > 0) reset = 1;
            /* HF apply_chat_template: the template writes BOS itself; specials in it are tokens */
            eo.add_bos = 0, eo.add_eos = 0, eo.parse_special = true;
            s = cke_tok_encode(r->tok, delta, strlen(delta), &eo, &ids, &n_ids, &e);
        } else {
            eo.add_bos = nh == 0 ? 1 : 0, eo.add_eos = 0;
            s = cke_tok_encode(r->tok, line, (size_t)ln, &eo, &ids, &n_ids, &e);
        }
        if (s) { fprintf(stderr, "cke chat: %s\n", e.msg); free(full); rc = 1; break; }
        if (reset) {
            api->reset(r->m);
            nh = 0;
        }
        if (nh + (int64_t)n_ids + 1 > api->ctx) {
            fprintf(stderr, "cke chat: the conversation (%lld + %zu tokens) no longer fits the context of %lld tokens\n",
                    (long long)nh, n_ids, (long long)api->ctx);
            free(ids); free(full);
            break;
        }
        double t0 = cke_cli_now();
        if (n_ids && api->prefill(r->m, ids, (int64_t)n_ids) != 0) {
            fprintf(stderr, "cke chat: %s\n", api->last_error(r->m));
            free(ids); free(full); rc = 1;
            break;
        }
        if (verbose)
            fprintf(stderr, "cke chat: turn %d: %s %zu tokens (cache now %lld)\n", turn,
                    reset ? "the template rewrote earlier turns: cache reset, prefilled" : "appended", n_ids,
                    (long long)(nh + (int64_t)n_ids));
        size_t n_prompt = n_ids;
        memcpy(hist + nh, ids, n_ids * sizeof(int32_t));
        nh += (int64_t)n_ids;
        free(ids);
        double t1 = cke_cli_now();

        /* generate until an end-of-turn token, -n tokens, or a full context */
        int64_t first = nh, gen = 0;
        size_t printed = 0;
        char *text = NULL;
        size_t tlen = 0;
        while (gen < n_gen && nh < api->ctx) {
            int32_t next = cke_sampler_next(smp, api->logits(r->m), hist, nh);
            int stop = 0;
            for (int k = 0; k < n_stops; k++) stop |= next == stops[k];
            if (stop) break;
            /* every sampled token goes into the cache, so the cache always equals hist */
            if (api->decode(r->m, next) != 0) { fprintf(stderr, "\ncke chat: %s\n", api->last_error(r->m)); rc = 1; break; }
            hist[nh++] = next;
            gen++;
            free(text);
            text = NULL;
            s = cke_tok_decode(r->tok, hist + first, (size_t)(nh - first), CKE_TOK_DECODE_SKIP_SPECIAL | CKE_TOK_DECODE_KEEP_PREFIX,
                               &text, &tlen, &e);
            if (s) { fprintf(stderr, "\ncke chat: %s\n", e.msg); rc = 1; break; }
            if (tlen > printed) fwrite(text + printed, 1, tlen - printed, stdout), printed = tlen;
            fflush(stdout);
        }
        double t2 = cke_cli_now();
        printf("\n");
        fflush(stdout);
        fprintf(stderr, "cke: prompt %zu new tokens in %.3f s (%.1f tok/s); reply %lld tokens in %.3f s (%.1f tok/s)%s\n",
                n_prompt, t1 - t0, (double)n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9),
                (long long)gen, t2 - t1, (double)gen / (t2 - t1 > 0 ? t2 - t1 : 1e-9),
                nh >= api->ctx ? "; the context is full" : "");
        if (tpl) {
            /* the reply as text: the next render must start with exactly this */
            const char *reply = text ? text : "";
            if (push_msg(&msgs, "assistant", reply)) { free(text); free(full); rc = 1; break; }
            size_t fl = strlen(full), rl = strlen(reply);
            free(cache_text);
            cache_text = malloc(fl + rl + 1);
            if (!cache_text) { free(text); free(full); rc = 1; break; }
            memcpy(cache_text, full, fl);
            memcpy(cache_text + fl, reply, rl + 1);
        }
        free(text);
        free(full);
        if (rc || nh >= api->ctx) break;
    }
done:
    for (int64_t i = 0; i < msgs.n; i++) free((char *)msgs.v[i].content);
    free(msgs.v);
    free(line);
    free(cache_text);
    free(hist);
    cke_sampler_free(smp);
    cke_jinja_free(tpl);
    free(tf.src);
    free(bos);
    free(eos);
    cke_runner_close(r);
    return rc;
usage:
    fprintf(stderr, "usage: cke chat DIR|MODEL [--system TEXT] [--template NAME|FILE] [-n MAX_REPLY_TOKENS] [--temp T]\n"
                    "                [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--threads N]\n"
                    "                [--ctx N] [--tokenizer FILE] [-v]\n"
                    "  reads one user turn per line from stdin; the reply goes to stdout, tokens/s to stderr.\n"
                    "  --template: chatml, llama2, gemma, phi3, or a file (Jinja text, tokenizer_config.json, .gguf);\n"
                    "  default: the model's own chat template, else a built-in format its vocabulary fits, else\n"
                    "  plain continuation. -v: how each turn reached the KV cache.\n");
    return 2;
}
