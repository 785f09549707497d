#include "cli/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double cke_cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cke_cli_parse_i64(const char *s, int64_t *v) {
    char *end;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end) return -1;
    *v = x;
    return 0;
}

int cke_cli_parse_d(const char *s, double *v) {
    char *end;
    double x = strtod(s, &end);
    if (!*s || *end) return -1;
    *v = x;
    return 0;
}

int cke_cli_parse_f(const char *s, float *v) {
    double x;
    if (cke_cli_parse_d(s, &x)) return -1;
    *v = (float)x;
    return 0;
}

int cke_cli_fail(const char *what, cke_status s, const cke_err *e) {
    fprintf(stderr, "cke %s: %s: %s\n", what, cke_status_name(s), e->msg);
    return 1;
}
