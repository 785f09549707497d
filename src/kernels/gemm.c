/* The blocked, packed, multithreaded GEMM driver (ISA-independent; compiled without -m flags).
 * C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C. The ISA files supply a cke_gemm_isa
 * descriptor (kdecl.h): register tile MR x NR, cache blocks KC/MC/NC, packing routines, the
 * microkernel and the small-M dot-product path.
 *
 * Blocking (BLIS-style, loop order chosen for a 32K L1 / 1M private L2):
 *   for jc in N step NC            B block KC x NC is packed once and stays in L2
 *     for pc in K step KC          KC is balanced (K split into equal blocks <= KC)
 *       pack B[pc:, jc:] -> [NC/NR][KC][NR] panels
 *       for ic in M step MC        pack A[ic:, pc:] -> [MC/MR][KC][MR] panels
 *         for ir in MC step MR     the MR x KC A sliver stays in L1 ...
 *           for jr in NC step NR   ... while B slivers stream from L2 through it
 *             microkernel: MR x NR tile, kc rank-1 updates in registers, then
 *             C = alpha * acc + beta' * C with beta' = beta on the first K block, else 1.
 *   Edges: A/B panels are zero-padded; the microkernel stores only mr x nr (masked).
 *
 * Small M (M <= SMALL_M, tb == CKE_TRANS: decode / GEMV, Y = X . W^T): nothing is packed. W rows
 * stream from memory once, each dotted with all M rows of X (vectorized along K), so the path
 * runs at memory bandwidth. Threads split N.
 *
 * Threading: one `omp parallel num_threads(nth)` region (none when one thread does the work).
 * The output is cut into a tm x tn grid of rectangles aligned to MR/NR (tm * tn = threads, chosen
 * to minimise per-thread work + packing); each thread runs the whole blocked loop nest on its own
 * rectangle with its own slice of ws, so there is no barrier and no shared write.
 * Determinism: every C element is summed by one thread in the same order (k ascending inside a
 * KC block, blocks in order, fixed KC for a given K), and each element's arithmetic does not
 * depend on which tile or lane holds it, so results are bitwise identical for every nth.
 * (They differ between the small-M and blocked paths, i.e. depend on M, as any BLAS does.) */
#include "kdecl.h"

#include "kthreads.h"
#include <string.h>
#include <unistd.h>

/* Upper limits of every ISA descriptor (checked against kdecl.h's comment); ws sizes use them
 * so one size fits every ISA. */
enum { WS_MR = 16, WS_NR = 64, WS_KC = 384, WS_MC = 256, WS_NC = 1024, WS_SMALL_M = 16 };
/* Up to WS_MA rows, A is packed whole once per K block (the loops run K block outside, N block
 * inside) instead of once per N block: the 1024-2048-row GEMMs of training pack A up to N/NC
 * times less (the logits' A 32 times less at 32000 columns). */
enum { WS_MA = 2048 };

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t rup(int64_t a, int64_t b) { return cdiv(a, b) * b; }

/* One core's L2 bytes as the C library reports them (0: unknown), asked once; threads that race
 * on the first call store the same value (relaxed atomics: no data race). */
static long l2_bytes(void) {
#if defined(__linux__) && defined(_SC_LEVEL2_CACHE_SIZE)
    static long l2 = -1;
    long v = __atomic_load_n(&l2, __ATOMIC_RELAXED);
    if (v < 0) {
        v = sysconf(_SC_LEVEL2_CACHE_SIZE);
        if (v < 0) v = 0;
        __atomic_store_n(&l2, v, __ATOMIC_RELAXED);
    }
    return v;
#else
    return 0;
#endif
}

/* The packed B block's width: the ISA's NC, halved (down to 512 columns) while KC x NC floats
 * take more than half of the L2, so that block and the A block stay there: a 2 MiB L2 (Sapphire
 * and Emerald Rapids) takes 1024 columns at KC 256, 1 MiB (Zen 4) 512. A wider block packs A
 * fewer times (once per block) and touches C fewer times per K block: +3-9% on one core at the
 * 110M model's training shapes (docs/PERFORMANCE.md). NC only tiles N: the order in which
 * each C element is summed, and so its bits, do not depend on it. */
static int64_t block_nc(const cke_gemm_isa *g, int64_t kc) {
    int64_t nc = g->NC;
    const long l2 = l2_bytes();
    while (nc > 512 && nc % (2 * g->NR) == 0 && (l2 == 0 || (int64_t)kc * nc * (int64_t)sizeof(float) > l2 / 2)) nc /= 2;
    return nc;
}

/* Per-thread packing floats: A block (<= min(M, MC) rows rounded up to MR) and B block. */
static int64_t ws_floats_a(int64_t M, int64_t kc, int64_t MC, int64_t MR) {
    return rup(rup(min64(M, MC), MR) * kc, 16);
}
static int64_t ws_floats_b(int64_t N, int64_t kc, int64_t NC, int64_t NR) {
    return rup(rup(min64(N, NC), NR) * kc, 16);
}

size_t cke_gemm_ws_size(int64_t M, int64_t N, int64_t K, int nth) {
    if (nth < 1) nth = 1;
    if (M < 1) M = 1;
    if (N < 1) N = 1;
    if (K < 1) K = 1;
    int64_t kc = min64(K, WS_KC);
    /* rup(min(M, MC), MR) <= min(M, WS_MC) + WS_MR for any MR <= WS_MR, likewise for N */
    int64_t per = rup(((M <= WS_MA ? M : WS_MC) + WS_MR) * kc, 16) + rup((min64(N, WS_NC) + WS_NR) * kc, 16);
    int64_t small = rup(min64(M, WS_SMALL_M) * K, 16); /* op(A) copy for the small-M path */
    int64_t fl = (int64_t)nth * per > small ? (int64_t)nth * per : small;
    return (size_t)fl * sizeof(float) + 64;
}

/* C[M,N] *= beta (beta == 0: zero it without reading) — the K == 0 case. */
static void scale_c(float *C, int64_t M, int64_t N, int64_t ldc, float beta) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

/* One thread's rectangle C[m0:m1, n0:n1] with its rows' A panels packed once per K block into pa
 * (m1 - m0 rows): the N blocks reuse them. */
static void gemm_rect_whole_a(const cke_gemm_isa *g, float *C /* [M, ldc] */, const float *A, const float *B,
                              int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, int64_t kcb, int64_t lda,
                              int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb, float alpha, float beta,
                              float *pa /* [m1-m0 rounded to MR][kc] */, float *pb /* B block */, int64_t NC) {
    const int64_t MR = g->MR, NR = g->NR, MC = g->MC;
    for (int64_t pc = 0; pc < K; pc += kcb) {
        int64_t kc = min64(kcb, K - pc);
        for (int64_t ic = m0; ic < m1; ic += MC) /* MC is a multiple of MR: the chunks' panels abut */
            g->pack_a(pa + (ic - m0) * kc, ta ? A + pc * lda + ic : A + ic * lda + pc, lda, ta, min64(MC, m1 - ic), kc);
        float bet = pc == 0 ? beta : 1.0f;
        for (int64_t jc = n0; jc < n1; jc += NC) {
            int64_t nc = min64(NC, n1 - jc);
            g->pack_b(pb, tb ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, tb, kc, nc);
            for (int64_t ir = 0; ir < m1 - m0; ir += MR) {
                int mr = (int)min64(MR, m1 - m0 - ir);
                for (int64_t jr = 0; jr < nc; jr += NR)
                    g->ukr(C + (m0 + ir) * ldc + jc + jr, ldc, pa + ir * kc, pb + jr * kc, kc, mr,
                           (int)min64(NR, nc - jr), alpha, bet);
            }
        }
    }
}

/* One thread's rectangle C[m0:m1, n0:n1]: the full blocked loop nest. */
static void gemm_rect(const cke_gemm_isa *g, float *C /* [M, ldc] */, const float *A,
                      const float *B, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K,
                      int64_t kcb, int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta,
                      cke_trans tb, float alpha, float beta, float *pa /* A block */,
                      float *pb /* B block */, int64_t NC) {
    const int64_t MR = g->MR, NR = g->NR, MC = g->MC;
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = min64(NC, n1 - jc);
        for (int64_t pc = 0; pc < K; pc += kcb) {
            int64_t kc = min64(kcb, K - pc);
            g->pack_b(pb, tb ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, tb, kc, nc);
            float bet = pc == 0 ? beta : 1.0f;
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = min64(MC, m1 - ic);
                g->pack_a(pa, ta ? A + pc * lda + ic : A + ic * lda + pc, lda, ta, mc, kc);
                for (int64_t ir = 0; ir < mc; ir += MR) {
                    int mr = (int)min64(MR, mc - ir);
                    for (int64_t jr = 0; jr < nc; jr += NR) {
                        int nr = (int)min64(NR, nc - jr);
                        g->ukr(C + (ic + ir) * ldc + jc + jr, ldc, pa + ir * kc, pb + jr * kc, kc,
                               mr, nr, alpha, bet);
                    }
                }
            }
        }
    }
}

/* Part p of `parts` of np panels of width w, clipped to n: [*lo, *hi). */
static void split(int64_t np, int64_t w, int64_t n, int parts, int p, int64_t *lo, int64_t *hi) {
    *lo = min64(np * p / parts * w, n);
    *hi = min64(np * (p + 1) / parts * w, n);
}

void cke_gemm_drive(const cke_gemm_isa *g, float *C /* [M, ldc] */,
                    const float *A /* [M, lda] or [K, lda] (ta) */,
                    const float *B /* [K, ldb] or [N, ldb] (tb) */, int64_t M, int64_t N,
                    int64_t K, int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb,
                    float alpha, float beta, void *ws, int nth) {
    if (M <= 0 || N <= 0) return;
    if (nth < 1) nth = 1;
    if (K <= 0) { scale_c(C, M, N, ldc, beta); return; }
    float *w = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);

    if (tb == CKE_TRANS && M <= g->SMALL_M && g->small_t) {
        const float *X = A; /* [M, ldx] */
        int64_t ldx = lda;
        if (ta == CKE_TRANS) { /* rows of op(A) must be contiguous along K */
            for (int64_t i = 0; i < M; i++)
                for (int64_t k = 0; k < K; k++) w[i * K + k] = A[k * lda + i];
            X = w;
            ldx = K;
        }
        /* threads split N in chunks of 16 W rows; tiny N runs on one thread */
        int64_t np = cdiv(N, 16);
        int nt = (int)min64(nth, np);
        if (N * K < 32768) nt = 1; /* a parallel region costs more than the work */
        if (nt <= 1) { g->small_t(C, ldc, X, ldx, B, ldb, M, 0, N, K, alpha, beta); return; }
#pragma omp parallel num_threads(nt)
        {
            int64_t lo, hi;
            split(np, 16, N, nt, omp_get_thread_num(), &lo, &hi);
            if (hi > lo) g->small_t(C, ldc, X, ldx, B, ldb, M, lo, hi, K, alpha, beta);
        }
        return;
    }

    /* balanced K blocks: a function of K only, so the summation order is fixed */
    int64_t kcb = cdiv(K, cdiv(K, g->KC));
    const int64_t NC = block_nc(g, kcb);
    int64_t npm = cdiv(M, g->MR), npn = cdiv(N, g->NR);
    /* thread grid: minimise per-thread tile work (MACs / 16) + packing (elements per k) */
    int tm = 1, tn = 1;
    if (nth > 1 && (double)M * N * K >= 262144.0) {
        double best = -1;
        for (int d = 1; d <= nth; d++) {
            if (nth % d) continue;
            int a = nth / d, b = d; /* a row parts x b column parts */
            if (a > npm || b > npn) continue;
            double mt = (double)cdiv(npm, a) * g->MR, ntc = (double)cdiv(npn, b) * g->NR;
            double cost = mt * ntc / 16.0 + (mt * cdiv(N, NC) + ntc) * 2.0;
            if (best < 0 || cost <= best) { best = cost; tm = a; tn = b; }
        }
    }
    const int whole = M <= WS_MA && N > NC; /* with one N block, packing A per block is packing it once */
    int64_t wa = ws_floats_a(M, kcb, whole ? M : g->MC, g->MR), wb = ws_floats_b(N, kcb, NC, g->NR);
    void (*rect)(const cke_gemm_isa *, float *, const float *, const float *, int64_t, int64_t, int64_t, int64_t,
                 int64_t, int64_t, int64_t, int64_t, int64_t, cke_trans, cke_trans, float, float, float *, float *,
                 int64_t) = whole ? gemm_rect_whole_a : gemm_rect;
    int nt = tm * tn;
    if (nt <= 1) {
        rect(g, C, A, B, 0, M, 0, N, K, kcb, lda, ldb, ldc, ta, tb, alpha, beta, w, w + wa, NC);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        int64_t m0, m1, n0, n1;
        split(npm, g->MR, M, tm, t / tn, &m0, &m1);
        split(npn, g->NR, N, tn, t % tn, &n0, &n1);
        float *pa = w + (int64_t)t * (wa + wb);
        if (m1 > m0 && n1 > n0)
            rect(g, C, A, B, m0, m1, n0, n1, K, kcb, lda, ldb, ldc, ta, tb, alpha, beta, pa, pa + wa, NC);
    }
}
