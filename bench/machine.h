/* The machine's limits, measured: FP32 FMA peak (register-only FMA loop) and memory read
 * bandwidth (huge-page-advised buffer, SIMD reads), at a given thread count. Shared by
 * bench_kernels and `cke bench`, so every ratio they print is against limits measured the same
 * way in the same run. AVX-512 when the CPU has it, else AVX2 (chosen at run time). */
#ifndef CKE_BENCH_MACHINE_H
#define CKE_BENCH_MACHINE_H

#include <stddef.h>
#include <stdint.h>

double cke_now(void); /* CLOCK_MONOTONIC seconds */
/* 2 MiB-aligned, huge-page-advised, touched (page faults are not timed); NULL when out of
 * memory. Free with free(). */
void *cke_hp_alloc(size_t bytes);
/* Best-of-`reps` FP32 FMA rate of nth threads, GFLOPS; `iters` loop trips per thread
 * (10M: ~0.1 s on a 4 GHz core). */
double cke_machine_peak_gflops(int nth, int64_t iters, int reps);
/* int8 (vpdpbusd, GOPS) and BF16 (vdpbf16ps, GFLOPS) peaks the same way; -1 without the ISA */
double cke_machine_peak_int8(int nth, int64_t iters, int reps);
double cke_machine_peak_bf16(int nth, int64_t iters, int reps);
/* Best-of-`reps` read bandwidth over buf[n] (n a multiple of 64 floats; much larger than L3),
 * split over nth threads, GB/s. */
double cke_machine_read_bw(const float *buf, int64_t n, int nth, int reps);
/* peak[t], bw[t] for t = 1..nth_max: raised to what this pass measures (call it before and
 * after a benchmark: a neighbour's burst during one pass must not deflate the limits). */
void cke_machine_measure(double *peak, double *bw, int nth_max, const float *buf, int64_t n, int quick);
int cke_machine_avx512(void);

#endif
