/* The embedded build of a model (`cke compile MODEL --embedded -o DIR`): a standalone C program
 * that any C11 compiler builds alone (DIR/Makefile has the one command).
 *
 * model.c's forward functions come from the same emitters as model.so's (codegen.c); this file
 * writes only what differs around them:
 *   - the kernel table: the ref table cut down to the slots this model calls, so that with
 *     -ffunction-sections -Wl,--gc-sections no other kernel is linked;
 *   - every buffer a static array (arena, scratch, KV cache: .bss), the RoPE cos/sin table
 *     computed here (read-only), the weights a const array (weights.c: flash) or the caller's blob;
 *   - one thread, no allocation, no file, mmap or stdio call: ckm_embed_init/prefill/decode;
 *   - model.h (the API and the sizes), main.c (greedy decoding of token ids), a Makefile, the
 *     kernel sources copied into DIR/kernels, and the embedded section of memory_map.txt. */
#include "codegen/codegen.h"

#include "cke/cke.h"
#include "cke/kernels.h"
#include "util/fs.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the kernel slots */

/* The table slots an op's generated code calls (besides the KV cache's and the block formats',
 * which depend on the plan: see used_slots). */
static const char *const op_slots[CKE_OP_COUNT][2] = {
    [CKE_OP_EMBED] = {"embed_fwd"},         [CKE_OP_RMSNORM] = {"rmsnorm_fwd"}, [CKE_OP_LAYERNORM] = {"layernorm_fwd"},
    [CKE_OP_LINEAR] = {"gemm"},             [CKE_OP_ROPE] = {"rope_fwd"},       [CKE_OP_ADD] = {"add_fwd"},
    [CKE_OP_SCALE] = {"scale_fwd"},         [CKE_OP_SWIGLU] = {"swiglu_fwd"},   [CKE_OP_GEGLU] = {"geglu_fwd"},
    [CKE_OP_GELU] = {"gelu_fwd"},           [CKE_OP_SILU] = {"silu_fwd"},       [CKE_OP_SOFTCAP] = {"softcap_fwd"},
    [CKE_OP_POSEMB] = {"posemb_fwd"},       [CKE_OP_MOE] = {"gemm", "swiglu_fwd"}, /* + axpy: see used_slots */
};

/* What attention calls per KV cache type: the write conversion and the attention forward. */
static const char *const kv_slots[][2] = {
    [CKE_KV_F16] = {"attn_fwd_f16", "f32_to_f16"},
    [CKE_KV_F32] = {"attn_fwd", NULL},
    [CKE_KV_Q8_0] = {"attn_fwd_q8_0", NULL}, /* + the q8_0 quantizer, qops[8] */
};

#define MAX_SLOTS 32
typedef struct {
    const char *slot[MAX_SLOTS];
    int n;
    unsigned char qops[CKE_QTYPE_COUNT]; /* block formats the model reads (qops entries) */
    int moe;                             /* mixture of experts: moe.c, which runs experts through qlinear.c */
} slot_set;

static void slot_add(slot_set *s, const char *name) {
    if (!name) return;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->slot[i], name)) return;
    if (s->n < MAX_SLOTS) s->slot[s->n++] = name;
}

/* A block format and the activation format its dot takes (qlinear quantizes X to it). */
static void qops_add(slot_set *s, int dt) {
    const cke_qtype_ops *q = dt > 0 && dt < CKE_QTYPE_COUNT ? cke_ktable_for(CKE_ISA_REF)->qops[dt] : NULL;
    if (!q) return;
    s->qops[dt] = 1;
    if (q->vec_dot_type > 0 && q->vec_dot_type < CKE_QTYPE_COUNT) s->qops[q->vec_dot_type] = 1;
}

static cke_status used_slots(const cke_plan *p, slot_set *s, cke_err *err) {
    const cke_ir *ir = p->ir;
    memset(s, 0, sizeof *s);
    for (int i = 0; i < ir->nn; i++) {
        const cke_node *n = &ir->n[i];
        slot_add(s, op_slots[n->op][0]);
        slot_add(s, op_slots[n->op][1]);
        if (n->op == CKE_OP_LINEAR && n->n_in > 2) slot_add(s, "axpy"); /* the bias (linear.c) */
        if (n->op == CKE_OP_MOE) slot_add(s, "axpy"), s->moe = 1; /* experts' outputs added weighted; moe.c */
        if (n->op == CKE_OP_ATTENTION) {
            slot_add(s, kv_slots[p->kv_type][0]);
            slot_add(s, kv_slots[p->kv_type][1]);
            if (p->kv_type == CKE_KV_Q8_0) qops_add(s, 8);
        }
    }
    for (int i = 0; i < p->nw; i++) {
        const int dt = p->w[i].dtype;
        const cke_qtype_ops *q = dt > 0 && dt < CKE_QTYPE_COUNT ? cke_ktable_for(CKE_ISA_REF)->qops[dt] : NULL;
        if (dt && (!q || q->repack_of))
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "embedded build: weight format %d is not a GGUF block format the ref kernels read", dt);
        qops_add(s, dt);
    }
    return CKE_OK;
}

static int any_qops(const slot_set *s) {
    for (int i = 0; i < CKE_QTYPE_COUNT; i++)
        if (s->qops[i]) return 1;
    return 0;
}

static size_t al64(size_t n) { return (n + 63) / 64 * 64; }

/* The largest workspace the ref kernels take over prefill's and decode's schedules: attention's
 * (cke_attn_ws_size, every layer's attributes) and the quantized linears' (cke_qlinear_ws_size,
 * every layer's format), for one thread. model.so's planned scratch also holds the SIMD f32
 * GEMM's packed panels, which cke_gemm_ref does not use (it takes no ws): static RAM not spent. */
static size_t ref_scratch(const cke_plan *p) {
    const cke_ir *ir = p->ir;
    const cke_mode_plan *ms[2] = {&p->prefill, &p->decode};
    size_t best = 0;
    for (int mi = 0; mi < 2; mi++) {
        const cke_mode_plan *m = ms[mi];
        for (int si = 0; si < m->n_sched; si++) {
            const cke_node *n = &m->sched[si];
            const int64_t rows = m->buf_of[n->out] >= 0 ? m->bufs[m->buf_of[n->out]].rows : 1;
            size_t ws = 0;
            for (int i = 0; n->op == CKE_OP_ATTENTION && i < ir->nn; i++) {
                const cke_node *q = &ir->n[i];
                if (q->op != CKE_OP_ATTENTION || strcmp(ir->v[q->out].base, ir->v[n->out].base)) continue;
                const cke_attn_shape as = {.T = rows, .Tk = p->ctx, .n_head = q->a.n_head, .n_kv_head = q->a.n_kv_head,
                                           .head_dim = q->a.head_dim, .scale = q->a.scale, .window = q->a.window,
                                           .softcap = q->a.softcap};
                const size_t w = cke_attn_ws_size(&as, 1);
                if (w > ws) ws = w;
            }
            if (n->op == CKE_OP_MOE) { /* every layer's formats of the three expert stacks */
                const size_t w = cke_plan_moe_ws(p, n, rows, 1);
                if (w > ws) ws = w;
            }
            if (n->op == CKE_OP_LINEAR) {
                const cke_value *w = &ir->v[n->in[1]];
                for (int l = w->layer >= 0 ? 0 : -1; l < (w->layer >= 0 ? ir->n_layer : 0); l++) {
                    int vi = n->in[1];
                    if (l >= 0) {
                        char nm[CKE_IR_NAME + 16];
                        snprintf(nm, sizeof nm, "l%d.%s", l, w->base);
                        vi = cke_ir_find(ir, nm);
                    }
                    const int dt = cke_plan_wdtype(p, vi);
                    const size_t q = dt ? cke_qlinear_ws_size(dt, rows, w->dims[1], w->dims[0], 1) : 0;
                    if (q > ws) ws = q;
                }
            }
            if (al64(ws) > best) best = al64(ws);
        }
    }
    return best;
}

void cke_codegen_embed_sizes(const cke_plan *p, cke_embed_sizes *s) {
#define MAX2(a, b) ((a) > (b) ? (a) : (b))
    s->arena = MAX2(p->prefill.arena_bytes, p->decode.arena_bytes);
    s->scratch = ref_scratch(p);
    s->kv = p->kv_bytes;
    s->posbuf = (size_t)p->prefill.T * sizeof(int32_t);
    s->ram = s->arena + s->scratch + s->kv + s->posbuf;
    int64_t rot = 0;
    for (int i = 0; i < p->ir->nn; i++)
        if (p->ir->n[i].op == CKE_OP_ROPE) rot = p->ir->n[i].a.rot;
    const int nt = p->ir->n_rope_tables > 0 ? p->ir->n_rope_tables : 1;
    s->rope = rot > 0 ? (size_t)nt * (size_t)p->ctx * (size_t)rot * sizeof(float) : 0;
    s->weights = p->weights_bytes;
#undef MAX2
}

/* ------------------------------------------------------------------ model.c's shell */

/* The cos/sin table of every position, as model.so computes it at open (cke_rope_table, times the
 * table's attention factor), written out: read-only data, no cos/sin at run time. */
static cke_status emit_rope_cs(const cke_plan *p, FILE *f, cke_err *err) {
    const cke_ir *ir = p->ir;
    int64_t rot = 0;
    for (int i = 0; i < ir->nn; i++)
        if (ir->n[i].op == CKE_OP_ROPE) rot = ir->n[i].a.rot;
    if (rot <= 0) {
        fputs("#define ROPE_CS_DATA NULL /* no rope */\n\n", f);
        return CKE_OK;
    }
    const int nt = ir->n_rope_tables > 0 ? ir->n_rope_tables : 1;
    const size_t per = (size_t)p->ctx * (size_t)rot;
    float *cs = malloc(per * sizeof(float));
    if (!cs) return cke_fail(err, CKE_ERR_NOMEM, "out of memory for the rope table");
    char lit[32];
    fprintf(f, "/* RoPE cos/sin of every position (cke_rope_table of ROPE_FREQ, times ROPE_ATTN_FACTOR), computed\n"
               " * by the compiler: read-only, as model.so computes it at open */\n"
               "static const float ROPE_CS_DATA[ROPE_TABLES * CTX * ROPE_DIM] = {");
    for (int t = 0; t < nt; t++) {
        cke_rope_table(cs, ir->rope_freq + (size_t)t * (size_t)(rot / 2), p->ctx, rot);
        for (size_t i = 0; i < per; i++) {
            float v = ir->rope_attn_factor[t] != 1.0f ? cs[i] * ir->rope_attn_factor[t] : cs[i];
            fprintf(f, "%s%s,", i % 8 ? " " : "\n    ", cke_codegen_flit(lit, sizeof lit, v));
        }
    }
    fputs("\n};\n\n", f);
    free(cs);
    return CKE_OK;
}

static const char shell_buffers[] =
    "/* ---- embedded runtime: every buffer static, one thread, no allocation, no I/O ---- */\n"
    "#define MAX2(a, b) ((a) > (b) ? (a) : (b))\n"
    "#define ARENA_BYTES MAX2(P_ARENA, D_ARENA)\n"
    "/* the ref kernels' largest workspace (attention, quantized linears), one thread: the planned\n"
    " * P_SCRATCH/D_SCRATCH also hold the SIMD f32 GEMM's packed panels, which cke_gemm_ref does not use */\n"
    "#define SCRATCH_BYTES CKM_SCRATCH_BYTES\n"
    "#define NONZERO(n) ((n) > 0 ? (n) : 1) /* C has no zero-length arrays */\n"
    "_Static_assert(ARENA_BYTES == CKM_ARENA_BYTES && KV_BYTES == CKM_KV_BYTES,\n"
    "               \"model.h states the sizes model.c uses\");\n"
    "static _Alignas(64) char ckm_arena[NONZERO(ARENA_BYTES)];     /* activations */\n"
    "static _Alignas(64) char ckm_scratch[NONZERO(SCRATCH_BYTES)]; /* kernel workspace */\n"
    "static _Alignas(64) unsigned char ckm_kv[KV_BYTES];           /* KV cache */\n"
    "static int32_t ckm_posbuf[PREFILL_T];                         /* positions of a chunk */\n"
    "static ckm_model model;\n"
    "static int ready;\n\n";

static const char shell_api[] =
    "const char *ckm_embed_last_error(void) { return model.err ? model.err : \"\"; }\n"
    "int ckm_embed_pos(void) { return (int)model.pos; }\n"
    "const float *ckm_embed_logits(void) { return model.last_logits; }\n"
    "void ckm_embed_reset(void) { model.pos = 0, model.last_logits = NULL; }\n\n"
    "static const float *fail(const char *msg) {\n"
    "    model.err = msg;\n"
    "    return NULL;\n"
    "}\n\n"
    "/* n tokens at positions pos.. (pos <= the tokens already in the cache: what follows is\n"
    "   overwritten), in chunks of up to PREFILL_T rows; the last row's logits [VOCAB]. */\n"
    "const float *ckm_embed_prefill(const int32_t *tok, int n, int pos) {\n"
    "    if (!ready) return fail(\"call ckm_embed_init first\");\n"
    "    if (!tok || n < 1) return fail(\"no tokens\");\n"
    "    if (pos < 0 || pos > model.pos) return fail(\"pos is negative or past the tokens in the cache (ckm_embed_pos)\");\n"
    "    if (n > CTX - pos) return fail(\"the tokens would run past the context (CKM_CTX)\");\n"
    "    for (int i = 0; i < n; i++)\n"
    "        if (tok[i] < 0 || tok[i] >= VOCAB) return fail(\"a token id is out of range [0, CKM_VOCAB)\");\n"
    "    model.pos = pos;\n"
    "    for (int i = 0; i < n;) {\n"
    "        int t = n - i < PREFILL_T ? n - i : PREFILL_T;\n"
    "        if (t == 1) forward_decode(&model, tok + i, 1);\n"
    "        else forward_prefill(&model, tok + i, t"; /* then ", NULL" when prefill has an all-rows head */
static const char shell_api_tail[] =
    ");\n"
    "        model.pos += t;\n"
    "        i += t;\n"
    "    }\n"
    "    model.err = NULL;\n"
    "    return model.last_logits;\n"
    "}\n\n"
    "const float *ckm_embed_decode(int32_t tok, int pos) { return ckm_embed_prefill(&tok, 1, pos); }\n";

static const char shell_init_const[] =
    "extern const unsigned char ckm_weights[WEIGHTS_BYTES]; /* weights.c: the payload of weights.bin */\n\n"
    "/* The weights are compiled in (weights.c): weights must be NULL and n 0. */\n"
    "int ckm_embed_init(const void *weights, size_t n) {\n"
    "    if (weights || n) { model.err = \"this build has its weights compiled in: pass NULL, 0\"; return -1; }\n"
    "    model.w = (const char *)ckm_weights;\n";

static const char shell_init_blob[] =
    "/* weights: the whole weights.bin of this compile (header and payload) in memory the caller keeps\n"
    " * (flash or RAM), 16-byte aligned; its size, magic and layout hash are checked. */\n"
    "int ckm_embed_init(const void *weights, size_t n) {\n"
    "    const unsigned char *h = weights;\n"
    "    uint64_t hash = 0;\n"
    "    ready = 0;\n"
    "    if (!h) { model.err = \"no weights given\"; return -1; }\n"
    "    if (n != WEIGHTS_HEADER + WEIGHTS_BYTES) { model.err = \"the weights are not CKM_WEIGHTS_FILE_BYTES long (truncated, or not this model's weights.bin)\"; return -1; }\n"
    "    if ((uintptr_t)h % 16) { model.err = \"the weights are not 16-byte aligned\"; return -1; }\n"
    "    memcpy(&hash, h + 8, 8);\n"
    "    if (memcmp(h, \"CKEWGT01\", 8) || hash != LAYOUT_HASH) { model.err = \"not a cke weights file for this model (magic or layout hash differs)\"; return -1; }\n"
    "    model.w = (const char *)h + WEIGHTS_HEADER;\n";

static const char shell_init_tail[] =
    "#ifdef ROPE_TABLE\n"
    "    (void)ROPE_FREQ, (void)ROPE_ATTN_FACTOR; /* what ROPE_CS_DATA was computed from, kept for the reader */\n"
    "#endif\n"
    "    model.kt = &cke_ktable_ref;\n"
    "    model.arena = ckm_arena;\n"
    "    model.scratch = ckm_scratch;\n"
    "    model.kv = ckm_kv;\n"
    "    model.rope_cs = ROPE_CS_DATA;\n"
    "    model.posbuf = ckm_posbuf;\n"
    "    model.last_logits = NULL;\n"
    "    model.pos = 0;\n"
    "    model.err = NULL;\n"
    "    ready = 1;\n"
    "    return 0;\n"
    "}\n\n";

cke_status cke_codegen_emit_embed_shell(const cke_plan *p, const cke_codegen_opts *o, FILE *f, cke_err *err) {
    slot_set s;
    cke_status st = used_slots(p, &s, err);
    if (st) return st;
    fputs("/* ---- kernels: the ref table with only the slots this model calls (qlinear.c reads its block\n"
          " * formats from it too); built with -ffunction-sections -Wl,--gc-sections nothing else links ---- */\n"
          "const cke_ktable cke_ktable_ref = {\n    .name = \"ref\",\n", f);
    for (int i = 0; i < s.n; i++) fprintf(f, "    .%s = cke_%s_ref,\n", s.slot[i], s.slot[i]);
    if (any_qops(&s)) {
        fputs("    .qops = {", f);
        for (int i = 0; i < CKE_QTYPE_COUNT; i++)
            if (s.qops[i]) fprintf(f, "[%d] = &cke_qops_%s_ref, ", i, cke_ktable_for(CKE_ISA_REF)->qops[i]->name);
        fputs("},\n", f);
    }
    fputs("};\n\n", f);
    fputs(shell_buffers, f);
    if ((st = emit_rope_cs(p, f, err))) return st;
    fputs(o->weights_blob ? shell_init_blob : shell_init_const, f);
    fputs(shell_init_tail, f);
    fputs(shell_api, f);
    fputs(p->prefill.n_head ? ", NULL" : "", f);
    fputs(shell_api_tail, f);
    return ferror(f) ? cke_fail(err, CKE_ERR_IO, "codegen: write error") : CKE_OK;
}

/* ------------------------------------------------------------------ the other files of DIR */

static cke_status write_text(const char *dir, const char *name, const char *text, cke_err *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    fputs(text, f);
    return fclose(f) == 0 ? CKE_OK : cke_fail(err, CKE_ERR_IO, "error writing %s", path);
}

static cke_status write_model_h(const cke_plan *p, const cke_codegen_opts *o, const cke_embed_sizes *z,
                                const cke_embed_vocab *voc, const char *dir, cke_err *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.h", dir);
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    int64_t vocab = 0;
    for (int i = 0; i < p->ir->nv; i++)
        if (!strcmp(p->ir->v[i].name, "logits")) vocab = p->ir->v[i].dims[1];
    fprintf(f,
            "/* %s: the embedded build of %s, generated by cke (cke compile --embedded).\n"
            " * One instance, single-threaded; every buffer is a static array of model.c, nothing is allocated.\n"
            " *\n"
            " *   ckm_embed_init(%s);\n"
            " *   const float *logits = ckm_embed_prefill(prompt, n, 0);   // [CKM_VOCAB], NULL on error\n"
            " *   logits = ckm_embed_decode(next, n);                      // the token at position n\n"
            " *   ... ckm_embed_last_error() says why a call returned NULL or -1 */\n"
            "#ifndef CKM_MODEL_H\n#define CKM_MODEL_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
            "#define CKM_VOCAB %lld\n#define CKM_CTX %lld\n#define CKM_PREFILL_T %lld /* rows per prefill forward */\n"
            "#define CKM_WEIGHTS_BLOB %d /* 1: ckm_embed_init takes the weights.bin bytes; 0: compiled in (weights.c) */\n\n"
            "/* static RAM (.bss of model.c) */\n"
            "#define CKM_ARENA_BYTES %zuu   /* activations: max of prefill's and decode's planned arenas */\n"
            "#define CKM_SCRATCH_BYTES %zuu /* kernel workspace: the ref kernels' largest, one thread */\n"
            "#define CKM_KV_BYTES %zuu      /* KV cache: %d layers x %lld positions, %s */\n"
            "#define CKM_POS_BYTES %zuu     /* positions of a prefill chunk */\n"
            "#define CKM_RAM_BYTES %zuu     /* their sum */\n"
            "/* read-only */\n"
            "#define CKM_ROPE_BYTES %zuu    /* RoPE cos/sin table */\n"
            "#define CKM_WEIGHTS_BYTES %zuu /* weights payload (%s) */\n"
            "#define CKM_WEIGHTS_FILE_BYTES %zuu /* weights.bin: a %zu-byte header and the payload */\n\n"
            "int ckm_embed_init(const void *weights, size_t n); /* 0, or -1 (ckm_embed_last_error) */\n"
            "const float *ckm_embed_prefill(const int32_t *tok, int n, int pos);\n"
            "const float *ckm_embed_decode(int32_t tok, int pos);\n"
            "const float *ckm_embed_logits(void); /* the last call's [CKM_VOCAB], or NULL */\n"
            "int ckm_embed_pos(void); /* tokens in the KV cache */\n"
            "void ckm_embed_reset(void); /* an empty cache (the same as the next prefill at pos 0) */\n"
            "const char *ckm_embed_last_error(void);\n\n%s#endif\n",
            o->model_name, o->source_desc, o->weights_blob ? "weights_bin_bytes, CKM_WEIGHTS_FILE_BYTES" : "NULL, 0",
            (long long)vocab, (long long)p->ctx, (long long)p->prefill.T, o->weights_blob != 0, z->arena, z->scratch, z->kv,
            p->ir->n_layer, (long long)p->ctx, cke_kv_type_name((cke_kv_type)p->kv_type), z->posbuf, z->ram, z->rope,
            z->weights, o->weights_blob ? "the caller's weights.bin" : "const, weights.c", p->weights_header + p->weights_bytes,
            p->weights_header,
            !voc ? "#define CKM_HAS_VOCAB 0 /* compiled without a tokenizer */\n\n"
            : voc->strip_first_space
                ? "/* vocab.c: token i's text is ckm_vocab_text[ckm_vocab_off[i] .. ckm_vocab_off[i + 1]) */\n"
                  "#define CKM_HAS_VOCAB 1\n#define CKM_VOCAB_STRIP_FIRST_SPACE 1 /* SentencePiece: a text's first space is the dummy prefix */\n"
                  "extern const unsigned char ckm_vocab_text[];\nextern const uint32_t ckm_vocab_off[CKM_VOCAB + 1];\n\n"
                : "/* vocab.c: token i's text is ckm_vocab_text[ckm_vocab_off[i] .. ckm_vocab_off[i + 1]) */\n"
                  "#define CKM_HAS_VOCAB 1\n#define CKM_VOCAB_STRIP_FIRST_SPACE 0\n"
                  "extern const unsigned char ckm_vocab_text[];\nextern const uint32_t ckm_vocab_off[CKM_VOCAB + 1];\n\n");
    return fclose(f) == 0 ? CKE_OK : cke_fail(err, CKE_ERR_IO, "error writing %s", path);
}

/* main.c; each @@ is replaced by what differs between the const and blob builds (below) */
static const char main_c[] =
    "/* model_main: greedy decoding with the embedded model, for trying it out and for tests.\n"
    " *   model_main [-n STEPS] [--sizes] [-w weights.bin] ID...\n"
    " * The prompt is token ids; the output is the STEPS greedy ids (argmax, the first on ties), one line. */\n"
    "#include \"model.h\"\n\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n"
    "static int usage(FILE *f, int rc) {\n"
    "    fprintf(f, \"usage: model_main [-n STEPS] [--sizes]@@ ID...\\n\"\n"
    "               \"  ID: prompt token ids in [0, %d); prints STEPS (default 16) greedy token ids\\n\"\n"
    "               \"  --sizes: the static RAM and read-only bytes of the model\\n\"\n"
    "               \"  --text: print the tokens' text instead of their ids (when compiled with a vocabulary)\\n\", CKM_VOCAB);\n"
    "    return rc;\n"
    "}\n\n"
    "/* a whole decimal number in [lo, hi], else -1 */\n"
    "static long number(const char *s, long lo, long hi) {\n"
    "    char *end;\n"
    "    long v = strtol(s, &end, 10);\n"
    "    return *s && !*end && v >= lo && v <= hi ? v : -1;\n"
    "}\n\n"
    "/* token id's text (--text); SentencePiece's dummy-prefix space dropped from a text's first piece */\n"
    "static void put_text(int32_t id, int *first) {\n"
    "#if CKM_HAS_VOCAB\n"
    "    const unsigned char *p = ckm_vocab_text + ckm_vocab_off[id];\n"
    "    size_t len = ckm_vocab_off[id + 1] - ckm_vocab_off[id];\n"
    "    if (len && *first && CKM_VOCAB_STRIP_FIRST_SPACE && p[0] == ' ') p++, len--;\n"
    "    if (len) *first = 0;\n"
    "    fwrite(p, 1, len, stdout);\n"
    "#else\n"
    "    (void)id, (void)first;\n"
    "#endif\n"
    "}\n\n"
    "@@"
    "int main(int argc, char **argv) {\n"
    "    static int32_t ids[CKM_CTX];\n"
    "    int n = 0, sizes = 0, text = 0, first = 1;\n"
    "    long steps = 16;\n"
    "    const char *wpath = \"weights.bin\";\n"
    "    (void)wpath;\n"
    "    for (int i = 1; i < argc; i++) {\n"
    "        if (!strcmp(argv[i], \"-h\") || !strcmp(argv[i], \"--help\")) return usage(stdout, 0);\n"
    "        if (!strcmp(argv[i], \"--sizes\")) sizes = 1;\n"
    "        else if (!strcmp(argv[i], \"--text\")) text = 1;\n"
    "        else if (!strcmp(argv[i], \"-n\")) {\n"
    "            if (i + 1 == argc) { fprintf(stderr, \"model_main: -n needs a value\\n\"); return 2; }\n"
    "            if ((steps = number(argv[++i], 0, CKM_CTX)) < 0) {\n"
    "                fprintf(stderr, \"model_main: -n: %s is not a step count (0 to %d)\\n\", argv[i], CKM_CTX);\n"
    "                return 2;\n"
    "            }\n"
    "        }\n"
    "@@"
    "        else if (argv[i][0] == '-' && argv[i][1]) {\n"
    "            fprintf(stderr, \"model_main: unknown option %s\\n\", argv[i]);\n"
    "            return usage(stderr, 2);\n"
    "        } else {\n"
    "            long v = number(argv[i], 0, CKM_VOCAB - 1);\n"
    "            if (v < 0) { fprintf(stderr, \"model_main: %s is not a token id in [0, %d)\\n\", argv[i], CKM_VOCAB); return 2; }\n"
    "            if (n == CKM_CTX) { fprintf(stderr, \"model_main: more prompt ids than the context of %d\\n\", CKM_CTX); return 2; }\n"
    "            ids[n++] = (int32_t)v;\n"
    "        }\n"
    "    }\n"
    "    if (sizes) {\n"
    "        printf(\"static RAM %lu bytes: arena %lu, scratch %lu, KV cache %lu, positions %lu\\n\", (unsigned long)CKM_RAM_BYTES,\n"
    "               (unsigned long)CKM_ARENA_BYTES, (unsigned long)CKM_SCRATCH_BYTES, (unsigned long)CKM_KV_BYTES,\n"
    "               (unsigned long)CKM_POS_BYTES);\n"
    "        printf(\"read-only %lu bytes: weights %lu (%s), rope table %lu\\n\", (unsigned long)(CKM_WEIGHTS_BYTES + CKM_ROPE_BYTES),\n"
    "               (unsigned long)CKM_WEIGHTS_BYTES, CKM_WEIGHTS_BLOB ? \"loaded from weights.bin\" : \"compiled in\",\n"
    "               (unsigned long)CKM_ROPE_BYTES);\n"
    "        if (!n) return 0;\n"
    "    }\n"
    "    if (!n) { fprintf(stderr, \"model_main: no prompt token ids\\n\"); return usage(stderr, 2); }\n"
    "    if (text && !CKM_HAS_VOCAB) { fprintf(stderr, \"model_main: --text: compiled without a tokenizer, so no vocabulary\\n\"); return 2; }\n"
    "    if (n + steps > CKM_CTX) { fprintf(stderr, \"model_main: %d prompt ids and %ld steps exceed the context of %d\\n\", n, steps, CKM_CTX); return 2; }\n"
    "@@"
    "    const float *lg = ckm_embed_prefill(ids, n, 0);\n"
    "    for (long s = 0; s < steps; s++) {\n"
    "        if (!lg) { fprintf(stderr, \"model_main: %s\\n\", ckm_embed_last_error()); return 1; }\n"
    "        int32_t next = 0;\n"
    "        for (int32_t v = 1; v < CKM_VOCAB; v++)\n"
    "            if (lg[v] > lg[next]) next = v;\n"
    "        if (text) put_text(next, &first);\n"
    "        else printf(\"%s%d\", s ? \" \" : \"\", (int)next);\n"
    "        if (s + 1 < steps) lg = ckm_embed_decode(next, n + (int)s);\n"
    "    }\n"
    "    printf(\"\\n\");\n"
    "    return 0;\n"
    "}\n";

/* main.c's pieces that differ: the weights compiled in, or read from a file (the caller's side of
 * the blob: main may use stdio, the model does not) */
static const char main_load_blob[] =
    "/* the whole file in 16-byte aligned memory (malloc's alignment on every target this runs on) */\n"
    "static void *load(const char *path, size_t *n) {\n"
    "    FILE *f = fopen(path, \"rb\");\n"
    "    if (!f) return NULL;\n"
    "    void *buf = malloc(CKM_WEIGHTS_FILE_BYTES + 1);\n"
    "    *n = buf ? fread(buf, 1, CKM_WEIGHTS_FILE_BYTES + 1, f) : 0;\n"
    "    fclose(f);\n"
    "    return buf;\n"
    "}\n\n";
static const char main_opt_blob[] = "        else if (!strcmp(argv[i], \"-w\") && i + 1 < argc) wpath = argv[++i];\n";
static const char main_init_blob[] =
    "    size_t wn = 0;\n"
    "    void *w = load(wpath, &wn);\n"
    "    if (!w) { fprintf(stderr, \"model_main: cannot read %s\\n\", wpath); return 1; }\n"
    "    if (ckm_embed_init(w, wn)) { fprintf(stderr, \"model_main: %s: %s\\n\", wpath, ckm_embed_last_error()); free(w); return 1; }\n";
static const char main_init_const[] =
    "    if (ckm_embed_init(NULL, 0)) { fprintf(stderr, \"model_main: %s\\n\", ckm_embed_last_error()); return 1; }\n";

static cke_status write_main_c(const cke_codegen_opts *o, const char *dir, cke_err *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/main.c", dir);
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    const int b = o->weights_blob != 0;
    const char *const subs[] = {b ? " [-w weights.bin]" : "", b ? main_load_blob : "", b ? main_opt_blob : "",
                                b ? main_init_blob : main_init_const};
    size_t k = 0;
    for (const char *c = main_c; *c;) {
        const char *at = strstr(c, "@@");
        if (!at) { fputs(c, f); break; }
        fwrite(c, 1, (size_t)(at - c), f);
        if (k < sizeof subs / sizeof subs[0]) fputs(subs[k++], f);
        c = at + 2;
    }
    return fclose(f) == 0 ? CKE_OK : cke_fail(err, CKE_ERR_IO, "error writing %s", path);
}

static const char makefile[] =
    "# The embedded build of one model: make (host), or e.g.\n"
    "#   make CC=aarch64-linux-gnu-gcc LDFLAGS=-static OUT=model_a64\n"
    "# Any C11 compiler builds it alone: cc -O2 -o model_main *.c kernels/*.c -lm\n"
    "# -ffunction-sections -Wl,--gc-sections: only the kernels the model's table names are linked.\n"
    "CC ?= cc\n"
    "CFLAGS ?= -std=c11 -O2 -Wall -Wno-unknown-pragmas\n"
    "SECTIONS = -ffunction-sections -fdata-sections\n"
    "SRC = $(wildcard *.c kernels/*.c)\n"
    "OUT = model_main\n\n"
    "$(OUT): $(SRC) model.h\n"
    "\t$(CC) $(CFLAGS) $(SECTIONS) -Wl,--gc-sections $(LDFLAGS) -o $@ $(SRC) -lm\n\n"
    "clean:\n\trm -f $(OUT)\n";

/* ---- the kernel sources: copied flat into DIR/kernels (ref/x.c as ref_x.c, its "../" includes
 * made local), so DIR builds with kernels/\*.c ---- */
typedef struct {
    const char *src; /* under src/kernels (or include/ for cke/kernels.h) */
    const char *dst; /* under DIR/kernels */
    int quant;       /* needed only when the model reads block formats (1) or has experts (2: moe.c's; 1 too) */
} kfile;
static const kfile kfiles[] = {
    {"kdecl.h", "kdecl.h", 0},         {"kthreads.h", "kthreads.h", 0},   {"quant_blocks.h", "quant_blocks.h", 0},
    {"ref/act.c", "ref_act.c", 0},     {"ref/attn.c", "ref_attn.c", 0},   {"ref/embed.c", "ref_embed.c", 0},
    {"ref/gemm.c", "ref_gemm.c", 0},   {"ref/norm.c", "ref_norm.c", 0},   {"ref/rope.c", "ref_rope.c", 0},
    {"linear.c", "linear.c", 0},       {"gemm.c", "gemm.c", 0},           {"ref/quant.c", "ref_quant.c", 1},
    {"qlinear.c", "qlinear.c", 1},     {"qembed.c", "qembed.c", 1},     {"moe.c", "moe.c", 2},
    {"moe_route.h", "moe_route.h", 2}, {"heads.c", "heads.c", 0}, /* per-head windows (MLA): plain copies */
};

static cke_status copy_source(const char *from, const char *to, cke_err *err) {
    FILE *a = fopen(from, "r");
    if (!a) return cke_fail(err, CKE_ERR_MISSING, "embedded build: kernel source %s not found (the embedded build copies cke's "
                            "kernel sources: run cke from its build tree, or set CKE_HOME)", from);
    FILE *b = fopen(to, "w");
    if (!b) { fclose(a); return cke_fail(err, CKE_ERR_IO, "cannot write %s", to); }
    char line[4096];
    while (fgets(line, sizeof line, a)) {
        if (!strncmp(line, "#include \"../", 13)) fprintf(b, "#include \"%s", line + 13); /* flat: ../kdecl.h -> kdecl.h */
        else fputs(line, b);
    }
    int bad = ferror(a);
    fclose(a);
    if (fclose(b) != 0 || bad) return cke_fail(err, CKE_ERR_IO, "error copying %s to %s", from, to);
    return CKE_OK;
}

static cke_status copy_kernels(const cke_plan *p, const char *dir, const char *ksrc, const char *inc, cke_err *err) {
    slot_set s;
    cke_status st = used_slots(p, &s, err);
    if (st) return st;
    char d[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
    snprintf(d, sizeof d, "%s/kernels/cke", dir);
    if ((st = cke_mkdirs(d, err))) return st;
    snprintf(from, sizeof from, "%s/cke/kernels.h", inc);
    snprintf(to, sizeof to, "%s/kernels.h", d);
    if ((st = copy_source(from, to, err))) return st;
    for (size_t i = 0; i < sizeof kfiles / sizeof kfiles[0]; i++) {
        if ((kfiles[i].quant == 1 && !any_qops(&s) && !s.moe) || (kfiles[i].quant == 2 && !s.moe)) continue;
        snprintf(from, sizeof from, "%s/%s", ksrc, kfiles[i].src);
        snprintf(to, sizeof to, "%s/kernels/%s", dir, kfiles[i].dst);
        if ((st = copy_source(from, to, err))) return st;
    }
    return CKE_OK;
}

/* weights.c: weights.bin's payload as a const array (flash on a microcontroller). */
static cke_status write_weights_c(const cke_plan *p, const char *dir, cke_err *err) {
    char bin[PATH_MAX], path[PATH_MAX];
    snprintf(bin, sizeof bin, "%s/weights.bin", dir);
    snprintf(path, sizeof path, "%s/weights.c", dir);
    FILE *a = fopen(bin, "rb");
    if (!a) return cke_fail(err, CKE_ERR_IO, "cannot open %s", bin);
    FILE *f = fopen(path, "w");
    if (!f) { fclose(a); return cke_fail(err, CKE_ERR_IO, "cannot write %s", path); }
    cke_status st = CKE_OK;
    if (fseek(a, (long)p->weights_header, SEEK_SET) != 0) st = cke_fail(err, CKE_ERR_IO, "%s: cannot seek", bin);
    fprintf(f, "/* The weights payload of weights.bin (%zu bytes: every tensor at its offset in model.c's W_ constants),\n"
               " * read-only: flash on a microcontroller. Generated by cke; do not edit. */\n"
               "#include <stddef.h>\n\n"
               "_Alignas(64) const unsigned char ckm_weights[%zu] = {",
            p->weights_bytes, p->weights_bytes);
    unsigned char buf[1 << 15];
    size_t at = 0;
    while (!st && at < p->weights_bytes) {
        size_t want = p->weights_bytes - at < sizeof buf ? p->weights_bytes - at : sizeof buf;
        size_t got = fread(buf, 1, want, a);
        if (got != want) { st = cke_fail(err, CKE_ERR_IO, "%s: short read", bin); break; }
        for (size_t i = 0; i < got; i++, at++) fprintf(f, "%s%u,", at % 24 ? "" : "\n", buf[i]);
    }
    fputs("\n};\n", f);
    fclose(a);
    if (fclose(f) != 0 && !st) st = cke_fail(err, CKE_ERR_IO, "error writing %s", path);
    if (!st && remove(bin) != 0) st = cke_fail(err, CKE_ERR_IO, "cannot remove %s: %s", bin, strerror(errno));
    return st;
}

static cke_status append_map(const cke_plan *p, const cke_codegen_opts *o, const cke_embed_sizes *z, const char *dir,
                             cke_err *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/memory_map.txt", dir);
    FILE *f = fopen(path, "a");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot append to %s", path);
    fprintf(f, "\nembedded build (model.c, one thread; decode_batch is not built):\n"
               "  static RAM  %12zu bytes (.bss): arena %zu (max of prefill's and decode's), scratch %zu (the ref kernels'\n"
               "              largest workspace, one thread; the planned scratch above also holds the SIMD GEMM's panels),\n"
               "              KV cache %zu, positions %zu\n"
               "  read-only   %12zu bytes: weights %zu (%s), rope cos/sin table %zu\n",
            z->ram, z->arena, z->scratch, z->kv, z->posbuf, z->weights + z->rope, z->weights,
            o->weights_blob ? "the caller's weights.bin, passed to ckm_embed_init" : "const array in weights.c", z->rope);
    (void)p;
    return fclose(f) == 0 ? CKE_OK : cke_fail(err, CKE_ERR_IO, "error writing %s", path);
}

/* vocab.c: every token's text in one array, offsets beside it (pieces may hold NUL bytes) */
static cke_status write_vocab_c(const cke_embed_vocab *v, int64_t vocab, const char *dir, cke_err *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/vocab.c", dir);
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    const uint32_t total = v->off[v->n];
    fprintf(f, "/* The tokenizer's text of each of the %lld token ids (special tokens empty), for model_main --text.\n"
               " * Generated by cke; do not edit. */\n#include \"model.h\"\n\n"
               "const unsigned char ckm_vocab_text[%u] = {", (long long)vocab, total ? total : 1u);
    for (uint32_t i = 0; i < total; i++) fprintf(f, "%s%u,", i % 24 ? "" : "\n", (unsigned char)v->text[i]);
    fprintf(f, "%s\n};\nconst uint32_t ckm_vocab_off[CKM_VOCAB + 1] = {", total ? "" : "0");
    for (int64_t i = 0; i <= vocab; i++) fprintf(f, "%s%u,", i % 12 ? " " : "\n", i <= v->n ? v->off[i] : total);
    fputs("\n};\n", f);
    return fclose(f) == 0 ? CKE_OK : cke_fail(err, CKE_ERR_IO, "error writing %s", path);
}

cke_status cke_codegen_embed_files(const cke_plan *p, const cke_codegen_opts *o, const char *dir, const char *kernels_src,
                                   const char *include_dir, const cke_embed_vocab *vocab, cke_err *err) {
    cke_embed_sizes z;
    cke_codegen_embed_sizes(p, &z);
    int64_t nv = 0;
    for (int i = 0; i < p->ir->nv; i++)
        if (!strcmp(p->ir->v[i].name, "logits")) nv = p->ir->v[i].dims[1];
    if (vocab && vocab->n > nv)
        return cke_fail(err, CKE_ERR_SHAPE, "embedded build: the vocabulary has %lld tokens, the model %lld", (long long)vocab->n,
                        (long long)nv);
    cke_status st = write_model_h(p, o, &z, vocab, dir, err);
    if (!st && vocab) st = write_vocab_c(vocab, nv, dir, err);
    if (!st) st = write_main_c(o, dir, err);
    if (!st) st = write_text(dir, "Makefile", makefile, err);
    if (!st) st = copy_kernels(p, dir, kernels_src, include_dir, err);
    if (!st && !o->weights_blob) st = write_weights_c(p, dir, err);
    if (!st) st = append_map(p, o, &z, dir, err);
    return st;
}
