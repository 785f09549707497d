/* Per-op profile collector and its JSON writers (see profile.h, docs/PROFILE.md). */
#include "runtime/profile.h"

#include "cke/kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const phase_names[CKE_PROF_PHASES] = {
    [CKE_PROF_PREFILL] = "prefill",
    [CKE_PROF_DECODE] = "decode",
    [CKE_PROF_TRAIN_FORWARD] = "train_forward",
    [CKE_PROF_TRAIN_BACKWARD] = "train_backward",
    [CKE_PROF_OPTIMIZER] = "optimizer",
};

typedef struct {
    double time, flops, bw, ba, bk;
    int64_t calls, rows; /* rows: of the last call (names the kernel path) */
} cell;

typedef struct {
    int op, layer, phase; /* op -1: a call's span (name) */
    const char *name;
    double t0, t1;
} event;

enum { MAX_THR = 64 };
typedef struct {
    int phase, op, layer, n; /* n: threads seen */
    double t[MAX_THR];
} thread_row;

struct cke_prof {
    const ckm_prof_op *ops;
    int n_ops, n_layer, L1; /* L1 = n_layer + 1: layer -1 is index 0 */
    cell *cells;             /* [phase][op][layer + 1] */
    double *wmat;            /* [op][layer + 1]: weight matrix bytes + w_extra per call */
    int phase;
    int64_t calls[CKE_PROF_PHASES], tokens[CKE_PROF_PHASES];
    double wall[CKE_PROF_PHASES];
    event *ev;
    int n_ev, max_ev;
    int64_t dropped;
    double t_origin; /* first timestamp seen: trace time 0 */
    double fwd_end;  /* training: end of the current train_run's last forward op */
    thread_row thr[16]; /* ops with per-thread intervals (parallel regions of model.c) */
    int n_thr;
    int train_bf16; /* the training mode's linear layers run gemm_bf16 */
};

void cke_prof_set_train_bf16(cke_prof *p, int on) { p->train_bf16 = on; }

static int qtype_at(const ckm_prof_op *o, int layer) { return o->qtype_l && layer >= 0 ? o->qtype_l[layer] : o->qtype; }

cke_status cke_prof_new(const ckm_prof_op *ops, int n_ops, int n_layer, int max_events, cke_prof **out, cke_err *err) {
    *out = NULL;
    if (n_ops < 0 || (n_ops > 0 && !ops)) return cke_fail(err, CKE_ERR_ARG, "profile: no op table");
    if (n_layer < 0 || n_layer > 100000) return cke_fail(err, CKE_ERR_ARG, "profile: %d layers", n_layer);
    cke_prof *p = calloc(1, sizeof *p);
    if (!p) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    p->ops = ops;
    p->n_ops = n_ops;
    p->n_layer = n_layer;
    p->L1 = n_layer + 1;
    p->max_ev = max_events > 0 ? max_events : 0;
    p->cells = calloc((size_t)CKE_PROF_PHASES * (size_t)(n_ops ? n_ops : 1) * (size_t)p->L1, sizeof *p->cells);
    p->wmat = calloc((size_t)(n_ops ? n_ops : 1) * (size_t)p->L1, sizeof *p->wmat);
    p->ev = p->max_ev ? malloc((size_t)p->max_ev * sizeof *p->ev) : NULL;
    if (!p->cells || !p->wmat || (p->max_ev && !p->ev)) {
        cke_prof_free(p);
        return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n_ops; i++)
        for (int l = -1; l < n_layer; l++) {
            const ckm_prof_op *o = &ops[i];
            int qt = qtype_at(o, l);
            double m = 0;
            if (o->w_rows > 0 && qt >= 0)
                m = qt == 0 ? 4.0 * (double)o->w_rows * (double)o->w_cols
                            : (double)cke_qtype_row_size(qt, o->w_cols) * (double)o->w_rows;
            p->wmat[(size_t)i * (size_t)p->L1 + (size_t)(l + 1)] = m + o->w_extra;
        }
    p->t_origin = -1;
    *out = p;
    return CKE_OK;
}

void cke_prof_free(cke_prof *p) {
    if (!p) return;
    free(p->cells);
    free(p->wmat);
    free(p->ev);
    free(p);
}

void cke_prof_set_phase(cke_prof *p, cke_prof_phase ph) {
    if (ph >= 0 && ph < CKE_PROF_PHASES) p->phase = ph;
}

static void add_event(cke_prof *p, int op, int layer, const char *name, double t0, double t1) {
    if (p->t_origin < 0) p->t_origin = t0;
    if (p->n_ev >= p->max_ev) { p->dropped++; return; }
    p->ev[p->n_ev++] = (event){.op = op, .layer = layer, .phase = p->phase, .name = name, .t0 = t0, .t1 = t1};
}

static void thread_time(cke_prof *p, int ph, int op, int layer, int th, double dt) {
    thread_row *r = NULL;
    for (int i = 0; i < p->n_thr && !r; i++)
        if (p->thr[i].phase == ph && p->thr[i].op == op && p->thr[i].layer == layer) r = &p->thr[i];
    if (!r && p->n_thr < (int)(sizeof p->thr / sizeof p->thr[0])) {
        r = &p->thr[p->n_thr++];
        memset(r, 0, sizeof *r);
        r->phase = ph, r->op = op, r->layer = layer;
    }
    if (!r || th >= MAX_THR) return;
    r->t[th] += dt;
    if (th + 1 > r->n) r->n = th + 1;
}

void cke_prof_hook(void *ud, int op, int layer, int thread, int64_t T, int64_t pos0, double t0, double t1) {
    cke_prof *p = ud;
    if (!p || op < 0 || op >= p->n_ops || layer < -1 || layer >= p->n_layer || T < 0) return;
    const ckm_prof_op *o = &p->ops[op];
    /* training ops carry their phase; inference ops are the caller's (a one-token prefill chunk
     * runs the decode schedule) */
    int ph = o->mode >= CKE_PROF_TRAIN_FORWARD && o->mode < CKE_PROF_PHASES ? o->mode : p->phase;
    if (thread >= 0) { thread_time(p, ph, op, layer, thread, t1 - t0); return; }
    if (o->mode == CKE_PROF_TRAIN_FORWARD && t1 > p->fwd_end) p->fwd_end = t1;
    cell *c = &p->cells[((size_t)ph * (size_t)p->n_ops + (size_t)op) * (size_t)p->L1 + (size_t)(layer + 1)];
    double pairs = 0, keys = 0;
    if (o->flops_pair > 0 || o->kv_key > 0) { /* causal: row t at position pos0 + t sees pos0 + t + 1 keys */
        int64_t w = o->window_l && layer >= 0 ? o->window_l[layer] : o->window;
        if (w <= 0) {
            pairs = (double)T * (double)pos0 + (double)T * (double)(T + 1) / 2;
            keys = (double)(pos0 + T);
        } else {
            for (int64_t t = 0; t < T; t++) pairs += (double)(pos0 + t + 1 < w ? pos0 + t + 1 : w);
            keys = (double)(pos0 + T < w + T - 1 ? pos0 + T : w + T - 1);
        }
    }
    c->time += t1 - t0;
    c->calls++;
    c->rows = T;
    c->flops += o->flops_row * (double)T + o->flops_pair * pairs;
    c->bw += p->wmat[(size_t)op * (size_t)p->L1 + (size_t)(layer + 1)] + o->w_row * (double)T;
    c->ba += o->act_row * (double)T + o->act_const;
    c->bk += o->kv_row * (double)T + o->kv_key * keys;
    int keep = p->phase;
    p->phase = ph;
    add_event(p, op, layer, NULL, t0, t1);
    p->phase = keep;
}

void cke_prof_train_call(cke_prof *p, int64_t tokens, double t0, double t1) {
    double split = p->fwd_end > t0 && p->fwd_end <= t1 ? p->fwd_end : t1;
    int keep = p->phase;
    p->phase = CKE_PROF_TRAIN_FORWARD;
    cke_prof_call(p, tokens, t0, split);
    p->phase = CKE_PROF_TRAIN_BACKWARD;
    cke_prof_call(p, tokens, split, t1);
    p->phase = keep;
    p->fwd_end = 0;
}

void cke_prof_call(cke_prof *p, int64_t tokens, double t0, double t1) {
    p->calls[p->phase]++;
    p->tokens[p->phase] += tokens;
    p->wall[p->phase] += t1 - t0;
    add_event(p, -1, -1, phase_names[p->phase], t0, t1);
}

/* ------------------------------------------------------------------ kernel names */

/* The table slot each op kind runs (linear, last_row: see cke_prof_kernel_name). */
static const struct { const char *op; size_t slot; const char *fn; } op_slots[] = {
    {"embed", offsetof(cke_ktable, embed_fwd), "embed_fwd"},
    {"posemb", offsetof(cke_ktable, posemb_fwd), "posemb_fwd"},
    {"rmsnorm", offsetof(cke_ktable, rmsnorm_fwd), "rmsnorm_fwd"},
    {"layernorm", offsetof(cke_ktable, layernorm_fwd), "layernorm_fwd"},
    {"rope", offsetof(cke_ktable, rope_fwd), "rope_fwd"},
    {"attention", offsetof(cke_ktable, attn_fwd), "attn_fwd"},
    {"add", offsetof(cke_ktable, add_fwd), "add_fwd"},
    {"scale", offsetof(cke_ktable, scale_fwd), "scale_fwd"},
    {"swiglu", offsetof(cke_ktable, swiglu_fwd), "swiglu_fwd"},
    {"geglu", offsetof(cke_ktable, geglu_fwd), "geglu_fwd"},
    {"gelu", offsetof(cke_ktable, gelu_fwd), "gelu_fwd"},
    {"silu", offsetof(cke_ktable, silu_fwd), "silu_fwd"},
    {"softcap", offsetof(cke_ktable, softcap_fwd), "softcap_fwd"},
    {"xent", offsetof(cke_ktable, xent_fwd_bwd), "xent_fwd_bwd"},
    {"adamw", offsetof(cke_ktable, adamw), "adamw"},
};

/* the backward of each op kind (training, mode 3) */
static const struct { const char *op; size_t slot; const char *fn; } bwd_slots[] = {
    {"embed", offsetof(cke_ktable, embed_bwd), "embed_bwd"},
    {"posemb", offsetof(cke_ktable, posemb_bwd), "posemb_bwd"},
    {"rmsnorm", offsetof(cke_ktable, rmsnorm_bwd), "rmsnorm_bwd"},
    {"layernorm", offsetof(cke_ktable, layernorm_bwd), "layernorm_bwd"},
    {"rope", offsetof(cke_ktable, rope_bwd), "rope_bwd"},
    {"attention", offsetof(cke_ktable, attn_bwd), "attn_bwd"},
    {"swiglu", offsetof(cke_ktable, swiglu_bwd), "swiglu_bwd"},
    {"geglu", offsetof(cke_ktable, geglu_bwd), "geglu_bwd"},
    {"gelu", offsetof(cke_ktable, gelu_bwd), "gelu_bwd"},
    {"silu", offsetof(cke_ktable, silu_bwd), "silu_bwd"},
    {"softcap", offsetof(cke_ktable, softcap_bwd), "softcap_bwd"},
    {"linear", offsetof(cke_ktable, gemm), "f32 gemm (dX, dW)"},
    {"add", offsetof(cke_ktable, axpy), "axpy"},
    {"scale", offsetof(cke_ktable, axpy), "axpy"},
};

#define QL_GEMM_MIN_M 8 /* qlinear.c: below it the decode path (GEMV of quantized activations) */
#define QT_Q8_0 8

/* The path cke_qlinear_fwd takes (src/kernels/qlinear.c) for `rows` rows. */
static void qlinear_name(int qtype, int64_t rows, int64_t K, char *out, size_t n) {
    const cke_ktable *kt = cke_k();
    const cke_qtype_ops *q = qtype > 0 && qtype < CKE_QTYPE_COUNT ? kt->qops[qtype] : NULL;
    if (!q) { snprintf(out, n, "%s qtype %d (unsupported)", cke_isa_name(cke_isa_active()), qtype); return; }
    size_t slot;
    char path[40];
    if (cke_qlinear_panels(kt, qtype, rows, K)) {
        slot = offsetof(cke_qtype_ops, panel_gemm);
        snprintf(path, sizeof path, "column panels 4x32");
    } else if (q->gemm_tile && rows > 1) {
        slot = offsetof(cke_qtype_ops, gemm_tile);
        snprintf(path, sizeof path, "gemm_tile %dx%d", q->tile_nw, q->tile_na);
    } else if (q->dot_rows && !(rows == 1 && q->gemv)) {
        slot = offsetof(cke_qtype_ops, dot_rows);
        snprintf(path, sizeof path, "dot_rows %d-row", rows < 4 ? (int)rows : 4);
    } else if (q->dot_rows || rows < QL_GEMM_MIN_M) {
        slot = rows == 1 && q->gemv ? offsetof(cke_qtype_ops, gemv) : offsetof(cke_qtype_ops, vec_dot);
        snprintf(path, sizeof path, "%s", rows == 1 && q->gemv ? "gemv" : "vec_dot");
    } else if (q->vec_dot_4 && q->vec_dot_type == QT_Q8_0) {
        slot = offsetof(cke_qtype_ops, vec_dot_4);
        snprintf(path, sizeof path, "vec_dot_4 4-row");
    } else {
        snprintf(out, n, "%s %s dequantize + %s f32 gemm", cke_isa_name(cke_kernel_qslot_isa(qtype, offsetof(cke_qtype_ops, dequantize_row))),
                 q->name, cke_isa_name(cke_kernel_slot_isa(offsetof(cke_ktable, gemm))));
        return;
    }
    cke_isa isa = cke_kernel_qslot_isa(qtype, slot);
    /* the avx512 level requires VNNI: its integer dot products use vpdpbusd */
    int vnni = isa == CKE_ISA_AVX512 && q->vec_dot_type != 0;
    snprintf(out, n, "%s %s %s%s", cke_isa_name(isa), q->name, path, vnni ? " vnni" : "");
}

void cke_prof_kernel_name(const ckm_prof_op *o, int qtype, int64_t rows, int train_bf16, char *out, size_t n) {
    if (train_bf16 && !strcmp(o->op, "linear") && (o->mode == CKE_PROF_TRAIN_FORWARD || o->mode == CKE_PROF_TRAIN_BACKWARD)) {
        cke_isa isa = cke_kernel_slot_isa(offsetof(cke_ktable, gemm_bf16));
        snprintf(out, n, "%s bf16 gemm (%s%s)", cke_isa_name(isa), cke_gemm_bf16_form(), o->mode == CKE_PROF_TRAIN_BACKWARD ? "; dX, dW" : "");
        return;
    }
    if (o->mode == CKE_PROF_TRAIN_BACKWARD) {
        for (size_t i = 0; i < sizeof bwd_slots / sizeof bwd_slots[0]; i++)
            if (!strcmp(o->op, bwd_slots[i].op)) {
                snprintf(out, n, "%s %s", cke_isa_name(cke_kernel_slot_isa(bwd_slots[i].slot)), bwd_slots[i].fn);
                return;
            }
        snprintf(out, n, "%s %s backward", cke_isa_name(cke_isa_active()), o->op);
        return;
    }
    if (!strcmp(o->op, "linear")) {
        if (qtype > 0) { qlinear_name(qtype, rows, o->w_cols, out, n); return; }
        snprintf(out, n, "%s f32 gemm%s", cke_isa_name(cke_kernel_slot_isa(offsetof(cke_ktable, gemm))),
                 rows == 1 ? " (1 row: gemv)" : "");
        return;
    }
    if (!strcmp(o->op, "last_row")) { snprintf(out, n, "memmove"); return; }
    for (size_t i = 0; i < sizeof op_slots / sizeof op_slots[0]; i++)
        if (!strcmp(o->op, op_slots[i].op)) {
            snprintf(out, n, "%s %s", cke_isa_name(cke_kernel_slot_isa(op_slots[i].slot)), op_slots[i].fn);
            return;
        }
    snprintf(out, n, "%s %s", cke_isa_name(cke_isa_active()), o->op);
}

/* ------------------------------------------------------------------ rows */

typedef struct {
    int phase, id, layer, op; /* op: index in ops */
    char name[64], kernel[80];
    const char *kind, *shape;
    const cell *c;
    double time, flops, bw, ba, bk;
    int64_t calls, rows;
} row;

/* A phase's rows in execution order: prologue ops, then each layer's ops, then the epilogue. */
static int phase_rows(const cke_prof *p, int ph, row *out, int cap) {
    int n = 0;
    for (int i = 0; i < p->n_ops;) {
        int j = i + 1;
        if (p->ops[i].per_layer)
            while (j < p->n_ops && p->ops[j].per_layer && p->ops[j].mode == p->ops[i].mode) j++;
        int l0 = p->ops[i].per_layer ? 0 : -1, l1 = p->ops[i].per_layer ? p->n_layer : 0;
        int down = p->ops[i].mode == CKE_PROF_TRAIN_BACKWARD; /* the backward runs the layers last to first */
        for (int li = l0; li < l1; li++)
            for (int k = i, l = down && li >= 0 ? l1 - 1 - li : li; k < j; k++) {
                const cell *c = &p->cells[((size_t)ph * (size_t)p->n_ops + (size_t)k) * (size_t)p->L1 + (size_t)(l + 1)];
                if (!c->calls || n >= cap) continue;
                row *r = &out[n];
                memset(r, 0, sizeof *r);
                r->phase = ph;
                r->id = n++;
                r->layer = l;
                r->op = k;
                r->c = c;
                const ckm_prof_op *o = &p->ops[k];
                if (o->per_layer) snprintf(r->name, sizeof r->name, "l%d.%s", l, o->name);
                else snprintf(r->name, sizeof r->name, "%s", o->name);
                cke_prof_kernel_name(o, qtype_at(o, l), c->rows, p->train_bf16, r->kernel, sizeof r->kernel);
                r->kind = o->op;
                r->shape = o->shape;
                r->time = c->time;
                r->flops = c->flops;
                r->bw = c->bw;
                r->ba = c->ba;
                r->bk = c->bk;
                r->calls = c->calls;
                r->rows = c->rows;
            }
        i = j;
    }
    return n;
}

static int max_rows(const cke_prof *p) { return p->n_ops * p->L1 + 1; }

typedef struct {
    double gflops, gbs, intensity, roof, frac;
    const char *bound;
} roofline;

/* The compute ceiling of the kernel that ran: int8 dot products (vpdpbusd) for the quantized
 * paths that use them, BF16 (vdpbf16ps) for BF16 kernels, else the f32 FMA peak (also for the
 * BF16 GEMM's FMA form); each measured in this run (an unmeasured one falls back to f32). */
static double peak_for(const char *kernel, const cke_prof_info *in) {
    if (strstr(kernel, "vnni") && in->peak_int8 > 0) return in->peak_int8;
    if (strstr(kernel, "(FMAs")) return in->peak_f32;
    if (strstr(kernel, "bf16") && in->peak_bf16 > 0) return in->peak_bf16;
    return in->peak_f32;
}

/* Against the kernel's compute peak and the read bandwidth measured in this run. An op without
 * FLOPs (a lookup, a copy) is placed against the bandwidth alone: frac = GB/s / bandwidth. */
static roofline place(double flops, double bytes, double time, const char *kernel, const cke_prof_info *in) {
    double peak = peak_for(kernel, in);
    roofline r = {0};
    r.gflops = time > 0 ? flops / time * 1e-9 : 0;
    r.gbs = time > 0 ? bytes / time * 1e-9 : 0;
    r.intensity = bytes > 0 ? flops / bytes : 0;
    double mem = r.intensity * in->bandwidth_gbs;
    if (flops <= 0) {
        r.roof = 0;
        r.frac = in->bandwidth_gbs > 0 ? r.gbs / in->bandwidth_gbs : 0;
        r.bound = "memory";
        return r;
    }
    r.bound = mem < peak ? "memory" : "compute";
    r.roof = mem < peak ? mem : peak;
    r.frac = r.roof > 0 ? r.gflops / r.roof : 0;
    return r;
}

void cke_prof_phase_times(const cke_prof *p, cke_prof_phase ph, double *wall_s, double *ops_s) {
    double s = 0;
    for (int k = 0; k < p->n_ops; k++)
        for (int l = 0; l < p->L1; l++) s += p->cells[((size_t)ph * (size_t)p->n_ops + (size_t)k) * (size_t)p->L1 + (size_t)l].time;
    *wall_s = p->wall[ph];
    *ops_s = s;
}

/* ------------------------------------------------------------------ JSON */

static void jstr(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}
static void jnum(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.9g", x);
    else fputs("null", f);
}
static void jnum_or_null(FILE *f, double x) { /* < 0: not measured */
    if (x < 0) fputs("null", f);
    else jnum(f, x);
}

/* The shape with the rows the op ran: "[T,64]" -> "[T=12,64]". */
static void jshape(FILE *f, const char *shape, int64_t rows) {
    char buf[600];
    size_t o = 0;
    for (const char *s = shape; *s && o + 24 < sizeof buf; s++) {
        buf[o++] = *s;
        if (*s == 'T' && (s[1] == ',' || s[1] == ']') && s > shape && s[-1] == '[')
            o += (size_t)snprintf(buf + o, sizeof buf - o, "=%lld", (long long)rows);
    }
    buf[o] = 0;
    jstr(f, buf);
}

cke_status cke_prof_write_json(const cke_prof *p, const cke_prof_info *in, const char *path, cke_err *err) {
    row *rows = malloc((size_t)max_rows(p) * sizeof *rows);
    if (!rows) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    FILE *f = fopen(path, "w");
    if (!f) { free(rows); return cke_fail(err, CKE_ERR_IO, "cannot write %s", path); }
    fprintf(f, "{\n  \"schema\": \"cke-profile/1\",\n  \"model\": {\"name\": ");
    jstr(f, in->name);
    fputs(", \"family\": ", f);
    jstr(f, in->family);
    fputs(", \"source\": ", f);
    jstr(f, in->source);
    fputs(", \"dir\": ", f);
    jstr(f, in->dir);
    fprintf(f, ", \"n_layers\": %lld, \"dim\": %lld, \"vocab\": %lld, \"params\": %lld, \"weights_bytes\": %lld, \"ctx\": %lld},\n",
            (long long)in->n_layers, (long long)in->dim, (long long)in->vocab, (long long)in->params,
            (long long)in->weights_bytes, (long long)in->ctx);
    fputs("  \"machine\": {\"cpu\": ", f);
    jstr(f, in->cpu);
    fputs(", \"isa\": ", f);
    jstr(f, in->isa);
    fprintf(f, ", \"threads\": %d, \"peak_gflops\": {\"f32\": ", in->threads);
    jnum_or_null(f, in->peak_f32);
    fputs(", \"bf16\": ", f);
    jnum_or_null(f, in->peak_bf16);
    fputs(", \"int8\": ", f);
    jnum_or_null(f, in->peak_int8);
    fputs("}, \"bandwidth_gbs\": ", f);
    jnum_or_null(f, in->bandwidth_gbs);
    fputs(", \"timer\": \"main thread (omp_get_wtime around each op; the kernels' threads run inside)\"},\n", f);
    fputs("  \"run\": {\"command\": ", f);
    jstr(f, in->command);
    fputs(", \"kind\": ", f);
    jstr(f, in->kind);
    if (in->kind && !strcmp(in->kind, "train")) fprintf(f, ", \"precision\": \"%s\"", p->train_bf16 ? "bf16" : "fp32");
    fprintf(f, ", \"prompt_tokens\": %lld, \"generated_tokens\": %lld, \"steps\": %lld, \"wall_s\": ", (long long)in->prompt_tokens,
            (long long)in->generated_tokens, (long long)in->steps);
    jnum(f, in->wall_s);
    fprintf(f, ", \"trace_events\": %d, \"trace_dropped\": %lld},\n  \"modes\": [", p->n_ev, (long long)p->dropped);
    int first_mode = 1;
    for (int ph = 0; ph < CKE_PROF_PHASES; ph++) {
        if (!p->calls[ph]) continue;
        int n = phase_rows(p, ph, rows, max_rows(p));
        double wall, ops;
        cke_prof_phase_times(p, (cke_prof_phase)ph, &wall, &ops);
        fprintf(f, "%s\n    {\"mode\": \"%s\", \"calls\": %lld, \"tokens\": %lld, \"wall_s\": ", first_mode ? "" : ",",
                phase_names[ph], (long long)p->calls[ph], (long long)p->tokens[ph]);
        first_mode = 0;
        jnum(f, wall);
        fputs(", \"ops_s\": ", f);
        jnum(f, ops);
        fputs(", \"outside_ops_s\": ", f);
        jnum(f, wall - ops);
        fputs(", \"ops\": [", f);
        for (int i = 0; i < n; i++) {
            const row *r = &rows[i];
            double bytes = r->bw + r->ba + r->bk;
            roofline rf = place(r->flops, bytes, r->time, r->kernel, in);
            fprintf(f, "%s\n      {\"id\": %d, \"name\": ", i ? "," : "", r->id);
            jstr(f, r->name);
            fprintf(f, ", \"layer\": %d, \"op\": ", r->layer);
            jstr(f, r->kind);
            fputs(", \"shape\": ", f);
            jshape(f, r->shape, r->rows);
            fputs(", \"kernel\": ", f);
            jstr(f, r->kernel);
            fprintf(f, ", \"calls\": %lld, \"time_s\": ", (long long)r->calls);
            jnum(f, r->time);
            fputs(", \"thread_time_s\": [", f);
            for (int t = 0; t < p->n_thr; t++)
                if (p->thr[t].phase == ph && p->thr[t].op == r->op && p->thr[t].layer == r->layer)
                    for (int k = 0; k < p->thr[t].n; k++) {
                        if (k) fputs(", ", f);
                        jnum(f, p->thr[t].t[k]);
                    }
            fputs("], \"flops\": ", f);
            jnum(f, r->flops);
            fputs(", \"bytes\": ", f);
            jnum(f, bytes);
            fputs(", \"bytes_weights\": ", f);
            jnum(f, r->bw);
            fputs(", \"bytes_act\": ", f);
            jnum(f, r->ba);
            fputs(", \"bytes_kv\": ", f);
            jnum(f, r->bk);
            fputs(", \"gflops\": ", f);
            jnum(f, rf.gflops);
            fputs(", \"gbs\": ", f);
            jnum(f, rf.gbs);
            fputs(", \"intensity\": ", f);
            jnum(f, rf.intensity);
            fputs(", \"roof_gflops\": ", f);
            jnum(f, rf.roof);
            fputs(", \"frac_roof\": ", f);
            jnum(f, rf.frac);
            fprintf(f, ", \"bound\": \"%s\", \"rows\": %lld}", rf.bound, (long long)r->rows);
        }
        fputs("\n    ]}", f);
    }
    fputs("\n  ]\n}\n", f);
    free(rows);
    if (ferror(f) | (fclose(f) != 0)) return cke_fail(err, CKE_ERR_IO, "error writing %s", path);
    return CKE_OK;
}

cke_status cke_prof_write_trace(const cke_prof *p, const char *path, cke_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot write %s", path);
    fputs("{\"traceEvents\": [\n", f);
    /* one track: the main thread, which times every op (the kernels' threads work inside them);
     * each call (a forward pass, a training phase) is a slice the ops nest in */
    fputs("{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": 0, \"args\": {\"name\": \"thread 0 (main)\"}}", f);
    char kern[80];
    for (int i = 0; i < p->n_ev; i++) {
        const event *e = &p->ev[i];
        double ts = (e->t0 - p->t_origin) * 1e6, dur = (e->t1 - e->t0) * 1e6;
        if (e->op >= 0) {
            const ckm_prof_op *o = &p->ops[e->op];
            char nm[80];
            if (o->per_layer) snprintf(nm, sizeof nm, "l%d.%s", e->layer, o->name);
            else snprintf(nm, sizeof nm, "%s", o->name);
            const cell *c = &p->cells[((size_t)e->phase * (size_t)p->n_ops + (size_t)e->op) * (size_t)p->L1 + (size_t)(e->layer + 1)];
            cke_prof_kernel_name(o, qtype_at(o, e->layer), c->rows, p->train_bf16, kern, sizeof kern);
            fprintf(f, ",\n{\"name\": ");
            jstr(f, nm);
            fprintf(f, ", \"cat\": \"%s\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, \"pid\": 1, \"tid\": 0, \"args\": {\"layer\": %d, \"kernel\": ",
                    phase_names[e->phase], ts, dur, e->layer);
            jstr(f, kern);
            fputs(", \"op\": ", f);
            jstr(f, o->op);
            fputs("}}", f);
        } else {
            fprintf(f, ",\n{\"name\": ");
            jstr(f, e->name);
            fprintf(f, ", \"cat\": \"%s\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, \"pid\": 1, \"tid\": 0, \"args\": {\"layer\": -1}}",
                    phase_names[e->phase], ts, dur);
        }
    }
    fprintf(f, "\n], \"displayTimeUnit\": \"ms\", \"otherData\": {\"events_dropped\": %lld}}\n", (long long)p->dropped);
    if (ferror(f) | (fclose(f) != 0)) return cke_fail(err, CKE_ERR_IO, "error writing %s", path);
    return CKE_OK;
}

/* ------------------------------------------------------------------ top table */

typedef struct {
    int phase;
    char name[64], kind[24], kernel[80];
    double time, flops, bytes;
    int layers;
} agg;

static int by_time(const void *a, const void *b) {
    double x = ((const agg *)a)->time, y = ((const agg *)b)->time;
    return (x < y) - (x > y);
}

void cke_prof_print_top(const cke_prof *p, const cke_prof_info *in, int top, FILE *f) {
    int cap = max_rows(p);
    row *rows = malloc((size_t)cap * sizeof *rows);
    agg *ag = malloc((size_t)cap * CKE_PROF_PHASES * sizeof *ag);
    if (!rows || !ag) { free(rows); free(ag); return; }
    int na = 0;
    double total = 0;
    for (int ph = 0; ph < CKE_PROF_PHASES; ph++) {
        int n = phase_rows(p, ph, rows, cap);
        for (int i = 0; i < n; i++) { /* one line per op over its layers: "ffn_out (x22)" */
            const row *r = &rows[i];
            const char *base = r->op >= 0 ? p->ops[r->op].name : r->name;
            agg *a = NULL;
            for (int k = 0; k < na && !a; k++)
                if (ag[k].phase == ph && !strcmp(ag[k].name, base) && !strcmp(ag[k].kernel, r->kernel)) a = &ag[k];
            if (!a) {
                a = &ag[na++];
                memset(a, 0, sizeof *a);
                a->phase = ph;
                snprintf(a->name, sizeof a->name, "%s", base);
                snprintf(a->kind, sizeof a->kind, "%s", r->kind);
                snprintf(a->kernel, sizeof a->kernel, "%s", r->kernel);
            }
            a->time += r->time;
            a->flops += r->flops;
            a->bytes += r->bw + r->ba + r->bk;
            a->layers++;
            total += r->time;
        }
    }
    qsort(ag, (size_t)na, sizeof *ag, by_time);
    fprintf(f, "top %d ops by time (summed over layers; roofline: f32 peak %.1f GFLOPS, int8 %.1f GOPS, bandwidth %.1f GB/s "
               "measured now)\n", top, in->peak_f32, in->peak_int8, in->bandwidth_gbs);
    fprintf(f, "  %-8s %-18s %-10s %-38s %9s %6s %9s %8s %6s %s\n", "mode", "op", "kind", "kernel", "time ms", "share", "GFLOPS",
            "GB/s", "roof", "bound");
    for (int i = 0; i < na && i < top; i++) {
        const agg *a = &ag[i];
        roofline rf = place(a->flops, a->bytes, a->time, a->kernel, in);
        char nm[80];
        if (a->layers > 1) snprintf(nm, sizeof nm, "%s (x%d)", a->name, a->layers);
        else snprintf(nm, sizeof nm, "%s", a->name);
        fprintf(f, "  %-8s %-18s %-10s %-38s %9.3f %5.1f%% %9.2f %8.2f %5.1f%% %s\n", phase_names[a->phase], nm, a->kind, a->kernel,
                a->time * 1e3, total > 0 ? 100 * a->time / total : 0, rf.gflops, rf.gbs, 100 * rf.frac, rf.bound);
    }
    free(rows);
    free(ag);
}
