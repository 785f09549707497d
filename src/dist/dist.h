/* Distributed execution over MPI (Open MPI): the ranks of one `mpirun -np N cke ...` job.
 *
 *   cke_dist d;
 *   cke_dist_init(&d, 60.0, &err);          // MPI only when launched by mpirun, else size 1
 *   cke_dist_allreduce_sum(&d, buf, n, &err);  // every rank ends with the sum of every buf
 *   cke_dist_finalize(&d);
 *
 * Without mpirun (OMPI_COMM_WORLD_SIZE unset) nothing here calls MPI: size 1, every collective
 * is a copy or nothing, so a plain `cke` never touches the MPI library.
 *
 * Every call returns a cke_status: MPI's error handler is MPI_ERRORS_RETURN, and every collective
 * is started non-blocking and polled (MPI_Test) against a deadline of timeout_s seconds, so a
 * rank that died or hangs gives the others an error naming the operation in bounded time instead
 * of a hang. After such an error the job is in an undefined state: end it with cke_dist_abort.
 *
 * Sums over ranks are in a fixed order (rank 0 + rank 1 + ... in float, element by element) where
 * this layer does them itself (reduce_scatter_sum, sum_f64), so a result is bit-identical from run
 * to run for a given N whatever algorithm the MPI library picks. allreduce_sum is a reduce-scatter
 * plus an all-gather of the same kind (ordered too).
 *
 * Counts: a float buffer is split into per-rank segments counts[0..size-1] (cke_dist_split gives
 * the balanced split); one segment must stay below 2^31 elements (MPI counts are int). */
#ifndef CKE_DIST_H
#define CKE_DIST_H

#include "cke/status.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int rank, size;     /* this process, and the job's process count (1 without mpirun) */
    int in_mpi;         /* launched by mpirun: MPI is in use */
    int mpi;            /* MPI was initialized by this cke_dist (and is finalized by cke_dist_finalize;
                         * a second cke_dist_init in the process shares it) */
    double timeout_s;   /* longest wait for one collective before it is an error */
    int agreed_failure; /* set by cke_dist_agree when every rank knows of a failure */
    int first_failed;   /* then: the lowest rank that failed (the one to tell what happened) */
} cke_dist;

/* 1 when this process was started by mpirun (Open MPI's OMPI_COMM_WORLD_SIZE is set) */
int cke_dist_launched(void);

/* MPI_Init_thread (serialized: one thread at a time talks to MPI; cke serve's executor thread runs the
 * tensor-parallel model calls) when launched by mpirun,
 * otherwise a size-1 job. timeout_s in (0, 1e6]. */
cke_status cke_dist_init(cke_dist *d, double timeout_s, cke_err *err);
void cke_dist_finalize(cke_dist *d);
/* Ends every rank of the job now (MPI_Abort): after an error that left a collective unfinished */
void cke_dist_abort(const cke_dist *d, int code);

/* Rank r's share of n elements: [n*r/size, n*(r+1)/size); counts[size] and offs[size] out. */
void cke_dist_split(const cke_dist *d, int64_t n, int64_t *counts, int64_t *offs);

/* A collective in flight (non-blocking variants); finished and freed by cke_dist_wait. */
typedef struct cke_dist_req cke_dist_req;
/* Waits (up to timeout_s) and frees *req (set to NULL); a finished reduce-scatter sums here. */
cke_status cke_dist_wait(const cke_dist *d, cke_dist_req **req, cke_err *err);
/* Drives the request (MPI progress) without waiting: 1 done (wait still frees it), 0 not yet, -1 error */
int cke_dist_test(const cke_dist *d, cke_dist_req *req);

/* buf [n] on every rank -> the element-wise sum over ranks, on every rank */
cke_status cke_dist_allreduce_sum(const cke_dist *d, float *buf, int64_t n, cke_err *err);
/* buf [sum counts]: segment r (at the sum of counts before it) of rank r's buf becomes the sum
 * over ranks of that segment, added in rank order; the other segments are left as they were.
 * Scratch memory: counts[rank] * size floats, held until the wait. */
cke_status cke_dist_ireduce_scatter_sum(const cke_dist *d, float *buf, const int64_t *counts, cke_dist_req **req,
                                        cke_err *err);
cke_status cke_dist_reduce_scatter_sum(const cke_dist *d, float *buf, const int64_t *counts, cke_err *err);
/* buf [sum counts]: every rank's segment r is replaced by rank r's segment r (in place) */
cke_status cke_dist_iallgather(const cke_dist *d, float *buf, const int64_t *counts, cke_dist_req **req, cke_err *err);
cke_status cke_dist_allgather(const cke_dist *d, float *buf, const int64_t *counts, cke_err *err);
/* seg [counts[rank]] from every rank -> full [sum counts] on root only (full unused elsewhere) */
cke_status cke_dist_gather(const cke_dist *d, const float *seg, float *full, const int64_t *counts, int root,
                           cke_err *err);
/* n bytes of root's buf to every rank */
cke_status cke_dist_bcast(const cke_dist *d, void *buf, size_t n, int root, cke_err *err);
cke_status cke_dist_barrier(const cke_dist *d, cke_err *err);
/* x [n] doubles -> their sum over ranks in rank order, on every rank (losses, squared norms) */
cke_status cke_dist_sum_f64(const cke_dist *d, double *x, int n, cke_err *err);
/* Every rank learns whether any rank failed: returns st where this rank failed, an error "rank R
 * failed (its message is above)" where another one did, CKE_OK when none did. On failure sets
 * d->agreed_failure (no rank is left waiting: the job can end normally). */
cke_status cke_dist_agree(cke_dist *d, cke_status st, cke_err *err);

#endif
