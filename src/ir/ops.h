/* The IR's op set: one enum, each entry with its one-line meaning (in the style of Lua's
 * lopcodes.h). Shapes use T for the token dimension, which each lowered mode fixes.
 * Per-op properties (name, inputs, shape rule, kernel) live in the table in ops.c. */
#ifndef CKE_IR_OPS_H
#define CKE_IR_OPS_H

/*        enum           name          meaning */
#define CKE_OPS(X)                                                                                   \
    X(EMBED,     "embed",     "out[T,D] = table[V,D][tokens[T]]")                                    \
    X(POSEMB,    "posemb",    "out[T,D] = x[T,D] + pos_table[P,D][pos0 + t]")                        \
    X(RMSNORM,   "rmsnorm",   "out[T,D] = x / sqrt(mean(x^2) + eps) * (w_offset + w[D]); with head_dim: per head, w[hd]")\
    X(LAYERNORM, "layernorm", "out[T,D] = (x - mean) / sqrt(var + eps) * w[D] + b[D]")               \
    X(LINEAR,    "linear",    "out[T,N] = x[T,K] . W[N,K]^T (+ b[N])")                               \
    X(ROPE,      "rope",      "out[T,H*hd] = x rotated by position (pairs per rope_layout, rot dims)")\
    X(ATTENTION, "attention", "out[T,Hq*hd] = causal softmax(q k^T * scale) v; GQA; window; softcap")\
    X(ADD,       "add",       "out = a + b (same shape)")                                            \
    X(SCALE,     "scale",     "out = x * scalar")                                                    \
    X(SWIGLU,    "swiglu",    "out[T,F] = silu(gate[T,F]) * up[T,F]")                                \
    X(GEGLU,     "geglu",     "out[T,F] = gelu(gate[T,F]) * up[T,F]")                                \
    X(GELU,      "gelu",      "out = gelu(x)")                                                       \
    X(SILU,      "silu",      "out = silu(x)")                                                       \
    X(SOFTCAP,   "softcap",   "out = softcap * tanh(x / softcap) (Gemma 2 final logits; 0 = identity)")\
    X(LAST_ROW,  "last_row",  "out[1,D] = x[T-1,D] (inference: only the last position's logits)")     \
    X(ALLREDUCE, "allreduce", "out = x summed over the tensor-parallel ranks (each holds a partial sum)")\
    X(SIGMOID_MUL, "sigmoid_mul", "out[T,D] = sigmoid(g[T,1]) * x[T,D] (a gated shared expert: Qwen2-MoE)")\
    X(HEAD_WINDOW, "head_window", "out[T,H*w] = columns lo..lo+w of each of x's H heads of head_dim, zeros past the head (MLA: DeepSeek)")\
    X(HEAD_CAT,  "head_cat",  "out[T,H*(da+db)] = each head of a, then b's head (b of n_kv_head 1: one head shared by all)")\
    X(MOE,       "moe",       "out[T,D] = sum over the top-k experts (softmax or sigmoid router scores; optional choice bias, groups, renorm, scale) of weight * down_e(silu(gate_e x) * up_e x)")

typedef enum {
#define CKE_OP_ENUM(e, n, d) CKE_OP_##e,
    CKE_OPS(CKE_OP_ENUM)
#undef CKE_OP_ENUM
    CKE_OP_COUNT
} cke_op;

typedef struct {
    int n_in_min, n_in_max; /* value inputs (weights included) */
    int rowwise;            /* each output row depends only on the same input row (T-agnostic) */
} cke_op_info;

extern const cke_op_info cke_op_table[CKE_OP_COUNT];

/* Gradient rules: what each op's backward reads, so the training lowering knows which forward
 * values to keep (and which it may drop after their last forward use), and how many per-row
 * statistics the forward saves for it (rstd, mean, log-sum-exp). The kernel each rule calls is
 * emitted by src/codegen/codegen_train.c next to the forward call. */
#define CKE_GRAD_IN(i) (1u << (i)) /* the backward reads input i */
#define CKE_GRAD_OUT (1u << 8)     /* the backward reads the op's own output */
typedef struct {
    int differentiable; /* 0: training through this op is not supported */
    unsigned needs;     /* CKE_GRAD_IN(i) | CKE_GRAD_OUT */
    int aux;            /* saved statistics: 0 none, 1 rstd [rows], 2 mean+rstd [rows], 3 lse [heads, rows] */
} cke_grad_rule;
extern const cke_grad_rule cke_grad_rules[CKE_OP_COUNT];
extern const char *const cke_op_names[CKE_OP_COUNT];
extern const char *const cke_op_meanings[CKE_OP_COUNT];
int cke_op_parse(const char *name, cke_op *out);

#endif
