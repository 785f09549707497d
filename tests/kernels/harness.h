/* Table-driven kernel parity harness (in the spirit of ggml's test-backend-ops).
 *
 * One test_op entry per op family member; each has up to three modes:
 *   simd  - every SIMD table against the _ref table over a shape sweep with odd sizes
 *   grad  - the _ref backward against central finite differences (in double)
 *   torch - the active-ISA kernel against PyTorch outputs/gradients from the fixture file
 * A mode function returns its number of failed sub-checks and prints one line per failure.
 * Tolerances live next to each op in its t_<family>.c file. */
#ifndef CKE_TEST_HARNESS_H
#define CKE_TEST_HARNESS_H

#include "cke/kernels.h"

#include <stdint.h>
#include <stdio.h>

/* Pass iff nmse(got, want) <= nmse AND every |got - want| <= atol + rtol * |want|. */
typedef struct {
    double nmse, atol, rtol;
} tol_t;

typedef struct fx_file fx_file;

typedef struct {
    const char *name; /* "rmsnorm", "attn_fwd", ...: the --op filter matches it exactly */
    /* kt: the table under test; ref: the _ref table */
    int (*simd)(const cke_ktable *kt, const cke_ktable *ref);
    int (*grad)(const cke_ktable *ref);
    int (*torch)(const cke_ktable *kt, const fx_file *fx);
} test_op;

/* ---- comparisons ---- */
/* Returns 0 on pass, 1 on fail (and prints what/which index/how far). */
int tcheck(const char *what, const float *got, const float *want, int64_t n, tol_t tol);
int tcheck_d(const char *what, const double *got, const double *want, int64_t n, tol_t tol);
double tnmse(const float *got, const float *want, int64_t n);

/* ---- deterministic random numbers (splitmix64) ---- */
typedef struct { uint64_t s; } trng;
uint64_t trng_u64(trng *r);
float trng_uniform(trng *r, float lo, float hi);
float trng_normal(trng *r);
void tfill_normal(trng *r, float *x, int64_t n, float scale);
void tfill_uniform(trng *r, float *x, int64_t n, float lo, float hi);

/* ---- allocation that never returns NULL (tests abort on OOM) ---- */
float *tallocf(int64_t n);           /* zeroed, 64-byte aligned */
void *talloc(size_t bytes);          /* zeroed, 64-byte aligned */
float *tcopyf(const float *x, int64_t n);

/* Odd-size sweep used by most ops. */
extern const int64_t tsizes[];       /* 1, 3, 17, 33, 127, 1025 ... terminated by 0 */

/* ---- PyTorch fixture file (written by tests/torch/gen_fixtures.py) ---- */
typedef struct {
    const char *name;
    int ndim;
    int64_t dims[8];
    int64_t numel;
    int dtype;          /* 0 = f32, 1 = i32 */
    const void *data;
} fx_tensor;

fx_file *fx_open(const char *path);  /* NULL (and a message) when missing or corrupt */
void fx_close(fx_file *fx);
/* NULL when missing; prints the missing name so a stale fixture file is obvious. */
const fx_tensor *fx_get(const fx_file *fx, const char *name);
const float *fx_f32(const fx_file *fx, const char *name, int64_t numel_expected);
const int32_t *fx_i32(const fx_file *fx, const char *name, int64_t numel_expected);
int64_t fx_scalar_i(const fx_file *fx, const char *name, int64_t dflt);
double fx_scalar_f(const fx_file *fx, const char *name, double dflt);
/* Names of all tensors with a given prefix ("rmsnorm.case"), for iterating cases. */
int fx_count_prefix(const fx_file *fx, const char *prefix);

/* Quick mode (sanitizer runs): sweeps stop at moderately small sizes. */
extern int tquick;

#endif
