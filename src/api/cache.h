/* The compile cache (layout in src/cli/cache.h): where a model file's compiled directory lives and
 * compiling it there on first use. The one implementation, used by cke_engine_open and by the
 * command line (which adds messages and Ctrl-C handling around it). */
#ifndef CKE_API_CACHE_H
#define CKE_API_CACHE_H

#include "cke/status.h"

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* The cache folder: $CKE_CACHE, else $XDG_CACHE_HOME/cke, else ~/.cache/cke. */
void cke_cache_base(char *base, size_t n);

typedef struct {
    char abs[PATH_MAX];   /* the model's absolute path */
    char entry[PATH_MAX]; /* CACHE/NAME-HASH */
    char dir[PATH_MAX];   /* entry/ctx-... : the compiled directory */
    const char *tok;      /* the tokenizer given (hashed into the entry) */
    int64_t ctx;
    int keep_f32;         /* $CKE_KEEP_F32 */
    int kv_type;          /* cke_kv_type the variant is compiled with */
    int present;          /* dir holds a model.so */
    int tp_rank, tp_size; /* tensor parallel: rank tp_rank's block of tp_size (0, 0: the whole model) */
} cke_cache_slot;

/* Where MODEL (a file or Hugging Face directory; tok: a llama2.c tokenizer or NULL) compiled for
 * ctx (0: the model's own) and KV cache type kv_type (cke_kv_type) lives: one variant folder per
 * (ctx, kv_type, ...). CKE_ERR_IO when the model cannot be found. */
cke_status cke_cache_find(const char *model, const char *tok, int64_t ctx, int kv_type, cke_cache_slot *slot,
                          cke_err *err);
/* The same model as tensor-parallel rank `rank` of `size` (size > 1): its own variant folder
 * ("...-tp2r0"), compiled with --tp-size/--tp-rank. */
cke_status cke_cache_set_tp(cke_cache_slot *slot, int rank, int size, cke_err *err);
/* Compiles slot->dir (creating the entry; nothing is left on failure or cancel). cancel may be NULL. */
cke_status cke_cache_compile(const cke_cache_slot *slot, const volatile sig_atomic_t *cancel, cke_err *err);
/* Marks the compiled directory as used now (`cke cache list`, `clean --older-than`). */
void cke_cache_touch(const cke_cache_slot *slot);

#endif
