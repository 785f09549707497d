/* fuzz-src: src/formats/*.c src/tokenizer/*.c src/kernels/rope_table.c src/kernels/ref/quant.c */
/* libFuzzer target: the GGUF reader must reject or accept any bytes without reading out of bounds. */
#include "formats/gguf.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cke_gguf *g;
    cke_err e;
    if (cke_gguf_open_mem(data, size, &g, &e) != CKE_OK) return 0;
    volatile unsigned acc = 0;
    for (int64_t i = 0; i < cke_gguf_n_kv(g); i++) {
        const cke_gguf_kv *kv = cke_gguf_kv_at(g, i);
        const char *s;
        size_t n;
        if (cke_gguf_get_str(g, kv->key, &s, &n) == CKE_OK && n) acc += (uint8_t)s[n - 1];
        cke_gguf_type et;
        uint64_t cnt;
        if (cke_gguf_get_arr(g, kv->key, &et, &cnt) == CKE_OK && cnt) {
            if (et == CKE_GGUF_STR && cke_gguf_arr_str(g, kv->key, cnt - 1, &s, &n) == CKE_OK && n) acc += (uint8_t)s[n - 1];
            const uint8_t *d = cke_gguf_arr_data(g, kv->key);
            if (d) acc += d[cnt * cke_gguf_type_size(et) - 1];
        }
    }
    for (int64_t i = 0; i < cke_gguf_n_tensors(g); i++) {
        const cke_gguf_tensor *t = cke_gguf_tensor_at(g, i);
        if (t->nbytes) acc += ((const uint8_t *)t->data)[t->nbytes - 1];
        if (cke_gguf_find_tensor(g, t->name) == NULL) __builtin_trap();
    }
    cke_gguf_close(g);
    return 0;
}
