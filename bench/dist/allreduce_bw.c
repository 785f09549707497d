/* All-reduce bandwidth between the ranks of `mpirun -np N`: cke's ordered all-reduce (src/dist:
 * all-to-all reduce-scatter summed in rank order + all-gather) next to MPI_Allreduce, over float
 * buffers of 1 to 64 MiB. Bus bandwidth as NCCL counts it: 2 (N-1)/N x bytes / time (what each
 * rank sends and receives for a bandwidth-optimal all-reduce). Rank 0 prints the table. */
#include "dist/dist.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static double best_of(const cke_dist *d, float *buf, int64_t n, int reps, int ours) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        cke_err e;
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (ours) {
            if (cke_dist_allreduce_sum(d, buf, n, &e)) { fprintf(stderr, "%s\n", e.msg); cke_dist_abort(d, 1); }
        } else {
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        }
        double t = MPI_Wtime() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD); /* the slowest rank's */
        if (t < best) best = t;
    }
    return best;
}

int main(void) {
    cke_dist d;
    cke_err e;
    if (cke_dist_init(&d, 60, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    if (d.size < 2) { fprintf(stderr, "run it under mpirun -np 2 (or more)\n"); cke_dist_finalize(&d); return 1; }
    if (d.rank == 0) printf("| MiB | cke all-reduce ms | GB/s (bus) | MPI_Allreduce ms | GB/s (bus) |\n|---|---|---|---|---|\n");
    for (int mib = 1; mib <= 64; mib *= 4) {
        const int64_t n = (int64_t)mib << 18; /* floats */
        float *buf = malloc((size_t)n * sizeof(float));
        if (!buf) { cke_dist_abort(&d, 1); return 1; }
        for (int64_t i = 0; i < n; i++) buf[i] = (float)(i % 7) * 1e-3f;
        const int reps = mib >= 16 ? 3 : 5;
        double tc = best_of(&d, buf, n, reps, 1), tm = best_of(&d, buf, n, reps, 0);
        double bus = 2.0 * (d.size - 1) / d.size * (double)n * sizeof(float) / 1e9;
        if (d.rank == 0) printf("| %d | %.2f | %.2f | %.2f | %.2f |\n", mib, 1e3 * tc, bus / tc, 1e3 * tm, bus / tm);
        free(buf);
    }
    cke_dist_finalize(&d);
    return 0;
}
