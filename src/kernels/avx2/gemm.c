/* AVX2 + FMA GEMM pieces for the driver in src/kernels/gemm.c (blocking and threading are there).
 * Microkernel 6 x 16: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 registers;
 * per k step 12 FMAs against 2 loads + 6 broadcasts (two FMA pipes stay busy). */
#include "../gemm_pack.h"
#include "../kdecl.h"

#include <string.h>

#include <immintrin.h>

enum { MR = 6, NR = 16 };

static void pack_a(float *dst, const float *A, int64_t lda, cke_trans ta, int64_t mc, int64_t kc) {
    gemm_pack_panels(dst, MR, A, lda, ta == CKE_NOTRANS, mc, kc);
}
static void pack_b(float *dst, const float *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    gemm_pack_panels(dst, NR, B, ldb, tb == CKE_TRANS, nc, kc);
}

/* lane mask for the first n (0..8) lanes */
static inline __m256i lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) void ukr_rows(const int mr, float *C, int64_t ldc,
                                                           const float *a, const float *b,
                                                           int64_t kc, int nr, float alpha,
                                                           float beta) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) { c0[i] = _mm256_setzero_ps(); c1[i] = _mm256_setzero_ps(); }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
        if (i < mr) _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            if (i < mr) {
                __m256 ai = _mm256_broadcast_ss(a + i);
                c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
                c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
            }
        }
        a += MR;
        b += NR;
    }
    __m256i m0 = lanes(nr >= 8 ? 8 : nr), m1 = lanes(nr >= 16 ? 8 : nr > 8 ? nr - 8 : 0);
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        if (i < mr) {
            float *cr = C + i * ldc;
            /* a whole tile loads and stores plainly, an edge tile under masks (slow on AMD) */
            const int whole = nr == NR;
            __m256 x0 = _mm256_mul_ps(va, c0[i]), x1 = _mm256_mul_ps(va, c1[i]);
            if (beta != 0.0f) { /* beta == 0 overwrites: C is not read */
                __m256 p0 = whole ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, m0);
                __m256 p1 = whole ? _mm256_loadu_ps(cr + 8) : _mm256_maskload_ps(cr + 8, m1);
                x0 = _mm256_fmadd_ps(va, c0[i], _mm256_mul_ps(vb, p0));
                x1 = _mm256_fmadd_ps(va, c1[i], _mm256_mul_ps(vb, p1));
            }
            if (whole) {
                _mm256_storeu_ps(cr, x0);
                _mm256_storeu_ps(cr + 8, x1);
            } else {
                _mm256_maskstore_ps(cr, m0, x0);
                _mm256_maskstore_ps(cr + 8, m1, x1);
            }
        }
    }
}

static void ukr(float *C /* [mr, ldc] */, int64_t ldc, const float *a /* [kc][MR] */,
                const float *b /* [kc][NR] */, int64_t kc, int mr, int nr, float alpha, float beta) {
    switch (mr) {
#define UK(r) case r: ukr_rows(r, C, ldc, a, b, kc, nr, alpha, beta); break;
        UK(6) UK(5) UK(4) UK(3) UK(2) UK(1)
#undef UK
    default: break;
    }
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Small-M dot products (see avx512/gemm.c): MM * NW accumulators + NW + 1 <= 16 registers. */
static inline __attribute__((always_inline)) void dot_tile(const int MM, const int NW, float *C,
                                                           int64_t ldc, const float *X,
                                                           int64_t ldx, const float *W,
                                                           int64_t ldw, int64_t n, int64_t K,
                                                           float alpha, float beta) {
    __m256 acc[6][4];
#pragma GCC unroll 6
    for (int m = 0; m < 6; m++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[m][j] = _mm256_setzero_ps();
    const float *w0 = W + n * ldw;
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            if (j < NW) wv[j] = _mm256_loadu_ps(w0 + j * ldw + k);
#pragma GCC unroll 6
        for (int m = 0; m < 6; m++) {
            if (m < MM) {
                __m256 x = _mm256_loadu_ps(X + m * ldx + k);
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++)
                    if (j < NW) acc[m][j] = _mm256_fmadd_ps(x, wv[j], acc[m][j]);
            }
        }
    }
    if (k < K) {
        __m256i mk = lanes((int)(K - k));
        __m256 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            if (j < NW) wv[j] = _mm256_maskload_ps(w0 + j * ldw + k, mk);
#pragma GCC unroll 6
        for (int m = 0; m < 6; m++) {
            if (m < MM) {
                __m256 x = _mm256_maskload_ps(X + m * ldx + k, mk);
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++)
                    if (j < NW) acc[m][j] = _mm256_fmadd_ps(x, wv[j], acc[m][j]);
            }
        }
    }
#pragma GCC unroll 6
    for (int m = 0; m < 6; m++) {
        if (m < MM) {
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                if (j < NW) {
                    float s = alpha * hsum8(acc[m][j]);
                    float *c = C + m * ldc + n + j;
                    *c = beta == 0.0f ? s : s + beta * *c;
                }
            }
        }
    }
}

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
         * Interleaving 4 rows makes 4 short streams per tile that the hardware prefetcher keeps
         * re-learning: bench_kernels (CKE_ISA=avx2, Zen 4), 1 thread, GB/s of W: K=288 14 -> 30,
         * K=768 18 -> 35, K=2048 25 -> 32; longer rows keep the tile (K=5632: no gain). Same
         * accumulator per output and k order either way: bitwise the same results. */
        if (K <= 2048) DOT_RANGE(1, 1);
        else DOT_RANGE(1, 4);
        break;
    case 2: DOT_RANGE(2, 4); break;
    case 3: DOT_RANGE(3, 3); break;
    case 4: DOT_RANGE(4, 2); break;
    case 5: DOT_RANGE(5, 2); break;
    case 6: DOT_RANGE(6, 2); break;
    default: break;
    }
}

static const cke_gemm_isa gemm_avx2 = {
    .MR = MR, .NR = NR, .KC = 256, .MC = MR * 32, .NC = 512, .SMALL_M = 6,
    .pack_a = pack_a, .pack_b = pack_b, .ukr = ukr, .small_t = small_t,
};

CKE_GEMM_ENTRY(cke_gemm_avx2, gemm_avx2)

/* ---- the BF16 GEMM on FMAs (mixed-precision training; AVX2 has no bf16 dot product) ----
 * As avx512/gemm.c's FMA form: the fp32 panels with each element rounded as qb_f2bf_daz rounds
 * (nearest even, denormals to signed zero, NaN quiet) and the two rows of each k pair swapped, so
 * the microkernel's FMAs add a1*b1 and then a0*b0, the sequence of one vdpbf16ps; products of bf16
 * values are exact, so this gives the portable gemm_bf16.c's bits (and the AVX-512 kernels'). */
static inline __m256 bf16_round(__m256 x) {
    const __m256i u = _mm256_castps_si256(x), hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
                                                     _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1))));
    r = _mm256_and_si256(r, hi);
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
    const __m256i den = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256());
    r = _mm256_blendv_epi8(r, _mm256_and_si256(_mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), hi), nan);
    r = _mm256_blendv_epi8(r, _mm256_and_si256(u, _mm256_set1_epi32((int)0x80000000u)), den);
    return _mm256_castsi256_ps(r);
}

/* panels [ceil(n/P)][kc][P] in place: round, and swap the rows of each whole k pair */
static void bf16_panels(float *dst, int P, int64_t n, int64_t kc) {
    for (int64_t j = 0; j < n; j += P) {
        float *d = dst + j * kc;
        for (int64_t k = 0; k < kc; k += 2) {
            for (int c = 0; c < P; c += 8) {
                const __m256i m = lanes(P - c >= 8 ? 8 : P - c);
                __m256 r0 = bf16_round(_mm256_maskload_ps(d + k * P + c, m));
                if (k + 1 < kc) {
                    __m256 r1 = bf16_round(_mm256_maskload_ps(d + (k + 1) * P + c, m));
                    _mm256_maskstore_ps(d + k * P + c, m, r1);
                    _mm256_maskstore_ps(d + (k + 1) * P + c, m, r0);
                } else {
                    _mm256_maskstore_ps(d + k * P + c, m, r0);
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
/* from bf16 storage (gemm_bf16_b16's B): the values widened (exact; rounding them again changes
 * nothing), then the pairs swapped as above */
static void pack_b16_bf16(float *dst, const uint16_t *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    for (int64_t j = 0; j < nc; j += NR) {
        const int w = (int)(nc - j < NR ? nc - j : NR);
        float *d = dst + j * kc;
        for (int64_t k = 0; k < kc; k++) {
            float *dk = d + k * NR;
            if (tb == CKE_NOTRANS && w == NR) { /* op(B)[k][j + c] = B[k * ldb + j + c] */
                const uint16_t *s = B + k * ldb + j;
                for (int c = 0; c < NR; c += 8) {
                    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(s + c)));
                    _mm256_storeu_ps(dk + c, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
                }
                continue;
            }
            for (int c = 0; c < NR; c++) { /* the ragged last panel, and op(B) stored transposed */
                uint32_t u = c < w ? (uint32_t)(tb ? B[(j + c) * ldb + k] : B[k * ldb + j + c]) << 16 : 0;
                memcpy(&dk[c], &u, 4);
            }
        }
    }
    bf16_panels(dst, NR, nc, kc);
}

/* KC as every BF16 kernel's: the K blocks, and so the pairs within them, are the same */
static const cke_gemm_isa gemm_bf16_avx2 = {
    .MR = MR, .NR = NR, .KC = 256, .MC = MR * 32, .NC = 512, .SMALL_M = 0,
    .pack_a = pack_a_bf16, .pack_b = pack_b_bf16, .pack_b16 = pack_b16_bf16, .ukr = ukr, .small_t = NULL,
};

CKE_GEMM_ENTRY(cke_gemm_bf16_avx2, gemm_bf16_avx2)
CKE_GEMM_B16_ENTRY(cke_gemm_bf16_b16_avx2, gemm_bf16_avx2)

/* y = bf16(x) as bf16_round (qb_f2bf_daz), 8 at a time: the saved activations of mixed precision */
void cke_round_bf16_avx2(uint16_t *y /* [n] */, const float *x /* [n] */, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_srli_epi32(_mm256_castps_si256(bf16_round(_mm256_loadu_ps(x + i))), 16);
        __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storeu_si128((__m128i *)(void *)(y + i), p);
    }
    if (i < n) {
        float t[8] = {0};
        uint16_t o[8];
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        __m256i v = _mm256_srli_epi32(_mm256_castps_si256(bf16_round(_mm256_loadu_ps(t))), 16);
        _mm_storeu_si128((__m128i *)(void *)o, _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
        memcpy(y + i, o, (size_t)(n - i) * sizeof(uint16_t));
    }
}
