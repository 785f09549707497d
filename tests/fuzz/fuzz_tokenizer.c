/* fuzz-src: src/formats/*.c src/tokenizer/*.c src/kernels/rope_table.c src/kernels/ref/quant.c */
/* libFuzzer target: tokenizer loaders + encode/decode on arbitrary bytes.
 * The first input byte picks the loader (llama2.c tokenizer.bin, tokenizer.json, GGUF metadata,
 * encoder.json + merges split at the first NUL); the rest is the file. Whatever loads is used
 * to encode a fixed text and a slice of the input, and to decode the ids back.
 *
 * Built and run by tests/fuzz/run.sh tokenizer (FUZZ_SECONDS=60); by hand:
 *   clang -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *     tests/fuzz/fuzz_tokenizer.c src/tokenizer/tokenizer.c src/tokenizer/tok_load.c src/formats/gguf.c \
 *     src/formats/arena.c src/formats/dtype.c src/formats/mapfile.c src/util/status.c \
 *     -lcjson -lpcre2-8 -lutf8proc -lm -o build/fuzz_tokenizer
 *   ./build/fuzz_tokenizer -max_total_time=60 -max_len=65536 */
#include "tokenizer/tokenizer.h"
#include "formats/gguf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const cke_tok *t, const uint8_t *data, size_t size) {
    static const char text[] = "Hello world! <s> <|endoftext|> \xC3\xA9\xE2\x96\x81 12345 \xF0\x9F\xA6\x99\n\t  x";
    cke_tok_encode_opts o = {-1, -1, true};
    for (int k = 0; k < 2; k++) {
        const char *s = k ? (const char *)data : text;
        size_t n = k ? (size > 512 ? 512 : size) : sizeof text - 1;
        int32_t *ids;
        size_t ni;
        cke_err e;
        if (cke_tok_encode(t, s, n, &o, &ids, &ni, &e) == CKE_OK) {
            char *out;
            size_t ol;
            if (cke_tok_decode(t, ids, ni, 0, &out, &ol, &e) == CKE_OK) free(out);
            free(ids);
        }
        o.parse_special = false;
    }
    for (int32_t id = -1; id <= cke_tok_n_vocab(t) && id < 64; id++) {
        size_t l;
        (void)cke_tok_piece(t, id, &l);
        (void)cke_tok_type_of(t, id);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t which = data[0] % 4;
    data++;
    size--;
    cke_tok *t = NULL;
    cke_err e;
    switch (which) {
    case 0: cke_tok_load_llama2c(data, size, &t, &e); break;
    case 1: cke_tok_load_hf_json((const char *)data, size, &t, &e); break;
    case 2: {
        cke_gguf *g;
        if (cke_gguf_open_mem(data, size, &g, &e) == CKE_OK) {
            cke_tok_load_gguf(g, &t, &e);
            cke_gguf_close(g);
        }
        break;
    }
    default: {
        const uint8_t *z = memchr(data, 0, size);
        size_t a = z ? (size_t)(z - data) : size;
        cke_tok_load_gpt2((const char *)data, a, z ? (const char *)z + 1 : "", z ? size - a - 1 : 0, &t, &e);
        break;
    }
    }
    if (t) {
        exercise(t, data, size);
        cke_tok_free(t);
    }
    return 0;
}
