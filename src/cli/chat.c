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

#include "cke/cke.h"
#include "cli/run.h"
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

typedef struct {
    cke_message *v;
    int64_t n, cap;
} msg_list;

static int push_msg(msg_list *l, const char *role, const char *content) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 16;
        cke_message *nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv) return -1;
        l->v = nv, l->cap = cap;
    }
    char *c = strdup(content);
    if (!c) return -1;
    l->v[l->n++] = (cke_message){.role = role, .content = c};
    return 0;
}
static void pop_msg(msg_list *l) { free((char *)l->v[--l->n].content); }

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
    cke_engine *e;
    cke_session *s;
    int tpl;        /* the model has a chat template; 0: plain continuation */
    cke_gen_opts go;
    int64_t ctx;
    int verbose;
    size_t prompt_end; /* tokens after the last prompt was prefilled: where /regen restarts */
    msg_list msgs;
    char *cache_text; /* the text whose tokens are in the session (template mode) */
    char *last_full;  /* the last rendered prompt (template mode) */
    int turn;
} chat;

static size_t held(const chat *c) {
    size_t n;
    cke_session_tokens(c->s, &n);
    return n;
}

/* each token's text as it becomes final; Ctrl-C stops the reply */
static int print_piece(void *user, const cke_token *t) {
    (void)user;
    fwrite(t->text, 1, t->len, stdout);
    fflush(stdout);
    return g_int != 0;
}

/* Generates a reply after the prompt in the session; in template mode it joins the conversation.
 * Returns 0, or 1 on an error (printed). */
static int generate(chat *c, size_t n_prompt, double t0, double t1) {
    cke_err e = {0};
    cke_gen_result res;
    g_int = 0; /* a Ctrl-C during the prompt's prefill stops the reply before it starts */
    cke_status s = cke_session_generate(c->s, &c->go, &res, &e);
    int stopped = res.stop == CKE_STOP_CANCELLED, rc = 0;
    if (stopped) g_int = 0;
    printf("\n");
    fflush(stdout);
    if (s) { fprintf(stderr, "cke chat: %s\n", e.msg); rc = 1; }
    if (stopped) fprintf(stderr, "cke chat: reply stopped (Ctrl-C); /regen generates it again\n");
    double tg = res.t_prompt_s + res.t_gen_s;
    fprintf(stderr, "cke: prompt %zu new tokens in %.3f s (%.1f tok/s); reply %lld tokens in %.3f s (%.1f tok/s)%s\n",
            n_prompt, t1 - t0, (double)n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9), (long long)res.n_generated, tg,
            (double)res.n_generated / (tg > 0 ? tg : 1e-9), (int64_t)held(c) >= c->ctx ? "; the context is full" : "");
    if (!rc && c->tpl) {
        /* the reply as text (as far as it got): the next render must start with exactly this */
        size_t fl = strlen(c->last_full), rl = res.text_len;
        char *ct = malloc(fl + rl + 1);
        if (!ct || push_msg(&c->msgs, "assistant", res.text)) { free(ct); rc = 1; }
        else {
            memcpy(ct, c->last_full, fl);
            memcpy(ct + fl, res.text, rl + 1);
            free(c->cache_text);
            c->cache_text = ct;
        }
    }
    cke_gen_result_free(&res);
    return rc;
}

/* The tokens of this turn: the conversation rendered, and of it only what the session does not
 * hold as text yet (*reset when the template rewrote earlier turns). */
static cke_status turn_ids(chat *c, const char *line, char **full, int *reset, int32_t **ids, size_t *n_ids, cke_err *e) {
    if (!c->tpl) return cke_tokenize(c->e, line, strlen(line), held(c) == 0 ? 1 : 0, 0, ids, n_ids, e);
    size_t flen = 0;
    cke_status s = cke_chat_apply(c->e, c->msgs.v, (size_t)c->msgs.n, 1, full, &flen, e);
    if (s) return s;
    if (flen == 0) return CKE_ERR_UNSUPPORTED; /* the caller says so */
    size_t have = c->cache_text ? strlen(c->cache_text) : 0;
    const char *delta = *full;
    if (held(c) > 0 && have <= flen && !memcmp(*full, c->cache_text, have)) delta = *full + have;
    else if (held(c) > 0) *reset = 1;
    /* HF apply_chat_template: the template writes BOS itself; specials in it are tokens */
    return cke_tokenize(c->e, delta, strlen(delta), 0, 1, ids, n_ids, e);
}

/* One user line: the new tokens are prefilled, then the reply. Returns 0 (go on), 1 (error:
 * leave with status 1), 2 (the turn was refused: go on). */
static int user_turn(chat *c, const char *line) {
    cke_err e = {0};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int reset = 0;
    char *full = NULL; /* the rendered prompt: last_full once it is in the session */
    c->turn++;
    if (c->tpl && push_msg(&c->msgs, "user", line)) return 1;
    cke_status s = turn_ids(c, line, &full, &reset, &ids, &n_ids, &e);
    if (s == CKE_ERR_UNSUPPORTED && c->tpl && full && !*full) {
        free(full);
        pop_msg(&c->msgs);
        c->turn--;
        fprintf(stderr, "cke chat: the chat template rendered an empty prompt: nothing to answer\n");
        return 1; /* it will not render anything else for the next line either */
    }
    if (s && c->tpl && !full) {
        fprintf(stderr, "cke chat: %s\n", e.msg);
        pop_msg(&c->msgs); /* drop the turn the template refused */
        c->turn--;
        return 2;
    }
    if (s) { fprintf(stderr, "cke chat: %s\n", e.msg); free(ids); free(full); return 1; }
    size_t keep = reset ? 0 : held(c);
    if (keep == 0 && n_ids == 0) {
        /* nothing in the session to continue from: the sampler would have no logits */
        fprintf(stderr, "cke chat: the %s encodes to no tokens: nothing to answer\n", c->tpl ? "rendered prompt" : "line");
        free(ids);
        free(full);
        return 1;
    }
    if ((int64_t)(keep + n_ids) + 1 > c->ctx) {
        fprintf(stderr, "cke chat: the conversation (%zu + %zu tokens) no longer fits the context of %lld tokens (/clear starts again)\n",
                keep, n_ids, (long long)c->ctx);
        free(ids);
        free(full);
        if (c->tpl) pop_msg(&c->msgs);
        return 2;
    }
    /* the session's tokens and the new ones: prefill reuses what it holds */
    int32_t *all = malloc((keep + n_ids) * sizeof *all);
    if (!all) { free(ids); free(full); return 1; }
    memcpy(all, cke_session_tokens(c->s, NULL), keep * sizeof *all);
    memcpy(all + keep, ids, n_ids * sizeof *all);
    free(ids);
    double t0 = cke_cli_now();
    s = cke_session_prefill(c->s, all, keep + n_ids, NULL, &e);
    free(all);
    if (s) { fprintf(stderr, "cke chat: %s\n", e.msg); free(full); return 1; }
    if (full) free(c->last_full), c->last_full = full;
    if (c->verbose)
        fprintf(stderr, "cke chat: turn %d: %s %zu tokens (cache now %zu)\n", c->turn,
                reset ? "the template rewrote earlier turns: cache reset, prefilled" : "appended", n_ids, held(c));
    c->prompt_end = held(c);
    return generate(c, n_ids, t0, cke_cli_now());
}

/* /regen: the session goes back to the end of the last prompt (re-prefilled), the reply again */
static int regen(chat *c) {
    if (c->prompt_end == 0) { fprintf(stderr, "cke chat: no reply to generate again yet\n"); return 0; }
    if (c->tpl) {
        if (c->msgs.n == 0 || strcmp(c->msgs.v[c->msgs.n - 1].role, "assistant")) {
            fprintf(stderr, "cke chat: no reply to generate again yet\n");
            return 0;
        }
        pop_msg(&c->msgs);
    }
    size_t keep = c->prompt_end;
    int32_t *ids = malloc(keep * sizeof *ids);
    if (!ids) return 1;
    memcpy(ids, cke_session_tokens(c->s, NULL), keep * sizeof *ids);
    cke_session_reset(c->s);
    cke_err e = {0};
    double t0 = cke_cli_now();
    cke_status s = cke_session_prefill(c->s, ids, keep, NULL, &e);
    free(ids);
    if (s) { fprintf(stderr, "cke chat: %s\n", e.msg); return 1; }
    return generate(c, keep, t0, cke_cli_now());
}

/* /clear: the conversation is forgotten (the system prompt stays) */
static void clear(chat *c, int has_system) {
    while (c->msgs.n > (has_system ? 1 : 0)) pop_msg(&c->msgs);
    cke_session_reset(c->s);
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
               "                [--ctx N] [--kv-type f16|f32|q8_0] [--tokenizer FILE] [-v]\n"
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
    int verbose = 0, kv = -1;
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
        else if (!strcmp(a, "--kv-type")) rc = cke_cli_opt_kv(cmd, argc, argv, &i, &kv);
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
    int rc = cke_cli_model_dir(target, tok_path, ctx, kv, dir, sizeof dir);
    if (rc) return rc;
    if (threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? nc : 1;
    }
    cke_err e = {0};
    cke_engine_opts eo = CKE_ENGINE_DEFAULTS;
    eo.threads = (int)threads;
    eo.tokenizer = tok_path;
    eo.chat_template = tpl_opt;
    cke_engine *eng = NULL;
    cke_status s = cke_engine_open(dir, &eo, &eng, &e);
    if (s) {
        if (tpl_opt && !strncmp(e.msg, "--template", 10)) fprintf(stderr, "cke chat: %s\n", e.msg);
        else fprintf(stderr, "cke chat: %s: %s\n", cke_status_name(s), e.msg);
        return 1;
    }
    const cke_model_info *info = cke_engine_info(eng);
    chat c = {.e = eng, .tpl = info->has_chat_template, .ctx = info->ctx, .verbose = verbose};
    c.go = (cke_gen_opts){.temp = so.temp, .top_k = so.top_k, .top_p = so.top_p, .min_p = so.min_p,
                          .repeat_penalty = so.repeat_penalty, .repeat_last_n = so.repeat_last_n, .seed = so.seed,
                          .max_tokens = n_gen, .stop_at_eot = 1, .on_token = print_piece};
    if (c.tpl) fprintf(stderr, "cke chat: using the %s\n", info->chat_template_origin);
    else {
        fprintf(stderr, "cke chat: the model has no chat template and no built-in format fits its vocabulary: "
                        "plain continuation (each line continues the text)\n");
        if (system) fprintf(stderr, "cke chat: --system is ignored without a template\n");
    }
    input in;
    input_open(&in, argv[0]);
    struct sigaction sa = {0}, old_sa;
    sa.sa_handler = on_sigint; /* no SA_RESTART: a blocked read returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    rc = 0;
    if ((s = cke_session_new(eng, &c.s, &e))) {
        fprintf(stderr, "cke chat: %s\n", e.msg);
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
        if ((int64_t)held(&c) >= c.ctx) {
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
    cke_session_free(c.s);
    cke_engine_close(eng);
    return rc;
}
