/* GGUF v3 writer. Each kv is kept serialized (type + value bytes), so setting, copying from a
 * reader and writing are all plain byte moves; tensors keep a pointer to the caller's data. */
#include "formats/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    uint8_t *val; /* u32 type + value */
    size_t len;
} wkv;

typedef struct {
    char *name;
    cke_dtype type;
    int ndim;
    int64_t ne[CKE_GGUF_MAX_DIMS];
    int64_t nbytes;
    const void *data;
} wtensor;

struct cke_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
};

cke_status cke_gguf_writer_new(cke_gguf_writer **out, cke_err *err) {
    *out = calloc(1, sizeof **out);
    return *out ? CKE_OK : cke_fail(err, CKE_ERR_NOMEM, "out of memory");
}

void cke_gguf_writer_free(cke_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->ts[i].name);
    free(w->kvs);
    free(w->ts);
    free(w);
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Takes ownership of val (freed on failure). */
static cke_status put(cke_gguf_writer *w, const char *key, uint8_t *val, size_t len, cke_err *err) {
    if (!val) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kvs[i].key, key)) {
            free(w->kvs[i].val);
            w->kvs[i].val = val;
            w->kvs[i].len = len;
            return CKE_OK;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *p = realloc(w->kvs, cap * sizeof *p);
        if (!p) { free(val); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
        w->kvs = p;
        w->cap_kv = cap;
    }
    char *k = dupstr(key);
    if (!k) { free(val); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    w->kvs[w->n_kv++] = (wkv){.key = k, .val = val, .len = len};
    return CKE_OK;
}

static bool numeric(cke_gguf_type t) { return cke_gguf_type_size(t) > 0; }

cke_status cke_gguf_writer_set_scalar(cke_gguf_writer *w, const char *key, cke_gguf_type type,
                                      const void *v, cke_err *err) {
    if (!numeric(type)) return cke_fail(err, CKE_ERR_ARG, "'%s': %s is not a scalar type", key, cke_gguf_type_name(type));
    size_t sz = cke_gguf_type_size(type);
    uint8_t *b = malloc(4 + sz);
    if (b) {
        uint32_t t = type;
        memcpy(b, &t, 4);
        memcpy(b + 4, v, sz);
        if (type == CKE_GGUF_BOOL) b[4] = b[4] != 0;
    }
    return put(w, key, b, 4 + sz, err);
}

cke_status cke_gguf_writer_set_u32(cke_gguf_writer *w, const char *key, uint32_t v, cke_err *err) {
    return cke_gguf_writer_set_scalar(w, key, CKE_GGUF_U32, &v, err);
}
cke_status cke_gguf_writer_set_i32(cke_gguf_writer *w, const char *key, int32_t v, cke_err *err) {
    return cke_gguf_writer_set_scalar(w, key, CKE_GGUF_I32, &v, err);
}
cke_status cke_gguf_writer_set_u64(cke_gguf_writer *w, const char *key, uint64_t v, cke_err *err) {
    return cke_gguf_writer_set_scalar(w, key, CKE_GGUF_U64, &v, err);
}
cke_status cke_gguf_writer_set_f32(cke_gguf_writer *w, const char *key, float v, cke_err *err) {
    return cke_gguf_writer_set_scalar(w, key, CKE_GGUF_F32, &v, err);
}
cke_status cke_gguf_writer_set_f64(cke_gguf_writer *w, const char *key, double v, cke_err *err) {
    return cke_gguf_writer_set_scalar(w, key, CKE_GGUF_F64, &v, err);
}
cke_status cke_gguf_writer_set_bool(cke_gguf_writer *w, const char *key, bool v, cke_err *err) {
    uint8_t b = v;
    return cke_gguf_writer_set_scalar(w, key, CKE_GGUF_BOOL, &b, err);
}

cke_status cke_gguf_writer_set_str(cke_gguf_writer *w, const char *key, const char *s, size_t len, cke_err *err) {
    if (len > SIZE_MAX - 12) return cke_fail(err, CKE_ERR_ARG, "'%s': string too long", key);
    uint8_t *b = malloc(12 + len);
    if (b) {
        uint32_t t = CKE_GGUF_STR;
        uint64_t n = len;
        memcpy(b, &t, 4);
        memcpy(b + 4, &n, 8);
        if (len) memcpy(b + 12, s, len);
    }
    return put(w, key, b, 12 + len, err);
}

cke_status cke_gguf_writer_set_arr(cke_gguf_writer *w, const char *key, cke_gguf_type elem,
                                   const void *data, uint64_t n, cke_err *err) {
    if (!numeric(elem)) return cke_fail(err, CKE_ERR_ARG, "'%s': use set_arr_str for strings", key);
    size_t sz = cke_gguf_type_size(elem), bytes;
    if (n > (SIZE_MAX - 16) / sz) return cke_fail(err, CKE_ERR_ARG, "'%s': array too long", key);
    bytes = (size_t)n * sz;
    uint8_t *b = malloc(16 + bytes);
    if (b) {
        uint32_t t = CKE_GGUF_ARR, e = elem;
        memcpy(b, &t, 4);
        memcpy(b + 4, &e, 4);
        memcpy(b + 8, &n, 8);
        if (bytes) memcpy(b + 16, data, bytes);
    }
    return put(w, key, b, 16 + bytes, err);
}

cke_status cke_gguf_writer_set_arr_str(cke_gguf_writer *w, const char *key, const char *const *strs,
                                       const size_t *lens, uint64_t n, cke_err *err) {
    size_t total = 16;
    for (uint64_t i = 0; i < n; i++) {
        size_t l = lens ? lens[i] : strlen(strs[i]);
        if (__builtin_add_overflow(total, l, &total) || __builtin_add_overflow(total, 8, &total))
            return cke_fail(err, CKE_ERR_ARG, "'%s': array too long", key);
    }
    uint8_t *b = malloc(total);
    if (b) {
        uint32_t t = CKE_GGUF_ARR, e = CKE_GGUF_STR;
        memcpy(b, &t, 4);
        memcpy(b + 4, &e, 4);
        memcpy(b + 8, &n, 8);
        size_t pos = 16;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t l = lens ? lens[i] : strlen(strs[i]);
            memcpy(b + pos, &l, 8);
            if (l) memcpy(b + pos + 8, strs[i], (size_t)l);
            pos += 8 + (size_t)l;
        }
    }
    return put(w, key, b, total, err);
}

cke_status cke_gguf_writer_copy_kv(cke_gguf_writer *w, const cke_gguf *src, const cke_gguf_kv *kv, cke_err *err) {
    size_t size;
    const uint8_t *base = cke_gguf_file_data(src, &size);
    if (kv->raw_off > size || kv->raw_len > size - kv->raw_off)
        return cke_fail(err, CKE_ERR_ARG, "'%s': kv is not from this reader", kv->key);
    uint8_t *b = malloc(kv->raw_len ? (size_t)kv->raw_len : 1);
    if (b) memcpy(b, base + kv->raw_off, (size_t)kv->raw_len);
    return put(w, kv->key, b, (size_t)kv->raw_len, err);
}

cke_status cke_gguf_writer_add_tensor(cke_gguf_writer *w, const char *name, cke_dtype type, int ndim,
                                      const int64_t *ne, const void *data, cke_err *err) {
    if (type >= CKE_DTYPE_GGML_END || !cke_dtype_valid(type))
        return cke_fail(err, CKE_ERR_ARG, "tensor '%s': %s is not a ggml type", name, cke_dtype_name(type));
    if (ndim < 1 || ndim > CKE_GGUF_MAX_DIMS)
        return cke_fail(err, CKE_ERR_ARG, "tensor '%s': %d dimensions", name, ndim);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->ts[i].name, name)) return cke_fail(err, CKE_ERR_ARG, "duplicate tensor '%s'", name);
    wtensor t = {.type = type, .ndim = ndim, .data = data};
    for (int d = 0; d < CKE_GGUF_MAX_DIMS; d++) t.ne[d] = d < ndim ? ne[d] : 1;
    cke_err e2;
    if (cke_dtype_nbytes(type, ndim, t.ne, &t.nbytes, &e2))
        return cke_fail(err, CKE_ERR_ARG, "tensor '%s': %s", name, e2.msg);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = realloc(w->ts, cap * sizeof *p);
        if (!p) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        w->ts = p;
        w->cap_t = cap;
    }
    t.name = dupstr(name);
    if (!t.name) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    w->ts[w->n_t++] = t;
    return CKE_OK;
}

static bool wr(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }
static bool wr_u32(FILE *f, uint32_t v) { return wr(f, &v, 4); }
static bool wr_u64(FILE *f, uint64_t v) { return wr(f, &v, 8); }
static bool wr_str(FILE *f, const char *s) {
    size_t n = strlen(s);
    return wr_u64(f, n) && wr(f, s, n);
}
static bool pad(FILE *f, uint64_t *pos, uint64_t align) {
    static const uint8_t zeros[256];
    uint64_t n = (align - *pos % align) % align;
    *pos += n;
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        if (!wr(f, zeros, k)) return false;
        n -= k;
    }
    return true;
}

cke_status cke_gguf_writer_write(cke_gguf_writer *w, const char *path, cke_err *err) {
    uint64_t align = CKE_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kvs[i].key, "general.alignment")) {
            uint32_t t;
            uint64_t a = 0;
            memcpy(&t, w->kvs[i].val, 4);
            if (t == CKE_GGUF_U32) { uint32_t x; memcpy(&x, w->kvs[i].val + 4, 4); a = x; }
            else if (t == CKE_GGUF_U64) memcpy(&a, w->kvs[i].val + 4, 8);
            if (!a || (a & (a - 1)) || a > (1u << 30))
                return cke_fail(err, CKE_ERR_ARG, "general.alignment must be a power-of-two u32");
            align = a;
        }
    FILE *f = fopen(path, "wb");
    if (!f) return cke_fail(err, CKE_ERR_IO, "%s: %s", path, strerror(errno));
    bool ok = wr(f, "GGUF", 4) && wr_u32(f, 3) && wr_u64(f, w->n_t) && wr_u64(f, w->n_kv);
    uint64_t pos = 24;
    for (size_t i = 0; ok && i < w->n_kv; i++) {
        ok = wr_str(f, w->kvs[i].key) && wr(f, w->kvs[i].val, w->kvs[i].len);
        pos += 8 + strlen(w->kvs[i].key) + w->kvs[i].len;
    }
    uint64_t off = 0;
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        ok = wr_str(f, t->name) && wr_u32(f, (uint32_t)t->ndim);
        for (int d = 0; ok && d < t->ndim; d++) ok = wr_u64(f, (uint64_t)t->ne[d]);
        ok = ok && wr_u32(f, t->type) && wr_u64(f, off);
        pos += 8 + strlen(t->name) + 4 + 8 * (uint64_t)t->ndim + 4 + 8;
        off += ((uint64_t)t->nbytes + align - 1) / align * align;
    }
    ok = ok && pad(f, &pos, align);
    for (size_t i = 0; ok && i < w->n_t; i++) {
        ok = wr(f, w->ts[i].data, (size_t)w->ts[i].nbytes);
        pos += (uint64_t)w->ts[i].nbytes;
        ok = ok && pad(f, &pos, align);
    }
    int e = errno;
    if (fclose(f) != 0 && ok) { ok = false; e = errno; }
    if (!ok) {
        remove(path);
        return cke_fail(err, CKE_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return CKE_OK;
}

cke_status cke_gguf_write_vocab(const cke_gguf *g, const char *path, cke_err *err) {
    cke_gguf_writer *w = NULL;
    cke_status st = cke_gguf_writer_new(&w, err);
    for (int64_t i = 0; !st && i < cke_gguf_n_kv(g); i++) {
        const cke_gguf_kv *kv = cke_gguf_kv_at(g, i);
        if (!strncmp(kv->key, "tokenizer.", 10) || !strcmp(kv->key, "general.architecture"))
            st = cke_gguf_writer_copy_kv(w, g, kv, err);
    }
    if (!st) st = cke_gguf_writer_write(w, path, err);
    cke_gguf_writer_free(w);
    return st;
}
