/* Per-head column windows and concatenations: multi-head latent attention (DeepSeek-V2/V3) splits
 * each head's projection into a part RoPE rotates and a part it does not, shares one rotated key
 * head across all heads, and has value heads narrower than the query/key heads. Pure copies (memory
 * bound, a few per layer): the spec and the only variant, like cke_sigmoid_mul_fwd. */
#include "cke/kernels.h"

#include <string.h>

void cke_head_window_fwd(float *out /* [T,H*w] */, const float *x /* [T,H*d] */, int64_t T, int64_t H, int64_t d,
                         int64_t lo, int64_t w) {
    const int64_t n = lo >= d ? 0 : lo + w <= d ? w : d - lo; /* columns taken from x, the rest zeros */
    for (int64_t r = 0; r < T * H; r++) {
        float *o = out + r * w;
        if (n > 0) memcpy(o, x + r * d + lo, (size_t)n * sizeof(float));
        if (n < w) memset(o + (n > 0 ? n : 0), 0, (size_t)(w - (n > 0 ? n : 0)) * sizeof(float));
    }
}

void cke_head_window_bwd(float *dx /* [T,H*d] += */, const float *dout /* [T,H*w] */, int64_t T, int64_t H, int64_t d,
                         int64_t lo, int64_t w) {
    const int64_t n = lo >= d ? 0 : lo + w <= d ? w : d - lo;
    for (int64_t r = 0; r < T * H; r++)
        for (int64_t j = 0; j < n; j++) dx[r * d + lo + j] += dout[r * w + j];
}

void cke_head_cat_fwd(float *out /* [T,H*(da+db)] */, const float *a /* [T,H*da] */, const float *b /* [T,Hb*db] */,
                      int64_t T, int64_t H, int64_t da, int64_t Hb, int64_t db) {
    const int64_t w = da + db;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            float *o = out + (t * H + h) * w;
            memcpy(o, a + (t * H + h) * da, (size_t)da * sizeof(float));
            memcpy(o + da, b + (t * Hb + (Hb == 1 ? 0 : h)) * db, (size_t)db * sizeof(float));
        }
}

void cke_head_cat_bwd(float *da_ /* [T,H*da] += */, float *db_ /* [T,Hb*db] += */, const float *dout /* [T,H*(da+db)] */,
                      int64_t T, int64_t H, int64_t da, int64_t Hb, int64_t db) {
    const int64_t w = da + db;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            const float *g = dout + (t * H + h) * w;
            float *pa = da_ + (t * H + h) * da, *pb = db_ + (t * Hb + (Hb == 1 ? 0 : h)) * db;
            for (int64_t j = 0; j < da; j++) pa[j] += g[j];
            for (int64_t j = 0; j < db; j++) pb[j] += g[da + j]; /* a broadcast head sums every head's gradient, in order */
        }
}
