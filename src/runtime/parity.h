/* Parity: run a compiled model with tracing on and compare every named IR value against a
 * reference trace (from a PyTorch reference, tests/torch/ref_llama.py), by name, layer and
 * position, in execution order. Names the first value that diverged: the tool to reach for when
 * numbers drift.
 *
 * Trace file: "CKETRC01", int32 n_tok, int32 ids[n_tok], int32 n_rec, then per record int32
 * name_len, name, int32 layer, int64 pos0, int64 rows, int64 cols, float32 data[rows][cols]. */
#ifndef CKE_PARITY_H
#define CKE_PARITY_H

#include "cke/status.h"
#include "runtime/runner.h"

#include <stdint.h>
#include <stdio.h>

typedef struct {
    int64_t compared;      /* values compared */
    int64_t missing;       /* traced values the reference does not have */
    int diverged;          /* 1 when some value exceeded the tolerance */
    char name[64];         /* the first such value ... */
    int layer;
    int64_t pos;           /* ... the position of its worst element */
    double max_abs, max_rel;
    double worst_rel;      /* largest relative error seen over all values */
} cke_parity_result;

/* One compared value, for reports (cke parity --html): positions pos0..pos1 of (name, layer). */
typedef struct {
    char name[64];
    int layer;
    int64_t pos0, pos1, worst_pos;
    double max_abs, max_rel;
    int bad;               /* above the tolerance */
} cke_parity_row;

typedef struct {
    cke_parity_row *rows;  /* in execution order */
    int64_t n, cap;
} cke_parity_table;

void cke_parity_table_free(cke_parity_table *t);

/* Feeds the reference's tokens to the model (prefill in chunks of `chunk`, 0 = all at once,
 * 1 = decode steps) and compares. rel_tol: max |a - b| / max |b| over a value's rows.
 * Writes a per-value table to report (when non-NULL). */
cke_status cke_parity_run(cke_runner *r, const char *ref_path, int64_t chunk, double rel_tol, FILE *report,
                          cke_parity_result *res, cke_err *err);
/* The same, also collecting every compared value into *table (when non-NULL; free with
 * cke_parity_table_free). */
cke_status cke_parity_run_table(cke_runner *r, const char *ref_path, int64_t chunk, double rel_tol, FILE *report,
                                cke_parity_table *table, cke_parity_result *res, cke_err *err);

#endif
