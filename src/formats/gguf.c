/* GGUF reader. Layout (all little-endian):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv x { str key, u32 type, value }        str = u64 len + bytes; arr = u32 elem, u64 n, elems
 *   n_tensors x { str name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   padding to the alignment, then the data section (tensor offsets are relative to it).
 * Every read goes through rd_need(), which compares against the bytes left, so lengths and
 * counts from the file are never trusted before they are known to fit. */
#include "formats/gguf.h"

#include "formats/arena.h"
#include "formats/mapfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

struct cke_gguf {
    cke_map map;          /* owned mapping (empty for open_mem) */
    const uint8_t *data;
    size_t size;
    uint32_t version;
    uint64_t alignment, data_off;
    int64_t n_kv, n_tensors;
    cke_gguf_kv *kvs;
    cke_gguf_tensor *tensors;
    const cke_gguf_kv **kv_sorted;         /* by key, for lookup */
    const cke_gguf_tensor **tensor_sorted; /* by name */
    cke_arena arena;
};

static const struct {
    const char *name;
    size_t size;
} type_info[CKE_GGUF_TYPE_COUNT] = {
    [CKE_GGUF_U8] = {"u8", 1},   [CKE_GGUF_I8] = {"i8", 1},    [CKE_GGUF_U16] = {"u16", 2},
    [CKE_GGUF_I16] = {"i16", 2}, [CKE_GGUF_U32] = {"u32", 4},  [CKE_GGUF_I32] = {"i32", 4},
    [CKE_GGUF_F32] = {"f32", 4}, [CKE_GGUF_BOOL] = {"bool", 1}, [CKE_GGUF_STR] = {"str", 0},
    [CKE_GGUF_ARR] = {"arr", 0}, [CKE_GGUF_U64] = {"u64", 8},  [CKE_GGUF_I64] = {"i64", 8},
    [CKE_GGUF_F64] = {"f64", 8},
};

const char *cke_gguf_type_name(cke_gguf_type t) {
    return (unsigned)t < CKE_GGUF_TYPE_COUNT ? type_info[t].name : "?";
}
size_t cke_gguf_type_size(cke_gguf_type t) {
    return (unsigned)t < CKE_GGUF_TYPE_COUNT ? type_info[t].size : 0;
}

/* ---- bounds-checked cursor ---- */
typedef struct {
    const uint8_t *p;
    size_t size, pos;
    cke_err *err;
    cke_arena *arena;
} rd;

static bool rd_has(const rd *r, uint64_t n) { return n <= (uint64_t)(r->size - r->pos); }

static cke_status rd_need(rd *r, uint64_t n, const char *what) {
    if (rd_has(r, n)) return CKE_OK;
    return cke_fail(r->err, CKE_ERR_FORMAT, "truncated: %s needs %llu bytes at offset %zu, file has %zu",
                    what, (unsigned long long)n, r->pos, r->size);
}

static cke_status rd_u32(rd *r, uint32_t *v, const char *what) {
    cke_status s = rd_need(r, 4, what);
    if (s) return s;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return CKE_OK;
}

static cke_status rd_u64(rd *r, uint64_t *v, const char *what) {
    cke_status s = rd_need(r, 8, what);
    if (s) return s;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return CKE_OK;
}

static cke_status rd_str(rd *r, cke_gguf_str *out, const char *what) {
    uint64_t len;
    cke_status s = rd_u64(r, &len, what);
    if (s) return s;
    if (!rd_has(r, len))
        return cke_fail(r->err, CKE_ERR_FORMAT, "%s: string length %llu at offset %zu exceeds the %zu bytes left",
                        what, (unsigned long long)len, r->pos - 8, r->size - r->pos);
    out->s = (const char *)r->p + r->pos;
    out->len = (size_t)len;
    r->pos += (size_t)len;
    return CKE_OK;
}

#define TRY(x) do { cke_status s_ = (x); if (s_) return s_; } while (0)

static cke_status nomem(rd *r) { return cke_fail(r->err, CKE_ERR_NOMEM, "out of memory reading GGUF"); }

static cke_status read_scalar(rd *r, cke_gguf_type t, cke_gguf_val *v, const char *key) {
    size_t sz = type_info[t].size;
    if (!rd_has(r, sz))
        return cke_fail(r->err, CKE_ERR_FORMAT, "truncated: value of '%s' at offset %zu", key, r->pos);
    const uint8_t *p = r->p + r->pos;
    v->type = t;
    switch (t) {
    case CKE_GGUF_U8: v->u = p[0]; break;
    case CKE_GGUF_BOOL: v->u = p[0] != 0; break;
    case CKE_GGUF_I8: v->i = (int8_t)p[0]; break;
    case CKE_GGUF_U16: { uint16_t x; memcpy(&x, p, 2); v->u = x; break; }
    case CKE_GGUF_I16: { int16_t x; memcpy(&x, p, 2); v->i = x; break; }
    case CKE_GGUF_U32: { uint32_t x; memcpy(&x, p, 4); v->u = x; break; }
    case CKE_GGUF_I32: { int32_t x; memcpy(&x, p, 4); v->i = x; break; }
    case CKE_GGUF_U64: memcpy(&v->u, p, 8); break;
    case CKE_GGUF_I64: memcpy(&v->i, p, 8); break;
    case CKE_GGUF_F32: { float x; memcpy(&x, p, 4); v->f = x; break; }
    case CKE_GGUF_F64: memcpy(&v->f, p, 8); break;
    default: return cke_fail(r->err, CKE_ERR_FORMAT, "internal: not a scalar type");
    }
    r->pos += sz;
    return CKE_OK;
}

static cke_status read_value(rd *r, uint32_t t, cke_gguf_val *v, const char *key, int depth) {
    if (t >= CKE_GGUF_TYPE_COUNT)
        return cke_fail(r->err, CKE_ERR_FORMAT, "'%s': unknown value type %u at offset %zu", key, t, r->pos);
    v->type = (cke_gguf_type)t;
    if (t == CKE_GGUF_STR) return rd_str(r, &v->str, key);
    if (t != CKE_GGUF_ARR) return read_scalar(r, (cke_gguf_type)t, v, key);

    if (depth >= CKE_GGUF_MAX_DEPTH)
        return cke_fail(r->err, CKE_ERR_FORMAT, "'%s': arrays nested deeper than %d", key, CKE_GGUF_MAX_DEPTH);
    uint32_t et;
    uint64_t n;
    TRY(rd_u32(r, &et, key));
    TRY(rd_u64(r, &n, key));
    if (et >= CKE_GGUF_TYPE_COUNT)
        return cke_fail(r->err, CKE_ERR_FORMAT, "'%s': unknown array element type %u", key, et);
    v->arr.elem = (cke_gguf_type)et;
    v->arr.n = n;
    size_t left = r->size - r->pos;
    if (et == CKE_GGUF_STR) {
        if (n > left / 8)
            return cke_fail(r->err, CKE_ERR_FORMAT, "'%s': %llu strings cannot fit in the %zu bytes left",
                            key, (unsigned long long)n, left);
        cke_gguf_str *strs = cke_arena_calloc(r->arena, (size_t)n, sizeof *strs);
        if (!strs && n) return nomem(r);
        for (uint64_t i = 0; i < n; i++) TRY(rd_str(r, &strs[i], key));
        v->arr.strs = strs;
    } else if (et == CKE_GGUF_ARR) {
        if (n > left / 12)
            return cke_fail(r->err, CKE_ERR_FORMAT, "'%s': %llu nested arrays cannot fit in the %zu bytes left",
                            key, (unsigned long long)n, left);
        cke_gguf_val *items = cke_arena_calloc(r->arena, (size_t)n, sizeof *items);
        if (!items && n) return nomem(r);
        for (uint64_t i = 0; i < n; i++) TRY(read_value(r, CKE_GGUF_ARR, &items[i], key, depth + 1));
        v->arr.items = items;
    } else {
        size_t sz = type_info[et].size;
        if (n > left / sz)
            return cke_fail(r->err, CKE_ERR_FORMAT, "'%s': array of %llu %s exceeds the %zu bytes left",
                            key, (unsigned long long)n, type_info[et].name, left);
        v->arr.data = r->p + r->pos;
        r->pos += (size_t)n * sz;
    }
    return CKE_OK;
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp((*(const cke_gguf_kv *const *)a)->key, (*(const cke_gguf_kv *const *)b)->key);
}
static int cmp_tensor(const void *a, const void *b) {
    return strcmp((*(const cke_gguf_tensor *const *)a)->name, (*(const cke_gguf_tensor *const *)b)->name);
}

static cke_status parse(cke_gguf *g, cke_err *err) {
    rd r = {.p = g->data, .size = g->size, .pos = 0, .err = err, .arena = &g->arena};
    uint32_t version;
    if (g->size < 4 || memcmp(g->data, "GGUF", 4) != 0)
        return cke_fail(err, CKE_ERR_FORMAT, "not a GGUF file (bad magic)");
    r.pos = 4;
    TRY(rd_u32(&r, &version, "header version"));
    if (version == 1) return cke_fail(err, CKE_ERR_UNSUPPORTED, "GGUF v1 is not supported (only v2, v3)");
    if ((version & 0xffff) == 0 && (version >> 24 == 2 || version >> 24 == 3))
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "big-endian GGUF is not supported");
    if (version != 2 && version != 3)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "GGUF version %u is not supported (only v2, v3)", version);
    g->version = version;
    uint64_t nt, nkv;
    TRY(rd_u64(&r, &nt, "header tensor count"));
    TRY(rd_u64(&r, &nkv, "header metadata count"));
    size_t left = r.size - r.pos;
    /* smallest kv: empty key (8) + type (4) + 1-byte value; smallest tensor info: 8+4+4+8 */
    if (nkv > left / 13)
        return cke_fail(err, CKE_ERR_FORMAT, "metadata count %llu cannot fit in a %zu-byte file",
                        (unsigned long long)nkv, r.size);
    if (nt > left / 24)
        return cke_fail(err, CKE_ERR_FORMAT, "tensor count %llu cannot fit in a %zu-byte file",
                        (unsigned long long)nt, r.size);
    g->kvs = cke_arena_calloc(&g->arena, (size_t)nkv, sizeof *g->kvs);
    g->kv_sorted = cke_arena_calloc(&g->arena, (size_t)nkv, sizeof *g->kv_sorted);
    if ((!g->kvs || !g->kv_sorted) && nkv) return nomem(&r);

    for (uint64_t i = 0; i < nkv; i++) {
        cke_gguf_kv *kv = &g->kvs[i];
        cke_gguf_str key;
        uint32_t t;
        TRY(rd_str(&r, &key, "metadata key"));
        kv->key = cke_arena_strndup(&g->arena, key.s, key.len);
        if (!kv->key) return nomem(&r);
        kv->raw_off = r.pos;
        TRY(rd_u32(&r, &t, kv->key));
        TRY(read_value(&r, t, &kv->val, kv->key, 0));
        kv->raw_len = r.pos - kv->raw_off;
        g->kv_sorted[i] = kv;
        g->n_kv = (int64_t)i + 1;
    }
    if (nkv) qsort(g->kv_sorted, (size_t)nkv, sizeof *g->kv_sorted, cmp_kv);
    for (uint64_t i = 1; i < nkv; i++)
        if (!strcmp(g->kv_sorted[i]->key, g->kv_sorted[i - 1]->key))
            return cke_fail(err, CKE_ERR_FORMAT, "duplicate metadata key '%s'", g->kv_sorted[i]->key);

    g->alignment = CKE_GGUF_DEFAULT_ALIGNMENT;
    const cke_gguf_kv *al = cke_gguf_find_kv(g, "general.alignment");
    if (al) {
        uint64_t a;
        if (cke_gguf_val_u64(&al->val, &a) != CKE_OK || a == 0 || (a & (a - 1)) || a > (1u << 30))
            return cke_fail(err, CKE_ERR_FORMAT, "general.alignment must be a power of two integer");
        g->alignment = a;
    }

    g->tensors = cke_arena_calloc(&g->arena, (size_t)nt, sizeof *g->tensors);
    g->tensor_sorted = cke_arena_calloc(&g->arena, (size_t)nt, sizeof *g->tensor_sorted);
    if ((!g->tensors || !g->tensor_sorted) && nt) return nomem(&r);
    for (uint64_t i = 0; i < nt; i++) {
        cke_gguf_tensor *t = &g->tensors[i];
        cke_gguf_str name;
        uint32_t nd, ty;
        TRY(rd_str(&r, &name, "tensor name"));
        t->name = cke_arena_strndup(&g->arena, name.s, name.len);
        if (!t->name) return nomem(&r);
        TRY(rd_u32(&r, &nd, t->name));
        if (nd > CKE_GGUF_MAX_DIMS)
            return cke_fail(err, CKE_ERR_FORMAT, "tensor '%s': %u dimensions (max %d)", t->name, nd, CKE_GGUF_MAX_DIMS);
        t->ndim = (int)nd;
        for (int d = 0; d < CKE_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            TRY(rd_u64(&r, &ne, t->name));
            if (ne > INT64_MAX)
                return cke_fail(err, CKE_ERR_FORMAT, "tensor '%s': dimension %u is %llu", t->name, d,
                                (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
        }
        TRY(rd_u32(&r, &ty, t->name));
        if (ty >= CKE_DTYPE_GGML_END || !cke_dtype_valid((int)ty))
            return cke_fail(err, CKE_ERR_FORMAT, "tensor '%s': unknown ggml type %u", t->name, ty);
        t->type = (cke_dtype)ty;
        TRY(rd_u64(&r, &t->offset, t->name));
        cke_err e2;
        if (cke_dtype_nbytes(t->type, CKE_GGUF_MAX_DIMS, t->ne, &t->nbytes, &e2) != CKE_OK)
            return cke_fail(err, CKE_ERR_FORMAT, "tensor '%s': %s", t->name, e2.msg);
        g->tensor_sorted[i] = t;
        g->n_tensors = (int64_t)i + 1;
    }
    if (nt) qsort(g->tensor_sorted, (size_t)nt, sizeof *g->tensor_sorted, cmp_tensor);
    for (uint64_t i = 1; i < nt; i++)
        if (!strcmp(g->tensor_sorted[i]->name, g->tensor_sorted[i - 1]->name))
            return cke_fail(err, CKE_ERR_FORMAT, "duplicate tensor name '%s'", g->tensor_sorted[i]->name);

    /* pos <= size < 2^63 and alignment <= 2^30: no overflow */
    g->data_off = ((uint64_t)r.pos + g->alignment - 1) & ~(g->alignment - 1);
    for (uint64_t i = 0; i < nt; i++) {
        cke_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return cke_fail(err, CKE_ERR_FORMAT, "tensor '%s': offset %llu is not a multiple of the alignment %llu",
                            t->name, (unsigned long long)t->offset, (unsigned long long)g->alignment);
        if (g->data_off > g->size || t->offset > g->size - g->data_off ||
            (uint64_t)t->nbytes > g->size - g->data_off - t->offset)
            return cke_fail(err, CKE_ERR_FORMAT,
                            "tensor '%s': data [%llu, +%lld) extends past the end of the file (%zu bytes)", t->name,
                            (unsigned long long)(g->data_off + t->offset), (long long)t->nbytes, g->size);
        t->file_offset = g->data_off + t->offset;
        t->data = g->data + t->file_offset;
    }
    return CKE_OK;
}

cke_status cke_gguf_open_mem(const void *data, size_t size, cke_gguf **out, cke_err *err) {
    *out = NULL;
    cke_gguf *g = calloc(1, sizeof *g);
    if (!g) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    g->data = data;
    g->size = size;
    cke_status s = parse(g, err);
    if (s) {
        cke_gguf_close(g);
        return s;
    }
    *out = g;
    return CKE_OK;
}

cke_status cke_gguf_open(const char *path, cke_gguf **out, cke_err *err) {
    *out = NULL;
    cke_map m;
    cke_status s = cke_map_open(path, &m, err);
    if (s) return s;
    cke_gguf *g;
    s = cke_gguf_open_mem(m.data, m.size, &g, err);
    if (s) {
        cke_map_close(&m);
        if (err) { /* prefix the path so the message names the file */
            char tmp[sizeof err->msg];
            snprintf(tmp, sizeof tmp, "%s", err->msg);
            cke_fail(err, s, "%s: %s", path, tmp);
        }
        return s;
    }
    g->map = m;
    *out = g;
    return CKE_OK;
}

void cke_gguf_close(cke_gguf *g) {
    if (!g) return;
    cke_arena_free(&g->arena);
    cke_map_close(&g->map);
    free(g);
}

uint32_t cke_gguf_version(const cke_gguf *g) { return g->version; }
uint64_t cke_gguf_alignment(const cke_gguf *g) { return g->alignment; }
uint64_t cke_gguf_data_offset(const cke_gguf *g) { return g->data_off; }
const void *cke_gguf_file_data(const cke_gguf *g, size_t *size) {
    if (size) *size = g->size;
    return g->data;
}

int64_t cke_gguf_n_kv(const cke_gguf *g) { return g->n_kv; }
const cke_gguf_kv *cke_gguf_kv_at(const cke_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? &g->kvs[i] : NULL;
}

const cke_gguf_kv *cke_gguf_find_kv(const cke_gguf *g, const char *key) {
    int64_t lo = 0, hi = g->n_kv; /* kv_sorted is complete once parse passed the kv section */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->kv_sorted[mid]->key, key);
        if (!c) return g->kv_sorted[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

int64_t cke_gguf_n_tensors(const cke_gguf *g) { return g->n_tensors; }
const cke_gguf_tensor *cke_gguf_tensor_at(const cke_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}
const cke_gguf_tensor *cke_gguf_find_tensor(const cke_gguf *g, const char *name) {
    int64_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g->tensor_sorted[mid]->name, name);
        if (!c) return g->tensor_sorted[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

/* ---- typed access ---- */
static bool is_uint(cke_gguf_type t) {
    return t == CKE_GGUF_U8 || t == CKE_GGUF_U16 || t == CKE_GGUF_U32 || t == CKE_GGUF_U64 || t == CKE_GGUF_BOOL;
}
static bool is_sint(cke_gguf_type t) {
    return t == CKE_GGUF_I8 || t == CKE_GGUF_I16 || t == CKE_GGUF_I32 || t == CKE_GGUF_I64;
}
static bool is_float(cke_gguf_type t) { return t == CKE_GGUF_F32 || t == CKE_GGUF_F64; }

cke_status cke_gguf_val_u64(const cke_gguf_val *v, uint64_t *out) {
    if (is_uint(v->type)) { *out = v->u; return CKE_OK; }
    if (is_sint(v->type)) {
        if (v->i < 0) return CKE_ERR_RANGE;
        *out = (uint64_t)v->i;
        return CKE_OK;
    }
    return CKE_ERR_FORMAT;
}

cke_status cke_gguf_val_i64(const cke_gguf_val *v, int64_t *out) {
    if (is_sint(v->type)) { *out = v->i; return CKE_OK; }
    if (is_uint(v->type)) {
        if (v->u > INT64_MAX) return CKE_ERR_RANGE;
        *out = (int64_t)v->u;
        return CKE_OK;
    }
    return CKE_ERR_FORMAT;
}

cke_status cke_gguf_val_f64(const cke_gguf_val *v, double *out) {
    if (is_float(v->type)) *out = v->f;
    else if (is_uint(v->type)) *out = (double)v->u;
    else if (is_sint(v->type)) *out = (double)v->i;
    else return CKE_ERR_FORMAT;
    return CKE_OK;
}

/* Element i of a numeric array as a scalar value. */
static cke_status arr_elem(const cke_gguf_val *arr, uint64_t i, cke_gguf_val *out) {
    if (arr->type != CKE_GGUF_ARR || !arr->arr.data) return CKE_ERR_FORMAT;
    if (i >= arr->arr.n) return CKE_ERR_RANGE;
    rd r = {.p = arr->arr.data, .size = (size_t)arr->arr.n * type_info[arr->arr.elem].size};
    r.pos = (size_t)i * type_info[arr->arr.elem].size;
    return read_scalar(&r, arr->arr.elem, out, "");
}

cke_status cke_gguf_arr_f64(const cke_gguf_val *arr, uint64_t i, double *out) {
    cke_gguf_val v;
    cke_status s = arr_elem(arr, i, &v);
    return s ? s : cke_gguf_val_f64(&v, out);
}

cke_status cke_gguf_arr_i64(const cke_gguf_val *arr, uint64_t i, int64_t *out) {
    cke_gguf_val v;
    cke_status s = arr_elem(arr, i, &v);
    return s ? s : cke_gguf_val_i64(&v, out);
}

static cke_status find(const cke_gguf *g, const char *key, const cke_gguf_val **v) {
    const cke_gguf_kv *kv = cke_gguf_find_kv(g, key);
    if (!kv) return CKE_ERR_MISSING;
    *v = &kv->val;
    return CKE_OK;
}

cke_status cke_gguf_get_str(const cke_gguf *g, const char *key, const char **s, size_t *len) {
    const cke_gguf_val *v;
    TRY(find(g, key, &v));
    if (v->type != CKE_GGUF_STR) return CKE_ERR_FORMAT;
    *s = v->str.s;
    if (len) *len = v->str.len;
    return CKE_OK;
}

cke_status cke_gguf_get_u64(const cke_gguf *g, const char *key, uint64_t *out) {
    const cke_gguf_val *v;
    TRY(find(g, key, &v));
    return cke_gguf_val_u64(v, out);
}

cke_status cke_gguf_get_i64(const cke_gguf *g, const char *key, int64_t *out) {
    const cke_gguf_val *v;
    TRY(find(g, key, &v));
    return cke_gguf_val_i64(v, out);
}

cke_status cke_gguf_get_f64(const cke_gguf *g, const char *key, double *out) {
    const cke_gguf_val *v;
    TRY(find(g, key, &v));
    return cke_gguf_val_f64(v, out);
}

cke_status cke_gguf_get_bool(const cke_gguf *g, const char *key, bool *out) {
    const cke_gguf_val *v;
    TRY(find(g, key, &v));
    if (v->type != CKE_GGUF_BOOL) return CKE_ERR_FORMAT;
    *out = v->u != 0;
    return CKE_OK;
}

cke_status cke_gguf_get_arr(const cke_gguf *g, const char *key, cke_gguf_type *elem_type, uint64_t *n) {
    const cke_gguf_val *v;
    TRY(find(g, key, &v));
    if (v->type != CKE_GGUF_ARR) return CKE_ERR_FORMAT;
    if (elem_type) *elem_type = v->arr.elem;
    if (n) *n = v->arr.n;
    return CKE_OK;
}

cke_status cke_gguf_arr_str(const cke_gguf *g, const char *key, uint64_t i, const char **s, size_t *len) {
    const cke_gguf_val *v;
    TRY(find(g, key, &v));
    if (v->type != CKE_GGUF_ARR || v->arr.elem != CKE_GGUF_STR) return CKE_ERR_FORMAT;
    if (i >= v->arr.n) return CKE_ERR_RANGE;
    *s = v->arr.strs[i].s;
    if (len) *len = v->arr.strs[i].len;
    return CKE_OK;
}

const void *cke_gguf_arr_data(const cke_gguf *g, const char *key) {
    const cke_gguf_val *v;
    if (find(g, key, &v) || v->type != CKE_GGUF_ARR || !v->arr.n) return NULL;
    return v->arr.data;
}
