#include "ir/ops.h"

#include <string.h>

const char *const cke_op_names[CKE_OP_COUNT] = {
#define CKE_OP_NAME(e, n, d) [CKE_OP_##e] = n,
    CKE_OPS(CKE_OP_NAME)
#undef CKE_OP_NAME
};

const char *const cke_op_meanings[CKE_OP_COUNT] = {
#define CKE_OP_MEANING(e, n, d) [CKE_OP_##e] = d,
    CKE_OPS(CKE_OP_MEANING)
#undef CKE_OP_MEANING
};

/* inputs count weights too; rowwise: output row t depends only on input row t */
const cke_op_info cke_op_table[CKE_OP_COUNT] = {
    [CKE_OP_EMBED]     = {.n_in_min = 2, .n_in_max = 2, .rowwise = 1},
    [CKE_OP_POSEMB]    = {.n_in_min = 2, .n_in_max = 2, .rowwise = 0},
    [CKE_OP_RMSNORM]   = {.n_in_min = 2, .n_in_max = 2, .rowwise = 1},
    [CKE_OP_LAYERNORM] = {.n_in_min = 2, .n_in_max = 3, .rowwise = 1},
    [CKE_OP_LINEAR]    = {.n_in_min = 2, .n_in_max = 3, .rowwise = 1},
    [CKE_OP_ROPE]      = {.n_in_min = 1, .n_in_max = 1, .rowwise = 0},
    [CKE_OP_ATTENTION] = {.n_in_min = 3, .n_in_max = 3, .rowwise = 0},
    [CKE_OP_ADD]       = {.n_in_min = 2, .n_in_max = 2, .rowwise = 1},
    [CKE_OP_SCALE]     = {.n_in_min = 1, .n_in_max = 1, .rowwise = 1},
    [CKE_OP_SWIGLU]    = {.n_in_min = 2, .n_in_max = 2, .rowwise = 1},
    [CKE_OP_GEGLU]     = {.n_in_min = 2, .n_in_max = 2, .rowwise = 1},
    [CKE_OP_GELU]      = {.n_in_min = 1, .n_in_max = 1, .rowwise = 1},
    [CKE_OP_SILU]      = {.n_in_min = 1, .n_in_max = 1, .rowwise = 1},
    [CKE_OP_SOFTCAP]   = {.n_in_min = 1, .n_in_max = 1, .rowwise = 1},
    [CKE_OP_LAST_ROW]  = {.n_in_min = 1, .n_in_max = 1, .rowwise = 0},
    [CKE_OP_ALLREDUCE] = {.n_in_min = 1, .n_in_max = 1, .rowwise = 1},
    [CKE_OP_MOE]       = {.n_in_min = 5, .n_in_max = 6, .rowwise = 1}, /* x, router, gate_exps, up_exps, down_exps, choice bias? */
    [CKE_OP_SIGMOID_MUL] = {.n_in_min = 2, .n_in_max = 2, .rowwise = 1}, /* x, g */
    [CKE_OP_HEAD_WINDOW] = {.n_in_min = 1, .n_in_max = 1, .rowwise = 1},
    [CKE_OP_HEAD_CAT]  = {.n_in_min = 2, .n_in_max = 2, .rowwise = 1},    /* a, b */
};

/* Inputs count weights too: a rule that reads W lists its index like any other input. */
const cke_grad_rule cke_grad_rules[CKE_OP_COUNT] = {
    [CKE_OP_EMBED]     = {1, CKE_GRAD_IN(0), 0},                              /* dtable += scatter(dout) */
    [CKE_OP_POSEMB]    = {1, 0, 0},                                           /* dx += dout; dpos += dout */
    [CKE_OP_RMSNORM]   = {1, CKE_GRAD_IN(0) | CKE_GRAD_IN(1), 1},             /* x, w, rstd */
    [CKE_OP_LAYERNORM] = {1, CKE_GRAD_IN(0) | CKE_GRAD_IN(1), 2},             /* x, w, mean, rstd */
    [CKE_OP_LINEAR]    = {1, CKE_GRAD_IN(0) | CKE_GRAD_IN(1), 0},             /* dX = dY W, dW += dY^T X */
    [CKE_OP_ROPE]      = {1, 0, 0},                                           /* rotate dout back */
    [CKE_OP_ATTENTION] = {1, CKE_GRAD_IN(0) | CKE_GRAD_IN(1) | CKE_GRAD_IN(2) | CKE_GRAD_OUT, 3},
    [CKE_OP_ADD]       = {1, 0, 0},                                           /* da += dout; db += dout */
    [CKE_OP_SCALE]     = {1, 0, 0},                                           /* dx += s dout */
    [CKE_OP_SWIGLU]    = {1, CKE_GRAD_IN(0) | CKE_GRAD_IN(1), 0},             /* gate, up */
    [CKE_OP_GEGLU]     = {1, CKE_GRAD_IN(0) | CKE_GRAD_IN(1), 0},
    [CKE_OP_GELU]      = {1, CKE_GRAD_IN(0), 0},
    [CKE_OP_SILU]      = {1, CKE_GRAD_IN(0), 0},
    [CKE_OP_SOFTCAP]   = {1, CKE_GRAD_IN(0), 0},                              /* x */
    [CKE_OP_LAST_ROW]  = {0, 0, 0},                                           /* inference only */
    [CKE_OP_ALLREDUCE] = {0, 0, 0},                                           /* tensor parallel: inference only */
    /* moe: the routing and the chosen experts are recomputed from x (nothing saved but x); the choice
     * bias (6th input) only picks experts: no gradient, as HF's e_score_correction_bias buffer */
    [CKE_OP_MOE]       = {1, CKE_GRAD_IN(0) | CKE_GRAD_IN(1) | CKE_GRAD_IN(2) | CKE_GRAD_IN(3) | CKE_GRAD_IN(4), 0},
    [CKE_OP_SIGMOID_MUL] = {1, CKE_GRAD_IN(0) | CKE_GRAD_IN(1), 0},             /* x, g */
    [CKE_OP_HEAD_WINDOW] = {1, 0, 0},                                         /* dx += dout, placed back */
    [CKE_OP_HEAD_CAT]  = {1, 0, 0},                                           /* da, db += their columns of dout */
};

int cke_op_parse(const char *name, cke_op *out) {
    for (int i = 0; i < CKE_OP_COUNT; i++)
        if (strcmp(cke_op_names[i], name) == 0) {
            *out = (cke_op)i;
            return 0;
        }
    return -1;
}
