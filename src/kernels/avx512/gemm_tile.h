/* The 14 x 32 register tile's edges, shared by the AVX-512 microkernels (fp32 FMA in gemm.c,
 * vdpbf16ps in gemm_bf16.c): accumulators zeroed and the C rows prefetched before the k loop, and
 * after it C = alpha * acc + beta * C, rounded as one FMA over beta * C (beta == 0: C not read),
 * stored masked to mr x nr. mr is a literal at every call site: the row loops unroll and the
 * accumulators stay in registers. */
#ifndef CKE_AVX512_GEMM_TILE_H
#define CKE_AVX512_GEMM_TILE_H
#include <immintrin.h>
#include <stdint.h>

enum { G512_MR = 14, G512_NR = 32 };

static inline __attribute__((always_inline)) void g512_tile_begin(const int mr, const float *C, int64_t ldc,
                                                                   __m512 c0[G512_MR], __m512 c1[G512_MR]) {
#pragma GCC unroll 14
    for (int i = 0; i < G512_MR; i++) { c0[i] = _mm512_setzero_ps(); c1[i] = _mm512_setzero_ps(); }
#pragma GCC unroll 14
    for (int i = 0; i < G512_MR; i++)
        if (i < mr) _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
}

static inline __attribute__((always_inline)) void g512_tile_store(const int mr, float *C, int64_t ldc,
                                                                   const __m512 c0[G512_MR], const __m512 c1[G512_MR],
                                                                   int nr, float alpha, float beta) {
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
    for (int i = 0; i < G512_MR; i++) {
        if (i < mr) {
            float *cr = C + i * ldc;
            __m512 x0, x1;
            if (beta == 0.0f) { /* overwrite: C is not read */
                x0 = _mm512_mul_ps(va, c0[i]);
                x1 = _mm512_mul_ps(va, c1[i]);
            } else {
                x0 = _mm512_fmadd_ps(va, c0[i], _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m0, cr)));
                x1 = _mm512_fmadd_ps(va, c1[i], _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16)));
            }
            _mm512_mask_storeu_ps(cr, m0, x0);
            _mm512_mask_storeu_ps(cr + 16, m1, x1);
        }
    }
}
#endif
