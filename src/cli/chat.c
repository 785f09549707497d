/* cke chat: an interactive conversation with a compiled model, formatted by the chat template
 * the model files carry (GGUF tokenizer.chat_template, HF tokenizer_config.json), else by a
 * built-in format the vocabulary fits (chatml, gemma, phi3, llama2), else plain continuation.
 *
 * Lines come from stdin (a terminal or a pipe). The KV cache is kept across turns: each turn the
 * whole conversation is rendered, and when the text already in the cache (the last prompt plus
 * the reply as generated) is a prefix of it, only the rest is tokenized and prefilled. A template
 * that rewrites earlier turns (Qwen3 drops old reasoning) breaks the prefix: then the cache is
 * reset and the conversation prefilled again (-v says which happened).
 *
 * On a terminal, lines are read with libedit (editing, history); Ctrl-C stops the reply being
 * generated and returns to the prompt, a second Ctrl-C at the prompt (or two before the first
 * is handled) leaves, and so do /exit, /quit and Ctrl-D. /clear forgets the conversation,
 * /regen generates the last reply again, /help lists the commands. From a pipe, plain lines. */
#define _DEFAULT_SOURCE /* realpath, strdup, getline */
#define _XOPEN_SOURCE 700 /* wcwidth for libedit */
#include "cli/util.h"
#include "cli/chat.h"

#include "chat/chat.h"
#include "cli/run.h"
#include "runtime/runner.h"
#include "runtime/sampler.h"

#include <errno.h>
#include <histedit.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

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
static void pop_msg(msg_list *l) { free((char *)l->v[--l->n].content); }

static char *piece_str(const cke_tok *t, int32_t id) {
    if (id < 0) return NULL;
    size_t n;
    const char *p = cke_tok_piece(t, id, &n);
    if (!p) return NULL;
    char *s = malloc(n + 1);
    if (s) memcpy(s, p, n), s[n] = 0;
    return s;
}

/* ------------------------------------------------------------------ Ctrl-C */

/* Set by SIGINT, cleared where it is acted on (the reply loop, the prompt). A second SIGINT
 * before the first was handled means the program is busy where it cannot look (a long prefill)
 * or the user insists: leave at once. */
static volatile sig_atomic_t g_int;
static void on_sigint(int sig) {
    (void)sig;
    if (g_int) {
        static const char m[] = "\ncke chat: interrupted\n";
        ssize_t w = write(2, m, sizeof m - 1);
        (void)w;
        _exit(130);
    }
    g_int = 1;
}

/* ------------------------------------------------------------------ input lines */

typedef struct {
    EditLine *el; /* NULL: stdin is not a terminal, plain lines */
    History *hist;
    char *line;
    size_t cap;
} input;

static const char *prompt_fn(EditLine *el) { (void)el; return "> "; }

/* libedit's character reader: our own, so that a read interrupted by Ctrl-C ends el_gets
 * instead of being retried */
static int getc_fn(EditLine *el, wchar_t *wc) {
    (void)el;
    mbstate_t st;
    memset(&st, 0, sizeof st);
    for (;;) {
        char c;
        ssize_t n = read(0, &c, 1);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR && !g_int) continue;
            return -1;
        }
        size_t r = mbrtowc(wc, &c, 1, &st);
        if (r == (size_t)-2) continue;                    /* more bytes of this character */
        if (r == (size_t)-1) *wc = (wchar_t)(unsigned char)c; /* not valid here: the byte */
        return 1;
    }
}

static void input_open(input *in, const char *argv0) {
    memset(in, 0, sizeof *in);
    if (!isatty(0) || !isatty(2)) return;
    setlocale(LC_CTYPE, ""); /* UTF-8 input */
    in->el = el_init(argv0, stdin, stderr, stderr);
    in->hist = history_init();
    if (!in->el || !in->hist) {
        if (in->el) el_end(in->el);
        if (in->hist) history_end(in->hist);
        in->el = NULL, in->hist = NULL;
        return;
    }
    HistEvent ev;
    history(in->hist, &ev, H_SETSIZE, 1000);
    el_set(in->el, EL_EDITOR, "emacs");
    el_set(in->el, EL_PROMPT, prompt_fn);
    el_set(in->el, EL_HIST, history, in->hist);
    el_set(in->el, EL_GETCFN, getc_fn);
    el_source(in->el, NULL); /* ~/.editrc, as other libedit programs */
}

static void input_close(input *in) {
    if (in->el) el_end(in->el);
    if (in->hist) history_end(in->hist);
    free(in->line);
}

/* The next line without its newline; NULL at the end of input or (with *intr set) on Ctrl-C. */
static char *input_line(input *in, int *intr) {
    *intr = 0;
    const char *s;
    size_t n;
    if (in->el) {
        int count = 0;
        s = el_gets(in->el, &count);
        if (!s || count <= 0) {
            if (g_int) g_int = 0, *intr = 1;
            return NULL;
        }
        n = strlen(s);
        if (n + 1 > in->cap) {
            char *nl = realloc(in->line, n + 1);
            if (!nl) return NULL;
            in->line = nl, in->cap = n + 1;
        }
        memcpy(in->line, s, n + 1);
    } else {
        ssize_t k = getline(&in->line, &in->cap, stdin);
        if (k < 0) {
            if (g_int) g_int = 0, *intr = 1, clearerr(stdin);
            return NULL;
        }
        n = (size_t)k;
    }
    while (n > 0 && (in->line[n - 1] == '\n' || in->line[n - 1] == '\r')) in->line[--n] = 0;
    if (in->hist && n) {
        HistEvent ev;
        history(in->hist, &ev, H_ENTER, in->line);
    }
    return in->line;
}

/* ------------------------------------------------------------------ the conversation */

typedef struct {
    cke_runner *r;
    const ckm_api *api;
    cke_jinja *tpl; /* NULL: plain continuation */
    const char *bos, *eos;
    cke_sampler *smp;
    int32_t stops[16];
    int n_stops;
    int64_t n_gen;
    int verbose;
    int32_t *hist; /* every token in the KV cache */
    int64_t nh;
    int64_t prompt_end; /* nh after the last prompt was prefilled: where /regen restarts */
    msg_list msgs;
    char *cache_text; /* the text whose tokens are in the cache (template mode) */
    char *last_full;  /* the last rendered prompt (template mode) */
    int turn;
} chat;

static void cache_reset(chat *c) {
    c->api->reset(c->r->m);
    c->nh = 0;
}

/* Generates a reply after the prompt in the cache; in template mode it joins the conversation.
 * Returns 0, or 1 on an error (printed). */
static int generate(chat *c, size_t n_prompt, double t0, double t1) {
    const ckm_api *api = c->api;
    cke_err e = {0};
    int64_t first = c->nh, gen = 0;
    size_t printed = 0;
    char *text = NULL;
    size_t tlen = 0;
    int rc = 0, stopped = 0;
    g_int = 0; /* a Ctrl-C during the prompt's prefill stops the reply before it starts */
    while (gen < c->n_gen && c->nh < api->ctx) {
        if (g_int) { g_int = 0; stopped = 1; break; }
        int32_t next = cke_sampler_next(c->smp, api->logits(c->r->m), c->hist, c->nh);
        if (next < 0) { fprintf(stderr, "\ncke chat: the model gave no logits to sample from\n"); rc = 1; break; }
        int stop = 0;
        for (int k = 0; k < c->n_stops; k++) stop |= next == c->stops[k];
        if (stop) break;
        /* every sampled token goes into the cache, so the cache always equals hist */
        if (api->decode(c->r->m, next) != 0) { fprintf(stderr, "\ncke chat: %s\n", api->last_error(c->r->m)); rc = 1; break; }
        c->hist[c->nh++] = next;
        gen++;
        free(text);
        text = NULL;
        cke_status s = cke_tok_decode(c->r->tok, c->hist + first, (size_t)(c->nh - first),
                                      CKE_TOK_DECODE_SKIP_SPECIAL | CKE_TOK_DECODE_KEEP_PREFIX, &text, &tlen, &e);
        if (s) { fprintf(stderr, "\ncke chat: %s\n", e.msg); rc = 1; break; }
        if (tlen > printed) fwrite(text + printed, 1, tlen - printed, stdout), printed = tlen;
        fflush(stdout);
    }
    double t2 = cke_cli_now();
    printf("\n");
    fflush(stdout);
    if (stopped) fprintf(stderr, "cke chat: reply stopped (Ctrl-C); /regen generates it again\n");
    fprintf(stderr, "cke: prompt %zu new tokens in %.3f s (%.1f tok/s); reply %lld tokens in %.3f s (%.1f tok/s)%s\n",
            n_prompt, t1 - t0, (double)n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9),
            (long long)gen, t2 - t1, (double)gen / (t2 - t1 > 0 ? t2 - t1 : 1e-9),
            c->nh >= api->ctx ? "; the context is full" : "");
    if (!rc && c->tpl) {
        /* the reply as text (as far as it got): the next render must start with exactly this */
        const char *reply = text ? text : "";
        size_t fl = strlen(c->last_full), rl = strlen(reply);
        char *ct = malloc(fl + rl + 1);
        if (!ct || push_msg(&c->msgs, "assistant", reply)) { free(ct); rc = 1; }
        else {
            memcpy(ct, c->last_full, fl);
            memcpy(ct + fl, reply, rl + 1);
            free(c->cache_text);
            c->cache_text = ct;
        }
    }
    free(text);
    return rc;
}

/* One user line: the new tokens are prefilled, then the reply. Returns 0 (go on), 1 (error:
 * leave with status 1), 2 (the turn was refused: go on). */
static int user_turn(chat *c, const char *line) {
    const ckm_api *api = c->api;
    cke_err e = {0};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int reset = 0;
    cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
    cke_status s;
    char *full = NULL; /* the rendered prompt: last_full once it is in the cache */
    c->turn++;
    if (c->tpl) {
        if (push_msg(&c->msgs, "user", line)) return 1;
        cke_jinja_chat jc = {.messages = c->msgs.v, .n_messages = c->msgs.n, .bos_token = c->bos, .eos_token = c->eos,
                             .add_generation_prompt = true};
        size_t flen = 0;
        s = cke_jinja_render(c->tpl, &jc, &full, &flen, &e);
        if (!s && flen == 0) {
            free(full);
            pop_msg(&c->msgs);
            c->turn--;
            fprintf(stderr, "cke chat: the chat template rendered an empty prompt: nothing to answer\n");
            return 1; /* it will not render anything else for the next line either */
        }
        if (s) {
            fprintf(stderr, "cke chat: %s\n", e.msg);
            pop_msg(&c->msgs); /* drop the turn the template refused */
            c->turn--;
            return 2;
        }
        size_t have = c->cache_text ? strlen(c->cache_text) : 0;
        const char *delta = full;
        if (c->nh > 0 && have <= flen && !memcmp(full, c->cache_text, have)) delta = full + have;
        else if (c->nh > 0) reset = 1;
        /* HF apply_chat_template: the template writes BOS itself; specials in it are tokens */
        eo.add_bos = 0, eo.add_eos = 0, eo.parse_special = true;
        s = cke_tok_encode(c->r->tok, delta, strlen(delta), &eo, &ids, &n_ids, &e);
    } else {
        eo.add_bos = c->nh == 0 ? 1 : 0, eo.add_eos = 0;
        s = cke_tok_encode(c->r->tok, line, strlen(line), &eo, &ids, &n_ids, &e);
    }
    if (s) { fprintf(stderr, "cke chat: %s\n", e.msg); free(full); return 1; }
    if ((reset || c->nh == 0) && n_ids == 0) {
        /* nothing in the cache to continue from: the sampler would have no logits */
        fprintf(stderr, "cke chat: the %s encodes to no tokens: nothing to answer\n", c->tpl ? "rendered prompt" : "line");
        free(ids);
        free(full);
        return 1;
    }
    if (reset) cache_reset(c);
    if (c->nh + (int64_t)n_ids + 1 > api->ctx) {
        fprintf(stderr, "cke chat: the conversation (%lld + %zu tokens) no longer fits the context of %lld tokens (/clear starts again)\n",
                (long long)c->nh, n_ids, (long long)api->ctx);
        free(ids);
        free(full);
        if (c->tpl) pop_msg(&c->msgs);
        return 2;
    }
    double t0 = cke_cli_now();
    if (n_ids && api->prefill(c->r->m, ids, (int64_t)n_ids) != 0) {
        fprintf(stderr, "cke chat: %s\n", api->last_error(c->r->m));
        free(ids);
        free(full);
        return 1;
    }
    if (full) free(c->last_full), c->last_full = full;
    if (c->verbose)
        fprintf(stderr, "cke chat: turn %d: %s %zu tokens (cache now %lld)\n", c->turn,
                reset ? "the template rewrote earlier turns: cache reset, prefilled" : "appended", n_ids,
                (long long)(c->nh + (int64_t)n_ids));
    memcpy(c->hist + c->nh, ids, n_ids * sizeof(int32_t));
    c->nh += (int64_t)n_ids;
    c->prompt_end = c->nh;
    free(ids);
    return generate(c, n_ids, t0, cke_cli_now());
}

/* /regen: the cache goes back to the end of the last prompt (re-prefilled), the reply again */
static int regen(chat *c) {
    if (c->prompt_end == 0) { fprintf(stderr, "cke chat: no reply to generate again yet\n"); return 0; }
    if (c->tpl) {
        if (c->msgs.n == 0 || strcmp(c->msgs.v[c->msgs.n - 1].role, "assistant")) {
            fprintf(stderr, "cke chat: no reply to generate again yet\n");
            return 0;
        }
        pop_msg(&c->msgs);
    }
    int64_t keep = c->prompt_end;
    cache_reset(c);
    double t0 = cke_cli_now();
    if (c->api->prefill(c->r->m, c->hist, keep) != 0) {
        fprintf(stderr, "cke chat: %s\n", c->api->last_error(c->r->m));
        return 1;
    }
    c->nh = keep;
    return generate(c, (size_t)keep, t0, cke_cli_now());
}

/* /clear: the conversation is forgotten (the system prompt stays) */
static void clear(chat *c, int has_system) {
    while (c->msgs.n > (has_system ? 1 : 0)) pop_msg(&c->msgs);
    cache_reset(c);
    c->prompt_end = 0;
    free(c->cache_text), c->cache_text = NULL;
    free(c->last_full), c->last_full = NULL;
    c->turn = 0;
    fprintf(stderr, "cke chat: conversation cleared\n");
}

static const char help_text[] =
    "  /exit, /quit  leave (also Ctrl-D, or Ctrl-C twice at the prompt)\n"
    "  /clear        forget the conversation and start again\n"
    "  /regen        drop the last reply and generate it again\n"
    "  /help         this list\n"
    "  Ctrl-C stops the reply being generated.\n";

static void usage(FILE *f) {
    fprintf(f, "usage: cke chat DIR|MODEL [--system TEXT] [--template NAME|FILE] [-n MAX_REPLY_TOKENS] [--temp T]\n"
               "                [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--threads N]\n"
               "                [--ctx N] [--tokenizer FILE] [-v]\n"
               "  reads one user turn per line from stdin (a terminal: line editing and history); the reply\n"
               "  goes to stdout, tokens/s to stderr.\n"
               "  --template: chatml, llama2, gemma, phi3, or a file (Jinja text, tokenizer_config.json, .gguf);\n"
               "  default: the model's own chat template, else a built-in format its vocabulary fits, else\n"
               "  plain continuation. -v: how each turn reached the KV cache.\n"
               "  commands at the prompt:\n%s", help_text);
}

int cke_cli_chat(int argc, char **argv) {
    static const char cmd[] = "chat";
    const char *target = NULL, *tok_path = NULL, *system = NULL, *tpl_opt = NULL;
    int64_t n_gen = 512, ctx = 0, threads = 0, seed = -1, top_k = 40;
    int verbose = 0;
    cke_sampler_opts so = CKE_SAMPLER_DEFAULTS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = 0;
        if (cke_cli_is_help(a)) { usage(stdout); return 0; }
        if (!strcmp(a, "--system")) rc = cke_cli_opt_str(cmd, argc, argv, &i, &system);
        else if (!strcmp(a, "--template")) rc = cke_cli_opt_str(cmd, argc, argv, &i, &tpl_opt);
        else if (!strcmp(a, "-n")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 1, INT32_MAX, "a token count (>= 1)", &n_gen);
        else if (!strcmp(a, "--temp")) rc = cke_cli_opt_f(cmd, argc, argv, &i, 0, 1e9, "a temperature (>= 0)", &so.temp);
        else if (!strcmp(a, "--top-k")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 0, INT32_MAX, "a top-k (>= 0)", &top_k);
        else if (!strcmp(a, "--top-p")) rc = cke_cli_opt_f(cmd, argc, argv, &i, 0, 1, "a probability (0 to 1)", &so.top_p);
        else if (!strcmp(a, "--min-p")) rc = cke_cli_opt_f(cmd, argc, argv, &i, 0, 1, "a probability (0 to 1)", &so.min_p);
        else if (!strcmp(a, "--repeat-penalty"))
            rc = cke_cli_opt_f(cmd, argc, argv, &i, 1e-6, 1e9, "a repetition penalty (> 0)", &so.repeat_penalty);
        else if (!strcmp(a, "--seed")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 0, INT64_MAX, "a seed (>= 0)", &seed);
        else if (!strcmp(a, "--threads")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 1, 1024, "a thread count (1 to 1024)", &threads);
        else if (!strcmp(a, "--ctx")) rc = cke_cli_opt_i64(cmd, argc, argv, &i, 1, INT32_MAX, "a context length (>= 1)", &ctx);
        else if (!strcmp(a, "--tokenizer")) rc = cke_cli_opt_str(cmd, argc, argv, &i, &tok_path);
        else if (!strcmp(a, "-v")) verbose = 1;
        else if ((a[0] == '-' && a[1]) || target) rc = cke_cli_unknown(cmd, a);
        else target = a;
        if (rc) return rc;
    }
    if (!target) {
        fprintf(stderr, "cke chat: which model? (a compiled directory or a model file)\n");
        usage(stderr);
        return 2;
    }
    so.top_k = (int)top_k;
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
    tpl_found tf = {0};
    chat c = {.r = r, .api = r->api, .n_gen = n_gen, .verbose = verbose};
    if (find_template(tpl_opt, dir, target, tok_path, r->tok, &tf)) { cke_runner_close(r); return 1; }
    if (tf.src) {
        s = cke_jinja_parse(tf.src, strlen(tf.src), &c.tpl, &e);
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
    c.bos = bos, c.eos = eos;
    c.n_stops = cke_chat_stop_tokens(r->tok, c.stops, 16);
    c.hist = malloc((size_t)(c.api->ctx + 1) * sizeof(int32_t));
    input in;
    input_open(&in, argv[0]);
    struct sigaction sa = {0}, old_sa;
    sa.sa_handler = on_sigint; /* no SA_RESTART: a blocked read returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    rc = 0;
    if (!c.hist || (s = cke_sampler_new(&c.smp, c.api->vocab, &so, &e))) {
        if (s) fprintf(stderr, "cke chat: %s\n", e.msg);
        rc = 1;
        goto done;
    }
    int has_system = c.tpl && system;
    if (has_system && push_msg(&c.msgs, "system", system)) { rc = 1; goto done; }
    if (in.el)
        fprintf(stderr, "cke chat: type a message and press Enter. /exit or Ctrl-D to leave, Ctrl-C stops a reply, "
                        "/help for more.\n");
    int prompt_ints = 0, refused = 0;
    for (;;) {
        int intr;
        char *line = input_line(&in, &intr);
        if (in.el && (intr || !line)) fputc('\n', stderr); /* the shell's prompt on a line of its own */
        if (intr) {
            if (++prompt_ints >= 2) break;
            fprintf(stderr, "cke chat: Ctrl-C again, /exit or Ctrl-D to leave\n");
            continue;
        }
        if (!line) break;
        prompt_ints = 0;
        if (!*line) continue;
        int t = 0;
        if (line[0] == '/') {
            if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
            else if (!strcmp(line, "/clear")) clear(&c, has_system);
            else if (!strcmp(line, "/regen")) t = regen(&c);
            else if (!strcmp(line, "/help")) fputs(help_text, stderr);
            else fprintf(stderr, "cke chat: unknown command %s (/help lists them)\n", line);
        } else t = user_turn(&c, line);
        if (t == 1) { rc = 1; break; }
        if (t == 2 && !in.el) refused = 1; /* a script learns from the exit status that a turn failed */
        if (c.nh >= c.api->ctx) {
            fprintf(stderr, "cke chat: the context is full (/clear starts again)\n");
            if (!in.el) break;
        }
    }
    if (refused) rc = 1;
done:
    sigaction(SIGINT, &old_sa, NULL);
    input_close(&in);
    while (c.msgs.n) pop_msg(&c.msgs);
    free(c.msgs.v);
    free(c.cache_text);
    free(c.last_full);
    free(c.hist);
    cke_sampler_free(c.smp);
    cke_jinja_free(c.tpl);
    free(tf.src);
    free(bos);
    free(eos);
    cke_runner_close(r);
    return rc;
}
