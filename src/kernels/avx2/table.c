/* The avx2 dispatch table. A slot with no avx2 variant points at the _ref
 * (only where SIMD does not pay off; say why next to it). NULL = not written yet. */
#include "../kdecl.h"

const cke_ktable cke_ktable_avx2 = {
    .name = "avx2",
    /* ==== gemm ==== */
    /* ==== embed ==== */
    /* ==== norm ==== */
    /* ==== rope ==== */
    /* ==== act ==== */
    /* ==== attn ==== */
    /* ==== loss / optim ==== */
};
