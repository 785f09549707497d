/* AVX-512 GEMM pieces for the driver in src/kernels/gemm.c (blocking and threading are there).
 * Microkernel 14 x 32: 28 zmm accumulators + 2 B vectors, A broadcast from memory; per k step
 * 28 FMAs against 2 vector loads + 14 broadcasts, so Zen 4's one-512-bit-FMA-per-cycle is the
 * limit, not the load ports. 14 rows also keep the KC x 14 A sliver (14 KiB at KC = 256) in L1. */
#include "../gemm_pack.h"
#include "../kdecl.h"
#include "../quant_blocks.h"
#include "gemm_tile.h"

#include <immintrin.h>

enum { MR = G512_MR, NR = G512_NR };

static void pack_a(float *dst, const float *A, int64_t lda, cke_trans ta, int64_t mc, int64_t kc) {
    gemm_pack_panels(dst, MR, A, lda, ta == CKE_NOTRANS, mc, kc);
}
static void pack_b(float *dst, const float *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    gemm_pack_panels(dst, NR, B, ldb, tb == CKE_TRANS, nc, kc);
}

/* mr is a literal at every call site: the row loops unroll and acc stays in registers. */
static inline __attribute__((always_inline)) void ukr_rows(const int mr, float *C, int64_t ldc,
                                                           const float *a, const float *b,
                                                           int64_t kc, int nr, float alpha,
                                                           float beta) {
    __m512 c0[MR], c1[MR];
    g512_tile_begin(mr, C, ldc, c0, c1);
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            if (i < mr) {
                __m512 ai = _mm512_set1_ps(a[i]);
                c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
                c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
            }
        }
        a += MR;
        b += NR;
    }
    g512_tile_store(mr, C, ldc, c0, c1, nr, alpha, beta);
}

static void ukr(float *C /* [mr, ldc] */, int64_t ldc, const float *a /* [kc][MR] */,
                const float *b /* [kc][NR] */, int64_t kc, int mr, int nr, float alpha, float beta) {
    switch (mr) {
#define UK(r) case r: ukr_rows(r, C, ldc, a, b, kc, nr, alpha, beta); break;
        UK(14) UK(13) UK(12) UK(11) UK(10) UK(9) UK(8) UK(7) UK(6) UK(5) UK(4) UK(3) UK(2) UK(1)
#undef UK
    default: break;
    }
}

#ifndef G512_PF
#define G512_PF 4096
#endif
/* Small-M dot products: MM rows of X against NW rows of W at a time, vectorized along K with a
 * masked tail; MM * NW accumulators + NW W vectors fit the 32 registers. Every output is one
 * zmm accumulator reduced the same way, whatever MM, NW or thread, so it is deterministic. */
static inline __attribute__((always_inline)) void dot_tile(const int MM, const int NW, float *C,
                                                           int64_t ldc, const float *X,
                                                           int64_t ldx, const float *W,
                                                           int64_t ldw, int64_t n, int64_t K,
                                                           float alpha, float beta) {
    __m512 acc[8][8];
#pragma GCC unroll 8
    for (int m = 0; m < 8; m++)
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) acc[m][j] = _mm512_setzero_ps();
    const float *w0 = W + n * ldw;
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 wv[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            if (j < NW) {
                if (MM == 1) _mm_prefetch((const char *)(w0 + j * ldw + k) + G512_PF, _MM_HINT_T0);
                wv[j] = _mm512_loadu_ps(w0 + j * ldw + k);
            }
#pragma GCC unroll 8
        for (int m = 0; m < 8; m++) {
            if (m < MM) {
                __m512 x = _mm512_loadu_ps(X + m * ldx + k);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++)
                    if (j < NW) acc[m][j] = _mm512_fmadd_ps(x, wv[j], acc[m][j]);
            }
        }
    }
    if (k < K) {
        __mmask16 mk = (__mmask16)((1u << (K - k)) - 1);
        __m512 wv[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            if (j < NW) wv[j] = _mm512_maskz_loadu_ps(mk, w0 + j * ldw + k);
#pragma GCC unroll 8
        for (int m = 0; m < 8; m++) {
            if (m < MM) {
                __m512 x = _mm512_maskz_loadu_ps(mk, X + m * ldx + k);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++)
                    if (j < NW) acc[m][j] = _mm512_fmadd_ps(x, wv[j], acc[m][j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < 8; m++) {
        if (m < MM) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                if (j < NW) {
                    float s = alpha * _mm512_reduce_add_ps(acc[m][j]);
                    float *c = C + m * ldc + n + j;
                    *c = beta == 0.0f ? s : s + beta * *c;
                }
            }
        }
    }
}

/* Columns [n0, n1) for MM rows: full NW groups, then single rows. */
#define DOT_RANGE(MM, NW)                                                                        \
    do {                                                                                         \
        int64_t n = n0;                                                                          \
        for (; n + (NW) <= n1; n += (NW)) dot_tile(MM, NW, C, ldc, X, ldx, W, ldw, n, K, alpha, beta); \
        for (; n < n1; n++) dot_tile(MM, 1, C, ldc, X, ldx, W, ldw, n, K, alpha, beta);           \
    } while (0)

static void small_t(float *C /* [M, ldc] */, int64_t ldc, const float *X /* [M, ldx] */,
                    int64_t ldx, const float *W /* [N, ldw] */, int64_t ldw, int64_t M, int64_t n0,
                    int64_t n1, int64_t K, float alpha, float beta) {
    switch (M) {
    case 1:
        /* GEMV (decode): rows up to 8 KiB long are walked one after another, in memory order.
         * Interleaving 8 rows makes 8 short streams per tile that the hardware prefetcher keeps
         * re-learning: bench_kernels, 1 thread, GB/s of W: K=288 13 -> 32, K=768 23 -> 35,
         * K=2048 26 -> 33; longer rows keep the tile (K=5632: 30 vs 23 walked singly). Same
         * accumulator per output and k order either way: bitwise the same results. */
        if (K <= 2048) DOT_RANGE(1, 1);
        else DOT_RANGE(1, 8);
        break;
    case 2: DOT_RANGE(2, 8); break;
    case 3: DOT_RANGE(3, 6); break;
    case 4: DOT_RANGE(4, 5); break;
    case 5: DOT_RANGE(5, 4); break;
    case 6: DOT_RANGE(6, 4); break;
    case 7: DOT_RANGE(7, 3); break;
    case 8: DOT_RANGE(8, 3); break;
    default: break;
    }
}

static const cke_gemm_isa gemm_avx512 = {
    .MR = MR, .NR = NR, .KC = 256, .MC = MR * 16, .NC = 1024, .SMALL_M = 8, /* NC: see the driver's block_nc */
    .pack_a = pack_a, .pack_b = pack_b, .ukr = ukr, .small_t = small_t,
};

/* ---- the BF16 GEMM on FMAs (cke_gemm_bf16_avx512 picks it where the FMA rate is the higher) ----
 * The fp32 panels, each element rounded to bf16 as qb_f2bf_daz does (nearest even, denormals to
 * signed zero, NaN quiet) and each k pair stored odd row first: the FMA microkernel then adds
 * a1*b1, then a0*b0 into each accumulator, the sequence of one vdpbf16ps, and the products of
 * bf16 values are exact, so this gives the vdpbf16ps kernel's bits (as gemm_bf16.c does). */
static inline __m512 bf16_round(__m512 x) {
    const __m512i u = _mm512_castps_si512(x), hi = _mm512_set1_epi32((int)0xffff0000u);
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                     _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
    r = _mm512_and_si512(r, hi);
    const __m512i a = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(a, _mm512_set1_epi32(0x7f800000));
    __mmask16 den = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_and_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x00400000)), hi);
    r = _mm512_mask_and_epi32(r, den, u, _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(r);
}

/* panels [ceil(n/P)][kc][P] in place: round, and swap the rows of each whole k pair */
static void bf16_panels(float *dst, int P, int64_t n, int64_t kc) {
    for (int64_t j = 0; j < n; j += P) {
        float *d = dst + j * kc;
        for (int64_t k = 0; k < kc; k += 2) {
            for (int c = 0; c < P; c += 16) {
                __mmask16 m = (__mmask16)(P - c >= 16 ? 0xffff : (1u << (P - c)) - 1);
                __m512 r0 = bf16_round(_mm512_maskz_loadu_ps(m, d + k * P + c));
                if (k + 1 < kc) {
                    __m512 r1 = bf16_round(_mm512_maskz_loadu_ps(m, d + (k + 1) * P + c));
                    _mm512_mask_storeu_ps(d + k * P + c, m, r1);
                    _mm512_mask_storeu_ps(d + (k + 1) * P + c, m, r0);
                } else {
                    _mm512_mask_storeu_ps(d + k * P + c, m, r0);
                }
            }
        }
    }
}
static void pack_a_bf16(float *dst, const float *A, int64_t lda, cke_trans ta, int64_t mc, int64_t kc) {
    pack_a(dst, A, lda, ta, mc, kc);
    bf16_panels(dst, MR, mc, kc);
}
static void pack_b_bf16(float *dst, const float *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    pack_b(dst, B, ldb, tb, kc, nc);
    bf16_panels(dst, NR, nc, kc);
}

/* from bf16 storage: the values widened (exact; rounding them again changes nothing), then
 * each k pair swapped as above */
static void pack_b16_bf16(float *dst, const uint16_t *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    for (int64_t j = 0; j < nc; j += NR) {
        const int w = (int)(nc - j < NR ? nc - j : NR);
        float *d = dst + j * kc;
        for (int64_t k = 0; k < kc; k++) {
            if (tb == CKE_TRANS) { /* op(B)[k][j + c] = B[(j + c) * ldb + k]: not a training shape, scalar */
                for (int c = 0; c < NR; c++)
                    d[k * NR + c] = c < w ? qb_bf2f(B[(j + c) * ldb + k]) : 0.0f;
                continue;
            }
            for (int c = 0; c < NR; c += 16) {
                int n = w - c < 16 ? (w - c > 0 ? w - c : 0) : 16;
                __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1), B + k * ldb + j + c));
                _mm512_storeu_si512((void *)(d + k * NR + c), _mm512_slli_epi32(v, 16));
            }
        }
    }
    bf16_panels(dst, NR, nc, kc);
}

/* KC as the other BF16 kernels': the K blocks, and so the pairs within them, are the same */
static const cke_gemm_isa gemm_bf16_fma = {
    .MR = MR, .NR = NR, .KC = 256, .MC = MR * 16, .NC = 512, .SMALL_M = 0,
    .pack_a = pack_a_bf16, .pack_b = pack_b_bf16, .pack_b16 = pack_b16_bf16, .ukr = ukr, .small_t = NULL,
};

CKE_GEMM_ENTRY(cke_gemm_bf16_fma_avx512, gemm_bf16_fma)
CKE_GEMM_B16_ENTRY(cke_gemm_bf16_b16_fma_avx512, gemm_bf16_fma)

/* y = bf16(x) as bf16_round (qb_f2bf_daz), 16 at a time: the saved activations of mixed precision */
void cke_round_bf16_avx512(uint16_t *y /* [n] */, const float *x /* [n] */, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const int64_t r = n - i < 16 ? n - i : 16;
        const __mmask16 m = (__mmask16)((1u << r) - 1);
        __m512i v = _mm512_srli_epi32(_mm512_castps_si512(bf16_round(_mm512_maskz_loadu_ps(m, x + i))), 16);
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtepi32_epi16(v));
    }
}

CKE_GEMM_ENTRY(cke_gemm_avx512, gemm_avx512)
