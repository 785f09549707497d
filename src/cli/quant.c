/* cke quantize IN OUT.gguf TYPE: every matrix re-encoded in a ggml block format with cke's
 * reference quantizers (bit-identical to ggml's for the same floats), so the output reads in cke
 * and in other GGUF readers. IN is a GGUF file (all metadata, tokenizer included, copied
 * verbatim) or anything cke_model_open reads -- a Hugging Face directory, a llama2.c checkpoint --
 * written in llama.cpp's GGUF conventions (formats/model_export.c) with its tokenizer converted to
 * tokenizer.ggml.* metadata (the pre-tokenizer named by matching its behaviour).
 *
 * TYPE: F32 (every tensor dequantized), BF16, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K
 * (every matrix in that format), or a
 * recipe after llama.cpp's:
 *   Q4_K_M / Q5_K_M: Q4_K / Q5_K everywhere, except output.weight (Q6_K) and attn_v and ffn_down
 *   of the layers llama.cpp's use_more_bits picks (the first and last eighth of the layers and
 *   every third in between) in Q6_K.
 * 1-D tensors (norms, biases) stay F32. A matrix whose rows are not whole blocks falls back to
 * a type that fits (K formats: Q5_0 / Q5_1 / Q8_0 as llama.cpp does, when rows are multiples of
 * 32; else F16) with a note on stderr.
 *
 * cke perplexity MODEL FILE.txt [--ctx N]: exp(mean negative log-likelihood) of the text's
 * tokens, in windows of N tokens (default 128) that start from an empty context with BOS; the
 * windows advance by N/2 and each scores only its second half (the first window scores all), so
 * every token is predicted from at least N/2 tokens of context. */
#include "cli/quant.h"

#include "cke/kernels.h"
#include "cli/run.h"
#include "formats/gguf.h"
#include "formats/model_export.h"
#include "runtime/runner.h"
#include "tokenizer/tokenizer.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *name;
    int base;      /* ggml type of most matrices */
    int km;        /* K_M recipe: Q6_K for output, and attn_v / ffn_down of use_more_bits layers */
    int file_type; /* llama.cpp's general.file_type (LLAMA_FTYPE_MOSTLY_*) */
} qrecipe;

static const qrecipe recipes[] = {
    {"F32", 0, 0, 0},    {"BF16", 30, 0, 32}, {"F16", 1, 0, 1},    {"Q8_0", 8, 0, 7},   {"Q4_0", 2, 0, 2},   {"Q4_1", 3, 0, 3},
    {"Q5_0", 6, 0, 8},   {"Q5_1", 7, 0, 9},   {"Q4_K", 12, 0, 14}, {"Q5_K", 13, 0, 16},
    {"Q6_K", 14, 0, 18}, {"Q4_K_M", 12, 1, 15}, {"Q5_K_M", 13, 1, 17},
};

static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static const cke_qtype_ops *qops(int t) { return t > 0 && t < CKE_QTYPE_COUNT ? cke_ktable_for(CKE_ISA_REF)->qops[t] : NULL; }

/* the type a row of ne0 elements can take when `want` does not fit */
static int fallback(int want, int64_t ne0) {
    if (ne0 % 32 == 0) {
        if (want == 12) return 6;  /* q4_K -> q5_0 */
        if (want == 13) return 7;  /* q5_K -> q5_1 */
        if (want == 14) return 8;  /* q6_K -> q8_0 */
    }
    return 1; /* f16 */
}

static void progress(const char *what, int64_t done, int64_t total) {
    int w = 40, fill = total ? (int)(w * done / total) : w;
    fprintf(stderr, "\r[%.*s%*s] %3d%% %-40.40s", fill, "========================================", w - fill, "",
            total ? (int)(100 * done / total) : 100, what);
    fflush(stderr);
}

/* one input tensor, from a GGUF or from the model exporter */
typedef struct {
    const char *name;
    int ndim;
    int64_t ne[4];
    int type;
    const void *data;
    int64_t nbytes;
} qsrc;

static bool is_gguf(const char *path) {
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    bool yes = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f) fclose(f);
    return yes;
}

/* Text that tells the pre-tokenizers apart: contractions in both cases, digit runs, CJK,
 * accents, punctuation runs, newlines and space runs. */
static const char PRE_PROBE[] =
    "Hello world! It's 2024-11-26; WE'LL test 1234567 numbers, 3.14159 and x=y+z*2.\n\n"
    "  Indented\tline with  two  spaces... \"Quoted\" (parens) [brackets] {braces} <tags> #hash @at\n"
    "caf\xc3\xa9 na\xc3\xafve \xc3\x9c" "ber \xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x99\x82 "
    "I've they're she'd you'll 's 'T\r\n   \n end";

/* the model's tokenizer (tokenizer.json, tokenizer.bin) as tokenizer.ggml.* metadata */
static cke_status write_tokenizer(const cke_model *m, cke_gguf_writer *w, cke_err *e) {
    if (m->tok.source == CKE_TOK_NONE || !m->tok.path) {
        fprintf(stderr, "note: %s has no tokenizer; the GGUF carries none (cke compile --tokenizer can add one)\n", m->path);
        return CKE_OK;
    }
    cke_tok *t = NULL;
    cke_status st = cke_tok_load(m->tok.path, &t, e);
    if (st) return st;
    char pre[64] = "";
    /* the name llama.cpp's converter gives the family's tokenizer, when it splits the same way */
    const char *prefer = m->arch == CKE_ARCH_QWEN2 || m->arch == CKE_ARCH_QWEN3 ? "qwen2"
                         : m->arch == CKE_ARCH_GPT2                            ? "gpt-2"
                                                                               : "llama-bpe";
    if (cke_tok_kind_of(t) == CKE_TOK_BPE) st = cke_tok_match_gguf_pre(t, prefer, PRE_PROBE, sizeof PRE_PROBE - 1, pre, sizeof pre, e);
    if (!st && cke_tok_normalizes_nfc(t))
        fprintf(stderr, "note: %s normalizes text to NFC; GGUF has no key for that (llama.cpp does not normalize), so "
                        "text in decomposed form tokenizes differently from the GGUF\n", m->tok.path);
    if (!st) st = cke_tok_write_gguf(t, w, pre[0] ? pre : NULL, e);
    cke_tok_free(t);
    return st;
}

int cke_cli_quantize(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: cke quantize IN OUT.gguf TYPE   (IN: a GGUF, a Hugging Face directory or a llama2.c checkpoint)\n  TYPE: F32 BF16 F16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q4_K_M Q5_K_M\n");
        return 2;
    }
    const qrecipe *rc = NULL;
    for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
        if (!strcasecmp(argv[3], recipes[i].name)) rc = &recipes[i];
    if (!rc) { fprintf(stderr, "cke quantize: unknown type '%s'\n", argv[3]); return 2; }
    cke_err e = {0};
    cke_gguf *g = NULL;
    cke_gguf_writer *w = NULL;
    cke_model *m = NULL;
    cke_xtensor *xt = NULL;
    int64_t nxt = 0;
    qsrc *src = NULL;
    int64_t nt = 0;
    cke_status st = cke_gguf_writer_new(&w, &e);
    if (st) goto fail;
    if (is_gguf(argv[1])) {
        if ((st = cke_gguf_open(argv[1], &g, &e))) goto fail;
        for (int64_t i = 0; i < cke_gguf_n_kv(g) && !st; i++) {
            const cke_gguf_kv *kv = cke_gguf_kv_at(g, i);
            if (!strcmp(kv->key, "general.file_type") || !strcmp(kv->key, "general.quantization_version")) continue;
            st = cke_gguf_writer_copy_kv(w, g, kv, &e);
        }
        nt = cke_gguf_n_tensors(g);
        src = calloc(nt > 0 ? (size_t)nt : 1, sizeof *src);
        if (!src) { st = cke_fail(&e, CKE_ERR_NOMEM, "out of memory"); goto fail; }
        for (int64_t i = 0; i < nt; i++) {
            const cke_gguf_tensor *t = cke_gguf_tensor_at(g, i);
            src[i] = (qsrc){t->name, t->ndim, {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}, (int)t->type, t->data, t->nbytes};
        }
    } else { /* a Hugging Face directory or a llama2.c checkpoint */
        if ((st = cke_model_open(argv[1], &m, &e))) goto fail;
        if ((st = cke_model_export_gguf(m, w, &xt, &nxt, &e))) goto fail;
        if ((st = write_tokenizer(m, w, &e))) goto fail;
        nt = nxt;
        src = calloc(nt > 0 ? (size_t)nt : 1, sizeof *src);
        if (!src) { st = cke_fail(&e, CKE_ERR_NOMEM, "out of memory"); goto fail; }
        for (int64_t i = 0; i < nt; i++)
            src[i] = (qsrc){xt[i].name, xt[i].ndim, {xt[i].ne[0], xt[i].ne[1], xt[i].ne[2], xt[i].ne[3]}, CKE_DT_F32, xt[i].data,
                            (int64_t)sizeof(float) * xt[i].ne[0] * xt[i].ne[1] * xt[i].ne[2] * xt[i].ne[3]};
    }
    if (!st) st = cke_gguf_writer_set_u32(w, "general.file_type", (uint32_t)rc->file_type, &e);
    if (!st) st = cke_gguf_writer_set_u32(w, "general.quantization_version", 2, &e);
    if (st) goto fail;

    int64_t n_layer = 0, total = 0, done = 0;
    for (int64_t i = 0; i < nt; i++) {
        int l;
        const qsrc *t = &src[i];
        if (sscanf(t->name, "blk.%d.", &l) == 1 && l + 1 > n_layer) n_layer = l + 1;
        total += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    void **bufs = calloc(nt > 0 ? (size_t)nt : 1, sizeof(void *));
    if (!bufs) { st = cke_fail(&e, CKE_ERR_NOMEM, "out of memory"); goto fail; }
    int64_t in_bytes = 0, out_bytes = 0;
    for (int64_t i = 0; i < nt && !st; i++) {
        const qsrc *t = &src[i];
        int64_t ne0 = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3], n = ne0 * rows;
        int l = -1;
        sscanf(t->name, "blk.%d.", &l);
        int want = rc->base;
        if (t->ndim < 2) want = 0; /* norms, biases: f32 */
        else if (rc->km && !strcmp(t->name, "output.weight")) want = 14;
        else if (rc->km && l >= 0 && (strstr(t->name, ".attn_v.") || strstr(t->name, ".ffn_down.")) &&
                 use_more_bits(l, (int)n_layer))
            want = 14;
        if (want && ne0 % qops(want)->blck) {
            int fb = fallback(want, ne0);
            fprintf(stderr, "\rnote: %s has rows of %lld, not a multiple of %s's %lld: stored as %s\n", t->name,
                    (long long)ne0, qops(want)->name, (long long)qops(want)->blck, qops(fb)->name);
            want = fb;
        }
        /* source as f32 */
        float *f = malloc((size_t)n * sizeof(float));
        if (!f) { st = cke_fail(&e, CKE_ERR_NOMEM, "out of memory for %s", t->name); break; }
        const cke_dtype_traits *tr = cke_dtype_traits_of((cke_dtype)t->type);
        if (tr && tr->quantized) {
            const cke_qtype_ops *sq = qops(t->type);
            if (!sq) { free(f); st = cke_fail(&e, CKE_ERR_UNSUPPORTED, "%s is %s, which cke cannot read", t->name, cke_dtype_name((cke_dtype)t->type)); break; }
            sq->dequantize_row(f, t->data, n);
        } else if ((st = cke_dtype_to_f32(f, (cke_dtype)t->type, t->data, n, &e))) { free(f); break; }
        in_bytes += t->nbytes;
        if (!want) {
            bufs[i] = f;
            out_bytes += n * 4;
        } else {
            const cke_qtype_ops *q = qops(want);
            size_t rs = (size_t)(ne0 / q->blck) * (size_t)q->type_size;
            char *dst = malloc(rs * (size_t)rows);
            if (!dst) { free(f); st = cke_fail(&e, CKE_ERR_NOMEM, "out of memory for %s", t->name); break; }
            /* rows are independent: the bytes do not depend on how threads split them */
#pragma omp parallel for schedule(dynamic, 16)
            for (int64_t r = 0; r < rows; r++) q->quantize_row(dst + (size_t)r * rs, f + r * ne0, ne0);
            free(f);
            bufs[i] = dst;
            out_bytes += (int64_t)(rs * (size_t)rows);
        }
        st = cke_gguf_writer_add_tensor(w, t->name, want ? (cke_dtype)want : CKE_DT_F32, t->ndim, t->ne, bufs[i], &e);
        done += n;
        progress(t->name, done, total);
    }
    fprintf(stderr, "\n");
    if (!st) st = cke_gguf_writer_write(w, argv[2], &e);
    for (int64_t i = 0; i < nt; i++) free(bufs[i]);
    free(bufs);
    if (st) goto fail;
    fprintf(stderr, "cke quantize: %s -> %s (%s): %.2f MiB -> %.2f MiB\n", argv[1], argv[2], rc->name,
            (double)in_bytes / (1 << 20), (double)out_bytes / (1 << 20));
    free(src);
    cke_xtensors_free(xt, nxt);
    cke_model_close(m);
    cke_gguf_writer_free(w);
    cke_gguf_close(g);
    return 0;
fail:
    fprintf(stderr, "cke quantize: %s: %s\n", cke_status_name(st), e.msg);
    free(src);
    cke_xtensors_free(xt, nxt);
    cke_model_close(m);
    cke_gguf_writer_free(w);
    cke_gguf_close(g);
    return 1;
}

/* ------------------------------------------------------------------ perplexity */

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *b = malloc(cap + 1);
    while (b && (k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *nb = realloc(b, 2 * cap + 1);
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

int cke_cli_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *tok = NULL;
    long long ctx = 128, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ctx") && i + 1 < argc) ctx = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok = argv[++i];
        else if (!model) model = argv[i];
        else if (!file) file = argv[i];
        else model = NULL, i = argc;
    }
    if (!model || !file || ctx < 4 || threads < 1) {
        fprintf(stderr, "usage: cke perplexity MODEL|DIR FILE.txt [--ctx N (128)] [--threads N] [--tokenizer FILE]\n");
        return 2;
    }
    size_t len = 0;
    char *text = read_text(file, &len);
    if (!text) { fprintf(stderr, "cke perplexity: cannot read %s\n", file); return 1; }
    char dir[PATH_MAX];
    if (cke_cli_model_dir(model, tok, 0, dir, sizeof dir)) { free(text); return 1; }
    cke_err e = {0};
    cke_runner *r = NULL;
    cke_status s = cke_runner_open(dir, (int)threads, &r, &e);
    if (s) { fprintf(stderr, "cke perplexity: %s\n", e.msg); free(text); return 1; }
    const ckm_api *api = r->api;
    if (!r->tok) { fprintf(stderr, "cke perplexity: %s has no tokenizer\n", dir); cke_runner_close(r); free(text); return 1; }
    if (ctx > api->ctx) ctx = api->ctx;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    cke_tok_encode_opts eo = CKE_TOK_ENCODE_DEFAULTS;
    eo.add_bos = 0;
    s = cke_tok_encode(r->tok, text, len, &eo, &ids, &n_ids, &e);
    free(text);
    if (s) { fprintf(stderr, "cke perplexity: %s\n", e.msg); cke_runner_close(r); return 1; }
    int32_t bos = cke_tok_bos(r->tok);
    /* windows of ctx-1 text tokens after BOS; stride half a window */
    int64_t W = ctx - 1, stride = W / 2, n = (int64_t)n_ids;
    double nll = 0;
    int64_t scored = 0;
    int rc = 0;
    for (int64_t start = 0; start < n && !rc; start += stride) {
        int64_t end = start + W < n ? start + W : n;
        int64_t first_scored = start == 0 ? start : start + (W - stride);
        api->reset(r->m);
        if (api->decode(r->m, bos) != 0) { rc = 1; break; }
        for (int64_t t = start; t < end; t++) {
            if (t >= first_scored) {
                const float *lg = api->logits(r->m); /* prediction of token t */
                double mx = lg[0], z = 0;
                for (int64_t v = 1; v < api->vocab; v++) mx = lg[v] > mx ? lg[v] : mx;
                for (int64_t v = 0; v < api->vocab; v++) z += exp(lg[v] - mx);
                nll += mx + log(z) - lg[ids[t]];
                scored++;
            }
            if (t + 1 < end && api->decode(r->m, ids[t]) != 0) { rc = 1; break; }
        }
        if (end == n) break;
    }
    if (rc) fprintf(stderr, "cke perplexity: %s\n", api->last_error(r->m));
    else printf("perplexity %.4f over %lld tokens (ctx %lld, %lld tokens of text)\n", exp(nll / (double)scored),
                (long long)scored, ctx, (long long)n);
    free(ids);
    cke_runner_close(r);
    return rc;
}
