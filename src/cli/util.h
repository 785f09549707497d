/* Small helpers the cke subcommands share: strict number parsing, a clock, error reporting. */
#ifndef CKE_CLI_UTIL_H
#define CKE_CLI_UTIL_H

#include "cke/status.h"

#include <stdint.h>

double cke_cli_now(void);                              /* monotonic seconds */
int cke_cli_parse_i64(const char *s, int64_t *v);      /* 0, or -1 unless the whole string is a number */
int cke_cli_parse_f(const char *s, float *v);
int cke_cli_parse_d(const char *s, double *v);
int cke_cli_fail(const char *what, cke_status s, const cke_err *e); /* prints "cke WHAT: ...", returns 1 */

#endif
