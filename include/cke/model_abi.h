/* The ABI of a compiled cke model (.so). A model directory holds model.so + weights.bin; a
 * program needs only this header, dlopen and dlsym("ckm_api") to run it:
 *
 *   const ckm_api *api = ((const ckm_api *(*)(void))dlsym(h, "ckm_api"))();
 *   ckm_model *m = api->open("dir/weights.bin", nthreads, err, sizeof err);
 *   api->prefill(m, prompt, n);  const float *logits = api->logits(m);  // [vocab]
 *   api->decode(m, next_token);  ...  api->reset(m);  api->free(m);
 *   api->prefill_all(m, text, n, all);  // all: [n, vocab], every position's logits
 *
 * No global state: every instance owns its arena, KV cache and weights mapping, so two models,
 * or two instances of one model, run side by side in one process. */
#ifndef CKE_MODEL_ABI_H
#define CKE_MODEL_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKM_ABI_VERSION 3 /* 3: prefill_all */

typedef struct ckm_model ckm_model;

/* Called after every op when tracing is on: the IR value's name, its layer (-1 outside the layer
 * loop), the first absolute position of its rows, and its data [rows, cols] (row-major f32). */
typedef void (*ckm_trace_fn)(void *ud, const char *name, int layer, int64_t pos0, const float *data,
                             int64_t rows, int64_t cols);

/* A weight tensor: its name (IR), shape and place in weights.bin's payload (f32). */
typedef struct {
    const char *name;
    int ndim;
    int64_t dims[4];
    size_t offset;
    int64_t numel;
} ckm_tensor;

typedef struct {
    int abi_version;       /* CKM_ABI_VERSION */
    const char *family;    /* template family, e.g. "llama" */
    const char *model_name;
    int64_t vocab;
    int64_t ctx;           /* positions the KV cache holds */
    int64_t prefill_chunk; /* longest prompt piece one prefill call runs at once */
    uint64_t layout_hash;  /* must match the weights file header */

    /* Maps the weights file and allocates the arena and KV cache. NULL on error, with a message
     * in err (a missing or truncated file, a layout that is not this model's). */
    ckm_model *(*open)(const char *weights_path, int nthreads, char *err, size_t errlen);
    void (*free)(ckm_model *m);
    /* Appends n tokens (any n; split into chunks internally). Returns 0, or -1 when the context
     * would overflow or a token id is out of range (nothing is appended then). */
    int (*prefill)(ckm_model *m, const int32_t *tokens, int64_t n);
    /* Appends one token; same return as prefill. */
    int (*decode)(ckm_model *m, int32_t token);
    const float *(*logits)(const ckm_model *m); /* [vocab] of the last appended token */
    int64_t (*pos)(const ckm_model *m);         /* tokens in the context */
    void (*reset)(ckm_model *m);                /* empty the context */
    void (*set_trace)(ckm_model *m, ckm_trace_fn fn, void *ud); /* NULL fn: off */
    const char *(*last_error)(const ckm_model *m);

    /* ---- the weights, and training (NULL / 0 when compiled without a training mode) ---- */
    int n_tensors;
    const ckm_tensor *tensors;
    int64_t train_batch, train_seq; /* one step runs train_batch sequences of train_seq tokens */
    /* Makes the weights writable and allocates gradients, AdamW moments and activations. 0 / -1. */
    int (*train_init)(ckm_model *m);
    /* Forward over tokens/targets [train_batch * train_seq] (target -1: ignored); with backward,
     * gradients of dscale * (summed loss) accumulate. Returns the summed loss. */
    double (*train_run)(ckm_model *m, const int32_t *tokens, const int32_t *targets, float dscale, int backward);
    void (*zero_grad)(ckm_model *m);
    double (*grad_sumsq)(ckm_model *m);  /* squared global norm of the gradients */
    /* AdamW over every tensor (decay on matrices only); gradients are used times gscale. */
    void (*adamw)(ckm_model *m, float lr, float beta1, float beta2, float eps, float wd, int64_t step, float gscale);
    /* 0 weights, 1 gradients, 2 AdamW m, 3 AdamW v: f32 in the layout of `tensors` */
    char *(*state)(ckm_model *m, int which);

    /* ---- ABI 3 ---- */
    /* Appends n tokens as prefill does and writes the logits of every one of them: logits
     * [n, vocab], row i the prediction after tokens[0..i] (scoring a text in one batched pass).
     * logits() then gives row n-1. Same return as prefill; the rows are the output head run over
     * the whole chunk, the same kernels prefill runs on its last row. */
    int (*prefill_all)(ckm_model *m, const int32_t *tokens, int64_t n, float *logits);
} ckm_api;

/* The one exported symbol. */
const ckm_api *ckm_api_get(void);

#ifdef __cplusplus
}
#endif
#endif
