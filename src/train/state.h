/* trainer.json: what a checkpoint records about its run, so that --resume continues exactly or
 * refuses. Parsing is pure (text in, validated state or an error naming the field out) so that
 * tests/fuzz/fuzz_trainer_state.c reaches it directly.
 *
 * Every field is checked on its own (type, integral where it counts, finite, range) and against
 * the others: the data position (epoch, index) must be the one `step` reaches, given the number
 * of training windows, batch and accum. */
#ifndef CKE_TRAIN_STATE_H
#define CKE_TRAIN_STATE_H

#include "cke/status.h"

#include <stddef.h>
#include <stdint.h>

#define CKE_TRAIN_STATE_VERSION 2

/* limits shared by `cke train`'s options and the checkpoint check; integers stay below 2^53 so
 * that they survive JSON's doubles exactly */
#define CKE_TRAIN_MAX_BATCH 65536
#define CKE_TRAIN_MAX_SEQ (1 << 20)
#define CKE_TRAIN_MAX_ACCUM 65536
#define CKE_TRAIN_MAX_STEPS 1000000000000LL /* 1e12 */
#define CKE_TRAIN_MAX_THREADS 4096
#define CKE_TRAIN_MAX_INT 9007199254740992LL /* 2^53 */
#define CKE_TRAIN_MAX_LR 10.0

typedef struct {
    int64_t step;           /* optimizer steps done */
    int64_t epoch, index;   /* data position after them: window `index` of epoch `epoch` is next */
    char model_file[32];    /* model.gguf, model.safetensors or model.bin */
    /* what the run was started with: a resume must match them (steps may grow) */
    int64_t batch, seq, accum, steps, warmup, threads;
    double lr, min_lr, wd, clip, beta1, beta2, eps, val_frac;
    uint64_t seed;          /* <= 2^53 */
    int64_t data_bytes;     /* the data file: size and FNV-1a 64 hash of its bytes */
    uint64_t data_hash;
    int64_t train_windows;  /* windows of seq + 1 tokens in the training split */
    char data[1024];        /* the data file's path as given (a default for --resume, not checked) */
    int64_t ranks;          /* data-parallel processes (1 when absent: checkpoints before MPI) */
    double router_aux_coef; /* --router-aux-coef, -1: the model's own (and when absent: checkpoints before it) */
    int bf16;               /* --precision bf16: the linear layers' products in bf16 (0 when absent: fp32) */
    char isa[16];           /* the kernel table the run used (ref, avx2, avx512): results are
                               bit-identical only on the same one */
} cke_train_state;

/* FNV-1a 64 of a byte string, continuing from h (start with CKE_FNV64_INIT) */
#define CKE_FNV64_INIT 0xcbf29ce484222325ull
uint64_t cke_train_fnv64(uint64_t h, const void *data, size_t n);

/* trainer.json text (len bytes, no terminator needed) -> a state that passed every check above.
 * Errors read "trainer.json: "index": -7 is not in [0, 2^53]" and the like. */
cke_status cke_train_state_parse(const char *text, size_t len, cke_train_state *s, cke_err *err);

/* The state as trainer.json text (malloc'd, NUL-terminated), or NULL when out of memory. */
char *cke_train_state_format(const cke_train_state *s);

#endif
