/* Packing for the BF16 GEMMs (the blocked driver of gemm.c with bf16 panels): a panel of width
 * P holds ceil(kc/2) rows of P 32-bit pairs, pair (k = 2q, 2q + 1) with element 2q in the low
 * half, the operand layout of vdpbf16ps. Panel p starts at dst + p * P * kc (the driver's float
 * offsets), so half of each panel's space is unused. Scalar code: the generic kernel's packs, and
 * the tails of the AVX-512 ones. Elements are rounded by qb_f2bf_daz. */
#ifndef CKE_GEMM_BF16_H
#define CKE_GEMM_BF16_H
#include "quant_blocks.h"

#include <stdint.h>

static inline uint32_t gbf_pair(float lo, float hi) {
    return (uint32_t)qb_f2bf_daz(lo) | (uint32_t)qb_f2bf_daz(hi) << 16;
}

/* Rows along k (src row r at src + r * lds): dst[q * P + r] = pair(src[r][2q], src[r][2q + 1]),
 * for q in [q0, ceil(kc/2)) and r in [r0, rows); rows [rows, P) are zero. */
static inline void gbf_pack_rows(uint32_t *dst /* [kp][P] */, int P, const float *src, int64_t lds,
                                 int r0, int rows, int64_t kc, int64_t q0) {
    for (int64_t q = q0; q < (kc + 1) / 2; q++) {
        for (int r = r0; r < rows; r++) {
            const float *s = src + r * lds + 2 * q;
            dst[q * P + r] = gbf_pair(s[0], 2 * q + 1 < kc ? s[1] : 0.0f);
        }
        for (int r = rows > r0 ? rows : r0; r < P; r++) dst[q * P + r] = 0;
    }
}

/* Rows along the panel (src row k at src + k * lds): dst[q * P + c] = pair(src[2q][c],
 * src[2q + 1][c]) for c in [c0, cols); columns up to P are zero. */
static inline void gbf_pack_cols(uint32_t *dst /* [kp][P] */, int P, const float *src, int64_t lds,
                                 int cols, int64_t kc, int c0) {
    for (int64_t q = 0; q < (kc + 1) / 2; q++) {
        const float *s0 = src + 2 * q * lds, *s1 = s0 + lds;
        for (int c = c0; c < cols; c++) dst[q * P + c] = gbf_pair(s0[c], 2 * q + 1 < kc ? s1[c] : 0.0f);
        for (int c = cols > c0 ? cols : c0; c < P; c++) dst[q * P + c] = 0;
    }
}
/* The two packs from a source already stored as bf16 (gemm_bf16_b16's B): the same pairs, no rounding */
static inline void gbf16_pack_rows(uint32_t *dst /* [kp][P] */, int P, const uint16_t *src, int64_t lds, int r0,
                                   int rows, int64_t kc, int64_t q0) {
    for (int64_t q = q0; q < (kc + 1) / 2; q++) {
        for (int r = r0; r < rows; r++) {
            const uint16_t *s = src + r * lds + 2 * q;
            dst[q * P + r] = (uint32_t)s[0] | (uint32_t)(2 * q + 1 < kc ? s[1] : 0) << 16;
        }
        for (int r = rows > r0 ? rows : r0; r < P; r++) dst[q * P + r] = 0;
    }
}
static inline void gbf16_pack_cols(uint32_t *dst /* [kp][P] */, int P, const uint16_t *src, int64_t lds, int cols,
                                   int64_t kc, int c0) {
    for (int64_t q = 0; q < (kc + 1) / 2; q++) {
        const uint16_t *s0 = src + 2 * q * lds, *s1 = s0 + lds;
        for (int c = c0; c < cols; c++) dst[q * P + c] = (uint32_t)s0[c] | (uint32_t)(2 * q + 1 < kc ? s1[c] : 0) << 16;
        for (int c = cols > c0 ? cols : c0; c < P; c++) dst[q * P + c] = 0;
    }
}
/* panels of P rows of op(X) from bf16 storage (src rows along k when rows_k, else columns) */
static inline void gbf16_panels(float *dst, int P, const uint16_t *src, int64_t ld, int rows_k, int64_t n, int64_t kc) {
    for (int64_t i = 0; i < n; i += P) {
        int w = (int)(n - i < P ? n - i : P);
        uint32_t *d = (uint32_t *)(dst + i * kc);
        if (rows_k) gbf16_pack_rows(d, P, src + i * ld, ld, 0, w, kc, 0);
        else gbf16_pack_cols(d, P, src + i, ld, w, kc, 0);
    }
}
#endif
