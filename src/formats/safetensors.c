/* safetensors: JSON header through cJSON, tensors as views into read-only maps. */
#include "formats/safetensors.h"

#include "formats/arena.h"
#include "formats/mapfile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct cke_safetensors {
    int n_shards;
    cke_map *maps;     /* owned maps (empty entries for open_mem) */
    char **paths;
    cke_safetensors_tensor *ts;
    int64_t n, cap;
    const cke_safetensors_tensor **sorted;
    char **meta;       /* key, value, key, value ... (first shard) */
    int n_meta;
    cke_arena arena;
};

#define TRY(x) do { cke_status s_ = (x); if (s_) return s_; } while (0)

/* A JSON number that is a non-negative integer below 2^53 (exact in a double). */
static bool json_uint(const cJSON *j, int64_t *v) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || floor(d) != d) return false;
    *v = (int64_t)d;
    return true;
}

static cke_status add_tensor(cke_safetensors *st, const cke_safetensors_tensor *t, cke_err *err) {
    if (st->n == st->cap) {
        int64_t cap = st->cap ? 2 * st->cap : 64;
        cke_safetensors_tensor *p = realloc(st->ts, (size_t)cap * sizeof *p);
        if (!p) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        st->ts = p;
        st->cap = cap;
    }
    st->ts[st->n++] = *t;
    return CKE_OK;
}

static cke_status parse_tensor(cke_safetensors *st, const cJSON *it, int shard, const uint8_t *buf,
                               uint64_t buf_size, uint64_t buf_off, const char *file, cke_err *err) {
    const char *name = it->string;
    if (!cJSON_IsObject(it)) return cke_fail(err, CKE_ERR_FORMAT, "%s: '%s' is not an object", file, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s' needs dtype, shape and data_offsets [begin, end]",
                        file, name);
    cke_safetensors_tensor t = {.shard = shard};
    int d = cke_dtype_from_st_name(dt->valuestring);
    if (d < 0) return cke_fail(err, CKE_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown dtype '%s'", file, name,
                               dt->valuestring);
    t.dtype = (cke_dtype)d;
    int nd = cJSON_GetArraySize(sh);
    if (nd > CKE_ST_MAX_DIMS)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (max %d)", file, name, nd,
                        CKE_ST_MAX_DIMS);
    t.ndim = nd;
    int k = 0;
    int64_t ne[CKE_ST_MAX_DIMS];
    for (const cJSON *x = sh->child; x; x = x->next, k++)
        if (!json_uint(x, &t.shape[k]))
            return cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s': bad shape entry", file, name);
    for (int i = 0; i < nd; i++) ne[i] = t.shape[nd - 1 - i];
    cke_err e2;
    if (cke_dtype_nbytes(t.dtype, nd, ne, &t.nbytes, &e2))
        return cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s': %s", file, name, e2.msg);
    int64_t b, e;
    if (!json_uint(of->child, &b) || !json_uint(of->child->next, &e) || b > e)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s': bad data_offsets", file, name);
    if ((uint64_t)e > buf_size)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s': data [%lld, %lld) extends past the %llu-byte buffer",
                        file, name, (long long)b, (long long)e, (unsigned long long)buf_size);
    if (e - b != t.nbytes)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s': data_offsets span %lld bytes, shape needs %lld",
                        file, name, (long long)(e - b), (long long)t.nbytes);
    t.name = cke_arena_strndup(&st->arena, name, strlen(name));
    if (!t.name) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    t.file_offset = buf_off + (uint64_t)b;
    t.data = buf + b;
    return add_tensor(st, &t, err);
}

static cke_status parse_file(cke_safetensors *st, int shard, const uint8_t *data, size_t size, const char *file,
                             cke_err *err) {
    uint64_t hlen;
    if (size < 8) return cke_fail(err, CKE_ERR_FORMAT, "%s: truncated header (%zu bytes)", file, size);
    memcpy(&hlen, data, 8);
    if (hlen > size - 8)
        return cke_fail(err, CKE_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes)", file,
                        (unsigned long long)hlen, size);
    if (hlen < 2 || data[8] != '{')
        return cke_fail(err, CKE_ERR_FORMAT, "%s: not a safetensors file (header is not a JSON object)", file);
    cJSON *root = cJSON_ParseWithLength((const char *)data + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cke_fail(err, CKE_ERR_FORMAT, "%s: header is not valid JSON", file);
    }
    cke_status s = CKE_OK;
    const uint8_t *buf = data + 8 + hlen;
    uint64_t buf_size = size - 8 - hlen;
    for (const cJSON *it = root->child; it && !s; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) {
            if (!cJSON_IsObject(it)) { s = cke_fail(err, CKE_ERR_FORMAT, "%s: __metadata__ is not an object", file); break; }
            if (shard != 0) continue;
            int n = cJSON_GetArraySize(it);
            st->meta = cke_arena_calloc(&st->arena, (size_t)n * 2 + 1, sizeof(char *));
            if (!st->meta) { s = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); break; }
            for (const cJSON *m = it->child; m; m = m->next) {
                if (!cJSON_IsString(m)) { s = cke_fail(err, CKE_ERR_FORMAT, "%s: __metadata__ values must be strings", file); break; }
                char *k = cke_arena_strndup(&st->arena, m->string, strlen(m->string));
                char *v = cke_arena_strndup(&st->arena, m->valuestring, strlen(m->valuestring));
                if (!k || !v) { s = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); break; }
                st->meta[2 * st->n_meta] = k;
                st->meta[2 * st->n_meta + 1] = v;
                st->n_meta++;
            }
            continue;
        }
        s = parse_tensor(st, it, shard, buf, buf_size, 8 + hlen, file, err);
    }
    cJSON_Delete(root);
    return s;
}

static int cmp_t(const void *a, const void *b) {
    return strcmp((*(const cke_safetensors_tensor *const *)a)->name, (*(const cke_safetensors_tensor *const *)b)->name);
}

static cke_status finish(cke_safetensors *st, cke_err *err) {
    st->sorted = cke_arena_calloc(&st->arena, (size_t)st->n + 1, sizeof *st->sorted);
    if (!st->sorted) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < st->n; i++) st->sorted[i] = &st->ts[i];
    qsort(st->sorted, (size_t)st->n, sizeof *st->sorted, cmp_t);
    for (int64_t i = 1; i < st->n; i++)
        if (!strcmp(st->sorted[i]->name, st->sorted[i - 1]->name))
            return cke_fail(err, CKE_ERR_FORMAT, "duplicate tensor '%s'", st->sorted[i]->name);
    return CKE_OK;
}

static cke_status alloc_shards(cke_safetensors *st, int n, cke_err *err) {
    st->maps = cke_arena_calloc(&st->arena, (size_t)n, sizeof *st->maps);
    st->paths = cke_arena_calloc(&st->arena, (size_t)n, sizeof *st->paths);
    if (!st->maps || !st->paths) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    return CKE_OK;
}

cke_status cke_safetensors_open_mem(const void *data, size_t size, cke_safetensors **out, cke_err *err) {
    *out = NULL;
    cke_safetensors *st = calloc(1, sizeof *st);
    if (!st) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_status s = alloc_shards(st, 1, err);
    if (!s) {
        st->n_shards = 1;
        st->paths[0] = cke_arena_strndup(&st->arena, "<memory>", 8);
        s = parse_file(st, 0, data, size, "<memory>", err);
    }
    if (!s) s = finish(st, err);
    if (s) { cke_safetensors_close(st); return s; }
    *out = st;
    return CKE_OK;
}

static char *join(cke_arena *a, const char *dir, const char *name) {
    size_t ld = strlen(dir), ln = strlen(name);
    char *p = cke_arena_alloc(a, ld + ln + 2);
    if (p) {
        memcpy(p, dir, ld);
        p[ld] = '/';
        memcpy(p + ld + 1, name, ln + 1);
    }
    return p;
}

static cke_status open_shard(cke_safetensors *st, int i, const char *path, cke_err *err) {
    st->paths[i] = cke_arena_strndup(&st->arena, path, strlen(path));
    if (!st->paths[i]) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    TRY(cke_map_open(path, &st->maps[i], err));
    st->n_shards = i + 1;
    return parse_file(st, i, st->maps[i].data, st->maps[i].size, path, err);
}

static cke_status open_index(cke_safetensors *st, const char *index_path, cke_err *err) {
    cke_map m;
    TRY(cke_map_open(index_path, &m, err));
    cJSON *root = m.data ? cJSON_ParseWithLength((const char *)m.data, m.size) : NULL;
    cke_map_close(&m);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return cke_fail(err, CKE_ERR_FORMAT, "%s: not JSON with a weight_map object", index_path);
    }
    /* directory of the index */
    char *dir = cke_arena_strndup(&st->arena, index_path, strlen(index_path));
    cke_status s = dir ? CKE_OK : cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    if (dir) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0; else strcpy(dir, ".");
    }
    int n = cJSON_GetArraySize(wm), nf = 0;
    const char **files = s ? NULL : cke_arena_calloc(&st->arena, (size_t)n + 1, sizeof *files);
    if (!s && !files) s = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    for (const cJSON *it = s ? NULL : wm->child; it && !s; it = it->next) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, '/') || !it->valuestring[0] ||
            !strcmp(it->valuestring, "..")) {
            s = cke_fail(err, CKE_ERR_FORMAT, "%s: bad shard name for '%s'", index_path, it->string);
            break;
        }
        int j = 0;
        while (j < nf && strcmp(files[j], it->valuestring)) j++;
        if (j == nf) files[nf++] = it->valuestring;
    }
    if (!s) s = alloc_shards(st, nf ? nf : 1, err);
    for (int i = 0; i < nf && !s; i++) {
        char *p = join(&st->arena, dir, files[i]);
        s = p ? open_shard(st, i, p, err) : cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    }
    if (!s) s = finish(st, err);
    /* every weight_map entry must be in the file it names */
    for (const cJSON *it = s ? NULL : wm->child; it && !s; it = it->next) {
        const cke_safetensors_tensor *t = cke_safetensors_find(st, it->string);
        if (!t) s = cke_fail(err, CKE_ERR_MISSING, "%s: tensor '%s' is not in %s", index_path, it->string, it->valuestring);
        else if (strcmp(files[t->shard], it->valuestring))
            s = cke_fail(err, CKE_ERR_FORMAT, "%s: tensor '%s' is in %s, not %s", index_path, it->string,
                         files[t->shard], it->valuestring);
    }
    cJSON_Delete(root);
    return s;
}

cke_status cke_safetensors_open(const char *path, cke_safetensors **out, cke_err *err) {
    *out = NULL;
    cke_safetensors *st = calloc(1, sizeof *st);
    if (!st) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_status s;
    struct stat sb;
    size_t lp = strlen(path);
    if (stat(path, &sb) != 0) {
        s = cke_fail(err, CKE_ERR_IO, "%s: %s", path, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        char *idx = join(&st->arena, path, "model.safetensors.index.json");
        char *one = join(&st->arena, path, "model.safetensors");
        if (!idx || !one) s = cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        else if (stat(idx, &sb) == 0) s = open_index(st, idx, err);
        else if (stat(one, &sb) == 0) {
            s = alloc_shards(st, 1, err);
            if (!s) s = open_shard(st, 0, one, err);
            if (!s) s = finish(st, err);
        } else s = cke_fail(err, CKE_ERR_MISSING, "%s: no model.safetensors(.index.json)", path);
    } else if (lp >= 5 && !strcmp(path + lp - 5, ".json")) {
        s = open_index(st, path, err);
    } else {
        s = alloc_shards(st, 1, err);
        if (!s) s = open_shard(st, 0, path, err);
        if (!s) s = finish(st, err);
    }
    if (s) { cke_safetensors_close(st); return s; }
    *out = st;
    return CKE_OK;
}

void cke_safetensors_close(cke_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_shards; i++) cke_map_close(&st->maps[i]);
    free(st->ts);
    cke_arena_free(&st->arena);
    free(st);
}

int64_t cke_safetensors_n_tensors(const cke_safetensors *st) { return st->n; }
const cke_safetensors_tensor *cke_safetensors_tensor_at(const cke_safetensors *st, int64_t i) {
    return i >= 0 && i < st->n ? &st->ts[i] : NULL;
}
const cke_safetensors_tensor *cke_safetensors_find(const cke_safetensors *st, const char *name) {
    int64_t lo = 0, hi = st->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->sorted[mid]->name, name);
        if (!c) return st->sorted[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}
int cke_safetensors_n_shards(const cke_safetensors *st) { return st->n_shards; }
const char *cke_safetensors_shard_path(const cke_safetensors *st, int shard) {
    return shard >= 0 && shard < st->n_shards ? st->paths[shard] : NULL;
}
const char *cke_safetensors_metadata(const cke_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[2 * i], key)) return st->meta[2 * i + 1];
    return NULL;
}

/* ---- writer ---- */
typedef struct {
    char *name;
    cke_dtype dtype;
    int ndim;
    int64_t shape[CKE_ST_MAX_DIMS];
    int64_t nbytes;
    const void *data;
} wt;

struct cke_safetensors_writer {
    cJSON *meta;
    wt *ts;
    size_t n, cap;
};

cke_status cke_safetensors_writer_new(cke_safetensors_writer **out, cke_err *err) {
    *out = calloc(1, sizeof **out);
    return *out ? CKE_OK : cke_fail(err, CKE_ERR_NOMEM, "out of memory");
}

void cke_safetensors_writer_free(cke_safetensors_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->ts[i].name);
    free(w->ts);
    cJSON_Delete(w->meta);
    free(w);
}

cke_status cke_safetensors_writer_set_metadata(cke_safetensors_writer *w, const char *key, const char *val,
                                               cke_err *err) {
    if (!w->meta && !(w->meta = cJSON_CreateObject())) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
    if (!cJSON_AddStringToObject(w->meta, key, val)) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    return CKE_OK;
}

cke_status cke_safetensors_writer_add(cke_safetensors_writer *w, const char *name, cke_dtype dtype, int ndim,
                                      const int64_t *shape, const void *data, cke_err *err) {
    const cke_dtype_traits *tr = cke_dtype_traits_of(dtype);
    if (!tr || !tr->st_name)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "tensor '%s': safetensors has no dtype %s", name, cke_dtype_name(dtype));
    if (ndim < 0 || ndim > CKE_ST_MAX_DIMS) return cke_fail(err, CKE_ERR_ARG, "tensor '%s': %d dims", name, ndim);
    if (!strcmp(name, "__metadata__")) return cke_fail(err, CKE_ERR_ARG, "reserved tensor name");
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->ts[i].name, name)) return cke_fail(err, CKE_ERR_ARG, "duplicate tensor '%s'", name);
    wt t = {.dtype = dtype, .ndim = ndim, .data = data};
    int64_t ne[CKE_ST_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || shape[i] > (INT64_C(1) << 53))
            return cke_fail(err, CKE_ERR_ARG, "tensor '%s': bad shape", name);
        t.shape[i] = shape[i];
        ne[i] = shape[ndim - 1 - i];
    }
    cke_err e2;
    if (cke_dtype_nbytes(dtype, ndim, ne, &t.nbytes, &e2))
        return cke_fail(err, CKE_ERR_ARG, "tensor '%s': %s", name, e2.msg);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        wt *p = realloc(w->ts, cap * sizeof *p);
        if (!p) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
        w->ts = p;
        w->cap = cap;
    }
    size_t ln = strlen(name) + 1;
    if (!(t.name = malloc(ln))) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    memcpy(t.name, name, ln);
    w->ts[w->n++] = t;
    return CKE_OK;
}

static char *build_header(const cke_safetensors_writer *w) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    bool ok = true;
    if (w->meta) {
        cJSON *m = cJSON_Duplicate(w->meta, 1);
        ok = m && cJSON_AddItemToObject(root, "__metadata__", m);
    }
    int64_t off = 0;
    for (size_t i = 0; ok && i < w->n; i++) {
        const wt *t = &w->ts[i];
        cJSON *o = cJSON_CreateObject(), *sh = cJSON_CreateArray(), *of = cJSON_CreateArray();
        ok = o && sh && of && cJSON_AddStringToObject(o, "dtype", cke_dtype_traits_of(t->dtype)->st_name);
        for (int d = 0; ok && d < t->ndim; d++) ok = cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        ok = ok && cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off)) &&
             cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + t->nbytes)));
        if (ok) {
            cJSON_AddItemToObject(o, "shape", sh);
            cJSON_AddItemToObject(o, "data_offsets", of);
            cJSON_AddItemToObject(root, t->name, o);
        } else {
            cJSON_Delete(o); cJSON_Delete(sh); cJSON_Delete(of);
        }
        off += t->nbytes;
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

cke_status cke_safetensors_writer_write(cke_safetensors_writer *w, const char *path, cke_err *err) {
    char *hdr = build_header(w);
    if (!hdr) return cke_fail(err, CKE_ERR_NOMEM, "out of memory building the header");
    size_t hl = strlen(hdr);
    uint64_t padded = (hl + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        cJSON_free(hdr);
        return cke_fail(err, CKE_ERR_IO, "%s: %s", path, strerror(errno));
    }
    bool ok = fwrite(&padded, 8, 1, f) == 1 && fwrite(hdr, 1, hl, f) == hl;
    for (uint64_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (size_t i = 0; ok && i < w->n; i++)
        ok = w->ts[i].nbytes == 0 || fwrite(w->ts[i].data, 1, (size_t)w->ts[i].nbytes, f) == (size_t)w->ts[i].nbytes;
    cJSON_free(hdr);
    int e = errno;
    if (fclose(f) != 0 && ok) { ok = false; e = errno; }
    if (!ok) {
        remove(path);
        return cke_fail(err, CKE_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return CKE_OK;
}
