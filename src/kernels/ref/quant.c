/* Quantized formats, scalar reference: quantize_row / dequantize_row / vec_dot per ggml type.
 *
 * The quantizers follow ggml's reference quantizers (quantize_row_*_ref in ggml-quants.c) step
 * by step: same search, same float operations in the same order, same rounding (roundf for
 * Q8_0/Q8_1, truncation after +0.5/+8.5 for the _0/_1 formats, nearest_int = round half to even
 * for the K formats), so the same floats give the same block bytes. The dot products sum
 * integer products per block, then scale, as ggml's generic vec_dot does. */
#include "../kdecl.h"
#include "../quant_blocks.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define MAXI(a, b) ((a) > (b) ? (a) : (b))
#define MINI(a, b) ((a) < (b) ? (a) : (b))

/* ------------------------------------------------------------------ F16 / BF16 (f32 activations) */

void cke_quantize_row_f16_ref(void *y, const float *x, int64_t k) {
    uint16_t *h = y; /* [k] */
    for (int64_t i = 0; i < k; i++) h[i] = qb_f2h(x[i]);
}
void cke_dequantize_row_f16_ref(float *y, const void *x, int64_t k) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < k; i++) y[i] = qb_h2f(h[i]);
}
void cke_vec_dot_f16_ref(float *s, const void *w, const void *a, int64_t k) {
    const uint16_t *h = w; /* [k] */
    const float *x = a;    /* [k] */
    float acc = 0.0f;
    for (int64_t i = 0; i < k; i++) acc += qb_h2f(h[i]) * x[i];
    *s = acc;
}
void cke_quantize_row_bf16_ref(void *y, const float *x, int64_t k) {
    uint16_t *h = y;
    for (int64_t i = 0; i < k; i++) h[i] = qb_f2bf(x[i]);
}
void cke_dequantize_row_bf16_ref(float *y, const void *x, int64_t k) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < k; i++) y[i] = qb_bf2f(h[i]);
}
void cke_vec_dot_bf16_ref(float *s, const void *w, const void *a, int64_t k) {
    const uint16_t *h = w;
    const float *x = a;
    float acc = 0.0f;
    for (int64_t i = 0; i < k; i++) acc += qb_bf2f(h[i]) * x[i];
    *s = acc;
}

/* ------------------------------------------------------------------ Q8_0, Q8_1 */

void cke_quantize_row_q8_0_ref(void *vy, const float *x, int64_t k) {
    blk_q8_0 *y = vy;
    for (int64_t i = 0; i < k / QK; i++, x += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qb_f2h(d);
        for (int j = 0; j < QK; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}
void cke_dequantize_row_q8_0_ref(float *y, const void *vx, int64_t k) {
    const blk_q8_0 *x = vx;
    for (int64_t i = 0; i < k / QK; i++) {
        const float d = qb_h2f(x[i].d);
        for (int j = 0; j < QK; j++) y[i * QK + j] = x[i].qs[j] * d;
    }
}
void cke_vec_dot_q8_0_ref(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q8_0 *w = vw, *a = va;
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK; j++) sumi += w[i].qs[j] * a[i].qs[j];
        acc += (float)sumi * (qb_h2f(w[i].d) * qb_h2f(a[i].d));
    }
    *s = acc;
}

void cke_quantize_row_q8_1_ref(void *vy, const float *x, int64_t k) {
    blk_q8_1 *y = vy;
    for (int64_t i = 0; i < k / QK; i++, x += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qb_f2h(d);
        int sum = 0;
        for (int j = 0; j < QK / 2; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            y[i].qs[QK / 2 + j] = (int8_t)roundf(x[QK / 2 + j] * id);
            sum += y[i].qs[j] + y[i].qs[QK / 2 + j];
        }
        y[i].s = qb_f2h((float)sum * d);
    }
}
void cke_dequantize_row_q8_1_ref(float *y, const void *vx, int64_t k) {
    const blk_q8_1 *x = vx;
    for (int64_t i = 0; i < k / QK; i++) {
        const float d = qb_h2f(x[i].d);
        for (int j = 0; j < QK; j++) y[i * QK + j] = x[i].qs[j] * d;
    }
}

/* ------------------------------------------------------------------ Q4_0, Q4_1 */

void cke_quantize_row_q4_0_ref(void *vy, const float *x, int64_t k) {
    blk_q4_0 *y = vy;
    for (int64_t i = 0; i < k / QK; i++, x += QK) {
        float amax = 0.0f, max = 0.0f; /* the value of largest magnitude, with its sign */
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qb_f2h(d);
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t xi0 = (uint8_t)MINI(15, (int8_t)(x[j] * id + 8.5f));
            const uint8_t xi1 = (uint8_t)MINI(15, (int8_t)(x[QK / 2 + j] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}
void cke_dequantize_row_q4_0_ref(float *y, const void *vx, int64_t k) {
    const blk_q4_0 *x = vx;
    for (int64_t i = 0; i < k / QK; i++) {
        const float d = qb_h2f(x[i].d);
        for (int j = 0; j < QK / 2; j++) {
            y[i * QK + j] = ((x[i].qs[j] & 0x0F) - 8) * d;
            y[i * QK + j + QK / 2] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}
void cke_vec_dot_q4_0_ref(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q4_0 *w = vw;
    const blk_q8_0 *a = va;
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK / 2; j++)
            sumi += ((w[i].qs[j] & 0x0F) - 8) * a[i].qs[j] + ((w[i].qs[j] >> 4) - 8) * a[i].qs[j + QK / 2];
        acc += (float)sumi * (qb_h2f(w[i].d) * qb_h2f(a[i].d));
    }
    *s = acc;
}

void cke_quantize_row_q4_1_ref(void *vy, const float *x, int64_t k) {
    blk_q4_1 *y = vy;
    for (int64_t i = 0; i < k / QK; i++, x += QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qb_f2h(d);
        y[i].m = qb_f2h(min);
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t xi0 = (uint8_t)MINI(15, (int8_t)((x[j] - min) * id + 0.5f));
            const uint8_t xi1 = (uint8_t)MINI(15, (int8_t)((x[QK / 2 + j] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}
void cke_dequantize_row_q4_1_ref(float *y, const void *vx, int64_t k) {
    const blk_q4_1 *x = vx;
    for (int64_t i = 0; i < k / QK; i++) {
        const float d = qb_h2f(x[i].d), m = qb_h2f(x[i].m);
        for (int j = 0; j < QK / 2; j++) {
            y[i * QK + j] = (x[i].qs[j] & 0x0F) * d + m;
            y[i * QK + j + QK / 2] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}
void cke_vec_dot_q4_1_ref(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q4_1 *w = vw;
    const blk_q8_1 *a = va;
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < QK / 2; j++)
            sumi += (w[i].qs[j] & 0x0F) * a[i].qs[j] + (w[i].qs[j] >> 4) * a[i].qs[j + QK / 2];
        /* sum (d q + m) a_d qa = d a_d sumi + m (a_d sum qa), and a.s = a_d sum qa */
        acc += (float)sumi * (qb_h2f(w[i].d) * qb_h2f(a[i].d)) + qb_h2f(w[i].m) * qb_h2f(a[i].s);
    }
    *s = acc;
}

/* ------------------------------------------------------------------ Q5_0, Q5_1 */

void cke_quantize_row_q5_0_ref(void *vy, const float *x, int64_t k) {
    blk_q5_0 *y = vy;
    for (int64_t i = 0; i < k / QK; i++, x += QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qb_f2h(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t xi0 = (uint8_t)MINI(31, (int8_t)(x[j] * id + 16.5f));
            const uint8_t xi1 = (uint8_t)MINI(31, (int8_t)(x[QK / 2 + j] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << j;          /* bit 4 of element j at bit j */
            qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}
/* q of element j (0..31) of a Q5 block: 4 low bits from qs, bit 4 from qh bit j */
static inline int q5_val(const uint8_t *qs, uint32_t qh, int j) {
    int lo = j < QK / 2 ? (qs[j] & 0x0F) : (qs[j - QK / 2] >> 4);
    return lo | (int)(((qh >> j) & 1u) << 4);
}
void cke_dequantize_row_q5_0_ref(float *y, const void *vx, int64_t k) {
    const blk_q5_0 *x = vx;
    for (int64_t i = 0; i < k / QK; i++) {
        const float d = qb_h2f(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK; j++) y[i * QK + j] = (q5_val(x[i].qs, qh, j) - 16) * d;
    }
}
void cke_vec_dot_q5_0_ref(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q5_0 *w = vw;
    const blk_q8_0 *a = va;
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        uint32_t qh;
        memcpy(&qh, w[i].qh, 4);
        int32_t sumi = 0;
        for (int j = 0; j < QK; j++) sumi += (q5_val(w[i].qs, qh, j) - 16) * a[i].qs[j];
        acc += (float)sumi * (qb_h2f(w[i].d) * qb_h2f(a[i].d));
    }
    *s = acc;
}

void cke_quantize_row_q5_1_ref(void *vy, const float *x, int64_t k) {
    blk_q5_1 *y = vy;
    for (int64_t i = 0; i < k / QK; i++, x += QK) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = qb_f2h(d);
        y[i].m = qb_f2h(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t xi0 = (uint8_t)((x[j] - min) * id + 0.5f); /* ggml clamps nothing here */
            const uint8_t xi1 = (uint8_t)((x[QK / 2 + j] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << j;
            qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}
void cke_dequantize_row_q5_1_ref(float *y, const void *vx, int64_t k) {
    const blk_q5_1 *x = vx;
    for (int64_t i = 0; i < k / QK; i++) {
        const float d = qb_h2f(x[i].d), m = qb_h2f(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK; j++) y[i * QK + j] = q5_val(x[i].qs, qh, j) * d + m;
    }
}
void cke_vec_dot_q5_1_ref(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q5_1 *w = vw;
    const blk_q8_1 *a = va;
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK; i++) {
        uint32_t qh;
        memcpy(&qh, w[i].qh, 4);
        int32_t sumi = 0;
        for (int j = 0; j < QK; j++) sumi += q5_val(w[i].qs, qh, j) * a[i].qs[j];
        acc += (float)sumi * (qb_h2f(w[i].d) * qb_h2f(a[i].d)) + qb_h2f(w[i].m) * qb_h2f(a[i].s);
    }
    *s = acc;
}

/* ------------------------------------------------------------------ Q8_K (activations) */

void cke_quantize_row_q8_K_ref(void *vy, const float *x, int64_t k) {
    blk_q8_K *y = vy;
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        memset(&y[i], 0, sizeof y[i]); /* ggml leaves bsums stale for an all-zero block; we zero them */
        if (!amax) continue;
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)MINI(127, qb_nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}
void cke_dequantize_row_q8_K_ref(float *y, const void *vx, int64_t k) {
    const blk_q8_K *x = vx;
    for (int64_t i = 0; i < k / QK_K; i++)
        for (int j = 0; j < QK_K; j++) y[i * QK_K + j] = x[i].d * x[i].qs[j];
}

/* ------------------------------------------------------------------ K-format helpers */

/* ggml's make_qkx2_quants: scale and min of n values on 0..nmax, weighted least squares over
 * nstep+1 candidate scales. Returns the scale; *the_min = -min (>= 0). */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = qb_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAXI(0, MINI(nmax, l));
        float diff = scale * L[i] + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = qb_nearest_int(iscale * (x[i] - min));
            l = MAXI(0, MINI(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ggml's make_qx_quants with rmse_type 1 and no importance weights (w = x^2): symmetric
 * scale for values on -nmax..nmax-1, L = l + nmax. Returns the scale. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < 1e-15f) { /* GROUP_MAX_EPS: all zero */
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = qb_nearest_int(iscale * x[i]);
        l = MAXI(-nmax, MINI(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = qb_nearest_int(iscale * x[i]);
            l = MAXI(-nmax, MINI(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = qb_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + MAXI(-nmax, MINI(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q4_K / Q5_K share everything but the level count (nmax 15 / 31) and search parameters. */
static void quantize_k_scales(const float *x, uint8_t *L, uint8_t scales12[12], uint16_t *dh, uint16_t *dminh,
                              int nmax, float rmin, float rdelta, int nstep) {
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0; /* the min is subtracted, so scales are >= 0 */
    for (int j = 0; j < QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t ls = (uint8_t)qb_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)qb_nearest_int(inv_min * mins[j]);
        ls = (uint8_t)MINI(63, ls);
        lm = (uint8_t)MINI(63, lm);
        if (j < 4) {
            scales12[j] = ls;
            scales12[j + 4] = lm;
        } else { /* low 4 bits in bytes 8..11, high 2 bits on top of bytes 0..7 */
            scales12[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales12[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales12[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *dh = qb_f2h(max_scale / 63.f);
    *dminh = qb_f2h(max_min / 63.f);
    /* requantize with the rounded scales */
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        qb_scale_min_k4(j, scales12, &sc, &m);
        const float d = qb_h2f(*dh) * sc;
        if (!d) continue;
        const float dm = qb_h2f(*dminh) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = qb_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)MAXI(0, MINI(nmax, l));
        }
    }
}

/* ------------------------------------------------------------------ Q4_K */

void cke_quantize_row_q4_K_ref(void *vy, const float *x, int64_t k) {
    blk_q4_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        memset(&y[i], 0, sizeof y[i]);
        quantize_k_scales(x, L, y[i].scales, &y[i].d, &y[i].dmin, 15, -1.f, 0.1f, 20);
        uint8_t *q = y[i].qs; /* 64 values per 32 bytes: low nibbles first 32, high the next */
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}
/* q (0..15) of the 256 values and the 8 (scale, min) pairs */
static void unpack_q4_K(const blk_q4_K *b, uint8_t q[QK_K], uint8_t sc[8], uint8_t mn[8]) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = b->qs[32 * c + l] & 0xF;
            q[64 * c + 32 + l] = b->qs[32 * c + l] >> 4;
        }
    for (int j = 0; j < 8; j++) qb_scale_min_k4(j, b->scales, &sc[j], &mn[j]);
}
void cke_dequantize_row_q4_K_ref(float *y, const void *vx, int64_t k) {
    const blk_q4_K *x = vx;
    uint8_t q[QK_K], sc[8], mn[8];
    for (int64_t i = 0; i < k / QK_K; i++) {
        unpack_q4_K(&x[i], q, sc, mn);
        const float d = qb_h2f(x[i].d), min = qb_h2f(x[i].dmin);
        for (int j = 0; j < 8; j++) {
            const float d1 = d * sc[j], m1 = min * mn[j];
            for (int l = 0; l < 32; l++) y[i * QK_K + 32 * j + l] = d1 * q[32 * j + l] - m1;
        }
    }
}
/* sum_j (d sc_j sum_l q a - dmin m_j sum_l a), with sum_l a from the activation's bsums */
void cke_vec_dot_q4_K_ref(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q4_K *w = vw;
    const blk_q8_K *a = va;
    uint8_t q[QK_K], sc[8], mn[8];
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        unpack_q4_K(&w[i], q, sc, mn);
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            int32_t p = 0;
            for (int l = 0; l < 32; l++) p += q[32 * j + l] * a[i].qs[32 * j + l];
            sumi += sc[j] * p;
            summ += mn[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        acc += a[i].d * qb_h2f(w[i].d) * (float)sumi - a[i].d * qb_h2f(w[i].dmin) * (float)summ;
    }
    *s = acc;
}

/* ------------------------------------------------------------------ Q5_K */

void cke_quantize_row_q5_K_ref(void *vy, const float *x, int64_t k) {
    blk_q5_K *y = vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        memset(&y[i], 0, sizeof y[i]);
        quantize_k_scales(x, L, y[i].scales, &y[i].d, &y[i].dmin, 31, -0.5f, 0.1f, 15);
        uint8_t *ql = y[i].qs, *qh = y[i].qh;
        uint8_t m1 = 1, m2 = 2; /* qh bit 2c: high bit of chunk c's first 32, bit 2c+1: its second 32 */
        for (int n = 0; n < QK_K; n += 64, ql += 32, m1 <<= 2, m2 <<= 2)
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
    }
}
static void unpack_q5_K(const blk_q5_K *b, uint8_t q[QK_K], uint8_t sc[8], uint8_t mn[8]) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            q[64 * c + l] = (uint8_t)((b->qs[32 * c + l] & 0xF) | (((b->qh[l] >> (2 * c)) & 1) << 4));
            q[64 * c + 32 + l] = (uint8_t)((b->qs[32 * c + l] >> 4) | (((b->qh[l] >> (2 * c + 1)) & 1) << 4));
        }
    for (int j = 0; j < 8; j++) qb_scale_min_k4(j, b->scales, &sc[j], &mn[j]);
}
void cke_dequantize_row_q5_K_ref(float *y, const void *vx, int64_t k) {
    const blk_q5_K *x = vx;
    uint8_t q[QK_K], sc[8], mn[8];
    for (int64_t i = 0; i < k / QK_K; i++) {
        unpack_q5_K(&x[i], q, sc, mn);
        const float d = qb_h2f(x[i].d), min = qb_h2f(x[i].dmin);
        for (int j = 0; j < 8; j++) {
            const float d1 = d * sc[j], m1 = min * mn[j];
            for (int l = 0; l < 32; l++) y[i * QK_K + 32 * j + l] = d1 * q[32 * j + l] - m1;
        }
    }
}
void cke_vec_dot_q5_K_ref(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q5_K *w = vw;
    const blk_q8_K *a = va;
    uint8_t q[QK_K], sc[8], mn[8];
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        unpack_q5_K(&w[i], q, sc, mn);
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            int32_t p = 0;
            for (int l = 0; l < 32; l++) p += q[32 * j + l] * a[i].qs[32 * j + l];
            sumi += sc[j] * p;
            summ += mn[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        acc += a[i].d * qb_h2f(w[i].d) * (float)sumi - a[i].d * qb_h2f(w[i].dmin) * (float)summ;
    }
    *s = acc;
}

/* ------------------------------------------------------------------ Q6_K */

void cke_quantize_row_q6_K_ref(void *vy, const float *x, int64_t k) {
    blk_q6_K *y = vy;
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) { max_abs_scale = fabsf(scale); max_scale = scale; }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (max_abs_scale < 1e-15f) continue; /* all zero: d = 0 */
        float iscale = -128.f / max_scale;
        y[i].d = qb_f2h(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++) y[i].scales[ib] = (int8_t)MINI(127, qb_nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; j++) {
            float d = qb_h2f(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = qb_nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(MAXI(-32, MINI(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF,
                              q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
    }
}
/* q - 32 (-32..31) of the 256 values */
static void unpack_q6_K(const blk_q6_K *b, int8_t q[QK_K]) {
    for (int n = 0; n < 2; n++) {
        const uint8_t *ql = b->ql + 64 * n, *qh = b->qh + 32 * n;
        int8_t *y = q + 128 * n;
        for (int l = 0; l < 32; l++) {
            y[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            y[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            y[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            y[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}
void cke_dequantize_row_q6_K_ref(float *y, const void *vx, int64_t k) {
    const blk_q6_K *x = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < k / QK_K; i++) {
        unpack_q6_K(&x[i], q);
        const float d = qb_h2f(x[i].d);
        for (int j = 0; j < QK_K; j++) y[i * QK_K + j] = d * x[i].scales[j / 16] * q[j];
    }
}
void cke_vec_dot_q6_K_ref(float *s, const void *vw, const void *va, int64_t k) {
    const blk_q6_K *w = vw;
    const blk_q8_K *a = va;
    int8_t q[QK_K];
    float acc = 0.0f;
    for (int64_t i = 0; i < k / QK_K; i++) {
        unpack_q6_K(&w[i], q);
        int32_t sumi = 0;
        for (int g = 0; g < 16; g++) {
            int32_t p = 0;
            for (int l = 0; l < 16; l++) p += q[16 * g + l] * a[i].qs[16 * g + l];
            sumi += w[i].scales[g] * p;
        }
        acc += a[i].d * qb_h2f(w[i].d) * (float)sumi;
    }
    *s = acc;
}

/* ------------------------------------------------------------------ ops tables */

#define OPS(nm, t, b, sz, vdt, vd)                                                                \
    const cke_qtype_ops cke_qops_##t##_ref = {.name = nm, .blck = b, .type_size = sz, .vec_dot_type = vdt, \
                                              .quantize_row = cke_quantize_row_##t##_ref,                    \
                                              .dequantize_row = cke_dequantize_row_##t##_ref, .vec_dot = vd}
OPS("f16", f16, 1, 2, QT_F32, cke_vec_dot_f16_ref);
OPS("bf16", bf16, 1, 2, QT_F32, cke_vec_dot_bf16_ref);
OPS("q8_0", q8_0, QK, 34, QT_Q8_0, cke_vec_dot_q8_0_ref);
OPS("q8_1", q8_1, QK, 36, QT_Q8_1, NULL); /* activation format only */
OPS("q4_0", q4_0, QK, 18, QT_Q8_0, cke_vec_dot_q4_0_ref);
OPS("q4_1", q4_1, QK, 20, QT_Q8_1, cke_vec_dot_q4_1_ref);
OPS("q5_0", q5_0, QK, 22, QT_Q8_0, cke_vec_dot_q5_0_ref);
OPS("q5_1", q5_1, QK, 24, QT_Q8_1, cke_vec_dot_q5_1_ref);
OPS("q8_K", q8_K, QK_K, 292, QT_Q8_K, NULL); /* activation format only */
OPS("q4_K", q4_K, QK_K, 144, QT_Q8_K, cke_vec_dot_q4_K_ref);
OPS("q5_K", q5_K, QK_K, 176, QT_Q8_K, cke_vec_dot_q5_K_ref);
OPS("q6_K", q6_K, QK_K, 210, QT_Q8_K, cke_vec_dot_q6_K_ref);
