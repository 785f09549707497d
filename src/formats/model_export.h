/* Normalized model -> GGUF in llama.cpp's conventions (architecture keys, tensor names, the rope
 * row layout llama.cpp runs each architecture with, GPT-2's fused attn_qkv, Gemma's norm weights
 * with the +1 folded in), so that `cke quantize` takes Hugging Face directories and llama2.c
 * checkpoints as well as GGUF files. Tensors come back as f32 for the caller to encode. */
#ifndef CKE_MODEL_EXPORT_H
#define CKE_MODEL_EXPORT_H

#include "formats/gguf.h"
#include "formats/model.h"

typedef struct {
    char name[96]; /* GGUF name */
    int ndim;
    int64_t ne[4]; /* GGUF order: ne[0] innermost */
    float *data;
} cke_xtensor;

/* The GGUF architecture name of an arch and the rope layout llama.cpp uses for it; NULL when GGUF
 * has no such architecture in cke's reader. (model_gguf.c) */
const char *cke_gguf_arch_name(cke_arch a, cke_rope_layout *rope);
/* canonical tensor name -> GGUF name in buf, or NULL. (model_gguf.c) */
const char *cke_gguf_tensor_name(const char *canon, char *buf, size_t n);

/* Writes general.architecture, general.name and the architecture's hyperparameter keys to w and
 * returns every tensor as f32 (*out, *n; free with cke_xtensors_free). CKE_ERR_UNSUPPORTED names
 * what GGUF (as cke reads it) cannot express: Phi-3, llama3 rope scaling, a non-default
 * attention scale. */
cke_status cke_model_export_gguf(const cke_model *m, cke_gguf_writer *w, cke_xtensor **out, int64_t *n, cke_err *err);
void cke_xtensors_free(cke_xtensor *x, int64_t n);

#endif
