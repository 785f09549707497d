/* Mixture-of-experts FFN, the spec (cke_moe_fwd in kernels.h): one row at a time, one chosen
 * expert at a time, every dot product accumulated in double and rounded once. Single-threaded;
 * its workspace is the front of cke_moe_ws_size's. */
#include "../kdecl.h"
#include "../moe_route.h"

static double silu_d(double x) { return x / (1.0 + exp(-x)); }

void cke_moe_fwd_ref(float *out /* [T,D] */, const float *x /* [T,D] */, const float *router /* [E,D] */,
                     const float *gate /* [E,F,D] */, const float *up /* [E,F,D] */, const float *down /* [E,D,F] */,
                     int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, const cke_moe_gate *route, void *ws) {
    if (!cke_moe_gate_ok(route, E, k)) return;
    float *logits = ws;              /* [E] */
    float *w = logits + E;           /* [k] */
    double *h = (double *)(((uintptr_t)(w + k) + 63) & ~(uintptr_t)63); /* [F] */
    int32_t *sel = (int32_t *)(h + F); /* [k] */
    float *rsc = (float *)(sel + k);   /* [CKE_MOE_ROUTE_SCRATCH(E)] */
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * D; /* [D] */
        for (int64_t e = 0; e < E; e++) {
            double s = 0;
            for (int64_t d = 0; d < D; d++) s += (double)router[e * D + d] * xt[d];
            logits[e] = (float)s;
        }
        cke_moe_route(sel, w, logits, E, k, route, rsc);
        float *ot = out + t * D; /* [D] */
        for (int64_t d = 0; d < D; d++) ot[d] = 0;
        for (int64_t j = 0; j < k; j++) {
            const int64_t e = sel[j];
            const float *g = gate + e * F * D, *u = up + e * F * D, *dn = down + e * D * F;
            for (int64_t f = 0; f < F; f++) {
                double a = 0, b = 0;
                for (int64_t d = 0; d < D; d++) a += (double)g[f * D + d] * xt[d], b += (double)u[f * D + d] * xt[d];
                h[f] = silu_d((double)(float)a) * (double)(float)b; /* gate and up are f32 values, as the GEMMs leave them */
            }
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t f = 0; f < F; f++) s += (double)dn[d * F + f] * (double)(float)h[f];
                ot[d] += w[j] * (float)s;
            }
        }
    }
}

/* The backward's spec (cke_moe_bwd in kernels.h): the forward recomputed row by row with the
 * forward's roundings (gate, up and the SwiGLU are f32 values), then every gradient in double. */
void cke_moe_bwd_ref(float *dx /* [T,D] += */, float *drouter /* [E,D] += */, float *dgate /* [E,F,D] += */,
                     float *dup /* [E,F,D] += */, float *ddown /* [E,D,F] += */, const float *dout /* [T,D] */,
                     const float *x /* [T,D] */, const float *router /* [E,D] */, const float *gate /* [E,F,D] */,
                     const float *up /* [E,F,D] */, const float *down /* [E,D,F] */, const float *aux_g /* [E] or NULL */,
                     int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, const cke_moe_gate *route, void *ws) {
    if (!cke_moe_gate_ok(route, E, k)) return;
    const double scale = route->scale;
    double *p = (double *)(((uintptr_t)ws + 63) & ~(uintptr_t)63); /* [E] router probabilities */
    double *dl = p + E;        /* [E] router logits' gradient */
    double *dw = dl + E;       /* [k] */
    float *g = (float *)(dw + k), *u = g + F, *h = u + F; /* [F] each */
    double *dh = (double *)(((uintptr_t)(h + F) + 63) & ~(uintptr_t)63); /* [F] */
    double *dy = dh + F;       /* [D] */
    double *du = dy + D;       /* [F]; dh then holds the gate's gradient */
    float *logits = (float *)(du + F); /* [E] */
    float *w = logits + E;     /* [k] */
    int32_t *sel = (int32_t *)(w + k); /* [k] */
    float *rsc = (float *)(sel + k);   /* [CKE_MOE_ROUTE_SCRATCH(E)] */
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * D, *gt = dout + t * D; /* [D] */
        for (int64_t e = 0; e < E; e++) {
            double s = 0;
            for (int64_t d = 0; d < D; d++) s += (double)router[e * D + d] * xt[d];
            logits[e] = (float)s;
        }
        cke_moe_route(sel, w, logits, E, k, route, rsc);
        double mx = logits[0], sum = 0;
        for (int64_t e = 1; e < E; e++) mx = logits[e] > mx ? logits[e] : mx;
        for (int64_t e = 0; e < E; e++) sum += p[e] = exp((double)logits[e] - mx);
        for (int64_t e = 0; e < E; e++) p[e] /= sum;
        for (int64_t j = 0; j < k; j++) {
            const int64_t e = sel[j];
            const float *G = gate + e * F * D, *U = up + e * F * D, *Dn = down + e * D * F;
            float *dG = dgate + e * F * D, *dU = dup + e * F * D, *dDn = ddown + e * D * F;
            for (int64_t f = 0; f < F; f++) {
                double a = 0, b = 0;
                for (int64_t d = 0; d < D; d++) a += (double)G[f * D + d] * xt[d], b += (double)U[f * D + d] * xt[d];
                g[f] = (float)a, u[f] = (float)b;
                h[f] = (float)(silu_d(g[f]) * (double)u[f]);
            }
            double dwj = 0;
            for (int64_t d = 0; d < D; d++) {
                double y = 0;
                for (int64_t f = 0; f < F; f++) y += (double)Dn[d * F + f] * h[f];
                dwj += (double)gt[d] * y;
                dy[d] = (double)w[j] * gt[d];
            }
            dw[j] = dwj;
            for (int64_t f = 0; f < F; f++) {
                double s = 0;
                for (int64_t d = 0; d < D; d++) s += dy[d] * Dn[d * F + f];
                dh[f] = s;
            }
            for (int64_t d = 0; d < D; d++)
                for (int64_t f = 0; f < F; f++) dDn[d * F + f] += (float)(dy[d] * h[f]);
            for (int64_t f = 0; f < F; f++) {
                const double sg = 1.0 / (1.0 + exp(-(double)g[f])), silu = g[f] * sg;
                const double dgf = dh[f] * u[f] * sg * (1.0 + g[f] * (1.0 - sg)), duf = dh[f] * silu;
                dh[f] = dgf, du[f] = duf; /* for dx below: the SwiGLU derivative once per f, not per (d, f) */
                for (int64_t d = 0; d < D; d++) {
                    dG[f * D + d] += (float)(dgf * xt[d]);
                    dU[f * D + d] += (float)(duf * xt[d]);
                }
            }
            for (int64_t d = 0; d < D; d++) {
                double s = 0;
                for (int64_t f = 0; f < F; f++) s += dh[f] * G[f * D + d] + du[f] * U[f * D + d];
                dx[t * D + d] += (float)s;
            }
        }
        for (int64_t e = 0; e < E; e++) dl[e] = 0;
        if (route->sigmoid) {
            /* w_j = scale s_j / S (renorm, S = sum of the chosen s + 1e-20) or scale s_j; s = sigmoid(logit).
             * No load-balancing term: aux_g is the softmax routers'. */
            double S = 0, sd = 0;
            for (int64_t j = 0; j < k; j++) {
                const double sj = cke_moe_sigmoid(logits[sel[j]]);
                S += sj, sd += dw[j] * sj;
            }
            if (route->renorm) S += 1e-20;
            for (int64_t j = 0; j < k; j++) {
                const double ds = route->renorm ? scale * (dw[j] / S - sd / (S * S)) : scale * dw[j];
                const double sg = 1.0 / (1.0 + exp(-(double)logits[sel[j]]));
                dl[sel[j]] = ds * sg * (1.0 - sg);
            }
        } else {
            /* the routing weights' softmax (times scale): over the k chosen logits (renorm) or over all E */
            for (int64_t j = 0; j < k; j++) dw[j] *= scale;
            double s = 0;
            if (route->renorm) {
                for (int64_t j = 0; j < k; j++) s += (double)w[j] / scale * dw[j];
                for (int64_t j = 0; j < k; j++) dl[sel[j]] = (double)w[j] / scale * (dw[j] - s);
            } else {
                for (int64_t j = 0; j < k; j++) s += p[sel[j]] * dw[j];
                for (int64_t e = 0; e < E; e++) dl[e] = -p[e] * s;
                for (int64_t j = 0; j < k; j++) dl[sel[j]] += p[sel[j]] * dw[j];
            }
            if (aux_g) {
                double sa = 0;
                for (int64_t e = 0; e < E; e++) sa += p[e] * aux_g[e];
                for (int64_t e = 0; e < E; e++) dl[e] += p[e] * (aux_g[e] - sa);
            }
        }
        for (int64_t e = 0; e < E; e++)
            for (int64_t d = 0; d < D; d++) drouter[e * D + d] += (float)(dl[e] * xt[d]);
        for (int64_t d = 0; d < D; d++) {
            double a = 0;
            for (int64_t e = 0; e < E; e++) a += dl[e] * router[e * D + d];
            dx[t * D + d] += (float)a;
        }
    }
}
