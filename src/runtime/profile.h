/* The per-op profiler's collector: the hook model_prof.so calls after every op (ckm_prof_fn),
 * summed per (mode, op, layer), a bounded Chrome trace of the individual calls, and the writers
 * of profile.json (schema "cke-profile/1", docs/PROFILE.md) and trace.json.
 *
 * Times are the calling (main) thread's: the kernels open their OpenMP regions inside an op, so
 * an op's interval covers all its threads' work. Only an op whose parallel region is model.c's
 * own (AdamW) reports per-thread times (thread_time_s); the trace has the main thread's track. */
#ifndef CKE_RUNTIME_PROFILE_H
#define CKE_RUNTIME_PROFILE_H

#include "cke/model_abi.h"
#include "cke/status.h"

#include <stdint.h>
#include <stdio.h>

typedef enum {
    CKE_PROF_PREFILL = 0,
    CKE_PROF_DECODE,
    CKE_PROF_TRAIN_FORWARD,
    CKE_PROF_TRAIN_BACKWARD,
    CKE_PROF_OPTIMIZER,
    CKE_PROF_PHASES
} cke_prof_phase;

typedef struct cke_prof cke_prof;

/* What profile.json says besides the ops (strings may be NULL; numbers < 0: unknown -> null). */
typedef struct {
    const char *name, *family, *source, *dir;
    int64_t n_layers, dim, vocab, params, weights_bytes, ctx;
    const char *cpu, *isa;
    int threads;
    double peak_f32, peak_bf16, peak_int8, bandwidth_gbs; /* GFLOPS, GB/s; < 0: not measured */
    const char *command, *kind; /* kind: "inference" | "train" */
    int64_t prompt_tokens, generated_tokens, steps;
    double wall_s;
} cke_prof_info;

/* ops: the model's prof_ops (kept, not copied). max_events bounds trace.json: calls past it are
 * summed but not traced (counted in trace_dropped). */
cke_status cke_prof_new(const ckm_prof_op *ops, int n_ops, int n_layer, int max_events, cke_prof **out, cke_err *err);
void cke_prof_free(cke_prof *p);

/* The hook for api->set_profile (ud = the cke_prof). */
void cke_prof_hook(void *ud, int op, int layer, int thread, int64_t T, int64_t pos0, double t0, double t1);

/* Ops reported from now on belong to this phase (the mode the caller is timing). */
void cke_prof_set_phase(cke_prof *p, cke_prof_phase ph);
/* One timed call of the current phase (a forward pass, a train step's part): its wall interval
 * (omp_get_wtime seconds) and tokens; also a span on the trace. */
void cke_prof_call(cke_prof *p, int64_t tokens, double t0, double t1);
/* One train_run with backward over [t0, t1]: split into train_forward and train_backward at the
 * end of its last forward op (the ops carry their training phase themselves). */
void cke_prof_train_call(cke_prof *p, int64_t tokens, double t0, double t1);

cke_status cke_prof_write_json(const cke_prof *p, const cke_prof_info *info, const char *path, cke_err *err);
cke_status cke_prof_write_trace(const cke_prof *p, const char *path, cke_err *err);
/* The top n ops by time over all phases, with their fraction of the roofline, as a text table. */
void cke_prof_print_top(const cke_prof *p, const cke_prof_info *info, int n, FILE *f);
/* Sum of op times and wall time of a phase (for the caller's summary). */
void cke_prof_phase_times(const cke_prof *p, cke_prof_phase ph, double *wall_s, double *ops_s);

/* The kernel an op of ckm_prof_op ran with `rows` rows on the active table: "avx512 q4_0r gemv",
 * "avx2 f32 gemm", "ref rmsnorm_fwd"; train_bf16: the training mode is mixed precision (its linear
 * layers run gemm_bf16: "avx2 bf16 gemm (FMAs)"). */
void cke_prof_kernel_name(const ckm_prof_op *op, int qtype, int64_t rows, int train_bf16, char *out, size_t n);
/* The training mode being profiled runs --precision bf16 (names its linear layers' kernels so). */
void cke_prof_set_train_bf16(cke_prof *p, int on);

#endif
