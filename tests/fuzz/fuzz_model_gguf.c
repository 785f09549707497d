/* fuzz-src: src/formats/*.c src/tokenizer/*.c src/kernels/rope_table.c src/kernels/ref/quant.c */
/* libFuzzer target: bytes -> cke_model_open -> normalized model, the path `cke inspect/compile`
 * take. The input is the model file (a GGUF, or anything else, which goes to the llama2.c
 * loader). It is written to a memfd and opened by its /proc/self/fd path, so the real
 * open/stat/mmap path runs. Whatever opens is walked: every tensor looked up by name, small
 * float tensors converted and scanned for NaN/Inf as compile does, the GGUF tokenizer loaded
 * and its size compared with the vocabulary. Seeds: tests/fuzz/corpus/model_gguf/ (made by
 * tests/fuzz/make_corpus.py). Built and run by tests/fuzz/run.sh model_gguf. */
#define _GNU_SOURCE /* memfd_create */
#include "formats/dtype.h"
#include "formats/model.h"
#include "tokenizer/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const cke_model *m) {
    volatile int64_t acc = cke_model_n_params(m);
    static float buf[1 << 14];
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const cke_model_tensor *t = &m->tensors[i];
        if (cke_model_find(m, t->name) != t) __builtin_trap(); /* names are unique after open */
        int64_t n = cke_model_tensor_numel(t);
        if (n <= (int64_t)(sizeof buf / sizeof *buf) && cke_model_tensor_to_f32(t, buf, NULL) == CKE_OK)
            acc += cke_dtype_find_nonfinite(CKE_DT_F32, buf, n);
        if (t->nbytes > 0) acc += ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    for (int64_t l = 0; l < m->hp.n_layers && l < 4; l++) acc += cke_model_layer(m, l, "attn_q") != NULL;
    if (m->tok.source == CKE_TOK_GGUF && m->tok.path) {
        cke_tok *t = NULL;
        if (cke_tok_load(m->tok.path, &t, NULL) == CKE_OK) {
            acc += cke_tok_n_vocab(t) > m->hp.vocab;
            int32_t *ids;
            size_t ni;
            cke_tok_encode_opts o = {-1, -1, true};
            if (cke_tok_encode(t, "Once upon a time", 16, &o, &ids, &ni, NULL) == CKE_OK) free(ids);
            cke_tok_free(t);
        }
    }
    (void)acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_model.gguf", MFD_CLOEXEC);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) abort();
    cke_model *m = NULL;
    cke_err e;
    if (cke_model_open(path, &m, &e) == CKE_OK) {
        walk(m);
        cke_model_close(m);
    }
    return 0;
}
