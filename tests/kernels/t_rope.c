/* Tests of the rope family: simd vs _ref sweeps, finite-difference gradients, PyTorch parity
 * (which also checks cke_rope_freqs / cke_rope_table against torch's float32 table). */
#include "harness.h"
#include "telt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* simd vs ref: each output is a c - b s in FMA (one rounding fewer than the ref): ~1 ulp. */
static const tol_t TOL_ROPE = {1e-13, 1e-6, 1e-6};

static float *make_cs(int64_t P, int64_t rot, double theta) {
    float *freq = tallocf(rot / 2), *cs = tallocf(P * rot);
    cke_rope_freqs(freq, rot, theta);
    cke_rope_table(cs, freq, P, rot);
    free(freq);
    return cs;
}

static int rope_simd(const cke_ktable *kt, const cke_ktable *ref, cke_rope_layout lay) {
    int fails = 0;
    trng r = {3000u + (uint64_t)lay};
    /* (hd, rot): full, partial, odd pair counts (rot/2 = 1, 3, 17, 33) and tails */
    static const int64_t cfg[][2] = {{2, 2}, {6, 6}, {8, 4}, {34, 34}, {64, 64}, {66, 34}, {80, 20},
                                     {128, 128}, {128, 64}, {256, 256}, {96, 66}, {0, 0}};
    const int64_t P = 50, H = 3, T = tquick ? 3 : 7;
    for (int ci = 0; cfg[ci][0]; ci++) {
        int64_t hd = cfg[ci][0], rot = cfg[ci][1], n = T * H * hd;
        float *cs = make_cs(P, rot, 10000.0);
        int32_t *pos = talloc((size_t)T * sizeof(int32_t));
        for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)(trng_u64(&r) % P);
        float *x = tallocf(n), *y1 = tallocf(n), *y2 = tallocf(n);
        tfill_normal(&r, x, n, 1.0f);
        ref->rope_fwd(y1, x, cs, pos, T, H, hd, rot, lay);
        kt->rope_fwd(y2, x, cs, pos, T, H, hd, rot, lay);
        char what[96];
        snprintf(what, sizeof what, "fwd hd=%lld rot=%lld", (long long)hd, (long long)rot);
        fails += tcheck(what, y2, y1, n, TOL_ROPE);
        float *xa = tcopyf(x, n); /* in place */
        kt->rope_fwd(xa, xa, cs, pos, T, H, hd, rot, lay);
        snprintf(what, sizeof what, "fwd in-place hd=%lld rot=%lld", (long long)hd, (long long)rot);
        fails += tcheck(what, xa, y1, n, TOL_ROPE);
        float *d1 = tallocf(n);
        tfill_normal(&r, d1, n, 1.0f);
        float *d2 = tcopyf(d1, n);
        ref->rope_bwd(d1, x, cs, pos, T, H, hd, rot, lay);
        kt->rope_bwd(d2, x, cs, pos, T, H, hd, rot, lay);
        snprintf(what, sizeof what, "bwd hd=%lld rot=%lld", (long long)hd, (long long)rot);
        fails += tcheck(what, d2, d1, n, TOL_ROPE);
        free(cs); free(pos); free(x); free(y1); free(y2); free(xa); free(d1); free(d2);
    }
    return fails;
}

typedef struct {
    const cke_ktable *k;
    float *x, *out, *R, *cs;
    int32_t *pos;
    int64_t T, H, hd, rot;
    cke_rope_layout lay;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    c->k->rope_fwd(c->out, c->x, c->cs, c->pos, c->T, c->H, c->hd, c->rot, c->lay);
    return tloss_dot(c->out, c->R, c->T * c->H * c->hd);
}

/* RoPE is linear: central differences are exact up to float rounding of L (~1e-7 / 2e-2). */
static const tol_t TOL_ROPE_GRAD = {1e-8, 1e-4, 1e-4};

static int rope_grad(const cke_ktable *ref, cke_rope_layout lay) {
    trng r = {4000u + (uint64_t)lay};
    rope_ctx c = {ref, NULL, NULL, NULL, NULL, NULL, 2, 2, 12, 8, lay};
    int64_t n = c.T * c.H * c.hd;
    c.x = tallocf(n); c.out = tallocf(n); c.R = tallocf(n);
    c.cs = make_cs(10, c.rot, 10000.0);
    c.pos = talloc(2 * sizeof(int32_t));
    c.pos[0] = 7; c.pos[1] = 3;
    tfill_normal(&r, c.x, n, 1.0f);
    tfill_normal(&r, c.R, n, 1.0f);
    float *dx = tallocf(n);
    ref->rope_bwd(dx, c.R, c.cs, c.pos, c.T, c.H, c.hd, c.rot, lay);
    int fails = tgrad_fd("dx", c.x, dx, n, rope_loss, &c, 1e-2f, TOL_ROPE_GRAD);
    free(c.x); free(c.out); free(c.R); free(c.cs); free(c.pos); free(dx);
    return fails;
}

/* torch: the float32 table may differ from torch's by an ulp of inv_freq (powf vs torch pow),
 * i.e. ~1 ulp of the angle (p <= 40 rad: ~4e-6); outputs inherit that, gradients too. */
static const tol_t TOL_ROPE_TABLE = {1e-10, 1e-5, 0};
static const tol_t TOL_ROPE_TORCH = {1e-10, 3e-5, 1e-5};

static int rope_torch(const cke_ktable *kt, const fx_file *fx, cke_rope_layout lay) {
    const char *op = lay == CKE_ROPE_INTERLEAVED ? "rope_interleaved" : "rope_halves";
    int fails = 0, c;
    for (c = 0; tfx_has(fx, op, c); c++) {
        char nm[96], what[96];
#define FX(field) (snprintf(nm, sizeof nm, "%s.%d.%s", op, c, field), nm)
        const fx_tensor *tx = fx_get(fx, FX("x")), *tcs = fx_get(fx, FX("cs"));
        if (!tx || tx->ndim != 3 || !tcs) return fails + 1;
        int64_t T = tx->dims[0], H = tx->dims[1], hd = tx->dims[2], n = T * H * hd, P = tcs->dims[0];
        int64_t rot = fx_scalar_i(fx, FX("rot"), 0);
        double theta = fx_scalar_f(fx, FX("theta"), 10000.0);
        const int32_t *pos = fx_i32(fx, FX("pos"), T);
        const float *out = fx_f32(fx, FX("out"), n), *dy = fx_f32(fx, FX("dout"), n);
        const float *dxw = fx_f32(fx, FX("dx"), n);
#undef FX
        if (!pos || !out || !dy || !dxw || rot <= 0) return fails + 1;
        float *cs = make_cs(P, rot, theta);
        snprintf(what, sizeof what, "%s.%d cke_rope_table vs torch", op, c);
        fails += tcheck(what, cs, tcs->data, P * rot, TOL_ROPE_TABLE);
        float *y = tallocf(n), *dx = tallocf(n);
        kt->rope_fwd(y, tx->data, cs, pos, T, H, hd, rot, lay);
        snprintf(what, sizeof what, "%s.%d out", op, c);
        fails += tcheck(what, y, out, n, TOL_ROPE_TORCH);
        kt->rope_bwd(dx, dy, cs, pos, T, H, hd, rot, lay);
        snprintf(what, sizeof what, "%s.%d dx", op, c);
        fails += tcheck(what, dx, dxw, n, TOL_ROPE_TORCH);
        free(cs); free(y); free(dx);
    }
    if (c == 0) { printf("    no %s cases in the fixture file\n", op); fails++; }
    return fails;
}

static int ri_simd(const cke_ktable *kt, const cke_ktable *ref) { return rope_simd(kt, ref, CKE_ROPE_INTERLEAVED); }
static int ri_grad(const cke_ktable *ref) { return rope_grad(ref, CKE_ROPE_INTERLEAVED); }
static int ri_torch(const cke_ktable *kt, const fx_file *fx) { return rope_torch(kt, fx, CKE_ROPE_INTERLEAVED); }
static int rh_simd(const cke_ktable *kt, const cke_ktable *ref) { return rope_simd(kt, ref, CKE_ROPE_HALVES); }
static int rh_grad(const cke_ktable *ref) { return rope_grad(ref, CKE_ROPE_HALVES); }
static int rh_torch(const cke_ktable *kt, const fx_file *fx) { return rope_torch(kt, fx, CKE_ROPE_HALVES); }

const test_op tests_rope[] = {
    {"rope_interleaved", ri_simd, ri_grad, ri_torch},
    {"rope_halves", rh_simd, rh_grad, rh_torch},
    {0},
};
