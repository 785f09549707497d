/* Tests of the attn family: simd vs _ref sweeps, finite-difference gradients, PyTorch parity.
 * Every entry checks the forward (out, lse) and the backward (dq, dk, dv, accumulated onto
 * non-zero gradients) at nth = 1 and 2; the SIMD kernels must give bitwise identical results
 * for both thread counts (static partition, one owner per output element, shape-only split). */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* fwd out: both sides are float online/offline softmax with different summation orders and
 * exp approximations (vmath ~2 ulp): a few ulp of O(1) values. */
static const tol_t TOL_OUT = {1e-10, 2e-6, 1e-4};
/* lse: log of a sum of O(Tk) terms, a few ulp of max + log(sum) */
static const tol_t TOL_LSE = {1e-12, 1e-5, 1e-5};
/* grads: sums over Tk (dk/dv: over T * rep) rows of products with cancellation in dp - D */
static const tol_t TOL_GRAD = {1e-9, 1e-4, 1e-3};
/* same as TOL_GRAD with softcap: tanh (vmath ~3 ulp) enters twice, and 1 - tanh^2 amplifies */
static const tol_t TOL_GRAD_CAP = {1e-8, 2e-4, 2e-3};

typedef struct {
    int64_t T, Tk, H, KV, hd, window;
    float softcap, qscale; /* qscale: input magnitude, so that softcap actually bends logits */
} acase;

static cke_attn_shape mkshape(const acase *c) {
    cke_attn_shape s = {c->T, c->Tk, c->H, c->KV, c->hd, 1.0f / sqrtf((float)c->hd), c->window,
                        c->softcap};
    return s;
}

static void fwd(const cke_ktable *kt, float *out, float *lse, const float *q, const float *k,
                const float *v, const cke_attn_shape *s, int nth) {
    void *ws = talloc(cke_attn_ws_size(s, nth));
    kt->attn_fwd(out, lse, q, k, v, s, ws, nth);
    free(ws);
}

static void bwd(const cke_ktable *kt, float *dq, float *dk, float *dv, const float *dout,
                const float *q, const float *k, const float *v, const float *out, const float *lse,
                const cke_attn_shape *s, int nth) {
    void *ws = talloc(cke_attn_bwd_ws_size(s, nth));
    kt->attn_bwd(dq, dk, dv, dout, q, k, v, out, lse, s, ws, nth);
    free(ws);
}

static int same_bits(const char *what, const float *a, const float *b, int64_t n) {
    if (memcmp(a, b, (size_t)n * sizeof(float)) == 0) return 0;
    printf("    FAIL %s: nth=1 and nth=2 differ bitwise\n", what);
    return 1;
}

/* One case: kt vs ref, fwd and bwd, nth 1 and 2. */
static int check_case(const cke_ktable *kt, const cke_ktable *ref, const acase *c, uint64_t seed) {
    cke_attn_shape s = mkshape(c);
    const int64_t nq = c->T * c->H * c->hd, nk = c->Tk * c->KV * c->hd, nl = c->H * c->T;
    trng r = {seed};
    float *q = tallocf(nq), *k = tallocf(nk), *v = tallocf(nk), *dout = tallocf(nq);
    tfill_normal(&r, q, nq, c->qscale);
    tfill_normal(&r, k, nk, 1.0f);
    tfill_normal(&r, v, nk, 1.0f);
    tfill_normal(&r, dout, nq, 1.0f);
    float *g0q = tallocf(nq), *g0k = tallocf(nk), *g0v = tallocf(nk); /* non-zero: += check */
    tfill_normal(&r, g0q, nq, 0.1f);
    tfill_normal(&r, g0k, nk, 0.1f);
    tfill_normal(&r, g0v, nk, 0.1f);

    float *ro = tallocf(nq), *rl = tallocf(nl);
    fwd(ref, ro, rl, q, k, v, &s, 1);
    float *rdq = tcopyf(g0q, nq), *rdk = tcopyf(g0k, nk), *rdv = tcopyf(g0v, nk);
    bwd(ref, rdq, rdk, rdv, dout, q, k, v, ro, rl, &s, 1);

    char what[200];
    int fails = 0;
    const tol_t tg = c->softcap != 0 ? TOL_GRAD_CAP : TOL_GRAD;
    float *o[2], *l[2], *dq[2], *dk[2], *dv[2];
    for (int i = 0; i < 2; i++) {
        int nth = i + 1;
        o[i] = tallocf(nq);
        l[i] = tallocf(nl);
        dq[i] = tcopyf(g0q, nq);
        dk[i] = tcopyf(g0k, nk);
        dv[i] = tcopyf(g0v, nk);
        fwd(kt, o[i], l[i], q, k, v, &s, nth);
        bwd(kt, dq[i], dk[i], dv[i], dout, q, k, v, ro, rl, &s, nth);
        snprintf(what, sizeof what, "T=%lld Tk=%lld H=%lld KV=%lld hd=%lld win=%lld cap=%g nth=%d",
                 (long long)c->T, (long long)c->Tk, (long long)c->H, (long long)c->KV,
                 (long long)c->hd, (long long)c->window, c->softcap, nth);
        char w2[260];
        snprintf(w2, sizeof w2, "out %s", what);
        fails += tcheck(w2, o[i], ro, nq, TOL_OUT);
        snprintf(w2, sizeof w2, "lse %s", what);
        fails += tcheck(w2, l[i], rl, nl, TOL_LSE);
        snprintf(w2, sizeof w2, "dq %s", what);
        fails += tcheck(w2, dq[i], rdq, nq, tg);
        snprintf(w2, sizeof w2, "dk %s", what);
        fails += tcheck(w2, dk[i], rdk, nk, tg);
        snprintf(w2, sizeof w2, "dv %s", what);
        fails += tcheck(w2, dv[i], rdv, nk, tg);
    }
    fails += same_bits("out", o[0], o[1], nq) + same_bits("lse", l[0], l[1], nl) +
             same_bits("dq", dq[0], dq[1], nq) + same_bits("dk", dk[0], dk[1], nk) +
             same_bits("dv", dv[0], dv[1], nk);
    float *on = tallocf(nq); /* lse == NULL: same output */
    fwd(kt, on, NULL, q, k, v, &s, 2);
    fails += same_bits("out (lse NULL)", on, o[0], nq);
    free(on);
    if (fails) printf("    (case %s)\n", what);
    for (int i = 0; i < 2; i++) { free(o[i]); free(l[i]); free(dq[i]); free(dk[i]); free(dv[i]); }
    free(q); free(k); free(v); free(dout); free(g0q); free(g0k); free(g0v);
    free(ro); free(rl); free(rdq); free(rdk); free(rdv);
    return fails;
}

static const int64_t Ts[] = {1, 3, 17, 33, 127};
static const int64_t hds[] = {1, 3, 8, 17, 64, 128};
/* 2, 3, 4 + 2 and 4 + 3 full AVX-512 vectors: the output tiles narrower than 4 (seeds of their own) */
static const int64_t hds_narrow[] = {40, 48, 96, 112};

/* plain causal MHA, T == Tk */
static int simd_attn(const cke_ktable *kt, const cke_ktable *ref) {
    int fails = 0;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 6; b++) {
            if (tquick && (Ts[a] > 33 || hds[b] > 64)) continue;
            acase c = {Ts[a], Ts[a], 2, 2, hds[b], 0, 0, 1};
            fails += check_case(kt, ref, &c, 100 + (uint64_t)(a * 10 + b));
        }
    for (int a = 1; a < 5; a++) /* T >= 3: several rows per output tile */
        for (int b = 0; b < 4; b++) {
            if (tquick && (Ts[a] > 33 || hds_narrow[b] > 64)) continue;
            acase c = {Ts[a], Ts[a], 2, 2, hds_narrow[b], 0, 0, 1};
            fails += check_case(kt, ref, &c, 700 + (uint64_t)(a * 10 + b));
        }
    return fails;
}

/* grouped-query heads: rep 2, 3, 4, 8 and multi-query (one kv head) */
static int simd_attn_gqa(const cke_ktable *kt, const cke_ktable *ref) {
    static const int64_t hk[][2] = {{4, 2}, {6, 2}, {8, 2}, {8, 1}, {32, 4}};
    static const int64_t hd2[] = {3, 17, 64};
    int fails = 0;
    for (int h = 0; h < 5; h++)
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 3; b++) {
                if (tquick && (Ts[a] > 33 || (hk[h][0] > 8 && Ts[a] > 17))) continue;
                if (hk[h][0] >= 32 && Ts[a] > 33) continue; /* the ref is slow there */
                acase c = {Ts[a], Ts[a], hk[h][0], hk[h][1], hd2[b], 0, 0, 1};
                fails += check_case(kt, ref, &c, 200 + (uint64_t)(h * 100 + a * 10 + b));
            }
    return fails;
}

/* sliding window, incl. window 1 (only the diagonal) and windows crossing key blocks */
static int simd_attn_window(const cke_ktable *kt, const cke_ktable *ref) {
    static const int64_t wins[] = {1, 5, 16, 70};
    int fails = 0;
    for (int w = 0; w < 4; w++)
        for (int a = 0; a < 5; a++) {
            if (tquick && Ts[a] > 33) continue;
            acase c = {Ts[a], Ts[a], 4, 2, 17, wins[w], 0, 1};
            fails += check_case(kt, ref, &c, 300 + (uint64_t)(w * 10 + a));
            acase c2 = {Ts[a], Ts[a] + 90, 8, 2, 64, wins[w], 0, 1}; /* with past */
            fails += check_case(kt, ref, &c2, 350 + (uint64_t)(w * 10 + a));
        }
    return fails;
}

/* Gemma-2 style logit softcap with large logits (qscale 4) so that tanh saturates */
static int simd_attn_softcap(const cke_ktable *kt, const cke_ktable *ref) {
    static const float caps[] = {2.0f, 50.0f};
    int fails = 0;
    for (int cp = 0; cp < 2; cp++)
        for (int a = 0; a < 5; a++) {
            if (tquick && Ts[a] > 33) continue;
            acase c = {Ts[a], Ts[a], 4, 2, 64, 0, caps[cp], 4.0f};
            fails += check_case(kt, ref, &c, 400 + (uint64_t)(cp * 10 + a));
            acase c2 = {Ts[a], Ts[a] + 5, 4, 4, 17, 9, caps[cp], 4.0f};
            fails += check_case(kt, ref, &c2, 450 + (uint64_t)(cp * 10 + a));
        }
    return fails;
}

/* decode: one query row against the KV cache; Tk across the block (64) and split (512) edges */
static int simd_attn_decode(const cke_ktable *kt, const cke_ktable *ref) {
    static const int64_t Tks[] = {1, 2, 63, 64, 65, 511, 513, 1000, 1025};
    static const int64_t hk[][3] = {{8, 2, 64}, {4, 4, 17}, {32, 4, 128}, {16, 1, 64}, {4, 2, 256}};
    int fails = 0;
    for (int h = 0; h < 5; h++)
        for (int a = 0; a < 9; a++) {
            if (tquick && Tks[a] > 513) continue;
            acase c = {1, Tks[a], hk[h][0], hk[h][1], hk[h][2], 0, 0, 1};
            fails += check_case(kt, ref, &c, 500 + (uint64_t)(h * 10 + a));
            if (h == 0) {
                acase cw = {1, Tks[a], 8, 2, 64, 100, 0, 1};
                fails += check_case(kt, ref, &cw, 590 + (uint64_t)a);
            }
        }
    return fails;
}

/* chunked prefill: T < Tk, the chunk's rows sit after `past` cached positions */
static int simd_attn_chunk(const cke_ktable *kt, const cke_ktable *ref) {
    static const int64_t pasts[] = {1, 5, 64, 100};
    int fails = 0;
    for (int p = 0; p < 4; p++)
        for (int a = 1; a < 5; a++) {
            if (tquick && Ts[a] > 33) continue;
            acase c = {Ts[a], Ts[a] + pasts[p], 6, 3, 17, 0, 0, 1};
            fails += check_case(kt, ref, &c, 600 + (uint64_t)(p * 10 + a));
            acase c2 = {Ts[a], Ts[a] + pasts[p], 8, 2, 64, 0, 0, 1};
            fails += check_case(kt, ref, &c2, 650 + (uint64_t)(p * 10 + a));
            acase c3 = {Ts[a], Ts[a] + pasts[p], 2, 1, p % 2 ? 256 : 200, 0, 0, 1}; /* widest heads */
            fails += check_case(kt, ref, &c3, 690 + (uint64_t)(p * 10 + a));
        }
    return fails;
}

/* ---- f16 KV cache: attn_fwd_f16 and the f32 -> f16 write ---- */

static void fwd_h(const cke_ktable *kt, float *out, float *lse, const float *q, const uint16_t *k,
                  const uint16_t *v, const cke_attn_shape *s, int nth) {
    void *ws = talloc(cke_attn_ws_size(s, nth));
    kt->attn_fwd_f16(out, lse, q, k, v, s, ws, nth);
    free(ws);
}

/* One case: k, v rounded to f16 by the ref writer. The f16 forward must equal, bit for bit, the
 * same table's f32 forward on the widened values (widening is exact and the arithmetic after it
 * is the same code), at nth 1 and 2; and kt's f16 forward must match the ref's f16 forward to
 * TOL_OUT / TOL_LSE (the f32 tolerances: same sums, same exp approximations). */
static int f16_case(const cke_ktable *kt, const cke_ktable *ref, const acase *c, uint64_t seed) {
    cke_attn_shape s = mkshape(c);
    const int64_t nq = c->T * c->H * c->hd, nk = c->Tk * c->KV * c->hd, nl = c->H * c->T;
    trng r = {seed};
    float *q = tallocf(nq), *k = tallocf(nk), *v = tallocf(nk);
    tfill_normal(&r, q, nq, c->qscale);
    tfill_normal(&r, k, nk, 1.0f);
    tfill_normal(&r, v, nk, 1.0f);
    uint16_t *kh = talloc((size_t)nk * 2), *vh = talloc((size_t)nk * 2);
    ref->f32_to_f16(kh, k, nk);
    ref->f32_to_f16(vh, v, nk);
    for (int64_t i = 0; i < nk; i++) { /* k, v <- the widened cache values */
        ref->qops[1]->dequantize_row(&k[i], &kh[i], 1);
        ref->qops[1]->dequantize_row(&v[i], &vh[i], 1);
    }
    char what[200];
    snprintf(what, sizeof what, "f16 T=%lld Tk=%lld H=%lld KV=%lld hd=%lld win=%lld cap=%g", (long long)c->T,
             (long long)c->Tk, (long long)c->H, (long long)c->KV, (long long)c->hd, (long long)c->window, c->softcap);
    int fails = 0;
    float *ro = tallocf(nq), *rl = tallocf(nl), *o = tallocf(nq), *l = tallocf(nl), *o32 = tallocf(nq),
          *l32 = tallocf(nl);
    fwd_h(ref, ro, rl, q, kh, vh, &s, 1);
    fwd(ref, o32, l32, q, k, v, &s, 1);
    fails += same_bits("ref f16 vs ref f32 on widened values: out", ro, o32, nq);
    fails += same_bits("ref f16 vs ref f32 on widened values: lse", rl, l32, nl);
    for (int nth = 1; nth <= 2; nth++) {
        char w2[260];
        fwd_h(kt, o, l, q, kh, vh, &s, nth);
        snprintf(w2, sizeof w2, "out %s nth=%d", what, nth);
        fails += tcheck(w2, o, ro, nq, TOL_OUT);
        snprintf(w2, sizeof w2, "lse %s nth=%d", what, nth);
        fails += tcheck(w2, l, rl, nl, TOL_LSE);
        fwd(kt, o32, l32, q, k, v, &s, nth);
        fails += same_bits("f16 vs f32 on widened values: out", o, o32, nq);
        fails += same_bits("f16 vs f32 on widened values: lse", l, l32, nl);
    }
    if (fails) printf("    (case %s)\n", what);
    free(q); free(k); free(v); free(kh); free(vh); free(ro); free(rl); free(o); free(l); free(o32); free(l32);
    return fails;
}

/* The write conversion: every ISA's bits equal the ref's (round to nearest even) on normals,
 * ties, subnormals, overflow and zeros; and a few values against their known halves. */
static int f16_write(const cke_ktable *kt, const cke_ktable *ref) {
    enum { N = 4099 }; /* a tail after the 8-wide loop */
    float *x = tallocf(N);
    trng r = {77};
    tfill_normal(&r, x, N, 3.0f);
    for (int i = 0; i < 64; i++) x[i * 7] *= 1e-5f * (float)(i + 1);   /* subnormal halves */
    for (int i = 0; i < 32; i++) x[i * 11 + 1] = 1.0f + (float)(2 * i + 1) / 2048.0f; /* ties at 1 */
    x[3] = 65504.0f; x[5] = 65520.0f; x[9] = -1e9f; x[13] = 0.0f; x[15] = -0.0f; x[17] = 6e-8f; x[19] = 2.9e-8f;
    uint16_t *a = talloc(N * 2), *b = talloc(N * 2);
    ref->f32_to_f16(a, x, N);
    kt->f32_to_f16(b, x, N);
    int fails = 0;
    for (int i = 0; i < N && fails < 5; i++)
        if (a[i] != b[i]) { printf("    FAIL f32_to_f16(%.9g): %04x, ref %04x\n", (double)x[i], b[i], a[i]); fails++; }
    /* known halves: 65504 max, 65520 -> inf, 1 + 1/2048 ties to even (1.0), 1 + 3/2048 up, 2^-24 */
    static const struct { float f; uint16_t h; } kn[] = {
        {65504.0f, 0x7bff}, {65520.0f, 0x7c00}, {1.0f + 1.0f / 2048, 0x3c00}, {1.0f + 3.0f / 2048, 0x3c02},
        {5.9604645e-8f, 0x0001}, {-2.0f, 0xc000}, {-0.0f, 0x8000}};
    for (size_t i = 0; i < sizeof kn / sizeof kn[0]; i++) {
        uint16_t h;
        kt->f32_to_f16(&h, &kn[i].f, 1);
        if (h != kn[i].h) { printf("    FAIL f32_to_f16(%.9g) = %04x, want %04x\n", (double)kn[i].f, h, kn[i].h); fails++; }
    }
    free(x); free(a); free(b);
    return fails;
}

/* The Q8_0 cache: k, v quantized by the ref's ggml-exact quantizer (ggml type 8); as f16_case,
 * the q8_0 forward equals the f32 forward on the dequantized values bit for bit, and kt's matches
 * the ref's to TOL_OUT / TOL_LSE. */
static int q8_case(const cke_ktable *kt, const cke_ktable *ref, const acase *c, uint64_t seed) {
    cke_attn_shape s = mkshape(c);
    const int64_t nq = c->T * c->H * c->hd, nk = c->Tk * c->KV * c->hd, nl = c->H * c->T;
    const cke_qtype_ops *q8 = ref->qops[8];
    trng r = {seed};
    float *q = tallocf(nq), *k = tallocf(nk), *v = tallocf(nk);
    tfill_normal(&r, q, nq, c->qscale);
    tfill_normal(&r, k, nk, 1.0f);
    tfill_normal(&r, v, nk, 1.0f);
    void *kq = talloc((size_t)(nk / 32) * 34), *vq = talloc((size_t)(nk / 32) * 34);
    q8->quantize_row(kq, k, nk);
    q8->quantize_row(vq, v, nk);
    q8->dequantize_row(k, kq, nk);
    q8->dequantize_row(v, vq, nk);
    char what[200];
    snprintf(what, sizeof what, "q8_0 T=%lld Tk=%lld H=%lld KV=%lld hd=%lld win=%lld cap=%g", (long long)c->T,
             (long long)c->Tk, (long long)c->H, (long long)c->KV, (long long)c->hd, (long long)c->window, c->softcap);
    int fails = 0;
    float *ro = tallocf(nq), *rl = tallocf(nl), *o = tallocf(nq), *l = tallocf(nl), *o32 = tallocf(nq),
          *l32 = tallocf(nl);
    void *ws = talloc(cke_attn_ws_size(&s, 2));
    ref->attn_fwd_q8_0(ro, rl, q, kq, vq, &s, ws, 1);
    fwd(ref, o32, l32, q, k, v, &s, 1);
    fails += same_bits("ref q8_0 vs ref f32 on dequantized values: out", ro, o32, nq);
    for (int nth = 1; nth <= 2; nth++) {
        char w2[260];
        kt->attn_fwd_q8_0(o, l, q, kq, vq, &s, ws, nth);
        snprintf(w2, sizeof w2, "out %s nth=%d", what, nth);
        fails += tcheck(w2, o, ro, nq, TOL_OUT);
        snprintf(w2, sizeof w2, "lse %s nth=%d", what, nth);
        fails += tcheck(w2, l, rl, nl, TOL_LSE);
        fwd(kt, o32, l32, q, k, v, &s, nth);
        fails += same_bits("q8_0 vs f32 on dequantized values: out", o, o32, nq);
        fails += same_bits("q8_0 vs f32 on dequantized values: lse", l, l32, nl);
    }
    if (fails) printf("    (case %s)\n", what);
    free(q); free(k); free(v); free(kq); free(vq); free(ro); free(rl); free(o); free(l); free(o32); free(l32); free(ws);
    return fails;
}

static int simd_attn_f16(const cke_ktable *kt, const cke_ktable *ref) {
    static const acase cs[] = {
        {1, 1, 2, 2, 64, 0, 0, 1},     {1, 65, 8, 2, 64, 0, 0, 1},   {1, 513, 12, 12, 64, 0, 0, 1}, /* decode */
        {1, 1025, 32, 4, 128, 0, 0, 1}, {1, 200, 4, 4, 17, 0, 0, 1},  {1, 300, 8, 2, 64, 100, 0, 1},
        {17, 17, 4, 2, 17, 0, 0, 1},   {33, 133, 8, 2, 64, 0, 0, 1}, {127, 127, 6, 3, 3, 0, 0, 1}, /* prefill */
        {17, 22, 4, 4, 17, 9, 2.0f, 4.0f}, {33, 33, 4, 2, 64, 0, 50.0f, 4.0f}, {3, 103, 2, 1, 200, 0, 0, 1},
    };
    int fails = f16_write(kt, ref);
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        if (tquick && cs[i].Tk > 513) continue;
        fails += f16_case(kt, ref, &cs[i], 800 + i);
    }
    static const acase q8[] = { /* head_dim a multiple of 32 (Q8_0 blocks) */
        {1, 1, 2, 2, 64, 0, 0, 1},  {1, 513, 12, 12, 64, 0, 0, 1}, {1, 1025, 32, 4, 128, 0, 0, 1},
        {1, 300, 8, 2, 32, 100, 0, 1}, {33, 133, 8, 2, 64, 0, 0, 1}, {17, 22, 4, 4, 96, 9, 2.0f, 4.0f},
    };
    for (size_t i = 0; i < sizeof q8 / sizeof q8[0]; i++) {
        if (tquick && q8[i].Tk > 513) continue;
        fails += q8_case(kt, ref, &q8[i], 900 + i);
    }
    return fails;
}

/* ---- grad mode: the ref backward against central differences of a double forward ---- */

static double fwd_loss_d(const acase *c, const double *q, const double *k, const double *v,
                         const double *R) {
    const int64_t T = c->T, Tk = c->Tk, H = c->H, KV = c->KV, hd = c->hd, rep = H / KV;
    const double scale = 1.0 / sqrt((double)hd);
    double L = 0, *sc = malloc((size_t)Tk * sizeof(double));
    for (int64_t h = 0; h < H; h++)
        for (int64_t t = 0; t < T; t++) {
            int64_t p = Tk - T + t, g = h / rep;
            int64_t lo = (c->window > 0 && p - c->window + 1 > 0) ? p - c->window + 1 : 0;
            double m = -INFINITY, sum = 0;
            for (int64_t j = lo; j <= p; j++) {
                double d = 0;
                for (int64_t i = 0; i < hd; i++) d += q[(t * H + h) * hd + i] * k[(j * KV + g) * hd + i];
                d *= scale;
                if (c->softcap != 0) d = c->softcap * tanh(d / c->softcap);
                sc[j] = d;
                m = d > m ? d : m;
            }
            for (int64_t j = lo; j <= p; j++) sum += (sc[j] = exp(sc[j] - m));
            for (int64_t i = 0; i < hd; i++) {
                double o = 0;
                for (int64_t j = lo; j <= p; j++) o += sc[j] * v[(j * KV + g) * hd + i];
                L += o / sum * R[(t * H + h) * hd + i];
            }
        }
    free(sc);
    return L;
}

static int grad_case(const cke_ktable *ref, const acase *c, uint64_t seed) {
    cke_attn_shape s = mkshape(c);
    const int64_t nq = c->T * c->H * c->hd, nk = c->Tk * c->KV * c->hd;
    const int64_t n[3] = {nq, nk, nk};
    trng r = {seed};
    float *x[3], *R = tallocf(nq), *o = tallocf(nq), *lse = tallocf(c->H * c->T), *gx[3];
    double *xd[3], *Rd = malloc((size_t)nq * sizeof(double));
    for (int a = 0; a < 3; a++) {
        x[a] = tallocf(n[a]);
        tfill_normal(&r, x[a], n[a], a == 0 ? c->qscale : 1.0f);
        gx[a] = tallocf(n[a]);
        xd[a] = malloc((size_t)n[a] * sizeof(double));
        for (int64_t i = 0; i < n[a]; i++) xd[a][i] = x[a][i];
    }
    tfill_normal(&r, R, nq, 1.0f);
    for (int64_t i = 0; i < nq; i++) Rd[i] = R[i];
    fwd(ref, o, lse, x[0], x[1], x[2], &s, 1);
    bwd(ref, gx[0], gx[1], gx[2], R, x[0], x[1], x[2], o, lse, &s, 1);
    int fails = 0;
    static const char *nm[3] = {"dq", "dk", "dv"};
    /* FD in double (step 1e-4, error ~1e-8) vs the float ref backward: float rounding of the
     * forward/backward (~1e-6 relative) dominates */
    const tol_t tol = {1e-9, 2e-5, 1e-4};
    for (int a = 0; a < 3; a++) {
        double *fd = malloc((size_t)n[a] * sizeof(double)), *gd = malloc((size_t)n[a] * sizeof(double));
        for (int64_t i = 0; i < n[a]; i++) {
            double keep = xd[a][i], h = 1e-4;
            xd[a][i] = keep + h;
            double lp = fwd_loss_d(c, xd[0], xd[1], xd[2], Rd);
            xd[a][i] = keep - h;
            double lm = fwd_loss_d(c, xd[0], xd[1], xd[2], Rd);
            xd[a][i] = keep;
            fd[i] = (lp - lm) / (2 * h);
            gd[i] = gx[a][i];
        }
        char what[160];
        snprintf(what, sizeof what, "%s T=%lld Tk=%lld H=%lld KV=%lld hd=%lld win=%lld cap=%g", nm[a],
                 (long long)c->T, (long long)c->Tk, (long long)c->H, (long long)c->KV, (long long)c->hd,
                 (long long)c->window, c->softcap);
        fails += tcheck_d(what, gd, fd, n[a], tol);
        free(fd);
        free(gd);
    }
    for (int a = 0; a < 3; a++) { free(x[a]); free(gx[a]); free(xd[a]); }
    free(R); free(Rd); free(o); free(lse);
    return fails;
}

static int grad_attn(const cke_ktable *ref) {
    acase c1 = {5, 5, 2, 2, 3, 0, 0, 1}, c2 = {4, 7, 2, 2, 3, 0, 0, 1};
    return grad_case(ref, &c1, 11) + grad_case(ref, &c2, 12);
}
static int grad_attn_gqa(const cke_ktable *ref) {
    acase c = {5, 5, 4, 2, 3, 0, 0, 1}, c2 = {3, 6, 3, 1, 4, 0, 0, 1};
    return grad_case(ref, &c, 21) + grad_case(ref, &c2, 22);
}
static int grad_attn_window(const cke_ktable *ref) {
    acase c = {6, 8, 4, 2, 3, 3, 0, 1}, c2 = {5, 5, 2, 1, 2, 1, 0, 1};
    return grad_case(ref, &c, 31) + grad_case(ref, &c2, 32);
}
static int grad_attn_softcap(const cke_ktable *ref) {
    acase c = {5, 6, 4, 2, 3, 0, 1.5f, 2.0f}, c2 = {4, 4, 2, 2, 5, 2, 3.0f, 3.0f};
    return grad_case(ref, &c, 41) + grad_case(ref, &c2, 42);
}
static int grad_attn_decode(const cke_ktable *ref) {
    acase c = {1, 9, 4, 2, 3, 0, 0, 1};
    return grad_case(ref, &c, 51);
}
static int grad_attn_chunk(const cke_ktable *ref) {
    acase c = {3, 8, 4, 2, 4, 0, 0, 1};
    return grad_case(ref, &c, 61);
}

/* ---- torch mode: fixtures from tests/torch/fx_attn.py, case "attn.<name>" ---- */
static int torch_case(const cke_ktable *kt, const fx_file *fx, const char *name) {
    char nm[128];
#define FXN(x) (snprintf(nm, sizeof nm, "attn.%s." x, name), nm)
    cke_attn_shape s = {fx_scalar_i(fx, FXN("T"), -1), fx_scalar_i(fx, FXN("Tk"), -1),
                        fx_scalar_i(fx, FXN("H"), -1), fx_scalar_i(fx, FXN("KV"), -1),
                        fx_scalar_i(fx, FXN("hd"), -1), (float)fx_scalar_f(fx, FXN("scale"), 0),
                        fx_scalar_i(fx, FXN("window"), 0), (float)fx_scalar_f(fx, FXN("softcap"), 0)};
    if (s.T <= 0 || s.Tk <= 0 || s.n_head <= 0 || s.n_kv_head <= 0 || s.head_dim <= 0) {
        printf("    attn.%s: shape scalars missing (regenerate fixtures?)\n", name);
        return 1;
    }
    const int64_t nq = s.T * s.n_head * s.head_dim, nk = s.Tk * s.n_kv_head * s.head_dim;
    const int64_t nl = s.n_head * s.T;
    const float *q = fx_f32(fx, FXN("q"), nq), *k = fx_f32(fx, FXN("k"), nk);
    const float *v = fx_f32(fx, FXN("v"), nk), *dout = fx_f32(fx, FXN("dout"), nq);
    const float *wo = fx_f32(fx, FXN("out"), nq), *wl = fx_f32(fx, FXN("lse"), nl);
    const float *wdq = fx_f32(fx, FXN("dq"), nq), *wdk = fx_f32(fx, FXN("dk"), nk);
    const float *wdv = fx_f32(fx, FXN("dv"), nk);
#undef FXN
    if (!q || !k || !v || !dout || !wo || !wl || !wdq || !wdk || !wdv) return 1;
    float *o = tallocf(nq), *l = tallocf(nl), *dq = tallocf(nq), *dk = tallocf(nk), *dv = tallocf(nk);
    fwd(kt, o, l, q, k, v, &s, 2);
    bwd(kt, dq, dk, dv, dout, q, k, v, o, l, &s, 2);
    int fails = 0;
    char what[160];
    /* float kernels vs float64 torch: float rounding only */
    const tol_t to = {1e-10, 1e-5, 1e-4}, tl = {1e-12, 1e-5, 1e-5}, tg = {1e-9, 1e-4, 1e-3};
    snprintf(what, sizeof what, "attn.%s out", name);
    fails += tcheck(what, o, wo, nq, to);
    snprintf(what, sizeof what, "attn.%s lse", name);
    fails += tcheck(what, l, wl, nl, tl);
    snprintf(what, sizeof what, "attn.%s dq", name);
    fails += tcheck(what, dq, wdq, nq, tg);
    snprintf(what, sizeof what, "attn.%s dk", name);
    fails += tcheck(what, dk, wdk, nk, tg);
    snprintf(what, sizeof what, "attn.%s dv", name);
    fails += tcheck(what, dv, wdv, nk, tg);
    free(o); free(l); free(dq); free(dk); free(dv);
    return fails;
}

static int torch_attn(const cke_ktable *kt, const fx_file *fx) { return torch_case(kt, fx, "basic"); }
static int torch_attn_gqa(const cke_ktable *kt, const fx_file *fx) { return torch_case(kt, fx, "gqa"); }
static int torch_attn_window(const cke_ktable *kt, const fx_file *fx) {
    return torch_case(kt, fx, "window");
}
static int torch_attn_softcap(const cke_ktable *kt, const fx_file *fx) {
    return torch_case(kt, fx, "softcap");
}
static int torch_attn_decode(const cke_ktable *kt, const fx_file *fx) {
    return torch_case(kt, fx, "decode");
}
static int torch_attn_chunk(const cke_ktable *kt, const fx_file *fx) {
    return torch_case(kt, fx, "chunk");
}

const test_op tests_attn[] = {
    {"attn", simd_attn, grad_attn, torch_attn},
    {"attn_gqa", simd_attn_gqa, grad_attn_gqa, torch_attn_gqa},
    {"attn_window", simd_attn_window, grad_attn_window, torch_attn_window},
    {"attn_softcap", simd_attn_softcap, grad_attn_softcap, torch_attn_softcap},
    {"attn_decode", simd_attn_decode, grad_attn_decode, torch_attn_decode},
    {"attn_chunk", simd_attn_chunk, grad_attn_chunk, torch_attn_chunk},
    {"attn_f16", simd_attn_f16, NULL, NULL},
    {0},
};
