/* Lowering and memory planning.
 *
 * An inference mode (prefill: T = chunk tokens; decode: T = 1) is lowered from the IR into a
 * schedule: the prologue, ONE copy of the layer body (layer 0's nodes; the generated code loops
 * it over the layers with per-layer weights and KV cache), and the epilogue. Inference needs only
 * the last position's logits, so the lowering inserts a last_row node where the epilogue reads
 * the residual stream and the epilogue runs on one row. Prefill also gets the output head over
 * every row (the epilogue without last_row: prefill_all, for scoring text), planned in the same
 * arena after the layer loop.
 *
 * decode_batch (T = CKE_PLAN_BATCH_T rows) is the same schedule for continuous batching: each row
 * is the next token of a different sequence, with its own position and KV-cache slot. The linears
 * run as one GEMM over the rows (the weights are read once for all of them); RoPE takes per-row
 * positions; attention runs per row against that row's slot. No last_row: the epilogue runs on
 * every row, since every sequence needs its logits.
 *
 * The planner places every activation of the schedule in one arena with liveness reuse: two
 * values share bytes when their lifetimes (first write .. last read in the schedule) do not
 * overlap. Values carried from one layer to the next (the residual stream) are pinned for the
 * whole schedule, and the carried-in and carried-out value share one buffer, so the loop works.
 * Everything is 64-byte aligned; every size is a compile-time constant.
 *
 * Regions: weights (file, planned order of first use), activations (per mode), KV cache
 * (n_layer x ctx x kv_dim, K and V: one slot; an instance opened with n slots holds n of them,
 * slot s at s x kv_bytes), scratch (kernel workspaces, the max over the schedule). */
#ifndef CKE_PLAN_H
#define CKE_PLAN_H

#include "cke/status.h"
#include "ir/ir.h"

#include <stddef.h>
#include <stdint.h>

#define CKE_ALIGN 64
#define CKE_CANARY 64 /* bytes of canary after each buffer in a debug build */
#define CKE_PLAN_BATCH_T 8 /* decode_batch's rows per forward (larger batches run in pieces) */

typedef struct {
    int value;        /* IR value index */
    int64_t rows;     /* token rows in this mode (T, or 1 after last_row) */
    size_t size;      /* bytes */
    size_t offset;    /* in the activation arena */
    int first, last;  /* schedule positions: written at first, last read at last */
    size_t data_bytes;/* rows x cols floats; with canaries, CKE_CANARY bytes follow them */
    int pinned;       /* carried across layers: live for the whole schedule */
    int alias_of;     /* carry-out shares the carry-in's buffer: its buffer index, else -1 */
    int head;         /* a value of the all-rows output head (prefill_all), not of the schedule */
} cke_buf;

typedef struct {
    char mode[16];    /* "prefill" / "decode" / "decode_batch" */
    int all_rows;     /* decode_batch: the epilogue runs on every row (no last_row) */
    int64_t T;        /* rows of a T-dim value */
    cke_node *sched;  /* lowered nodes: in/out are IR value indices */
    int n_sched;
    cke_buf *bufs;
    int n_bufs;
    int *buf_of;      /* IR value index -> buffer index, -1 when not an activation of this mode */
    size_t arena_bytes;   /* planned */
    size_t sum_bytes;     /* sum of all buffers: what no reuse would take */
    size_t scratch_bytes; /* kernel workspace */
    int nth_planned;      /* threads the scratch is sized for */
    /* Prefill only (else 0): the output head over all T rows, run after the layer loop instead of
     * the last-row epilogue. head[k] is step n_sched + k; its output lives in bufs[head_buf[k]],
     * or, when head_buf[k] < 0, in the caller's [T, vocab] logits (the last node, and a
     * vocab-wide value an elementwise op then overwrites in place: Gemma 2's logit softcap). */
    cke_node *head;
    int n_head;
    int *head_buf;
} cke_mode_plan;

typedef struct {
    int value;        /* IR weight value (its own bytes; tied ones point at their target) */
    size_t offset;    /* in weights.bin */
    size_t size;
    int dtype;        /* as stored in weights.bin: 0 = f32, else the ggml type id of raw blocks
                       * (F16, BF16, Q8_0, Q4_K ...: matmul weights keep their file format) */
} cke_wslot;

typedef struct {
    cke_ir *ir;       /* not owned */
    int64_t ctx;      /* KV cache positions */
    int64_t kv_dim;   /* n_kv_head * head_dim per layer */
    size_t kv_bytes;  /* K and V for all layers */
    int kv_type;      /* cke_kv_type: CKE_KV_F16 (2-byte elements), CKE_KV_F32, CKE_KV_Q8_0 (34 bytes per 32) */
    size_t kv_row;    /* bytes of one cache row (kv_dim values) of one layer's K or V */
    cke_wslot *w;
    int nw;
    size_t weights_bytes;  /* payload after the header */
    size_t weights_header; /* bytes of header before the first tensor */
    cke_mode_plan prefill, decode, batch; /* batch: "decode_batch" */
    int max_threads;
    int canaries;     /* debug build: a canary after every activation, checked after every op */
} cke_plan;

/* Lowers the inference modes (prefill, decode, decode_batch) and plans memory. nth_max sizes the kernel workspaces. */
cke_status cke_plan_new(cke_plan **out, cke_ir *ir, int64_t ctx, int64_t prefill_chunk, int nth_max,
                        int canaries, int kv_type, cke_err *err);
/* Bytes of n values (n a multiple of 32 for Q8_0) in a KV cache of a cke_kv_type (0 for an unknown
 * type); kv_type's bytes per value: cke_plan_kv_bytes(t, 32) / 32.0. */
size_t cke_plan_kv_bytes(int kv_type, int64_t n);
void cke_plan_free(cke_plan *p);

/* Weight storage formats: dtype_of(ud, name) gives the format a weight may keep (a ggml type
 * id, 0 = f32). Only weights read solely as a LINEAR's matrix (not tied, not embedded) keep it;
 * every other weight stays f32. Recomputes the weights layout and the kernel scratch (the
 * quantized linear's workspace). Call once, right after cke_plan_new. */
cke_status cke_plan_set_wdtypes(cke_plan *p, int (*dtype_of)(void *ud, const char *name), void *ud, cke_err *err);
/* The stored format of a weight value (follows ties): 0 = f32. */
int cke_plan_wdtype(const cke_plan *p, int value);
/* The largest cke_moe_ws_size of a moe node over every layer's formats of its three expert stacks,
 * at `rows` rows and nth threads (the plan's scratch; the embedded build's, at one thread). */
size_t cke_plan_moe_ws(const cke_plan *p, const cke_node *n, int64_t rows, int nth);

/* layout.json: every buffer with region, offset, size, shape, lifetime. */
cke_status cke_plan_write_layout(const cke_plan *p, const char *path, cke_err *err);
/* memory_map.txt: a human-readable map with the reuse achieved. */
cke_status cke_plan_write_map(const cke_plan *p, const char *path, cke_err *err);
/* What one op computes and moves, from its shapes and the weights' stored formats, as per-call
 * terms of its rows T and the (query, key) pairs attention scores (model_abi.h, ckm_prof_op, has
 * the formulas; docs/PROFILE.md the conventions: f32 activations, a multiply-add is 2 FLOPs, an
 * exp/tanh/erf counts 1, the weight matrix is read once per call, the KV cache once per call). */
typedef struct {
    int qtype;                  /* weight matrix storage (ggml id, 0 f32); -1: no matrix */
    int64_t w_rows, w_cols;     /* the matrix: [w_rows, w_cols] */
    double w_extra, w_row;      /* other weight bytes per call (norm weights, bias) / per row (lookups) */
    double flops_row, flops_pair;
    double act_row, act_const;  /* activation bytes read + written per row / per call */
    double kv_row, kv_key;      /* KV cache bytes written per row / read per visible key */
} cke_op_cost;
void cke_plan_op_cost(const cke_plan *p, const cke_node *n, cke_op_cost *c);

/* A hash of everything that fixes the weights file's layout (names, shapes, offsets). */
uint64_t cke_plan_layout_hash(const cke_plan *p);

#endif
