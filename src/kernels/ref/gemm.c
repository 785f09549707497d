/* GEMM, the specification. C[M,N] = alpha * op(A) . op(B) + beta * C
 *   op(A)[i,k] = ta ? A[k*lda + i] : A[i*lda + k]      (A stored [M, lda] or [K, lda])
 *   op(B)[k,j] = tb ? B[j*ldb + k] : B[k*ldb + j]      (B stored [K, ldb] or [N, ldb])
 * Each dot product is summed in double in k order, then C = alpha * sum + beta * C.
 * beta == 0 means "overwrite": C is not read (it may hold garbage or NaN), as in BLAS.
 * ws and nth are unused: the reference is single-threaded and needs no scratch. */
#include "../kdecl.h"

void cke_gemm_ref(float *C /* [M, ldc] */, const float *A /* op(A) [M, K] */,
                  const float *B /* op(B) [K, N] */, int64_t M, int64_t N, int64_t K, int64_t lda,
                  int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb, float alpha, float beta,
                  void *ws, int nth) {
    (void)ws;
    (void)nth;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                float a = ta ? A[k * lda + i] : A[i * lda + k];
                float b = tb ? B[j * ldb + k] : B[k * ldb + j];
                s += (double)a * (double)b;
            }
            float *c = &C[i * ldc + j];
            *c = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s + (double)beta * *c);
        }
    }
}
