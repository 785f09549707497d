/* trainer.json parsing and writing: see state.h. */
#include "train/state.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t cke_train_fnv64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#define F "trainer.json: "

/* an integer field: a JSON number, integral, in [lo, hi] (hi <= 2^53 keeps it exact) */
static cke_status get_int(const cJSON *j, const char *name, int64_t lo, int64_t hi, int64_t *out, cke_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!v) return cke_fail(err, CKE_ERR_FORMAT, F "\"%s\" is missing", name);
    if (!cJSON_IsNumber(v)) return cke_fail(err, CKE_ERR_FORMAT, F "\"%s\" is not a number", name);
    double x = v->valuedouble;
    if (!isfinite(x) || x != floor(x))
        return cke_fail(err, CKE_ERR_FORMAT, F "\"%s\": %.17g is not an integer", name, x);
    if (x < (double)lo || x > (double)hi)
        return cke_fail(err, CKE_ERR_RANGE, F "\"%s\": %.17g is not in [%" PRId64 ", %" PRId64 "]", name, x, lo, hi);
    *out = (int64_t)x;
    return CKE_OK;
}

/* a real field: a finite JSON number in [lo, hi]; lo_open excludes lo itself */
static cke_status get_real(const cJSON *j, const char *name, double lo, int lo_open, double hi, double *out,
                           cke_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!v) return cke_fail(err, CKE_ERR_FORMAT, F "\"%s\" is missing", name);
    if (!cJSON_IsNumber(v)) return cke_fail(err, CKE_ERR_FORMAT, F "\"%s\" is not a number", name);
    double x = v->valuedouble;
    if (!isfinite(x) || x < lo || x > hi || (lo_open && x == lo))
        return cke_fail(err, CKE_ERR_RANGE, F "\"%s\": %.17g is not in %s%g, %g]", name, x, lo_open ? "(" : "[", lo, hi);
    *out = x;
    return CKE_OK;
}

static cke_status get_str(const cJSON *j, const char *name, char *out, size_t n, cke_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!v) return cke_fail(err, CKE_ERR_FORMAT, F "\"%s\" is missing", name);
    if (!cJSON_IsString(v) || !v->valuestring) return cke_fail(err, CKE_ERR_FORMAT, F "\"%s\" is not a string", name);
    size_t l = strlen(v->valuestring);
    if (l >= n) return cke_fail(err, CKE_ERR_RANGE, F "\"%s\" is longer than %zu bytes", name, n - 1);
    memcpy(out, v->valuestring, l + 1);
    return CKE_OK;
}

/* The window position `step` optimizer steps reach: each step takes batch * accum windows in
 * order; an epoch ends after `windows` of them (the next one starts at index 0 when asked for). */
static cke_status expected_pos(const cke_train_state *s, int64_t *epoch, int64_t *index, cke_err *err) {
    int64_t per, used;
    if (__builtin_mul_overflow(s->batch, s->accum, &per) || __builtin_mul_overflow(s->step, per, &used))
        return cke_fail(err, CKE_ERR_RANGE, F "\"step\": %" PRId64 " steps of %" PRId64 " x %" PRId64 " windows overflow",
                        s->step, s->batch, s->accum);
    if (used == 0) *epoch = 0, *index = 0;
    else *epoch = (used - 1) / s->train_windows, *index = used - *epoch * s->train_windows;
    return CKE_OK;
}

static cke_status parse_obj(const cJSON *j, cke_train_state *s, cke_err *err) {
    if (!cJSON_IsObject(j)) return cke_fail(err, CKE_ERR_FORMAT, F "not a JSON object");
    int64_t v = 0;
    cke_status st = get_int(j, "version", 0, CKE_TRAIN_MAX_INT, &v, err);
    if (st) return st;
    if (v != CKE_TRAIN_STATE_VERSION)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, F "\"version\": %" PRId64 " (this cke reads version %d)", v,
                        CKE_TRAIN_STATE_VERSION);
    /* the run's settings first: the position is checked against them */
    if ((st = get_int(j, "batch", 1, CKE_TRAIN_MAX_BATCH, &s->batch, err)) ||
        (st = get_int(j, "seq", 2, CKE_TRAIN_MAX_SEQ, &s->seq, err)) ||
        (st = get_int(j, "accum", 1, CKE_TRAIN_MAX_ACCUM, &s->accum, err)) ||
        (st = get_int(j, "steps", 1, CKE_TRAIN_MAX_STEPS, &s->steps, err)) ||
        (st = get_int(j, "warmup", 0, CKE_TRAIN_MAX_STEPS, &s->warmup, err)) ||
        (st = get_int(j, "threads", 1, CKE_TRAIN_MAX_THREADS, &s->threads, err)) ||
        (st = get_real(j, "lr", 0, 1, CKE_TRAIN_MAX_LR, &s->lr, err)) ||
        (st = get_real(j, "min_lr", 0, 0, s->lr, &s->min_lr, err)) ||
        (st = get_real(j, "wd", 0, 0, 10, &s->wd, err)) || (st = get_real(j, "clip", 0, 0, 1e9, &s->clip, err)) ||
        (st = get_real(j, "beta1", 0, 0, 0.999999, &s->beta1, err)) ||
        (st = get_real(j, "beta2", 0, 0, 0.999999999, &s->beta2, err)) ||
        (st = get_real(j, "eps", 0, 1, 1, &s->eps, err)) || (st = get_real(j, "val_frac", 0, 0, 0.5, &s->val_frac, err)))
        return st;
    if ((st = get_int(j, "seed", 0, CKE_TRAIN_MAX_INT, &v, err))) return st;
    s->seed = (uint64_t)v;
    if ((st = get_int(j, "data_bytes", 1, CKE_TRAIN_MAX_INT, &s->data_bytes, err))) return st;
    char hex[24];
    if ((st = get_str(j, "data_fnv64", hex, sizeof hex, err))) return st;
    char *end = NULL;
    if (strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
        return cke_fail(err, CKE_ERR_FORMAT, F "\"data_fnv64\": \"%s\" is not 16 lowercase hex digits", hex);
    s->data_hash = strtoull(hex, &end, 16);
    if ((st = get_str(j, "data", s->data, sizeof s->data, err))) return st;
    if ((st = get_str(j, "isa", s->isa, sizeof s->isa, err))) return st;
    /* any kernel table cke has (cke_isa_name's names): a checkpoint from an aarch64 cke says neon */
    static const char *const isas[] = {"ref", "avx2", "avx512", "neon", "neon_dot"};
    size_t ii = 0;
    while (ii < sizeof isas / sizeof *isas && strcmp(s->isa, isas[ii])) ii++;
    if (ii == sizeof isas / sizeof *isas)
        return cke_fail(err, CKE_ERR_FORMAT, F "\"isa\": \"%s\" is not ref, avx2, avx512, neon or neon_dot", s->isa);
    if ((st = get_int(j, "train_windows", 1, CKE_TRAIN_MAX_INT, &s->train_windows, err))) return st;
    s->ranks = 1; /* optional: written since data-parallel training */
    if (cJSON_GetObjectItemCaseSensitive(j, "ranks") && (st = get_int(j, "ranks", 1, CKE_TRAIN_MAX_BATCH, &s->ranks, err)))
        return st;
    s->router_aux_coef = -1; /* optional: written since MoE training; -1 = the model's own weight */
    if (cJSON_GetObjectItemCaseSensitive(j, "router_aux_coef")) {
        if ((st = get_real(j, "router_aux_coef", -1, 0, 1000, &s->router_aux_coef, err))) return st;
        if (s->router_aux_coef < 0 && s->router_aux_coef != -1)
            return cke_fail(err, CKE_ERR_RANGE, F "\"router_aux_coef\": %g is neither -1 nor in [0, 1000]", s->router_aux_coef);
    }
    s->bf16 = 0; /* optional: written since mixed precision; absent = fp32 */
    if (cJSON_GetObjectItemCaseSensitive(j, "precision")) {
        char prec[8];
        if ((st = get_str(j, "precision", prec, sizeof prec, err))) return st;
        if (strcmp(prec, "fp32") && strcmp(prec, "bf16"))
            return cke_fail(err, CKE_ERR_FORMAT, F "\"precision\": \"%s\" is not fp32 or bf16", prec);
        s->bf16 = !strcmp(prec, "bf16");
    }
    if (s->train_windows < s->batch)
        return cke_fail(err, CKE_ERR_RANGE, F "\"train_windows\": %" PRId64 " is fewer than one batch (%" PRId64 ")",
                        s->train_windows, s->batch);
    if ((st = get_str(j, "model_file", s->model_file, sizeof s->model_file, err))) return st;
    if (strcmp(s->model_file, "model.gguf") && strcmp(s->model_file, "model.safetensors") &&
        strcmp(s->model_file, "model.bin"))
        return cke_fail(err, CKE_ERR_FORMAT, F "\"model_file\": \"%s\" is not model.gguf, model.safetensors or model.bin",
                        s->model_file);
    /* the position */
    if ((st = get_int(j, "step", 0, s->steps, &s->step, err)) ||
        (st = get_int(j, "epoch", 0, CKE_TRAIN_MAX_INT, &s->epoch, err)) ||
        (st = get_int(j, "index", 0, s->train_windows, &s->index, err)))
        return st;
    int64_t ep = 0, ix = 0;
    if ((st = expected_pos(s, &ep, &ix, err))) return st;
    if (ep != s->epoch || ix != s->index)
        return cke_fail(err, CKE_ERR_FORMAT,
                        F "\"epoch\": %" PRId64 ", \"index\": %" PRId64 " is not where step %" PRId64 " ends (epoch %" PRId64
                          ", index %" PRId64 " with %" PRId64 " training windows, batch %" PRId64 ", accum %" PRId64 ")",
                        s->epoch, s->index, s->step, ep, ix, s->train_windows, s->batch, s->accum);
    return CKE_OK;
}

cke_status cke_train_state_parse(const char *text, size_t len, cke_train_state *s, cke_err *err) {
    memset(s, 0, sizeof *s);
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j) return cke_fail(err, CKE_ERR_FORMAT, F "not valid JSON");
    cke_status st = parse_obj(j, s, err);
    cJSON_Delete(j);
    if (st) memset(s, 0, sizeof *s);
    return st;
}

/* Numbers are written exactly (cJSON's own printer tries 15 significant digits first and keeps
 * them when they are merely close: 2^53 came back as 9007199254740990): integers in decimal,
 * reals with 17 significant digits. Strings go through cJSON for the escaping. */
static int add_int(cJSON *j, const char *name, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    return cJSON_AddRawToObject(j, name, b) != NULL;
}

static int add_real(cJSON *j, const char *name, double v) {
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    return cJSON_AddRawToObject(j, name, b) != NULL;
}

char *cke_train_state_format(const cke_train_state *s) {
    cJSON *j = cJSON_CreateObject();
    char hex[24];
    snprintf(hex, sizeof hex, "%016" PRIx64, s->data_hash);
    int ok = j && add_int(j, "version", CKE_TRAIN_STATE_VERSION) && add_int(j, "step", s->step) &&
             add_int(j, "epoch", s->epoch) && add_int(j, "index", s->index) &&
             cJSON_AddStringToObject(j, "model_file", s->model_file) && add_int(j, "batch", s->batch) &&
             add_int(j, "seq", s->seq) && add_int(j, "accum", s->accum) && add_int(j, "steps", s->steps) &&
             add_int(j, "warmup", s->warmup) && add_int(j, "threads", s->threads) && add_real(j, "lr", s->lr) &&
             add_real(j, "min_lr", s->min_lr) && add_real(j, "wd", s->wd) && add_real(j, "clip", s->clip) &&
             add_real(j, "beta1", s->beta1) && add_real(j, "beta2", s->beta2) && add_real(j, "eps", s->eps) &&
             add_real(j, "val_frac", s->val_frac) && add_int(j, "seed", (int64_t)s->seed) &&
             add_int(j, "data_bytes", s->data_bytes) && cJSON_AddStringToObject(j, "data_fnv64", hex) &&
             cJSON_AddStringToObject(j, "data", s->data) && cJSON_AddStringToObject(j, "isa", s->isa) &&
             add_int(j, "train_windows", s->train_windows) && add_int(j, "ranks", s->ranks > 0 ? s->ranks : 1) &&
             add_real(j, "router_aux_coef", s->router_aux_coef) &&
             cJSON_AddStringToObject(j, "precision", s->bf16 ? "bf16" : "fp32");
    char *txt = ok ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    return txt;
}
