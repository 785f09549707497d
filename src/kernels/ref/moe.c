/* Mixture-of-experts FFN, the spec (cke_moe_fwd in kernels.h): one row at a time, one chosen
 * expert at a time, every dot product accumulated in double and rounded once. Single-threaded;
 * its workspace is the front of cke_moe_ws_size's. */
#include "../kdecl.h"
#include "../moe_route.h"

static double silu_d(double x) { return x / (1.0 + exp(-x)); }

void cke_moe_fwd_ref(float *out /* [T,D] */, const float *x /* [T,D] */, const float *router /* [E,D] */,
                     const float *gate /* [E,F,D] */, const float *up /* [E,F,D] */, const float *down /* [E,D,F] */,
                     int64_t T, int64_t D, int64_t F, int64_t E, int64_t k, int renorm, void *ws) {
    float *logits = ws;              /* [E] */
    float *w = logits + E;           /* [k] */
    double *h = (double *)(((uintptr_t)(w + k) + 63) & ~(uintptr_t)63); /* [F] */
    int32_t *sel = (int32_t *)(h + F); /* [k] */
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * D; /* [D] */
        for (int64_t e = 0; e < E; e++) {
            double s = 0;
            for (int64_t d = 0; d < D; d++) s += (double)router[e * D + d] * xt[d];
            logits[e] = (float)s;
        }
        cke_moe_route(sel, w, logits, E, k, renorm);
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
