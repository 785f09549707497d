/* The compiler driver: model file -> model directory.
 *
 *   model (GGUF | HF dir | llama2.c .bin) --formats--> cke_model
 *     + src/templates/<family>.json --ir--> IR --plan--> lowered modes + memory plan
 *     --codegen--> model.c, weights.bin --cc--> model.so
 *
 * The directory appears atomically: it is built in a temporary directory beside it
 * (.NAME.tmp-PID-XXXXXX) and renamed into place when complete; a failure or an interruption
 * removes the temporary directory. An existing output directory is replaced (atomically, by
 * RENAME_EXCHANGE) only when it is empty or a cke model directory; anything else is refused.
 *
 * The directory holds everything needed to run the model and to read what was built:
 *   model.so  weights.bin  model.c  ir.json  layout.json  memory_map.txt  build.log
 *   tokenizer.{bin,json,gguf}  cke-model.txt (what was compiled from what)
 * An embedded build (opts.embedded) holds instead: model.c model.h main.c Makefile kernels/
 *   weights.c (or weights.bin) memory_map.txt ir.json layout.json cke-model.txt */
#ifndef CKE_DRIVER_COMPILE_H
#define CKE_DRIVER_COMPILE_H

#include "cke/status.h"

#include "cke/cke.h" /* cke_kv_type */

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *out_dir;
    const char *tokenizer;     /* llama2.c: the tokenizer.bin; NULL to look beside the model */
    const char *templates_dir; /* where <family>.json live */
    const char *include_dir;   /* cke headers for compiling model.c */
    const char *libk;          /* libckekernels.a */
    const char *target;        /* NULL: this machine; a triple ("aarch64-linux-gnu", --target): model.so is
                                * cross-compiled with that target's compiler and kernel library */
    int64_t ctx;               /* KV cache positions; 0 = the model's context (capped at 4096) */
    int64_t prefill_chunk;     /* 0 = 512 (or ctx if smaller) */
    int max_threads;           /* workspace planned for this many threads; 0 = 16 */
    int64_t train_batch;       /* > 0: add a training mode for train_batch x train_seq tokens */
    int64_t train_seq;
    int train_recompute;
    int train_bf16;            /* training's linear layers in mixed precision (kt->gemm_bf16) */
    int canaries;              /* debug build: canaries between activations, checked after every op */
    int kv_type;               /* cke_kv_type of the KV cache: 0 = CKE_KV_F16 (default), CKE_KV_F32 */       /* recompute each layer's activations in the backward (checkpointing) */
    int quiet;
    int keep_f32;              /* 1: convert every weight to f32 (the default keeps matmul weights in
                                * their file format: F16, BF16, Q8_0, Q4_0 ... Q6_K; training forces f32) */
    const volatile sig_atomic_t *cancel; /* non-NULL: when *cancel becomes non-zero (a signal handler),
                                          * the compile stops, the C compiler is killed, nothing is left */
    int keep_existing;         /* out_dir appeared meanwhile (another process compiled it): keep it and
                                * discard ours (the cache); 0: replace it */
    int tp_rank, tp_size;      /* tensor parallel: compile rank tp_rank's block of tp_size (0/0 or 0/1: the
                                * whole model); training is refused */
    const char *reuse_weights; /* a folder whose subfolders may hold a weights.bin of the same source and
                                * layout (other --ctx of one cache entry): hard-linked, not rewritten */
    int embedded;              /* 1: a standalone C program for one model instead of model.so (--embedded):
                                * model.c (static buffers, one thread, no I/O), model.h, main.c, Makefile,
                                * kernels/ (the ref kernel sources it calls), weights.c or weights.bin */
    int weights_blob;          /* embedded: the caller passes weights.bin's bytes (else weights.c, const) */
    const char *kernels_dir;   /* embedded: cke's src/kernels; NULL = beside templates_dir (../kernels) */
    int moe_aux_set;           /* 1: training's load-balancing loss weighs moe_aux_coef instead of the model's
                                * (HF: router_aux_loss_coef with output_router_logits; GGUF: none) */
    double moe_aux_coef;
} cke_compile_opts;

cke_status cke_compile(const char *model_path, const cke_compile_opts *o, cke_err *err);

/* Deletes a directory tree (nftw, symbolic links not followed); a missing path is fine. err may be NULL. */
/* The model a compiled directory was compiled from (the `source` line of its cke-model.txt), or
 * "" when the file or the line is missing. */
void cke_compiled_source(const char *dir, char *out, size_t n);
/* The value of cke-model.txt's line `KEY VALUE` (kv_type, ctx ...), or "" when missing. */
void cke_compiled_field(const char *dir, const char *key, char *out, size_t n);

cke_status cke_rmtree(const char *path, cke_err *err);

/* The PID in a temporary directory's name (".NAME.tmp-PID-XXXXXX"), 0 when name is not one. */
long cke_compile_tmp_pid(const char *name);

/* Finds cke's own resources relative to the running code (cke, or libcke.so): in the build tree
 * (build/cke -> include/, src/templates/, build/libckekernels.a) or an installed prefix
 * (PREFIX/bin/cke -> PREFIX/include, share/cke/templates, lib/cke/libckekernels.a). CKE_HOME
 * names a build tree's root and overrides both. */
cke_status cke_locate_resources(char *include_dir, char *templates_dir, char *libk, size_t n, cke_err *err);

#endif
