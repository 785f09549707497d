#include "runtime/parity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[64];
    int layer;
    int64_t rows, cols;
    const float *data;
} ref_rec;

typedef struct {
    ref_rec *rec;
    int n;
    int64_t n_tok;
    int32_t *ids;
    char *buf;
    double tol;
    FILE *report;
    cke_parity_table *table;
    int table_oom;         /* a row could not be stored: reported after the run */
    cke_parity_result *res;
} pctx;

void cke_parity_table_free(cke_parity_table *t) {
    if (!t) return;
    free(t->rows);
    memset(t, 0, sizeof *t);
}

static void table_add(pctx *c, const cke_parity_row *row) {
    cke_parity_table *t = c->table;
    if (t->n == t->cap) {
        int64_t cap = t->cap ? t->cap * 2 : 256;
        cke_parity_row *nr = realloc(t->rows, (size_t)cap * sizeof *nr);
        if (!nr) { c->table_oom = 1; return; }
        t->rows = nr, t->cap = cap;
    }
    t->rows[t->n++] = *row;
}

static cke_status load_ref(pctx *c, const char *path, cke_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cke_fail(err, CKE_ERR_IO, "cannot open reference trace %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    if (len < 16) { fclose(f); return cke_fail(err, CKE_ERR_FORMAT, "%s: too short for a trace", path); }
    c->buf = malloc((size_t)len);
    if (!c->buf) { fclose(f); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    size_t got = fread(c->buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) return cke_fail(err, CKE_ERR_IO, "short read on %s", path);
    const char *p = c->buf, *end = c->buf + len;
#define NEED(n) if ((size_t)(end - p) < (size_t)(n)) return cke_fail(err, CKE_ERR_FORMAT, "%s: truncated trace", path)
    if (memcmp(p, "CKETRC01", 8)) return cke_fail(err, CKE_ERR_FORMAT, "%s: not a cke trace (bad magic)", path);
    p += 8;
    int32_t nt, nr;
    NEED(4);
    memcpy(&nt, p, 4), p += 4;
    if (nt < 1 || nt > (1 << 24)) return cke_fail(err, CKE_ERR_FORMAT, "%s: %d tokens", path, nt);
    NEED((size_t)nt * 4);
    c->ids = malloc((size_t)nt * 4);
    if (!c->ids) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    memcpy(c->ids, p, (size_t)nt * 4), p += (size_t)nt * 4;
    c->n_tok = nt;
    NEED(4);
    memcpy(&nr, p, 4), p += 4;
    if (nr < 0 || nr > (1 << 20)) return cke_fail(err, CKE_ERR_FORMAT, "%s: %d records", path, nr);
    c->rec = calloc((size_t)nr + 1, sizeof(ref_rec));
    if (!c->rec) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nr; i++) {
        int32_t nl, layer;
        int64_t pos0, rows, cols;
        NEED(4);
        memcpy(&nl, p, 4), p += 4;
        if (nl < 1 || nl > 63) return cke_fail(err, CKE_ERR_FORMAT, "%s: record %d: name length %d", path, i, nl);
        NEED(nl + 28);
        ref_rec *r = &c->rec[c->n];
        memcpy(r->name, p, (size_t)nl), p += nl;
        memcpy(&layer, p, 4), memcpy(&pos0, p + 4, 8), memcpy(&rows, p + 12, 8), memcpy(&cols, p + 20, 8), p += 28;
        if (pos0 != 0 || rows != nt || cols < 1 || cols > (1 << 24))
            return cke_fail(err, CKE_ERR_FORMAT, "%s: record '%s' must cover all %d positions", path, r->name, nt);
        NEED((size_t)rows * (size_t)cols * 4);
        r->layer = layer, r->rows = rows, r->cols = cols;
        r->data = (const float *)(const void *)p; /* 4-byte alignment is not guaranteed: read with memcpy */
        p += (size_t)rows * (size_t)cols * 4;
        c->n++;
    }
#undef NEED
    return CKE_OK;
}

static void on_value(void *ud, const char *name, int layer, int64_t pos0, const float *data, int64_t rows, int64_t cols) {
    pctx *c = ud;
    const ref_rec *r = NULL;
    for (int i = 0; i < c->n && !r; i++)
        if (c->rec[i].layer == layer && !strcmp(c->rec[i].name, name)) r = &c->rec[i];
    if (!r || r->cols != cols || pos0 < 0 || pos0 + rows > r->rows) {
        c->res->missing++;
        return;
    }
    double max_abs = 0, max_ref = 0;
    int64_t worst_row = 0;
    for (int64_t t = 0; t < rows; t++)
        for (int64_t j = 0; j < cols; j++) {
            float want;
            memcpy(&want, (const char *)r->data + ((size_t)(pos0 + t) * (size_t)cols + (size_t)j) * 4, 4);
            double d = fabs((double)data[t * cols + j] - want);
            if (!(d <= max_abs)) { max_abs = isnan(d) ? INFINITY : d; worst_row = t; }
            if (fabs(want) > max_ref) max_ref = fabs(want);
        }
    double rel = max_abs / (max_ref > 1e-30 ? max_ref : 1e-30);
    cke_parity_result *res = c->res;
    res->compared++;
    if (rel > res->worst_rel) res->worst_rel = rel;
    int bad = !(rel <= c->tol);
    if (c->report)
        fprintf(c->report, "  %-10s layer %3d  pos %5lld..%-5lld  max abs %.3e  rel %.3e%s\n", name, layer, (long long)pos0,
                (long long)(pos0 + rows - 1), max_abs, rel, bad ? "  <-- diverged" : "");
    if (c->table && !c->table_oom) {
        cke_parity_row row = {.layer = layer, .pos0 = pos0, .pos1 = pos0 + rows - 1, .worst_pos = pos0 + worst_row,
                              .max_abs = max_abs, .max_rel = rel, .bad = bad};
        snprintf(row.name, sizeof row.name, "%s", name);
        table_add(c, &row);
    }
    if (bad && !res->diverged) {
        res->diverged = 1;
        snprintf(res->name, sizeof res->name, "%s", name);
        res->layer = layer;
        res->pos = pos0 + worst_row;
        res->max_abs = max_abs;
        res->max_rel = rel;
    }
}

cke_status cke_parity_run(cke_runner *r, const char *ref_path, int64_t chunk, double rel_tol, FILE *report,
                          cke_parity_result *res, cke_err *err) {
    return cke_parity_run_table(r, ref_path, chunk, rel_tol, report, NULL, res, err);
}

cke_status cke_parity_run_table(cke_runner *r, const char *ref_path, int64_t chunk, double rel_tol, FILE *report,
                                cke_parity_table *table, cke_parity_result *res, cke_err *err) {
    memset(res, 0, sizeof *res);
    pctx c = {.tol = rel_tol, .report = report, .table = table, .res = res};
    cke_status st = load_ref(&c, ref_path, err);
    if (!st && c.n_tok > r->api->ctx)
        st = cke_fail(err, CKE_ERR_RANGE, "the reference has %lld tokens, the model's context is %lld", (long long)c.n_tok,
                      (long long)r->api->ctx);
    if (!st) {
        r->api->reset(r->m);
        r->api->set_trace(r->m, on_value, &c);
        int64_t step = chunk > 0 ? chunk : c.n_tok;
        for (int64_t i = 0; i < c.n_tok && !st; i += step) {
            int64_t n = c.n_tok - i < step ? c.n_tok - i : step;
            if (r->api->prefill(r->m, c.ids + i, n) != 0)
                st = cke_fail(err, CKE_ERR_ARG, "model rejected the reference tokens: %s", r->api->last_error(r->m));
        }
        r->api->set_trace(r->m, NULL, NULL);
        if (!st && c.table_oom) st = cke_fail(err, CKE_ERR_NOMEM, "out of memory for the parity table");
    }
    free(c.rec);
    free(c.ids);
    free(c.buf);
    return st;
}
