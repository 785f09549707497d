#include "runtime/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cke_sampler {
    cke_sampler_opts o;
    int64_t vocab;
    uint64_t rng;
    float *l;      /* [vocab] working logits */
    int32_t *idx;  /* [vocab] candidate ids */
    float *p;      /* [vocab] candidate probabilities */
};

cke_status cke_sampler_new(cke_sampler **out, int64_t vocab, const cke_sampler_opts *o, cke_err *err) {
    *out = NULL;
    if (vocab < 1) return cke_fail(err, CKE_ERR_ARG, "sampler: vocabulary of %lld", (long long)vocab);
    if (o->temp < 0 || o->top_k < 0 || o->top_p <= 0 || o->top_p > 1 || o->min_p < 0 || o->min_p > 1 ||
        o->repeat_penalty <= 0)
        return cke_fail(err, CKE_ERR_ARG, "sampler: need temp >= 0, top-k >= 0, 0 < top-p <= 1, 0 <= min-p <= 1, "
                                          "repeat-penalty > 0");
    cke_sampler *s = calloc(1, sizeof *s);
    if (!s) return cke_fail(err, CKE_ERR_NOMEM, "out of memory");
    s->o = *o;
    s->vocab = vocab;
    s->rng = o->seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    s->l = malloc((size_t)vocab * sizeof(float));
    s->idx = malloc((size_t)vocab * sizeof(int32_t));
    s->p = malloc((size_t)vocab * sizeof(float));
    if (!s->l || !s->idx || !s->p) { cke_sampler_free(s); return cke_fail(err, CKE_ERR_NOMEM, "out of memory"); }
    *out = s;
    return CKE_OK;
}

void cke_sampler_free(cke_sampler *s) {
    if (!s) return;
    free(s->l);
    free(s->idx);
    free(s->p);
    free(s);
}

static double next_uniform(cke_sampler *s) { /* xorshift64*, [0, 1) */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *l = ctx;
    float x = l[*(const int32_t *)a], y = l[*(const int32_t *)b];
    if (x > y) return -1;
    if (x < y) return 1;
    return *(const int32_t *)a - *(const int32_t *)b; /* ties: lower id first, deterministic */
}

/* qsort_r is a GNU extension; a small heap-free insertion into a top-k list is enough when k is
 * small, and a full sort otherwise. Keep it simple and deterministic: shell sort with cmp_desc. */
static void sort_ids(int32_t *idx, int64_t n, const float *l) {
    static const int64_t gaps[] = {1391376, 463792, 198768, 86961, 33936, 13776, 4592, 1968, 861, 336, 112, 48, 21, 7, 3, 1};
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        int64_t gap = gaps[g];
        for (int64_t i = gap; i < n; i++) {
            int32_t v = idx[i];
            int64_t j = i;
            while (j >= gap && cmp_desc(&idx[j - gap], &v, (void *)l) > 0) { idx[j] = idx[j - gap]; j -= gap; }
            idx[j] = v;
        }
    }
}

int32_t cke_sampler_next(cke_sampler *s, const float *logits, const int32_t *history, int64_t n_hist) {
    /* no logits (nothing was prefilled: an empty prompt) or no vocabulary: no token */
    if (!s || !logits || s->vocab <= 0) return -1;
    const int64_t V = s->vocab;
    memcpy(s->l, logits, (size_t)V * sizeof(float));
    if (s->o.repeat_penalty != 1.0f && history) {
        int64_t from = n_hist > s->o.repeat_last_n ? n_hist - s->o.repeat_last_n : 0;
        for (int64_t i = from; i < n_hist; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= V) continue;
            /* once per distinct token: skip if it appears later in the window */
            int later = 0;
            for (int64_t j = i + 1; j < n_hist && !later; j++) later = history[j] == t;
            if (later) continue;
            s->l[t] = s->l[t] > 0 ? s->l[t] / s->o.repeat_penalty : s->l[t] * s->o.repeat_penalty;
        }
    }
    if (s->o.temp == 0.0f) {
        int32_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (s->l[i] > s->l[best]) best = (int32_t)i;
        return best;
    }
    /* candidates sorted by logit; top-k keeps the first k */
    for (int64_t i = 0; i < V; i++) s->idx[i] = (int32_t)i;
    int64_t n = V;
    if (s->o.top_k > 0 && s->o.top_k < V) {
        /* partial selection: one pass keeps the k best in a sorted prefix */
        int64_t k = s->o.top_k;
        sort_ids(s->idx, k, s->l);
        for (int64_t i = k; i < V; i++) {
            int32_t c = s->idx[i];
            if (cmp_desc(&c, &s->idx[k - 1], s->l) < 0) {
                int64_t j = k - 1;
                while (j > 0 && cmp_desc(&c, &s->idx[j - 1], s->l) < 0) { s->idx[j] = s->idx[j - 1]; j--; }
                s->idx[j] = c;
            }
        }
        n = k;
    } else {
        sort_ids(s->idx, n, s->l);
    }
    /* softmax with temperature over the candidates */
    double mx = s->l[s->idx[0]], sum = 0;
    for (int64_t i = 0; i < n; i++) {
        s->p[i] = (float)exp(((double)s->l[s->idx[i]] - mx) / s->o.temp);
        sum += s->p[i];
    }
    for (int64_t i = 0; i < n; i++) s->p[i] = (float)(s->p[i] / sum);
    if (s->o.top_p < 1.0f) {
        double c = 0;
        int64_t keep = n;
        for (int64_t i = 0; i < n; i++) {
            c += s->p[i];
            if (c >= s->o.top_p) { keep = i + 1; break; }
        }
        n = keep;
    }
    if (s->o.min_p > 0.0f) {
        float lim = s->o.min_p * s->p[0];
        int64_t keep = 1;
        while (keep < n && s->p[keep] >= lim) keep++;
        n = keep;
    }
    double tot = 0;
    for (int64_t i = 0; i < n; i++) tot += s->p[i];
    double r = next_uniform(s) * tot, c = 0;
    for (int64_t i = 0; i < n; i++) {
        c += s->p[i];
        if (r < c) return s->idx[i];
    }
    return s->idx[n - 1];
}
