/* Machine limits (see machine.h). Compiled without -m flags: the SIMD loops carry target
 * attributes and are chosen by CPUID at run time. Other architectures (aarch64) get plain C loops
 * that the compiler vectorizes for the base ISA: indications, not peaks. */
#define _GNU_SOURCE
#include "machine.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

double cke_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void *cke_hp_alloc(size_t bytes) {
    size_t al = (size_t)2 << 20, sz = (bytes + al - 1) / al * al;
    void *p = aligned_alloc(al, sz ? sz : al);
    if (!p) return NULL;
    madvise(p, sz, MADV_HUGEPAGE);
    memset(p, 0, sz);
    return p;
}

#if defined(__x86_64__)
int cke_machine_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* 24 independent FMA chains per thread: covers 2 pipes x 4-cycle latency many times over. */
__attribute__((target("avx512f"))) static double fma_loop512(int64_t iters) {
    __m512 a[24], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
#pragma GCC unroll 24
    for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps((float)i);
    for (int64_t t = 0; t < iters; t++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
    }
    __m512 s = a[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, a[i]);
    return (double)_mm512_reduce_add_ps(s) * 1e-30 + (double)iters * 24 * 32; /* flops */
}
__attribute__((target("avx2,fma"))) static double fma_loop256(int64_t iters) {
    __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (int64_t t = 0; t < iters; t++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    }
    float o[8];
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    _mm256_storeu_ps(o, s);
    return (double)(o[0] * 1e-30f) + (double)iters * 12 * 16;
}

/* int8 dot products (vpdpbusd: 64 u8 x s8 multiply-adds = 128 ops per instruction), 24 chains */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double vnni_loop512(int64_t iters) {
    __m512i a[24], x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
#pragma GCC unroll 24
    for (int i = 0; i < 24; i++) a[i] = _mm512_set1_epi32(i);
    for (int64_t t = 0; t < iters; t++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) a[i] = _mm512_dpbusd_epi32(a[i], x, y);
    }
    __m512i s = a[0]; /* lanes wrap (no overflow check in hardware): combine them without int arithmetic */
    for (int i = 1; i < 24; i++) s = _mm512_xor_si512(s, a[i]);
    return (double)(_mm_cvtsi128_si32(_mm512_castsi512_si128(s)) & 1) * 1e-30 + (double)iters * 24 * 128; /* ops */
}

/* BF16 dot products (vdpbf16ps: 32 bf16 pairs = 64 flops per instruction), 24 chains */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static double bf16_loop512(int64_t iters) {
    __m512 a[24];
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3400); /* 1, ~1e-7 */
#pragma GCC unroll 24
    for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps((float)i);
    for (int64_t t = 0; t < iters; t++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) a[i] = _mm512_dpbf16_ps(a[i], x, y);
    }
    __m512 s = a[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, a[i]);
    return (double)_mm512_reduce_add_ps(s) * 1e-30 + (double)iters * 24 * 64; /* flops */
}

#endif

__attribute__((unused)) static double peak_of(double (*loop)(int64_t), int nth, int64_t iters, int reps) {
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        double fl = 0, t0 = cke_now();
#pragma omp parallel num_threads(nth) reduction(+ : fl)
        fl += loop(iters);
        double g = fl / (cke_now() - t0) * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

#if defined(__x86_64__)
static double fma_loop(int avx512, int64_t iters) { return avx512 ? fma_loop512(iters) : fma_loop256(iters); }
double cke_machine_peak_int8(int nth, int64_t iters, int reps) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bw")) return -1;
    return peak_of(vnni_loop512, nth, iters, reps);
}

double cke_machine_peak_bf16(int nth, int64_t iters, int reps) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) return -1;
    return peak_of(bf16_loop512, nth, iters, reps);
}
#else
int cke_machine_avx512(void) { return 0; }
/* 16 independent FMA chains in plain C (vectorized by the compiler where it can) */
static double fma_loop(int avx512, int64_t iters) {
    (void)avx512;
    float a[16];
    for (int i = 0; i < 16; i++) a[i] = (float)i;
    for (int64_t t = 0; t < iters; t++)
        for (int i = 0; i < 16; i++) a[i] = __builtin_fmaf(a[i], 0.999999f, 1e-7f);
    float s = 0;
    for (int i = 0; i < 16; i++) s += a[i];
    return (double)s * 1e-30 + (double)iters * 16 * 2;
}
static float read_sum(int avx512, const float *p, int64_t n) {
    (void)avx512;
    float s[16] = {0};
    for (int64_t i = 0; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) s[j] += p[i + j];
    return s[0] + s[15];
}
double cke_machine_peak_int8(int nth, int64_t iters, int reps) { (void)nth, (void)iters, (void)reps; return -1; }
double cke_machine_peak_bf16(int nth, int64_t iters, int reps) { (void)nth, (void)iters, (void)reps; return -1; }
#endif

double cke_machine_peak_gflops(int nth, int64_t iters, int reps) {
    int avx512 = cke_machine_avx512();
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        double fl = 0, t0 = cke_now();
#pragma omp parallel num_threads(nth) reduction(+ : fl)
        fl += fma_loop(avx512, iters);
        double g = fl / (cke_now() - t0) * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float read_sum512(const float *p, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t i = 0; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(p + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(p + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(p + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(p + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
__attribute__((target("avx2"))) static float read_sum256(const float *p, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
    }
    float o[8];
    _mm256_storeu_ps(o, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return o[0];
}
static float read_sum(int avx512, const float *p, int64_t n) { return avx512 ? read_sum512(p, n) : read_sum256(p, n); }
#endif

double cke_machine_read_bw(const float *buf, int64_t n, int nth, int reps) {
    int avx512 = cke_machine_avx512();
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = cke_now();
        float s = 0;
#pragma omp parallel num_threads(nth) reduction(+ : s)
        {
            int t = omp_get_thread_num();
            int64_t lo = n * t / nth / 64 * 64, hi = n * (t + 1) / nth / 64 * 64;
            s += read_sum(avx512, buf + lo, hi - lo);
        }
        double gbs = (double)n * 4 / (cke_now() - t0) * 1e-9;
        sink += s;
        if (gbs > best) best = gbs;
    }
    (void)sink;
    return best;
}

void cke_machine_measure(double *peak, double *bw, int nth_max, const float *buf, int64_t n, int quick) {
    for (int t = 1; t <= nth_max; t++) {
        double p = cke_machine_peak_gflops(t, quick ? 2000000 : 10000000, quick ? 3 : 5);
        double b = cke_machine_read_bw(buf, n, t, quick ? 3 : 6);
        if (p > peak[t]) peak[t] = p;
        if (b > bw[t]) bw[t] = b;
    }
}
