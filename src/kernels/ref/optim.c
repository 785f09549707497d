/* Optimizer kernels, scalar reference (the spec): AdamW and the sum of squares for clipping. */
#include "../kdecl.h"

#include <math.h>

/* AdamW exactly as torch.optim.AdamW (amsgrad=False, maximize=False) does it, in float32:
 *   g' = g * grad_scale
 *   p  = p * (1 - lr*wd)                      decoupled decay first, on the pre-update p
 *   m  = beta1*m + (1-beta1)*g'
 *   v  = beta2*v + (1-beta2)*g'*g'
 *   p  = p - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),  bc1 = 1-beta1^step, bc2 = 1-beta2^step
 * which is p -= lr*(mhat/(sqrt(vhat)+eps) + wd*p) with p the pre-update value. The per-step
 * scalars are computed in double (as Python does for torch) and rounded once to float.
 * Every element is independent, so the SIMD variants do the same float ops in the same
 * order (no FMA contraction) and are bitwise identical to this. */
void cke_adamw_ref(float *p /* [n] */, float *m /* [n] */, float *v /* [n] */,
                   const float *g /* [n] */, int64_t n, float lr, float beta1, float beta2,
                   float eps, float wd, int64_t step, float grad_scale) {
    double bc1 = 1.0 - pow((double)beta1, (double)step);
    double bc2 = 1.0 - pow((double)beta2, (double)step);
    float decay = (float)(1.0 - (double)lr * (double)wd);
    float step_size = (float)((double)lr / bc1);
    float sbc2 = (float)sqrt(bc2);
    float b1 = beta1, c1 = (float)(1.0 - (double)beta1);
    float b2 = beta2, c2 = (float)(1.0 - (double)beta2);
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / sbc2 + eps;
        p[i] = p[i] * decay - step_size * (mi / denom);
    }
}

/* Sum of squares in double: exact enough for n up to 1e9 (each square is exact in double,
 * the running sum loses ~n*2^-53 relative). */
double cke_sumsq_ref(const float *x /* [n] */, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}
