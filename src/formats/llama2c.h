/* llama2.c checkpoints (fp32 only).
 *  legacy v0: 7 x int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab, seq_len};
 *     vocab < 0 means an unshared classifier stored last. Then token_embedding, rms_att[L],
 *     wq[L], wk[L], wv[L], wo[L], rms_ffn[L], w1[L], w2[L], w3[L], rms_final, freq_cis_real,
 *     freq_cis_imag (seq_len * head_size/2 floats each, unused), [wcls].
 *  v1: u32 magic 0x616b3432 ("ak42"), i32 version 1, the 7 ints, u8 shared_classifier,
 *     zero padding to 256 bytes; then rms_att[L], rms_ffn[L], rms_final, token_embedding,
 *     wq[L] ... w3[L], [wcls]; no freq_cis.
 * Matrices are [out, in] (PyTorch nn.Linear). Q/K rows are in interleaved-pair RoPE order.
 * Versions 2/3 (int8 / int4 quantized exports) give CKE_ERR_UNSUPPORTED. */
#ifndef CKE_FORMATS_LLAMA2C_H
#define CKE_FORMATS_LLAMA2C_H

#include "cke/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int version;  /* 0 = legacy */
    int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    bool shared_classifier;
    uint64_t header_bytes;
} cke_llama2c_header;

typedef struct {
    char name[32];     /* canonical model name: tok_embd, l3.attn_q, ..., output */
    int ndim;
    int64_t shape[2];  /* outermost first */
    uint64_t offset;   /* byte offset in the file */
    int64_t nbytes;
} cke_llama2c_tensor;

/* Header + validation that every weight fits in size bytes (overflow-checked). */
cke_status cke_llama2c_parse(const void *data, size_t size, cke_llama2c_header *h, cke_err *err);
/* Number of tensors for h (cls included when unshared). */
int64_t cke_llama2c_n_tensors(const cke_llama2c_header *h);
/* Fills out[0..cke_llama2c_n_tensors) with names, shapes and offsets. */
void cke_llama2c_layout(const cke_llama2c_header *h, cke_llama2c_tensor *out);

#endif
