/* Token embedding from a table kept in a block format: a tied output head (SmolLM2, Qwen, Gemma
 * and Llama 3.2 tie token_embd to the output projection, which reads it quantized) or a quantized
 * token_embd. Only the looked-up rows are dequantized, exactly per the format's definition, so the
 * values are those of the f32 table the loader used to expand (vocab x dim x 4 bytes of it). */
#include "kdecl.h"

#include <string.h>

int cke_qembed_fwd(const cke_ktable *kt, float *out /* [T,D] */, const int32_t *tok /* [T] */,
                   const void *table /* [V, D/blck blocks] */, int qtype, int64_t T, int64_t D) {
    if (qtype == 0) {
        kt->embed_fwd(out, tok, (const float *)table, T, D);
        return 0;
    }
    const cke_qtype_ops *q = qtype > 0 && qtype < CKE_QTYPE_COUNT ? kt->qops[qtype] : NULL;
    const size_t rs = cke_qtype_row_size(qtype, D);
    if (!q || !q->dequantize_row || !rs) return -1;
    for (int64_t t = 0; t < T; t++) q->dequantize_row(out + t * D, (const char *)table + (size_t)tok[t] * rs, D);
    return 0;
}
