/* cke perplexity MODEL FILE.txt: exp(mean negative log-likelihood) of a text's tokens, each window
 * scored in one batched pass (prefill_all: the logits of every position of a prefill chunk).
 *
 * Windows (the text tokenized once; BOS in front of each window only when the model's tokenizer
 * says it adds one, cke_tok_add_bos):
 *   sliding (default): windows of --ctx tokens advancing by half a window; each scores its second
 *     half (the first window scores everything it can), so every token is predicted from at least
 *     half a window of context and every token is scored once.
 *   --llama-cpp / --chunks N: llama-perplexity's chunks, so the numbers compare with it directly:
 *     the tokens (with BOS first when the model adds one) cut into non-overlapping chunks of ctx,
 *     the first token of each chunk replaced by BOS when the model adds one, and only the second
 *     half of each chunk scored (positions ctx/2+1 .. ctx-1); at most N chunks.
 *
 * --kl-base BASE: the same windows through a second model (typically the unquantized one), and the
 * KL divergence KL(base || model) of the two next-token distributions at every scored position:
 * its mean +/- standard error, how often both pick the same top token, and both perplexities.
 *
 * Progress goes to stderr as llama-perplexity prints it ("[window]running-ppl"); the result to
 * stdout: "Final estimate: PPL = x +/- y", the error being exp(mean) times the standard error of
 * the mean NLL (as llama.cpp computes it). */
#include "cli/quant.h"

#include "cli/run.h"
#include "cli/util.h"
#include "runtime/runner.h"
#include "tokenizer/tokenizer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *b = malloc(cap + 1);
    while (b && (k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *nb = cap > SIZE_MAX / 4 ? NULL : realloc(b, 2 * cap + 1);
            if (!nb) { free(b); b = NULL; break; }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b) b[n] = 0;
    *len = n;
    return b;
}

/* Running sums over scored tokens. */
typedef struct {
    double nll, nll2;       /* -log p(token), and its square */
    int64_t n;
    double base_nll;        /* the base model's, with --kl-base */
    double kl, kl2;         /* KL(base || model) per position, and its square */
    int64_t same_top;       /* positions where both models' most likely token agree */
} ppl_sums;

/* exp(mean NLL) and its error: exp(mean) * standard error of the mean (llama.cpp's estimate) */
static double ppl_of(const ppl_sums *s, double *err) {
    double mean = s->nll / (double)s->n, var = s->nll2 / (double)s->n - mean * mean;
    *err = s->n > 1 && var > 0 ? exp(mean) * sqrt(var / (double)(s->n - 1)) : 0;
    return exp(mean);
}

/* log-softmax of one row, in double: lse = log(sum(exp(x))), top = argmax */
static double row_lse(const float *x, int64_t n, int64_t *top) {
    double mx = x[0];
    int64_t t = 0;
    for (int64_t v = 1; v < n; v++)
        if (x[v] > mx) mx = x[v], t = v;
    double z = 0;
    for (int64_t v = 0; v < n; v++) z += exp(x[v] - mx);
    *top = t;
    return mx + log(z);
}

typedef struct {
    cke_runner *r, *base; /* base: NULL without --kl-base */
    int64_t vocab, piece; /* rows per prefill_all call (bounds the logits buffer) */
    float *lg, *blg;      /* [piece, vocab] */
} scorer;

/* One window: in[0..len) from an empty context; scores in[ps..len) (ps >= 1), each token from the
 * logits of the row before it. The rows before ps-1 need no logits: a plain prefill. */
static int score_window(scorer *sc, const int32_t *in, int64_t len, int64_t ps, ppl_sums *s) {
    cke_runner *rs[2] = {sc->r, sc->base};
    for (int k = 0; k < 2 && rs[k]; k++) {
        rs[k]->api->reset(rs[k]->m);
        if (ps - 1 > 0 && rs[k]->api->prefill(rs[k]->m, in, ps - 1) != 0) {
            fprintf(stderr, "cke perplexity: %s\n", rs[k]->api->last_error(rs[k]->m));
            return 1;
        }
    }
    const int64_t V = sc->vocab;
    for (int64_t row = ps - 1; row < len - 1;) {
        int64_t k = len - 1 - row < sc->piece ? len - 1 - row : sc->piece;
        float *bufs[2] = {sc->lg, sc->blg};
        for (int j = 0; j < 2 && rs[j]; j++)
            if (rs[j]->api->prefill_all(rs[j]->m, in + row, k, bufs[j]) != 0) {
                fprintf(stderr, "cke perplexity: %s\n", rs[j]->api->last_error(rs[j]->m));
                return 1;
            }
        for (int64_t i = 0; i < k; i++) {
            const float *x = sc->lg + i * V;
            int32_t want = in[row + i + 1];
            int64_t top;
            double lse = row_lse(x, V, &top), nll = lse - x[want];
            s->nll += nll;
            s->nll2 += nll * nll;
            s->n++;
            if (!sc->base) continue;
            const float *b = sc->blg + i * V;
            int64_t btop;
            double blse = row_lse(b, V, &btop), kl = 0;
            for (int64_t v = 0; v < V; v++) {
                double lpb = b[v] - blse;
                kl += exp(lpb) * (lpb - (x[v] - lse));
            }
            s->base_nll += blse - b[want];
            s->kl += kl;
            s->kl2 += kl * kl;
            s->same_top += btop == top;
        }
        row += k;
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: cke perplexity MODEL|DIR FILE.txt [options]   (also -m MODEL -f FILE)\n"
            "  exp(mean negative log-likelihood) of the text's tokens; BOS first when the model adds one\n"
            "  -c, --ctx N        tokens per window (default 128; at most the model's compiled context)\n"
            "  -t, --threads N    threads (default 1)\n"
            "  --llama-cpp        llama-perplexity's windows: non-overlapping chunks of ctx tokens, BOS\n"
            "                     replacing each chunk's first token when the model adds BOS, only the\n"
            "                     second half of each chunk scored (the numbers compare with llama.cpp's)\n"
            "  --chunks N         --llama-cpp over at most N chunks\n"
            "  --kl-base BASE     also run BASE (a model or compiled dir, same vocabulary) on the same\n"
            "                     windows: mean KL(base || model) +/- its standard error, same top token\n"
            "  --tokenizer FILE   the tokenizer, for a llama2.c checkpoint\n"
            "  --kv-type T        KV cache type to compile MODEL (and BASE) with: f16 (default), f32 or q8_0\n"
            "  default windows slide by half a window and score their second half (every token once)\n"
            "  progress ([window]running PPL) on stderr; \"Final estimate: PPL = x +/- y\" on stdout\n");
}

static int open_model(const char *model, const char *tok, int64_t threads, int kv_type, cke_runner **r) {
    char dir[PATH_MAX];
    if (cke_cli_model_dir(model, tok, 0, kv_type, dir, sizeof dir)) return 1;
    cke_err e = {0};
    cke_status s = cke_runner_open(dir, (int)threads, r, &e);
    if (s) return cke_cli_fail("perplexity", s, &e);
    if (!(*r)->tok) {
        fprintf(stderr, "cke perplexity: %s has no tokenizer\n", dir);
        return 1;
    }
    /* every scored token's logit is read at its id: ids past the model's vocabulary have none
     * (cke run only samples ids < vocab and the model refuses larger inputs) */
    if (cke_tok_n_vocab((*r)->tok) > (*r)->api->vocab) {
        fprintf(stderr, "cke perplexity: %s: the tokenizer has %d tokens but the model's vocabulary only %lld\n", dir,
                (int)cke_tok_n_vocab((*r)->tok), (long long)(*r)->api->vocab);
        return 1;
    }
    if (!(*r)->api->prefill_all) { /* cannot happen with ABI 3, which the runner checks */
        fprintf(stderr, "cke perplexity: %s cannot return every position's logits\n", dir);
        return 1;
    }
    return 0;
}

int cke_cli_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *tok = NULL, *base_model = NULL;
    int64_t ctx = 128, threads = 1, chunks = -1;
    int llama = 0, kv = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = 0;
        if (cke_cli_is_help(a)) { usage(stdout); return 0; }
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c"))
            rc = cke_cli_opt_i64("perplexity", argc, argv, &i, 2, INT32_MAX, "a context length (>= 2)", &ctx);
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t"))
            rc = cke_cli_opt_i64("perplexity", argc, argv, &i, 1, 1024, "a thread count (1..1024)", &threads);
        else if (!strcmp(a, "--chunks"))
            rc = cke_cli_opt_i64("perplexity", argc, argv, &i, 1, INT64_MAX, "a number of chunks (>= 1)", &chunks), llama = 1;
        else if (!strcmp(a, "--llama-cpp")) llama = 1;
        else if (!strcmp(a, "--tokenizer")) rc = cke_cli_opt_str("perplexity", argc, argv, &i, &tok);
        else if (!strcmp(a, "--kv-type")) rc = cke_cli_opt_kv("perplexity", argc, argv, &i, &kv);
        else if (!strcmp(a, "--kl-base")) rc = cke_cli_opt_str("perplexity", argc, argv, &i, &base_model);
        else if (!strcmp(a, "-m")) rc = cke_cli_opt_str("perplexity", argc, argv, &i, &model);
        else if (!strcmp(a, "-f")) rc = cke_cli_opt_str("perplexity", argc, argv, &i, &file);
        else if (a[0] == '-' && a[1]) return cke_cli_unknown("perplexity", a);
        else if (!model) model = a;
        else if (!file) file = a;
        else return cke_cli_unknown("perplexity", a);
        if (rc) return rc;
    }
    if (!model || !file) { usage(stderr); return 2; }
    size_t len = 0;
    char *text = read_text(file, &len);
    if (!text) { fprintf(stderr, "cke perplexity: cannot read %s\n", file); return 1; }

    scorer sc = {0};
    int32_t *ids = NULL, *win = NULL;
    size_t n_ids = 0;
    int rc = open_model(model, tok, threads, kv, &sc.r);
    if (!rc && base_model) rc = open_model(base_model, tok, threads, kv, &sc.base);
    const ckm_api *api = sc.r ? sc.r->api : NULL;
    if (!rc && ctx > api->ctx) {
        fprintf(stderr, "cke perplexity: --ctx %lld exceeds the model's compiled context of %lld\n", (long long)ctx,
                (long long)api->ctx);
        rc = 2;
    }
    if (!rc && sc.base) {
        if (sc.base->api->vocab != api->vocab) {
            fprintf(stderr, "cke perplexity: --kl-base: %s has a vocabulary of %lld, the model %lld: not comparable\n",
                    base_model, (long long)sc.base->api->vocab, (long long)api->vocab);
            rc = 1;
        } else if (ctx > sc.base->api->ctx) {
            fprintf(stderr, "cke perplexity: --ctx %lld exceeds the base model's compiled context of %lld\n", (long long)ctx,
                    (long long)sc.base->api->ctx);
            rc = 2;
        }
    }
    /* the text's tokens; BOS as the model's tokenizer says */
    int32_t bos = -1;
    if (!rc) {
        cke_err e = {0};
        cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
        eo.add_bos = 0;
        cke_status s = cke_tok_encode(sc.r->tok, text, len, &eo, &ids, &n_ids, &e);
        if (s) rc = cke_cli_fail("perplexity", s, &e);
        if (cke_tok_add_bos(sc.r->tok)) bos = cke_tok_bos(sc.r->tok);
    }
    free(text);
    const int64_t n = (int64_t)n_ids, nb = bos >= 0;
    if (!rc && n + nb < 2) {
        fprintf(stderr, "cke perplexity: %s has %lld tokens: nothing to score\n", file, (long long)n);
        rc = 1;
    }
    if (!rc) {
        sc.vocab = api->vocab;
        /* rows per prefill_all call: a chunk, but at most 64 MiB of logits per model */
        sc.piece = api->prefill_chunk;
        if (sc.piece * sc.vocab > (64 << 20) / 4) sc.piece = (64 << 20) / 4 / sc.vocab > 0 ? (64 << 20) / 4 / sc.vocab : 1;
        sc.lg = malloc((size_t)sc.piece * (size_t)sc.vocab * sizeof(float));
        sc.blg = sc.base ? malloc((size_t)sc.piece * (size_t)sc.vocab * sizeof(float)) : NULL;
        win = malloc((size_t)ctx * sizeof(int32_t));
        if (!sc.lg || (sc.base && !sc.blg) || !win) { fprintf(stderr, "cke perplexity: out of memory\n"); rc = 1; }
    }
    if (!rc && llama && n + nb < 2 * ctx) {
        fprintf(stderr, "cke perplexity: --llama-cpp needs at least 2 x ctx = %lld tokens; %s has %lld\n",
                (long long)(2 * ctx), file, (long long)(n + nb));
        rc = 1;
    }
    ppl_sums s = {0};
    int64_t windows = 0;
    double t0 = cke_cli_now();
    if (!rc && llama) {
        /* llama-perplexity: tokens = [BOS] + text, chunks of ctx, BOS over each chunk's first token */
        int64_t n_chunk = (n + nb) / ctx;
        if (chunks > 0 && chunks < n_chunk) n_chunk = chunks;
        fprintf(stderr, "cke perplexity: %lld chunks of %lld tokens (llama.cpp's), second half scored\n", (long long)n_chunk,
                (long long)ctx);
        for (int64_t c = 0; c < n_chunk && !rc; c++) {
            for (int64_t j = 0; j < ctx; j++) {
                int64_t at = c * ctx + j; /* index into [BOS] + text */
                win[j] = nb && at == 0 ? bos : ids[at - nb];
            }
            if (nb) win[0] = bos;
            rc = score_window(&sc, win, ctx, ctx / 2 + 1, &s);
            double err;
            if (!rc) fprintf(stderr, "[%lld]%.4f,", (long long)++windows, ppl_of(&s, &err));
        }
    } else if (!rc) {
        /* sliding: W text tokens per window after the optional BOS, stride W/2 */
        int64_t W = ctx - nb, stride = W / 2 > 0 ? W / 2 : 1;
        fprintf(stderr, "cke perplexity: %lld tokens, windows of %lld sliding by %lld%s\n", (long long)n, (long long)ctx,
                (long long)stride, nb ? ", BOS first" : "");
        for (int64_t start = 0; start < n && !rc; start += stride) {
            int64_t end = start + W < n ? start + W : n;
            int64_t first = start == 0 ? 0 : start + (W - stride); /* first text token scored */
            if (nb) win[0] = bos;
            memcpy(win + nb, ids + start, (size_t)(end - start) * sizeof(int32_t));
            int64_t ps = nb + (first - start);
            rc = score_window(&sc, win, nb + end - start, ps > 1 ? ps : 1, &s);
            double err;
            if (!rc) fprintf(stderr, "[%lld]%.4f,", (long long)++windows, ppl_of(&s, &err));
            if (end == n) break;
        }
    }
    double dt = cke_cli_now() - t0;
    if (!rc) {
        double err, p = ppl_of(&s, &err);
        fprintf(stderr, "\ncke perplexity: %lld tokens scored in %lld windows of %lld in %.2f s (%.1f tokens/s), %lld threads\n",
                (long long)s.n, (long long)windows, (long long)ctx, dt, (double)s.n / (dt > 0 ? dt : 1e-9), (long long)threads);
        printf("Final estimate: PPL = %.4f +/- %.5f\n", p, err);
        if (sc.base) {
            double mkl = s.kl / (double)s.n, var = s.kl2 / (double)s.n - mkl * mkl;
            double kerr = s.n > 1 && var > 0 ? sqrt(var / (double)(s.n - 1)) : 0;
            printf("Base PPL = %.4f\nMean KLD: %.6g +/- %.3g\nSame top token: %.3f %%\n", exp(s.base_nll / (double)s.n), mkl,
                   kerr, 100.0 * (double)s.same_top / (double)s.n);
        }
    }
    free(win);
    free(ids);
    free(sc.lg);
    free(sc.blg);
    cke_runner_close(sc.base);
    cke_runner_close(sc.r);
    return rc;
}
