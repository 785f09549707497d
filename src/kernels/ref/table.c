/* The ref dispatch table. A slot with no ref variant points at the _ref
 * (only where SIMD does not pay off; say why next to it). NULL = not written yet. */
#include "../kdecl.h"

const cke_ktable cke_ktable_ref = {
    .name = "ref",
    /* ==== gemm ==== */
    /* ==== embed ==== */
    /* ==== norm ==== */
    /* ==== rope ==== */
    /* ==== act ==== */
    /* ==== attn ==== */
    /* ==== loss / optim ==== */
};
