/* Model-format tests: real fixtures (CKE_MODELS, default ../shared/models; SKIP when absent),
 * writer round trips, and malformed input (every truncation + random byte flips) that must
 * give an error status, never a crash (the SAN build runs this too).
 * One PASS/FAIL/SKIP line per check; ends with "N passed, N failed". */
#include "formats/dtype.h"
#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "formats/model.h"
#include "formats/model_priv.h"
#include "formats/safetensors.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_pass, n_fail;
static char models[1024], tmpdir[256];

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok) n_pass++; else n_fail++;
}

static void skip(const char *what) { printf("SKIP %s (fixture missing under %s)\n", what, models); }

static bool exists(const char *p) { struct stat sb; return stat(p, &sb) == 0; }

static const char *mpath(const char *rel) {
    static char buf[4][2048];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", models, rel);
    return b;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* splitmix64, fixed seed */
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static bool write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* ---- dtype ---- */
static void test_dtype(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = cke_f16_to_f32((uint16_t)h);
        if (f != f) continue;
        if (cke_f32_to_f16(f) != h) bad++;
    }
    check(bad == 0, "f16 -> f32 -> f16 round trip of all 65536 non-NaN halves (%d bad)", bad);
    check(cke_f32_to_f16(65520.f) == 0x7c00 && cke_f32_to_f16(65519.f) == 0x7bff && cke_f32_to_f16(1e-8f) == 0 &&
              cke_f32_to_f16(5.96e-8f) == 1 && cke_f16_to_f32(0x3c00) == 1.0f,
          "f16 rounding edges (overflow, subnormals)");
    check(cke_bf16_to_f32(cke_f32_to_bf16(1.5f)) == 1.5f && cke_f32_to_bf16(1.00390625f) == 0x3f80 &&
              cke_f32_to_bf16(1.01171875f) == 0x3f82,
          "bf16 conversion, round to nearest even");
    const cke_dtype_traits *q = cke_dtype_traits_of(CKE_DT_Q4_K), *q8 = cke_dtype_traits_of(CKE_DT_Q8_0);
    check(q && q->blck == 256 && q->type_size == 144 && q8 && q8->blck == 32 && q8->type_size == 34 &&
              !cke_dtype_valid(4) && cke_dtype_valid(CKE_DT_IQ4_XS) && cke_dtype_valid(CKE_DT_BF16),
          "ggml type traits (q4_K 256/144, q8_0 32/34, id 4 retired)");
    int64_t ne[2] = {33, 2}, nb;
    check(cke_dtype_nbytes(CKE_DT_Q8_0, 2, ne, &nb, NULL) == CKE_ERR_FORMAT, "nbytes rejects a row not a multiple of the block");
    int64_t big[4] = {INT64_C(1) << 40, INT64_C(1) << 30, 1, 1};
    check(cke_dtype_nbytes(CKE_DT_F32, 4, big, &nb, NULL) == CKE_ERR_FORMAT, "nbytes rejects an overflowing size");
}

/* ---- real models ---- */
static bool close_f16(float a, float b) { return fabsf(a - b) <= fabsf(a) * (1.0f / 2048) + 6e-8f; }

static void compare_models(const cke_model *ref, const cke_model *m, bool f16, const char *what) {
    int bad = 0, compared = 0;
    float *x = NULL, *y = NULL;
    for (int64_t i = 0; i < ref->n_tensors; i++) {
        const cke_model_tensor *a = &ref->tensors[i];
        const cke_model_tensor *b = cke_model_find(m, a->name);
        if (!b) { bad++; printf("   %s: %s missing\n", what, a->name); continue; }
        int64_t n = cke_model_tensor_numel(a);
        if (cke_model_tensor_numel(b) != n || a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof a->shape)) {
            bad++; printf("   %s: %s shape differs\n", what, a->name); continue;
        }
        x = realloc(x, (size_t)n * 4); y = realloc(y, (size_t)n * 4);
        cke_model_tensor_to_f32(a, x, NULL);
        cke_model_tensor_to_f32(b, y, NULL);
        for (int64_t j = 0; j < n; j++)
            if (f16 && b->dtype == CKE_DT_F16 ? !close_f16(x[j], y[j]) : x[j] != y[j]) {
                bad++; printf("   %s: %s[%lld] %g vs %g\n", what, a->name, (long long)j, x[j], y[j]); break;
            }
        compared++;
    }
    /* llama2.c ties the classifier; the GGUF stores "output" = the same matrix */
    const cke_model_tensor *e = cke_model_find(ref, "tok_embd"), *o = cke_model_find(m, "output");
    if (ref->hp.tied_output && e && o) {
        int64_t n = cke_model_tensor_numel(e);
        x = realloc(x, (size_t)n * 4); y = realloc(y, (size_t)n * 4);
        cke_model_tensor_to_f32(e, x, NULL);
        cke_model_tensor_to_f32(o, y, NULL);
        for (int64_t j = 0; j < n; j++)
            if (f16 && o->dtype == CKE_DT_F16 ? !close_f16(x[j], y[j]) : x[j] != y[j]) { bad++; break; }
        compared++;
    }
    free(x); free(y);
    check(bad == 0 && compared == ref->n_tensors + 1, "%s: %d tensors agree numerically with the .bin (%d bad)",
          what, compared, bad);
}

static void test_stories(void) {
    const char *bin = mpath("stories260K/stories260K.bin"), *g32 = mpath("stories260K/stories260K.gguf"),
               *g16 = mpath("stories260K/stories260K-F16.gguf");
    if (!exists(bin) || !exists(g32) || !exists(g16)) { skip("stories260K"); return; }
    cke_model *mb = NULL, *m32 = NULL, *m16 = NULL;
    cke_err e = {0};
    cke_status s = cke_model_open(bin, &mb, &e);
    check(s == CKE_OK, "stories260K.bin opens (%s)", s ? e.msg : "ok");
    s = cke_model_open(g32, &m32, &e);
    check(s == CKE_OK, "stories260K.gguf opens (%s)", s ? e.msg : "ok");
    s = cke_model_open(g16, &m16, &e);
    check(s == CKE_OK, "stories260K-F16.gguf opens (%s)", s ? e.msg : "ok");
    if (!mb || !m32 || !m16) goto out;
    const cke_model *all[3] = {mb, m32, m16};
    const char *nm[3] = {"bin", "gguf", "gguf-f16"};
    for (int i = 0; i < 3; i++) {
        const cke_hparams *h = &all[i]->hp;
        check(all[i]->arch == CKE_ARCH_LLAMA && h->dim == 64 && h->ffn_dim == 172 && h->n_layers == 5 &&
                  h->n_heads == 8 && h->n_kv_heads == 4 && h->vocab == 512 && h->head_dim == 8 &&
                  h->rope.theta == 10000 && fabs(h->norm_eps - 1e-5) < 1e-9 && h->rope.layout == CKE_ROPE_INTERLEAVED &&
                  h->gated_ffn && h->act == CKE_ACT_SILU && h->ctx_len == (i ? 2048 : 512),
              "stories260K %s: hyperparameters match the README", nm[i]);
    }
    check(mb->hp.tied_output && mb->n_tensors == 47 && cke_model_n_params(mb) == 260032,
          "stories260K.bin: tied classifier, 47 tensors, 260032 params");
    check(mb->tok.source == CKE_TOK_LLAMA2C_BIN && mb->tok.path && strstr(mb->tok.path, "tok512.bin"),
          "stories260K.bin: tokenizer tok512.bin found next to it");
    check(m32->tok.source == CKE_TOK_GGUF && m32->tok.n_tokens == 512 && m32->tok.model && !strcmp(m32->tok.model, "llama"),
          "stories260K.gguf: tokenizer in GGUF metadata, 512 tokens, model llama");
    const cke_model_tensor *q16 = cke_model_find(m16, "l0.attn_q"), *n16 = cke_model_find(m16, "l0.attn_norm");
    check(q16 && q16->dtype == CKE_DT_F16 && n16 && n16->dtype == CKE_DT_F32, "stories260K-F16: F16 matrices, F32 norms");
    compare_models(mb, m32, false, "stories260K.gguf");
    compare_models(mb, m16, true, "stories260K-F16.gguf");
out:
    cke_model_close(mb); cke_model_close(m32); cke_model_close(m16);
}

static void test_tiny_llama(void) {
    const char *p = mpath("tiny-random-llama/llama-2-tiny-random.gguf");
    if (!exists(p)) { skip("tiny-random-llama"); return; }
    cke_model *m;
    cke_err e = {0};
    cke_status s = cke_model_open(p, &m, &e);
    check(s == CKE_OK, "tiny-random-llama GGUF opens (%s)", s ? e.msg : "ok");
    if (s) return;
    const cke_model_tensor *o = cke_model_find(m, "output"), *te = cke_model_find(m, "tok_embd");
    check(m->hp.dim == 8 && m->hp.n_layers == 1 && m->hp.ffn_dim == 32 && m->hp.n_heads == 2 && m->hp.n_kv_heads == 2 &&
              m->hp.rope.dims == 4 && m->hp.vocab == 32000 && !m->hp.tied_output && o && o->dtype == CKE_DT_F16 &&
              o->shape[0] == 32000 && o->shape[1] == 8 && te && m->tok.n_tokens == 32000,
          "tiny-random-llama: hparams, untied F16 output [32000, 8], 32000-token vocab");
    float *x = malloc(32000 * 8 * 4);
    cke_model_tensor_to_f32(o, x, NULL);
    bool finite = true;
    for (int i = 0; i < 32000 * 8; i++) finite &= isfinite(x[i]);
    free(x);
    check(finite, "tiny-random-llama: output converts to finite floats");
    cke_model_close(m);
}

static void test_vocab_ggufs(void) {
    static const char *const v[] = {"baichuan", "bert-bge", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2",
                                    "gpt-neox", "llama-spm", "mpt", "phi-3", "refact", "starcoder"};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tokenizers/ggml-vocab-%s.gguf", v[i]);
        const char *p = mpath(rel);
        if (!exists(p)) { skip(rel); continue; }
        cke_gguf *g;
        cke_err e = {0};
        cke_status s = cke_gguf_open(p, &g, &e);
        if (s) { check(false, "%s opens: %s", rel, e.msg); continue; }
        cke_gguf_type et;
        uint64_t n = 0;
        const char *tok, *model;
        size_t tl, ml;
        bool ok = cke_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n) == CKE_OK && et == CKE_GGUF_STR && n > 1000 &&
                  cke_gguf_arr_str(g, "tokenizer.ggml.tokens", n - 1, &tok, &tl) == CKE_OK &&
                  cke_gguf_arr_str(g, "tokenizer.ggml.tokens", n, &tok, &tl) == CKE_ERR_RANGE &&
                  cke_gguf_get_str(g, "tokenizer.ggml.model", &model, &ml) == CKE_OK && cke_gguf_n_tensors(g) == 0;
        check(ok, "%s: v%u, %llu tokens, model '%.*s'", rel, cke_gguf_version(g), (unsigned long long)n, (int)(ok ? ml : 0),
              ok ? model : "");
        cke_gguf_close(g);
    }
}

static void test_gpt2(void) {
    const char *p = mpath("tiny-random-gpt2");
    if (!exists(mpath("tiny-random-gpt2/model.safetensors"))) { skip("tiny-random-gpt2"); return; }
    cke_safetensors *st;
    cke_err e = {0};
    cke_status s = cke_safetensors_open(mpath("tiny-random-gpt2/model.safetensors"), &st, &e);
    int64_t params = 0;
    if (!s)
        for (int64_t i = 0; i < cke_safetensors_n_tensors(st); i++) {
            const cke_safetensors_tensor *t = cke_safetensors_tensor_at(st, i);
            int64_t n = 1;
            for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
            params += n;
        }
    check(!s && cke_safetensors_n_tensors(st) == 64 && params == 111968,
          "tiny-random-gpt2 safetensors: 64 tensors, 111968 params (%s)", s ? e.msg : "ok");
    cke_model *m;
    s = cke_model_open(p, &m, &e);
    check(s == CKE_OK, "tiny-random-gpt2 HF dir opens as a model (%s)", s ? e.msg : "ok");
    if (!s) {
        check(m->arch == CKE_ARCH_GPT2 && m->hp.dim == 32 && m->hp.n_layers == 5 && m->hp.n_heads == 4 &&
                  m->hp.vocab == 1000 && m->hp.ctx_len == 512 && m->hp.act == CKE_ACT_GELU_TANH &&
                  m->hp.norm == CKE_NORM_LAYER && m->hp.tied_output && m->hp.learned_pos &&
                  cke_model_n_params(m) == 111968 && m->tok.source == CKE_TOK_HF_JSON,
              "tiny-random-gpt2: hparams, 111968 params after split/transpose, tokenizer.json");
        /* l2.attn_k[i][j] == c_attn[j][32 + i] (Conv1D [in, out] transposed and split) */
        const cke_safetensors_tensor *ca = cke_safetensors_find(st, "h.2.attn.c_attn.weight");
        const cke_model_tensor *k = cke_model_find(m, "l2.attn_k"), *up = cke_model_find(m, "l1.ffn_up");
        const cke_safetensors_tensor *fc = cke_safetensors_find(st, "h.1.mlp.c_fc.weight");
        int bad = 0;
        if (ca && k && k->shape[0] == 32 && k->shape[1] == 32 && fc && up) {
            for (int i = 0; i < 32; i++)
                for (int j = 0; j < 32; j++) {
                    float a, b;
                    memcpy(&a, (const uint8_t *)k->data + 4 * (i * 32 + j), 4);
                    memcpy(&b, (const uint8_t *)ca->data + 4 * (j * 96 + 32 + i), 4);
                    bad += a != b;
                }
            for (int i = 0; i < 128; i++)
                for (int j = 0; j < 32; j++) {
                    float a, b;
                    memcpy(&a, (const uint8_t *)up->data + 4 * (i * 32 + j), 4);
                    memcpy(&b, (const uint8_t *)fc->data + 4 * (j * 128 + i), 4);
                    bad += a != b;
                }
        } else bad = -1;
        check(bad == 0, "tiny-random-gpt2: Conv1D weights transposed to [out, in] and Q|K|V split (%d bad)", bad);
        cke_model_close(m);
    }
    cke_safetensors_close(st);
}

/* ---- GGUF writer round trip ---- */
/* A hand-made GGUF v2 with a nested array [[1,2],[3]] of i16 and one string: checks the reader
 * on a layout the writer cannot make itself. */
static size_t nested_gguf(uint8_t *b) {
    size_t p = 0;
#define PUT(v, n) do { uint64_t t_ = (v); memcpy(b + p, &t_, n); p += n; } while (0)
    memcpy(b, "GGUF", 4); p = 4;
    PUT(2, 4); PUT(0, 8); PUT(2, 8);
    PUT(6, 8); memcpy(b + p, "nested", 6); p += 6;
    PUT(CKE_GGUF_ARR, 4); PUT(CKE_GGUF_ARR, 4); PUT(2, 8);
    PUT(CKE_GGUF_I16, 4); PUT(2, 8); PUT(1, 2); PUT(2, 2);
    PUT(CKE_GGUF_I16, 4); PUT(1, 8); PUT((uint16_t)-3, 2);
    PUT(1, 8); b[p++] = 's'; PUT(CKE_GGUF_STR, 4); PUT(3, 8); memcpy(b + p, "abc", 3); p += 3;
#undef PUT
    return p;
}

static size_t small_gguf_bytes(uint8_t **out); /* writer-made small GGUF, for the bad-input tests */

static void test_gguf_roundtrip(void) {
    uint8_t nb[256];
    size_t nn = nested_gguf(nb);
    cke_gguf *src;
    cke_err e = {0};
    cke_status s = cke_gguf_open_mem(nb, nn, &src, &e);
    const cke_gguf_kv *nk = s ? NULL : cke_gguf_find_kv(src, "nested");
    int64_t v0 = 0, v2 = 0;
    bool nested_ok = nk && nk->val.type == CKE_GGUF_ARR && nk->val.arr.elem == CKE_GGUF_ARR && nk->val.arr.n == 2 &&
                     nk->val.arr.items[1].arr.n == 1 && cke_gguf_arr_i64(&nk->val.arr.items[0], 1, &v0) == CKE_OK &&
                     cke_gguf_arr_i64(&nk->val.arr.items[1], 0, &v2) == CKE_OK && v0 == 2 && v2 == -3;
    check(nested_ok, "GGUF v2 nested array [[1,2],[-3]] parses (%s)", s ? e.msg : "ok");
    if (s) return;

    cke_gguf_writer *w;
    cke_gguf_writer_new(&w, NULL);
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000; int64_t i64 = -(INT64_C(1) << 40);
    cke_gguf_writer_set_scalar(w, "t.u8", CKE_GGUF_U8, &u8, NULL);
    cke_gguf_writer_set_scalar(w, "t.i8", CKE_GGUF_I8, &i8, NULL);
    cke_gguf_writer_set_scalar(w, "t.u16", CKE_GGUF_U16, &u16, NULL);
    cke_gguf_writer_set_scalar(w, "t.i16", CKE_GGUF_I16, &i16, NULL);
    cke_gguf_writer_set_u32(w, "t.u32", 4000000000u, NULL);
    cke_gguf_writer_set_i32(w, "t.i32", -2000000000, NULL);
    cke_gguf_writer_set_f32(w, "t.f32", 0.125f, NULL);
    cke_gguf_writer_set_bool(w, "t.bool", true, NULL);
    cke_gguf_writer_set_str(w, "t.str", "hello", 5, NULL);
    cke_gguf_writer_set_u64(w, "t.u64", UINT64_MAX, NULL);
    cke_gguf_writer_set_scalar(w, "t.i64", CKE_GGUF_I64, &i64, NULL);
    cke_gguf_writer_set_f64(w, "t.f64", 1e300, NULL);
    cke_gguf_writer_set_u32(w, "general.alignment", 64, NULL);
    float fa[3] = {1.5f, -2.f, 3.25f};
    cke_gguf_writer_set_arr(w, "t.arr_f32", CKE_GGUF_F32, fa, 3, NULL);
    const char *strs[3] = {"a", "", "ccc"};
    cke_gguf_writer_set_arr_str(w, "t.arr_str", strs, NULL, 3, NULL);
    cke_gguf_writer_copy_kv(w, src, nk, NULL);
    cke_gguf_writer_set_str(w, "t.str", "world", 5, NULL); /* replaces in place */
    float t1[6] = {1, 2, 3, 4, 5, 6};
    uint16_t t2[40];
    for (int i = 0; i < 40; i++) t2[i] = cke_f32_to_f16((float)i * 0.5f);
    int64_t ne1[2] = {3, 2}, ne2[3] = {10, 2, 2};
    cke_gguf_writer_add_tensor(w, "a", CKE_DT_F32, 2, ne1, t1, NULL);
    cke_gguf_writer_add_tensor(w, "b", CKE_DT_F16, 3, ne2, t2, NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/rt.gguf", tmpdir);
    s = cke_gguf_writer_write(w, path, &e);
    check(s == CKE_OK, "GGUF writer writes %s (%s)", path, s ? e.msg : "ok");
    cke_gguf_writer_free(w);
    cke_gguf_close(src);
    cke_gguf *g;
    s = cke_gguf_open(path, &g, &e);
    check(s == CKE_OK, "GGUF writer output reopens (%s)", s ? e.msg : "ok");
    if (s) return;
    uint64_t u; int64_t i; double d; bool bo; const char *str; size_t sl;
    bool ok = cke_gguf_get_u64(g, "t.u8", &u) == 0 && u == 200 && cke_gguf_get_i64(g, "t.i8", &i) == 0 && i == -100 &&
              cke_gguf_get_u64(g, "t.u16", &u) == 0 && u == 60000 && cke_gguf_get_i64(g, "t.i16", &i) == 0 && i == -30000 &&
              cke_gguf_get_u64(g, "t.u32", &u) == 0 && u == 4000000000u && cke_gguf_get_i64(g, "t.i32", &i) == 0 &&
              i == -2000000000 && cke_gguf_get_f64(g, "t.f32", &d) == 0 && d == 0.125 &&
              cke_gguf_get_bool(g, "t.bool", &bo) == 0 && bo && cke_gguf_get_str(g, "t.str", &str, &sl) == 0 &&
              sl == 5 && !memcmp(str, "world", 5) && cke_gguf_get_u64(g, "t.u64", &u) == 0 && u == UINT64_MAX &&
              cke_gguf_get_i64(g, "t.u64", &i) == CKE_ERR_RANGE && cke_gguf_get_i64(g, "t.i64", &i) == 0 && i == i64 &&
              cke_gguf_get_u64(g, "t.i64", &u) == CKE_ERR_RANGE && cke_gguf_get_f64(g, "t.f64", &d) == 0 && d == 1e300 &&
              cke_gguf_get_u64(g, "t.str", &u) == CKE_ERR_FORMAT && cke_gguf_get_u64(g, "nope", &u) == CKE_ERR_MISSING &&
              cke_gguf_kv_at(g, 8) && !strcmp(cke_gguf_kv_at(g, 8)->key, "t.str");
    check(ok, "GGUF round trip: every scalar type, typed getters, range/type/missing errors, replace keeps order");
    cke_gguf_type et;
    uint64_t n;
    const void *ad = cke_gguf_arr_data(g, "t.arr_f32");
    float f2 = 0;
    if (ad) memcpy(&f2, (const uint8_t *)ad + 8, 4);
    const char *s2 = NULL;
    size_t l2 = 9;
    ok = cke_gguf_get_arr(g, "t.arr_f32", &et, &n) == 0 && et == CKE_GGUF_F32 && n == 3 && f2 == 3.25f &&
         cke_gguf_arr_str(g, "t.arr_str", 1, &s2, &l2) == 0 && l2 == 0 &&
         cke_gguf_arr_str(g, "t.arr_str", 2, &s2, &l2) == 0 && l2 == 3 && !memcmp(s2, "ccc", 3) &&
         cke_gguf_arr_data(g, "t.arr_str") == NULL;
    const cke_gguf_kv *nk2 = cke_gguf_find_kv(g, "nested");
    ok = ok && nk2 && nk2->val.arr.n == 2 && cke_gguf_arr_i64(&nk2->val.arr.items[1], 0, &v2) == 0 && v2 == -3;
    check(ok, "GGUF round trip: numeric, string and nested arrays (nested copied verbatim)");
    const cke_gguf_tensor *ta = cke_gguf_find_tensor(g, "a"), *tb = cke_gguf_find_tensor(g, "b");
    ok = cke_gguf_alignment(g) == 64 && ta && tb && ta->ndim == 2 && ta->ne[0] == 3 && ta->ne[1] == 2 &&
         ta->type == CKE_DT_F32 && !memcmp(ta->data, t1, sizeof t1) && tb->ndim == 3 && tb->ne[2] == 2 &&
         tb->type == CKE_DT_F16 && !memcmp(tb->data, t2, sizeof t2) && tb->file_offset % 64 == 0 &&
         ta->file_offset % 64 == 0;
    check(ok, "GGUF round trip: F32/F16 tensors, shapes, data, 64-byte alignment");
    cke_gguf_close(g);
}

static uint8_t *small_gguf;
static size_t small_gguf_n;

static size_t small_gguf_bytes(uint8_t **out) {
    cke_gguf_writer *w;
    cke_gguf_writer_new(&w, NULL);
    cke_gguf_writer_set_str(w, "general.architecture", "llama", 5, NULL);
    cke_gguf_writer_set_u32(w, "llama.embedding_length", 4, NULL);
    const char *strs[3] = {"<s>", "x", "yz"};
    cke_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, NULL, 3, NULL);
    int32_t ia[3] = {1, 2, 3};
    cke_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", CKE_GGUF_I32, ia, 3, NULL);
    float t[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t ne[2] = {4, 2};
    cke_gguf_writer_add_tensor(w, "w", CKE_DT_F32, 2, ne, t, NULL);
    int64_t ne1[1] = {4};
    cke_gguf_writer_add_tensor(w, "n", CKE_DT_F32, 1, ne1, t, NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/small.gguf", tmpdir);
    cke_gguf_writer_write(w, path, NULL);
    cke_gguf_writer_free(w);
    size_t n = 0;
    *out = read_file(path, &n);
    return n;
}

/* Touch everything a successful open hands out, so ASan sees any out-of-bounds view. */
static unsigned touch_gguf(const cke_gguf *g) {
    unsigned acc = 0;
    for (int64_t i = 0; i < cke_gguf_n_kv(g); i++) {
        const cke_gguf_kv *kv = cke_gguf_kv_at(g, i);
        acc += (unsigned)strlen(kv->key);
        if (kv->val.type == CKE_GGUF_STR && kv->val.str.len) acc += (uint8_t)kv->val.str.s[kv->val.str.len - 1];
        if (kv->val.type == CKE_GGUF_ARR && kv->val.arr.elem == CKE_GGUF_STR)
            for (uint64_t j = 0; j < kv->val.arr.n; j++)
                if (kv->val.arr.strs[j].len) acc += (uint8_t)kv->val.arr.strs[j].s[kv->val.arr.strs[j].len - 1];
        if (kv->val.type == CKE_GGUF_ARR && kv->val.arr.data && kv->val.arr.n)
            acc += ((const uint8_t *)kv->val.arr.data)[kv->val.arr.n * cke_gguf_type_size(kv->val.arr.elem) - 1];
    }
    for (int64_t i = 0; i < cke_gguf_n_tensors(g); i++) {
        const cke_gguf_tensor *t = cke_gguf_tensor_at(g, i);
        if (t->nbytes) acc += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    return acc;
}

static void test_gguf_bad(void) {
    small_gguf_n = small_gguf_bytes(&small_gguf);
    if (!small_gguf) { check(false, "small GGUF written"); return; }
    cke_gguf *g;
    cke_err e = {0};
    check(cke_gguf_open_mem(small_gguf, small_gguf_n, &g, &e) == CKE_OK, "small GGUF (%zu bytes) opens", small_gguf_n);
    const cke_gguf_tensor *last = cke_gguf_tensor_at(g, 1);
    size_t need = (size_t)(last->file_offset + (uint64_t)last->nbytes);
    cke_gguf_close(g);
    int wrong = 0;
    unsigned acc = 0;
    for (size_t n = 0; n < small_gguf_n; n++) {
        uint8_t *b = malloc(n ? n : 1); /* exact-size copy: ASan catches any read past n */
        memcpy(b, small_gguf, n);
        e.msg[0] = 0;
        cke_status s = cke_gguf_open_mem(b, n, &g, &e);
        if (s == CKE_OK) { acc += touch_gguf(g); cke_gguf_close(g); }
        if ((n < need) != (s == CKE_ERR_FORMAT) || (s && !e.msg[0])) {
            if (wrong++ < 3) printf("   truncated to %zu: status %d (%s)\n", n, s, e.msg);
        }
        free(b);
    }
    check(wrong == 0, "GGUF truncated at every length 0..%zu: FORMAT error with a message below %zu bytes, ok above",
          small_gguf_n - 1, need);
    int ok_count = 0, crashed_never = 1;
    for (int it = 0; it < 3000; it++) {
        uint8_t *b = malloc(small_gguf_n);
        memcpy(b, small_gguf, small_gguf_n);
        int flips = 1 + (int)(rnd() % 4);
        for (int f = 0; f < flips; f++) {
            size_t pos = rnd() % small_gguf_n;
            b[pos] = (rnd() & 1) ? (uint8_t)rnd() : (uint8_t)(b[pos] ^ (1u << (rnd() % 8)));
        }
        if (cke_gguf_open_mem(b, small_gguf_n, &g, &e) == CKE_OK) { ok_count++; acc += touch_gguf(g); cke_gguf_close(g); }
        free(b);
    }
    check(crashed_never, "GGUF: 3000 random byte flips (seeded) never crash (%d still valid)", ok_count);
    /* targeted absurd values */
    uint8_t b[64] = "GGUF";
    uint32_t v = 3;
    uint64_t big = UINT64_MAX;
    memcpy(b + 4, &v, 4); memcpy(b + 8, &big, 8); memset(b + 16, 0, 8);
    check(cke_gguf_open_mem(b, 64, &g, &e) == CKE_ERR_FORMAT && strstr(e.msg, "tensor count"),
          "GGUF tensor count 2^64-1 -> FORMAT (%s)", e.msg);
    uint64_t one = 1, huge = UINT64_C(1) << 63;
    memset(b + 8, 0, 8); memcpy(b + 16, &one, 8); memcpy(b + 24, &huge, 8);
    check(cke_gguf_open_mem(b, 64, &g, &e) == CKE_ERR_FORMAT && strstr(e.msg, "string length"),
          "GGUF key length 2^63 -> FORMAT (%s)", e.msg);
    v = 1; memcpy(b + 4, &v, 4);
    check(cke_gguf_open_mem(b, 64, &g, &e) == CKE_ERR_UNSUPPORTED, "GGUF v1 -> UNSUPPORTED");
    check(cke_gguf_open_mem("GGUX", 4, &g, &e) == CKE_ERR_FORMAT, "bad magic -> FORMAT");
    (void)acc;
}

/* ---- safetensors ---- */
static void test_safetensors(void) {
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[4] = {cke_f32_to_f16(1), cke_f32_to_f16(-2), cke_f32_to_bf16(3), 0};
    int32_t iv[2] = {-7, 9};
    cke_safetensors_writer *w;
    cke_safetensors_writer_new(&w, NULL);
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s2[1] = {2}, s0[0];
    cke_safetensors_writer_add(w, "model.a", CKE_DT_F32, 2, s23, a, NULL);
    cke_safetensors_writer_add(w, "model.h", CKE_DT_F16, 1, s4, h, NULL);
    cke_safetensors_writer_add(w, "model.bf", CKE_DT_BF16, 1, s4, h, NULL);
    cke_safetensors_writer_add(w, "model.i", CKE_DT_I32, 1, s2, iv, NULL);
    cke_safetensors_writer_add(w, "model.scalar", CKE_DT_F32, 0, s0, a, NULL);
    cke_safetensors_writer_set_metadata(w, "format", "pt", NULL);
    char path[512], p2[512], idx[512];
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", tmpdir);
    cke_err e = {0};
    cke_status s = cke_safetensors_writer_write(w, path, &e);
    cke_safetensors_writer_free(w);
    check(s == CKE_OK, "safetensors writer writes (%s)", s ? e.msg : "ok");
    cke_safetensors *st;
    s = cke_safetensors_open(path, &st, &e);
    bool ok = s == CKE_OK;
    if (ok) {
        const cke_safetensors_tensor *ta = cke_safetensors_find(st, "model.a"), *tb = cke_safetensors_find(st, "model.bf"),
                                     *ts = cke_safetensors_find(st, "model.scalar");
        const char *fm = cke_safetensors_metadata(st, "format");
        ok = cke_safetensors_n_tensors(st) == 5 && ta && ta->ndim == 2 && ta->shape[0] == 2 && ta->shape[1] == 3 &&
             ta->dtype == CKE_DT_F32 && !memcmp(ta->data, a, sizeof a) && tb && tb->dtype == CKE_DT_BF16 &&
             !memcmp(tb->data, h, 8) && ts && ts->ndim == 0 && ts->nbytes == 4 && fm && !strcmp(fm, "pt") &&
             (8 + 0) % 8 == 0 && ta->file_offset % 8 == 0;
        cke_safetensors_close(st);
    }
    check(ok, "safetensors round trip: F32/F16/BF16/I32/0-d tensors, shapes, data, __metadata__ (%s)", s ? e.msg : "ok");

    /* second shard + index written here */
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", tmpdir);
    cke_safetensors_writer_new(&w, NULL);
    cke_safetensors_writer_add(w, "lm_head", CKE_DT_F32, 1, s2, a + 4, NULL);
    cke_safetensors_writer_write(w, p2, NULL);
    cke_safetensors_writer_free(w);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", tmpdir);
    const char *json = "{\"metadata\": {\"total_size\": 60}, \"weight_map\": {"
                       "\"model.a\": \"model-00001-of-00002.safetensors\", \"model.h\": \"model-00001-of-00002.safetensors\","
                       "\"model.bf\": \"model-00001-of-00002.safetensors\", \"model.i\": \"model-00001-of-00002.safetensors\","
                       "\"model.scalar\": \"model-00001-of-00002.safetensors\", \"lm_head\": \"model-00002-of-00002.safetensors\"}}";
    write_file(idx, json, strlen(json));
    s = cke_safetensors_open(tmpdir, &st, &e); /* directory: finds the index */
    ok = s == CKE_OK;
    if (ok) {
        const cke_safetensors_tensor *lm = cke_safetensors_find(st, "lm_head");
        ok = cke_safetensors_n_shards(st) == 2 && cke_safetensors_n_tensors(st) == 6 && lm && lm->shard == 1 &&
             !memcmp(lm->data, a + 4, 8);
        cke_safetensors_close(st);
    }
    check(ok, "sharded safetensors via model.safetensors.index.json: 2 shards, 6 tensors (%s)", s ? e.msg : "ok");
    const char *bad = "{\"weight_map\": {\"model.a\": \"model-00002-of-00002.safetensors\"}}";
    write_file(idx, bad, strlen(bad));
    s = cke_safetensors_open(idx, &st, &e);
    check(s == CKE_ERR_MISSING || s == CKE_ERR_FORMAT, "index naming the wrong shard -> error (%s)", e.msg);
    const char *evil = "{\"weight_map\": {\"model.a\": \"../etc/passwd\"}}";
    write_file(idx, evil, strlen(evil));
    s = cke_safetensors_open(idx, &st, &e);
    check(s == CKE_ERR_FORMAT, "index with a path in a shard name -> FORMAT (%s)", e.msg);
    unlink(idx);

    /* truncation + flips */
    size_t n = 0;
    uint8_t *file = read_file(path, &n);
    int wrong = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *b = malloc(k ? k : 1);
        memcpy(b, file, k);
        e.msg[0] = 0;
        s = cke_safetensors_open_mem(b, k, &st, &e);
        if (s == CKE_OK) cke_safetensors_close(st);
        if (s != CKE_ERR_FORMAT || !e.msg[0]) {
            if (wrong++ < 3) printf("   truncated to %zu: status %d (%s)\n", k, s, e.msg);
        }
        free(b);
    }
    check(wrong == 0, "safetensors truncated at every length 0..%zu -> FORMAT with a message", n - 1);
    int valid = 0;
    for (int it = 0; it < 3000; it++) {
        uint8_t *b = malloc(n);
        memcpy(b, file, n);
        int flips = 1 + (int)(rnd() % 3);
        for (int f = 0; f < flips; f++) {
            size_t pos = rnd() % (n < 200 ? n : 200); /* mostly the header */
            b[pos] = (rnd() & 1) ? (uint8_t)rnd() : (uint8_t)(b[pos] ^ (1u << (rnd() % 8)));
        }
        if (cke_safetensors_open_mem(b, n, &st, &e) == CKE_OK) {
            valid++;
            unsigned acc = 0;
            for (int64_t i = 0; i < cke_safetensors_n_tensors(st); i++) {
                const cke_safetensors_tensor *t = cke_safetensors_tensor_at(st, i);
                if (t->nbytes) acc += ((const uint8_t *)t->data)[t->nbytes - 1];
            }
            (void)acc;
            cke_safetensors_close(st);
        }
        free(b);
    }
    check(true, "safetensors: 3000 random header byte flips (seeded) never crash (%d still valid)", valid);
    uint8_t hb[16];
    uint64_t hl = UINT64_C(1) << 63;
    memcpy(hb, &hl, 8);
    memcpy(hb + 8, "{}      ", 8);
    check(cke_safetensors_open_mem(hb, 16, &st, &e) == CKE_ERR_FORMAT, "safetensors header length 2^63 -> FORMAT (%s)", e.msg);
    const char *off = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    uint8_t ob[128];
    hl = strlen(off);
    memcpy(ob, &hl, 8);
    memcpy(ob + 8, off, hl);
    check(cke_safetensors_open_mem(ob, 8 + hl + 8, &st, &e) == CKE_ERR_FORMAT && strstr(e.msg, "past"),
          "safetensors tensor past the end -> FORMAT (%s)", e.msg);
    const char *dt = "{\"x\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    hl = strlen(dt);
    memcpy(ob, &hl, 8);
    memcpy(ob + 8, dt, hl);
    check(cke_safetensors_open_mem(ob, 8 + hl + 1, &st, &e) == CKE_ERR_UNSUPPORTED, "safetensors unknown dtype -> UNSUPPORTED");
    free(file);
    unlink(path);
    unlink(p2);
}

/* ---- llama2.c ---- */
static uint8_t *make_l2c(int version, bool shared, size_t *n) {
    int32_t hd[7] = {8, 12, 2, 2, 1, shared ? 6 : -6, 4};
    cke_llama2c_header h = {.version = version, .dim = 8, .hidden_dim = 12, .n_layers = 2, .n_heads = 2,
                            .n_kv_heads = 1, .vocab = 6, .seq_len = 4, .shared_classifier = shared,
                            .header_bytes = version ? 256 : 28};
    /* size: header + weights (+ freq_cis for v0) */
    int64_t nt = cke_llama2c_n_tensors(&h);
    cke_llama2c_tensor *ts = calloc((size_t)nt, sizeof *ts);
    cke_llama2c_layout(&h, ts);
    size_t end = 0;
    for (int64_t i = 0; i < nt; i++)
        if (ts[i].offset + (uint64_t)ts[i].nbytes > end) end = ts[i].offset + (size_t)ts[i].nbytes;
    free(ts);
    if (version == 0 && shared) end += 2 * 4 * 2 * 4; /* freq_cis: seq 4 * hs/2 2 floats x 2 */
    uint8_t *b = calloc(1, end);
    if (version) {
        uint32_t magic = 0x616b3432; int32_t v = 1;
        hd[5] = 6;
        memcpy(b, &magic, 4); memcpy(b + 4, &v, 4); memcpy(b + 8, hd, 28); b[36] = shared;
    } else memcpy(b, hd, 28);
    for (size_t i = (version ? 256 : 28); i + 4 <= end; i += 4) { float f = (float)i; memcpy(b + i, &f, 4); }
    *n = end;
    return b;
}

static void test_llama2c(void) {
    for (int ver = 0; ver < 2; ver++)
        for (int sh = 0; sh < 2; sh++) {
            size_t n;
            uint8_t *b = make_l2c(ver, sh, &n);
            char path[512];
            snprintf(path, sizeof path, "%s/l2c.bin", tmpdir);
            write_file(path, b, n);
            cke_model *m;
            cke_err e = {0};
            cke_status s = cke_model_open(path, &m, &e);
            bool ok = s == CKE_OK && m->hp.vocab == 6 && m->hp.tied_output == sh && m->hp.n_kv_heads == 1 &&
                      m->n_tensors == 2 + 18 + !sh && cke_model_find(m, "l1.ffn_down") &&
                      cke_model_find(m, "l1.ffn_down")->shape[1] == 12;
            /* v1 stores norms first: attn_norm of layer 0 starts right after the header */
            if (ok && ver) ok = cke_model_find(m, "l0.attn_norm")->file_offset == 256;
            check(ok, "llama2.c v%d %s classifier: %zu-byte file opens with the right layout (%s)", ver,
                  sh ? "shared" : "separate", n, s ? e.msg : "ok");
            if (!s) cke_model_close(m);
            int wrong = 0;
            for (size_t k = 0; k < n; k++) {
                cke_llama2c_header h;
                uint8_t *c = malloc(k ? k : 1);
                memcpy(c, b, k);
                if (cke_llama2c_parse(c, k, &h, &e) != CKE_ERR_FORMAT) wrong++;
                free(c);
            }
            check(wrong == 0, "llama2.c v%d %s: truncated at every length -> FORMAT", ver, sh ? "shared" : "separate");
            free(b);
            unlink(path);
        }
    size_t n;
    uint8_t *b = make_l2c(0, true, &n);
    int32_t bad[7] = {8, 12, 0x7fffffff, 2, 1, 6, 0x7fffffff};
    memcpy(b, bad, 28);
    cke_llama2c_header h;
    cke_err e;
    check(cke_llama2c_parse(b, n, &h, &e) == CKE_ERR_FORMAT, "llama2.c absurd layer count -> FORMAT (%s)", e.msg);
    int32_t bad2[7] = {8, 12, 2, 3, 1, 6, 4};
    memcpy(b, bad2, 28);
    check(cke_llama2c_parse(b, n, &h, &e) == CKE_ERR_FORMAT, "llama2.c dim not divisible by heads -> FORMAT");
    int valid = 0;
    for (int it = 0; it < 2000; it++) {
        uint8_t *c = malloc(n);
        memcpy(c, b, n);
        memcpy(c, (int32_t[7]){8, 12, 2, 2, 1, 6, 4}, 28);
        c[rnd() % 28] = (uint8_t)rnd();
        if (cke_llama2c_parse(c, n, &h, &e) == CKE_OK) {
            valid++;
            int64_t nt = cke_llama2c_n_tensors(&h);
            cke_llama2c_tensor *ts = calloc((size_t)nt, sizeof *ts);
            cke_llama2c_layout(&h, ts);
            for (int64_t i = 0; i < nt; i++)
                if (ts[i].offset + (uint64_t)ts[i].nbytes > n) { valid = -100000; }
            free(ts);
        }
        free(c);
    }
    check(valid >= 0, "llama2.c: 2000 header byte flips: every accepted header's tensors lie inside the file");
    free(b);
}

/* ---- HF config ---- */
static void test_hf_config(void) {
    cke_arch a;
    cke_hparams h;
    cke_err e = {0};
    const char *l3 = "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"num_key_value_heads\":2,\"intermediate_size\":128,\"vocab_size\":100,\"rms_norm_eps\":1e-5,"
                     "\"rope_theta\":500000.0,\"max_position_embeddings\":131072,\"tie_word_embeddings\":true,"
                     "\"rope_scaling\":{\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                     "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}}";
    cke_status s = cke_model_parse_hf_config(l3, strlen(l3), &a, &h, &e);
    check(s == CKE_OK && a == CKE_ARCH_LLAMA && h.rope.scaling == CKE_ROPE_SCALING_LLAMA3 && h.rope.factor == 8 &&
              h.rope.high_freq_factor == 4 && h.rope.orig_ctx == 8192 && h.rope.theta == 500000 && h.n_kv_heads == 2 &&
              h.head_dim == 16 && h.tied_output && h.rope.layout == CKE_ROPE_HALVES,
          "HF config: Llama 3 with llama3 rope_scaling (%s)", s ? e.msg : "ok");
    /* YaRN (issue 16): its parameters; the original context from rope_scaling, else the model's */
    const char *yarn = "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                       "\"intermediate_size\":128,\"vocab_size\":100,\"max_position_embeddings\":131072,\"rope_scaling\":"
                       "{\"type\":\"yarn\",\"factor\":4,\"original_max_position_embeddings\":32768,\"beta_fast\":16}}";
    s = cke_model_parse_hf_config(yarn, strlen(yarn), &a, &h, &e);
    check(s == CKE_OK && h.rope.scaling == CKE_ROPE_SCALING_YARN && h.rope.factor == 4 && h.rope.orig_ctx == 32768 &&
              h.rope.beta_fast == 16 && h.rope.beta_slow == 0,
          "HF config: yarn rope_scaling (%s)", s ? e.msg : "ok");
    /* Gemma 3 multimodal: the text model's config under text_config; layer_types off the pattern refused */
    const char *g3 = "{\"model_type\":\"gemma3\",\"text_config\":{\"model_type\":\"gemma3_text\",\"hidden_size\":64,"
                     "\"num_hidden_layers\":4,\"num_attention_heads\":4,\"intermediate_size\":128,\"vocab_size\":100,"
                     "\"sliding_window\":512,\"layer_types\":[\"sliding_attention\",\"full_attention\",\"sliding_attention\","
                     "\"full_attention\"]}}";
    s = cke_model_parse_hf_config(g3, strlen(g3), &a, &h, &e);
    check(s == CKE_OK && a == CKE_ARCH_GEMMA3 && h.swa_pattern == 2 && h.sliding_window == 512 && h.qk_norm && h.post_norms &&
              h.rope.theta == 1e6 && h.rope_local_theta == 10000 && h.dim == 64,
          "HF config: gemma3 text_config, layer_types -> one global layer every 2 (%s)", s ? e.msg : "ok");
    const char *g3b = "{\"model_type\":\"gemma3_text\",\"hidden_size\":64,\"num_hidden_layers\":3,\"num_attention_heads\":4,"
                      "\"intermediate_size\":128,\"vocab_size\":100,\"layer_types\":[\"full_attention\",\"sliding_attention\","
                      "\"full_attention\"]}";
    s = cke_model_parse_hf_config(g3b, strlen(g3b), &a, &h, &e);
    check(s == CKE_ERR_UNSUPPORTED && strstr(e.msg, "layer_types[1]"), "HF config: gemma3 irregular layer_types refused (%s)", e.msg);
    const char *lr = "{\"model_type\":\"phi3\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"intermediate_size\":128,\"vocab_size\":100,\"max_position_embeddings\":131072,"
                     "\"original_max_position_embeddings\":4096,\"rope_scaling\":{\"type\":\"su\",\"long_factor\":[1,2],"
                     "\"short_factor\":[1,1.5,2]}}";
    s = cke_model_parse_hf_config(lr, strlen(lr), &a, &h, &e);
    check(s == CKE_ERR_SHAPE && strstr(e.msg, "differ in length"), "HF config: longrope factors of two lengths refused (%s)", e.msg);
    const char *mt = "{\"model_type\":\"mamba\"}";
    s = cke_model_parse_hf_config(mt, strlen(mt), &a, &h, &e);
    check(s == CKE_ERR_UNSUPPORTED && strstr(e.msg, "mamba"), "HF config: unknown model_type -> UNSUPPORTED (%s)", e.msg);
    const char *q2 = "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"num_key_value_heads\":2,\"intermediate_size\":128,\"vocab_size\":100,\"rope_theta\":1000000,"
                     "\"sliding_window\":4096,\"use_sliding_window\":false,\"tie_word_embeddings\":false}";
    s = cke_model_parse_hf_config(q2, strlen(q2), &a, &h, &e);
    check(s == CKE_OK && a == CKE_ARCH_QWEN2 && h.attn_qkv_bias && !h.attn_o_bias && !h.sliding_window && !h.tied_output,
          "HF config: qwen2 q/k/v biases, no o bias, sliding window off");
    const char *q3 = "{\"model_type\":\"qwen3\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"head_dim\":32,\"intermediate_size\":128,\"vocab_size\":100,\"attention_bias\":false}";
    s = cke_model_parse_hf_config(q3, strlen(q3), &a, &h, &e);
    check(s == CKE_OK && a == CKE_ARCH_QWEN3 && h.qk_norm && !h.attn_qkv_bias && h.head_dim == 32,
          "HF config: qwen3 qk_norm, explicit head_dim");
    const char *g2 = "{\"model_type\":\"gemma2\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"head_dim\":16,\"intermediate_size\":128,\"vocab_size\":100,\"query_pre_attn_scalar\":256,"
                     "\"final_logit_softcapping\":30.0,\"attn_logit_softcapping\":50.0,\"sliding_window\":4096,"
                     "\"hidden_activation\":\"gelu_pytorch_tanh\"}";
    s = cke_model_parse_hf_config(g2, strlen(g2), &a, &h, &e);
    check(s == CKE_OK && a == CKE_ARCH_GEMMA2 && h.post_norms && h.norm_add_one && h.tied_output &&
              h.final_softcap == 30 && h.attn_softcap == 50 && fabs(h.attn_scale - 1.0 / 16) < 1e-12 &&
              fabs(h.embd_scale - 8) < 1e-12 && h.act == CKE_ACT_GELU_TANH && h.sliding_window == 4096,
          "HF config: gemma2 softcaps, post norms, (1+w) norms, sqrt(dim) embedding scale");
    const char *mi = "{\"model_type\":\"mistral\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"num_key_value_heads\":1,\"intermediate_size\":128,\"vocab_size\":100,\"sliding_window\":null,"
                     "\"hidden_act\":\"silu\"}";
    s = cke_model_parse_hf_config(mi, strlen(mi), &a, &h, &e);
    check(s == CKE_OK && a == CKE_ARCH_MISTRAL && !h.sliding_window && h.n_kv_heads == 1, "HF config: mistral");
    check(cke_model_parse_hf_config("{", 1, &a, &h, &e) == CKE_ERR_FORMAT, "HF config: malformed JSON -> FORMAT");
}

/* ---- hyperparameters a file can make absurd (issue 15 items 1, 2, NaN/Inf floats, FIFOs) ---- */

/* kind: u (u32), U (u64), f (f32); t: a 1-D f32 tensor named key with u elements */
typedef struct { const char *key; char kind; uint64_t u; double f; } hp_edit;

/* A complete tiny model as a GGUF: llama (dim 8, 2 heads, 1 kv head, ffn 16, vocab 8, 1 layer)
 * or gpt2 (the same sizes with a fused attn_qkv, biases and learned positions); then the
 * edits (keys without the "ARCH." prefix) replace or add keys. */
static cke_status tiny_gguf(const char *path, const char *arch, const hp_edit *ed, int n_ed, cke_err *e) {
    static float data[4096];
    for (int i = 0; i < 4096; i++) data[i] = 0.01f * (float)((i * 7) % 13) - 0.05f;
    bool g2 = !strcmp(arch, "gpt2");
    cke_gguf_writer *w;
    cke_status s = cke_gguf_writer_new(&w, e);
    if (s) return s;
    char k[128];
#define KEY(x) (snprintf(k, sizeof k, "%s.%s", arch, x), k)
    cke_gguf_writer_set_str(w, "general.architecture", arch, strlen(arch), NULL);
    cke_gguf_writer_set_u32(w, KEY("embedding_length"), 8, NULL);
    cke_gguf_writer_set_u32(w, KEY("block_count"), 1, NULL);
    cke_gguf_writer_set_u32(w, KEY("attention.head_count"), 2, NULL);
    if (!g2) cke_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), 1, NULL);
    cke_gguf_writer_set_u32(w, KEY("feed_forward_length"), 16, NULL);
    cke_gguf_writer_set_u32(w, KEY("context_length"), 4, NULL);
    cke_gguf_writer_set_f32(w, KEY(g2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon"), 1e-5f, NULL);
    for (int i = 0; i < n_ed; i++) {
        if (ed[i].kind == 't') {
            int64_t ne = (int64_t)ed[i].u;
            cke_gguf_writer_add_tensor(w, ed[i].key, CKE_DT_F32, 1, &ne, data, NULL);
            continue;
        }
        KEY(ed[i].key);
        if (ed[i].kind == 'u') cke_gguf_writer_set_u32(w, k, (uint32_t)ed[i].u, NULL);
        else if (ed[i].kind == 'U') cke_gguf_writer_set_u64(w, k, ed[i].u, NULL);
        else cke_gguf_writer_set_f32(w, k, (float)ed[i].f, NULL);
    }
#undef KEY
    const int64_t D = 8, F = 16, V = 8, KV = 4;
    struct { const char *name; int nd; int64_t ne0, ne1; } ts_l[] = {
        {"token_embd.weight", 2, D, V}, {"output_norm.weight", 1, D, 1}, {"blk.0.attn_norm.weight", 1, D, 1},
        {"blk.0.attn_q.weight", 2, D, D}, {"blk.0.attn_k.weight", 2, D, KV}, {"blk.0.attn_v.weight", 2, D, KV},
        {"blk.0.attn_output.weight", 2, D, D}, {"blk.0.ffn_norm.weight", 1, D, 1}, {"blk.0.ffn_gate.weight", 2, D, F},
        {"blk.0.ffn_up.weight", 2, D, F}, {"blk.0.ffn_down.weight", 2, F, D},
    }, ts_g[] = {
        {"token_embd.weight", 2, D, V}, {"position_embd.weight", 2, D, 4}, {"output_norm.weight", 1, D, 1},
        {"output_norm.bias", 1, D, 1}, {"blk.0.attn_norm.weight", 1, D, 1}, {"blk.0.attn_norm.bias", 1, D, 1},
        {"blk.0.attn_qkv.weight", 2, D, 3 * D}, {"blk.0.attn_qkv.bias", 1, 3 * D, 1},
        {"blk.0.attn_output.weight", 2, D, D}, {"blk.0.attn_output.bias", 1, D, 1}, {"blk.0.ffn_norm.weight", 1, D, 1},
        {"blk.0.ffn_norm.bias", 1, D, 1}, {"blk.0.ffn_up.weight", 2, D, F}, {"blk.0.ffn_up.bias", 1, F, 1},
        {"blk.0.ffn_down.weight", 2, F, D}, {"blk.0.ffn_down.bias", 1, D, 1},
    };
    size_t n = g2 ? sizeof ts_g / sizeof *ts_g : sizeof ts_l / sizeof *ts_l;
    for (size_t i = 0; i < n && !s; i++) {
        const __typeof__(ts_l[0]) *t = g2 ? &ts_g[i] : &ts_l[i];
        int64_t ne[2] = {t->ne0, t->ne1};
        s = cke_gguf_writer_add_tensor(w, t->name, CKE_DT_F32, t->nd, ne, data, e);
    }
    if (!s) s = cke_gguf_writer_write(w, path, e);
    cke_gguf_writer_free(w);
    return s;
}

/* opens a tiny GGUF with the edits; passes when the status is `want` and the message has `needle` */
static void gguf_case(const char *what, const char *arch, const hp_edit *ed, int n_ed, cke_status want, const char *needle) {
    char path[600];
    snprintf(path, sizeof path, "%s/hp.gguf", tmpdir);
    cke_err e = {0};
    cke_status s = tiny_gguf(path, arch, ed, n_ed, &e);
    if (s) { check(false, "%s: crafting failed: %s", what, e.msg); return; }
    cke_model *m = NULL;
    e.msg[0] = 0;
    s = cke_model_open(path, &m, &e);
    check(s == want && (!needle || strstr(e.msg, needle)), "%s -> %s (%s)", what, cke_status_name(s), s ? e.msg : "ok");
    cke_model_close(m);
    unlink(path);
}

static void test_model_hparams(void) {
    const uint64_t big = (uint64_t)1 << 32;
    gguf_case("tiny llama GGUF (baseline)", "llama", NULL, 0, CKE_OK, NULL);
    gguf_case("tiny gpt2 GGUF, fused attn_qkv (baseline)", "gpt2", NULL, 0, CKE_OK, NULL);
    /* item 1: was SIGFPE (division by zero) splitting attn_qkv */
    gguf_case("gpt2 head_count = 0 (head_count_kv 2) with fused attn_qkv", "gpt2",
              (hp_edit[]){{"attention.head_count", 'u', 0, 0}, {"attention.head_count_kv", 'u', 2, 0}}, 2,
              CKE_ERR_FORMAT, "GGUF key 'gpt2.attention.head_count' = 0 is out of range [1, 65536]");
    /* item 2: was a signed overflow in the shape checks */
    gguf_case("llama head_count = key_length = 2^32", "llama",
              (hp_edit[]){{"attention.head_count", 'U', big, 0}, {"attention.key_length", 'U', big, 0}}, 2, CKE_ERR_FORMAT,
              "'llama.attention.head_count' = 4294967296 is out of range");
    gguf_case("llama key_length = 2^32", "llama", (hp_edit[]){{"attention.key_length", 'U', big, 0}}, 1, CKE_ERR_FORMAT,
              "'llama.attention.key_length' = 4294967296 is out of range");
    gguf_case("gpt2 head_count = 2^32 with fused attn_qkv", "gpt2", (hp_edit[]){{"attention.head_count", 'U', big, 0}}, 1,
              CKE_ERR_FORMAT, "'gpt2.attention.head_count' = 4294967296");
    gguf_case("llama head_count_kv 3 does not divide head_count 2", "llama",
              (hp_edit[]){{"attention.head_count_kv", 'u', 3, 0}}, 1, CKE_ERR_FORMAT,
              "n_heads 2 is not a multiple of n_kv_heads 3");
    gguf_case("gpt2 head_count 3 does not divide embedding_length 8", "gpt2",
              (hp_edit[]){{"attention.head_count", 'u', 3, 0}}, 1, CKE_ERR_FORMAT, "dim 8 is not a multiple of n_heads 3");
    gguf_case("llama block_count = 0", "llama", (hp_edit[]){{"block_count", 'u', 0, 0}}, 1, CKE_ERR_FORMAT,
              "'llama.block_count' = 0 is out of range");
    gguf_case("llama feed_forward_length = 2^32", "llama", (hp_edit[]){{"feed_forward_length", 'U', big, 0}}, 1,
              CKE_ERR_FORMAT, "'llama.feed_forward_length' = 4294967296");
    gguf_case("llama embedding_length = 2^40", "llama", (hp_edit[]){{"embedding_length", 'U', big << 8, 0}}, 1,
              CKE_ERR_FORMAT, "'llama.embedding_length' = 1099511627776");
    /* the "also" items: floats that reached the generated code */
    gguf_case("llama rms eps = NaN", "llama", (hp_edit[]){{"attention.layer_norm_rms_epsilon", 'f', 0, NAN}}, 1,
              CKE_ERR_FORMAT, "'llama.attention.layer_norm_rms_epsilon' = nan");
    gguf_case("llama rms eps < 0", "llama", (hp_edit[]){{"attention.layer_norm_rms_epsilon", 'f', 0, -1e-5}}, 1,
              CKE_ERR_FORMAT, "'llama.attention.layer_norm_rms_epsilon' = -1e-05");
    gguf_case("gpt2 layer-norm eps = Inf", "gpt2", (hp_edit[]){{"attention.layer_norm_epsilon", 'f', 0, INFINITY}}, 1,
              CKE_ERR_FORMAT, "'gpt2.attention.layer_norm_epsilon' = inf");
    gguf_case("llama rope theta = 0", "llama", (hp_edit[]){{"rope.freq_base", 'f', 0, 0}}, 1, CKE_ERR_FORMAT,
              "'llama.rope.freq_base' = 0: expected a finite number > 0");
    gguf_case("llama rope theta = -10000", "llama", (hp_edit[]){{"rope.freq_base", 'f', 0, -1e4}}, 1, CKE_ERR_FORMAT,
              "'llama.rope.freq_base' = -10000");
    gguf_case("llama rope theta = NaN", "llama", (hp_edit[]){{"rope.freq_base", 'f', 0, NAN}}, 1, CKE_ERR_FORMAT,
              "'llama.rope.freq_base' = nan");
    gguf_case("llama attn softcap = NaN", "llama", (hp_edit[]){{"attn_logit_softcapping", 'f', 0, NAN}}, 1,
              CKE_ERR_FORMAT, "'llama.attn_logit_softcapping' = nan");
    gguf_case("llama rope_freqs of 3 divisors for 2 rotated pairs", "llama", (hp_edit[]){{"rope_freqs.weight", 't', 3, 0}},
              1, CKE_ERR_SHAPE, "tensor 'rope_freqs' (rope_freqs.weight) has shape [3, 0], expected [2, 0]");
    gguf_case("llama rope_freqs of 2 divisors (fine)", "llama", (hp_edit[]){{"rope_freqs.weight", 't', 2, 0}}, 1, CKE_OK,
              NULL);
    gguf_case("llama rope dims odd", "llama", (hp_edit[]){{"rope.dimension_count", 'u', 3, 0}}, 1, CKE_ERR_FORMAT,
              "rope dims 3: expected an even number <= head_dim 4");

    /* the same through config.json */
    static const struct { const char *what, *edit, *needle; } hf[] = {
        {"num_attention_heads 2^32 and head_dim 2^32", "\"num_attention_heads\":4294967296,\"head_dim\":4294967296",
         "config.json: num_attention_heads = 4294967296 is out of range"},
        {"head_dim 2^32", "\"head_dim\":4294967296", "config.json: head_dim = 4294967296 is out of range"},
        {"num_attention_heads 0", "\"num_attention_heads\":0", "config.json: num_attention_heads = 0 is out of range"},
        {"num_key_value_heads 3 of 4 heads", "\"num_key_value_heads\":3", "n_heads 4 is not a multiple of n_kv_heads 3"},
        {"rms_norm_eps -1", "\"rms_norm_eps\":-1", "config.json: rms_norm_eps = -1"},
        {"rope_theta 1e999 (inf)", "\"rope_theta\":1e999", "config.json: rope_theta = inf"},
        {"rope_theta 0", "\"rope_theta\":0", "config.json: rope_theta = 0"},
        {"llama3 rope high_freq_factor == low", "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,"
         "\"low_freq_factor\":4,\"high_freq_factor\":4,\"original_max_position_embeddings\":8192}", "rope high_freq_factor = 4"},
        {"linear rope factor -2", "\"rope_scaling\":{\"type\":\"linear\",\"factor\":-2}", "rope scaling factor = -2"},
        {"yarn rope factor 0", "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":0,\"original_max_position_embeddings\":64}",
         "rope_scaling: factor 0"},
        {"yarn attention_factor -1", "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":2,\"attention_factor\":-1,"
         "\"original_max_position_embeddings\":64}", "attention factor -1"},
        {"longrope factor not a number", "\"rope_scaling\":{\"type\":\"longrope\",\"long_factor\":[1,\"x\"],"
         "\"short_factor\":[1,1],\"original_max_position_embeddings\":64}", "long_factor[1] is not a positive number"},
        {"vocab_size 2^40", "\"vocab_size\":1099511627776", "config.json: vocab_size = 1099511627776"},
    };
    char dir[600], p[700];
    snprintf(dir, sizeof dir, "%s/hfbad", tmpdir);
    mkdir(dir, 0755);
    for (size_t i = 0; i < sizeof hf / sizeof *hf; i++) {
        char cfg[1024];
        /* the edit comes first: for a repeated key, cJSON reads the first one */
        snprintf(cfg, sizeof cfg, "{%s,\"model_type\":\"llama\",\"hidden_size\":8,\"num_hidden_layers\":1,"
                 "\"num_attention_heads\":4,\"intermediate_size\":16,\"vocab_size\":8}", hf[i].edit);
        snprintf(p, sizeof p, "%s/config.json", dir);
        write_file(p, cfg, strlen(cfg));
        cke_model *m = NULL;
        cke_err e = {0};
        cke_status s = cke_model_open(dir, &m, &e); /* refused before the (absent) safetensors is looked for */
        check(s == CKE_ERR_FORMAT && strstr(e.msg, hf[i].needle), "HF %s -> %s (%s)",
              hf[i].what, cke_status_name(s), e.msg);
        cke_model_close(m);
    }
    unlink(p);

    /* item 10: FIFOs were opened blocking (inspect hung forever); alarm() turns a hang into a failure */
    alarm(20);
    snprintf(p, sizeof p, "%s/fifo.gguf", tmpdir);
    if (mkfifo(p, 0600) == 0) {
        cke_model *m = NULL;
        cke_err e = {0};
        cke_status s = cke_model_open(p, &m, &e);
        check(s == CKE_ERR_IO && strstr(e.msg, "fifo.gguf: not a regular file (a FIFO)"), "model path is a FIFO -> %s (%s)",
              cke_status_name(s), e.msg);
        unlink(p);
        /* HF directory whose config.json, then model.safetensors, is a FIFO */
        snprintf(p, sizeof p, "%s/config.json", dir);
        mkfifo(p, 0600);
        s = cke_model_open(dir, &m, &e);
        check(s == CKE_ERR_IO && strstr(e.msg, "config.json: not a regular file (a FIFO)"),
              "HF config.json is a FIFO -> %s (%s)", cke_status_name(s), e.msg);
        unlink(p);
        const char *cfg = "{\"model_type\":\"llama\",\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
                          "\"intermediate_size\":16,\"vocab_size\":8}";
        write_file(p, cfg, strlen(cfg));
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        mkfifo(p, 0600);
        s = cke_model_open(dir, &m, &e);
        check(s == CKE_ERR_IO && strstr(e.msg, "model.safetensors: not a regular file (a FIFO)"),
              "HF model.safetensors is a FIFO -> %s (%s)", cke_status_name(s), e.msg);
        unlink(p);
        snprintf(p, sizeof p, "%s/config.json", dir);
        unlink(p);
    } else {
        check(false, "mkfifo %s", p);
    }
    alarm(0);
    rmdir(dir);

    /* NaN/Inf scan used where compile reads the weights */
    float f[5] = {1, -2, 0, 3, 4};
    uint16_t h[4] = {0x3c00, 0xbc00, 0x7c00, 0}, bf[4] = {0x3f80, 0x7fc0, 0, 0};
    bool ok = cke_dtype_find_nonfinite(CKE_DT_F32, f, 5) == -1;
    f[3] = NAN;
    ok = ok && cke_dtype_find_nonfinite(CKE_DT_F32, f, 5) == 3;
    f[3] = 0, f[4] = -INFINITY;
    ok = ok && cke_dtype_find_nonfinite(CKE_DT_F32, f, 5) == 4 && cke_dtype_find_nonfinite(CKE_DT_F16, h, 4) == 2 &&
         cke_dtype_find_nonfinite(CKE_DT_F16, h, 2) == -1 && cke_dtype_find_nonfinite(CKE_DT_BF16, bf, 4) == 1 &&
         cke_dtype_find_nonfinite(CKE_DT_Q8_0, bf, 4) == -1;
    check(ok, "cke_dtype_find_nonfinite finds NaN/Inf in F32/F16/BF16");
}

int main(void) {
    const char *env = getenv("CKE_MODELS");
    snprintf(models, sizeof models, "%s", env && *env ? env : "../shared/models");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cke_test_formats_XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("FAIL mkdtemp\n0 passed, 1 failed\n"); return 1; }
    test_dtype();
    test_stories();
    test_tiny_llama();
    test_vocab_ggufs();
    test_gpt2();
    test_gguf_roundtrip();
    test_gguf_bad();
    test_safetensors();
    test_llama2c();
    test_hf_config();
    test_model_hparams();
    free(small_gguf);
    char p[600];
    snprintf(p, sizeof p, "%s/rt.gguf", tmpdir); unlink(p);
    snprintf(p, sizeof p, "%s/small.gguf", tmpdir); unlink(p);
    rmdir(tmpdir);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
