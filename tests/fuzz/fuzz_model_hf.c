/* fuzz-src: src/formats/*.c src/tokenizer/*.c src/kernels/rope_table.c src/kernels/ref/quant.c */
/* libFuzzer target: a Hugging Face directory -> cke_model_open -> normalized model. The input is
 * config.json text, a NUL, then the bytes of model.safetensors; both are written into a
 * private temporary directory that is opened like `cke inspect DIR`. Covers the config parser,
 * the hyperparameter checks, tensor name mapping, Conv1D transposes and the fused Q|K|V /
 * gate|up splits (GPT-2, Phi-3). Seeds: tests/fuzz/corpus/model_hf/ (tests/fuzz/make_corpus.py).
 * Built and run by tests/fuzz/run.sh model_hf. */
#include "formats/model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void cleanup(void) {
    char p[128];
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    rmdir(dir);
}

static void put(const char *name, const uint8_t *p, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/cke_fuzz_hf_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir)) abort();
        atexit(cleanup);
    }
    const uint8_t *z = memchr(data, 0, size);
    size_t a = z ? (size_t)(z - data) : size;
    put("config.json", data, a);
    put("model.safetensors", z ? z + 1 : data + size, z ? size - a - 1 : 0);
    cke_model *m = NULL;
    cke_err e;
    if (cke_model_open(dir, &m, &e) == CKE_OK) {
        volatile int64_t acc = cke_model_n_params(m);
        static float buf[1 << 14];
        for (int64_t i = 0; i < m->n_tensors; i++) {
            const cke_model_tensor *t = &m->tensors[i];
            if (cke_model_find(m, t->name) != t) __builtin_trap();
            if (cke_model_tensor_numel(t) <= (int64_t)(sizeof buf / sizeof *buf)) acc += cke_model_tensor_to_f32(t, buf, NULL);
            if (t->nbytes > 0) acc += ((const uint8_t *)t->data)[t->nbytes - 1];
        }
        (void)acc;
        cke_model_close(m);
    }
    return 0;
}
