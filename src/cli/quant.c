/* cke quantize IN OUT.gguf TYPE: every matrix re-encoded in a ggml block format with cke's
 * reference quantizers (bit-identical to ggml's for the same floats), so the output reads in cke
 * and in other GGUF readers. IN is a GGUF file (all metadata, tokenizer included, copied
 * verbatim) or anything cke_model_open reads -- a Hugging Face directory, a llama2.c checkpoint --
 * written in llama.cpp's GGUF conventions (formats/model_export.c) with its tokenizer converted to
 * tokenizer.ggml.* metadata (the pre-tokenizer named by matching its behaviour).
 *
 * TYPE: F32 (every tensor dequantized), BF16, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K
 * (every matrix in that format, but the output head), or a recipe after llama.cpp's:
 *   Q4_K_M / Q5_K_M: Q4_K / Q5_K everywhere, except attn_v and ffn_down of the layers llama.cpp's
 *   use_more_bits picks (the first and last eighth of the layers and every third in between) in
 *   Q6_K.
 * As llama.cpp: the output head -- output.weight, or token_embd.weight when the output is tied to
 * it -- is Q6_K for every block format but Q8_0. 1-D tensors (norms, biases) stay F32. A matrix
 * whose rows are not whole blocks falls back to a type that fits (K formats: Q5_0 / Q5_1 / Q8_0
 * as llama.cpp does, when rows are multiples of 32; else F16), summed up in one line on stderr.
 *
 * The input must load as a model (cke_model_open: refused with the loader's message otherwise);
 * an input already in block formats is refused unless --allow-requantize (or TYPE is F32, which
 * only dequantizes).
 *
 * (cke perplexity: cli/perplexity.c) */
#include "cli/quant.h"

#include "cke/kernels.h"
#include "cli/run.h"
#include "cli/util.h"
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
#include <unistd.h>

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
    if (!isatty(2)) return; /* a bar redrawn with \r is noise in a log */
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

/* "blk.N." -> N with checked arithmetic, -1 when the name is not a layer's; -2 when N does not
 * fit or is not below n_layer. */
static int64_t layer_of(const char *name, int64_t n_layer) {
    if (strncmp(name, "blk.", 4)) return -1;
    const char *p = name + 4;
    if (*p < '0' || *p > '9') return -1;
    int64_t l = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (l > (INT64_MAX - 9) / 10) return -2;
        l = l * 10 + (*p - '0');
    }
    if (*p != '.') return -1;
    return l < n_layer ? l : -2;
}

/* The type a recipe gives one tensor (before fallbacks). llama.cpp's rules: the output head
 * (output.weight, or token_embd.weight when the output is tied to it) in Q6_K for every block
 * format but Q8_0; K_M recipes: attn_v and ffn_down of use_more_bits layers in Q6_K. */
static int recipe_type(const qrecipe *rc, const char *name, int ndim, int64_t layer, int64_t n_layer, bool tied) {
    if (ndim < 2) return 0; /* norms, biases: f32 */
    if (strstr(name, ".ffn_gate_inp.")) return 0; /* a MoE router stays f32, as llama.cpp keeps it: its top-k is a cliff */
    const cke_dtype_traits *tr = cke_dtype_traits_of((cke_dtype)rc->base);
    bool head = !strcmp(name, "output.weight") || (tied && !strcmp(name, "token_embd.weight"));
    if (head && tr && tr->quantized && rc->base != 8) return 14;
    if (rc->km && layer >= 0 && (strstr(name, ".attn_v.") || strstr(name, ".ffn_down.")) &&
        use_more_bits((int)layer, (int)n_layer))
        return 14;
    return rc->base;
}

/* fallbacks, counted per (wanted type, stored type, row length) for one summary line */
typedef struct {
    int want, got;
    int64_t ne0, count;
} qfallback;

static void usage(FILE *f) {
    fprintf(f, "usage: cke quantize IN OUT.gguf TYPE [--allow-requantize]\n"
               "  IN: a GGUF, a Hugging Face directory or a llama2.c checkpoint (it must load as a model)\n"
               "  TYPE: F32 BF16 F16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q4_K_M Q5_K_M\n"
               "  as llama.cpp: the output head (or the token embedding it is tied to) in Q6_K for the block\n"
               "  formats below Q8_0; Q4_K_M / Q5_K_M: attn_v and ffn_down of some layers in Q6_K too;\n"
               "  rows that are not whole blocks fall back (K -> Q5_0 / Q5_1 / Q8_0, else F16)\n"
               "  --allow-requantize  quantize an input whose matrices are already quantized (loses precision\n"
               "                      twice; not needed for F32, which only dequantizes)\n");
}

int cke_cli_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = NULL;
    int allow_requant = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cke_cli_is_help(a)) { usage(stdout); return 0; }
        else if (!strcmp(a, "--allow-requantize")) allow_requant = 1;
        else if (a[0] == '-' && a[1]) return cke_cli_unknown("quantize", a);
        else if (!in) in = a;
        else if (!out) out = a;
        else if (!type) type = a;
        else return cke_cli_unknown("quantize", a);
    }
    if (!in || !out || !type) { usage(stderr); return 2; }
    const qrecipe *rc = NULL;
    for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
        if (!strcasecmp(type, recipes[i].name)) rc = &recipes[i];
    if (!rc) { fprintf(stderr, "cke quantize: unknown type '%s' (cke quantize --help)\n", type); return 2; }
    cke_err e = {0};
    cke_gguf *g = NULL;
    cke_gguf_writer *w = NULL;
    cke_model *m = NULL;
    cke_xtensor *xt = NULL;
    int64_t nxt = 0;
    qsrc *src = NULL;
    int64_t nt = 0;
    void **bufs = NULL;
    qfallback *fbs = NULL;
    int nfb = 0;
    /* the input must be a model cke loads: its loader's message otherwise */
    cke_status st = cke_model_open(in, &m, &e);
    if (st) goto fail;
    if ((st = cke_gguf_writer_new(&w, &e))) goto fail;
    if (is_gguf(in)) {
        if ((st = cke_gguf_open(in, &g, &e))) goto fail;
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
        if ((st = cke_model_export_gguf(m, w, &xt, &nxt, &e))) goto fail;
        if ((st = write_tokenizer(m, w, &e))) goto fail;
        nt = nxt;
        src = calloc(nt > 0 ? (size_t)nt : 1, sizeof *src);
        if (!src) { st = cke_fail(&e, CKE_ERR_NOMEM, "out of memory"); goto fail; }
        for (int64_t i = 0; i < nt; i++)
            src[i] = (qsrc){xt[i].name, xt[i].ndim, {xt[i].ne[0], xt[i].ne[1], xt[i].ne[2], xt[i].ne[3]}, CKE_DT_F32, xt[i].data,
                            (int64_t)sizeof(float) * xt[i].ne[0] * xt[i].ne[1] * xt[i].ne[2] * xt[i].ne[3]};
    }
    if (st) goto fail;

    const int64_t n_layer = m->hp.n_layers;
    int64_t total = 0, done = 0, n_quant_in = 0, per_type[64] = {0};
    int quant_in_type = 0; /* the most frequent block format of the input */
    bool has_output = false;
    for (int64_t i = 0; i < nt; i++) {
        const qsrc *t = &src[i];
        if (layer_of(t->name, n_layer) == -2) {
            st = cke_fail(&e, CKE_ERR_FORMAT, "tensor %s: the layer index is not one of the model's %lld layers", t->name,
                          (long long)n_layer);
            goto fail;
        }
        const cke_dtype_traits *tr = cke_dtype_traits_of((cke_dtype)t->type);
        if (tr && tr->quantized && t->type >= 0 && t->type < 64) {
            n_quant_in++;
            if (++per_type[t->type] > per_type[quant_in_type]) quant_in_type = t->type;
        }
        has_output |= !strcmp(t->name, "output.weight");
        total += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    if (n_quant_in && !allow_requant && rc->base != 0) { /* to F32 is exact: dequantizing, not requantizing */
        st = cke_fail(&e, CKE_ERR_ARG, "%s is already quantized (%lld of %lld tensors in block formats, mostly %s): "
                      "quantizing it again loses precision twice; --allow-requantize to do it anyway", in,
                      (long long)n_quant_in, (long long)nt, cke_dtype_name((cke_dtype)quant_in_type));
        goto fail;
    }
    if ((st = cke_gguf_writer_set_u32(w, "general.file_type", (uint32_t)rc->file_type, &e))) goto fail;
    if ((st = cke_gguf_writer_set_u32(w, "general.quantization_version", 2, &e))) goto fail;
    bufs = calloc(nt > 0 ? (size_t)nt : 1, sizeof(void *));
    fbs = calloc(nt > 0 ? (size_t)nt : 1, sizeof *fbs);
    if (!bufs || !fbs) { st = cke_fail(&e, CKE_ERR_NOMEM, "out of memory"); goto fail; }
    int64_t in_bytes = 0, out_bytes = 0, n_fell = 0;
    for (int64_t i = 0; i < nt && !st; i++) {
        const qsrc *t = &src[i];
        int64_t ne0 = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3], n = ne0 * rows;
        int want = recipe_type(rc, t->name, t->ndim, layer_of(t->name, n_layer), n_layer, !has_output);
        if (want && ne0 % qops(want)->blck) {
            int fb = fallback(want, ne0), k = 0;
            while (k < nfb && !(fbs[k].want == want && fbs[k].got == fb && fbs[k].ne0 == ne0)) k++;
            if (k == nfb) fbs[nfb++] = (qfallback){want, fb, ne0, 0};
            fbs[k].count++;
            n_fell++;
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
    if (isatty(2)) fprintf(stderr, "\n");
    if (nfb) { /* one line: "35 of 57 tensors fell back: 35 x Q4_K -> Q5_0 (rows of 64 not a multiple of 256)" */
        fprintf(stderr, "cke quantize: %lld of %lld tensors fell back:", (long long)n_fell, (long long)nt);
        for (int k = 0; k < nfb; k++)
            fprintf(stderr, "%s %lld x %s -> %s (rows of %lld not a multiple of %lld)", k ? "," : "", (long long)fbs[k].count,
                    qops(fbs[k].want)->name, qops(fbs[k].got)->name, (long long)fbs[k].ne0, (long long)qops(fbs[k].want)->blck);
        fprintf(stderr, "\n");
    }
    if (!st) st = cke_gguf_writer_write(w, out, &e);
    if (st) goto fail;
    fprintf(stderr, "cke quantize: %s -> %s (%s): %.2f MiB -> %.2f MiB\n", in, out, rc->name,
            (double)in_bytes / (1 << 20), (double)out_bytes / (1 << 20));
fail:
    if (st) fprintf(stderr, "cke quantize: %s: %s\n", cke_status_name(st), e.msg);
    for (int64_t i = 0; bufs && i < nt; i++) free(bufs[i]);
    free(bufs);
    free(fbs);
    free(src);
    cke_xtensors_free(xt, nxt);
    cke_model_close(m);
    cke_gguf_writer_free(w);
    cke_gguf_close(g);
    return st ? 1 : 0;
}
