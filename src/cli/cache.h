/* The compile cache: `cke run|chat|perplexity MODEL` compiles a model file once and reuses it.
 *
 *   CACHE/                      $CKE_CACHE, else $XDG_CACHE_HOME/cke, else ~/.cache/cke
 *     NAME-HASH/                one entry per model: HASH of its absolute path, size, mtime (for a
 *       source                  directory, of each file in it) and the --tokenizer; `source` holds
 *                               the model's absolute path
 *       ctx-auto/ ctx-512/ ...  one compiled directory per --ctx (and -f32 / -norepack variants);
 *                               weights.bin does not depend on ctx and is hard-linked between them
 *       .ctx-512.tmp-PID-XXXXXX a compile in progress (or left by a killed process: `cke cache clean`)
 *
 * Each compiled directory appears atomically (src/driver/compile.h): concurrent runs on a fresh
 * cache each compile into their own temporary directory and the first rename wins. */
#ifndef CKE_CLI_CACHE_H
#define CKE_CLI_CACHE_H

#include "driver/compile.h"

#include <stddef.h>
#include <stdint.h>

/* The compiled directory for DIR|MODEL: DIR itself when it holds a model.so, else MODEL's cache
 * directory for this ctx (0 = the model's own), compiled on first use (announced on stderr;
 * Ctrl-C stops it, leaves nothing, and 130 is returned). 0 on success, else the exit code. */
/* kv_type: a cke_kv_type to compile with, or -1 when not given (f16); a compiled directory of
 * another type than one given is refused (its type is fixed at compile time). */
int cke_cli_compiled_kv_ok(const char *dir, int kv_type); /* 1 ok, else 0 with the message printed */
int cke_cli_model_dir(const char *target, const char *tok, int64_t ctx, int kv_type, char *dir, size_t n);
/* The same for tensor-parallel rank tp_rank of tp_size (> 1): that rank's own cache variant. */
int cke_cli_model_dir_tp(const char *target, const char *tok, int64_t ctx, int kv_type, int tp_rank, int tp_size,
                         char *dir, size_t n);

/* cke_compile(model, o) that Ctrl-C (SIGINT, SIGTERM, SIGHUP) stops cleanly: the C compiler is
 * killed, nothing is left, "cke CMD: interrupted; the compile was stopped and LEFT" is printed.
 * Returns the exit code: 0, 1 (the error printed), or 128 + the signal (130 for Ctrl-C). */
int cke_cli_compile_guarded(const char *cmd, const char *model, cke_compile_opts *o, const char *left);

int cke_cli_cache(int argc, char **argv); /* argv[0] = "cache": list | clean [--older-than DAYS] | dir */

#endif
