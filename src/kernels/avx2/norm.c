/* RMSNorm and LayerNorm, AVX2 + FMA. Same arithmetic order as ref/norm.c per element; row sums
 * use float vector accumulators (2 x 8 lanes, so a D = 16384 row is 1024 terms per lane:
 * relative error ~1e-6, see tolerances in tests/kernels/t_norm.c) reduced in double.
 * Memory-bound: single-threaded; the second pass over a row hits L1/L2. */
#include "../kdecl.h"
#include "vmath.h"

#include <math.h>

#define W 8

/* sum of x[i] * y[i] over [0, D); y may equal x */
static inline double dot_row(const float *x /* [D] */, const float *y /* [D] */, int64_t D) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * W <= D; i += 2 * W) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + W), _mm256_loadu_ps(y + i + W), a1);
    }
    for (; i < D; i += W)
        a0 = _mm256_fmadd_ps(v8_load_n(x + i, D - i), v8_load_n(y + i, D - i), a0);
    return (double)v8_hsum(_mm256_add_ps(a0, a1));
}

void cke_rmsnorm_fwd_avx2(float *out /* [T,D] */, float *rstd /* [T] or NULL */,
                            const float *x /* [T,D] */, const float *w /* [D] */,
                            int64_t T, int64_t D, float eps, float w_offset) {
    __m256 off = _mm256_set1_ps(w_offset);
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D;
        float *o = out + t * D;
        float rs = (float)(1.0 / sqrt(dot_row(xr, xr, D) / (double)D + (double)eps));
        if (rstd) rstd[t] = rs;
        __m256 r = _mm256_set1_ps(rs);
        for (int64_t i = 0; i < D; i += W) {
            int64_t n = D - i;
            __m256 g = _mm256_add_ps(v8_load_n(w + i, n), off);
            v8_store_n(o + i, _mm256_mul_ps(_mm256_mul_ps(v8_load_n(xr + i, n), r), g), n);
        }
    }
}

void cke_rmsnorm_bwd_avx2(float *dx /* [T,D] += */, float *dw /* [D] += */,
                            const float *dout /* [T,D] */, const float *x /* [T,D] */,
                            const float *w /* [D] */, const float *rstd /* [T] */,
                            int64_t T, int64_t D, float w_offset) {
    __m256 off = _mm256_set1_ps(w_offset);
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D, *dy = dout + t * D;
        float *dxr = dx + t * D;
        /* dot = sum dy g x */
        __m256 a = _mm256_setzero_ps();
        for (int64_t i = 0; i < D; i += W) {
            int64_t n = D - i;
            __m256 g = _mm256_add_ps(v8_load_n(w + i, n), off);
            a = _mm256_fmadd_ps(_mm256_mul_ps(v8_load_n(dy + i, n), g), v8_load_n(xr + i, n), a);
        }
        double r = rstd[t];
        __m256 rv = _mm256_set1_ps((float)r);
        __m256 cv = _mm256_set1_ps((float)(r * r * r * (double)v8_hsum(a) / (double)D));
        for (int64_t i = 0; i < D; i += W) {
            int64_t n = D - i;
            __m256 g = _mm256_add_ps(v8_load_n(w + i, n), off);
            __m256 xv = v8_load_n(xr + i, n), dyv = v8_load_n(dy + i, n);
            __m256 d = _mm256_fnmadd_ps(cv, xv, _mm256_mul_ps(_mm256_mul_ps(rv, g), dyv));
            v8_store_n(dxr + i, _mm256_add_ps(v8_load_n(dxr + i, n), d), n);
            v8_store_n(dw + i, _mm256_fmadd_ps(dyv, _mm256_mul_ps(xv, rv), v8_load_n(dw + i, n)), n);
        }
    }
}

void cke_layernorm_fwd_avx2(float *out /* [T,D] */, float *mean /* [T] or NULL */,
                              float *rstd /* [T] or NULL */, const float *x /* [T,D] */,
                              const float *w /* [D] */, const float *b /* [D] or NULL */,
                              int64_t T, int64_t D, float eps) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D;
        float *o = out + t * D;
        __m256 s = _mm256_setzero_ps();
        for (int64_t i = 0; i < D; i += W) s = _mm256_add_ps(s, v8_load_n(xr + i, D - i));
        float m = (float)((double)v8_hsum(s) / (double)D);
        __m256 mv = _mm256_set1_ps(m), v = _mm256_setzero_ps();
        /* two-pass variance: no cancellation for rows with a large mean */
        for (int64_t i = 0; i < D; i += W) {
            int64_t n = D - i;
            /* masked lanes load m, so they contribute 0 */
            __m256 d = _mm256_sub_ps(v8_load_n_fill(xr + i, n, m), mv);
            v = _mm256_fmadd_ps(d, d, v);
        }
        float rs = (float)(1.0 / sqrt((double)v8_hsum(v) / (double)D + (double)eps));
        if (mean) mean[t] = m;
        if (rstd) rstd[t] = rs;
        __m256 r = _mm256_set1_ps(rs);
        for (int64_t i = 0; i < D; i += W) {
            int64_t n = D - i;
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(v8_load_n(xr + i, n), mv), r);
            __m256 bv = b ? v8_load_n(b + i, n) : _mm256_setzero_ps();
            v8_store_n(o + i, _mm256_fmadd_ps(xh, v8_load_n(w + i, n), bv), n);
        }
    }
}

void cke_layernorm_bwd_avx2(float *dx /* [T,D] += */, float *dw /* [D] += */,
                              float *db /* [D] += or NULL */, const float *dout /* [T,D] */,
                              const float *x /* [T,D] */, const float *w /* [D] */,
                              const float *mean /* [T] */, const float *rstd /* [T] */,
                              int64_t T, int64_t D) {
    for (int64_t t = 0; t < T; t++) {
        const float *xr = x + t * D, *dy = dout + t * D;
        float *dxr = dx + t * D;
        __m256 mv = _mm256_set1_ps(mean[t]), r = _mm256_set1_ps(rstd[t]);
        __m256 s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
        for (int64_t i = 0; i < D; i += W) {
            int64_t n = D - i; /* masked lanes: dy = 0, so g = 0 and they add nothing */
            __m256 g = _mm256_mul_ps(v8_load_n(dy + i, n), v8_load_n(w + i, n));
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(v8_load_n(xr + i, n), mv), r);
            s1 = _mm256_add_ps(s1, g);
            s2 = _mm256_fmadd_ps(g, xh, s2);
        }
        __m256 m1 = _mm256_set1_ps((float)((double)v8_hsum(s1) / (double)D));
        __m256 m2 = _mm256_set1_ps((float)((double)v8_hsum(s2) / (double)D));
        for (int64_t i = 0; i < D; i += W) {
            int64_t n = D - i;
            __m256 dyv = v8_load_n(dy + i, n);
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(v8_load_n(xr + i, n), mv), r);
            __m256 g = _mm256_mul_ps(dyv, v8_load_n(w + i, n));
            __m256 d = _mm256_mul_ps(r, _mm256_fnmadd_ps(xh, m2, _mm256_sub_ps(g, m1)));
            v8_store_n(dxr + i, _mm256_add_ps(v8_load_n(dxr + i, n), d), n);
            v8_store_n(dw + i, _mm256_fmadd_ps(dyv, xh, v8_load_n(dw + i, n)), n);
            if (db) v8_store_n(db + i, _mm256_add_ps(v8_load_n(db + i, n), dyv), n);
        }
    }
}
