/* Tests of the quant family (ggml block formats), each run against every ISA's table:
 *   quant_blocks    bit-exact block bytes for inputs whose encoding follows from the format's
 *                   definition by hand (derivations next to each case)
 *   quant_roundtrip dequantize(quantize(x)) error per format on Gaussian and heavy-tailed rows
 *   quant_dot       each table's vec_dot against the _ref's (same integer sums: only the float
 *                   scaling order differs) and against a double dot of the dequantized operands
 *   quant_linear    cke_qlinear_fwd, decode (quantized activations) and prefill (dequantized
 *                   panels + GEMM) paths, against double products of the dequantized weights */
#include "harness.h"
#include "kernels/quant_blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ggml ids of the weight formats under test */
/* GGUF formats, then cke's repacked ones (q8_0r, q4_0r, q4_Kr, q6_Kr, q5_Kr, q4_1r, q5_0r, q5_1r: ref/quant_r.c) */
static const int WTYPES[] = {1, 30, 8, 2, 3, 6, 7, 12, 13, 14, 40, 41, 42, 45, 47, 48, 49, 50};
#define NWT ((int)(sizeof WTYPES / sizeof WTYPES[0]))

static size_t rowbytes(const cke_qtype_ops *q, int64_t k) { return (size_t)(k / q->blck) * (size_t)q->type_size; }

static float f16_bits_to_f32(uint16_t h) { /* test-local, for expected scale values */
    const cke_qtype_ops *q = cke_ktable_for(CKE_ISA_REF)->qops[1];
    float f;
    q->dequantize_row(&f, &h, 1);
    return f;
}

static int check_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            printf("  FAIL %s: byte %zu is %02x, expected %02x\n", what, i, got[i], want[i]);
            return 1;
        }
    return 0;
}

static int quant_blocks(const cke_ktable *kt, const cke_ktable *ref) {
    (void)ref;
    int fails = 0;
    float x[256];
    uint8_t got[400], want[400];
    /* Q8_0: amax 127 -> d = 127/127 = 1 (f16 0x3C00), id = 1, q = x */
    for (int j = 0; j < 32; j++) x[j] = j == 0 ? -127.f : (float)(j - 16);
    kt->qops[8]->quantize_row(got, x, 32);
    want[0] = 0x00; want[1] = 0x3C;
    for (int j = 0; j < 32; j++) want[2 + j] = (uint8_t)(int8_t)x[j];
    fails += check_bytes("q8_0 block", got, want, 34);
    /* Q4_0: x = (j%16 - 8)/2; the largest magnitude is -4 -> d = -4/-8 = 0.5 (0x3800), id = 2,
     * q = trunc(x*2 + 8.5) = j%16; byte j packs element j (low) and j+16 (high) */
    for (int j = 0; j < 32; j++) x[j] = (float)(j % 16 - 8) * 0.5f;
    kt->qops[2]->quantize_row(got, x, 32);
    want[0] = 0x00; want[1] = 0x38;
    for (int j = 0; j < 16; j++) want[2 + j] = (uint8_t)(j | (j << 4));
    fails += check_bytes("q4_0 block", got, want, 18);
    /* Q4_1: x = j%16 + 1: min 1 (0x3C00), max 16 -> d = 15/15 = 1, q = trunc(x - 1 + 0.5) = j%16 */
    for (int j = 0; j < 32; j++) x[j] = (float)(j % 16 + 1);
    kt->qops[3]->quantize_row(got, x, 32);
    want[0] = 0x00; want[1] = 0x3C; want[2] = 0x00; want[3] = 0x3C;
    for (int j = 0; j < 16; j++) want[4 + j] = (uint8_t)(j | (j << 4));
    fails += check_bytes("q4_1 block", got, want, 20);
    /* Q5_0: x = j - 16 (-16..15): largest magnitude -16 -> d = 1 (0x3C00), id = 1,
     * q = trunc(x + 16.5) = j; bit 4 set for j >= 16 -> qh = 0xFFFF0000; qs[j] = j&15 | (j+16)&15 << 4 */
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    kt->qops[6]->quantize_row(got, x, 32);
    want[0] = 0x00; want[1] = 0x3C; want[2] = 0x00; want[3] = 0x00; want[4] = 0xFF; want[5] = 0xFF;
    for (int j = 0; j < 16; j++) want[6 + j] = (uint8_t)(j | (j << 4));
    fails += check_bytes("q5_0 block", got, want, 22);
    /* Q8_K: largest magnitude -127 -> iscale = 1, q = x, d = 1.0f, bsums = sums of 16 */
    for (int j = 0; j < 256; j++) x[j] = j == 5 ? -127.f : (float)(j % 50 - 25);
    kt->qops[15]->quantize_row(got, x, 256);
    float one = 1.0f;
    memcpy(want, &one, 4);
    for (int j = 0; j < 256; j++) want[4 + j] = (uint8_t)(int8_t)x[j];
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int l = 0; l < 16; l++) s += (int)x[16 * g + l];
        int16_t s16 = (int16_t)s;
        memcpy(want + 260 + 2 * g, &s16, 2);
    }
    fails += check_bytes("q8_K block", got, want, 292);
    /* Q4_K: each sub-block of 32 holds 0..15 twice: min 0, scale 1 fits exactly, so every
     * sub-block gets scale 1, min 0: 6-bit scales 63 (d = f16(1/63) = 0x2410), mins 0 (dmin 0).
     * Packed: bytes 0..3 = 63 | (63>>4)<<6 = 0xFF, 4..7 = 0, 8..11 = 63&15 = 0x0F; q = x. */
    for (int j = 0; j < 256; j++) x[j] = (float)(j % 16);
    kt->qops[12]->quantize_row(got, x, 256);
    want[0] = 0x10; want[1] = 0x24; want[2] = 0; want[3] = 0;
    for (int j = 0; j < 4; j++) { want[4 + j] = 0xFF; want[8 + j] = 0; want[12 + j] = 0x0F; }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) want[16 + 32 * c + l] = (uint8_t)((l % 16) | ((l % 16) << 4));
    fails += check_bytes("q4_K block", got, want, 144);
    if (fabsf(f16_bits_to_f32(0x2410) - 1.f / 63) > 1e-5f) { printf("  FAIL f16 0x2410 is not 1/63\n"); fails++; }
    /* F16 / BF16: 1.5 = 0x3E00 / 0x3FC0, -2 = 0xC000 / 0xC000 */
    x[0] = 1.5f; x[1] = -2.f;
    kt->qops[1]->quantize_row(got, x, 2);
    uint8_t wf16[4] = {0x00, 0x3E, 0x00, 0xC0}, wbf16[4] = {0xC0, 0x3F, 0x00, 0xC0};
    fails += check_bytes("f16", got, wf16, 4);
    kt->qops[30]->quantize_row(got, x, 2);
    fails += check_bytes("bf16", got, wbf16, 4);
    return fails;
}

/* NMSE bounds of dequantize(quantize(x)) for Gaussian data (measured values ~3x below): the
 * format's resolution, not a tolerance of the implementation. */
static double rt_bound(int t) {
    switch (t) {
    case 1: return 1e-7;   /* f16: 11-bit mantissa */
    case 30: return 3e-5;  /* bf16: 8-bit mantissa */
    case 8: return 5e-5;   /* q8_0 */
    case 2: return 1.5e-2; /* q4_0 */
    case 3: return 1.0e-2; /* q4_1 */
    case 6: return 4e-3;   /* q5_0 */
    case 7: return 2.5e-3; /* q5_1 */
    case 12: return 6e-3;  /* q4_K */
    case 13: return 1.5e-3;/* q5_K */
    case 14: return 5e-4;  /* q6_K */
    case 40: case 41: case 42: case 45: case 47: case 48: case 49: case 50: /* their GGUF format's */
        return rt_bound(cke_ktable_for(CKE_ISA_REF)->qops[t]->repack_of);
    default: return 0;
    }
}

static int quant_roundtrip(const cke_ktable *kt, const cke_ktable *ref) {
    (void)ref;
    int fails = 0;
    const int64_t K = tquick ? 1024 : 8192;
    trng r = {7100};
    float *x = tallocf(K), *y = tallocf(K);
    void *blk = talloc((size_t)K * 4);
    for (int dist = 0; dist < 2; dist++) {
        for (int64_t i = 0; i < K; i++) {
            float g = trng_normal(&r);
            /* dist 1: heavy tails like real weights (a few outliers per block) */
            x[i] = dist == 0 ? g : g * (trng_uniform(&r, 0, 1) < 0.02f ? 8.f : 1.f) * 0.02f;
        }
        for (int ti = 0; ti < NWT; ti++) {
            const cke_qtype_ops *q = kt->qops[WTYPES[ti]];
            if (!q) { printf("  FAIL %d: no ops\n", WTYPES[ti]); fails++; continue; }
            q->quantize_row(blk, x, K);
            q->dequantize_row(y, blk, K);
            double e = tnmse(y, x, K), bound = rt_bound(WTYPES[ti]) * (dist ? 2.0 : 1.0);
            if (!(e <= bound)) {
                printf("  FAIL %s roundtrip (%s): nmse %.3g > %.3g\n", q->name, dist ? "heavy-tailed" : "gaussian", e, bound);
                fails++;
            }
            /* quantizing the dequantized values again must not move them much (idempotence) */
        }
    }
    /* all-zero rows give zero blocks and zero values */
    memset(x, 0, (size_t)K * sizeof(float));
    for (int ti = 0; ti < NWT; ti++) {
        const cke_qtype_ops *q = kt->qops[WTYPES[ti]];
        q->quantize_row(blk, x, 256);
        q->dequantize_row(y, blk, 256);
        for (int i = 0; i < 256; i++)
            if (y[i] != 0.0f) { printf("  FAIL %s zero row -> %g at %d\n", q->name, (double)y[i], i); fails++; break; }
    }
    free(x); free(y); free(blk);
    return fails;
}

/* activation row of the type's vec_dot format; returns the buffer (and its dequantized values) */
static void *make_act(const cke_ktable *kt, const cke_qtype_ops *q, const float *a, float *adq, int64_t K) {
    if (q->vec_dot_type == 0) {
        memcpy(adq, a, (size_t)K * sizeof(float));
        return tcopyf(a, K);
    }
    const cke_qtype_ops *aq = kt->qops[q->vec_dot_type];
    void *buf = talloc(rowbytes(aq, K) + 64);
    aq->quantize_row(buf, a, K);
    aq->dequantize_row(adq, buf, K);
    return buf;
}

/* Exact value of what vec_dot computes: the dequantized product, except that the _1 formats take
 * sum(a) of a block from the Q8_1 field s = f16(d * sum q), which is rounded (ggml's format). */
static double exact_dot(const cke_qtype_ops *q, const void *wb, const void *ab, const float *wdq, const float *adq,
                        int64_t K, double *mag) {
    double e = 0;
    *mag = 0;
    for (int64_t i = 0; i < K; i++) {
        e += (double)wdq[i] * adq[i];
        *mag += fabs((double)wdq[i] * adq[i]);
    }
    if (q->vec_dot_type == 9) /* Q8_1: blocks of 36 bytes {d, s, qs[32]}; Q4_1/Q5_1 start {d, m} */
        for (int64_t b = 0; b < K / 32; b++) {
            uint16_t mh, sh;
            memcpy(&mh, (const char *)wb + b * q->type_size + 2, 2);
            memcpy(&sh, (const char *)ab + b * 36 + 2, 2);
            double m = f16_bits_to_f32(mh), sa = 0;
            for (int i = 0; i < 32; i++) sa += adq[b * 32 + i];
            e += m * ((double)f16_bits_to_f32(sh) - sa);
        }
    if (q->vec_dot_type == 44) { /* q8_Ki: the mins are a separate float sum (ref/quant_r.c):
                                    rounding relative to |d sc q a| and |dmin m a| per sub-block */
        for (int64_t j = 0; j < K / 32; j++) {
            double mx = 0;
            for (int i = 0; i < 32; i++) mx = fmax(mx, fabs((double)wdq[j * 32 + i]));
            for (int i = 0; i < 32; i++) *mag += 2 * mx * fabs((double)adq[j * 32 + i]);
        }
    }
    if (q->vec_dot_type == 43) { /* q8_0s: the offset / min term is separate (ref/quant_r.c): its
                                    rounding is relative to |dw * u * a| and |off * dw * sd| (or
                                    |m * sd|), not to |w * a| */
        const int of = q->repack_of;
        const int has_min = of == 3 || of == 7;
        const double off = of == 8 ? 128 : of == 6 ? 16 : 8;
        const float *sd = (const float *)((const char *)ab + K) + K / 32;
        for (int64_t b = 0; b < K / 32; b++) {
            uint16_t dh, mh;
            memcpy(&dh, (const char *)wb + (has_min ? 4 : 2) * b, 2); /* the _1 formats: (d, m) pairs */
            memcpy(&mh, (const char *)wb + 4 * b + 2, 2);
            const double dw = f16_bits_to_f32(dh), m = has_min ? f16_bits_to_f32(mh) : -off * dw;
            *mag += fabs(m * sd[b]);
            for (int i = 0; i < 32; i++) *mag += fabs(((double)wdq[b * 32 + i] - m) * adq[b * 32 + i]);
        }
    }
    return e;
}

static int quant_dot(const cke_ktable *kt, const cke_ktable *ref) {
    int fails = 0;
    trng r = {7200};
    /* 288: 9 blocks of 32, one past the SIMD kernels' groups of 8 blocks (a tail); the K formats
     * (256-element super-blocks) skip it */
    const int64_t Ks[] = {256, 288, 768, 4096, 0};
    for (const int64_t *kp = Ks; *kp; kp++) {
        int64_t K = *kp;
        if (tquick && K > 1024) continue;
        float *w = tallocf(K), *a = tallocf(K), *wdq = tallocf(K), *adq = tallocf(K);
        for (int rep = 0; rep < 4; rep++) {
            tfill_normal(&r, w, K, rep == 3 ? 50.f : 1.f);
            tfill_normal(&r, a, K, rep == 2 ? 1e-3f : 1.f);
            for (int ti = 0; ti < NWT; ti++) {
                const cke_qtype_ops *q = kt->qops[WTYPES[ti]], *qr = ref->qops[WTYPES[ti]];
                if (K % q->blck) continue;
                void *wb = talloc(rowbytes(q, K) + 64);
                q->quantize_row(wb, w, K);
                q->dequantize_row(wdq, wb, K);
                void *ab = make_act(kt, q, a, adq, K);
                double mag, exact = exact_dot(q, wb, ab, wdq, adq, K, &mag);
                float s = -1, sr = -1;
                q->vec_dot(&s, wb, ab, K);
                qr->vec_dot(&sr, wb, ab, K);
                /* both sum exact integer products per block; float scaling in a different order:
                 * a few ulps of the magnitude sum */
                double tol = 2e-6 * mag + 1e-30;
                if (!(fabs((double)s - exact) <= tol) || !(fabs((double)sr - exact) <= tol)) {
                    printf("  FAIL %s dot K=%lld rep %d: %s %.9g, ref %.9g, exact %.9g (tol %.3g)\n", q->name, (long long)K, rep,
                           kt->name, (double)s, (double)sr, exact, tol);
                    fails++;
                }
                free(wb); free(ab);
            }
        }
        free(w); free(a); free(wdq); free(adq);
    }
    return fails;
}

static int quant_linear(const cke_ktable *kt, const cke_ktable *ref) {
    (void)ref;
    int fails = 0;
    trng r = {7300};
    const int64_t K0 = 512, N0 = tquick ? 40 : 300;
    const int64_t Ms0[] = {1, 3, 9, 33, 0}, Ms1[] = {9, 64, 0};
    for (int odd = 0; odd < 2; odd++) { /* second pass: odd K (in blocks) and odd N, M = 9 and 64 */
    const int64_t K = odd ? 32 * 15 : K0, N = odd ? 37 : N0;
    const int64_t *Ms = odd ? Ms1 : Ms0;
    float *W = tallocf(N * K), *Wdq = tallocf(N * K), *bias = tallocf(N);
    tfill_normal(&r, W, N * K, 0.05f);
    tfill_normal(&r, bias, N, 1.0f);
    for (int ti = 0; ti < NWT; ti++) {
        const cke_qtype_ops *q = kt->qops[WTYPES[ti]];
        if (K % q->blck) continue;
        size_t rs = cke_qtype_row_size(WTYPES[ti], K);
        if (rs != rowbytes(q, K)) { printf("  FAIL %s row size %zu\n", q->name, rs); fails++; continue; }
        char *Wq = talloc(rs * (size_t)N);
        for (int64_t n = 0; n < N; n++) {
            q->quantize_row(Wq + (size_t)n * rs, W + n * K, K);
            q->dequantize_row(Wdq + n * K, Wq + (size_t)n * rs, K);
        }
        for (const int64_t *mp = Ms; *mp; mp++) {
            int64_t M = *mp;
            float *X = tallocf(M * K), *Y = tallocf(M * N), *Xdq = tallocf(M * K);
            tfill_normal(&r, X, M * K, 1.0f);
            /* qlinear.c's QL_GEMM_MIN_M: decode dots quantized activations, and so does prefill
             * where the table has the format's integer tile (vec_dot_4) */
            int decode = M < 8 || q->vec_dot_4 || q->dot_rows;
            void **abs_ = talloc((size_t)M * sizeof(void *));
            for (int64_t m = 0; m < M; m++) abs_[m] = make_act(kt, q, X + m * K, Xdq + m * K, K);
            for (int nth = 1; nth <= 2; nth++) {
                size_t wsz = cke_qlinear_ws_size(WTYPES[ti], M, K, N, nth);
                void *ws = talloc(wsz);
                int rc = cke_qlinear_fwd(kt, Y, X, Wq, WTYPES[ti], nth == 2 ? bias : NULL, M, K, N, ws, nth);
                if (rc) { printf("  FAIL %s qlinear rc %d\n", q->name, rc); fails++; }
                for (int64_t m = 0; m < M && !rc; m++)
                    for (int64_t n = 0; n < N; n++) {
                        double mag, e;
                        if (decode) e = exact_dot(q, Wq + (size_t)n * rs, abs_[m], Wdq + n * K, Xdq + m * K, K, &mag);
                        else {
                            e = 0, mag = 0;
                            for (int64_t i = 0; i < K; i++) {
                                e += (double)Wdq[n * K + i] * X[m * K + i];
                                mag += fabs((double)Wdq[n * K + i] * X[m * K + i]);
                            }
                        }
                        if (nth == 2) e += bias[n], mag += fabs(bias[n]);
                        if (!(fabs(Y[m * N + n] - e) <= 1e-5 * mag + 1e-6)) {
                            printf("  FAIL %s qlinear M=%lld nth=%d [%lld,%lld] %.9g vs %.9g\n", q->name, (long long)M, nth,
                                   (long long)m, (long long)n, (double)Y[m * N + n], e);
                            fails++;
                            m = M;
                            break;
                        }
                    }
                free(ws);
            }
            for (int64_t m = 0; m < M; m++) free(abs_[m]);
            free(abs_); free(X); free(Y); free(Xdq);
        }
        free(Wq);
    }
    free(W); free(Wdq); free(bias);
    }
    return fails;
}

/* repacked formats: the same values as the GGUF rows they rearrange (exactly), repack(quantize)
 * == quantize of the repacked type, every table's dot_rows for 1..4 rows against its vec_dot,
 * and a hand-placed nibble where the layout spec (ref/quant_r.c) says it goes */
static int quant_repack(const cke_ktable *kt, const cke_ktable *ref) {
    int fails = 0;
    trng r = {7400};
    const int64_t Ks[] = {256, 480, 2048, 0}; /* 480: 15 blocks, 3 groups of 4 and a tail of 3 */
    for (const int64_t *kp = Ks; *kp; kp++) {
        const int64_t K = *kp;
        float *x = tallocf(K), *y0 = tallocf(K), *y1 = tallocf(K), *a = tallocf(4 * K);
        tfill_normal(&r, x, K, 1.0f);
        tfill_normal(&r, a, 4 * K, 1.0f);
        for (int t = 40; t <= 50; t++) {
            if (t == 43 || t == 44 || t == 46) continue; /* activation formats */
            const cke_qtype_ops *q = kt->qops[t], *g = ref->qops[q->repack_of];
            if (K % q->blck) continue;
            const size_t rs = rowbytes(q, K);
            char *bg = talloc(rs), *br = talloc(rs), *bq = talloc(rs);
            g->quantize_row(bg, x, K);
            q->repack_row(br, bg, K);
            q->quantize_row(bq, x, K);
            g->dequantize_row(y0, bg, K);
            q->dequantize_row(y1, br, K);
            if (rowbytes(g, K) != rs || memcmp(br, bq, rs) || memcmp(y0, y1, (size_t)K * sizeof(float))) {
                printf("  FAIL %s K=%lld: repacked row differs from %s's values or quantizer\n", q->name, (long long)K, g->name);
                fails++;
            }
            const cke_qtype_ops *aq = kt->qops[q->vec_dot_type];
            const size_t as = rowbytes(aq, K) + 8; /* a stride that is not the row size */
            char *ab = talloc(4 * as);
            for (int i = 0; i < 4; i++) aq->quantize_row(ab + (size_t)i * as, a + i * K, K);
            for (int nr = 1; nr <= 4; nr++) {
                float yr[8] = {0}, e;
                q->dot_rows(yr, 2, br, ab, as, nr, K);
                for (int i = 0; i < nr; i++) {
                    q->vec_dot(&e, br, ab + (size_t)i * as, K);
                    if (!(fabsf(yr[2 * i] - e) <= 1e-5f * fabsf(e) + 1e-4f)) {
                        printf("  FAIL %s dot_rows nr=%d row %d: %g vs vec_dot %g\n", q->name, nr, i, (double)yr[2 * i], (double)e);
                        fails++;
                    }
                }
            }
            free(bg); free(br); free(bq); free(ab);
        }
        free(x); free(y0); free(y1); free(a);
    }
    /* gemv (decode, a thread's rows in one call) against per-row vec_dot, for every format that
     * has one; K past 2048 with 19 rows: F16's 8-row tiles, then single rows */
    for (int t = 1; t < CKE_QTYPE_COUNT; t++) {
        const cke_qtype_ops *q = kt->qops[t];
        if (!q || !q->gemv) continue;
        const int64_t K = 2304, N = 19;
        const size_t rs = rowbytes(q, K);
        const cke_qtype_ops *aq = q->vec_dot_type ? kt->qops[q->vec_dot_type] : NULL;
        float *w = tallocf(K), *a = tallocf(K), y[19], e;
        char *W = talloc(rs * N), *A = talloc(aq ? rowbytes(aq, K) : (size_t)K * 4);
        for (int64_t n = 0; n < N; n++) {
            tfill_normal(&r, w, K, 1.0f);
            q->quantize_row(W + (size_t)n * rs, w, K);
        }
        tfill_normal(&r, a, K, 1.0f);
        if (aq) aq->quantize_row(A, a, K);
        else memcpy(A, a, (size_t)K * sizeof(float));
        q->gemv(y, W, rs, N, A, K);
        int bad = 0;
        for (int64_t n = 0; n < N; n++) {
            q->vec_dot(&e, W + (size_t)n * rs, A, K);
            /* the same products summed in another order: a few ulps of sum |w a| (~ sqrt(K) |e|) */
            bad += !(fabsf(y[n] - e) <= 1e-5f * (fabsf(e) + 50.0f));
        }
        if (bad) { printf("  FAIL %s gemv differs from vec_dot on %d of %lld rows\n", q->name, bad, (long long)N); fails++; }
        free(w); free(a); free(W); free(A);
    }
    /* the activation quantizers of the repacked formats: this table's bytes == the _ref's */
    {
        const int64_t K = 2048;
        float *x = tallocf(K);
        for (int rep = 0; rep < 4; rep++) {
            tfill_normal(&r, x, K, rep == 3 ? 1e-3f : 1.0f);
            if (rep == 2) memset(x + 256, 0, 256 * sizeof(float)); /* an all-zero super-block */
            if (rep == 1) { x[300] = 40.0f; x[301] = -40.0f; } /* a tie in magnitude: the first wins */
            for (int t = 43; t <= 46; t++) {
                if (t == 45) continue; /* a weight format */
                const size_t sz = rowbytes(kt->qops[t], K);
                char *a = talloc(sz), *b = talloc(sz);
                kt->qops[t]->quantize_row(a, x, K);
                ref->qops[t]->quantize_row(b, x, K);
                if (memcmp(a, b, sz)) { printf("  FAIL %s quantize_row differs from the _ref (rep %d)\n", kt->qops[t]->name, rep); fails++; }
                free(a); free(b);
            }
        }
        free(x);
    }
    /* layout: q4_0r of 8 blocks (one group), all codes 8 but element 14 of block 2 = 3. The spec:
     * stream byte 64t + 8b + x = 64 + 16 + 6 = 86 -> high nibble of qs byte 22 (its low nibble is
     * element 6 of block 2); the 8 scales first */
    {
        blk_q4_0 b[8];
        for (int i = 0; i < 8; i++) { b[i].d = (uint16_t)(0x3c00 + i); memset(b[i].qs, 0x88, 16); }
        b[2].qs[14] = 0x83; /* element 14 of block 2: low nibble of its byte 14 */
        uint8_t out[8 * 18];
        ref->qops[41]->repack_row(out, b, 256);
        uint16_t d2;
        memcpy(&d2, out + 4, 2);
        if (d2 != 0x3c02 || out[16 + 22] != 0x38 || out[16 + 23] != 0x88 || out[16 + 21] != 0x88) {
            printf("  FAIL q4_0r layout: scale %04x byte22 %02x\n", d2, out[16 + 22]);
            fails++;
        }
    }
    return fails;
}

/* repacked formats, M >= 2: every tile shape of the table's gemm_tile (nw 1..tile_nw, na
 * 1..tile_na; dot_rows' 1..4 rows where it has none) equal, exactly, to vec_dot per element
 * (decode, decode_batch and prefill must give a row the same bits), nothing written outside the
 * tile; K with tail blocks (_0 formats) and odd counts of groups / super-blocks. Then qlinear for M
 * = 1..17 rows: each row equal to the row run alone (M = 1, gemv), at 1 and 2 threads. */
static int quant_tile(const cke_ktable *kt, const cke_ktable *ref) {
    (void)ref;
    int fails = 0;
    trng r = {7500};
    const int64_t Ks[] = {256, 480, 768, 2304, 0}; /* 480: 15 blocks (a group and 7 tail blocks); 2304: 9 groups / super-blocks */
    for (int t = 40; t <= 50; t++) {
        if (t == 43 || t == 44 || t == 46) continue; /* activation formats */
        const cke_qtype_ops *q = kt->qops[t];
        const cke_qtype_ops *aq = kt->qops[q->vec_dot_type];
        const int tnw = q->gemm_tile ? q->tile_nw : 1, tna = q->gemm_tile ? q->tile_na : 4;
        if (tnw < 1 || tna < 1 || tnw > 8 || tna > 8) { printf("  FAIL %s tile %dx%d\n", q->name, tnw, tna); fails++; continue; }
        for (const int64_t *kp = Ks; *kp; kp++) {
            const int64_t K = *kp;
            if (K % q->blck) continue;
            const size_t rs = rowbytes(q, K) + 16, as = rowbytes(aq, K) + 8; /* strides that are not the row sizes */
            char *W = talloc(rs * 8), *A = talloc(as * 8);
            float *x = tallocf(K), *e = tallocf(64);
            for (int j = 0; j < tnw; j++) {
                tfill_normal(&r, x, K, 1.0f);
                q->quantize_row(W + (size_t)j * rs, x, K);
            }
            for (int i = 0; i < tna; i++) {
                tfill_normal(&r, x, K, i == 1 ? 1e-3f : 1.0f);
                aq->quantize_row(A + (size_t)i * as, x, K);
            }
            for (int j = 0; j < tnw; j++)
                for (int i = 0; i < tna; i++) q->vec_dot(&e[8 * i + j], W + (size_t)j * rs, A + (size_t)i * as, K);
            for (int nw = 1; nw <= tnw; nw++)
                for (int na = 1; na <= tna; na++) {
                    float y[9 * 8];
                    for (int i = 0; i < 9 * 8; i++) y[i] = -7.0f; /* sentinel, ldy = 9 */
                    if (q->gemm_tile) q->gemm_tile(y, 9, W, rs, nw, A, as, na, K);
                    else q->dot_rows(y, 9, W, A, as, na, K);
                    int bad = 0;
                    for (int i = 0; i < 8; i++)
                        for (int j = 0; j < 9; j++) {
                            const int in = i < na && j < nw;
                            bad += in ? memcmp(&y[9 * i + j], &e[8 * i + j], sizeof(float)) != 0 : y[9 * i + j] != -7.0f;
                        }
                    if (bad) {
                        printf("  FAIL %s K=%lld tile %dx%d: %d elements differ from vec_dot or written outside\n", q->name,
                               (long long)K, nw, na, bad);
                        fails++;
                    }
                }
            free(W); free(A); free(x); free(e);
        }
        /* qlinear: M rows at once == each row alone; from CKE_QPANEL_MIN_M rows the K formats'
         * column panels (where the table has them) sum in their own order: there each row is
         * within reordering error of M = 1 (1e-5 of sum |w a|: one wrong code or scale moves a
         * row by ~1/K of it, 4e-4 here), the same bits at 1 and 2 threads and for every M */
        const int64_t K = 2304, N = 37, MX = 37; /* N: a panel of 32 and one of 5 */
        const size_t rs = rowbytes(q, K);
        char *W = talloc(rs * N);
        float *x = tallocf(MX * K), *b = tallocf(N), *Y = tallocf(MX * N), *Y1 = tallocf(N), *Yp = tallocf(MX * N);
        float *S = tallocf(MX * N), *wd = tallocf(K);
        for (int64_t n = 0; n < N; n++) {
            tfill_normal(&r, x, K, 0.05f);
            q->quantize_row(W + (size_t)n * rs, x, K);
        }
        tfill_normal(&r, x, MX * K, 1.0f);
        tfill_normal(&r, b, N, 1.0f);
        for (int64_t n = 0; n < N; n++) { /* sum_k |w a| per output */
            q->dequantize_row(wd, W + (size_t)n * rs, K);
            for (int64_t m = 0; m < MX; m++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += fabs((double)wd[k] * x[m * K + k]);
                S[m * N + n] = (float)s;
            }
        }
        void *ws = talloc(cke_qlinear_ws_size(t, MX, K, N, 2));
        static const int64_t Ms[] = {2, 3, 4, 5, 7, 8, 9, 11, 13, 16, 17, 23, 24, 31, 37, 0};
        for (const int64_t *mp = Ms; *mp; mp++)
            for (int nth = 1; nth <= 2; nth++) {
                const int64_t M = *mp;
                const int panel = M >= CKE_QPANEL_MIN_M && q->panel_gemm;
                int bad = cke_qlinear_fwd(kt, Y, x, W, t, nth == 2 ? b : NULL, M, K, N, ws, nth) != 0;
                for (int64_t m = 0; m < M && !bad; m++) {
                    bad |= cke_qlinear_fwd(kt, Y1, x + m * K, W, t, nth == 2 ? b : NULL, 1, K, N, ws, nth) != 0;
                    for (int64_t n = 0; n < N; n++)
                        bad |= panel ? !(fabsf(Y1[n] - Y[m * N + n]) <= 1e-5f * S[m * N + n])
                                     : memcmp(&Y1[n], &Y[m * N + n], sizeof(float)) != 0;
                }
                if (bad) { printf("  FAIL %s qlinear M=%lld nth=%d: rows differ from M = 1\n", q->name, (long long)M, nth); fails++; }
                if (panel && nth == 1 && M == 31) memcpy(Yp, Y, (size_t)(31 * N) * sizeof(float));
                if (panel && nth == 1 && M == 37) { /* the panels' bits: the same for M = 31 and 37 */
                    if (memcmp(Yp, Y, (size_t)(31 * N) * sizeof(float))) {
                        printf("  FAIL %s qlinear panels: M=37's first 31 rows differ from M=31's\n", q->name);
                        fails++;
                    }
                    memcpy(Yp, Y, (size_t)(M * N) * sizeof(float));
                }
                if (panel && nth == 2 && M == 37) { /* ... and at 1 and 2 threads (nth 2 adds the bias) */
                    int d = 0;
                    for (int64_t i = 0; i < M * N; i++) d += Yp[i] + b[i % N] != Y[i];
                    if (d) { printf("  FAIL %s qlinear panels: nth 2 differs from nth 1 on %d elements\n", q->name, d); fails++; }
                }
            }
        free(W); free(x); free(b); free(Y); free(Y1); free(Yp); free(S); free(wd); free(ws);
        if (q->blck == QK) { /* K 480 (tail blocks): no panels, the tiles' bits at M = 24 */
            const int64_t K2 = 480, M2 = 24, N2 = 33;
            const size_t rs2 = rowbytes(q, K2);
            char *W2 = talloc(rs2 * N2);
            float *x2 = tallocf(M2 * K2), *Y2 = tallocf(M2 * N2), *Y21 = tallocf(N2);
            for (int64_t n = 0; n < N2; n++) {
                tfill_normal(&r, x2, K2, 0.05f);
                q->quantize_row(W2 + (size_t)n * rs2, x2, K2);
            }
            tfill_normal(&r, x2, M2 * K2, 1.0f);
            void *ws2 = talloc(cke_qlinear_ws_size(t, M2, K2, N2, 2));
            int bad = cke_qlinear_fwd(kt, Y2, x2, W2, t, NULL, M2, K2, N2, ws2, 2) != 0;
            for (int64_t m = 0; m < M2 && !bad; m++) {
                bad |= cke_qlinear_fwd(kt, Y21, x2 + m * K2, W2, t, NULL, 1, K2, N2, ws2, 2) != 0;
                bad |= memcmp(Y21, Y2 + m * N2, (size_t)N2 * sizeof(float)) != 0;
            }
            if (bad) { printf("  FAIL %s qlinear K=480 M=24: rows differ from M = 1\n", q->name); fails++; }
            free(W2); free(x2); free(Y2); free(Y21); free(ws2);
        }
    }
    return fails;
}

const test_op tests_quant[] = {
    {"quant_tile", quant_tile, NULL, NULL},
    {"quant_repack", quant_repack, NULL, NULL},
    {"quant_blocks", quant_blocks, NULL, NULL},
    {"quant_roundtrip", quant_roundtrip, NULL, NULL},
    {"quant_dot", quant_dot, NULL, NULL},
    {"quant_linear", quant_linear, NULL, NULL},
    {0},
};
