/* safetensors reader (single file or sharded through model.safetensors.index.json) and writer.
 *
 * File: u64 header length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets":
 * [begin, end]}, "__metadata__": {str: str}}, then the byte buffer (offsets relative to it).
 * The reader maps each file read-only and validates: N fits in the file, the JSON parses,
 * every dtype is known, shapes are non-negative integers, end-begin equals the shape's byte
 * size (with overflow checks), [begin, end) lies inside the buffer. Violations give
 * CKE_ERR_FORMAT naming the file and tensor; an unknown dtype gives CKE_ERR_UNSUPPORTED.
 * Shapes are as stored: row-major, outermost first (PyTorch order), the reverse of GGUF's ne. */
#ifndef CKE_FORMATS_SAFETENSORS_H
#define CKE_FORMATS_SAFETENSORS_H

#include "cke/status.h"
#include "formats/dtype.h"

#include <stddef.h>
#include <stdint.h>

#define CKE_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    cke_dtype dtype;
    int ndim;
    int64_t shape[CKE_ST_MAX_DIMS]; /* outermost first */
    int shard;                      /* index of the file holding it (0 for a single file) */
    uint64_t file_offset;           /* of the first byte in that file */
    int64_t nbytes;
    const void *data;               /* into the map; may be unaligned */
} cke_safetensors_tensor;

typedef struct cke_safetensors cke_safetensors;

/* path: a .safetensors file, a *.index.json (shards are looked up next to it), or a directory
 * holding model.safetensors.index.json or model.safetensors. Shard names with '/' are rejected. */
cke_status cke_safetensors_open(const char *path, cke_safetensors **out, cke_err *err);
/* One file's bytes (not copied, must outlive the result): for fuzzing/tests. */
cke_status cke_safetensors_open_mem(const void *data, size_t size, cke_safetensors **out, cke_err *err);
void cke_safetensors_close(cke_safetensors *st);

int64_t cke_safetensors_n_tensors(const cke_safetensors *st);
const cke_safetensors_tensor *cke_safetensors_tensor_at(const cke_safetensors *st, int64_t i);
const cke_safetensors_tensor *cke_safetensors_find(const cke_safetensors *st, const char *name);
int cke_safetensors_n_shards(const cke_safetensors *st);
const char *cke_safetensors_shard_path(const cke_safetensors *st, int shard);
/* __metadata__ value (of the first shard) or NULL. */
const char *cke_safetensors_metadata(const cke_safetensors *st, const char *key);

/* ---- writer: tensors in insertion order, header padded with spaces to 8 bytes.
 * Data is not copied: it must stay valid until write returns. ---- */
typedef struct cke_safetensors_writer cke_safetensors_writer;
cke_status cke_safetensors_writer_new(cke_safetensors_writer **out, cke_err *err);
void cke_safetensors_writer_free(cke_safetensors_writer *w);
cke_status cke_safetensors_writer_set_metadata(cke_safetensors_writer *w, const char *key, const char *val,
                                               cke_err *err);
/* dtype must have a safetensors name (F32, F16, BF16, F64, I8..I64, U8..U64, BOOL, F8_*). */
cke_status cke_safetensors_writer_add(cke_safetensors_writer *w, const char *name, cke_dtype dtype, int ndim,
                                      const int64_t *shape, const void *data, cke_err *err);
cke_status cke_safetensors_writer_write(cke_safetensors_writer *w, const char *path, cke_err *err);

#endif
