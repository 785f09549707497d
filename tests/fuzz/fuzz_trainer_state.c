/* fuzz-src: src/train/state.c src/util/*.c */
/* libFuzzer target: a checkpoint's trainer.json -> validated trainer state (src/train/state.h).
 * Any input either fails with a message or gives a state whose every field is in range and whose
 * data position is the one its step reaches; that state written back and parsed again must be
 * the same state (so a resume reads what the save wrote).
 *
 * Built and run by tests/fuzz/run.sh trainer_state (sources from the fuzz-src line); by hand:
 *   clang -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=all -Iinclude -Isrc tests/fuzz/fuzz_trainer_state.c src/train/state.c \
 *     src/util/status.c -lcjson -lm -o build-fuzz/fuzz_trainer_state
 *   ./build-fuzz/fuzz_trainer_state -max_total_time=60 tests/fuzz/corpus/trainer_state
 * Crashing inputs are kept in tests/fuzz/regress/trainer_state/ (run them as file arguments). */
#include "train/state.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c)                                                                                                        \
    do {                                                                                                               \
        if (!(c)) abort();                                                                                             \
    } while (0)

static void check_ranges(const cke_train_state *s) {
    MUST(s->batch >= 1 && s->batch <= CKE_TRAIN_MAX_BATCH && s->seq >= 2 && s->seq <= CKE_TRAIN_MAX_SEQ);
    MUST(s->accum >= 1 && s->accum <= CKE_TRAIN_MAX_ACCUM && s->steps >= 1 && s->steps <= CKE_TRAIN_MAX_STEPS);
    MUST(s->step >= 0 && s->step <= s->steps && s->epoch >= 0 && s->index >= 0 && s->index <= s->train_windows);
    MUST(s->train_windows >= s->batch && s->data_bytes >= 1);
    MUST(isfinite(s->lr) && s->lr > 0 && s->min_lr >= 0 && s->min_lr <= s->lr && isfinite(s->val_frac));
    MUST(s->val_frac >= 0 && s->val_frac <= 0.5 && s->eps > 0 && s->beta1 < 1 && s->beta2 < 1);
    MUST(memchr(s->model_file, 0, sizeof s->model_file) && memchr(s->data, 0, sizeof s->data));
    /* the position is where step ends: step * batch * accum windows taken */
    __int128 used = (__int128)s->step * s->batch * s->accum;
    if (used == 0) MUST(s->epoch == 0 && s->index == 0);
    else MUST((__int128)s->epoch * s->train_windows + s->index == used && s->index >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cke_train_state s, t;
    cke_err e;
    if (cke_train_state_parse((const char *)data, size, &s, &e) != CKE_OK) {
        MUST(e.msg[0] != 0);
        return 0;
    }
    check_ranges(&s);
    char *txt = cke_train_state_format(&s);
    MUST(txt != NULL);
    MUST(cke_train_state_parse(txt, strlen(txt), &t, &e) == CKE_OK);
    MUST(memcmp(&s, &t, sizeof s) == 0); /* parse zeroes the struct first: padding compares too */
    free(txt);
    return 0;
}
