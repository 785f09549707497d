/* The MPI layer's collectives (src/dist/dist.h), checked value by value on every rank: run as
 *   mpirun -np 3 build/test_dist_api     (any N; tests/dist/test_dist.sh runs 1 without mpirun, 2, 3)
 * Every rank fills buffers from (rank, index) with values whose float sums are exact, so the
 * expected results are known exactly; the rank-order sum is checked with values whose sum depends
 * on the order. Each rank prints its failures; rank 0 prints "N passed, N failed" (summed). */
#include "dist/dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pass, fail;
static int rank_;

#define CHECK(name, cond)                                                             \
    do {                                                                              \
        if (cond) pass++;                                                             \
        else { fail++; printf("FAIL rank %d: %s (line %d)\n", rank_, name, __LINE__); } \
    } while (0)

static float val(int r, int64_t i) { return (float)((r + 1) * 1000 + (i % 997)); }

int main(void) {
    cke_dist d;
    cke_err e = {0};
    if (cke_dist_init(&d, 30, &e)) { printf("FAIL init: %s\n0 passed, 1 failed\n", e.msg); return 1; }
    rank_ = d.rank;
    const int N = d.size, R = d.rank;
    CHECK("rank in range", R >= 0 && R < N);
    CHECK("mpi only under mpirun", d.mpi == cke_dist_launched() && d.in_mpi == cke_dist_launched());
    cke_dist d1; /* a second one in the process shares MPI: the same rank and size, no finalize */
    CHECK("second init", cke_dist_init(&d1, 30, &e) == CKE_OK && d1.rank == R && d1.size == N && !d1.mpi);
    cke_dist_finalize(&d1);

    /* all-reduce: the sum of every rank's values (exact: small integers) */
    const int64_t n = 100003; /* odd: uneven segments */
    float *buf = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) buf[i] = val(R, i);
    CHECK("allreduce ok", cke_dist_allreduce_sum(&d, buf, n, &e) == CKE_OK);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float want = 0;
        for (int r = 0; r < N; r++) want += val(r, i);
        bad += buf[i] != want;
    }
    CHECK("allreduce values", bad == 0);

    /* reduce-scatter over uneven counts (one rank may get none), then all-gather back */
    int64_t *counts = calloc((size_t)N, sizeof(int64_t)), total = 0;
    for (int r = 0; r < N; r++) counts[r] = r == 1 ? 0 : 1000 + 37 * r, total += counts[r];
    for (int64_t i = 0; i < total; i++) buf[i] = val(R, i);
    CHECK("reduce-scatter ok", cke_dist_reduce_scatter_sum(&d, buf, counts, &e) == CKE_OK);
    int64_t off = 0;
    for (int r = 0; r < R; r++) off += counts[r];
    bad = 0;
    for (int64_t i = off; i < off + counts[R]; i++) {
        float want = 0;
        for (int r = 0; r < N; r++) want += val(r, i);
        bad += buf[i] != want;
    }
    for (int64_t i = 0; i < total; i++) /* the other segments are left as they were */
        if (i < off || i >= off + counts[R]) bad += buf[i] != val(R, i);
    CHECK("reduce-scatter values", bad == 0);
    CHECK("allgather ok", cke_dist_allgather(&d, buf, counts, &e) == CKE_OK);
    bad = 0;
    for (int64_t i = 0; i < total; i++) {
        float want = 0;
        for (int r = 0; r < N; r++) want += val(r, i);
        bad += buf[i] != want;
    }
    CHECK("allgather values", bad == 0);

    /* the sum is in rank order: 1e8 + (-1e8) + 1 per rank is order-dependent in float */
    float o[3] = {R == 0 ? 1e8f : R == 1 ? -1e8f : 1.0f};
    float want = 0;
    for (int r = 0; r < N; r++) want += r == 0 ? 1e8f : r == 1 ? -1e8f : 1.0f;
    CHECK("rank-order allreduce", cke_dist_allreduce_sum(&d, o, 1, &e) == CKE_OK && o[0] == want);

    /* non-blocking: start, test, wait */
    for (int64_t i = 0; i < total; i++) buf[i] = 1.0f;
    cke_dist_req *q = NULL;
    CHECK("ireduce-scatter starts", cke_dist_ireduce_scatter_sum(&d, buf, counts, &q, &e) == CKE_OK);
    CHECK("test drives", cke_dist_test(&d, q) >= 0);
    CHECK("wait", cke_dist_wait(&d, &q, &e) == CKE_OK && q == NULL);
    CHECK("ireduce-scatter values", counts[R] == 0 || (buf[off] == (float)N && buf[off + counts[R] - 1] == (float)N));

    /* gather to the last rank, broadcast from it, doubles, barrier */
    float seg[4] = {(float)R, (float)R, (float)R, (float)R}, *full = calloc((size_t)N * 4, sizeof(float));
    int64_t *c4 = calloc((size_t)N, sizeof(int64_t));
    for (int r = 0; r < N; r++) c4[r] = 4;
    CHECK("gather ok", cke_dist_gather(&d, seg, full, c4, N - 1, &e) == CKE_OK);
    if (R == N - 1) {
        bad = 0;
        for (int r = 0; r < N; r++) bad += full[r * 4 + 3] != (float)r;
        CHECK("gather values", bad == 0);
    }
    int64_t ints[3] = {R == N - 1 ? 42 : -1, R == N - 1 ? 7 : -1, R == N - 1 ? -5 : -1};
    CHECK("bcast", cke_dist_bcast(&d, ints, sizeof ints, N - 1, &e) == CKE_OK && ints[0] == 42 && ints[1] == 7 && ints[2] == -5);
    double x[2] = {0.5 * R, 1.0};
    CHECK("sum_f64", cke_dist_sum_f64(&d, x, 2, &e) == CKE_OK && x[0] == 0.25 * N * (N - 1) && x[1] == (double)N);
    CHECK("barrier", cke_dist_barrier(&d, &e) == CKE_OK);

    /* agree: nobody failed; then the last rank fails and every rank learns it */
    CHECK("agree ok", cke_dist_agree(&d, CKE_OK, &e) == CKE_OK && !d.agreed_failure);
    cke_status mine = R == N - 1 ? cke_fail(&e, CKE_ERR_IO, "rank %d: a test failure", R) : CKE_OK;
    cke_status got = cke_dist_agree(&d, mine, &e);
    CHECK("agree failure", got != CKE_OK && (N == 1 || (d.agreed_failure && d.first_failed == N - 1)));
    CHECK("agree message", R == N - 1 ? strstr(e.msg, "a test failure") != NULL : strstr(e.msg, "failed (its message") != NULL);

    /* a bad timeout is refused before anything */
    cke_dist d2;
    CHECK("timeout refused", cke_dist_init(&d2, NAN, &e) == CKE_ERR_ARG && strstr(e.msg, "--dist-timeout") != NULL);

    free(buf), free(counts), free(full), free(c4);
    double t[2] = {pass, fail};
    if (cke_dist_sum_f64(&d, t, 2, &e)) t[1] += 1;
    if (R == 0) printf("%.0f passed, %.0f failed\n", t[0], t[1]);
    cke_dist_finalize(&d);
    return t[1] == 0 ? 0 : 1;
}
