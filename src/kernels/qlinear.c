/* Quantized linear layer: Y[M,N] = X[M,K] . W[N,K]^T (+ b) with W in a ggml block format.
 *
 * Decode (M < QL_GEMM_MIN_M): bandwidth bound. X's rows are quantized once to the weight type's
 * activation format (Q8_0 / Q8_1 / Q8_K; F16 and BF16 take f32 rows as they are), then each
 * thread streams a contiguous range of weight rows once, dotting each with the M rows.
 * Prefill (M >= QL_GEMM_MIN_M): compute bound. Panels of QL_NB weight rows are dequantized to
 * f32 (exact by the format's definition) and multiplied with the table's f32 GEMM, so prefill
 * runs at f32 GEMM speed while reading the weights in their compact form; X stays f32 (no
 * activation rounding: prefill is slightly more accurate than decode).
 * Exception: the _0 formats with Q8_0 activations (Q8_0, Q4_0, Q5_0) where the table has
 * vec_dot_4 (AVX-512 VNNI): X is quantized to Q8_0 once and each weight row is dotted with 4
 * activation rows per call (integer block dots, the weight block decoded once per 4 rows); this
 * is faster than the f32 GEMM, at decode's accuracy (activation rounding).
 * (Reached at AVX-512 only with CKE_REPACK=0: the compiler stores these formats repacked.)
 * Repacked formats (ref/quant_r.c): decode and prefill alike quantize X's rows once. M = 1: each
 * thread streams its weight rows once (gemv). M >= 2 (decode_batch, prefill): each thread takes
 * its weight rows in blocks that stay in L2 and sweeps each block with tiles of activation rows
 * (in L1), in the format's register tiles (gemm_tile: every AVX-512 repacked format, 2
 * weight rows x 8 activation rows) or dot_rows' 1 x 4 (the other formats, and AVX2). A tile
 * gives every element exactly the float operations of gemv / dot_rows, so a row's result does not
 * depend on M (decode == decode_batch == prefill, bit for bit).
 * Exception: q4_Kr, q6_Kr, q4_0r, q8_0r (K a multiple of 256) from CKE_QPANEL_MIN_M rows on
 * AVX-512 VNNI: each
 * thread packs its weight rows 32 at a time into column panels (one int32 lane per output
 * column, quant_r_simd.h) and sweeps them with tiles of 4 activation rows: 1.7-2.7x the row
 * tiles' rate at M 512, a sum order of its own (same bits for every M >= CKE_QPANEL_MIN_M and thread
 * count; within float reordering of decode's).
 * Deterministic for a given nth: every output element is one dot or one GEMM element. */
#include "kdecl.h"

#include "kthreads.h"
#include <stdint.h>

#include "quant_blocks.h"

#define QL_GEMM_MIN_M 8
#define QL_NB 256 /* weight rows per dequantized panel: 256 x K floats (2-6 MB), shared by all threads */
#define QL_WBLK (256 * 1024) /* bytes of repacked weight rows per block of the tiled path (in L2) */

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

size_t cke_qtype_row_size(int qtype, int64_t K) {
    const cke_qtype_ops *q = qtype > 0 && qtype < CKE_QTYPE_COUNT ? cke_ktable_ref.qops[qtype] : NULL;
    if (!q || !q->vec_dot || K % q->blck) return 0;
    return (size_t)(K / q->blck) * (size_t)q->type_size;
}

/* bytes of one activation row of K elements in the type's vec_dot format */
static size_t act_row_size(const cke_qtype_ops *q, int64_t K) {
    if (q->vec_dot_type == 0) return (size_t)K * sizeof(float);
    const cke_qtype_ops *a = cke_ktable_ref.qops[q->vec_dot_type];
    return (size_t)(K / a->blck) * (size_t)a->type_size;
}

/* The column panels (M >= CKE_QPANEL_MIN_M, K a multiple of 256): one per thread. Sized from
 * the format alone, whatever this machine's table has, so that a plan made here fits any ISA's kernels. */
static size_t ql_panel_ws(const cke_qtype_ops *q, int64_t M, int64_t K, int nth) {
    if (M < CKE_QPANEL_MIN_M || !q->repack_of || K % QK_K) return 0;
    return (size_t)(nth < 1 ? 1 : nth) * align64((size_t)(K / QK_K) * CKE_QPANEL_SB_BYTES);
}

size_t cke_qlinear_ws_size(int qtype, int64_t M, int64_t K, int64_t N, int nth) {
    if (qtype == 0) return cke_gemm_ws_size(M, N, K, nth); /* f32 layer of a mixed-format weight */
    const cke_qtype_ops *q = qtype > 0 && qtype < CKE_QTYPE_COUNT ? cke_ktable_ref.qops[qtype] : NULL;
    if (!q || !q->vec_dot || K % q->blck) return 0;
    if (q->dot_rows) return align64((size_t)M * act_row_size(q, K)) + 64 + ql_panel_ws(q, M, K, nth);
    if (M < QL_GEMM_MIN_M) return align64((size_t)M * act_row_size(q, K)) + 64;
    int64_t nb = N < QL_NB ? N : QL_NB;
    size_t sz = align64((size_t)nb * (size_t)K * sizeof(float)) + align64(cke_gemm_ws_size(M, nb, K, nth)) + 64;
    if (q->vec_dot_type == QT_Q8_0) { /* the tiled path, where the table has it (vec_dot_4) */
        size_t t = align64((size_t)M * (size_t)K) + align64((size_t)M * (size_t)(K / 32) * sizeof(float)) +
                   align64((size_t)(K / 32) * 34) + 64;
        if (t > sz) sz = t;
    }
    return sz;
}

/* Repacked formats, M >= 2: Y[m, n] (row stride ldy) for nn weight rows W. Blocks of weight rows
 * that stay in L2 (QL_WBLK bytes) are swept by tiles of the quantized activation rows (a tile's
 * rows stay in L1), in the format's register tiles (gemm_tile) or dot_rows' 1 x 4 */
int cke_qlinear_panels(const cke_ktable *kt, int qtype, int64_t M, int64_t K) {
    const cke_qtype_ops *q = qtype > 0 && qtype < CKE_QTYPE_COUNT ? kt->qops[qtype] : NULL;
    return q && q->panel_gemm && ql_panel_ws(q, M, K, 1) > 0;
}

/* Column panels, M >= CKE_QPANEL_MIN_M: the thread's weight rows [n0, n1) 32 at a time packed
 * into a column panel P, which tiles of 4 activation rows sweep in chunks of super-blocks that
 * keep the panel's chunk in L1 */
#define QL_PANEL_L1 (32 * 1024)
static void ql_panels(const cke_qtype_ops *q, float *Y, int64_t ldy, const char *W, size_t rs, int64_t n0, int64_t n1,
                      void *P, const char *A, size_t as, int64_t M, int64_t K) {
    const int64_t nsb = K / QK_K, kc = QL_PANEL_L1 / CKE_QPANEL_SB_BYTES > 0 ? QL_PANEL_L1 / CKE_QPANEL_SB_BYTES : 1;
    for (int64_t n = n0; n < n1; n += 32) {
        const int nw = n1 - n < 32 ? (int)(n1 - n) : 32;
        q->panel_pack(P, W + (size_t)n * rs, rs, nw, K);
        for (int64_t i0 = 0; i0 < nsb; i0 += kc) {
            const int64_t i1 = nsb - i0 < kc ? nsb : i0 + kc;
            for (int64_t m = 0; m < M; m += 4)
                q->panel_gemm(Y + m * ldy + n, ldy, nw, P, A + (size_t)m * as, as, M - m < 4 ? (int)(M - m) : 4, K, i0, i1);
        }
    }
}

static void ql_tiles(const cke_qtype_ops *q, float *Y, int64_t ldy, const char *W, size_t rs, int64_t nn,
                     const char *A, size_t as, int64_t M, int64_t K) {
    const int tnw = q->gemm_tile ? q->tile_nw : 1, tna = q->gemm_tile ? q->tile_na : 4;
    int64_t nblk = (int64_t)(QL_WBLK / rs) / tnw * tnw;
    if (nblk < tnw) nblk = tnw;
    for (int64_t n0 = 0; n0 < nn; n0 += nblk) {
        const int64_t n1 = nn - n0 < nblk ? nn : n0 + nblk;
        for (int64_t m = 0; m < M; m += tna) {
            const int na = M - m < tna ? (int)(M - m) : tna;
            const char *a = A + (size_t)m * as;
            for (int64_t n = n0; n < n1; n += tnw) {
                float *y = Y + m * ldy + n;
                if (q->gemm_tile)
                    q->gemm_tile(y, ldy, W + (size_t)n * rs, rs, n1 - n < tnw ? (int)(n1 - n) : tnw, a, as, na, K);
                else
                    q->dot_rows(y, ldy, W + (size_t)n * rs, a, as, na, K);
            }
        }
    }
}

int cke_qlinear_fwd(const cke_ktable *kt, float *Y /* [M,N] */, const float *X /* [M,K] */,
                    const void *W /* [N, K/blck blocks] */, int qtype, const float *b /* [N] or NULL */,
                    int64_t M, int64_t K, int64_t N, void *ws, int nth) {
    if (qtype == 0) { /* an f32 layer of a weight whose other layers are quantized */
        cke_linear_fwd(kt, Y, X, (const float *)W, b, M, K, N, ws, nth);
        return 0;
    }
    const cke_qtype_ops *q = qtype > 0 && qtype < CKE_QTYPE_COUNT ? kt->qops[qtype] : NULL;
    if (!q || !q->vec_dot || K % q->blck) return -1;
    if (nth < 1) nth = 1;
    const size_t rs = (size_t)(K / q->blck) * (size_t)q->type_size; /* weight row bytes */
    const char *Wb = W;
    char *base = (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    if (q->dot_rows) {
        const cke_qtype_ops *aq = kt->qops[q->vec_dot_type];
        const size_t as = act_row_size(q, K);
        if (M == 1) aq->quantize_row(base, X, K);
        /* column panels: threads split whole panels of 32 rows (else single rows) */
        const int panel = cke_qlinear_panels(kt, qtype, M, K);
        char *pbase = base + align64((size_t)M * as);
        const size_t pstride = ql_panel_ws(q, M, K, 1);
        const int64_t unit = panel ? 32 : 1, nu = (N + unit - 1) / unit;
        if (nth > nu) nth = (int)nu;
#pragma omp parallel num_threads(nth) if (nth > 1)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            const int64_t n0 = nu * t / nt * unit, n1 = nu * (t + 1) / nt * unit < N ? nu * (t + 1) / nt * unit : N;
            if (M > 1) { /* the rows' quantization split over the threads (prefill: ~4% of the layer) */
                for (int64_t m = M * t / nt; m < M * (t + 1) / nt; m++) aq->quantize_row(base + (size_t)m * as, X + m * K, K);
#pragma omp barrier
            }
            if (M == 1 && q->gemv) /* decode: the thread's rows in one call */
                q->gemv(Y + n0, Wb + (size_t)n0 * rs, rs, n1 - n0, base, K);
            else if (panel)
                ql_panels(q, Y, N, Wb, rs, n0, n1, pbase + (size_t)t * pstride, base, as, M, K);
            else
                ql_tiles(q, Y + n0, N, Wb + (size_t)n0 * rs, rs, n1 - n0, base, as, M, K);
            if (b)
                for (int64_t m = 0; m < M; m++)
                    for (int64_t n = n0; n < n1; n++) Y[m * N + n] += b[n];
        }
        return 0;
    }
    if (M < QL_GEMM_MIN_M) {
        const size_t as = act_row_size(q, K);
        const void *A = X;
        if (q->vec_dot_type != 0) {
            const cke_qtype_ops *aq = kt->qops[q->vec_dot_type];
            for (int64_t m = 0; m < M; m++) aq->quantize_row(base + (size_t)m * as, X + m * K, K);
            A = base;
        }
        const char *Ab = A;
        if (nth > N) nth = (int)N;
#pragma omp parallel num_threads(nth) if (nth > 1)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int64_t n0 = N * t / nt, n1 = N * (t + 1) / nt;
            if (M == 1 && q->gemv) { /* a thread's rows in one call (the format's own row order) */
                q->gemv(Y + n0, Wb + (size_t)n0 * rs, rs, n1 - n0, Ab, K);
                if (b)
                    for (int64_t n = n0; n < n1; n++) Y[n] += b[n];
                n1 = n0; /* done */
            }
            for (int64_t n = n0; n < n1; n++)
                for (int64_t m = 0; m < M; m++) {
                    float s;
                    q->vec_dot(&s, Wb + (size_t)n * rs, Ab + (size_t)m * as, K);
                    Y[m * N + n] = b ? s + b[n] : s;
                }
        }
        return 0;
    }
    if (q->vec_dot_4 && q->vec_dot_type == QT_Q8_0) {
        /* prefill, integer tiles: X quantized once to Q8_0 (as decode), split into u8 codes
         * (q + 128) and f32 scales; each weight row is dotted with 4 activation rows at a time */
        const int64_t nbk = K / 32;
        uint8_t *Aq = (uint8_t *)base;                                  /* [M, K] */
        float *Ad = (float *)(base + align64((size_t)M * (size_t)K));    /* [M, K/32] */
        blk_q8_0 *tmp = (blk_q8_0 *)((char *)Ad + align64((size_t)M * (size_t)nbk * sizeof(float)));
        const cke_qtype_ops *aq = kt->qops[QT_Q8_0];
        for (int64_t m = 0; m < M; m++) {
            aq->quantize_row(tmp, X + m * K, K);
            for (int64_t i = 0; i < nbk; i++) {
                Ad[m * nbk + i] = qb_h2f(tmp[i].d);
                for (int j = 0; j < 32; j++) Aq[m * K + 32 * i + j] = (uint8_t)(tmp[i].qs[j] + 128);
            }
        }
        if (nth > N) nth = (int)N;
#pragma omp parallel num_threads(nth) if (nth > 1)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            int64_t n0 = N * t / nt, n1 = N * (t + 1) / nt;
            for (int64_t n = n0; n < n1; n++) {
                const char *wr = Wb + (size_t)n * rs;
                for (int64_t m = 0; m < M; m += 4) {
                    int nr = M - m < 4 ? (int)(M - m) : 4;
                    q->vec_dot_4(Y + m * N + n, N, wr, Aq + m * K, Ad + m * nbk, nr, K);
                    if (b)
                        for (int r = 0; r < nr; r++) Y[(m + r) * N + n] += b[n];
                }
            }
        }
        return 0;
    }
    /* prefill: dequantized panels of weight rows through the f32 GEMM */
    int64_t nbmax = N < QL_NB ? N : QL_NB;
    float *P = (float *)base; /* [nb, K] */
    void *gws = base + align64((size_t)nbmax * (size_t)K * sizeof(float));
    for (int64_t n0 = 0; n0 < N; n0 += QL_NB) {
        int64_t nb = N - n0 < QL_NB ? N - n0 : QL_NB;
#pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
        for (int64_t r = 0; r < nb; r++) q->dequantize_row(P + r * K, Wb + (size_t)(n0 + r) * rs, K);
        kt->gemm(Y + n0, X, P, M, nb, K, K, K, N, CKE_NOTRANS, CKE_TRANS, 1.0f, 0.0f, gws, nth);
    }
    if (b)
        for (int64_t m = 0; m < M; m++) {
            float *y = Y + m * N; /* [N] */
            if (kt->axpy) kt->axpy(y, 1.0f, b, N);
            else for (int64_t j = 0; j < N; j++) y[j] += b[j];
        }
    return 0;
}
