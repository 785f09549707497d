/* Tensor element types: every ggml (GGUF) type plus the safetensors-only ones.
 *
 * Values below CKE_DTYPE_GGML_END are ggml's own type ids (the number stored in a GGUF
 * tensor info), so a GGUF type converts by a range check plus a traits lookup. Types that
 * only safetensors has (U8, BOOL, F8 ...) sit above that range. Ids ggml retired (4, 5, 31-33,
 * 36-38) have no traits entry (name NULL) and are rejected.
 *
 * Quantized types are stored in blocks: `blck` elements take `type_size` bytes, and a row's
 * element count (ne0) must be a multiple of blck. */
#ifndef CKE_FORMATS_DTYPE_H
#define CKE_FORMATS_DTYPE_H

#include "cke/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CKE_DT_F32 = 0, CKE_DT_F16 = 1, CKE_DT_Q4_0 = 2, CKE_DT_Q4_1 = 3,
    CKE_DT_Q5_0 = 6, CKE_DT_Q5_1 = 7, CKE_DT_Q8_0 = 8, CKE_DT_Q8_1 = 9,
    CKE_DT_Q2_K = 10, CKE_DT_Q3_K = 11, CKE_DT_Q4_K = 12, CKE_DT_Q5_K = 13, CKE_DT_Q6_K = 14,
    CKE_DT_Q8_K = 15, CKE_DT_IQ2_XXS = 16, CKE_DT_IQ2_XS = 17, CKE_DT_IQ3_XXS = 18,
    CKE_DT_IQ1_S = 19, CKE_DT_IQ4_NL = 20, CKE_DT_IQ3_S = 21, CKE_DT_IQ2_S = 22,
    CKE_DT_IQ4_XS = 23, CKE_DT_I8 = 24, CKE_DT_I16 = 25, CKE_DT_I32 = 26, CKE_DT_I64 = 27,
    CKE_DT_F64 = 28, CKE_DT_IQ1_M = 29, CKE_DT_BF16 = 30, CKE_DT_TQ1_0 = 34, CKE_DT_TQ2_0 = 35,
    CKE_DT_MXFP4 = 39,
    CKE_DTYPE_GGML_END = 40,
    /* not ggml types: only safetensors has them */
    CKE_DT_U8 = 40, CKE_DT_BOOL, CKE_DT_U16, CKE_DT_U32, CKE_DT_U64, CKE_DT_F8_E4M3,
    CKE_DT_F8_E5M2,
    CKE_DTYPE_COUNT
} cke_dtype;

typedef struct {
    const char *name;   /* ggml's name ("f32", "q8_0"); NULL for an unused id */
    const char *st_name;/* safetensors dtype string ("F32", "BF16"), NULL when it has none */
    int64_t blck;       /* elements per block (1 for plain types) */
    int64_t type_size;  /* bytes per block */
    bool quantized;
} cke_dtype_traits;

/* NULL for an id out of range or unused. */
const cke_dtype_traits *cke_dtype_traits_of(int dtype);
bool cke_dtype_valid(int dtype);
/* "?" for an invalid id, so it is always printable. */
const char *cke_dtype_name(int dtype);
/* Lookup by safetensors dtype string; returns -1 when unknown. */
int cke_dtype_from_st_name(const char *s);

/* Bytes of a tensor with ne[0..ndim) elements (ne[0] fastest-varying), overflow-checked:
 * CKE_ERR_FORMAT when ne[0] is not a multiple of the block size, a dim is negative, or the
 * size does not fit in int64. */
cke_status cke_dtype_nbytes(int dtype, int ndim, const int64_t *ne, int64_t *nbytes, cke_err *err);

/* IEEE half / bfloat16 <-> float. Exact (no rounding) from 16 bits to float; to 16 bits
 * rounds to nearest even, NaN stays NaN. */
float cke_f16_to_f32(uint16_t h);
uint16_t cke_f32_to_f16(float f);
float cke_bf16_to_f32(uint16_t h);
uint16_t cke_f32_to_bf16(float f);
/* n elements from src (little-endian, may be unaligned) to dst. */
void cke_f16_to_f32_row(float *dst, const void *src, int64_t n);
void cke_bf16_to_f32_row(float *dst, const void *src, int64_t n);
void cke_f32_to_f16_row(void *dst, const float *src, int64_t n);
/* Converts n elements of an F32/F16/BF16/F64 tensor to float; CKE_ERR_UNSUPPORTED otherwise. */
cke_status cke_dtype_to_f32(float *dst, int dtype, const void *src, int64_t n, cke_err *err);
/* Index of the first NaN or Inf among n elements of an F32/F16/BF16/F64 array (bits only: an
 * exponent of all ones), -1 when all are finite or the type is not one of those. */
int64_t cke_dtype_find_nonfinite(int dtype, const void *src, int64_t n);

#endif
