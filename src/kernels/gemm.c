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
 * Up to WS_MA rows with more than one N block (the training GEMMs), K blocks go outside instead
 * (rect_whole_a): all of the rectangle's rows of A are packed once per K block and every N block
 * reuses them. Either order sums each C element over the same K blocks in the same order.
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

/* The packed B block's width: the ISA's NC, halved (down to 256 columns) while KC x NC floats
 * take more than half of the L2, so that block and the A block stay there: a 2 MiB L2 (Sapphire
 * and Emerald Rapids) takes 1024 columns at KC 256, 1 MiB (Zen 4) 512, 512 KiB (Zen 3) 256
 * (+2-4% on the 110M training shapes there over 512, which filled its whole L2). A wider block packs A
 * fewer times (once per block) and touches C fewer times per K block: +3-9% on one core at the
 * 110M model's training shapes (docs/PERFORMANCE.md). NC only tiles N: the order in which
 * each C element is summed, and so its bits, do not depend on it. */
static int64_t block_nc(const cke_gemm_isa *g, int64_t kc) {
    int64_t nc = g->NC;
    const long l2 = l2_bytes();
    while (nc > 256 && nc % (2 * g->NR) == 0 && (l2 == 0 || (int64_t)kc * nc * (int64_t)sizeof(float) > l2 / 2)) nc /= 2;
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

/* Part p of `parts` of np panels of width w, clipped to n: [*lo, *hi). */
static void split(int64_t np, int64_t w, int64_t n, int parts, int p, int64_t *lo, int64_t *hi) {
    *lo = min64(np * p / parts * w, n);
    *hi = min64(np * (p + 1) / parts * w, n);
}

/* One blocked GEMM's operands and blocking, shared by its threads. */
typedef struct {
    const cke_gemm_isa *g;
    float *C;                       /* [M, ldc] */
    const float *A, *B;             /* op(A) [M, K], op(B) [K, N] */
    const uint16_t *B16;            /* op(B) stored as bf16 (cke_gemm_drive_b16), else NULL */
    int64_t K, kcb, NC, lda, ldb, ldc;
    cke_trans ta, tb;
    float alpha, beta;
} gemm_job;

static const float *a_at(const gemm_job *j, int64_t i, int64_t pc) {
    return j->ta ? j->A + pc * j->lda + i : j->A + i * j->lda + pc;
}
/* op(B)[pc:+kc, jc:+nc] -> pb */
static void pack_b_block(const gemm_job *j, float *pb, int64_t pc, int64_t jc, int64_t kc, int64_t nc) {
    const int64_t off = j->tb ? jc * j->ldb + pc : pc * j->ldb + jc;
    if (j->B16) j->g->pack_b16(pb, j->B16 + off, j->ldb, j->tb, kc, nc);
    else j->g->pack_b(pb, j->B + off, j->ldb, j->tb, kc, nc);
}

/* A[m0:m1, pc:+kc] -> pa in MC chunks (MC is a multiple of MR: the chunks' panels abut) */
static void pack_a_rows(const gemm_job *j, float *pa, int64_t m0, int64_t m1, int64_t pc, int64_t kc) {
    for (int64_t ic = m0; ic < m1; ic += j->g->MC)
        j->g->pack_a(pa + (ic - m0) * kc, a_at(j, ic, pc), j->lda, j->ta, min64(j->g->MC, m1 - ic), kc);
}

/* C[m0:m1, jc:+nc] += the packed A rows pa (from m0) . the packed B block pb */
static void tiles(const gemm_job *j, const float *pa, const float *pb, int64_t m0, int64_t m1, int64_t jc, int64_t nc,
                  int64_t kc, float bet) {
    const int64_t MR = j->g->MR, NR = j->g->NR;
    for (int64_t ir = 0; ir < m1 - m0; ir += MR) {
        int mr = (int)min64(MR, m1 - m0 - ir);
        for (int64_t jr = 0; jr < nc; jr += NR)
            j->g->ukr(j->C + (m0 + ir) * j->ldc + jc + jr, j->ldc, pa + ir * kc, pb + jr * kc, kc, mr,
                      (int)min64(NR, nc - jr), j->alpha, bet);
    }
}

/* A thread's rectangle C[m0:m1, n0:n1], A packed whole: K blocks outside, N blocks inside, so the
 * rows' A panels (pa, m1 - m0 rows) are packed once per K block and every N block reuses them.
 * (Threads that split the rows could pack each B block together, and those that split the
 * columns A: tried at 2 threads, no gain measured, so each thread packs what it reads.) */
static void rect_whole_a(const gemm_job *j, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *pa, float *pb) {
    for (int64_t pc = 0; pc < j->K; pc += j->kcb) {
        int64_t kc = min64(j->kcb, j->K - pc);
        pack_a_rows(j, pa, m0, m1, pc, kc);
        for (int64_t jc = n0; jc < n1; jc += j->NC) {
            int64_t nc = min64(j->NC, n1 - jc);
            pack_b_block(j, pb, pc, jc, kc, nc);
            tiles(j, pa, pb, m0, m1, jc, nc, kc, pc == 0 ? j->beta : 1.0f);
        }
    }
}

/* A thread's rectangle, BLIS order: N blocks, K blocks, then A in MC-row blocks (pa) against the
 * B block (pb) that stays in L2. */
static void rect_blocked(const gemm_job *j, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *pa, float *pb) {
    for (int64_t jc = n0; jc < n1; jc += j->NC) {
        int64_t nc = min64(j->NC, n1 - jc);
        for (int64_t pc = 0; pc < j->K; pc += j->kcb) {
            int64_t kc = min64(j->kcb, j->K - pc);
            pack_b_block(j, pb, pc, jc, kc, nc);
            for (int64_t ic = m0; ic < m1; ic += j->g->MC) {
                int64_t mc = min64(j->g->MC, m1 - ic);
                j->g->pack_a(pa, a_at(j, ic, pc), j->lda, j->ta, mc, kc);
                tiles(j, pa, pb, ic, ic + mc, jc, nc, kc, pc == 0 ? j->beta : 1.0f);
            }
        }
    }
}

/* B16 != NULL: op(B) is stored as bf16 there (B unused) */
static void drive(const cke_gemm_isa *g, float *C /* [M, ldc] */, const float *A /* [M, lda] or [K, lda] (ta) */,
                  const float *B /* [K, ldb] or [N, ldb] (tb) */, const uint16_t *B16 /* as B */, int64_t M,
                  int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb,
                  float alpha, float beta, void *ws, int nth) {
    if (M <= 0 || N <= 0) return;
    if (nth < 1) nth = 1;
    if (K <= 0) { scale_c(C, M, N, ldc, beta); return; }
    float *w = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);

    if (!B16 && tb == CKE_TRANS && M <= g->SMALL_M && g->small_t) {
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
    const int64_t npm = cdiv(M, g->MR), npn = cdiv(N, g->NR);
    const int whole = M <= WS_MA && N > NC; /* with one N block, packing A per block is packing it once */
    /* thread grid: minimise per-thread tile work (MACs / 16) + packing (elements per k) */
    int tm = 1, tn = 1;
    if (nth > 1 && (double)M * N * K >= 262144.0) {
        double best = -1;
        for (int d = 1; d <= nth; d++) {
            if (nth % d) continue;
            int a = nth / d, b = d; /* a row parts x b column parts */
            if (a > npm || b > npn) continue;
            double mt = (double)cdiv(npm, a) * g->MR, ntc = (double)cdiv(npn, b) * g->NR;
            double cost = mt * ntc / 16.0 + (mt * (whole ? 1.0 : (double)cdiv(N, NC)) + ntc) * 2.0;
            if (best < 0 || cost <= best) { best = cost; tm = a; tn = b; }
        }
    }
    const int64_t wa = ws_floats_a(M, kcb, whole ? M : g->MC, g->MR), wb = ws_floats_b(N, kcb, NC, g->NR);
    const gemm_job j = {.g = g, .C = C, .A = A, .B = B, .B16 = B16, .K = K, .kcb = kcb, .NC = NC, .lda = lda, .ldb = ldb,
                        .ldc = ldc, .ta = ta, .tb = tb, .alpha = alpha, .beta = beta};
    void (*rect)(const gemm_job *, int64_t, int64_t, int64_t, int64_t, float *, float *) =
        whole ? rect_whole_a : rect_blocked;
    const int nt = tm * tn;
    if (nt <= 1) {
        rect(&j, 0, M, 0, N, w, w + wa);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        int64_t m0, m1, n0, n1;
        split(npm, g->MR, M, tm, t / tn, &m0, &m1);
        split(npn, g->NR, N, tn, t % tn, &n0, &n1);
        float *pa = w + (int64_t)t * (wa + wb);
        if (m1 > m0 && n1 > n0) rect(&j, m0, m1, n0, n1, pa, pa + wa);
    }
}

void cke_gemm_drive(const cke_gemm_isa *g, float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K,
                    int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb, float alpha, float beta, void *ws,
                    int nth) {
    drive(g, C, A, B, NULL, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, nth);
}

void cke_gemm_drive_b16(const cke_gemm_isa *g, float *C, const float *A, const uint16_t *B, int64_t M, int64_t N,
                        int64_t K, int64_t lda, int64_t ldb, int64_t ldc, cke_trans ta, cke_trans tb, float alpha,
                        float beta, void *ws, int nth) {
    drive(g, C, A, NULL, B, M, N, K, lda, ldb, ldc, ta, tb, alpha, beta, ws, nth);
}
