/* NEON GEMM pieces for the driver in src/kernels/gemm.c (blocking and threading are there).
 * Microkernel 8 x 12: 24 q-register accumulators + 3 B vectors + 2 A vectors = 29 of 32;
 * per k step 24 FMAs by lane (fmla v.4s, v.4s, v.s[i]: the A value is never broadcast
 * separately) against 5 loads. Packing: plain loops (the avx2 transposing pack is x86). */
#include "../kdecl.h"
#include "ndecl.h"

#include <arm_neon.h>
#include <string.h>

enum { MR = 8, NR = 12 };

/* dst[ceil(n/P)][kc][P] <- op(X) panels; transposing: X rows contiguous along k */
static void pack_panels(float *dst, int P, const float *X, int64_t ldx, int transposing, int64_t n, int64_t kc) {
    for (int64_t j = 0; j < n; j += P) {
        int w = (int)(n - j < P ? n - j : P);
        float *d = dst + j * kc;
        for (int64_t k = 0; k < kc; k++) {
            float *o = d + k * P;
            if (transposing)
                for (int r = 0; r < w; r++) o[r] = X[(j + r) * ldx + k];
            else
                memcpy(o, X + k * ldx + j, (size_t)w * sizeof(float));
            for (int r = w; r < P; r++) o[r] = 0.0f;
        }
    }
}
static void pack_a(float *dst, const float *A, int64_t lda, cke_trans ta, int64_t mc, int64_t kc) {
    pack_panels(dst, MR, A, lda, ta == CKE_NOTRANS, mc, kc);
}
static void pack_b(float *dst, const float *B, int64_t ldb, cke_trans tb, int64_t kc, int64_t nc) {
    pack_panels(dst, NR, B, ldb, tb == CKE_TRANS, nc, kc);
}

/* one row i of the tile: acc[i][0..3) += b * a[i] (a[i] is lane i&3 of a0 or a1) */
#define ROW(i, av, l)                                                                              \
    c[i][0] = vfmaq_laneq_f32(c[i][0], b0, av, l);                                                 \
    c[i][1] = vfmaq_laneq_f32(c[i][1], b1, av, l);                                                 \
    c[i][2] = vfmaq_laneq_f32(c[i][2], b2, av, l)

/* C = alpha * x + beta * C per element, one formula for full and partial tiles so that an
 * element's value does not depend on where the tile edge falls */
static inline float out1(float x, float c, float alpha, float beta) {
    return beta == 0.0f ? alpha * x : __builtin_fmaf(alpha, x, beta * c);
}

static void ukr(float *C /* [mr, ldc] */, int64_t ldc, const float *a /* [kc][MR] */,
                const float *b /* [kc][NR] */, int64_t kc, int mr, int nr, float alpha, float beta) {
    float32x4_t c[MR][3];
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = c[i][2] = vdupq_n_f32(0.0f);
    for (int64_t k = 0; k < kc; k++, a += MR, b += NR) {
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        ROW(0, a0, 0); ROW(1, a0, 1); ROW(2, a0, 2); ROW(3, a0, 3);
        ROW(4, a1, 0); ROW(5, a1, 1); ROW(6, a1, 2); ROW(7, a1, 3);
    }
    float32x4_t va = vdupq_n_f32(alpha), vb = vdupq_n_f32(beta);
    for (int i = 0; i < mr; i++) {
        float *cr = C + i * ldc;
        if (nr == NR) { /* full row: vectors, the same formula as out1 */
            for (int j = 0; j < 3; j++) {
                float32x4_t x = beta == 0.0f ? vmulq_f32(va, c[i][j])
                                             : vfmaq_f32(vmulq_f32(vb, vld1q_f32(cr + 4 * j)), va, c[i][j]);
                vst1q_f32(cr + 4 * j, x);
            }
        } else {
            float t[NR];
            for (int j = 0; j < 3; j++) vst1q_f32(t + 4 * j, c[i][j]);
            for (int j = 0; j < nr; j++) cr[j] = out1(t[j], cr[j], alpha, beta);
        }
    }
}
#undef ROW

/* Small M (decode): each W row is loaded once per k step and dotted with the M rows of X;
 * 2 accumulators of 4 per row, K tail scalar. */
static void small_t(float *C /* [M, ldc] */, int64_t ldc, const float *X /* [M, ldx] */,
                    int64_t ldx, const float *W /* [N, ldw] */, int64_t ldw, int64_t M, int64_t n0,
                    int64_t n1, int64_t K, float alpha, float beta) {
    enum { SM = 6 };
    for (int64_t n = n0; n < n1; n++) {
        const float *w = W + n * ldw;
        float32x4_t acc[SM][2];
        for (int m = 0; m < SM; m++) acc[m][0] = acc[m][1] = vdupq_n_f32(0.0f);
        int64_t k = 0;
        for (; k + 8 <= K; k += 8) {
            float32x4_t w0 = vld1q_f32(w + k), w1 = vld1q_f32(w + k + 4);
            for (int m = 0; m < M; m++) {
                acc[m][0] = vfmaq_f32(acc[m][0], vld1q_f32(X + m * ldx + k), w0);
                acc[m][1] = vfmaq_f32(acc[m][1], vld1q_f32(X + m * ldx + k + 4), w1);
            }
        }
        for (int m = 0; m < M; m++) {
            float s = vaddvq_f32(vaddq_f32(acc[m][0], acc[m][1]));
            for (int64_t kk = k; kk < K; kk++) s += X[m * ldx + kk] * w[kk];
            float *c = C + m * ldc + n;
            *c = out1(s, *c, alpha, beta);
        }
    }
}

static const cke_gemm_isa gemm_neon = {
    .MR = MR, .NR = NR, .KC = 256, .MC = MR * 16, .NC = NR * 42, .SMALL_M = 6,
    .pack_a = pack_a, .pack_b = pack_b, .ukr = ukr, .small_t = small_t,
};

CKE_GEMM_ENTRY(cke_gemm_neon, gemm_neon)
