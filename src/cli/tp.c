/* `mpirun -np N cke run|chat`: see tp.h. */
#include "cli/tp.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failed_inside; /* a collective failed during a model call: the job must be aborted */

/* Fault injection for the tests (like cke train's CKE_FAULT_AT): tp-die:N ends this rank at its
 * N-th allreduce as kill -9 would (_exit(137)); tp-hang:N stops it there (SIGSTOP: a hung machine). */
static void fault_point(void) {
    static long calls;
    const char *f = getenv("CKE_FAULT_AT");
    if (!f || (strncmp(f, "tp-die:", 7) && strncmp(f, "tp-hang:", 8))) return;
    if (++calls != strtol(strchr(f, ':') + 1, NULL, 10)) return;
    if (f[3] == 'd') _exit(137);
    raise(SIGSTOP);
}

/* The model's collective: the sum over ranks in rank order (dist.h), so every rank gets the same bits. */
static int allreduce_mpi(void *ud, float *out, const float *in, int64_t n) {
    cke_cli_tp *tp = ud;
    fault_point();
    if (out != in) memcpy(out, in, (size_t)n * sizeof(float));
    cke_err e = {0};
    cke_status s = cke_dist_allreduce_sum(&tp->d, out, n, &e);
    if (s) {
        fprintf(stderr, "cke: rank %d: %s\n", tp->d.rank, e.msg);
        failed_inside = 1;
        return -1;
    }
    return 0;
}

static int bcast_mpi(void *ud, void *buf, size_t n) {
    cke_cli_tp *tp = ud;
    cke_err e = {0};
    /* a serving rank waits for rank 0's next call as long as the server is idle */
    cke_dist d = tp->d;
    if (tp->d.rank > 0) d.timeout_s = 1e6;
    cke_status s = cke_dist_bcast(&d, buf, n, 0, &e);
    if (s) {
        fprintf(stderr, "cke: rank %d: %s\n", tp->d.rank, e.msg);
        failed_inside = 1;
        return -1;
    }
    return 0;
}

int cke_cli_tp_begin(const char *cmd, cke_cli_tp *tp, double timeout_s, int64_t *threads, uint64_t *seed,
                     cke_engine_opts *eo) {
    memset(tp, 0, sizeof *tp);
    cke_err e = {0};
    cke_status s = cke_dist_init(&tp->d, timeout_s, &e);
    if (s) {
        fprintf(stderr, "cke %s: %s\n", cmd, e.msg);
        return 1;
    }
    if (tp->d.size == 1) return 0;
    tp->active = 1;
    if (*threads <= 0) { /* the host's cores shared by the ranks on it */
        const char *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        long nc = sysconf(_SC_NPROCESSORS_ONLN), local = ls ? atol(ls) : 1;
        *threads = local > 0 && nc / local > 0 ? nc / local : 1;
    }
    if (seed && (s = cke_dist_bcast(&tp->d, seed, sizeof *seed, 0, &e))) {
        fprintf(stderr, "cke %s: rank %d: %s\n", cmd, tp->d.rank, e.msg);
        return 1;
    }
    eo->tp_rank = tp->d.rank;
    eo->tp_size = tp->d.size;
    eo->tp_allreduce = allreduce_mpi;
    eo->tp_bcast = bcast_mpi;
    eo->tp_ud = tp;
    if (tp->d.rank > 0 && !freopen("/dev/null", "w", stdout)) return 1; /* rank 0 prints the text */
    return 0;
}

int cke_cli_tp_agree(const char *cmd, cke_cli_tp *tp, int rc) {
    if (!tp->active) return rc;
    cke_err e = {0};
    cke_status s = cke_dist_agree(&tp->d, rc ? CKE_ERR_IO : CKE_OK, &e);
    if (s && !rc) {
        fprintf(stderr, "cke %s: rank %d: %s\n", cmd, tp->d.rank, e.msg);
        return 1;
    }
    return rc;
}

int cke_cli_tp_end(cke_cli_tp *tp, int rc) {
    if (failed_inside) cke_dist_abort(&tp->d, rc ? rc : 1);
    cke_dist_finalize(&tp->d);
    return rc;
}
