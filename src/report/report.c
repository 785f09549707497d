/* The HTML report (report.h): reads the JSON artifacts with cJSON and writes one page. */
#include "report/report.h"

#include "report/chart.h"
#include "report/html.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_JSON_BYTES ((size_t)1 << 30) /* a profile of a huge model is tens of MB */
#define MAX_LAYER 100000                  /* layer numbers beyond this are lumped together */

typedef struct {
    cJSON *profile, *layout, *ir;
    char mdir[PATH_MAX];          /* where layout.json / ir.json / cke-model.txt were found */
    char kv[12][2][256];          /* cke-model.txt: key, value */
    int nkv;
} rep_in;

/* ------------------------------------------------------------------------- reading */

/* *out = NULL when the file does not exist; an unreadable or invalid file is an error. */
static cke_status read_json(const char *path, cJSON **out, cke_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? CKE_OK : cke_fail(err, CKE_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return cke_fail(err, CKE_ERR_IO, "%s is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > MAX_JSON_BYTES) {
        fclose(f);
        return cke_fail(err, CKE_ERR_FORMAT, "%s: %lld bytes is too large for a report artifact", path, (long long)sb.st_size);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) { fclose(f); return cke_fail(err, CKE_ERR_NOMEM, "out of memory reading %s", path); }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) { free(buf); return cke_fail(err, CKE_ERR_IO, "short read on %s", path); }
    buf[n] = 0;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(buf, &end, 1);
    if (!j) {
        size_t at = end && end >= buf && end <= buf + n ? (size_t)(end - buf) : 0;
        free(buf);
        return cke_fail(err, CKE_ERR_FORMAT, "%s is not valid JSON (near byte %zu)", path, at);
    }
    free(buf);
    *out = j;
    return CKE_OK;
}

static void read_model_txt(rep_in *in, const char *dir) {
    char path[PATH_MAX + 32], line[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/cke-model.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (in->nkv < 12 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *sp = strchr(line, ' ');
        if (!sp) continue;
        *sp = 0;
        snprintf(in->kv[in->nkv][0], sizeof in->kv[0][0], "%s", line);
        snprintf(in->kv[in->nkv][1], sizeof in->kv[0][1], "%s", sp + 1);
        in->nkv++;
    }
    fclose(f);
}

static const char *model_kv(const rep_in *in, const char *key) {
    for (int i = 0; i < in->nkv; i++)
        if (!strcmp(in->kv[i][0], key)) return in->kv[i][1];
    return NULL;
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL; }
static double jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = jget(o, k);
    /* beyond 1e30 a number is garbage (and sums or chart coordinates of it would overflow) */
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && fabs(v->valuedouble) <= 1e30 ? v->valuedouble : def;
}
static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
static const cJSON *jarr(const cJSON *o, const char *k) {
    const cJSON *v = jget(o, k);
    return cJSON_IsArray(v) ? v : NULL;
}
static int jlayer(const cJSON *o) {
    double l = jnum(o, "layer", -1);
    return l < -1 || l > MAX_LAYER ? MAX_LAYER : (int)l;
}

/* Loads DIR's artifacts; the compiled ones from the profile's model.dir when DIR lacks them. */
static cke_status load(rep_in *in, const char *dir, cke_err *err) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/profile.json", dir);
    cke_status st = read_json(path, &in->profile, err);
    if (st) return st;
    const char *mdir = dir;
    snprintf(path, sizeof path, "%s/layout.json", dir);
    const char *pdir = jstr(jget(in->profile, "model"), "dir");
    if (access(path, F_OK) != 0 && pdir && *pdir) mdir = pdir;
    snprintf(in->mdir, sizeof in->mdir, "%s", mdir);
    snprintf(path, sizeof path, "%s/layout.json", mdir);
    if ((st = read_json(path, &in->layout, err))) return st;
    snprintf(path, sizeof path, "%s/ir.json", mdir);
    if ((st = read_json(path, &in->ir, err))) return st;
    read_model_txt(in, mdir);
    if (!in->profile && !in->layout && !in->ir)
        return cke_fail(err, CKE_ERR_MISSING, "%s holds no cke artifacts (profile.json, layout.json or ir.json)", dir);
    return CKE_OK;
}

static void unload(rep_in *in) {
    cJSON_Delete(in->profile);
    cJSON_Delete(in->layout);
    cJSON_Delete(in->ir);
}

/* ------------------------------------------------------------------------- sections */

static void kv_num(FILE *f, const char *key, double v, const char *unit) {
    char b[64], n[32];
    rep_num(n, sizeof n, v);
    snprintf(b, sizeof b, "%s%s%s", n, unit ? " " : "", unit ? unit : "");
    rep_kv(f, key, v < 0 ? NULL : b);
}
static void kv_int(FILE *f, const char *key, double v) {
    char b[64];
    snprintf(b, sizeof b, "%.0f", v);
    rep_kv(f, key, v < 0 ? NULL : b);
}

static double ir_hp(const rep_in *in, const char *k) { return jnum(jget(in->ir, "hparams"), k, -1); }

static void model_card(FILE *f, const rep_in *in) {
    const cJSON *pm = jget(in->profile, "model");
    fputs("<div><h3>Model</h3><dl class=\"kv\">\n", f);
    const char *name = jstr(pm, "name");
    const char *src = jstr(pm, "source") ? jstr(pm, "source") : model_kv(in, "source");
    rep_kv(f, "name", name ? name : src ? (strrchr(src, '/') ? strrchr(src, '/') + 1 : src) : NULL);
    rep_kv(f, "family", jstr(pm, "family") ? jstr(pm, "family") : jstr(in->ir, "family") ? jstr(in->ir, "family") : model_kv(in, "family"));
    rep_kv(f, "source", src);
    rep_kv(f, "format", model_kv(in, "format"));
    kv_int(f, "layers", jnum(pm, "n_layers", ir_hp(in, "n_layer")));
    kv_int(f, "dim", jnum(pm, "dim", ir_hp(in, "dim")));
    double nh = ir_hp(in, "n_head"), nkv = ir_hp(in, "n_kv_head");
    if (nh > 0) {
        char b[64];
        snprintf(b, sizeof b, "%.0f (%.0f KV heads, head dim %.0f)", nh, nkv, ir_hp(in, "head_dim"));
        rep_kv(f, "heads", b);
    }
    kv_int(f, "FFN dim", ir_hp(in, "ffn_dim"));
    kv_int(f, "vocabulary", jnum(pm, "vocab", ir_hp(in, "vocab")));
    double params = jnum(pm, "params", -1);
    if (params >= 0) kv_num(f, "parameters", params, NULL);
    const char *ctx = model_kv(in, "ctx");
    kv_int(f, "context", jnum(pm, "ctx", ctx ? atof(ctx) : -1));
    rep_kv(f, "tokenizer", model_kv(in, "tokenizer"));
    fputs("</dl></div>\n", f);
}

static void plan_card(FILE *f, const rep_in *in) {
    const cJSON *lw = jget(in->layout, "weights"), *kv = jget(in->layout, "kv_cache");
    if (!in->layout) return;
    fputs("<div><h3>Memory plan</h3><dl class=\"kv\">\n", f);
    const cJSON *ts = jarr(lw, "tensors");
    char b[128], h[32];
    rep_bytes(h, sizeof h, jnum(lw, "bytes", 0));
    snprintf(b, sizeof b, "%s in %d tensors", h, ts ? cJSON_GetArraySize(ts) : 0);
    rep_kv(f, "weights", b);
    /* the weight dtypes, with their share of the bytes */
    const cJSON *t;
    char dts[8][16];
    double dbytes[8] = {0};
    int nd = 0;
    cJSON_ArrayForEach(t, ts) {
        const char *d = jstr(t, "dtype");
        if (!d) continue;
        int k = 0;
        while (k < nd && strcmp(dts[k], d)) k++;
        if (k == nd) {
            if (nd == 8) continue;
            snprintf(dts[nd++], sizeof dts[0], "%s", d);
        }
        dbytes[k] += jnum(t, "size", 0);
    }
    char list[256] = "";
    for (int k = 0; k < nd; k++) {
        rep_bytes(h, sizeof h, dbytes[k]);
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s %s", k ? ", " : "", dts[k], h);
    }
    rep_kv(f, "weight dtypes", list);
    rep_bytes(h, sizeof h, jnum(kv, "bytes", 0));
    snprintf(b, sizeof b, "%s (%.0f layers x %.0f positions x %.0f, K and V)", h, jnum(kv, "n_layer", 0), jnum(kv, "ctx", 0),
             jnum(kv, "kv_dim", 0));
    rep_kv(f, "KV cache", b);
    const cJSON *m;
    cJSON_ArrayForEach(m, jarr(in->layout, "modes")) {
        double a = jnum(m, "arena_bytes", 0), s = jnum(m, "sum_of_buffers", 0);
        char key[64];
        rep_bytes(h, sizeof h, a);
        snprintf(key, sizeof key, "%.20s arena", jstr(m, "mode") ? jstr(m, "mode") : "?");
        snprintf(b, sizeof b, "%s for T = %.0f (%.0f%% saved by reuse), %.0f threads planned", h, jnum(m, "T", 0),
                 s > 0 ? 100 * (1 - a / s) : 0, jnum(m, "threads", 0));
        rep_kv(f, key, b);
    }
    fputs("</dl></div>\n", f);
}

static rep_limits limits_of(const rep_in *in) {
    const cJSON *mc = jget(in->profile, "machine"), *pk = jget(mc, "peak_gflops");
    rep_limits l = {.f32 = jnum(pk, "f32", 0), .bf16 = jnum(pk, "bf16", 0), .int8 = jnum(pk, "int8", 0),
                    .bw = jnum(mc, "bandwidth_gbs", 0)};
    return l;
}

static void machine_card(FILE *f, const rep_in *in) {
    const cJSON *mc = jget(in->profile, "machine");
    if (!mc) return;
    rep_limits l = limits_of(in);
    fputs("<div><h3>Machine (limits measured in this run)</h3><dl class=\"kv\">\n", f);
    rep_kv(f, "CPU", jstr(mc, "cpu"));
    rep_kv(f, "kernel ISA", jstr(mc, "isa"));
    kv_int(f, "threads", jnum(mc, "threads", -1));
    kv_num(f, "f32 FMA peak", l.f32 > 0 ? l.f32 : -1, "GFLOPS");
    kv_num(f, "bf16 peak", l.bf16 > 0 ? l.bf16 : -1, "GFLOPS");
    kv_num(f, "int8 peak", l.int8 > 0 ? l.int8 : -1, "GOPS");
    kv_num(f, "memory bandwidth", l.bw > 0 ? l.bw : -1, "GB/s");
    if (l.bw > 0 && l.f32 > 0) kv_num(f, "f32 ridge point", l.f32 / l.bw, "FLOP/B");
    fputs("</dl></div>\n", f);
}

/* dir: where trace.json would sit beside the page (NULL: the page is elsewhere, no link) */
static void run_card(FILE *f, const rep_in *in, const char *dir) {
    const cJSON *r = jget(in->profile, "run");
    if (!r) return;
    fputs("<div><h3>Run</h3><dl class=\"kv\">\n", f);
    rep_kv(f, "command", jstr(r, "command"));
    rep_kv(f, "kind", jstr(r, "kind"));
    kv_int(f, "prompt tokens", jnum(r, "prompt_tokens", -1));
    kv_int(f, "generated tokens", jnum(r, "generated_tokens", -1));
    if (jnum(r, "steps", 0) > 0) kv_int(f, "training steps", jnum(r, "steps", -1));
    char b[32];
    rep_time(b, sizeof b, jnum(r, "wall_s", -1));
    rep_kv(f, "wall time", b);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/trace.json", dir ? dir : ".");
    if (dir && access(path, R_OK) == 0)
        fputs("<dt>timeline</dt><dd><a href=\"trace.json\">trace.json</a> beside this page: open it in "
              "ui.perfetto.dev or chrome://tracing</dd>\n", f);
    fputs("</dl></div>\n", f);
}

static int count_objects(const cJSON *arr) {
    int n = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) n += cJSON_IsObject(x);
    return n;
}

static int is_train_mode(const char *m) {
    return m && (!strcmp(m, "train_forward") || !strcmp(m, "train_backward") || !strcmp(m, "optimizer"));
}

static void modes_summary(FILE *f, const rep_in *in) {
    const cJSON *modes = jarr(in->profile, "modes"), *m;
    if (!modes) return;
    fputs("<section id=\"time\"><h2>Where the time went</h2>\n<table><thead><tr><th>mode</th><th class=\"n\">calls</th>"
          "<th class=\"n\">tokens</th><th class=\"n\">wall</th><th class=\"n\">in ops</th><th class=\"n\">outside ops</th>"
          "<th class=\"n\">ops / wall</th><th class=\"n\">tokens/s</th><th class=\"n\">ops</th></tr></thead><tbody>\n",
          f);
    rep_bar split[3];
    int ns = 0;
    cJSON_ArrayForEach(m, modes) {
        if (!cJSON_IsObject(m)) continue;
        double w = jnum(m, "wall_s", 0), o = jnum(m, "ops_s", 0), out = jnum(m, "outside_ops_s", w - o);
        char a[32], b[32], c[32];
        rep_time(a, sizeof a, w), rep_time(b, sizeof b, o), rep_time(c, sizeof c, out);
        fputs("<tr><td>", f);
        rep_esc(f, jstr(m, "mode"));
        const cJSON *ops = jarr(m, "ops");
        fprintf(f, "</td><td class=\"n\">%.0f</td><td class=\"n\">%.0f</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                   "<td class=\"n\">%s</td><td class=\"n\">%.1f%%</td><td class=\"n\">%.1f</td><td class=\"n\">%d</td></tr>\n",
                jnum(m, "calls", 0), jnum(m, "tokens", 0), a, b, c, w > 0 ? 100 * o / w : 0,
                w > 0 ? jnum(m, "tokens", 0) / w : 0, count_objects(ops));
        const char *mn = jstr(m, "mode");
        if (is_train_mode(mn) && ns < 3)
            split[ns++] = (rep_bar){!strcmp(mn, "train_forward") ? "forward" : !strcmp(mn, "train_backward") ? "backward" : "optimizer", w};
    }
    fputs("</tbody></table>\n<p class=\"note\">in ops: the sum of the timed ops (the main thread's view); outside ops: "
          "the rest of the wall time (dispatch, sampling, ...).</p>\n",
          f);
    if (ns) {
        fputs("<h3>Training step: forward, backward, optimizer</h3>\n", f);
        rep_svg_bars(f, "wall time per phase (all steps)", split, ns, "time");
    }
    fputs("</section>\n", f);
}

/* Sums op times by a key (op kind or layer) in first-seen order. */
typedef struct {
    char label[48];
    double t;
    int layer;
} agg;

/* a holds cap + 1 entries: past cap distinct labels, the rest is summed into one "other" */
static int agg_add(agg *a, int n, int cap, const char *label, int layer, double t) {
    for (int i = 0; i < n; i++)
        if (!strcmp(a[i].label, label)) { a[i].t += t; return n; }
    if (n >= cap) {
        if (n == cap) snprintf(a[n].label, sizeof a[n].label, "other"), a[n].t = 0, a[n].layer = MAX_LAYER, n++;
        a[cap].t += t;
        return n;
    }
    snprintf(a[n].label, sizeof a[n].label, "%s", label);
    a[n].t = t, a[n].layer = layer;
    return n + 1;
}

static int cmp_agg_t(const void *x, const void *y) {
    const agg *a = x, *b = y;
    return a->t < b->t ? 1 : a->t > b->t ? -1 : 0;
}
static int cmp_agg_layer(const void *x, const void *y) {
    const agg *a = x, *b = y;
    return (a->layer > b->layer) - (a->layer < b->layer);
}

#define AGG_CAP 64

static void bars_of(FILE *f, agg *a, int n, const char *title, const char *xlabel) {
    rep_bar b[AGG_CAP + 1];
    for (int i = 0; i < n; i++) b[i] = (rep_bar){a[i].label, a[i].t};
    rep_svg_bars(f, title, b, n, xlabel);
}

/* pct_digits < 0: a plain number; else a percentage with that many decimals */
static void cell_num(FILE *f, double v, int pct_digits) {
    char b[32];
    if (pct_digits >= 0) snprintf(b, sizeof b, "%.*f%%", pct_digits, 100 * v);
    else rep_num(b, sizeof b, v);
    fprintf(f, "<td class=\"n\" data-v=\"%.6g\">%s</td>", isfinite(v) ? v : 0, b);
}

static void cell_str(FILE *f, const char *s) {
    fputs("<td>", f);
    rep_esc(f, s);
    fputs("</td>", f);
}

/* a long cell (shapes, kernels) that may wrap */
static void cell_wrap(FILE *f, const char *s) {
    fputs("<td class=\"w\">", f);
    rep_esc(f, s);
    fputs("</td>", f);
}

static void mode_section(FILE *f, const rep_in *in, const cJSON *m, int idx) {
    const cJSON *ops = jarr(m, "ops"), *o;
    int n = count_objects(ops);
    const char *mn = jstr(m, "mode");
    double total = 0;
    cJSON_ArrayForEach(o, ops) total += cJSON_IsObject(o) ? fmax(0, jnum(o, "time_s", 0)) : 0;
    fprintf(f, "<section id=\"mode-%d\"><h2>", idx);
    rep_esc(f, mn ? mn : "?");
    char a[32], b[32];
    rep_time(a, sizeof a, jnum(m, "wall_s", 0));
    rep_time(b, sizeof b, total);
    fprintf(f, ": %d ops</h2>\n<p class=\"note\">wall %s, %s in ops, %.0f calls, %.0f tokens</p>\n", n, a, b,
            jnum(m, "calls", 0), jnum(m, "tokens", 0));

    /* time per op kind (largest first) and per layer (in order) */
    agg kinds[AGG_CAP + 1], layers[AGG_CAP + 1];
    int nk = 0, nl = 0;
    cJSON_ArrayForEach(o, ops) {
        if (!cJSON_IsObject(o)) continue; /* a broken entry is no op */
        double t = fmax(0, jnum(o, "time_s", 0));
        int l = jlayer(o);
        char lb[48];
        if (l < 0) snprintf(lb, sizeof lb, "outside layers");
        else if (l >= MAX_LAYER) snprintf(lb, sizeof lb, "other");
        else snprintf(lb, sizeof lb, "layer %d", l);
        nk = agg_add(kinds, nk, AGG_CAP, jstr(o, "op") ? jstr(o, "op") : "?", 0, t);
        nl = agg_add(layers, nl, AGG_CAP, lb, l < 0 ? INT_MAX : l, t);
    }
    qsort(kinds, (size_t)nk, sizeof *kinds, cmp_agg_t);
    qsort(layers, (size_t)nl, sizeof *layers, cmp_agg_layer);
    fputs("<div class=\"charts\">\n", f);
    bars_of(f, kinds, nk, "time per op kind", "time (summed over calls and layers)");
    bars_of(f, layers, nl, "time per layer", "time (summed over calls)");
    fputs("</div>\n", f);

    /* the roofline: one point per op */
    rep_point *pts = n ? calloc((size_t)n, sizeof *pts) : NULL;
    int np = 0;
    if (pts) cJSON_ArrayForEach(o, ops) {
        if (!cJSON_IsObject(o)) continue; /* a broken entry is no op */
            pts[np++] = (rep_point){.name = jstr(o, "name"), .op = jstr(o, "op"), .kernel = jstr(o, "kernel"), .layer = jlayer(o),
                                    .intensity = jnum(o, "intensity", 0), .gflops = jnum(o, "gflops", 0),
                                    .gbs = jnum(o, "gbs", 0), .frac_roof = jnum(o, "frac_roof", 0),
                                    .time_s = jnum(o, "time_s", 0)};
        }
    rep_limits lim = limits_of(in);
    char title[96];
    snprintf(title, sizeof title, "roofline: %.40s (one point per op)", mn ? mn : "?");
    rep_svg_roofline(f, title, &lim, pts, np);
    int above = 0;
    for (int i = 0; i < np; i++) above += pts[i].frac_roof > 1.05;
    if (above)
        fprintf(f, "<p class=\"note\">%d op%s above the roof: the roof is the measured DRAM bandwidth, and an op whose "
                   "working set stays in the caches (small weights, repeated calls) can move its bytes faster than that.</p>\n",
                above, above > 1 ? "s are" : " is");
    free(pts);

    /* the op table */
    fputs("<h3>Ops (click a column to sort)</h3>\n<div class=\"scroll\"><table class=\"sortable ops\"><thead><tr>"
          "<th class=\"n\" data-t=\"n\">#</th><th>name</th><th class=\"n\" data-t=\"n\">layer</th><th>op</th><th>shape</th>"
          "<th>kernel</th><th class=\"n\" data-t=\"n\">calls</th><th class=\"n\" data-t=\"n\">time</th>"
          "<th class=\"n\" data-t=\"n\">% of mode</th><th class=\"n\" data-t=\"n\">GFLOPS</th><th class=\"n\" data-t=\"n\">GB/s</th>"
          "<th class=\"n\" data-t=\"n\">FLOP/B</th><th class=\"n\" data-t=\"n\">% of roof</th><th>bound</th></tr></thead><tbody>\n",
          f);
    int row = 0;
    cJSON_ArrayForEach(o, ops) {
        if (!cJSON_IsObject(o)) continue; /* a broken entry is no op */
        double t = jnum(o, "time_s", 0);
        char tb[32];
        rep_time(tb, sizeof tb, t);
        fprintf(f, "<tr><td class=\"n\">%.0f</td>", jnum(o, "id", row));
        cell_str(f, jstr(o, "name"));
        fprintf(f, "<td class=\"n\">%d</td>", jlayer(o));
        cell_str(f, jstr(o, "op"));
        cell_wrap(f, jstr(o, "shape"));
        cell_wrap(f, jstr(o, "kernel"));
        fprintf(f, "<td class=\"n\">%.0f</td><td class=\"n\" data-v=\"%.6g\">%s</td>", jnum(o, "calls", 0), t, tb);
        cell_num(f, total > 0 ? t / total : 0, 1);
        cell_num(f, jnum(o, "gflops", 0), -1);
        cell_num(f, jnum(o, "gbs", 0), -1);
        cell_num(f, jnum(o, "intensity", 0), -1);
        cell_num(f, jnum(o, "frac_roof", 0), 0);
        const char *bd = jstr(o, "bound");
        int known = bd && (!strcmp(bd, "memory") || !strcmp(bd, "compute"));
        fprintf(f, "<td><span class=\"tag %s\">", known ? bd : "");
        rep_esc(f, bd);
        fputs("</span></td></tr>\n", f);
        row++;
    }
    fputs("</tbody></table></div>\n</section>\n", f);
}

static void memory_section(FILE *f, const rep_in *in) {
    const cJSON *m, *bj;
    if (!in->layout) return;
    fputs("<section id=\"memory\"><h2>Memory map</h2>\n<p class=\"note\">Activations of one pass, from layout.json: "
          "each buffer is a rectangle from its first write to its last read (x) at its offset in the arena (y). "
          "Rectangles on the same band at different times are the reuse the planner found; the layer body is planned "
          "once and runs for every layer. Hover a buffer for its name, shape and offset.</p>\n",
          f);
    cJSON_ArrayForEach(m, jarr(in->layout, "modes")) {
        const cJSON *bufs = jarr(m, "buffers");
        int n = bufs ? cJSON_GetArraySize(bufs) : 0, k = 0;
        rep_buf *b = n ? calloc((size_t)n, sizeof *b) : NULL;
        if (b) cJSON_ArrayForEach(bj, bufs) {
                double fi = jnum(bj, "first", 0), la = jnum(bj, "last", 0);
                if (fi < 0 || fi > 1e6) fi = 0;
                if (la < fi || la > 1e6) la = fi;
                b[k++] = (rep_buf){.name = jstr(bj, "name"), .shape = jstr(bj, "shape"), .shares = jstr(bj, "shares"),
                                   .offset = fmax(0, jnum(bj, "offset", 0)), .size = fmax(0, jnum(bj, "size", 0)),
                                   .first = (int)fi, .last = (int)la, .pinned = cJSON_IsTrue(jget(bj, "pinned"))};
            }
        double arena = jnum(m, "arena_bytes", 0), sum = jnum(m, "sum_of_buffers", 0);
        char title[160], ab[32], sb[32];
        rep_bytes(ab, sizeof ab, arena);
        rep_bytes(sb, sizeof sb, sum);
        snprintf(title, sizeof title, "%.20s (T = %.0f): %d buffers in %s (%s without reuse, %.0f%% saved)",
                 jstr(m, "mode") ? jstr(m, "mode") : "?", jnum(m, "T", 0), k, ab, sb, sum > 0 ? 100 * (1 - arena / sum) : 0);
        rep_svg_memmap(f, title, b, k, arena);
        free(b);
    }
    fputs("</section>\n", f);
}

static const char *weight_dtype(const rep_in *in, const char *name) {
    const cJSON *t;
    cJSON_ArrayForEach(t, jarr(jget(in->layout, "weights"), "tensors")) {
        const char *n = jstr(t, "name");
        if (n && name && !strcmp(n, name)) return jstr(t, "dtype");
    }
    return NULL;
}

static const char *value_shape(const rep_in *in, const char *name) {
    const cJSON *v;
    cJSON_ArrayForEach(v, jarr(in->ir, "values")) {
        const char *n = jstr(v, "name");
        if (n && name && !strcmp(n, name)) return jstr(v, "shape");
    }
    return NULL;
}

/* The planned op list from ir.json: what will run, with each op's weight dtype (which picks its
 * kernel family: f32 GEMM, a block format's dot_rows, ...). */
static void plan_section(FILE *f, const rep_in *in, int open) {
    const cJSON *nodes = jarr(in->ir, "nodes"), *nd;
    if (!nodes) return;
    fprintf(f, "<section id=\"plan\"><details%s><summary><h2 style=\"display:inline\">Planned ops (%d)</h2></summary>\n"
               "<p class=\"note\">From ir.json and layout.json: each op of the graph, its output shape and the dtype of "
               "its weight, which selects the kernel (f32 GEMM, a block format's dot_rows, ...); the SIMD variant is "
               "picked at run time for this CPU (CKE_ISA forces one). The layer body runs once per layer.</p>\n"
               "<div class=\"scroll\"><table class=\"sortable plan\"><thead><tr><th class=\"n\" data-t=\"n\">#</th>"
               "<th>section</th><th class=\"n\" data-t=\"n\">layer</th><th>op</th><th>output</th><th>shape</th><th>inputs</th>"
               "<th>weight dtype</th></tr></thead><tbody>\n",
            open ? " open" : "", cJSON_GetArraySize(nodes));
    int i = 0;
    cJSON_ArrayForEach(nd, nodes) {
        fprintf(f, "<tr><td class=\"n\">%d</td>", i++);
        cell_str(f, jstr(nd, "section"));
        fprintf(f, "<td class=\"n\">%d</td>", jlayer(nd));
        cell_str(f, jstr(nd, "op"));
        cell_str(f, jstr(nd, "out"));
        cell_str(f, value_shape(in, jstr(nd, "out")));
        fputs("<td>", f);
        const cJSON *x;
        const char *wd = NULL;
        int k = 0;
        cJSON_ArrayForEach(x, jarr(nd, "in")) {
            if (!cJSON_IsString(x)) continue;
            if (k++) fputs(", ", f);
            rep_esc(f, x->valuestring);
            const char *d = weight_dtype(in, x->valuestring);
            if (d && !wd) wd = d;
        }
        fputs("</td>", f);
        cell_str(f, wd ? wd : "");
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div></details></section>\n", f);
}

static void title_of(const rep_in *in, const char *what, char *buf, size_t n) {
    const cJSON *pm = jget(in->profile, "model");
    const char *name = jstr(pm, "name"), *src = model_kv(in, "source");
    if (!name && src) name = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
    snprintf(buf, n, "cke %s: %s", what, name ? name : "model");
}

/* Writes to PATH.tmp and renames: a reader never sees half a page. */
static cke_status open_out(const char *path, char *tmp, size_t n, FILE **f, cke_err *err) {
    if ((size_t)snprintf(tmp, n, "%s.tmp", path) >= n) return cke_fail(err, CKE_ERR_ARG, "path too long: %s", path);
    *f = fopen(tmp, "w");
    return *f ? CKE_OK : cke_fail(err, CKE_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
}

static cke_status close_out(FILE *f, const char *tmp, const char *path, cke_err *err) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) { remove(tmp); return cke_fail(err, CKE_ERR_IO, "error writing %s", tmp); }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return cke_fail(err, CKE_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    return CKE_OK;
}

cke_status cke_report_write(const char *dir, const char *out_html, cke_err *err) {
    rep_in in;
    memset(&in, 0, sizeof in);
    char out[PATH_MAX + 32], tmp[PATH_MAX + 64], title[256];
    cke_status st = load(&in, dir, err);
    if (st) { unload(&in); return st; }
    const char *beside = out_html ? NULL : dir; /* the default page sits beside trace.json */
    if (!out_html) snprintf(out, sizeof out, "%s/report.html", dir), out_html = out;
    FILE *f = NULL;
    if ((st = open_out(out_html, tmp, sizeof tmp, &f, err))) { unload(&in); return st; }
    title_of(&in, in.profile ? "profile" : "compiled model", title, sizeof title);
    rep_page_begin(f, title, in.profile ? "what ran: per-op time against this machine's limits"
                                        : "what will run: the model, its memory plan and its ops");
    fputs("<section id=\"summary\"><h2>Summary</h2><div class=\"grid\">\n", f);
    model_card(f, &in);
    machine_card(f, &in);
    run_card(f, &in, beside);
    plan_card(f, &in);
    fputs("</div></section>\n", f);
    if (in.profile) {
        modes_summary(f, &in);
        const cJSON *m;
        int i = 0;
        cJSON_ArrayForEach(m, jarr(in.profile, "modes")) if (cJSON_IsObject(m)) mode_section(f, &in, m, i++);
    }
    memory_section(f, &in);
    plan_section(f, &in, !in.profile);
    rep_page_end(f);
    unload(&in);
    return close_out(f, tmp, out_html, err);
}

/* ---------------------------------------------------------------------------- parity */

static void parity_chart(FILE *f, const cke_parity_table *t, double tol) {
    /* relative error per compared value in execution order, log scale, the tolerance as a line */
    const double W = 820, H = 260, L = 64, T = 30, pw = W - L - 20, ph = H - T - 44;
    double lo = log10(tol) - 3, hi = log10(tol) + 1;
    for (int64_t i = 0; i < t->n; i++) {
        double r = t->rows[i].max_rel;
        if (r > 0 && isfinite(r)) lo = fmin(lo, floor(log10(r))), hi = fmax(hi, ceil(log10(r)));
        else if (!isfinite(r)) hi = fmax(hi, log10(tol) + 3);
    }
    if (lo < -12) lo = -12;
    fprintf(f, "<svg class=\"parity\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" role=\"img\">\n"
               "<text class=\"t\" x=\"4\" y=\"18\">relative error per compared value, in execution order (log)</text>\n",
            W, H, W);
    int es = (int)ceil((hi - lo) / 8) > 1 ? (int)ceil((hi - lo) / 8) : 1; /* at most ~8 labeled decades */
    for (int e = (int)lo; e <= (int)hi; e += es) {
        double py = T + ph * (1 - (e - lo) / (hi - lo));
        fprintf(f, "<line class=\"gl\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" "
                   "text-anchor=\"end\">1e%d</text>\n",
                L, py, L + pw, py, L - 5, py + 4, e);
    }
    double ty = T + ph * (1 - (log10(tol) - lo) / (hi - lo));
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c81e1e\" stroke-dasharray=\"5 3\"/>"
               "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" style=\"fill:#c81e1e\">tolerance %.1e</text>\n",
            L, ty, L + pw, ty, L + pw - 4, ty - 4, tol);
    for (int64_t i = 0; i < t->n; i++) {
        const cke_parity_row *r = &t->rows[i];
        double v = r->max_rel > 0 ? (isfinite(r->max_rel) ? log10(r->max_rel) : hi) : lo;
        if (v < lo) v = lo;
        double px = L + pw * (t->n > 1 ? (double)i / (double)(t->n - 1) : 0.5), py = T + ph * (1 - (v - lo) / (hi - lo));
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\"><title>", px, py, r->bad ? "#c81e1e" : "#4e79a7");
        rep_esc(f, r->name);
        fprintf(f, " (layer %d), positions %lld..%lld: max rel %.3e</title></circle>\n", r->layer, (long long)r->pos0,
                (long long)r->pos1, r->max_rel);
    }
    fprintf(f, "<rect class=\"axis\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n"
               "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">compared values (%lld), first to last</text>\n</svg>\n",
            L, T, pw, ph, L + pw / 2, H - 10, (long long)t->n);
}

cke_status cke_report_parity_write(const char *out_html, const char *model_dir, const char *ref_path,
                                   const cke_parity_table *t, const cke_parity_result *res, double tol, cke_err *err) {
    rep_in in;
    memset(&in, 0, sizeof in);
    char tmp[PATH_MAX + 64], title[256];
    /* the model summary is a courtesy: a compiled dir without ir.json still gets its table */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/ir.json", model_dir);
    cke_err ignore;
    if (read_json(path, &in.ir, &ignore)) in.ir = NULL;
    snprintf(path, sizeof path, "%s/layout.json", model_dir);
    if (read_json(path, &in.layout, &ignore)) in.layout = NULL;
    read_model_txt(&in, model_dir);
    FILE *f = NULL;
    cke_status st = open_out(out_html, tmp, sizeof tmp, &f, err);
    if (st) { unload(&in); return st; }
    title_of(&in, "parity", title, sizeof title);
    rep_page_begin(f, title, "every traced IR value against the reference: where did the first drift occur");
    fputs("<section id=\"summary\"><h2>Summary</h2><div class=\"grid\">\n", f);
    model_card(f, &in);
    fputs("<div><h3>Comparison</h3><dl class=\"kv\">\n", f);
    rep_kv(f, "reference trace", ref_path);
    char b[256];
    snprintf(b, sizeof b, "%.1e (max |a - b| / max |b| over a value's rows)", tol);
    rep_kv(f, "tolerance", b);
    kv_int(f, "values compared", (double)res->compared);
    kv_int(f, "traced values not in the reference", (double)res->missing);
    snprintf(b, sizeof b, "%.3e", res->worst_rel);
    rep_kv(f, "worst relative error", b);
    fputs("</dl></div>\n</div>\n", f);
    if (res->diverged) {
        fputs("<p class=\"fail\" id=\"verdict\">first divergence: ", f);
        rep_esc(f, res->name);
        fprintf(f, " (layer %d) at position %lld: max abs error %.3e, relative %.3e</p>\n", res->layer, (long long)res->pos,
                res->max_abs, res->max_rel);
    } else {
        fprintf(f, "<p class=\"pass\" id=\"verdict\">parity: all %lld values match within relative %.1e</p>\n",
                (long long)res->compared, tol);
    }
    fputs("</section>\n<section id=\"values\"><h2>Values</h2>\n", f);
    parity_chart(f, t, tol);
    fputs("<h3>Per value (click a column to sort; the first divergence is highlighted)</h3>\n<div class=\"scroll\">"
          "<table class=\"sortable parity\"><thead><tr><th class=\"n\" data-t=\"n\">#</th><th>name</th>"
          "<th class=\"n\" data-t=\"n\">layer</th><th class=\"n\" data-t=\"n\">positions</th>"
          "<th class=\"n\" data-t=\"n\">worst at</th><th class=\"n\" data-t=\"n\">max abs</th>"
          "<th class=\"n\" data-t=\"n\">max rel</th><th>result</th></tr></thead><tbody>\n",
          f);
    int first_done = 0;
    for (int64_t i = 0; i < t->n; i++) {
        const cke_parity_row *r = &t->rows[i];
        int first = r->bad && !first_done;
        first_done |= first;
        fprintf(f, "<tr%s><td class=\"n\">%lld</td>", first ? " class=\"first\" id=\"first-divergence\"" : r->bad ? " class=\"bad\"" : "",
                (long long)i);
        cell_str(f, r->name);
        fprintf(f, "<td class=\"n\">%d</td><td class=\"n\" data-v=\"%lld\">%lld..%lld</td><td class=\"n\">%lld</td>"
                   "<td class=\"n\" data-v=\"%.6g\">%.3e</td><td class=\"n\" data-v=\"%.6g\">%.3e</td>"
                   "<td class=\"%s\">%s</td></tr>\n",
                r->layer, (long long)r->pos0, (long long)r->pos0, (long long)r->pos1, (long long)r->worst_pos,
                isfinite(r->max_abs) ? r->max_abs : 1e308, r->max_abs, isfinite(r->max_rel) ? r->max_rel : 1e308, r->max_rel,
                r->bad ? "fail" : "pass", first ? "FIRST DIVERGENCE" : r->bad ? "fail" : "pass");
    }
    fputs("</tbody></table></div>\n</section>\n", f);
    rep_page_end(f);
    unload(&in);
    return close_out(f, tmp, out_html, err);
}
