/* What the end-to-end test programs (compiler, families, train) share: PASS/FAIL lines and
 * counts, file helpers, where cke's resources and the real models are, a scratch directory. */
#ifndef CKE_TESTS_COMMON_H
#define CKE_TESTS_COMMON_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "cke/status.h"
#include "runtime/runner.h"

extern char tc_tmp[PATH_MAX];                              /* scratch directory of this run */
extern char tc_inc[PATH_MAX], tc_tpl[PATH_MAX], tc_libk[PATH_MAX]; /* cke_locate_resources */
extern const char *tc_models;                              /* $CKE_MODELS or ../shared/models */

/* One line per check: "PASS name" or "FAIL name: why". */
void tc_result(const char *name, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int tc_have(const char *path);
/* The whole file, NUL-terminated (malloc'd), or NULL. */
char *tc_slurp(const char *path, size_t *len);
/* A reference's ref.bin (tests/torch/ref_*.py: i32 T, i32 V, i32 ids[T], f32 logits[T][V]),
 * checked against the model's vocabulary and the file size; NULL when absent or malformed. The
 * ids start at buf + 8 and the logits at buf + 8 + 4T (malloc'd, so both are aligned). */
char *tc_load_ref_bin(const char *path, int64_t vocab, int32_t *T, int32_t *V);
/* tc_load_ref_bin for a test that needs at least 6 positions: on failure it reports FAIL name
 * ("bad ref.bin"), closes the runner and returns NULL. */
char *tc_ref_or_fail(const char *name, const char *path, cke_runner *r, int32_t *T, int32_t *V);
/* Locates resources and makes the scratch directory; 0, or -1 after printing why. */
/* A model cke_model_open reads (an HF directory ...) written as an F32 GGUF in llama.cpp's
 * conventions (formats/model_export.c; what `cke quantize SRC OUT F32` writes, less the tokenizer). */
cke_status tc_export_gguf(const char *src, const char *out, cke_err *e);
int tc_setup(const char *name);
/* Runs argv[0] (a path; argv NULL-terminated), no shell in between, stdin from the file `in`,
 * stdout to the file `out`, stderr to `err` (each NULL: inherited; err == out: both to one file);
 * the exit status, or -1 when it could not run or died of a signal. */
int tc_spawn(const char *in, const char *out, const char *err, const char *const argv[]);
/* A reference script tests/torch/SCRIPT with Debian's /usr/bin/python3, its output in OUT_DIR.log:
 * tc_spawn of python3 SCRIPT OUT_DIR ARGS... (args NULL-terminated; empty strings are skipped). */
int tc_run_py(const char *script, const char *out_dir, ...) __attribute__((sentinel));
/* Removes the scratch directory (unless CKE_KEEP_TMP), prints "N passed, N failed", returns the
 * exit code. */
int tc_finish(void);

#endif
