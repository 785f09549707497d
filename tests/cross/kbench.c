/* kbench: time per call of a few kernels in every table this CPU supports, as a ratio to the
 * _ref. Built for aarch64 and run under qemu by test_aarch64.sh: emulated time only indicates
 * instruction counts (qemu translates each guest instruction; its helpers for NEON integer and
 * float ops cost more than scalar ones), never a hardware speed. Prints one line per kernel:
 *   bench KERNEL  ref T us  neon T us (R x)  neon_dot T us (R x) */
#define _POSIX_C_SOURCE 200809L
#include "cke/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { D = 2048, GM = 32, GN = 64, GK = 256, QK = 4096, TK = 256, HD = 64, NBUF = 1 << 17 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *x, *y, *w, *c, *q, *k, *v, *o;
static void *ws, *wq, *aq;
static cke_attn_shape shape = {.T = 1, .Tk = TK, .n_head = 4, .n_kv_head = 4, .head_dim = HD, .scale = 0.125f};

typedef struct { const char *name; void (*run)(const cke_ktable *t, int qtype); int qtype; } bench;

static void b_gemm(const cke_ktable *t, int qt) {
    (void)qt;
    t->gemm(c, x, w, GM, GN, GK, GK, GK, GN, CKE_NOTRANS, CKE_TRANS, 1.0f, 0.0f, ws, 1);
}
static void b_gemv(const cke_ktable *t, int qt) {
    (void)qt;
    t->gemm(c, x, w, 1, GN * 4, GK, GK, GK, GN * 4, CKE_NOTRANS, CKE_TRANS, 1.0f, 0.0f, ws, 1);
}
static void b_rmsnorm(const cke_ktable *t, int qt) { (void)qt; t->rmsnorm_fwd(y, NULL, x, w, 1, D, 1e-5f, 0.0f); }
static void b_softmax(const cke_ktable *t, int qt) { (void)qt; t->softmax_fwd(y, x, 1, D, -1); }
static void b_silu(const cke_ktable *t, int qt) { (void)qt; t->swiglu_fwd(y, x, w, D); }
static void b_rope(const cke_ktable *t, int qt) {
    (void)qt;
    static float cs[HD];
    static const int32_t pos = 0;
    for (int i = 0; i < HD; i++) cs[i] = i % 2 ? 0.0f : 1.0f;
    t->rope_fwd(y, x, cs, &pos, 1, D / HD, HD, HD, CKE_ROPE_INTERLEAVED);
}
static void b_attn(const cke_ktable *t, int qt) { (void)qt; t->attn_fwd(o, NULL, q, k, v, &shape, ws, 1); }
static void b_dot(const cke_ktable *t, int qt) {
    float s;
    for (int r = 0; r < 16; r++) t->qops[qt]->vec_dot(&s, wq, aq, QK);
}

int main(void) {
    cke_kernels_init();
    x = malloc(sizeof(float) * NBUF), y = malloc(sizeof(float) * NBUF), w = malloc(sizeof(float) * NBUF);
    c = malloc(sizeof(float) * NBUF), q = malloc(sizeof(float) * 4 * HD), o = malloc(sizeof(float) * 4 * HD);
    k = malloc(sizeof(float) * TK * 4 * HD), v = malloc(sizeof(float) * TK * 4 * HD);
    for (int i = 0; i < NBUF; i++) x[i] = sinf((float)i), w[i] = cosf((float)i * 0.7f);
    for (int i = 0; i < TK * 4 * HD; i++) k[i] = sinf((float)i * 0.3f), v[i] = cosf((float)i * 0.1f);
    for (int i = 0; i < 4 * HD; i++) q[i] = sinf((float)i * 1.3f);
    size_t wsz = cke_gemm_ws_size(GM, GN * 4, GK, 1), asz = cke_attn_ws_size(&shape, 1);
    ws = malloc(wsz > asz ? wsz : asz);
    wq = malloc(QK * 2), aq = malloc(QK * sizeof(float)); /* f16 weights, f32 activations at most */
    const bench bs[] = {{"gemm 32x64x256", b_gemm, 0}, {"gemv 1x256x256", b_gemv, 0}, {"rmsnorm 2048", b_rmsnorm, 0},
                        {"softmax 2048", b_softmax, 0}, {"swiglu 2048", b_silu, 0}, {"rope 2048", b_rope, 0},
                        {"attn decode Tk=256", b_attn, 0}, {"vec_dot q8_0 4096 x16", b_dot, 8}, {"vec_dot q4_0 4096 x16", b_dot, 2},
                        {"vec_dot q4_K 4096 x16", b_dot, 12}, {"vec_dot q6_K 4096 x16", b_dot, 14}, {"vec_dot f16 4096 x16", b_dot, 1}};
    const cke_ktable *ref = cke_ktable_for(CKE_ISA_REF);
    for (size_t b = 0; b < sizeof bs / sizeof bs[0]; b++) {
        if (bs[b].qtype) { /* weights and activations of this format, from the same floats */
            const cke_qtype_ops *qo = ref->qops[bs[b].qtype];
            qo->quantize_row(wq, w, QK);
            if (qo->vec_dot_type) ref->qops[qo->vec_dot_type]->quantize_row(aq, x, QK);
            else memcpy(aq, x, QK * sizeof(float));
        }
        double tref = 0;
        printf("bench %-24s", bs[b].name);
        for (int i = 0; i < CKE_ISA_COUNT; i++) {
            const cke_ktable *t = cke_ktable_for((cke_isa)i);
            if (!t) continue;
            double best = 1e30;
            for (int rep = 0; rep < 5; rep++) {
                double t0 = now();
                bs[b].run(t, bs[b].qtype);
                double dt = now() - t0;
                if (dt < best) best = dt;
            }
            if (i == CKE_ISA_REF) { tref = best; printf("  %s %8.1f us", cke_isa_name((cke_isa)i), best * 1e6); }
            else printf("  %s %8.1f us (%.2fx)", cke_isa_name((cke_isa)i), best * 1e6, tref / best);
        }
        printf("\n");
    }
    return 0;
}
