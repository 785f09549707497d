/* The training mode, lowered from the same IR as inference.
 *
 * One step runs B sequences of T tokens (rows = B*T): the forward of every layer keeping what
 * the backward needs, the fused cross-entropy, then the backward derived node by node in
 * reverse from the per-op gradient rules (src/ir/ops.c: cke_grad_rules), accumulating into
 * gradient buffers (a value used twice, like the residual stream or a tied embedding, simply
 * receives two contributions).
 *
 * Memory:
 *  - saved:  forward values some gradient rule reads, and the rules' statistics (rstd, lse):
 *            one slab per layer (the generated code indexes slab l), plus globals;
 *  - temps:  forward values no rule reads: reused by liveness within one layer's forward
 *            (they die before the next layer starts);
 *  - grads:  activation gradients, reused by liveness within one layer's backward; the residual
 *            stream's gradient is carried from layer to layer in one pinned buffer;
 *  - weight gradients, AdamW m and v: the weights' own layout, three more copies;
 *  - scratch: the largest kernel workspace of any forward or backward step.
 * Temps and grads never live at the same time (forward, then backward), so they share a region
 * (with recompute the temps of a layer's second forward avoid the carried gradient, the one
 * gradient live then).
 * With recompute (activation checkpointing), a layer keeps only its input and recomputes its
 * forward during the backward; the memory saved is reported.
 *
 * Precision per value: fp32, except under bf16 mixed precision a layer value the backward reads
 * only as a linear layer's input (for dW = dY^T X, a GEMM that rounds X to bf16 anyway) is saved
 * as bf16: the forward keeps it fp32 as a temp for its own consumers and writes a bf16 copy to
 * the slab, which the weight gradient's GEMM reads directly (gemm_bf16_b16): the same bits as
 * saving it fp32, half the bytes. */
#ifndef CKE_PLAN_TRAIN_H
#define CKE_PLAN_TRAIN_H

#include "plan/plan.h"

#include <stdio.h>

enum { CKE_TB_NONE = 0, CKE_TB_SAVED, CKE_TB_TEMP, CKE_TB_GRAD };

typedef struct {
    int value;       /* IR value (layer-0 body value or a global), -1 for node statistics */
    int node;        /* for statistics: the IR node (layer 0 / global) they belong to */
    int kind;        /* CKE_TB_* */
    int body;        /* 1: one per layer (slab or per-layer reuse), 0: global */
    size_t size, offset;
    int first, last; /* positions in the phase's schedule (temps, grads) */
    int alias_of;    /* grads: shares that buffer (carried gradient, dlogits in logits) */
    int bf16;        /* saved as bf16 (2 bytes an element), else fp32 */
} cke_tbuf;

typedef struct cke_train_plan {
    const cke_plan *p;   /* the inference plan: weights layout, IR */
    int64_t B, T, rows;
    int recompute;       /* activation checkpointing per layer */
    int bf16;            /* mixed precision: the linear layers' GEMMs on bf16-rounded operands */
    cke_tbuf *b;
    int nb;
    int *fwd_of;         /* IR value -> buffer holding it in training (layer-0 and global values) */
    int *grad_of;        /* IR value -> its gradient buffer, -1 when it needs none */
    int *aux_of;         /* IR node -> its statistics buffer, -1 when none */
    int *save16_of;      /* IR value -> its bf16 saved copy (fwd_of is then its fp32 temp), -1 when none */
    size_t slab_bytes_f32; /* what the slab would take with every value saved fp32, for the report */
    size_t slab_bytes;   /* saved values of one layer */
    size_t saved_global; /* saved values outside the layers */
    size_t temp_bytes;   /* forward temps and activation grads (shared region) */
    size_t scratch_bytes;
    size_t carry_bytes;  /* with recompute: each layer's output, kept per layer */
    size_t saved_bytes;  /* saved activations in total */
    size_t saved_bytes_norecompute; /* what saving every layer would take, for the report */
    int carry_in, carry_out; /* the residual stream: value read from before the layer / written by it */
} cke_train_plan;

cke_status cke_train_plan_new(cke_train_plan **out, const cke_plan *p, int64_t B, int64_t T, int recompute,
                              int bf16, int nth, cke_err *err);
void cke_train_plan_free(cke_train_plan *tp);
/* Appends the training section to memory_map.txt's text. */
void cke_train_plan_write_map(const cke_train_plan *tp, FILE *f);

#endif
