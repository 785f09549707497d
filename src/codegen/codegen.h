/* Code generation: a plan -> readable, deterministic C (model.c) -> model.so, and the weights
 * file (weights.bin) in the planned order.
 *
 * The generated C reads like hand-written llama2.c: hyperparameters and offsets as named
 * constants, values named after the IR ("attn_in", "q_rope"), one comment per op with its
 * shapes, a loop over the uniform layers with per-layer weight offsets, one forward function
 * per lowered mode (prefill, decode). It includes only cke/kernels.h and cke/model_abi.h and is
 * linked with the static kernel library into a self-contained .so. */
#ifndef CKE_CODEGEN_H
#define CKE_CODEGEN_H

#include "cke/status.h"
#include "plan/plan.h"

#include <signal.h>
#include <stdio.h>

struct cke_train_plan;

typedef struct {
    const struct cke_train_plan *train; /* NULL: inference only */
    const char *model_name;   /* shown in the ABI and the file comment */
    const char *source_desc;  /* "stories260K.bin (llama2.c v0)" */
    int embedded;             /* the standalone embedded program's model.c (codegen_embed.c): the same
                               * forward functions in a shell of static buffers, one thread, no I/O */
    int weights_blob;         /* embedded: weights passed in by the caller (else a const array) */
} cke_codegen_opts;

cke_status cke_codegen_emit(const cke_plan *p, const cke_codegen_opts *o, FILE *out, cke_err *err);

/* The training section of model.c (codegen_train.c): train_run, AdamW, norms, the tensor table,
 * and the glue the ABI table points at (all absent, NULL in the ABI, when tp is NULL). */
cke_status cke_codegen_emit_train(const struct cke_train_plan *tp, FILE *f, cke_err *err);
cke_status cke_codegen_emit_train_glue(const cke_plan *p, const struct cke_train_plan *tp, FILE *f, cke_err *err);

/* Profile build: train_run's ops are prof_ops[base ..] after the inference modes' (codegen.c);
 * cke_codegen_train_prof_ops emits their entries in the order codegen_train.c times them. */
int cke_codegen_train_prof_base(const cke_plan *p);

/* An attention attribute ("window", "softcap", "scale") of layer-0 node n as C: the per-layer
 * array element L_<value>_<attr>[l] when it differs between layers, else the literal. */
const char *cke_codegen_attn_attr(char *buf, size_t nb, const cke_ir *ir, const cke_node *n, const char *attr);

/* A moe node's routing as a C compound literal of cke_moe_gate (kernels.h), bias the C expression of
 * its choice bias ("NULL" when it has none); returns buf. */
const char *cke_codegen_moe_gate(char *buf, size_t nb, const cke_node *n, const char *bias);

/* A float as a C literal that round-trips ("1e-05f", "0.0f"); returns buf. */
const char *cke_codegen_flit(char *buf, size_t n, float x);

/* ---- the embedded build (codegen_embed.c): `cke compile MODEL --embedded -o DIR` ----
 * model.c's shell around the forward functions: the ref kernel table cut down to the slots the
 * model calls, the arena, scratch and KV cache as static arrays, ckm_embed_init/prefill/decode. */
cke_status cke_codegen_emit_embed_shell(const cke_plan *p, const cke_codegen_opts *o, FILE *f, cke_err *err);

/* Static RAM and read-only bytes of an embedded build (model.h, memory_map.txt, main --sizes). */
typedef struct {
    size_t arena, scratch, kv, posbuf; /* static RAM: .bss */
    size_t ram;                        /* their sum */
    size_t rope;                       /* read-only: the cos/sin table */
    size_t weights;                    /* read-only: the payload (const) or the caller's blob */
} cke_embed_sizes;
void cke_codegen_embed_sizes(const cke_plan *p, cke_embed_sizes *s);

/* Writes the rest of an embedded DIR next to model.c: model.h, main.c, Makefile, the kernel
 * sources the model calls (copied from kernels_src and include_dir into DIR/kernels), weights.c
 * from DIR/weights.bin (const weights: weights.bin is then removed), vocab.c when there is a
 * vocabulary, the embedded section of memory_map.txt. */
/* The tokenizer's text of every token for main.c --text (vocab.c): token i's bytes are
 * text[off[i] .. off[i + 1]), special tokens empty; strip_first_space: SentencePiece's dummy prefix,
 * dropped from the first piece of a decoded text. */
typedef struct {
    int64_t n;
    const char *text;
    const uint32_t *off; /* [n + 1] */
    int strip_first_space;
} cke_embed_vocab;

cke_status cke_codegen_embed_files(const cke_plan *p, const cke_codegen_opts *o, const char *dir, const char *kernels_src,
                                   const char *include_dir, const cke_embed_vocab *vocab /* or NULL */, cke_err *err);

/* Fetches a weight as f32 into dst (numel floats). */
typedef cke_status (*cke_weight_fetch)(void *ud, const char *name, float *dst, int64_t numel, cke_err *err);

/* weights.bin: a 4096-byte header ("CKEWGT01", layout hash, payload bytes, header bytes,
 * tensor count) then every tensor at its planned offset. Written to a temporary file and
 * renamed, so a crash never leaves a half-written file under the final name. */
/* Fetches a weight's raw bytes in its stored format (slots with dtype != 0): bytes = the slot size. */
typedef cke_status (*cke_weight_fetch_raw)(void *ud, const char *name, int dtype, void *dst, size_t bytes, cke_err *err);
cke_status cke_weights_write(const cke_plan *p, const char *path, cke_weight_fetch fetch, cke_weight_fetch_raw fetch_raw,
                             void *ud, cke_err *err);

/* Compiles model.c into model.so with the system compiler ($CC, default cc), linking the kernel
 * library. include_dir holds cke/kernels.h; libk is libckekernels.a. The compiler runs from an
 * argv array (no shell) in a process group of its own; its output goes to log_path, and the
 * log's last lines are in the error. cancel (may be NULL): when it becomes non-zero (a signal
 * handler sets it) the compiler's group is killed and CKE_ERR_IO "interrupted: ..." returned. */
cke_status cke_codegen_compile(const char *c_path, const char *so_path, const char *include_dir,
                               const char *libk, const char *log_path, const volatile sig_atomic_t *cancel,
                               cke_err *err);
/* The same with one macro defined (-DNAME), e.g. CKM_PROFILE for the profiled model_prof.so;
 * NULL: none. */
cke_status cke_codegen_compile_defs(const char *c_path, const char *so_path, const char *include_dir,
                                    const char *libk, const char *log_path, const char *define,
                                    const volatile sig_atomic_t *cancel, cke_err *err);
/* The same with the compiler named (a cross compiler: cke compile --target); NULL: $CC or cc. */
cke_status cke_codegen_compile_cc(const char *cc, const char *c_path, const char *so_path, const char *include_dir,
                                  const char *libk, const char *log_path, const char *define,
                                  const volatile sig_atomic_t *cancel, cke_err *err);

#endif
