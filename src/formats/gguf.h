/* GGUF v2/v3 reader and writer.
 *
 * Reader: cke_gguf_open maps the file read-only and validates everything up front: header,
 * every metadata value (nested arrays included, depth <= CKE_GGUF_MAX_DEPTH), tensor infos,
 * alignment (general.alignment, default 32), and that every tensor lies inside the file.
 * Anything malformed (truncation, absurd counts or lengths, sizes that overflow, unknown
 * types, duplicate keys/names, misaligned or out-of-file tensors) gives CKE_ERR_FORMAT with
 * a message naming the problem; v1 and big-endian files give CKE_ERR_UNSUPPORTED.
 * After a successful open no accessor can read out of bounds.
 *
 * Lifetimes: every pointer handed out (strings, array data, tensor data, keys, names) points
 * into the cke_gguf and stays valid until cke_gguf_close.
 * Strings from the file (values, array elements) are NOT NUL-terminated: use the length.
 * Keys and tensor names are NUL-terminated copies.
 * Numeric array data (cke_gguf_arr_data) is the packed little-endian array as stored in the
 * file and may be unaligned: read elements with memcpy, never by casting the pointer. */
#ifndef CKE_FORMATS_GGUF_H
#define CKE_FORMATS_GGUF_H

#include "cke/status.h"
#include "formats/dtype.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKE_GGUF_MAX_DIMS 4
#define CKE_GGUF_MAX_DEPTH 8          /* nested arrays: deeper files are rejected */
#define CKE_GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types, numbered as in the file. */
typedef enum {
    CKE_GGUF_U8 = 0, CKE_GGUF_I8 = 1, CKE_GGUF_U16 = 2, CKE_GGUF_I16 = 3, CKE_GGUF_U32 = 4,
    CKE_GGUF_I32 = 5, CKE_GGUF_F32 = 6, CKE_GGUF_BOOL = 7, CKE_GGUF_STR = 8, CKE_GGUF_ARR = 9,
    CKE_GGUF_U64 = 10, CKE_GGUF_I64 = 11, CKE_GGUF_F64 = 12,
    CKE_GGUF_TYPE_COUNT
} cke_gguf_type;

const char *cke_gguf_type_name(cke_gguf_type t); /* "u32", "str", "arr" ...; "?" if invalid */
size_t cke_gguf_type_size(cke_gguf_type t);      /* bytes of a numeric/bool value, 0 for str/arr */

typedef struct {
    const char *s; /* not NUL-terminated */
    size_t len;
} cke_gguf_str;

typedef struct cke_gguf_val cke_gguf_val;
struct cke_gguf_val {
    cke_gguf_type type;
    union {
        uint64_t u;        /* U8/U16/U32/U64/BOOL (0/1) */
        int64_t i;         /* I8/I16/I32/I64 */
        double f;          /* F32/F64 */
        cke_gguf_str str;  /* STR */
        struct {
            cke_gguf_type elem;
            uint64_t n;
            const void *data;         /* numeric/bool elems: packed LE, unaligned */
            const cke_gguf_str *strs; /* STR elems */
            const cke_gguf_val *items;/* ARR elems (nested arrays) */
        } arr;
    };
};

typedef struct {
    const char *key;   /* NUL-terminated */
    cke_gguf_val val;
    uint64_t raw_off;  /* file offset of the value's type field, for verbatim copies */
    uint64_t raw_len;  /* bytes of type field + value */
} cke_gguf_kv;

typedef struct {
    const char *name;  /* NUL-terminated */
    cke_dtype type;    /* a ggml type id */
    int ndim;
    int64_t ne[CKE_GGUF_MAX_DIMS]; /* ne[0] fastest-varying (row length); unused dims are 1 */
    uint64_t offset;   /* relative to the data section, as stored */
    uint64_t file_offset;
    int64_t nbytes;
    const void *data;  /* into the map; aligned to the file's alignment relative to the file start */
} cke_gguf_tensor;

typedef struct cke_gguf cke_gguf;

cke_status cke_gguf_open(const char *path, cke_gguf **out, cke_err *err);
/* The same over a caller's buffer (not copied; must outlive the cke_gguf). For fuzzing/tests. */
cke_status cke_gguf_open_mem(const void *data, size_t size, cke_gguf **out, cke_err *err);
void cke_gguf_close(cke_gguf *g);

uint32_t cke_gguf_version(const cke_gguf *g);
uint64_t cke_gguf_alignment(const cke_gguf *g);
uint64_t cke_gguf_data_offset(const cke_gguf *g); /* start of the tensor data section */
const void *cke_gguf_file_data(const cke_gguf *g, size_t *size);

/* ---- metadata ---- */
int64_t cke_gguf_n_kv(const cke_gguf *g);
const cke_gguf_kv *cke_gguf_kv_at(const cke_gguf *g, int64_t i); /* file order */
const cke_gguf_kv *cke_gguf_find_kv(const cke_gguf *g, const char *key); /* NULL if absent */

/* Typed getters: CKE_OK; CKE_ERR_MISSING when the key is absent; CKE_ERR_FORMAT when the
 * value has an incompatible type; CKE_ERR_RANGE when it does not fit. Integer getters take
 * any integer type (and bool), f64 takes any integer or float type. */
cke_status cke_gguf_get_str(const cke_gguf *g, const char *key, const char **s, size_t *len);
cke_status cke_gguf_get_u64(const cke_gguf *g, const char *key, uint64_t *v);
cke_status cke_gguf_get_i64(const cke_gguf *g, const char *key, int64_t *v);
cke_status cke_gguf_get_f64(const cke_gguf *g, const char *key, double *v);
cke_status cke_gguf_get_bool(const cke_gguf *g, const char *key, bool *v);
cke_status cke_gguf_get_arr(const cke_gguf *g, const char *key, cke_gguf_type *elem_type, uint64_t *n);
/* Element i of a string array: CKE_ERR_FORMAT if not a string array, CKE_ERR_RANGE if i >= n. */
cke_status cke_gguf_arr_str(const cke_gguf *g, const char *key, uint64_t i, const char **s, size_t *len);
/* Raw packed data of a numeric/bool array (unaligned, little-endian: memcpy elements out);
 * NULL when absent, not an array, an array of strings/arrays, or empty. */
const void *cke_gguf_arr_data(const cke_gguf *g, const char *key);

/* Value-level helpers (also for nested arrays reached through cke_gguf_val.arr.items). */
cke_status cke_gguf_val_u64(const cke_gguf_val *v, uint64_t *out);
cke_status cke_gguf_val_i64(const cke_gguf_val *v, int64_t *out);
cke_status cke_gguf_val_f64(const cke_gguf_val *v, double *out);
/* Numeric element i of an array value as double/int64 (any numeric elem type). */
cke_status cke_gguf_arr_f64(const cke_gguf_val *arr, uint64_t i, double *out);
cke_status cke_gguf_arr_i64(const cke_gguf_val *arr, uint64_t i, int64_t *out);

/* ---- tensors ---- */
int64_t cke_gguf_n_tensors(const cke_gguf *g);
const cke_gguf_tensor *cke_gguf_tensor_at(const cke_gguf *g, int64_t i); /* file order */
const cke_gguf_tensor *cke_gguf_find_tensor(const cke_gguf *g, const char *name);

/* ---- writer (gguf_writer.c) ----
 * Collects metadata and tensors, then writes a GGUF v3 file: keys in insertion order
 * (setting an existing key replaces its value in place), tensors in insertion order, each
 * tensor's data padded to the alignment (general.alignment if set as an integer, else 32).
 * Tensor data is NOT copied: it must stay valid until cke_gguf_writer_write returns. */
typedef struct cke_gguf_writer cke_gguf_writer;

cke_status cke_gguf_writer_new(cke_gguf_writer **out, cke_err *err);
void cke_gguf_writer_free(cke_gguf_writer *w);
/* A scalar of any numeric/bool type; *v points to a value of that type (uint8_t for BOOL). */
cke_status cke_gguf_writer_set_scalar(cke_gguf_writer *w, const char *key, cke_gguf_type type,
                                      const void *v, cke_err *err);
cke_status cke_gguf_writer_set_u32(cke_gguf_writer *w, const char *key, uint32_t v, cke_err *err);
cke_status cke_gguf_writer_set_i32(cke_gguf_writer *w, const char *key, int32_t v, cke_err *err);
cke_status cke_gguf_writer_set_u64(cke_gguf_writer *w, const char *key, uint64_t v, cke_err *err);
cke_status cke_gguf_writer_set_f32(cke_gguf_writer *w, const char *key, float v, cke_err *err);
cke_status cke_gguf_writer_set_f64(cke_gguf_writer *w, const char *key, double v, cke_err *err);
cke_status cke_gguf_writer_set_bool(cke_gguf_writer *w, const char *key, bool v, cke_err *err);
cke_status cke_gguf_writer_set_str(cke_gguf_writer *w, const char *key, const char *s, size_t len, cke_err *err);
/* Array of n numeric/bool elements, packed in host (= little-endian) layout. */
cke_status cke_gguf_writer_set_arr(cke_gguf_writer *w, const char *key, cke_gguf_type elem,
                                   const void *data, uint64_t n, cke_err *err);
/* Array of n strings; lens may be NULL (then each is strlen'ed). */
cke_status cke_gguf_writer_set_arr_str(cke_gguf_writer *w, const char *key, const char *const *strs,
                                       const size_t *lens, uint64_t n, cke_err *err);
/* Any value from an open reader, verbatim (nested arrays included). */
cke_status cke_gguf_writer_copy_kv(cke_gguf_writer *w, const cke_gguf *src, const cke_gguf_kv *kv, cke_err *err);
/* ne[0] fastest-varying; any ggml type with known block size (nbytes is computed). */
cke_status cke_gguf_writer_add_tensor(cke_gguf_writer *w, const char *name, cke_dtype type, int ndim,
                                      const int64_t *ne, const void *data, cke_err *err);
cke_status cke_gguf_writer_write(cke_gguf_writer *w, const char *path, cke_err *err);
/* A vocab-only GGUF at path: g's tokenizer.* keys and general.architecture, no tensors. */
cke_status cke_gguf_write_vocab(const cke_gguf *g, const char *path, cke_err *err);

#endif
