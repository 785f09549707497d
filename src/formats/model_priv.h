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

/* Hyperparameter bounds. Far above any real model (dims of 2^16 heads, 2^20 wide, 2^24 tokens),
 * and small enough that every product the shape checks form (heads * head_dim, vocab * dim,
 * ctx * dim) stays far inside int64: a file cannot make the arithmetic overflow. */
#define CKE_HP_MAX_DIM ((int64_t)1 << 20)   /* embedding width */
#define CKE_HP_MAX_LAYERS ((int64_t)1 << 16)
#define CKE_HP_MAX_HEADS ((int64_t)1 << 16) /* heads, kv heads, head_dim, rope dims */
#define CKE_HP_MAX_FFN ((int64_t)1 << 24)
#define CKE_HP_MAX_VOCAB ((int64_t)1 << 24)
#define CKE_HP_MAX_CTX ((int64_t)1 << 30)   /* context, sliding window, rope original context */
#define CKE_HP_MAX_EXPERTS ((int64_t)1 << 12) /* experts per layer (real models: 8 to 256) */

/* key (as the file names it) must lie in [lo, hi]; the error names the key and the value. */
cke_status cke_hp_int(const char *key, int64_t v, int64_t lo, int64_t hi, cke_err *err);
/* key must be a finite number in [lo, hi], or in (lo, hi] when lo_open. */
cke_status cke_hp_float(const char *key, double v, double lo, bool lo_open, double hi, cke_err *err);
/* Fills the defaults that follow from other hyperparameters (head_dim, n_kv_heads, rope dims,
 * scales) and checks them all: positive sizes in bounds, heads that divide, finite floats in
 * range. Loaders call it before any arithmetic on the values (tensor splits); when !final,
 * vocab (which a GGUF may only give through token_embd) may still be 0. */
cke_status cke_model_check_hparams(cke_model *m, bool final, cke_err *err);

cke_status cke_model_load_gguf(cke_model *m, cke_err *err);
cke_status cke_model_load_hf(cke_model *m, const char *dir, cke_err *err);
/* config.json text -> arch + hparams (exposed for tests via model.c users only). */
cke_status cke_model_parse_hf_config(const char *json, size_t len, cke_arch *arch, cke_hparams *hp, cke_err *err);

#endif
