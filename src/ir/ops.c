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
    [CKE_OP_LAST_ROW]  = {.n_in_min = 1, .n_in_max = 1, .rowwise = 0},
};

int cke_op_parse(const char *name, cke_op *out) {
    for (int i = 0; i < CKE_OP_COUNT; i++)
        if (strcmp(cke_op_names[i], name) == 0) {
            *out = (cke_op)i;
            return 0;
        }
    return -1;
}
