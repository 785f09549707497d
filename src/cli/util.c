#include "cli/util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

double cke_cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cke_cli_parse_i64(const char *s, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno == ERANGE) return -1;
    *v = x;
    return 0;
}

int cke_cli_parse_d(const char *s, double *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (!*s || *end || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

int cke_cli_parse_f(const char *s, float *v) {
    double x;
    if (cke_cli_parse_d(s, &x) || fabs(x) > 3.4e38) return -1;
    *v = (float)x;
    return 0;
}

int cke_cli_fail(const char *what, cke_status s, const cke_err *e) {
    fprintf(stderr, "cke %s: %s: %s\n", what, cke_status_name(s), e->msg);
    return 1;
}

int cke_cli_is_help(const char *a) { return !strcmp(a, "-h") || !strcmp(a, "--help"); }

int cke_cli_opt_str(const char *cmd, int argc, char **argv, int *i, const char **out) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "cke %s: %s needs a value\n", cmd, argv[*i]);
        return 2;
    }
    *out = argv[++*i];
    return 0;
}

int cke_cli_opt_kv(const char *cmd, int argc, char **argv, int *i, int *out) {
    const char *v;
    int rc = cke_cli_opt_str(cmd, argc, argv, i, &v);
    if (rc) return rc;
    cke_kv_type t;
    if (cke_kv_type_parse(v, &t)) {
        fprintf(stderr, "cke %s: %s: %s is not a KV cache type (f16, f32, q8_0)\n", cmd, argv[*i - 1], v);
        return 2;
    }
    *out = (int)t;
    return 0;
}

int cke_cli_opt_i64(const char *cmd, int argc, char **argv, int *i, int64_t lo, int64_t hi, const char *what,
                    int64_t *out) {
    const char *v;
    int rc = cke_cli_opt_str(cmd, argc, argv, i, &v);
    if (rc) return rc;
    int64_t x;
    if (cke_cli_parse_i64(v, &x) || x < lo || x > hi) {
        fprintf(stderr, "cke %s: %s: %s is not %s\n", cmd, argv[*i - 1], v, what);
        return 2;
    }
    *out = x;
    return 0;
}

int cke_cli_opt_d(const char *cmd, int argc, char **argv, int *i, double lo, double hi, const char *what, double *out) {
    const char *v;
    int rc = cke_cli_opt_str(cmd, argc, argv, i, &v);
    if (rc) return rc;
    double x;
    if (cke_cli_parse_d(v, &x) || !(x >= lo && x <= hi)) {
        fprintf(stderr, "cke %s: %s: %s is not %s\n", cmd, argv[*i - 1], v, what);
        return 2;
    }
    *out = x;
    return 0;
}

int cke_cli_opt_f(const char *cmd, int argc, char **argv, int *i, double lo, double hi, const char *what, float *out) {
    double x;
    int rc = cke_cli_opt_d(cmd, argc, argv, i, lo, hi > 3.4e38 ? 3.4e38 : hi, what, &x);
    if (!rc) *out = (float)x;
    return rc;
}

int cke_cli_unknown(const char *cmd, const char *arg) {
    if (arg[0] == '-' && arg[1]) fprintf(stderr, "cke %s: unknown option %s (cke %s --help)\n", cmd, arg, cmd);
    else fprintf(stderr, "cke %s: unexpected argument %s (cke %s --help)\n", cmd, arg, cmd);
    return 2;
}
