/* Blocking plan shared by the SIMD attention kernels and cke_attn_ws_size (attn_ws.c), so the
 * workspace carve-up and its size come from one place and are the same for every ISA.
 *
 * Forward: work item = (kv head g, query block of BQ rows, key split). The BQ rows of all `rep`
 * query heads that read kv head g are processed together (M = BQ*rep rows share one packed K^T
 * block and the same causal mask). Keys go in blocks of ATT_BK with an online softmax, so no
 * T x Tk buffer exists. When there is only one query block (decode), keys are also split into
 * chunks of ATT_KSPLIT whose partial (max, sum, acc) go to ws and are merged in split order.
 * The split count depends on the shape only, so results are bitwise identical for any nth. */
#ifndef CKE_ATTN_PLAN_H
#define CKE_ATTN_PLAN_H
#include "cke/kernels.h"

#include <stddef.h>
#include <stdint.h>

#define ATT_BK 64      /* keys per block: 4 zmm / 8 ymm columns of scores */
#define ATT_MROWS 64   /* target rows per block (BQ * rep) */
#define ATT_KSPLIT 512 /* keys per split in the single-query-block (decode) case */
/* The backward keeps pass 1's score gradients for pass 2 when they take at most this many bytes
 * (T 256, 12 heads: 3 MiB; about T 1100 at 12 heads reaches it); past it pass 2 recomputes them */
#define ATT_DS_MAX ((size_t)64 << 20)

typedef struct {
    int64_t rep, bq, m, nqb, nsplit, hdp; /* hdp: head_dim rounded up to 16 */
    int64_t nkb;                            /* key blocks of ATT_BK */
    int ds_keep;                            /* backward: dS tiles kept in shared[ds_off ..] */
    size_t ds_off;
    size_t per_thread;                      /* bytes of private scratch per thread */
    size_t shared;                          /* bytes shared by all threads, placed first */
} attn_plan;

/* The kept dS tile [m, ATT_BK] of kv head g, query block qb, key block kb (plan.ds_keep) */
static inline size_t attn_ds_tile(const attn_plan *p, int64_t g, int64_t qb, int64_t kb) {
    return (size_t)(((g * p->nqb + qb) * p->nkb + kb) * p->m * ATT_BK);
}

static inline size_t attn_al64(size_t b) { return (b + 63) & ~(size_t)63; }

/* Private scratch of one thread: Kt [hd, BK], Vt [hd, BK], S [M, BK], S2 [M, BK],
 * acc [M, hdp], mrow [M], lrow [M], row pointers [3M + 4 BK]. The forward uses a subset. */
static inline attn_plan attn_make_plan(const cke_attn_shape *s, int bwd) {
    attn_plan p;
    p.rep = s->n_head / s->n_kv_head;
    p.bq = p.rep >= ATT_MROWS ? 1 : ATT_MROWS / p.rep;
    if (p.bq > s->T) p.bq = s->T > 0 ? s->T : 1;
    p.m = p.bq * p.rep;
    p.nqb = (s->T + p.bq - 1) / p.bq;
    p.nsplit = (!bwd && p.nqb == 1 && s->Tk > ATT_KSPLIT) ? (s->Tk + ATT_KSPLIT - 1) / ATT_KSPLIT : 1;
    p.hdp = (s->head_dim + 15) & ~(int64_t)15;
    size_t f = sizeof(float), hd = (size_t)s->head_dim, m = (size_t)p.m;
    p.per_thread = 2 * attn_al64(hd * ATT_BK * f) + 2 * attn_al64(m * ATT_BK * f) +
                   attn_al64(m * (size_t)p.hdp * f) + 2 * attn_al64(m * f) +
                   attn_al64((3 * m + 4 * ATT_BK) * sizeof(void *));
    p.nkb = (s->Tk + ATT_BK - 1) / ATT_BK;
    p.ds_keep = 0;
    p.ds_off = 0;
    if (bwd) { /* D [n_head, T] = rowsum(dout * out); then the kept dS tiles (no sliding window:
                * pass 2's key blocks are then pass 1's) */
        p.shared = attn_al64((size_t)s->n_head * (size_t)s->T * f);
        size_t ds = m * ATT_BK * f; /* one tile */
        int big = __builtin_mul_overflow(ds, (size_t)p.nkb, &ds) | __builtin_mul_overflow(ds, (size_t)p.nqb, &ds) |
                  __builtin_mul_overflow(ds, (size_t)s->n_kv_head, &ds);
        if (s->window <= 0 && !big && ds <= ATT_DS_MAX) {
            p.ds_keep = 1;
            p.ds_off = p.shared;
            p.shared += attn_al64(ds);
        }
    } else if (p.nsplit > 1) /* partials per (kv head, split): acc [M, hdp], max [M], sum [M] */
        p.shared = attn_al64((size_t)s->n_kv_head * (size_t)p.nsplit * m * ((size_t)p.hdp + 2) * f);
    else
        p.shared = 0;
    return p;
}

#endif
