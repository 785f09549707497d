/* BF16 GEMM, the specification (mixed precision: cke train --precision bf16).
 * C[M,N] = alpha * bf16(op(A)) . bf16(op(B)) + beta * C, op() as in cke_gemm_ref.
 * Every operand element is rounded to bf16 as AVX512_BF16's vcvtneps2bf16 does (nearest even,
 * denormals to zero: qb_f2bf_daz); the products of two bf16 values are exact in fp32 and are
 * summed in double in k order. The fast variants (gemm_bf16.c, avx512/gemm_bf16.c) feed the same
 * bf16 values and differ only in their fp32 summation order (pairs of k, blocks of KC).
 * beta == 0: C is not read. ws and nth are unused. */
#include "../kdecl.h"
#include "../quant_blocks.h"

/* both entries: B16 != NULL holds op(B) as bf16 (its values widened exactly), else B is rounded */
static void bf16_ref(float *C /* [M, ldc] */, const float *A /* op(A) [M, K] */, const float *B /* op(B) [K, N] */,
                     const uint16_t *B16 /* as B, or NULL */, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                     int64_t ldc, cke_trans ta, cke_trans tb, float alpha, float beta) {
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                const int64_t bi = tb ? j * ldb + k : k * ldb + j;
                float a = qb_bf2f(qb_f2bf_daz(ta ? A[k * lda + i] : A[i * lda + k]));
                float b = qb_bf2f(B16 ? B16[bi] : qb_f2bf_daz(B[bi]));
                s += (double)a * (double)b;
            }
            float *c = &C[i * ldc + j];
            *c = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s + (double)beta * *c);
        }
    }
}

void cke_gemm_bf16_ref(float *C /* [M, ldc] */, const float *A /* op(A) [M, K] */,
                       const float *B /* op(B) [K, N] */, int64_t M, int64_t N, int64_t K, int64_t lda,
                       int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb, float alpha, float beta,
                       void *ws, int nth) {
    (void)ws;
    (void)nth;
    bf16_ref(C, A, B, NULL, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta);
}

/* gemm_bf16 with op(B) stored as bf16 */
void cke_gemm_bf16_b16_ref(float *C /* [M, ldc] */, const float *A /* op(A) [M, K] */,
                           const uint16_t *B /* op(B) [K, N] */, int64_t M, int64_t N, int64_t K, int64_t lda,
                           int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb, float alpha, float beta,
                           void *ws, int nth) {
    (void)ws;
    (void)nth;
    bf16_ref(C, A, NULL, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta);
}

/* y = bf16(x), the rounding every BF16 GEMM's packing applies (qb_f2bf_daz) */
void cke_round_bf16_ref(uint16_t *y /* [n] */, const float *x /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = qb_f2bf_daz(x[i]);
}
