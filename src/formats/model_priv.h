/* Internals shared by model.c and its per-source loaders (model_gguf.c, model_hf.c). */
#ifndef CKE_FORMATS_MODEL_PRIV_H
#define CKE_FORMATS_MODEL_PRIV_H

#include "formats/arena.h"
#include "formats/gguf.h"
#include "formats/mapfile.h"
#include "formats/model.h"
#include "formats/safetensors.h"

struct cke_model_priv {
    cke_arena arena;      /* names, owned (transposed) tensor data */
    cke_gguf *gguf;
    cke_safetensors *st;
    cke_map map;          /* llama2.c */
    int64_t cap;
    const cke_model_tensor **sorted;
};

#define TRY(x) do { cke_status s_ = (x); if (s_) return s_; } while (0)

/* Appends a tensor; shape outermost first. name/src_name are copied. */
cke_status cke_model_add(cke_model *m, const char *name, const char *src_name, cke_dtype dt, int ndim,
                         const int64_t *shape, const void *data, int64_t nbytes, int file, uint64_t off,
                         bool owned, cke_err *err);
/* Fills defaults, sorts, validates names/shapes against hp. */
cke_status cke_model_finish(cke_model *m, cke_err *err);
/* Row-slices [r0, r0+nr) of a tensor (rows = outermost dim) as a new tensor. */
cke_status cke_model_add_rows(cke_model *m, const char *name, const cke_model_tensor *src, int64_t r0,
                              int64_t nr, cke_err *err);

cke_status cke_model_load_gguf(cke_model *m, cke_err *err);
cke_status cke_model_load_hf(cke_model *m, const char *dir, cke_err *err);
/* config.json text -> arch + hparams (exposed for tests via model.c users only). */
cke_status cke_model_parse_hf_config(const char *json, size_t len, cke_arch *arch, cke_hparams *hp, cke_err *err);

#endif
