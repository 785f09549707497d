/* Causal grouped-query attention, scalar reference (the spec). Semantics: cke_attn_shape.
 *   logit  s_tj = scale * q_t . k_j, then s -> softcap * tanh(s / softcap) when softcap != 0
 *   row t (position p = Tk - T + t) sees key j iff j <= p and (window <= 0 || j > p - window)
 *   out_t  = sum_j softmax_j(s_t) v_j,   lse[h, t] = log sum_j exp(s_tj)   (visible j only)
 * Every row sees at least key j = p, so softmax is always defined. */
#include "../kdecl.h"
#include "../quant_blocks.h" /* qb_h2f, qb_f2h: the exact half conversions */

#include <math.h>
#include "../kthreads.h"

/* Visible key range [lo, hi] (inclusive) of query row t. */
static inline void vis(const cke_attn_shape *s, int64_t t, int64_t *lo, int64_t *hi) {
    int64_t p = s->Tk - s->T + t;
    *hi = p;
    *lo = (s->window > 0 && p - s->window + 1 > 0) ? p - s->window + 1 : 0;
}

static inline float logit(const cke_attn_shape *s, const float *q /* [hd] */, const float *k /* [hd] */) {
    float d = 0;
    for (int64_t i = 0; i < s->head_dim; i++) d += q[i] * k[i];
    d *= s->scale;
    if (s->softcap != 0.0f) d = s->softcap * tanhf(d / s->softcap);
    return d;
}

/* K/V element formats: f32, the f16 cache, the Q8_0 cache (blocks of 32: x = d * q). */
enum { KV_F32 = 0, KV_F16 = 1, KV_Q8_0 = 2 };

/* Element i of a K or V row of format h16 (a KV_ value), exactly as stored. */
static inline float kv_at(const void *row, int h16, int64_t i) {
    if (h16 == KV_Q8_0) {
        const blk_q8_0 *b = (const blk_q8_0 *)row + i / 32;
        return qb_h2f(b->d) * (float)b->qs[i % 32];
    }
    return h16 ? qb_h2f(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

/* Byte offset of element e (a row start: e a multiple of head_dim) in a K/V array of format f. */
static inline size_t kv_off(int f, int64_t e) {
    return f == KV_Q8_0 ? (size_t)(e / 32) * sizeof(blk_q8_0) : (size_t)e * (f == KV_F16 ? 2 : 4);
}

static inline float logit_kv(const cke_attn_shape *s, const float *q /* [hd] */, const void *k /* [hd] */,
                             int h16) {
    float d = 0;
    for (int64_t i = 0; i < s->head_dim; i++) d += q[i] * kv_at(k, h16, i);
    d *= s->scale;
    if (s->softcap != 0.0f) d = s->softcap * tanhf(d / s->softcap);
    return d;
}

/* Parallel over (head, row); ws holds one row of Tk scores per thread (cke_attn_ws_size).
 * k, v: rows of format h16 (KV_F32, KV_F16, KV_Q8_0). */
static void attn_fwd(float *out /* [T, n_head, hd] */, float *lse /* [n_head, T] or NULL */,
                     const float *q /* [T, n_head, hd] */, const void *k /* [Tk, n_kv_head, hd] */,
                     const void *v /* [Tk, n_kv_head, hd] */, int h16, const cke_attn_shape *s, void *ws,
                     int nth) {
    const int64_t T = s->T, H = s->n_head, KV = s->n_kv_head, hd = s->head_dim;
    const int64_t rep = H / KV;
    if (nth < 1) nth = 1;
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        int tid = omp_get_thread_num();
        float *sc = (float *)ws + (int64_t)tid * s->Tk; /* [Tk] scores of this thread's row */
#pragma omp for schedule(static)
        for (int64_t ht = 0; ht < H * T; ht++) {
            int64_t h = ht / T, t = ht % T, g = h / rep, lo, hi;
            vis(s, t, &lo, &hi);
            const float *qr = q + (t * H + h) * hd; /* [hd] */
            float m = -INFINITY;
            for (int64_t j = lo; j <= hi; j++) {
                sc[j] = logit_kv(s, qr, (const char *)k + kv_off(h16, (j * KV + g) * hd), h16);
                m = sc[j] > m ? sc[j] : m;
            }
            float sum = 0;
            for (int64_t j = lo; j <= hi; j++) {
                sc[j] = expf(sc[j] - m);
                sum += sc[j];
            }
            float *o = out + (t * H + h) * hd; /* [hd] */
            for (int64_t i = 0; i < hd; i++) o[i] = 0;
            for (int64_t j = lo; j <= hi; j++) {
                const void *vr = (const char *)v + kv_off(h16, (j * KV + g) * hd);
                for (int64_t i = 0; i < hd; i++) o[i] += sc[j] * kv_at(vr, h16, i);
            }
            float inv = 1.0f / sum;
            for (int64_t i = 0; i < hd; i++) o[i] *= inv;
            if (lse) lse[h * T + t] = m + logf(sum);
        }
    }
}

void cke_attn_fwd_ref(float *out, float *lse, const float *q, const float *k, const float *v,
                      const cke_attn_shape *s, void *ws, int nth) {
    attn_fwd(out, lse, q, k, v, KV_F32, s, ws, nth);
}

/* The same attention on an f16 KV cache: each k/v element widened exactly before use. */
void cke_attn_fwd_f16_ref(float *out, float *lse, const float *q, const uint16_t *k, const uint16_t *v,
                          const cke_attn_shape *s, void *ws, int nth) {
    attn_fwd(out, lse, q, k, v, KV_F16, s, ws, nth);
}

/* The same attention on a Q8_0 KV cache: each k/v element dequantized (d * q) before use. */
void cke_attn_fwd_q8_0_ref(float *out, float *lse, const float *q, const void *k, const void *v,
                           const cke_attn_shape *s, void *ws, int nth) {
    attn_fwd(out, lse, q, k, v, KV_Q8_0, s, ws, nth);
}

/* The KV cache's write: f32 -> f16, round to nearest even (the spec of every ISA's variant). */
void cke_f32_to_f16_ref(uint16_t *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = qb_f2h(src[i]);
}

/* Backward, FlashAttention-2 style: p_tj = exp(s_tj - lse_t) recomputed from q, k and lse;
 *   D_t = dout_t . out_t,  ds_tj = p_tj (dout_t . v_j - D_t) * (1 - tanh^2 when softcapped)
 *   dq_t += scale sum_j ds_tj k_j,  dk_j += scale sum_t ds_tj q_t,  dv_j += sum_t p_tj dout_t
 * Parallel over kv heads: a kv head's dk/dv rows, and dq of the query heads that read it,
 * are all written by one thread in a fixed order, so the result is the same for any nth.
 * ws is unused. */
void cke_attn_bwd_ref(float *dq /* [T, n_head, hd] += */, float *dk /* [Tk, n_kv_head, hd] += */,
                      float *dv /* [Tk, n_kv_head, hd] += */, const float *dout /* [T, n_head, hd] */,
                      const float *q /* [T, n_head, hd] */, const float *k /* [Tk, n_kv_head, hd] */,
                      const float *v /* [Tk, n_kv_head, hd] */, const float *out /* [T, n_head, hd] */,
                      const float *lse /* [n_head, T] */, const cke_attn_shape *s, void *ws, int nth) {
    (void)ws;
    const int64_t T = s->T, H = s->n_head, KV = s->n_kv_head, hd = s->head_dim;
    const int64_t rep = H / KV;
    if (nth < 1) nth = 1;
#pragma omp parallel for schedule(static) num_threads(nth) if (nth > 1)
    for (int64_t g = 0; g < KV; g++) {
        for (int64_t h = g * rep; h < (g + 1) * rep; h++) {
            for (int64_t t = 0; t < T; t++) {
                int64_t lo, hi;
                vis(s, t, &lo, &hi);
                const float *qr = q + (t * H + h) * hd, *dor = dout + (t * H + h) * hd; /* [hd] */
                const float *orow = out + (t * H + h) * hd;                              /* [hd] */
                float *dqr = dq + (t * H + h) * hd;                                       /* [hd] */
                float D = 0;
                for (int64_t i = 0; i < hd; i++) D += dor[i] * orow[i];
                float l = lse[h * T + t];
                for (int64_t j = lo; j <= hi; j++) {
                    const float *kr = k + (j * KV + g) * hd, *vr = v + (j * KV + g) * hd;
                    float *dkr = dk + (j * KV + g) * hd, *dvr = dv + (j * KV + g) * hd;
                    float sl = logit(s, qr, kr);
                    float p = expf(sl - l);
                    float dp = 0;
                    for (int64_t i = 0; i < hd; i++) dp += dor[i] * vr[i];
                    float ds = p * (dp - D);
                    if (s->softcap != 0.0f) {
                        float th = sl / s->softcap;
                        ds *= 1.0f - th * th;
                    }
                    ds *= s->scale;
                    for (int64_t i = 0; i < hd; i++) {
                        dqr[i] += ds * kr[i];
                        dkr[i] += ds * qr[i];
                        dvr[i] += p * dor[i];
                    }
                }
            }
        }
    }
}
