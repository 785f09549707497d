/* Rotary position embedding, forward and backward, both pair layouts: the spec for every ISA.
 * Pair k (k < rot/2) of a head rotates by the angle of cs[pos[t]][k] = (cos, sin):
 *   INTERLEAVED: elements (2k, 2k+1);  HALVES: elements (k, k + rot/2).
 * Dims >= rot pass through. Memory-bound, single-threaded. */
#include "../kdecl.h"

#include <string.h>

/* (a, b) -> (a c - b s, a s + b c). out may alias in (each pair is read before written). */
void cke_rope_fwd_ref(float *out /* [T,H,hd], may alias in */, const float *in /* [T,H,hd] */,
                      const float *cs /* [P, rot/2, 2] */, const int32_t *pos /* [T] */,
                      int64_t T, int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout) {
    int64_t half = rot / 2;
    int64_t st = layout == CKE_ROPE_INTERLEAVED ? 1 : half; /* distance between pair members */
    int64_t sk = layout == CKE_ROPE_INTERLEAVED ? 2 : 1;    /* distance between pairs */
    for (int64_t t = 0; t < T; t++) {
        const float *c = cs + (int64_t)pos[t] * rot;
        for (int64_t h = 0; h < H; h++) {
            const float *x = in + (t * H + h) * hd;
            float *y = out + (t * H + h) * hd;
            for (int64_t k = 0; k < half; k++) {
                float a = x[k * sk], b = x[k * sk + st], co = c[2 * k], si = c[2 * k + 1];
                y[k * sk] = a * co - b * si;
                y[k * sk + st] = a * si + b * co;
            }
            if (y != x) memcpy(y + rot, x + rot, (size_t)(hd - rot) * sizeof(float));
        }
    }
}

/* The transpose rotation: din += (da c + db s, -da s + db c); pass-through dims din += dout. */
void cke_rope_bwd_ref(float *din /* [T,H,hd] += */, const float *dout /* [T,H,hd] */,
                      const float *cs /* [P, rot/2, 2] */, const int32_t *pos /* [T] */,
                      int64_t T, int64_t H, int64_t hd, int64_t rot, cke_rope_layout layout) {
    int64_t half = rot / 2;
    int64_t st = layout == CKE_ROPE_INTERLEAVED ? 1 : half;
    int64_t sk = layout == CKE_ROPE_INTERLEAVED ? 2 : 1;
    for (int64_t t = 0; t < T; t++) {
        const float *c = cs + (int64_t)pos[t] * rot;
        for (int64_t h = 0; h < H; h++) {
            const float *dy = dout + (t * H + h) * hd;
            float *dx = din + (t * H + h) * hd;
            for (int64_t k = 0; k < half; k++) {
                float a = dy[k * sk], b = dy[k * sk + st], co = c[2 * k], si = c[2 * k + 1];
                dx[k * sk] += a * co + b * si;
                dx[k * sk + st] += b * co - a * si;
            }
            for (int64_t i = rot; i < hd; i++) dx[i] += dy[i];
        }
    }
}
