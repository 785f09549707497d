/* The MPI layer (dist.h): non-blocking collectives polled against a deadline, sums in rank order.
 * Built with -DCKE_NO_MPI (make MPI=0, or no Open MPI found) it is one process only: every
 * collective is its size-1 case, and a cke started by mpirun says it was built without MPI. */
#include "dist/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cke_dist_launched(void) { return getenv("OMPI_COMM_WORLD_SIZE") != NULL; }

void cke_dist_split(const cke_dist *d, int64_t n, int64_t *counts, int64_t *offs) {
    for (int r = 0; r < d->size; r++) {
        offs[r] = n * r / d->size;
        counts[r] = n * (r + 1) / d->size - offs[r];
    }
}

#ifdef CKE_NO_MPI

cke_status cke_dist_init(cke_dist *d, double timeout_s, cke_err *err) {
    memset(d, 0, sizeof *d);
    d->size = 1;
    d->timeout_s = timeout_s;
    if (!(timeout_s > 0 && timeout_s <= 1e6))
        return cke_fail(err, CKE_ERR_ARG, "--dist-timeout: %g is not a time in seconds (0, 1e6]", timeout_s);
    if (cke_dist_launched())
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "this cke was built without MPI (install libopenmpi-dev and rebuild): "
                                                  "it runs as one process only, not as ranks of mpirun");
    return CKE_OK;
}
void cke_dist_finalize(cke_dist *d) { (void)d; }
void cke_dist_abort(const cke_dist *d, int code) { (void)d, (void)code; }
cke_status cke_dist_wait(const cke_dist *d, cke_dist_req **req, cke_err *err) {
    (void)d, (void)err;
    *req = NULL;
    return CKE_OK;
}
int cke_dist_test(const cke_dist *d, cke_dist_req *req) { (void)d, (void)req; return 1; }
cke_status cke_dist_allreduce_sum(const cke_dist *d, float *buf, int64_t n, cke_err *err) {
    (void)d, (void)buf, (void)n, (void)err;
    return CKE_OK;
}
cke_status cke_dist_ireduce_scatter_sum(const cke_dist *d, float *buf, const int64_t *counts, cke_dist_req **req,
                                        cke_err *err) {
    (void)d, (void)buf, (void)counts, (void)err;
    *req = NULL;
    return CKE_OK;
}
cke_status cke_dist_reduce_scatter_sum(const cke_dist *d, float *buf, const int64_t *counts, cke_err *err) {
    (void)d, (void)buf, (void)counts, (void)err;
    return CKE_OK;
}
cke_status cke_dist_iallgather(const cke_dist *d, float *buf, const int64_t *counts, cke_dist_req **req, cke_err *err) {
    (void)d, (void)buf, (void)counts, (void)err;
    *req = NULL;
    return CKE_OK;
}
cke_status cke_dist_allgather(const cke_dist *d, float *buf, const int64_t *counts, cke_err *err) {
    (void)d, (void)buf, (void)counts, (void)err;
    return CKE_OK;
}
cke_status cke_dist_gather(const cke_dist *d, const float *seg, float *full, const int64_t *counts, int root,
                           cke_err *err) {
    (void)d, (void)root, (void)err;
    memmove(full, seg, (size_t)counts[0] * sizeof(float));
    return CKE_OK;
}
cke_status cke_dist_bcast(const cke_dist *d, void *buf, size_t n, int root, cke_err *err) {
    (void)d, (void)buf, (void)n, (void)root, (void)err;
    return CKE_OK;
}
cke_status cke_dist_barrier(const cke_dist *d, cke_err *err) { (void)d, (void)err; return CKE_OK; }
cke_status cke_dist_sum_f64(const cke_dist *d, double *x, int n, cke_err *err) {
    (void)d, (void)x, (void)n, (void)err;
    return CKE_OK;
}
cke_status cke_dist_agree(cke_dist *d, cke_status st, cke_err *err) {
    (void)d, (void)err;
    return st;
}

#else

#include <mpi.h>

struct cke_dist_req {
    MPI_Request r;
    const char *what;    /* the operation, for errors */
    /* reduce-scatter: scratch [size][n] received segments, summed into dst [n] when done */
    float *scratch, *dst;
    int64_t n;
    int size;
    int *cnt, *dsp;      /* [4][size] count and displacement arrays: MPI reads them until completion */
};

static cke_status mpi_fail(cke_err *err, int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return cke_fail(err, CKE_ERR_IO, "MPI %s failed: %s", what, msg);
}

cke_status cke_dist_init(cke_dist *d, double timeout_s, cke_err *err) {
    memset(d, 0, sizeof *d);
    d->size = 1;
    d->timeout_s = timeout_s;
    if (!(timeout_s > 0 && timeout_s <= 1e6))
        return cke_fail(err, CKE_ERR_ARG, "--dist-timeout: %g is not a time in seconds (0, 1e6]", timeout_s);
    if (!cke_dist_launched()) return CKE_OK;
    int inited = 0, provided = 0, rc = MPI_SUCCESS;
    MPI_Initialized(&inited);
    if (inited) /* a second cke_dist in the process (the library and its caller): MPI is shared */
        MPI_Query_thread(&provided);
    else if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided)) != MPI_SUCCESS)
        return cke_fail(err, CKE_ERR_IO, "MPI_Init_thread failed (code %d)", rc);
    d->mpi = !inited;
    d->in_mpi = 1;
    /* errors come back as return codes (then cke_status), not as MPI's default job abort */
    if ((rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)) != MPI_SUCCESS ||
        (rc = MPI_Comm_rank(MPI_COMM_WORLD, &d->rank)) != MPI_SUCCESS ||
        (rc = MPI_Comm_size(MPI_COMM_WORLD, &d->size)) != MPI_SUCCESS)
        return mpi_fail(err, rc, "setup");
    if (provided < MPI_THREAD_SERIALIZED)
        return cke_fail(err, CKE_ERR_UNSUPPORTED, "MPI gives thread level %d, cke needs MPI_THREAD_SERIALIZED", provided);
    return CKE_OK;
}

void cke_dist_finalize(cke_dist *d) {
    if (d->mpi) MPI_Finalize();
    d->mpi = 0;
}

void cke_dist_abort(const cke_dist *d, int code) {
    if (d->in_mpi) MPI_Abort(MPI_COMM_WORLD, code);
}

/* MPI_Test until done or the deadline: spin briefly (a collective of a small buffer is over in
 * microseconds), then sleep 20 us between tests so a waiting rank leaves the cores to others */
static cke_status wait_mpi(const cke_dist *d, MPI_Request *r, const char *what, cke_err *err) {
    const double t0 = MPI_Wtime();
    for (long k = 0;; k++) {
        int done = 0, rc = MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, what);
        if (done) return CKE_OK;
        if (k < 2000) continue;
        if (MPI_Wtime() - t0 > d->timeout_s)
            return cke_fail(err, CKE_ERR_IO, "MPI %s: no answer from the other ranks in %g s (--dist-timeout): a rank "
                            "died or hangs", what, d->timeout_s);
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

static void req_free(cke_dist_req *q) {
    if (!q) return;
    free(q->scratch);
    free(q->cnt);
    free(q->dsp);
    free(q);
}

/* finish: the received segments of a reduce-scatter are added in rank order */
static void req_finish(cke_dist_req *q) {
    if (!q->scratch) return;
    const int64_t n = q->n;
    memcpy(q->dst, q->scratch, (size_t)n * sizeof(float));
    for (int r = 1; r < q->size; r++) {
        const float *s = q->scratch + (size_t)r * (size_t)n;
        for (int64_t i = 0; i < n; i++) q->dst[i] += s[i];
    }
}

cke_status cke_dist_wait(const cke_dist *d, cke_dist_req **req, cke_err *err) {
    cke_dist_req *q = *req;
    *req = NULL;
    if (!q) return CKE_OK;
    cke_status st = wait_mpi(d, &q->r, q->what, err);
    if (!st) req_finish(q);
    req_free(q);
    return st;
}

int cke_dist_test(const cke_dist *d, cke_dist_req *req) {
    (void)d;
    if (!req || req->r == MPI_REQUEST_NULL) return 1;
    int done = 0;
    /* MPI_Test frees a completed request and sets it to MPI_REQUEST_NULL: wait then sees it done */
    if (MPI_Test(&req->r, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return -1;
    return done;
}

/* counts and their displacements as MPI ints; a segment or an offset past INT_MAX is refused */
static cke_status int_counts(const cke_dist *d, const int64_t *counts, int *cnt, int *dsp, cke_err *err) {
    int64_t off = 0;
    for (int r = 0; r < d->size; r++) {
        if (counts[r] < 0 || counts[r] > INT_MAX || off > INT_MAX)
            return cke_fail(err, CKE_ERR_RANGE, "MPI: a buffer of %lld+ floats is past MPI's int counts (2^31 - 1)",
                            (long long)(off + counts[r]));
        cnt[r] = (int)counts[r], dsp[r] = (int)off;
        off += counts[r];
    }
    return CKE_OK;
}

static cke_dist_req *req_new(const cke_dist *d, const char *what) {
    cke_dist_req *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->what = what;
    q->size = d->size;
    q->r = MPI_REQUEST_NULL;
    q->cnt = calloc((size_t)d->size * 2, sizeof(int));
    q->dsp = calloc((size_t)d->size * 2, sizeof(int));
    if (!q->cnt || !q->dsp) { req_free(q); return NULL; }
    return q;
}

cke_status cke_dist_ireduce_scatter_sum(const cke_dist *d, float *buf, const int64_t *counts, cke_dist_req **req,
                                        cke_err *err) {
    *req = NULL;
    if (d->size == 1) return CKE_OK;
    cke_dist_req *q = req_new(d, "reduce-scatter");
    if (!q) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    const int P = d->size;
    int *scnt = q->cnt, *sdsp = q->dsp, *rcnt = q->cnt + P, *rdsp = q->dsp + P;
    cke_status st = int_counts(d, counts, scnt, sdsp, err);
    int64_t off_me = 0;
    for (int r = 0; r < d->rank; r++) off_me += counts[r];
    q->n = counts[d->rank];
    q->dst = buf + off_me;
    /* every rank sends its segment r to rank r: an all-to-all, then the owner sums in rank order
     * (MPI_Reduce_scatter would sum in whatever order its algorithm picks) */
    if (!st && (int64_t)P * q->n > INT_MAX)
        st = cke_fail(err, CKE_ERR_RANGE, "MPI: %d x %lld floats is past MPI's int counts", P, (long long)q->n);
    for (int r = 0; !st && r < P; r++) rcnt[r] = (int)q->n, rdsp[r] = r * (int)q->n;
    if (!st && !(q->scratch = malloc((size_t)P * (size_t)(q->n ? q->n : 1) * sizeof(float))))
        st = cke_fail(err, CKE_ERR_NOMEM, "out of memory for the reduce-scatter buffer");
    int rc = st ? MPI_SUCCESS : MPI_Ialltoallv(buf, scnt, sdsp, MPI_FLOAT, q->scratch, rcnt, rdsp, MPI_FLOAT, MPI_COMM_WORLD, &q->r);
    if (!st && rc != MPI_SUCCESS) st = mpi_fail(err, rc, "reduce-scatter");
    if (st) { req_free(q); return st; }
    *req = q;
    return CKE_OK;
}

cke_status cke_dist_reduce_scatter_sum(const cke_dist *d, float *buf, const int64_t *counts, cke_err *err) {
    cke_dist_req *q = NULL;
    cke_status st = cke_dist_ireduce_scatter_sum(d, buf, counts, &q, err);
    return st ? st : cke_dist_wait(d, &q, err);
}

cke_status cke_dist_iallgather(const cke_dist *d, float *buf, const int64_t *counts, cke_dist_req **req, cke_err *err) {
    *req = NULL;
    if (d->size == 1) return CKE_OK;
    cke_dist_req *q = req_new(d, "all-gather");
    if (!q) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_status st = int_counts(d, counts, q->cnt, q->dsp, err);
    int rc = st ? MPI_SUCCESS
                : MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, buf, q->cnt, q->dsp, MPI_FLOAT, MPI_COMM_WORLD, &q->r);
    if (!st && rc != MPI_SUCCESS) st = mpi_fail(err, rc, "all-gather");
    if (st) { req_free(q); return st; }
    *req = q;
    return CKE_OK;
}

cke_status cke_dist_allgather(const cke_dist *d, float *buf, const int64_t *counts, cke_err *err) {
    cke_dist_req *q = NULL;
    cke_status st = cke_dist_iallgather(d, buf, counts, &q, err);
    return st ? st : cke_dist_wait(d, &q, err);
}

cke_status cke_dist_allreduce_sum(const cke_dist *d, float *buf, int64_t n, cke_err *err) {
    if (d->size == 1) return CKE_OK;
    int64_t *counts = malloc((size_t)d->size * 2 * sizeof(int64_t));
    if (!counts) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_dist_split(d, n, counts, counts + d->size);
    cke_status st = cke_dist_reduce_scatter_sum(d, buf, counts, err);
    if (!st) st = cke_dist_allgather(d, buf, counts, err);
    free(counts);
    return st;
}

cke_status cke_dist_gather(const cke_dist *d, const float *seg, float *full, const int64_t *counts, int root,
                           cke_err *err) {
    if (d->size == 1) {
        memmove(full, seg, (size_t)counts[0] * sizeof(float));
        return CKE_OK;
    }
    cke_dist_req *q = req_new(d, "gather");
    if (!q) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_status st = int_counts(d, counts, q->cnt, q->dsp, err);
    int rc = st ? MPI_SUCCESS
                : MPI_Igatherv(seg, q->cnt[d->rank], MPI_FLOAT, full, q->cnt, q->dsp, MPI_FLOAT, root, MPI_COMM_WORLD, &q->r);
    if (!st && rc != MPI_SUCCESS) st = mpi_fail(err, rc, "gather");
    if (st) { req_free(q); return st; }
    return cke_dist_wait(d, &q, err);
}

cke_status cke_dist_bcast(const cke_dist *d, void *buf, size_t n, int root, cke_err *err) {
    if (d->size == 1 || n == 0) return CKE_OK;
    if (n > INT_MAX) return cke_fail(err, CKE_ERR_RANGE, "MPI broadcast of %zu bytes: past MPI's int counts", n);
    MPI_Request r = MPI_REQUEST_NULL;
    int rc = MPI_Ibcast(buf, (int)n, MPI_BYTE, root, MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? mpi_fail(err, rc, "broadcast") : wait_mpi(d, &r, "broadcast", err);
}

cke_status cke_dist_barrier(const cke_dist *d, cke_err *err) {
    if (d->size == 1) return CKE_OK;
    MPI_Request r = MPI_REQUEST_NULL;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? mpi_fail(err, rc, "barrier") : wait_mpi(d, &r, "barrier", err);
}

/* every rank's n values, gathered to all: [size][n] */
static cke_status allgather_f64(const cke_dist *d, const double *x, double *all, int n, cke_err *err) {
    MPI_Request r = MPI_REQUEST_NULL;
    int rc = MPI_Iallgather(x, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD, &r);
    return rc != MPI_SUCCESS ? mpi_fail(err, rc, "all-gather") : wait_mpi(d, &r, "all-gather", err);
}

cke_status cke_dist_sum_f64(const cke_dist *d, double *x, int n, cke_err *err) {
    if (d->size == 1 || n <= 0) return CKE_OK;
    double *all = malloc((size_t)d->size * (size_t)n * sizeof(double));
    if (!all) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_status st = allgather_f64(d, x, all, n, err);
    for (int i = 0; !st && i < n; i++) {
        double s = 0;
        for (int r = 0; r < d->size; r++) s += all[(size_t)r * (size_t)n + (size_t)i];
        x[i] = s;
    }
    free(all);
    return st;
}

cke_status cke_dist_agree(cke_dist *d, cke_status st, cke_err *err) {
    if (d->size == 1) return st;
    double mine = (double)st, *all = malloc((size_t)d->size * sizeof(double));
    if (!all) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    cke_err e2 = {0};
    cke_status cs = allgather_f64(d, &mine, all, 1, &e2);
    int bad = -1;
    for (int r = 0; !cs && r < d->size && bad < 0; r++)
        if (all[r] != 0) bad = r;
    free(all);
    if (cs) return st ? st : cke_fail(err, cs, "%s", e2.msg); /* no agreement: the caller aborts */
    if (bad < 0) return CKE_OK;
    d->agreed_failure = 1;
    d->first_failed = bad;
    return st ? st : cke_fail(err, CKE_ERR_IO, "rank %d failed (its message is above)", bad);
}

#endif /* CKE_NO_MPI */
