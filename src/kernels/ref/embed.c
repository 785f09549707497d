/* Token and learned position embeddings, forward and backward (the spec for every ISA).
 * All four are row copies/adds: memory-bound and single-threaded; the compiler's vectorized
 * memcpy / add loop already runs at memory speed, so the SIMD tables point here. */
#include "../kdecl.h"

#include <string.h>

/* out[t] = table[tok[t]]. Precondition: 0 <= tok[t] < V (checked by the caller/loader). */
void cke_embed_fwd_ref(float *out /* [T,D] */, const int32_t *tok /* [T] */,
                       const float *table /* [V,D] */, int64_t T, int64_t D) {
    for (int64_t t = 0; t < T; t++)
        memcpy(out + t * D, table + (int64_t)tok[t] * D, (size_t)D * sizeof(float));
}

/* dtable[tok[t]] += dout[t]: a scatter-add, repeated tokens accumulate in t order. */
void cke_embed_bwd_ref(float *dtable /* [V,D] += */, const float *dout /* [T,D] */,
                       const int32_t *tok /* [T] */, int64_t T, int64_t D) {
    for (int64_t t = 0; t < T; t++) {
        float *dst = dtable + (int64_t)tok[t] * D;
        const float *src = dout + t * D;
        for (int64_t i = 0; i < D; i++) dst[i] += src[i];
    }
}

/* x[t] += pos[pos0 + t] (GPT-2 learned positions). Precondition: pos0 + T <= P. */
void cke_posemb_fwd_ref(float *x /* [T,D] += */, const float *pos /* [P,D] */,
                        int64_t pos0, int64_t T, int64_t D) {
    const float *p = pos + pos0 * D;
    for (int64_t i = 0; i < T * D; i++) x[i] += p[i];
}

/* dpos[pos0 + t] += dx[t] */
void cke_posemb_bwd_ref(float *dpos /* [P,D] += */, const float *dx /* [T,D] */,
                        int64_t pos0, int64_t T, int64_t D) {
    float *p = dpos + pos0 * D;
    for (int64_t i = 0; i < T * D; i++) p[i] += dx[i];
}
