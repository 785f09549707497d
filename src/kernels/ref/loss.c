/* Fused softmax + cross-entropy, scalar reference (the spec).
 *   loss[t]    = logsumexp(logits[t]) - logits[t][y_t]           (0 where y_t == ignore_index)
 *   dlogits[t] = dscale * (softmax(logits[t]) - onehot(y_t))     (all 0 where ignored)
 * dlogits is WRITTEN and may alias logits (the target logit is read before the row is
 * overwritten). A label outside [0, V) that is not ignore_index gives loss NaN and a zero
 * gradient row: visible, and no out-of-bounds read.
 * Numerics: max-subtracted exp in float, the sum of exps accumulated in double (V reaches
 * 152k, where a float running sum loses ~4 digits); dlogits = e * (dscale / sum). */
#include "../kdecl.h"

#include <math.h>
#include <string.h>

void cke_xent_fwd_bwd_ref(float *loss /* [T] */, float *dlogits /* [T,V] or NULL */,
                          const float *logits /* [T,V] */, const int32_t *y /* [T] */,
                          int64_t T, int64_t V, int32_t ignore_index, float dscale, int nth) {
#pragma omp parallel for schedule(static) num_threads(nth > 1 ? nth : 1) if (nth > 1)
    for (int64_t t = 0; t < T; t++) {
        const float *x = logits + t * V;           /* [V] */
        float *d = dlogits ? dlogits + t * V : NULL; /* [V] */
        int32_t yt = y[t];
        if (yt == ignore_index || yt < 0 || (int64_t)yt >= V) {
            loss[t] = yt == ignore_index ? 0.0f : NAN;
            if (d) memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        float xy = x[yt];
        float m = -INFINITY;
        for (int64_t i = 0; i < V; i++) m = x[i] > m ? x[i] : m;
        double sum = 0;
        for (int64_t i = 0; i < V; i++) {
            float e = expf(x[i] - m);
            sum += e;
            if (d) d[i] = e; /* stash e: x[i] is dead once read (d may alias x) */
        }
        loss[t] = (float)((double)m + log(sum) - (double)xy);
        if (d) {
            float inv = (float)((double)dscale / sum);
            for (int64_t i = 0; i < V; i++) d[i] *= inv;
            d[yt] -= dscale;
        }
    }
}
