/* test_kernels: runs the op table.
 *   test_kernels [--op NAME] [--mode simd|grad|torch] [--isa ref|avx2|avx512|neon|neon_dot]
 *                [--fixtures FILE] [--quick] [--list]
 * Each (op, mode, isa) is one test: PASS or FAIL on its own line. Ends with "N passed, N failed". */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One array per op family (t_<family>.c), each terminated by an entry with name == NULL. */
extern const test_op tests_gemm[], tests_embed[], tests_norm[], tests_rope[], tests_act[],
    tests_attn[], tests_loss[], tests_quant[], tests_moe[], tests_heads[];
static const test_op *const families[] = {tests_gemm, tests_embed, tests_norm, tests_rope,
                                          tests_act,  tests_attn,  tests_loss, tests_quant, tests_moe, tests_heads};

static int passed, failed;

/* The SIMD levels of this build's architecture; the others' tables are not compiled in, so they
 * are neither run nor reported as skipped unless --isa names one (a CPU without a level of its
 * own architecture is reported). */
static int isa_of_this_arch(int i) {
#if defined(__x86_64__)
    return i == CKE_ISA_AVX2 || i == CKE_ISA_AVX512;
#elif defined(__aarch64__)
    return i == CKE_ISA_NEON || i == CKE_ISA_NEON_DOT;
#else
    (void)i;
    return 0;
#endif
}

static void report(const char *op, const char *mode, const char *isa, int fails) {
    if (fails == 0) {
        passed++;
        printf("PASS %s %s %s\n", op, mode, isa);
    } else {
        failed++;
        printf("FAIL %s %s %s (%d sub-checks failed)\n", op, mode, isa, fails);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *only_op = NULL, *only_mode = NULL, *fx_path = NULL;
    int only_isa = -1, list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--op") && i + 1 < argc) only_op = argv[++i];
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc) only_mode = argv[++i];
        else if (!strcmp(argv[i], "--fixtures") && i + 1 < argc) fx_path = argv[++i];
        else if (!strcmp(argv[i], "--quick")) tquick = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            cke_isa isa;
            if (cke_isa_parse(argv[++i], &isa)) { fprintf(stderr, "unknown isa %s\n", argv[i]); return 2; }
            only_isa = (int)isa;
        } else {
            fprintf(stderr, "usage: %s [--op NAME] [--mode simd|grad|torch] [--isa ref|avx2|avx512|neon|neon_dot] "
                            "[--fixtures FILE] [--quick] [--list]\n", argv[0]);
            return 2;
        }
    }
    if (cke_kernels_init() != 0) fprintf(stderr, "warning: CKE_ISA names an unknown or unsupported level\n");

    fx_file *fx = NULL;
    if (fx_path && (!only_mode || !strcmp(only_mode, "torch"))) {
        fx = fx_open(fx_path);
        if (!fx) { printf("FAIL fixtures load %s\n", fx_path); failed++; }
    }
    const cke_ktable *ref = cke_ktable_for(CKE_ISA_REF);
    int matched = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        for (const test_op *t = families[f]; t->name; t++) {
            if (only_op && strcmp(only_op, t->name)) continue;
            matched++;
            if (list) { printf("%s%s%s%s\n", t->name, t->simd ? " simd" : "", t->grad ? " grad" : "", t->torch ? " torch" : ""); continue; }
            if (t->simd && (!only_mode || !strcmp(only_mode, "simd"))) {
                for (int i = 1; i < CKE_ISA_COUNT; i++) {
                    if ((only_isa >= 0 && only_isa != i) || (only_isa < 0 && !isa_of_this_arch(i))) continue;
                    const cke_ktable *kt = cke_ktable_for((cke_isa)i);
                    if (!kt) { printf("SKIP %s simd %s (not supported by this CPU)\n", t->name, cke_isa_name((cke_isa)i)); continue; }
                    report(t->name, "simd", cke_isa_name((cke_isa)i), t->simd(kt, ref));
                }
            }
            if (t->grad && (!only_mode || !strcmp(only_mode, "grad")))
                report(t->name, "grad", "ref", t->grad(ref));
            if (t->torch && fx && (!only_mode || !strcmp(only_mode, "torch"))) {
                /* PyTorch parity on every ISA: the reference and each SIMD path */
                for (int i = 0; i < CKE_ISA_COUNT; i++) {
                    if (only_isa >= 0 && only_isa != i) continue;
                    const cke_ktable *kt = cke_ktable_for((cke_isa)i);
                    if (!kt) continue;
                    report(t->name, "torch", cke_isa_name((cke_isa)i), t->torch(kt, fx));
                }
            }
        }
    }
    if (only_op && !matched) { fprintf(stderr, "no op named %s\n", only_op); return 2; }
    fx_close(fx);
    if (list) return 0;
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
