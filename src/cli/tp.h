/* Tensor parallel on the command line: `mpirun -np N cke run|chat ...` runs one rank per process,
 * each with its block of the model (compiled into its own cache variant), summing the row-parallel
 * linears' partial results over MPI (src/dist). Rank 0 talks to the user; every rank makes the same
 * model calls, so the others follow the same program with their output silenced. */
#ifndef CKE_CLI_TP_H
#define CKE_CLI_TP_H

#include "cke/cke.h"
#include "dist/dist.h"

#include <stdint.h>

typedef struct {
    cke_dist d;      /* size 1 without mpirun */
    int active;      /* size > 1: tensor parallel */
} cke_cli_tp;

/* Joins the MPI job when launched by mpirun (--dist-timeout seconds for one collective). With
 * more than one rank: *threads (0 = not given) becomes the cores per rank on this host when not
 * given, the sampling seed is rank 0's, and eo gets the rank and the collective. 0, or the exit code. */
int cke_cli_tp_begin(const char *cmd, cke_cli_tp *tp, double timeout_s, int64_t *threads, uint64_t *seed,
                     cke_engine_opts *eo);
/* Every rank learns whether any rank failed before it goes on (a compile or an open on one rank
 * must not leave the others waiting in a collective): rc of this rank in, the job's out. */
int cke_cli_tp_agree(const char *cmd, cke_cli_tp *tp, int rc);
/* Ends the job: a rank that failed inside a collective aborts them all (MPI_Abort) so none waits. */
int cke_cli_tp_end(cke_cli_tp *tp, int rc);

#endif
