/* BF16 GEMM on the blocked driver, portable C (no -m flags): the tables without a BF16 dot
 * instruction (avx2, neon, and avx512 on CPUs without AVX512_BF16) run it. Each k pair is
 * accumulated as vdpbf16ps does, odd element first: acc += a1 * b1; acc += a0 * b0. A product of
 * two bf16 values is exact in fp32, so each step rounds once, like the instruction's, and this
 * kernel gives the AVX-512 one's bits, except where a product or a partial sum falls below
 * FLT_MIN (the instruction flushes those to zero). The tile's store, alpha * acc + beta * C, is
 * one fmaf over beta * C, as the AVX-512 tiles' FMA. */
#include "gemm_bf16.h"
#include "kdecl.h"

#include <math.h>

enum { MR = 4, NR = 16 };

/* panels of P rows of op(X) (src rows along k when rows_k, else columns), n rows, kc deep */
static void panels(float *dst, int P, const float *src, int64_t ld, int rows_k, int64_t n, int64_t kc) {
    for (int64_t i = 0; i < n; i += P) {
        int w = (int)(n - i < P ? n - i : P);
        uint32_t *d = (uint32_t *)(dst + i * kc);
        if (rows_k) gbf_pack_rows(d, P, src + i * ld, ld, 0, w, kc, 0);
        else gbf_pack_cols(d, P, src + i, ld, w, kc, 0);
    }
}
static void pack_a(float *dst, const float *A, int64_t lda, cke_trans ta, int64_t mc, int64_t kc) {
    panels(dst, MR, A, lda, ta == CKE_NOTRANS, mc, kc);
}
static void pack_b(float *dst, const float *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    panels(dst, NR, B, ldb, tb == CKE_TRANS, nc, kc);
}

static void pack_b16(float *dst, const uint16_t *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    gbf16_panels(dst, NR, B, ldb, tb == CKE_TRANS, nc, kc);
}

static void ukr(float *C /* [mr, ldc] */, int64_t ldc, const float *a_ /* [kp][MR] pairs */,
                const float *b_ /* [kp][NR] pairs */, int64_t kc, int mr, int nr, float alpha, float beta) {
    const uint32_t *a = (const uint32_t *)a_, *b = (const uint32_t *)b_;
    float acc[MR][NR] = {{0}};
    for (int64_t q = 0; q < (kc + 1) / 2; q++, a += MR, b += NR) {
        float b0[NR], b1[NR];
        for (int j = 0; j < NR; j++) b0[j] = qb_u2f(b[j] << 16), b1[j] = qb_u2f(b[j] & 0xffff0000u);
        for (int i = 0; i < MR; i++) {
            const float a0 = qb_u2f(a[i] << 16), a1 = qb_u2f(a[i] & 0xffff0000u);
            for (int j = 0; j < NR; j++) {
                acc[i][j] += a1 * b1[j];
                acc[i][j] += a0 * b0[j];
            }
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *c = C + i * ldc + j;
            *c = beta == 0.0f ? alpha * acc[i][j] : fmaf(alpha, acc[i][j], beta * *c); /* as the AVX-512 tile's store */
        }
}

/* KC as the AVX-512 kernel's: the K blocking decides the summation order, and so the bits */
static const cke_gemm_isa gemm_bf16_generic = {
    .MR = MR, .NR = NR, .KC = 256, .MC = MR * 32, .NC = 512, .SMALL_M = 0,
    .pack_a = pack_a, .pack_b = pack_b, .pack_b16 = pack_b16, .ukr = ukr, .small_t = NULL,
};

CKE_GEMM_ENTRY(cke_gemm_bf16_generic, gemm_bf16_generic)
CKE_GEMM_B16_ENTRY(cke_gemm_bf16_b16_generic, gemm_bf16_generic)
