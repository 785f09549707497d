/* SIMD attention forward/backward, written once over the vector layer of one ISA.
 * Included by avx2/attn.c, avx512/attn.c and neon/attn.c after their attn_vec.h (VL, vf, vld,
 * vexp, ISA_FN, tile sizes, the f16 / Q8_0 conversions and 8x8 transposes of the K pack ...),
 * so each instance compiles with its own folder's flags.
 *
 * Structure (see attn_plan.h for the blocking):
 *   scores   S[M, BK]  = Q[M, hd] . Kt[hd, BK]      (ka: K block packed transposed and pre-scaled,
 *                                                    vectors run along keys, no horizontal sums)
 *   output   acc[M,hd] += P[M, BK] . V[BK, hd]      (kb: vectors run along hd)
 * Forward: online softmax over key blocks, never more than M x BK scores live.
 * Backward (FlashAttention-2 recompute, two passes so that nothing is shared between threads):
 *   pass 1, items (kv head, key block): owns its dk/dv rows; loops over the query rows that see
 *           the block (all query heads of the group), recomputes P and dS, dv += P^T dO,
 *           dk += dS^T Q.
 *   pass 2, items (kv head, query block): owns its dq rows; loops over its key blocks,
 *           dq += dS K, with the dS tiles pass 1 kept (plan.ds_keep: up to ATT_DS_MAX bytes,
 *           no sliding window), else recomputing P and dS (7 matmuls instead of 5).
 * No atomics and no per-thread dq partials: every output element is summed by one thread in a
 * fixed order, independent of nth: results are bitwise identical for any thread count. */
#include "attn_plan.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- S[r, cols] = sum_d A[r][d] * Bt[d, cols]: an mr x nv tile of vectors at (r0, v0) ---- */
AI void ka_tile(float *S /* [M, BK] */, const float *const *A /* [M] rows [hd] */,
                const float *Bt /* [hd, BK] */, int64_t r0, int64_t v0, const int mr, const int nv,
                int64_t hd) {
    vf acc[KA_MR][KA_NV];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) acc[i][v] = vzero();
    const float *a[KA_MR];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) a[i] = A[r0 + i];
    const float *bp = Bt + v0 * VL;
    for (int64_t d = 0; d < hd; d++, bp += ATT_BK) {
        vf b[KA_NV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) b[v] = vld(bp + v * VL);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            vf x = vset1(a[i][d]);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++) acc[i][v] = vfma(x, b[v], acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) vst(S + (r0 + i) * ATT_BK + (v0 + v) * VL, acc[i][v]);
}

/* S[M, 0:ncols rounded up to VL] = A . Bt */
static void ka(float *S /* [M, BK] */, const float *const *A /* [M] rows [hd] */,
               const float *Bt /* [hd, BK] */, int64_t M, int64_t ncols, int64_t hd) {
    int64_t nv = (ncols + VL - 1) / VL, r = 0;
    for (; r + KA_MR <= M; r += KA_MR) {
        int64_t v = 0;
        for (; v + KA_NV <= nv; v += KA_NV) ka_tile(S, A, Bt, r, v, KA_MR, KA_NV, hd);
        for (; v < nv; v++) ka_tile(S, A, Bt, r, v, KA_MR, 1, hd);
    }
    for (; KA_MR > 4 && r + 4 <= M; r += 4) { /* a 4-row step before single rows (M % KA_MR) */
        int64_t v = 0;
        for (; v + KA_NV <= nv; v += KA_NV) ka_tile(S, A, Bt, r, v, 4, KA_NV, hd);
        for (; v < nv; v++) ka_tile(S, A, Bt, r, v, 4, 1, hd);
    }
    for (; r < M; r++) {
        int64_t v = 0;
        for (; v + KA_NV <= nv; v += KA_NV) ka_tile(S, A, Bt, r, v, 1, KA_NV, hd);
        for (; v < nv; v++) ka_tile(S, A, Bt, r, v, 1, 1, hd);
    }
}

/* ---- C[r][hd cols] += sum_c P[r*prs + c*pcs] * B[c][hd cols]: mr rows x nv vectors at (r0, v0);
 * with nv == 1 the vector is loaded/stored under mask mk (the hd tail) ---- */
AI void kb_tile(float *const *C /* [rows] [hd] */, const float *P, int64_t prs, int64_t pcs,
                const float *const *B /* [nk] rows [hd] */, int64_t r0, int64_t v0, const int mr,
                const int nv, int masked, vmk mk, int64_t nk) {
    vf acc[KB_MR][KB_NV];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[i][v] = masked ? vldm(C[r0 + i] + (v0 + v) * VL, mk) : vld(C[r0 + i] + (v0 + v) * VL);
    const float *pr = P + r0 * prs;
    for (int64_t c = 0; c < nk; c++, pr += pcs) {
        const float *b0 = B[c] + v0 * VL;
        vf b[KB_NV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) b[v] = masked ? vldm(b0 + v * VL, mk) : vld(b0 + v * VL);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            vf x = vset1(pr[i * prs]);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++) acc[i][v] = vfma(x, b[v], acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            if (masked) vstm(C[r0 + i] + (v0 + v) * VL, mk, acc[i][v]);
            else vst(C[r0 + i] + (v0 + v) * VL, acc[i][v]);
        }
}

/* The full vectors of rows [r, r + mr) in tiles as wide as possible: a head_dim of 3 vectors (48
 * f32 on AVX-512) runs as one 3-wide tile, not three 1-wide passes that each reload P (measured,
 * head_dim 48, T 256, 1 thread: backward 1.67 -> 1.42 ms, forward 0.95 -> 0.87 ms) */
AI void kb_row(float *const *C, const float *P, int64_t prs, int64_t pcs, const float *const *B, int64_t r,
               const int mr, int64_t nfull, vmk mt, int64_t nk) {
    int64_t v = 0;
    for (; v + KB_NV <= nfull; v += KB_NV) kb_tile(C, P, prs, pcs, B, r, v, mr, KB_NV, 0, mt, nk);
    switch (nfull - v) {
    case 3: if (KB_NV > 3) kb_tile(C, P, prs, pcs, B, r, v, mr, 3, 0, mt, nk); break;
    case 2: if (KB_NV > 2) kb_tile(C, P, prs, pcs, B, r, v, mr, 2, 0, mt, nk); break;
    case 1: kb_tile(C, P, prs, pcs, B, r, v, mr, 1, 0, mt, nk); break;
    default: break;
    }
}

static void kb(float *const *C /* [rows] [hd] */, const float *P, int64_t prs, int64_t pcs,
               const float *const *B /* [nk] [hd] */, int64_t rows, int64_t nk, int64_t hd) {
    int64_t nfull = hd / VL, tail = hd - nfull * VL;
    vmk mt = vmk_n(tail);
    int64_t r = 0;
    /* KB_MR rows where head_dim fills KB_NV vectors (AVX-512, head_dim 64: forward 34 -> 38% of
     * peak); narrower heads measured faster in 4-row tiles (head_dim 48: 6 rows cost 20%) */
    for (; nfull >= KB_NV && r + KB_MR <= rows; r += KB_MR) {
        kb_row(C, P, prs, pcs, B, r, KB_MR, nfull, mt, nk);
        if (tail) kb_tile(C, P, prs, pcs, B, r, nfull, KB_MR, 1, 1, mt, nk);
    }
    for (; KB_MR > 4 && r + 4 <= rows; r += 4) { /* a 4-row step before single rows */
        kb_row(C, P, prs, pcs, B, r, 4, nfull, mt, nk);
        if (tail) kb_tile(C, P, prs, pcs, B, r, nfull, 4, 1, 1, mt, nk);
    }
    for (; r < rows; r++) {
        kb_row(C, P, prs, pcs, B, r, 1, nfull, mt, nk);
        if (tail) kb_tile(C, P, prs, pcs, B, r, nfull, 1, 1, 1, mt, nk);
    }
}

/* Kt[d, jj] = scale * rows[jj][d] (jj < nk), zero columns up to the next multiple of VL.
 * 8x8 register transposes; scalar edges. The pack is half the work of a decode step. */
static void pack_t(float *Kt /* [hd, BK] */, const float *const *rows /* [nk] [hd] */, int64_t nk,
                   int64_t hd, float scale) {
    int64_t ncp = (nk + VL - 1) / VL * VL, j8 = nk / 8 * 8, d8 = hd / 8 * 8;
    for (int64_t jj = 0; jj < j8; jj += 8) {
        for (int64_t d = 0; d < d8; d += 8) vtr8x8(Kt + d * ATT_BK + jj, ATT_BK, rows + jj, d, scale);
        for (int64_t i = jj; i < jj + 8; i++)
            for (int64_t d = d8; d < hd; d++) Kt[d * ATT_BK + i] = scale * rows[i][d];
    }
    for (int64_t jj = j8; jj < nk; jj++) {
        const float *r = rows[jj];
        for (int64_t d = 0; d < hd; d++) Kt[d * ATT_BK + jj] = scale * r[d];
    }
    for (int64_t d = 0; d < hd; d++)
        for (int64_t jj = nk; jj < ncp; jj++) Kt[d * ATT_BK + jj] = 0;
}

/* pack_t of f16 rows: the widening rides on the transpose's loads, so an f16 cache costs the
 * pack nothing more and halves the bytes it streams. */
static void pack_t_h(float *Kt /* [hd, BK] */, const uint16_t *const *rows /* [nk] [hd] */, int64_t nk,
                     int64_t hd, float scale) {
    int64_t ncp = (nk + VL - 1) / VL * VL, j8 = nk / 8 * 8, d8 = hd / 8 * 8;
    for (int64_t jj = 0; jj < j8; jj += 8) {
        for (int64_t d = 0; d < d8; d += 8) vtr8x8h(Kt + d * ATT_BK + jj, ATT_BK, rows + jj, d, scale);
        for (int64_t i = jj; i < jj + 8; i++)
            for (int64_t d = d8; d < hd; d++) Kt[d * ATT_BK + i] = scale * vh2f(rows[i][d]);
    }
    for (int64_t jj = j8; jj < nk; jj++)
        for (int64_t d = 0; d < hd; d++) Kt[d * ATT_BK + jj] = scale * vh2f(rows[jj][d]);
    for (int64_t d = 0; d < hd; d++)
        for (int64_t jj = nk; jj < ncp; jj++) Kt[d * ATT_BK + jj] = 0;
}

/* V rows of a key block widened into dst [nk][hd] (the thread's Vt scratch, unused by the
 * forward otherwise; L1-resident), so the P.V product reads f32 as for an f32 cache. */
static void widen_rows(float *dst, const uint16_t *const *rows /* [nk] [hd] */, int64_t nk, int64_t hd) {
    int64_t d8 = hd / 8 * 8;
    for (int64_t jj = 0; jj < nk; jj++) {
        float *o = dst + jj * hd;
        int64_t d = 0;
        for (; d < d8; d += 8) vwiden8h(o + d, rows[jj] + d);
        for (; d < hd; d++) o[d] = vh2f(rows[jj][d]);
    }
}

/* Q8_0 rows (blocks of 32: f16 scale d, 32 int8 q) dequantized into dst [nk][hd]: x = d * q,
 * one multiply as the format defines (the _ref's values bit for bit). */
static void dequant_rows_q8(float *dst, const unsigned char *const *rows /* [nk] */, int64_t nk, int64_t hd) {
    for (int64_t jj = 0; jj < nk; jj++) {
        const unsigned char *x = rows[jj];
        float *o = dst + jj * hd;
        for (int64_t b = 0; b < hd / 32; b++, x += 34, o += 32) {
            uint16_t dh;
            memcpy(&dh, x, 2);
            const float d = vh2f(dh);
            for (int i = 0; i < 32; i += 8) vdequant8_q8(o + i, (const int8_t *)(x + 2 + i), d);
        }
    }
}

/* Visible columns [*a, *b) of key block [j0, j0 + nk) for the row at position p. */
static inline void vis_cols(const cke_attn_shape *s, int64_t p, int64_t j0, int64_t nk, int64_t *a,
                            int64_t *b) {
    int64_t lo = s->window > 0 ? p - s->window + 1 - j0 : 0;
    int64_t hi = p + 1 - j0;
    *a = lo > 0 ? lo : 0;
    *b = hi < nk ? hi : nk;
}

/* Per-thread scratch carved from ws (layout of attn_plan.per_thread). */
typedef struct {
    float *Kt, *Vt, *S, *S2, *acc, *mrow, *lrow;
    const float **arow, **brow, **krow, **vrow; /* [M], [M], [BK], [BK] */
    float **crow, **drow, **erow;                 /* [M], [BK], [BK] */
    const uint16_t **hkrow, **hvrow;              /* f16 cache: K, V rows of the block (= drow, erow) */
} attn_scr;

static attn_scr scr_carve(unsigned char *base, const attn_plan *p, int64_t hd) {
    attn_scr c;
    size_t f = sizeof(float), m = (size_t)p->m, o = 0;
    c.Kt = (float *)(base + o); o += attn_al64((size_t)hd * ATT_BK * f);
    c.Vt = (float *)(base + o); o += attn_al64((size_t)hd * ATT_BK * f);
    c.S = (float *)(base + o); o += attn_al64(m * ATT_BK * f);
    c.S2 = (float *)(base + o); o += attn_al64(m * ATT_BK * f);
    c.acc = (float *)(base + o); o += attn_al64(m * (size_t)p->hdp * f);
    c.mrow = (float *)(base + o); o += attn_al64(m * f);
    c.lrow = (float *)(base + o); o += attn_al64(m * f);
    void **pp = (void **)(base + o);
    c.arow = (const float **)pp; pp += m;
    c.brow = (const float **)pp; pp += m;
    c.crow = (float **)pp; pp += m;
    c.krow = (const float **)pp; pp += ATT_BK;
    c.vrow = (const float **)pp; pp += ATT_BK;
    c.drow = (float **)pp; pp += ATT_BK;
    c.erow = (float **)pp;
    /* the forward never uses drow / erow: its f16 row pointers share their room */
    c.hkrow = (const uint16_t **)(void *)c.drow;
    c.hvrow = (const uint16_t **)(void *)c.erow;
    return c;
}

static unsigned char *ws_base(void *ws) {
    return (unsigned char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
}

/* One forward item: rows of query block qb of kv head g against keys of split sp. Writes out/lse
 * directly, or (split case) the partial acc/max/sum into its slot of the shared area. */
static void fwd_item(float *out, float *lse, const float *q, const void *k, const void *v, int h16,
                     const cke_attn_shape *s, const attn_plan *pl, attn_scr *c, float *part,
                     int64_t g, int64_t qb, int64_t sp) {
    const int64_t T = s->T, H = s->n_head, KV = s->n_kv_head, hd = s->head_dim, rep = pl->rep;
    const int64_t off = s->Tk - T, t0 = qb * pl->bq;
    const int64_t nt = (t0 + pl->bq <= T ? pl->bq : T - t0), M = nt * rep;
    float *acc = c->acc, *mrow = c->mrow, *lrow = c->lrow;
    if (pl->nsplit > 1) { /* partial slot: acc [M, hdp], max [M], sum [M] */
        float *slot = part + (g * pl->nsplit + sp) * pl->m * (pl->hdp + 2);
        acc = slot;
        mrow = slot + pl->m * pl->hdp;
        lrow = mrow + pl->m;
    }
    for (int64_t r = 0; r < M; r++) {
        int64_t t = t0 + r / rep, h = g * rep + r % rep;
        c->arow[r] = q + (t * H + h) * hd;
        c->crow[r] = acc + r * pl->hdp;
        mrow[r] = -INFINITY;
        lrow[r] = 0;
    }
    memset(acc, 0, (size_t)(M * pl->hdp) * sizeof(float));
    int64_t pfirst = off + t0, hi = off + t0 + nt; /* keys [lo, hi) */
    int64_t lo = (s->window > 0 && pfirst - s->window + 1 > 0) ? pfirst - s->window + 1 : 0;
    if (pl->nsplit > 1) {
        if (lo < sp * ATT_KSPLIT) lo = sp * ATT_KSPLIT;
        if (hi > (sp + 1) * ATT_KSPLIT) hi = (sp + 1) * ATT_KSPLIT;
    }
    const float cap = s->softcap, rcap = cap != 0.0f ? 1.0f / cap : 0.0f;
    for (int64_t j0 = lo; j0 < hi; j0 += ATT_BK) {
        int64_t nk = hi - j0 < ATT_BK ? hi - j0 : ATT_BK, nv = (nk + VL - 1) / VL;
        if (h16 == 2) { /* Q8_0 cache: K dequantized into Vt and packed from there, then V into Vt */
            const size_t rb = (size_t)(hd / 32) * 34;
            const unsigned char **qr = (const unsigned char **)(void *)c->hkrow;
            for (int64_t jj = 0; jj < nk; jj++) {
                qr[jj] = (const unsigned char *)k + (size_t)((j0 + jj) * KV + g) * rb;
                c->krow[jj] = c->vrow[jj] = c->Vt + jj * hd;
            }
            dequant_rows_q8(c->Vt, qr, nk, hd);
            pack_t(c->Kt, c->krow, nk, hd, s->scale);
            for (int64_t jj = 0; jj < nk; jj++) qr[jj] = (const unsigned char *)v + (size_t)((j0 + jj) * KV + g) * rb;
            dequant_rows_q8(c->Vt, qr, nk, hd);
        } else if (h16) { /* f16 cache: K widened in the pack, V into Vt */
            for (int64_t jj = 0; jj < nk; jj++) {
                c->hkrow[jj] = (const uint16_t *)k + ((j0 + jj) * KV + g) * hd;
                c->hvrow[jj] = (const uint16_t *)v + ((j0 + jj) * KV + g) * hd;
                c->vrow[jj] = c->Vt + jj * hd;
            }
            pack_t_h(c->Kt, c->hkrow, nk, hd, s->scale);
            widen_rows(c->Vt, c->hvrow, nk, hd);
        } else {
            for (int64_t jj = 0; jj < nk; jj++) {
                c->krow[jj] = (const float *)k + ((j0 + jj) * KV + g) * hd;
                c->vrow[jj] = (const float *)v + ((j0 + jj) * KV + g) * hd;
            }
            pack_t(c->Kt, c->krow, nk, hd, s->scale);
        }
        ka(c->S, c->arow, c->Kt, M, nk, hd);
        /* the online softmax in three passes over the rows, so that no row waits on another's
         * horizontal reductions and one vector exp makes every row's correction factor:
         * 1. mask (and cap) the scores, the new running max; 2. corr = exp(old max - new);
         * 3. P = exp(S - max), the running sum, acc rescaled. mnew, corr: the forward's unused S2 */
        float *mnew = c->S2, *corr = c->S2 + pl->m;
        for (int64_t r = 0; r < M; r++) {
            float *sr = c->S + r * ATT_BK;
            int64_t a, b;
            vis_cols(s, off + t0 + r / rep, j0, nk, &a, &b);
            mnew[r] = mrow[r];
            if (b <= a) { /* row sees nothing here: zero probabilities, state unchanged */
                for (int64_t vi = 0; vi < nv; vi++) vst(sr + vi * VL, vzero());
                continue;
            }
            int full = a == 0 && b == nv * VL;
            vf mx = vset1(-INFINITY);
            for (int64_t vi = 0; vi < nv; vi++) {
                vf x = vld(sr + vi * VL);
                if (cap != 0.0f) x = vmul(vset1(cap), vtanh(vmul(x, vset1(rcap))));
                if (!full) x = vsel(vmk_range(vi * VL, a, b), vset1(-INFINITY), x);
                vst(sr + vi * VL, x);
                mx = vmax(mx, x);
            }
            float m1 = vhmax(mx);
            if (m1 > mnew[r]) mnew[r] = m1;
        }
        for (int64_t r = 0; r < M; r += VL) {
            vmk mk = vmk_n(M - r);
            vstm(corr + r, mk, vexp(vsub(vldm(mrow + r, mk), vldm(mnew + r, mk))));
        }
        for (int64_t r = 0; r < M; r++) {
            float *sr = c->S + r * ATT_BK;
            int64_t a, b;
            vis_cols(s, off + t0 + r / rep, j0, nk, &a, &b);
            if (b <= a) continue;
            int full = a == 0 && b == nv * VL;
            const float cr = mrow[r] == -INFINITY ? 0.0f : corr[r]; /* the first visible block */
            vf sum = vzero(), mv = vset1(mnew[r]);
            for (int64_t vi = 0; vi < nv; vi++) {
                vf e = vexp(vsub(vld(sr + vi * VL), mv));
                if (!full) e = vsel(vmk_range(vi * VL, a, b), vzero(), e);
                vst(sr + vi * VL, e);
                sum = vadd(sum, e);
            }
            lrow[r] = lrow[r] * cr + vhsum(sum);
            mrow[r] = mnew[r];
            if (cr != 1.0f) {
                float *ar = c->crow[r];
                vf cv = vset1(cr);
                for (int64_t d = 0; d < pl->hdp; d += VL) vst(ar + d, vmul(vld(ar + d), cv));
            }
        }
        kb(c->crow, c->S, ATT_BK, 1, c->vrow, M, nk, hd);
    }
    if (pl->nsplit > 1) return;
    int64_t nfull = hd / VL * VL;
    vmk mt = vmk_n(hd - nfull);
    for (int64_t r = 0; r < M; r++) {
        int64_t t = t0 + r / rep, h = g * rep + r % rep;
        float *o = out + (t * H + h) * hd;
        const float *ar = c->crow[r];
        vf inv = vset1(1.0f / lrow[r]);
        for (int64_t d = 0; d < nfull; d += VL) vst(o + d, vmul(vld(ar + d), inv));
        if (nfull < hd) vstm(o + nfull, mt, vmul(vld(ar + nfull), inv));
        if (lse) lse[h * T + t] = mrow[r] + logf(lrow[r]);
    }
}

/* Split case: combine the partials of kv head g, row r, in split order. */
static void fwd_merge(float *out, float *lse, const cke_attn_shape *s, const attn_plan *pl,
                      const float *part, int64_t g, int64_t r) {
    const int64_t T = s->T, H = s->n_head, hd = s->head_dim, rep = pl->rep;
    const int64_t slot = pl->m * (pl->hdp + 2);
    const float *base = part + g * pl->nsplit * slot;
    float mx = -INFINITY;
    for (int64_t sp = 0; sp < pl->nsplit; sp++) {
        const float *ms = base + sp * slot + pl->m * pl->hdp;
        if (ms[pl->m + r] > 0 && ms[r] > mx) mx = ms[r];
    }
    int64_t t = r / rep, h = g * rep + r % rep; /* one query block: t0 = 0 */
    float *o = out + (t * H + h) * hd;
    int64_t nfull = hd / VL * VL;
    vmk mt = vmk_n(hd - nfull);
    float L = 0;
    for (int64_t sp = 0; sp < pl->nsplit; sp++) {
        const float *ms = base + sp * slot + pl->m * pl->hdp;
        if (ms[pl->m + r] > 0) L += expf(ms[r] - mx) * ms[pl->m + r];
    }
    for (int64_t d = 0; d < pl->hdp; d += VL) {
        vf a = vzero();
        for (int64_t sp = 0; sp < pl->nsplit; sp++) {
            const float *sl = base + sp * slot, *ms = sl + pl->m * pl->hdp;
            if (!(ms[pl->m + r] > 0)) continue;
            a = vfma(vset1(expf(ms[r] - mx)), vld(sl + r * pl->hdp + d), a);
        }
        vf res = vmul(a, vset1(1.0f / L));
        if (d + VL <= nfull) vst(o + d, res);
        else if (d < hd) vstm(o + d, mt, res);
    }
    if (lse) lse[h * T + t] = mx + logf(L);
}

/* The forward over an f32 (h16 = 0), f16 (1) or Q8_0 (2) K/V. */
static void attn_fwd_run(float *out, float *lse, const float *q, const void *k, const void *v, int h16,
                         const cke_attn_shape *s, void *ws, int nth) {
    if (nth < 1) nth = 1;
    const attn_plan pl = attn_make_plan(s, 0);
    unsigned char *base = ws_base(ws);
    float *part = (float *)base;
    const int64_t KV = s->n_kv_head, nitem = pl.nqb * KV * pl.nsplit;
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        attn_scr c = scr_carve(base + pl.shared + (size_t)omp_get_thread_num() * pl.per_thread, &pl,
                               s->head_dim);
        /* cyclic over (query block, kv head, split): neighbours cost about the same, so the
         * causal growth of work along query blocks is spread evenly */
#pragma omp for schedule(static, 1)
        for (int64_t it = 0; it < nitem; it++) {
            int64_t sp = it % pl.nsplit, g = (it / pl.nsplit) % KV, qb = it / (pl.nsplit * KV);
            fwd_item(out, lse, q, k, v, h16, s, &pl, &c, part, g, qb, sp);
        }
        if (pl.nsplit > 1) {
#pragma omp for schedule(static)
            for (int64_t gr = 0; gr < KV * pl.m; gr++) fwd_merge(out, lse, s, &pl, part, gr / pl.m, gr % pl.m);
        }
    }
}

void ISA_FN(cke_attn_fwd)(float *out /* [T, n_head, hd] */, float *lse /* [n_head, T] or NULL */,
                          const float *q /* [T, n_head, hd] */, const float *k /* [Tk, n_kv_head, hd] */,
                          const float *v /* [Tk, n_kv_head, hd] */, const cke_attn_shape *s, void *ws,
                          int nth) {
    attn_fwd_run(out, lse, q, k, v, 0, s, ws, nth);
}

void ISA_FN(cke_attn_fwd_f16)(float *out /* [T, n_head, hd] */, float *lse /* [n_head, T] or NULL */,
                              const float *q /* [T, n_head, hd] */, const uint16_t *k /* [Tk, n_kv_head, hd] */,
                              const uint16_t *v /* [Tk, n_kv_head, hd] */, const cke_attn_shape *s, void *ws,
                              int nth) {
    attn_fwd_run(out, lse, q, k, v, 1, s, ws, nth);
}

void ISA_FN(cke_attn_fwd_q8_0)(float *out /* [T, n_head, hd] */, float *lse /* [n_head, T] or NULL */,
                               const float *q /* [T, n_head, hd] */, const void *k /* [Tk] Q8_0 rows */,
                               const void *v /* [Tk] Q8_0 rows */, const cke_attn_shape *s, void *ws, int nth) {
    attn_fwd_run(out, lse, q, k, v, 2, s, ws, nth);
}

/* The KV cache write, f32 -> f16 round to nearest even (the same bits as the _ref). */
void ISA_FN(cke_f32_to_f16)(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vnarrow8h(dst + i, src + i);
    for (; i < n; i++) dst[i] = vf2h(src[i]);
}

/* Recomputed probabilities and score gradients of rows [M] against key block [j0, j0+nk):
 * in: S = scale q.k (ka), S2 = dout.v (ka), mrow = lse, lrow = D; out: S = P, S2 = scale * dS
 * (with the softcap derivative). Invisible and padding columns get 0 in both. */
static void bwd_scores(attn_scr *c, const cke_attn_shape *s, int64_t M, int64_t rep, int64_t p0,
                       int64_t j0, int64_t nk) {
    const int64_t nv = (nk + VL - 1) / VL;
    const float cap = s->softcap, rcap = cap != 0.0f ? 1.0f / cap : 0.0f;
    for (int64_t r = 0; r < M; r++) {
        float *sr = c->S + r * ATT_BK, *dr = c->S2 + r * ATT_BK;
        int64_t a, b;
        vis_cols(s, p0 + r / rep, j0, nk, &a, &b);
        if (b <= a) {
            for (int64_t vi = 0; vi < nv; vi++) { vst(sr + vi * VL, vzero()); vst(dr + vi * VL, vzero()); }
            continue;
        }
        int full = a == 0 && b == nv * VL;
        vf l = vset1(c->mrow[r]), D = vset1(c->lrow[r]), sc = vset1(s->scale);
        for (int64_t vi = 0; vi < nv; vi++) {
            vf x = vld(sr + vi * VL), th = vzero();
            if (cap != 0.0f) {
                th = vtanh(vmul(x, vset1(rcap)));
                x = vmul(vset1(cap), th);
            }
            vf p = vexp(vsub(x, l));
            if (!full) p = vsel(vmk_range(vi * VL, a, b), vzero(), p);
            vf ds = vmul(p, vsub(vld(dr + vi * VL), D));
            if (cap != 0.0f) ds = vmul(ds, vsub(vset1(1.0f), vmul(th, th)));
            vst(sr + vi * VL, p);
            vst(dr + vi * VL, vmul(ds, sc));
        }
    }
}

/* Rows of query rows [tb, tb + nt) x the rep heads of g: pointers and per-row lse / D. */
static void bwd_rows(attn_scr *c, const float *q, const float *dout, const float *lse, const float *D,
                     const cke_attn_shape *s, int64_t rep, int64_t g, int64_t tb, int64_t nt) {
    const int64_t T = s->T, H = s->n_head, hd = s->head_dim;
    for (int64_t r = 0; r < nt * rep; r++) {
        int64_t t = tb + r / rep, h = g * rep + r % rep;
        c->arow[r] = q + (t * H + h) * hd;
        c->brow[r] = dout + (t * H + h) * hd;
        c->mrow[r] = lse[h * T + t];
        c->lrow[r] = D[h * T + t];
    }
}

void ISA_FN(cke_attn_bwd)(float *dq /* [T, n_head, hd] += */, float *dk /* [Tk, n_kv_head, hd] += */,
                          float *dv /* [Tk, n_kv_head, hd] += */, const float *dout /* [T, n_head, hd] */,
                          const float *q /* [T, n_head, hd] */, const float *k /* [Tk, n_kv_head, hd] */,
                          const float *v /* [Tk, n_kv_head, hd] */, const float *out /* [T, n_head, hd] */,
                          const float *lse /* [n_head, T] */, const cke_attn_shape *s, void *ws, int nth) {
    if (nth < 1) nth = 1;
    const attn_plan pl = attn_make_plan(s, 1);
    unsigned char *base = ws_base(ws);
    float *D = (float *)base; /* [n_head, T] */
    float *dsk = (float *)(base + pl.ds_off); /* kept dS tiles (pl.ds_keep) */
    const int64_t T = s->T, Tk = s->Tk, H = s->n_head, KV = s->n_kv_head, hd = s->head_dim;
    const int64_t rep = pl.rep, off = Tk - T, nkb = pl.nkb;
    const int64_t nfull = hd / VL * VL;
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        attn_scr c = scr_carve(base + pl.shared + (size_t)omp_get_thread_num() * pl.per_thread, &pl, hd);
        vmk mt = vmk_n(hd - nfull);
#pragma omp for schedule(static)
        for (int64_t ht = 0; ht < H * T; ht++) {
            int64_t h = ht / T, t = ht % T;
            const float *a = dout + (t * H + h) * hd, *b = out + (t * H + h) * hd;
            vf acc = vzero();
            for (int64_t d = 0; d < nfull; d += VL) acc = vfma(vld(a + d), vld(b + d), acc);
            if (nfull < hd) acc = vfma(vldm(a + nfull, mt), vldm(b + nfull, mt), acc);
            D[ht] = vhsum(acc);
        }
        /* pass 1: dk, dv of key block kb of kv head g (items cyclic, late key blocks are cheap) */
#pragma omp for schedule(static, 1)
        for (int64_t it = 0; it < nkb * KV; it++) {
            int64_t g = it % KV, j0 = (it / KV) * ATT_BK, nk = Tk - j0 < ATT_BK ? Tk - j0 : ATT_BK;
            for (int64_t jj = 0; jj < nk; jj++) {
                c.krow[jj] = k + ((j0 + jj) * KV + g) * hd;
                c.vrow[jj] = v + ((j0 + jj) * KV + g) * hd;
                c.drow[jj] = dk + ((j0 + jj) * KV + g) * hd;
            }
            pack_t(c.Kt, c.krow, nk, hd, s->scale);
            pack_t(c.Vt, c.vrow, nk, hd, 1.0f);
            for (int64_t jj = 0; jj < nk; jj++) c.erow[jj] = dv + ((j0 + jj) * KV + g) * hd;
            /* query rows that see some key of the block: p >= j0, p < j0 + nk - 1 + window */
            int64_t tlo = j0 - off > 0 ? j0 - off : 0, thi = T;
            if (s->window > 0 && j0 + nk - 1 + s->window - off < thi) thi = j0 + nk - 1 + s->window - off;
            /* keeping dS: the rows go in pass 2's query blocks (rows before tlo see nothing and
             * add exact zeros) */
            if (pl.ds_keep) tlo = tlo / pl.bq * pl.bq;
            for (int64_t tb = tlo; tb < thi; tb += pl.bq) {
                int64_t nt = thi - tb < pl.bq ? thi - tb : pl.bq, M = nt * rep;
                bwd_rows(&c, q, dout, lse, D, s, rep, g, tb, nt);
                ka(c.S, c.arow, c.Kt, M, nk, hd);
                ka(c.S2, c.brow, c.Vt, M, nk, hd);
                bwd_scores(&c, s, M, rep, off + tb, j0, nk);
                kb(c.erow, c.S, 1, ATT_BK, c.brow, nk, M, hd);  /* dv += P^T dout */
                kb(c.drow, c.S2, 1, ATT_BK, c.arow, nk, M, hd); /* dk += dS^T q */
                if (pl.ds_keep)
                    memcpy(dsk + attn_ds_tile(&pl, g, tb / pl.bq, j0 / ATT_BK), c.S2, (size_t)(M * ATT_BK) * sizeof(float));
            }
        }
        /* pass 2: dq of query block qb, heads of kv head g */
#pragma omp for schedule(static, 1)
        for (int64_t it = 0; it < pl.nqb * KV; it++) {
            int64_t g = it % KV, tb = (it / KV) * pl.bq, nt = T - tb < pl.bq ? T - tb : pl.bq, M = nt * rep;
            bwd_rows(&c, q, dout, lse, D, s, rep, g, tb, nt);
            for (int64_t r = 0; r < M; r++) c.crow[r] = c.acc + r * pl.hdp;
            memset(c.acc, 0, (size_t)(M * pl.hdp) * sizeof(float));
            int64_t pfirst = off + tb, hi = off + tb + nt;
            int64_t lo = (s->window > 0 && pfirst - s->window + 1 > 0) ? pfirst - s->window + 1 : 0;
            for (int64_t j0 = lo; j0 < hi; j0 += ATT_BK) {
                int64_t nk = hi - j0 < ATT_BK ? hi - j0 : ATT_BK;
                for (int64_t jj = 0; jj < nk; jj++) {
                    c.krow[jj] = k + ((j0 + jj) * KV + g) * hd;
                    c.vrow[jj] = v + ((j0 + jj) * KV + g) * hd;
                }
                if (pl.ds_keep) { /* pass 1's dS of these rows and keys: the same values */
                    kb(c.crow, dsk + attn_ds_tile(&pl, g, tb / pl.bq, j0 / ATT_BK), ATT_BK, 1, c.krow, M, nk, hd);
                    continue;
                }
                pack_t(c.Kt, c.krow, nk, hd, s->scale);
                pack_t(c.Vt, c.vrow, nk, hd, 1.0f);
                ka(c.S, c.arow, c.Kt, M, nk, hd);
                ka(c.S2, c.brow, c.Vt, M, nk, hd);
                bwd_scores(&c, s, M, rep, off + tb, j0, nk);
                kb(c.crow, c.S2, ATT_BK, 1, c.krow, M, nk, hd); /* dq += dS k */
            }
            for (int64_t r = 0; r < M; r++) {
                int64_t t = tb + r / rep, h = g * rep + r % rep;
                float *o = dq + (t * H + h) * hd;
                const float *ar = c.acc + r * pl.hdp;
                for (int64_t d = 0; d < nfull; d += VL) vst(o + d, vadd(vld(o + d), vld(ar + d)));
                if (nfull < hd) vstm(o + nfull, mt, vadd(vldm(o + nfull, mt), vld(ar + nfull)));
            }
        }
    }
}
