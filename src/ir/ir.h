/* The IR: a graph of named values, each produced by one op of ops.h, with shapes checked.
 *
 * Built from a family template (src/templates/<family>.json) and a model's hyperparameters and
 * tensors (through cke_ir_source, so the IR never cares which file format a model came from).
 * Every value has a name and a layer: weights "l3.attn_q", activations "l3.q", globals "x".
 * The graph is the full-sequence forward (the training semantics: logits at every position);
 * lowering (lower.c) derives the inference modes from it, and later the training mode.
 *
 * The graph is stored unrolled, node by node, with each node tagged by section: prologue,
 * layer body (one copy per layer, tagged with its layer) and epilogue. Layers are uniform by
 * construction (one template body), which the code generator turns back into a loop; layers that
 * differ in structure do so through layer kinds (below): every layer's copy holds every node, each
 * running only in the layers of its kind. */
#ifndef CKE_IR_H
#define CKE_IR_H

#include "cke/status.h"
#include "ir/ops.h"

#include <stddef.h>
#include <stdint.h>

#define CKE_IR_NAME 64
#define CKE_IR_MAX_KINDS 8
#define CKE_DIM_T (-1) /* the token dimension: fixed by each lowered mode */

typedef enum {
    CKE_V_INPUT,  /* token ids fed by the caller */
    CKE_V_WEIGHT, /* a model tensor (or one tied to another) */
    CKE_V_ACT     /* an activation produced by a node */
} cke_vkind;

typedef enum { CKE_IR_F32 = 0, CKE_IR_I32 = 1 } cke_ir_dtype;

/* Tensor parallel: how a weight is divided among the ranks (rank r holds block r of N). */
typedef enum {
    CKE_SPLIT_NONE = 0, /* every rank holds all of it (norms, embeddings, the output head) */
    CKE_SPLIT_ROWS,     /* output features: column-parallel linears (q/k/v, gate/up) and their biases */
    CKE_SPLIT_COLS,     /* input features: row-parallel linears (attn_o, ffn_down); an allreduce follows */
    CKE_SPLIT_RANK0     /* the bias of a row-parallel linear: rank 0 adds it, the others hold zeros */
} cke_split;

typedef enum { CKE_SEC_PROLOGUE = 0, CKE_SEC_LAYER = 1, CKE_SEC_EPILOGUE = 2 } cke_section;

typedef struct {
    char name[CKE_IR_NAME]; /* "l3.q", "tok_embd", "x" */
    char base[CKE_IR_NAME]; /* the template's name: "q" */
    int layer;              /* -1 outside the layer loop */
    cke_vkind kind;
    cke_ir_dtype dtype;
    int ndim;
    int64_t dims[4]; /* row-major, outermost first; dims[0] may be CKE_DIM_T */
    int producer;    /* node index, -1 for inputs and weights */
    int tied_to;     /* weights: index of the weight whose bytes this one uses, else -1 */
    int used;        /* number of node inputs that read it */
    int split;       /* weights: cke_split (tensor parallel); dims are this rank's block */
    int split_parts; /* the model's tensor is cut in this many blocks; rank r holds block r * parts /
                      * tp_size (tp_size, or fewer when kv heads are replicated: parts = n_kv_head) */
    int absent;      /* weights: a tensor of a layer kind this layer is not (no bytes; never read) */
} cke_value;

/* Op attributes: one bag with named fields; each op documents which it reads (ops.h). */
typedef struct {
    float eps;        /* norms */
    float w_offset;   /* rmsnorm: 0, or 1 for (1 + w) */
    float scale;      /* attention logit scale; scale op factor */
    float softcap;    /* attention logit soft-cap, 0 = none */
    float theta;      /* rope base */
    int64_t n_head;   /* rope: heads of this tensor; attention: query heads */
    int64_t n_kv_head;/* attention */
    int64_t head_dim;
    int64_t rot;      /* rope: rotated dims per head */
    int64_t window;   /* attention: sliding window, 0 = none */
    int rope_layout;  /* cke_rope_layout */
    int gelu;         /* cke_gelu_kind */
    /* rope frequency scaling (one table for the model: every rope node must agree) */
    int rope_scaling;      /* cke_rope_scaling of src/formats/model.h: 0 none, 1 linear, 2 llama3 */
    float rope_factor;     /* linear and llama3 */
    float rope_low_freq, rope_high_freq; /* llama3 low/high_freq_factor */
    int64_t rope_orig_ctx; /* llama3 original_max_position_embeddings */
    int64_t n_expert_used; /* moe: experts each token is routed to (top-k) */
    int norm_topk;         /* moe: 1 = the k weights renormalized to sum to 1 (Mixtral), 0 = router probabilities as they are */
    float aux_coef;        /* moe, training: weight of HF's load-balancing loss (router_aux_loss_coef; 0 = none) */
    int moe_sigmoid;       /* moe: 1 = sigmoid scores (DeepSeek-V3, GLM-4.5; an optional 6th input [E] biases the choice), 0 = softmax */
    int64_t n_group, topk_group; /* moe: group-limited routing (experts in n_group groups, topk_group groups eligible); 0 = none */
    float routed_scale;    /* moe: the routing weights' factor (routed_scaling_factor); 0 is read as 1 */
    int64_t lo, width;     /* head_window: each head's columns lo..lo+width of head_dim (zeros past it) */
} cke_attrs;

typedef struct {
    cke_op op;
    cke_section section;
    int layer;
    int kind;  /* layer body: 0 runs in every layer; k > 0 only in the layers of kind k - 1 (cke_ir.kind_name) */
    int out;   /* value index */
    int in[6]; /* value indices (moe reads five) */
    int n_in;
    cke_attrs a;
} cke_node;

typedef struct {
    char name[CKE_IR_NAME];
    double value;
} cke_hparam;

typedef struct {
    char family[32];
    char template_path[256];
    int n_layer;
    cke_hparam *hp;
    int n_hp;
    cke_value *v;
    int nv, cap_v;
    cke_node *n;
    int nn, cap_n;
    /* the RoPE frequencies the compiler computed for the rope nodes (src/formats/rope.c: scaling
     * schemes resolved for the compiled context) and the cos/sin multiplier; NULL: codegen builds
     * the default table from the nodes' theta and scaling attributes */
    float *rope_freq;          /* [n_rope_tables][n_rope_freq], n_rope_freq = rot / 2 */
    int64_t n_rope_freq;
    int n_rope_tables;         /* 1, or 2 when layers differ in theta/scaling (Gemma 3: local, global) */
    float rope_attn_factor[2];
    unsigned char *rope_table_of; /* [n_layer]: which table each layer's rope nodes read */
    /* tensor parallel: this graph is rank tp_rank's of tp_size (1: the whole model). The
     * template's "tensor_parallel" hyperparameters are divided by tp_size, each weight whose
     * shape then differs from the model's is this rank's block of it (cke_value.split), and an
     * allreduce follows every linear whose weight is split by input features. */
    int tp_rank, tp_size;
    /* Layer kinds: a template may name kinds of layer by a predicate over `layer` ("dense": "layer <
     * first_k_dense"); a body node or a layer weight of a kind exists in every layer's copy (the
     * body stays one loop body) but runs, or holds bytes, only in the layers of that kind, so one
     * body describes layers that differ in structure (DeepSeek's dense first layers, then MoE).
     * Two nodes of kinds no layer shares may define the same value (one of them runs per layer). */
    int n_kinds;
    char kind_name[CKE_IR_MAX_KINDS][32];
    unsigned char *kind_on; /* [n_kinds][n_layer]: 1 where layer l is of kind k */
} cke_ir;

/* Whether body node n runs in some layer: a node of a kind no layer is (GLM-4.5 without QK-norm: the
 * norms' kind) is left out of every schedule. */
static inline int cke_ir_node_ever(const cke_ir *ir, const cke_node *n) {
    for (int l = 0; n->kind > 0 && l < ir->n_layer; l++)
        if (ir->kind_on[(size_t)(n->kind - 1) * (size_t)ir->n_layer + (size_t)l]) return 1;
    return n->kind == 0;
}

/* Whether body node n runs in layer l (always, outside layer kinds). */
static inline int cke_ir_node_on(const cke_ir *ir, const cke_node *n, int l) {
    return n->kind == 0 || l < 0 || ir->kind_on[(size_t)(n->kind - 1) * (size_t)ir->n_layer + (size_t)l];
}

/* Where the IR builder gets a model's facts. Tensor names are canonical (see src/formats):
 * globals by their template name ("tok_embd"), per-layer ones as "l<i>.<name>" ("l3.attn_q"). */
typedef struct {
    void *ud;
    /* 0 and *v set when the model has this hyperparameter, else -1 */
    int (*hparam)(void *ud, const char *name, double *v);
    /* 0 with the shape when the model has this tensor, else -1 */
    int (*tensor)(void *ud, const char *name, int *ndim, int64_t dims[4]);
    /* the i-th tensor name of the model (i < count), for the "every tensor is consumed" check */
    int64_t (*tensor_count)(void *ud);
    const char *(*tensor_name)(void *ud, int64_t i);
    int tp_rank, tp_size; /* tensor parallel: build rank tp_rank's graph of tp_size (0 or 1: whole) */
    /* optional: called once the template's hyperparameters are known, before any tensor is looked
     * at, so a model feature the template lacks (experts, QK-norm) is refused by its name rather
     * than by the first tensor it brings */
    cke_status (*check)(void *ud, const cke_ir *ir, cke_err *err);
} cke_ir_source;

/* Builds the IR of a model from the template file. Errors name the tensor/key/op at fault:
 * a weight the template needs that the model lacks, a shape that disagrees, a model tensor the
 * template never consumes, an unknown op or hyperparameter. */
cke_status cke_ir_build(cke_ir **out, const char *template_path, const cke_ir_source *src,
                        cke_err *err);
void cke_ir_free(cke_ir *ir);

int cke_ir_find(const cke_ir *ir, const char *name); /* value index or -1 */
int cke_ir_hparam(const cke_ir *ir, const char *name, double *v);

/* Writes the graph as JSON (ir.json): hyperparameters, values, nodes. Deterministic. */
cke_status cke_ir_write_json(const cke_ir *ir, const char *path, cke_err *err);

/* Number of elements of a value for a given T (the token dimension). */
int64_t cke_value_numel(const cke_value *v, int64_t T);

#endif
