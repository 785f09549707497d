/* Small helpers shared by the embed / norm / rope / act tests (header-only). */
#ifndef CKE_TEST_TELT_H
#define CKE_TEST_TELT_H

#include "harness.h"

#include <stdlib.h>

/* sum(out * R) in double: the scalar loss whose gradient wrt out is R */
static inline double tloss_dot(const float *out, const float *R, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)out[i] * R[i];
    return s;
}

/* Central finite differences of loss(ctx) wrt each x[i], compared with the analytic g[i].
 * x is perturbed in the float domain; the step used is the difference of the two float
 * values actually evaluated, so rounding of x +- eps does not bias the quotient. */
static inline int tgrad_fd(const char *what, float *x, const float *g, int64_t n,
                           double (*loss)(void *), void *ctx, float eps, tol_t tol) {
    double *fd = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    double *an = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!fd || !an) abort();
    for (int64_t i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + eps;
        float xp = x[i];
        double lp = loss(ctx);
        x[i] = x0 - eps;
        float xm = x[i];
        double lm = loss(ctx);
        x[i] = x0;
        fd[i] = (lp - lm) / ((double)xp - (double)xm);
        an[i] = g[i];
    }
    int f = tcheck_d(what, an, fd, n, tol);
    free(fd);
    free(an);
    return f;
}

/* Does the fixture file hold case "<op>.<c>."? (no "missing" message, for iterating cases) */
static inline int tfx_has(const fx_file *fx, const char *op, int c) {
    char p[128];
    snprintf(p, sizeof p, "%s.%d.", op, c);
    return fx_count_prefix(fx, p) > 0;
}

#endif
