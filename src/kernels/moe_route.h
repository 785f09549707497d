/* Mixture-of-experts routing shared by the spec (ref/moe.c) and the fast path (moe.c): one row's
 * router logits to its k experts and their weights, as a cke_moe_gate says (kernels.h). Static
 * inline: one definition, two translation units (and the embedded build's moe.c). */
#ifndef CKE_KERNELS_MOE_ROUTE_H
#define CKE_KERNELS_MOE_ROUTE_H

#include "cke/kernels.h"

#include <math.h>
#include <stdint.h>

/* floats of scratch cke_moe_route takes: choice scores [E], group scores and kept flags [n_group] each */
#define CKE_MOE_ROUTE_SCRATCH(E) (3 * (E))

/* the sigmoid score of a logit: in double, rounded once (the forward's weights and the backward's s) */
static inline float cke_moe_sigmoid(float r) { return (float)(1.0 / (1.0 + exp(-(double)r))); }

/* a ranks above b: larger, or a number against a NaN. Scans run in index order and keep the first
 * of equals, so a tie goes to the lower index. */
static inline int cke_moe_beats(float a, float b) { return a > b || (isnan(b) && !isnan(a)); }

/* cke_moe_gate_check (kernels.h): 1 if g routes E experts k at a time */
static inline int cke_moe_gate_ok(const cke_moe_gate *g, int64_t E, int64_t k) {
    if (!g || E < 1 || k < 1 || k > E || !isfinite(g->scale) || !(g->scale > 0)) return 0;
    if (g->n_group <= 1) return 1;
    return E % g->n_group == 0 && g->topk_group >= 1 && g->topk_group <= g->n_group &&
           k <= g->topk_group * (E / g->n_group);
}

/* sel[k] <- the chosen experts, best first; w[k] <- their weights (kernels.h, cke_moe_fwd). g must
 * pass cke_moe_gate_ok. Softmax scoring without bias or groups ranks the logits themselves and
 * computes the weights as it always has (Mixtral, Qwen3-MoE's norm_topk_prob; without renorm:
 * OLMoE, Qwen2-MoE): the generated models' numbers rest on those bits. Otherwise the choice scores
 * are the float scores (sigmoid, or softmax probabilities) + bias, rounded to float as HF's f32
 * tensors are. */
static inline void cke_moe_route(int32_t *sel /* [k] */, float *w /* [k] */, const float *logits /* [E] */, int64_t E,
                                 int64_t k, const cke_moe_gate *g, float *sc /* [CKE_MOE_ROUTE_SCRATCH(E)] */) {
    const int plain = !g->sigmoid && !g->bias && g->n_group <= 1;
    const int64_t G = g->n_group > 1 ? g->n_group : 1, n = E / G; /* groups, experts per group */
    const float *c = logits; /* [E] the choice scores */
    const float *keep = NULL; /* [G] 1: the group's experts may be chosen; NULL: every expert may */
    if (!plain) {
        float *ch = sc;
        if (g->sigmoid) {
            for (int64_t e = 0; e < E; e++) ch[e] = cke_moe_sigmoid(logits[e]);
        } else {
            double mx = logits[0], sum = 0;
            for (int64_t e = 1; e < E; e++) mx = logits[e] > mx ? logits[e] : mx;
            for (int64_t e = 0; e < E; e++) sum += exp((double)logits[e] - mx);
            for (int64_t e = 0; e < E; e++) ch[e] = (float)(exp((double)logits[e] - mx) / sum);
        }
        if (g->bias)
            for (int64_t e = 0; e < E; e++) ch[e] += g->bias[e];
        c = ch;
    }
    if (G > 1) {
        float *gs = sc + E, *kp = gs + G; /* [G] each */
        for (int64_t q = 0; q < G; q++) { /* a group's score: its two largest choice scores' sum (one expert: its own) */
            const float *cq = c + q * n;
            int64_t a = 0, b = -1;
            for (int64_t i = 1; i < n; i++)
                if (cke_moe_beats(cq[i], cq[a])) a = i;
            for (int64_t i = 0; i < n; i++)
                if (i != a && (b < 0 || cke_moe_beats(cq[i], cq[b]))) b = i;
            gs[q] = b < 0 ? cq[a] : (float)((double)cq[a] + cq[b]);
            kp[q] = 0;
        }
        for (int64_t j = 0; j < g->topk_group; j++) {
            int64_t best = -1;
            for (int64_t q = 0; q < G; q++)
                if (!kp[q] && (best < 0 || cke_moe_beats(gs[q], gs[best]))) best = q;
            kp[best] = 1;
        }
        keep = kp;
    }
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++) {
            if (keep && !keep[e / n]) continue;
            int taken = 0;
            for (int64_t i = 0; i < j && !taken; i++) taken = sel[i] == e;
            if (taken) continue;
            if (best < 0 || cke_moe_beats(c[e], c[best])) best = e;
        }
        sel[j] = (int32_t)best;
    }
    const double scale = g->scale; /* 1: x * 1.0 is x, the weights' bits as before the scale existed */
    if (g->sigmoid) {
        double S = 0;
        if (g->renorm) {
            for (int64_t j = 0; j < k; j++) S += cke_moe_sigmoid(logits[sel[j]]);
            S += 1e-20; /* HF's denominator */
        }
        for (int64_t j = 0; j < k; j++) {
            const double s = cke_moe_sigmoid(logits[sel[j]]);
            w[j] = (float)((g->renorm ? s / S : s) * scale);
        }
        return;
    }
    double sum = 0, m = logits[sel[0]]; /* plain: the largest logit */
    if (!plain) { /* the chosen need not hold the largest logit: the largest of those summed */
        if (g->renorm)
            for (int64_t j = 1; j < k; j++) m = logits[sel[j]] > m ? logits[sel[j]] : m;
        else
            for (int64_t e = 0; e < E; e++) m = logits[e] > m ? logits[e] : m;
    }
    if (g->renorm)
        for (int64_t j = 0; j < k; j++) sum += exp((double)logits[sel[j]] - m);
    else
        for (int64_t e = 0; e < E; e++) sum += exp((double)logits[e] - m);
    for (int64_t j = 0; j < k; j++) w[j] = (float)(exp((double)logits[sel[j]] - m) / sum * scale);
}

#endif
