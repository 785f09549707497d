/* Small helpers the cke subcommands share: strict number parsing, option values with errors that
 * name the flag, -h/--help, a clock, error reporting. Only the command line prints and exits. */
#ifndef CKE_CLI_UTIL_H
#define CKE_CLI_UTIL_H

#include "cke/status.h"

#include <stdint.h>

#include "cke/cke.h" /* CKE_VERSION */

double cke_cli_now(void);                              /* monotonic seconds */
/* 0, or -1 unless the whole string is a number that fits (no overflow; floats finite, no NaN) */
int cke_cli_parse_i64(const char *s, int64_t *v);
int cke_cli_parse_f(const char *s, float *v);
int cke_cli_parse_d(const char *s, double *v);
int cke_cli_fail(const char *what, cke_status s, const cke_err *e); /* prints "cke WHAT: ...", returns 1 */

int cke_cli_is_help(const char *a);                    /* -h or --help */

/* Option values: argv[*i] is the flag, argv[*i + 1] its value. On success the value is stored,
 * *i advances past it and 0 is returned; otherwise the error names the command and the flag
 * ("cke run: --temp: -1 is not a temperature (>= 0)", "cke run: -n needs a value") and 2 is
 * returned, the command line's usage exit status. `what` completes "is not ...". */
int cke_cli_opt_i64(const char *cmd, int argc, char **argv, int *i, int64_t lo, int64_t hi, const char *what,
                    int64_t *out);
int cke_cli_opt_d(const char *cmd, int argc, char **argv, int *i, double lo, double hi, const char *what, double *out);
int cke_cli_opt_f(const char *cmd, int argc, char **argv, int *i, double lo, double hi, const char *what, float *out);
int cke_cli_opt_str(const char *cmd, int argc, char **argv, int *i, const char **out);
/* --kv-type f16|f32|q8_0 into *out (an int holding a cke_kv_type): "cke run: --kv-type: q3 is not
 * a KV cache type (f16, f32, q8_0)". Every command that compiles a model (--ctx) takes it. */
int cke_cli_opt_kv(const char *cmd, int argc, char **argv, int *i, int *out);
#define CKE_CLI_KV_HELP "  --kv-type T            KV cache type: f16 (default: half the memory and decode's reads), f32,\n" \
                        "                         q8_0 (head_dim a multiple of 32)\n"
/* "cke CMD: unknown option X (cke CMD --help)" / "cke CMD: unexpected argument X"; returns 2 */
int cke_cli_unknown(const char *cmd, const char *arg);

#endif
