/* Composite ops on the dispatch table's GEMM: linear layer forward/backward, batched GEMM.
 * Workspace: cke_linear_fwd needs cke_gemm_ws_size(M, N, K, nth); cke_linear_bwd runs two
 * GEMMs, dX [M,K] (inner N) and dW [N,K] (inner M), so it needs
 * max(cke_gemm_ws_size(M, K, N, nth), cke_gemm_ws_size(N, K, M, nth)). */
#include "kdecl.h"

#include "kthreads.h"

void cke_linear_fwd(const cke_ktable *kt, float *Y /* [M,N] */, const float *X /* [M,K] */,
                    const float *W /* [N,K] */, const float *b /* [N] or NULL */, int64_t M,
                    int64_t K, int64_t N, void *ws, int nth) {
    kt->gemm(Y, X, W, M, N, K, K, K, N, CKE_NOTRANS, CKE_TRANS, 1.0f, 0.0f, ws, nth);
    if (!b) return;
    for (int64_t i = 0; i < M; i++) {
        float *y = Y + i * N; /* [N] */
        if (kt->axpy) kt->axpy(y, 1.0f, b, N);
        else for (int64_t j = 0; j < N; j++) y[j] += b[j];
    }
}

void cke_linear_bwd(const cke_ktable *kt, float *dX /* [M,K] += */, float *dW /* [N,K] += */,
                    float *db /* [N] += */, const float *dY /* [M,N] */, const float *X /* [M,K] */,
                    const float *W /* [N,K] */, int64_t M, int64_t K, int64_t N, void *ws,
                    int nth) {
    if (dX) /* dX[M,K] += dY[M,N] . W[N,K] */
        kt->gemm(dX, dY, W, M, K, N, N, K, K, CKE_NOTRANS, CKE_NOTRANS, 1.0f, 1.0f, ws, nth);
    if (dW) /* dW[N,K] += dY^T[N,M] . X[M,K] */
        kt->gemm(dW, dY, X, N, K, M, N, K, K, CKE_TRANS, CKE_NOTRANS, 1.0f, 1.0f, ws, nth);
    if (db) /* rows in order: deterministic */
        for (int64_t i = 0; i < M; i++) {
            const float *dy = dY + i * N; /* [N] */
            if (kt->axpy) kt->axpy(db, 1.0f, dy, N);
            else for (int64_t j = 0; j < N; j++) db[j] += dy[j];
        }
}

void cke_linear_bwd_b16(const cke_ktable *kt, float *dX /* [M,K] += */, float *dW /* [N,K] += */,
                        float *db /* [N] += */, const float *dY /* [M,N] */, const uint16_t *X /* [M,K] bf16 */,
                        const float *W /* [N,K] */, int64_t M, int64_t K, int64_t N, void *ws, int nth) {
    cke_linear_bwd(kt, dX, NULL, db, dY, NULL, W, M, K, N, ws, nth);
    if (dW) /* dW[N,K] += dY^T[N,M] . X[M,K] */
        kt->gemm_bf16_b16(dW, dY, X, N, K, M, N, K, K, CKE_TRANS, CKE_NOTRANS, 1.0f, 1.0f, ws, nth);
}

static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

size_t cke_gemm_batched_ws_size(int64_t M, int64_t N, int64_t K, int nth) {
    if (nth < 1) nth = 1;
    size_t per = align64(cke_gemm_ws_size(M, N, K, 1)) * (size_t)nth + 64; /* batch-parallel */
    size_t whole = cke_gemm_ws_size(M, N, K, nth);                        /* gemm-parallel */
    return per > whole ? per : whole;
}

/* batch >= nth: each thread runs whole GEMMs on a contiguous range of batches (one-thread GEMMs,
 * own ws slice); fewer batches than threads: batches in turn, each GEMM on all threads. The
 * table's GEMMs give the same bits for any nth, so both give the same result. */
void cke_gemm_batched(const cke_ktable *kt, float *C /* [batch] x (C + b*sc) [M, ldc] */,
                      const float *A /* [batch] x (A + b*sa) op(A) [M, K] */,
                      const float *B /* [batch] x (B + b*sb) op(B) [K, N] */, int64_t batch,
                      int64_t sc, int64_t sa, int64_t sb, int64_t M, int64_t N, int64_t K,
                      int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb,
                      float alpha, float beta, void *ws, int nth) {
    if (batch <= 0) return;
    if (nth < 1) nth = 1;
    if (nth == 1 || batch < nth) {
        for (int64_t b = 0; b < batch; b++)
            kt->gemm(C + b * sc, A + b * sa, B + b * sb, M, N, K, lda, ldb, ldc, ta, tb, alpha,
                     beta, ws, nth);
        return;
    }
    char *base = (char *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    size_t per = align64(cke_gemm_ws_size(M, N, K, 1));
#pragma omp parallel num_threads(nth)
    {
        int t = omp_get_thread_num();
        int64_t b0 = batch * t / nth, b1 = batch * (t + 1) / nth;
        for (int64_t b = b0; b < b1; b++)
            kt->gemm(C + b * sc, A + b * sa, B + b * sb, M, N, K, lda, ldb, ldc, ta, tb, alpha,
                     beta, base + (size_t)t * per, 1);
    }
}
