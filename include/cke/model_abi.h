/* The ABI of a compiled cke model (.so). A model directory holds model.so + weights.bin; a
 * program needs only this header, dlopen and dlsym("ckm_api_get") to run it (or, with tokenizer,
 * chat template and sampling, libcke: cke/cke.h):
 *
 *   const ckm_api *api = ((const ckm_api *(*)(void))dlsym(h, "ckm_api_get"))();
 *   ckm_model *m = api->open("dir/weights.bin", nthreads, err, sizeof err);
 *   api->prefill(m, prompt, n);  const float *logits = api->logits(m);  // [vocab]
 *   api->decode(m, next_token);  ...  api->reset(m);  api->free(m);
 *   api->prefill_all(m, text, n, all);  // all: [n, vocab], every position's logits
 *
 * Continuous batching (ABI 5): an instance with n KV slots, one sequence each, decoded together:
 *
 *   ckm_model *m = api->open_slots("dir/weights.bin", nthreads, 8, err, sizeof err);
 *   api->slot_prefill(m, 0, prompt_a, na);  api->slot_prefill(m, 3, prompt_b, nb);
 *   int32_t tok[2] = {ta, tb}, slot[2] = {0, 3};
 *   api->decode_batch(m, 2, tok, slot, logits);  // logits: [2, vocab], one forward for both
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

#define CKM_ABI_VERSION 7 /* 3: prefill_all; 4: profiling (prof_ops, set_profile); 5: KV slots, decode_batch;
                            * 6: f16 KV cache (the kernel table's attn_fwd_f16, f32_to_f16);
                            * 7: tensor parallel (tp_rank, tp_size, set_allreduce), set_grad_hook
                            * (data-parallel overlap) */

typedef struct ckm_model ckm_model;

/* Tensor parallel (ABI 7): out[0..n) = the sum over the ranks of each rank's in[0..n); 0 or -1. */
typedef int (*ckm_allreduce_fn)(void *ud, float *out, const float *in, int64_t n);

/* Called after every op when tracing is on: the IR value's name, its layer (-1 outside the layer
 * loop), the first absolute position of its rows, and its data [rows, cols] (row-major f32). */
typedef void (*ckm_trace_fn)(void *ud, const char *name, int layer, int64_t pos0, const float *data,
                             int64_t rows, int64_t cols);

/* Profiling (ABI 4). model.c compiled with -DCKM_PROFILE (model_prof.so, built by `cke profile`)
 * times every op and calls the profile hook after it; a normal model.so has no timing code at
 * all (prof_ops NULL, set_profile NULL). One entry per op of each lowered mode, in execution
 * order; what the op reads and computes, from the plan's shapes and stored formats, as per-call
 * terms (T: the call's token rows, keys: query-key pairs the attention scores):
 *   flops         = flops_row * T + flops_pair * keys
 *   bytes_weights = weight matrix (w_rows x w_cols in qtype) + w_extra + w_row * T
 *   bytes_act     = act_row * T + act_const
 *   bytes_kv      = kv_row * T (written) + kv_key * (keys visible to the last row) (read)
 * Training ops (modes 2-4) run on R = batch x seq rows; their attention terms are per row. */
typedef struct {
    int mode;             /* 0 prefill, 1 decode, 2 train forward, 3 train backward, 4 optimizer, 5 decode_batch */
    int step;             /* position in the mode's schedule (prefill_all's head after it) */
    const char *name;     /* IR value: the template name ("attn_q") for layer ops, else the full one */
    int per_layer;        /* runs once per layer: the value is "l<layer>.<name>" */
    const char *op;       /* IR op kind: "linear", "rmsnorm", "attention" ... */
    const char *shape;    /* "[T,64] . [64,64]^T": T is the call's rows */
    int qtype;            /* weight matrix storage, ggml type id (0 f32), layer 0's; -1: no matrix */
    const int *qtype_l;   /* [n_layer] when layers store it differently (K_M recipes), else NULL */
    int64_t w_rows, w_cols;
    double w_extra, w_row;
    double flops_row, flops_pair;
    double act_row, act_const;
    double kv_row, kv_key;
    int64_t window;       /* attention: sliding window (0 none); window_l per layer when it varies */
    const int64_t *window_l;
    int64_t head_dim;     /* attention (for the kernel's name) */
} ckm_prof_op;

/* Called after every op of model_prof.so when set: prof_ops[op], its layer (-1 outside the layer
 * loop), thread -1, the op's rows and first position, and its start and end (omp_get_wtime
 * seconds, on the calling thread: the kernels' own parallel regions run inside that interval).
 * An op whose parallel region is in model.c itself (AdamW) then reports each thread's own busy
 * interval inside it (thread >= 0), from the calling thread. */
typedef void (*ckm_prof_fn)(void *ud, int op, int layer, int thread, int64_t T, int64_t pos0, double t0, double t1);

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

    /* ---- ABI 4: profiling (model_prof.so only; 0 / NULL in model.so) ---- */
    int n_prof_ops;
    const ckm_prof_op *prof_ops;
    void (*set_profile)(ckm_model *m, ckm_prof_fn fn, void *ud); /* NULL fn: off */

    /* ---- ABI 5: KV slots and batched decode (continuous batching) ----
     * A slot is one sequence's KV cache of ctx positions. open() gives one slot; the single-
     * sequence calls above (prefill, decode, prefill_all, pos, reset) are slot 0's. Slots are
     * independent: what one holds never changes another's logits. */
    int64_t batch_rows; /* decode_batch runs this many rows per forward (more in several pieces) */
    /* Like open, with a KV cache of n_slots slots (n_slots x ctx positions). NULL on error. */
    ckm_model *(*open_slots)(const char *weights_path, int nthreads, int n_slots, char *err, size_t errlen);
    /* Appends n tokens to slot `slot`, as prefill does for slot 0. 0, or -1 (bad slot, context
     * overflow, token out of range: nothing appended). logits() then gives its last row. */
    int (*slot_prefill)(ckm_model *m, int slot, const int32_t *tokens, int64_t n);
    int (*slot_reset)(ckm_model *m, int slot);              /* empties the slot; 0 / -1 (bad slot) */
    int64_t (*slot_pos)(const ckm_model *m, int slot);      /* tokens in the slot; -1: bad slot */
    /* Keeps the slot's first n positions (0 <= n <= slot_pos): a cached prompt prefix is reused and
     * what follows is prefilled again. 0 / -1. */
    int (*slot_truncate)(ckm_model *m, int slot, int64_t n);
    /* One decode step for n sequences together: appends tokens[i] to slot slots[i] at that slot's
     * position and writes row i's logits to logits [n, vocab]. One forward over the rows: the
     * linears as one matrix product over them (the weights read once for all rows), RoPE at each
     * row's own position, attention per row over its own slot's cache. The slots must be distinct
     * (1 <= n <= n_slots). Returns 0, or -1 with last_error (a slot out of range, twice, or full; a
     * token out of range): nothing is appended to any slot then. logits() gives row n-1.
     * Rows agree with decode() of each sequence alone to float rounding (a matrix product over n
     * rows sums in another order than the one-row product). */
    int (*decode_batch)(ckm_model *m, int64_t n, const int32_t *tokens, const int32_t *slots, float *logits);

    /* ---- ABI 7: tensor parallel ----
     * A model compiled as rank tp_rank of tp_size (cke compile --tp-size N --tp-rank R; 0 of 1 is
     * the whole model) holds that rank's block of the heads and FFN columns, their weights and KV
     * cache. After each row-parallel linear (attn_o, ffn_down) it calls the allreduce set here,
     * which must leave in out[0..n) the sum over all ranks of their in[0..n) (out may be in), the
     * same on every rank, and return 0; otherwise (or with none set) the call returns -1 and
     * last_error says so. Every rank must make the same calls in the same order. */
    int tp_rank, tp_size;
    void (*set_allreduce)(ckm_model *m, ckm_allreduce_fn fn, void *ud);

    /* ---- ABI 7 too: a gradient hook (data-parallel training overlaps its reduction with the backward) ----
     * With backward, train_run calls fn(ud, l) as soon as layer l's weight gradients (the tensors
     * named "l<l>.*") are complete: l = last layer down to 0, on the calling thread, between
     * kernels. The embeddings' and the head's gradients are complete when train_run returns.
     * NULL fn: off. 0, or -1 before train_init (NULL when compiled without a training mode). */
    int (*set_grad_hook)(ckm_model *m, void (*fn)(void *ud, int layer), void *ud);
} ckm_api;

/* The one exported symbol. */
const ckm_api *ckm_api_get(void);

#ifdef __cplusplus
}
#endif
#endif
