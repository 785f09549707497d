/* fuzz-src: src/formats/*.c src/tokenizer/*.c src/kernels/rope_table.c src/kernels/ref/quant.c */
/* libFuzzer target: the safetensors reader (header JSON + offsets) on arbitrary bytes. */
#include "formats/safetensors.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cke_safetensors *st;
    cke_err e;
    if (cke_safetensors_open_mem(data, size, &st, &e) != CKE_OK) return 0;
    volatile unsigned acc = 0;
    for (int64_t i = 0; i < cke_safetensors_n_tensors(st); i++) {
        const cke_safetensors_tensor *t = cke_safetensors_tensor_at(st, i);
        if (t->nbytes) acc += ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    cke_safetensors_close(st);
    return 0;
}
