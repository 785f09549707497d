/* AVX512_BF16 GEMM for the driver in src/kernels/gemm.c: the mixed-precision training's linear
 * layers (cke train --precision bf16). Operands are rounded to bf16 while they are packed
 * (vcvtneps2bf16: nearest even, denormals to zero), into 32-bit k pairs (gemm_bf16.h); the
 * microkernel is the fp32 one's 14 x 32 tile with one vdpbf16ps (two k steps, fp32 accumulate)
 * in place of each FMA. Built with -mavx512bf16 (Makefile). Where the FMAs are faster (or the
 * CPU lacks the instruction) cke_gemm_bf16_avx512 runs avx512/gemm.c's FMA form instead, which
 * gives the same bits (so does the portable gemm_bf16.c). */
#include "../gemm_bf16.h"
#include "../gemm_pack.h"
#include "../kdecl.h"
#include "gemm_tile.h"

#include <immintrin.h>

enum { MR = G512_MR, NR = G512_NR };

/* 16 fp32 of row k and 16 of row k + 1 -> 16 pairs */
static inline __m512i pairs16(__m512 lo, __m512 hi) {
    __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
    __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
    return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

/* rows of op(X) along the panel (X stored [k][ldx]): 16 columns per step, masked at the edge */
static void pack_cols(uint32_t *dst /* [kp][P] */, int P, const float *src, int64_t lds, int cols, int64_t kc) {
    for (int64_t q = 0; q < (kc + 1) / 2; q++) {
        const float *s0 = src + 2 * q * lds, *s1 = s0 + lds;
        const int odd = 2 * q + 1 >= kc; /* the last pair of an odd kc: its high half is zero */
        for (int c = 0; c < P; c += 16) {
            int n = cols - c < 16 ? (cols - c > 0 ? cols - c : 0) : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512 lo = _mm512_maskz_loadu_ps(m, s0 + c), hi = odd ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, s1 + c);
            __mmask16 ms = (__mmask16)(P - c >= 16 ? 0xffff : (1u << (P - c)) - 1); /* P = 14: the panel's edge */
            _mm512_mask_storeu_epi32((void *)(dst + q * P + c), ms, pairs16(lo, hi));
        }
    }
}

/* rows of op(X) along k (X stored [rows][ldx]): 8 rows x 16 k at a time, converted to 8 pairs
 * per row and transposed 8 x 8 as 32-bit lanes; ragged rows and the k tail go scalar */
static void pack_rows(uint32_t *dst /* [kp][P] */, int P, const float *src, int64_t lds, int rows, int64_t kc) {
    const int64_t kv = kc / 16 * 16; /* k covered by whole vectors: pairs [0, kv / 2) */
    int r = 0;
    for (; r + 8 <= rows; r += 8) {
        for (int64_t k = 0; k < kv; k += 16) {
            __m256 t[8];
            for (int i = 0; i < 8; i++) {
                const float *s = src + (r + i) * lds + k;
                t[i] = (__m256)_mm256_cvtne2ps_pbh(_mm256_loadu_ps(s + 8), _mm256_loadu_ps(s));
            }
            gemm_tr8x8(t);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps((float *)(dst + (k / 2 + i) * P + r), t[i]);
        }
    }
    gbf_pack_rows(dst, P, src, lds, r, rows, kv, 0); /* ragged rows of [0, kv), zero rows */
    if (kv < kc) gbf_pack_rows(dst, P, src, lds, 0, rows, kc, kv / 2); /* the k tail */
}

/* panels of P rows of op(X) (src rows along k when rows_k, else columns), n rows, kc deep */
static void panels(float *dst, int P, const float *src, int64_t ld, int rows_k, int64_t n, int64_t kc) {
    for (int64_t i = 0; i < n; i += P) {
        int w = (int)(n - i < P ? n - i : P);
        uint32_t *d = (uint32_t *)(dst + i * kc);
        if (rows_k) pack_rows(d, P, src + i * ld, ld, w, kc);
        else pack_cols(d, P, src + i, ld, w, kc);
    }
}
static void pack_a(float *dst, const float *A, int64_t lda, cke_trans ta, int64_t mc, int64_t kc) {
    panels(dst, MR, A, lda, ta == CKE_NOTRANS, mc, kc);
}
static void pack_b(float *dst, const float *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    panels(dst, NR, B, ldb, tb == CKE_TRANS, nc, kc);
}

/* from bf16 storage (gemm_bf16_b16's B): rows along the panel 16 columns at a time, two k rows
 * interleaved into pairs; rows along k (not a training shape) scalar */
static void pack_b16(float *dst, const uint16_t *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    if (tb == CKE_TRANS) { gbf16_panels(dst, NR, B, ldb, 1, nc, kc); return; }
    for (int64_t i = 0; i < nc; i += NR) {
        const int w = (int)(nc - i < NR ? nc - i : NR);
        uint32_t *d = (uint32_t *)(dst + i * kc);
        for (int64_t q = 0; q < (kc + 1) / 2; q++) {
            const uint16_t *s0 = B + 2 * q * ldb + i, *s1 = s0 + ldb;
            const int odd = 2 * q + 1 >= kc;
            for (int c = 0; c < NR; c += 16) {
                int n = w - c < 16 ? (w - c > 0 ? w - c : 0) : 16;
                __mmask16 m = (__mmask16)((1u << n) - 1);
                __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s0 + c));
                __m512i hi = odd ? _mm512_setzero_si512() : _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s1 + c));
                _mm512_storeu_si512((void *)(d + q * NR + c), _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
            }
        }
    }
}

/* mr is a literal at every call site: the row loops unroll and acc stays in registers. */
static inline __attribute__((always_inline)) void ukr_rows(const int mr, float *C, int64_t ldc,
                                                           const uint32_t *a, const uint32_t *b,
                                                           int64_t kp, int nr, float alpha, float beta) {
    __m512 c0[MR], c1[MR];
    g512_tile_begin(mr, C, ldc, c0, c1);
    for (int64_t q = 0; q < kp; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)b), b1 = (__m512bh)_mm512_loadu_si512((const void *)(b + 16));
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            if (i < mr) {
                __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
                c0[i] = _mm512_dpbf16_ps(c0[i], ai, b0);
                c1[i] = _mm512_dpbf16_ps(c1[i], ai, b1);
            }
        }
        a += MR;
        b += NR;
    }
    g512_tile_store(mr, C, ldc, c0, c1, nr, alpha, beta);
}

static void ukr(float *C /* [mr, ldc] */, int64_t ldc, const float *a /* [kp][MR] pairs */,
                const float *b /* [kp][NR] pairs */, int64_t kc, int mr, int nr, float alpha, float beta) {
    const uint32_t *pa = (const uint32_t *)a, *pb = (const uint32_t *)b;
    const int64_t kp = (kc + 1) / 2;
    switch (mr) {
#define UK(r) case r: ukr_rows(r, C, ldc, pa, pb, kp, nr, alpha, beta); break;
        UK(14) UK(13) UK(12) UK(11) UK(10) UK(9) UK(8) UK(7) UK(6) UK(5) UK(4) UK(3) UK(2) UK(1)
#undef UK
    default: break;
    }
}

/* KC as the portable kernel's: the K blocking fixes the summation order */
static const cke_gemm_isa gemm_bf16_avx512 = {
    .MR = MR, .NR = NR, .KC = 256, .MC = MR * 16, .NC = 512, .SMALL_M = 0,
    .pack_a = pack_a, .pack_b = pack_b, .pack_b16 = pack_b16, .ukr = ukr, .small_t = NULL,
};

CKE_GEMM_ENTRY(cke_gemm_bf16_dp_avx512, gemm_bf16_avx512)
CKE_GEMM_B16_ENTRY(cke_gemm_bf16_b16_dp_avx512, gemm_bf16_avx512)

/* Which instruction: all three kernels give the same bits, so this is speed only. Measured
 * (docs/PERFORMANCE.md, Training): Intel's Sapphire/Emerald Rapids run
 * one vdpbf16ps per two cycles, against two FMAs a cycle, so rounded operands on FMAs are twice
 * as fast there (145 vs 77 GFLOPS a core); AMD's Zen 4 runs vdpbf16ps at twice its FMA rate. */
int cke_gemm_bf16_uses_dp(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_is("amd");
}

void cke_gemm_bf16_avx512(float *C /* [M, ldc] */, const float *A, const float *B, int64_t M, int64_t N,
                          int64_t K, int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb,
                          float alpha, float beta, void *ws, int nth) {
    if (cke_gemm_bf16_uses_dp()) cke_gemm_bf16_dp_avx512(C, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, nth);
    else cke_gemm_bf16_fma_avx512(C, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, nth);
}

void cke_gemm_bf16_b16_avx512(float *C /* [M, ldc] */, const float *A, const uint16_t *B, int64_t M, int64_t N,
                              int64_t K, int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb,
                              float alpha, float beta, void *ws, int nth) {
    if (cke_gemm_bf16_uses_dp()) cke_gemm_bf16_b16_dp_avx512(C, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, nth);
    else cke_gemm_bf16_b16_fma_avx512(C, A, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, nth);
}
