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

#include <stdio.h>

typedef struct {
    const char *model_name;   /* shown in the ABI and the file comment */
    const char *source_desc;  /* "stories260K.bin (llama2.c v0)" */
} cke_codegen_opts;

cke_status cke_codegen_emit(const cke_plan *p, const cke_codegen_opts *o, FILE *out, cke_err *err);

/* Fetches a weight as f32 into dst (numel floats). */
typedef cke_status (*cke_weight_fetch)(void *ud, const char *name, float *dst, int64_t numel, cke_err *err);

/* weights.bin: a 4096-byte header ("CKEWGT01", layout hash, payload bytes, header bytes,
 * tensor count) then every tensor at its planned offset. Written to a temporary file and
 * renamed, so a crash never leaves a half-written file under the final name. */
cke_status cke_weights_write(const cke_plan *p, const char *path, cke_weight_fetch fetch, void *ud, cke_err *err);

/* Compiles model.c into model.so with the system compiler, linking the kernel library.
 * include_dir holds cke/kernels.h; libk is libckekernels.a. The compiler's output goes to log. */
cke_status cke_codegen_compile(const char *c_path, const char *so_path, const char *include_dir,
                               const char *libk, const char *log_path, cke_err *err);

#endif
