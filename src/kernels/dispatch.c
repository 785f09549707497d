/* Kernel dispatch: one table per ISA, one chosen once at start-up from CPUID (x86) or the
 * kernel's hardware capabilities (aarch64: getauxval). CKE_ISA=ref|avx2|avx512|neon|neon_dot
 * forces a level so every path runs on one machine. A build holds the tables of its own
 * architecture only (the Makefile picks the ISA folders by the target); the others stay NULL
 * and are reported unsupported. */
#include "cke/kernels.h"
#include "kdecl.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define CKE_ARCH_X86 1
#elif defined(__aarch64__)
#define CKE_ARCH_ARM64 1
#include "neon/ndecl.h"
#include <sys/auxv.h>
/* <bits/hwcap.h> names, for older headers */
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#endif

static const cke_ktable *const tables[CKE_ISA_COUNT] = {
    [CKE_ISA_REF] = &cke_ktable_ref,
#if defined(CKE_ARCH_X86)
    [CKE_ISA_AVX2] = &cke_ktable_avx2,
    [CKE_ISA_AVX512] = &cke_ktable_avx512,
#elif defined(CKE_ARCH_ARM64)
    [CKE_ISA_NEON] = &cke_ktable_neon,
    [CKE_ISA_NEON_DOT] = &cke_ktable_neon_dot,
#endif
};

static const char *const isa_names[CKE_ISA_COUNT] = {
    [CKE_ISA_REF] = "ref",
    [CKE_ISA_AVX2] = "avx2",
    [CKE_ISA_AVX512] = "avx512",
    [CKE_ISA_NEON] = "neon",
    [CKE_ISA_NEON_DOT] = "neon_dot",
};

/* The one piece of mutable global state in the kernel library: which table is active.
 * Written by cke_kernels_init (idempotent, same answer every time), read by cke_k(). */
static const cke_ktable *active;
static cke_isa active_isa;

#if defined(CKE_ARCH_X86)
int cke_isa_supported(cke_isa isa) {
    switch (isa) {
    case CKE_ISA_REF: return 1;
    case CKE_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CKE_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("avx512vnni") && /* quant dot products (Ice Lake, Zen 4 on) */
               __builtin_cpu_supports("fma");
    default: return 0;
    }
}
#elif defined(CKE_ARCH_ARM64)
/* asimd is part of every armv8-a Linux CPU; the dot level needs asimddp (sdot/udot, armv8.2-a
 * optional, e.g. Cortex-A55/A76, Neoverse; not Cortex-A53/A72). fp16 arithmetic (fphp/asimdhp) is
 * not needed: F16 data is only converted (fcvtl, base armv8-a). i8mm (smmla, HWCAP2_I8MM) has no
 * kernel yet: the dot level covers those CPUs. */
int cke_isa_supported(cke_isa isa) {
    unsigned long hw = getauxval(AT_HWCAP);
    switch (isa) {
    case CKE_ISA_REF: return 1;
    case CKE_ISA_NEON: return (hw & HWCAP_ASIMD) != 0;
    case CKE_ISA_NEON_DOT: return (hw & HWCAP_ASIMD) && (hw & HWCAP_ASIMDDP);
    default: return 0;
    }
}
#else
int cke_isa_supported(cke_isa isa) { return isa == CKE_ISA_REF; } /* no SIMD tables in this build */
#endif

const char *cke_isa_name(cke_isa isa) {
    return (isa >= 0 && isa < CKE_ISA_COUNT) ? isa_names[isa] : "?";
}

int cke_isa_parse(const char *s, cke_isa *out) {
    for (int i = 0; i < CKE_ISA_COUNT; i++)
        if (s && strcmp(s, isa_names[i]) == 0) { *out = (cke_isa)i; return 0; }
    return -1;
}

const cke_ktable *cke_ktable_for(cke_isa isa) {
    if (isa < 0 || isa >= CKE_ISA_COUNT || !cke_isa_supported(isa)) return NULL;
    return tables[isa];
}

int cke_kernels_init(void) {
    cke_isa best = CKE_ISA_REF;
    for (int i = CKE_ISA_COUNT - 1; i > 0; i--)
        if (cke_isa_supported((cke_isa)i)) { best = (cke_isa)i; break; }
    int rc = 0;
    const char *env = getenv("CKE_ISA");
    if (env && *env) {
        cke_isa want;
        if (cke_isa_parse(env, &want) == 0 && cke_isa_supported(want)) best = want;
        else rc = -1;
    }
    active_isa = best;
    active = tables[best];
    return rc;
}

const cke_ktable *cke_k(void) {
    if (!active) cke_kernels_init();
    return active;
}

cke_isa cke_isa_active(void) {
    if (!active) cke_kernels_init();
    return active_isa;
}

/* Which ISA's own code a slot of the active table runs. A table points a slot at a lower level's
 * function (often the _ref) where it has no variant of its own; the lowest table holding the
 * same pointer is where the code comes from. For the profiler's kernel names. */
static cke_isa owner_isa(const void *(*slot_of)(const cke_ktable *, const void *), const void *arg) {
    cke_isa a = cke_isa_active();
    const void *mine = slot_of(tables[a], arg);
    if (!mine) return a;
    for (int i = 0; i < (int)a; i++) {
        const void *other = cke_isa_supported((cke_isa)i) ? slot_of(tables[i], arg) : NULL;
        if (other && memcmp(other, mine, sizeof(void (*)(void))) == 0) return (cke_isa)i;
    }
    return a;
}
static const void *kslot(const cke_ktable *t, const void *off) { return (const char *)t + *(const size_t *)off; }
typedef struct { int qtype; size_t off; } qslot_arg;
static const void *qslot(const cke_ktable *t, const void *arg) {
    const qslot_arg *q = arg;
    return t->qops[q->qtype] ? (const char *)t->qops[q->qtype] + q->off : NULL;
}

cke_isa cke_kernel_slot_isa(size_t slot) { return owner_isa(kslot, &slot); }

cke_isa cke_kernel_qslot_isa(int qtype, size_t slot) {
    if (qtype <= 0 || qtype >= CKE_QTYPE_COUNT) return cke_isa_active();
    qslot_arg a = {qtype, slot};
    return owner_isa(qslot, &a);
}

const char *cke_gemm_bf16_form(void) {
    const __typeof__(cke_k()->gemm_bf16) g = cke_k()->gemm_bf16;
    if (g == cke_gemm_bf16_ref) return "double sums";
#if defined(CKE_ARCH_X86)
    if (g == cke_gemm_bf16_avx512) return cke_gemm_bf16_uses_dp() ? "vdpbf16ps" : "FMAs";
    if (g == cke_gemm_bf16_avx2) return "FMAs";
#endif
    return "portable";
}
