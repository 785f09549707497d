/* Mixture-of-experts routing shared by the spec (ref/moe.c) and the fast path (moe.c): the top k
 * of one row's router logits and their renormalized weights. Static inline: one definition, two
 * translation units. */
#ifndef CKE_KERNELS_MOE_ROUTE_H
#define CKE_KERNELS_MOE_ROUTE_H

#include <math.h>
#include <stdint.h>

/* sel[k] <- the k largest of logits[E], largest first, a tie going to the lower index (a NaN is
 * never chosen over a number); w[k] <- their router probabilities, softmax over all E, and with
 * renorm those renormalized over the k, which is a softmax over the k logits (Mixtral, Qwen3-MoE's
 * norm_topk_prob; without: OLMoE, Qwen2-MoE). */
static inline void cke_moe_route(int32_t *sel /* [k] */, float *w /* [k] */, const float *logits /* [E] */, int64_t E,
                                 int64_t k, int renorm) {
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++) {
            int taken = 0;
            for (int64_t i = 0; i < j && !taken; i++) taken = sel[i] == e;
            if (taken) continue;
            if (best < 0 || logits[e] > logits[best] || (isnan(logits[best]) && !isnan(logits[e]))) best = e;
        }
        sel[j] = (int32_t)best;
    }
    double sum = 0, m = logits[sel[0]];
    if (renorm)
        for (int64_t j = 0; j < k; j++) sum += exp((double)logits[sel[j]] - m);
    else
        for (int64_t e = 0; e < E; e++) sum += exp((double)logits[e] - m);
    for (int64_t j = 0; j < k; j++) w[j] = (float)(exp((double)logits[sel[j]] - m) / sum);
}

#endif
