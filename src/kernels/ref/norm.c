/* RMSNorm and LayerNorm, forward and backward: the spec for every ISA.
 * Row statistics accumulate in double (accurate for any D); the per-element arithmetic is
 * float in the order HF uses: (x * rstd) * w. Memory-bound, single-threaded. */
#include "../kdecl.h"

#include <math.h>

/* out[t] = x[t] * rstd[t] * (w + w_offset), rstd = 1 / sqrt(mean(x^2) + eps).
 * w_offset = 1 gives Gemma's (1 + w). rstd is saved for the backward (NULL in inference). */
void cke_rmsnorm_fwd_ref(float *out /* [T,D] */, float *rstd /* [T] or NULL */,
                         const float *x /* [T,D] */, const float *w /* [D] */,
                         int64_t T, int64_t D, float eps, float w_offset) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D;
        float *o = out + t * D;
        double ss = 0;
        for (int64_t i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
        float rs = (float)(1.0 / sqrt(ss / (double)D + (double)eps));
        if (rstd) rstd[t] = rs;
        for (int64_t i = 0; i < D; i++) o[i] = (xr[i] * rs) * (w[i] + w_offset);
    }
}

/* With g = w + w_offset, y = x r g:
 *   dx += r g dy - (r^3 / D) x sum_j(dy_j g_j x_j);   dw += dy x r. */
void cke_rmsnorm_bwd_ref(float *dx /* [T,D] += */, float *dw /* [D] += */,
                         const float *dout /* [T,D] */, const float *x /* [T,D] */,
                         const float *w /* [D] */, const float *rstd /* [T] */,
                         int64_t T, int64_t D, float w_offset) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D, *dy = dout + t * D;
        float *dxr = dx + t * D;
        double r = rstd[t], dot = 0;
        for (int64_t i = 0; i < D; i++) dot += (double)dy[i] * (w[i] + w_offset) * xr[i];
        double c = r * r * r * dot / (double)D;
        for (int64_t i = 0; i < D; i++) {
            dxr[i] += (float)(r * dy[i] * (w[i] + w_offset) - c * xr[i]);
            dw[i] += dy[i] * (xr[i] * (float)r);
        }
    }
}

/* out[t] = (x[t] - mean) * rstd * w + b, two-pass variance (biased, as torch), b optional.
 * mean and rstd are saved for the backward; either may be NULL in inference. */
void cke_layernorm_fwd_ref(float *out /* [T,D] */, float *mean /* [T] or NULL */,
                           float *rstd /* [T] or NULL */, const float *x /* [T,D] */,
                           const float *w /* [D] */, const float *b /* [D] or NULL */,
                           int64_t T, int64_t D, float eps) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D;
        float *o = out + t * D;
        double s = 0;
        for (int64_t i = 0; i < D; i++) s += xr[i];
        double mu = s / (double)D, v = 0;
        for (int64_t i = 0; i < D; i++) v += ((double)xr[i] - mu) * ((double)xr[i] - mu);
        float m = (float)mu, rs = (float)(1.0 / sqrt(v / (double)D + (double)eps));
        if (mean) mean[t] = m;
        if (rstd) rstd[t] = rs;
        for (int64_t i = 0; i < D; i++) {
            float xh = (xr[i] - m) * rs;
            o[i] = b ? xh * w[i] + b[i] : xh * w[i];
        }
    }
}

/* xh = (x - mean) rstd, g = dy w:
 *   dx += rstd (g - mean(g) - xh mean(g xh));   dw += dy xh;   db += dy. */
void cke_layernorm_bwd_ref(float *dx /* [T,D] += */, float *dw /* [D] += */,
                           float *db /* [D] += or NULL */, const float *dout /* [T,D] */,
                           const float *x /* [T,D] */, const float *w /* [D] */,
                           const float *mean /* [T] */, const float *rstd /* [T] */,
                           int64_t T, int64_t D) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D, *dy = dout + t * D;
        float *dxr = dx + t * D;
        float m = mean[t], rs = rstd[t];
        double s1 = 0, s2 = 0;
        for (int64_t i = 0; i < D; i++) {
            double g = (double)dy[i] * w[i];
            s1 += g;
            s2 += g * ((xr[i] - m) * rs);
        }
        s1 /= (double)D;
        s2 /= (double)D;
        for (int64_t i = 0; i < D; i++) {
            float xh = (xr[i] - m) * rs;
            dxr[i] += (float)(rs * ((double)dy[i] * w[i] - s1 - xh * s2));
            dw[i] += dy[i] * xh;
            if (db) db[i] += dy[i];
        }
    }
}
