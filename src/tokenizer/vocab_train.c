/* BPE vocabulary training (see vocab_train.h). Pair counts are kept incrementally: each pair has
 * a count and a list of the distinct words it occurs in, and a lazy max-heap picks the next merge,
 * so a merge costs the words it touches, not the whole corpus. */
#include "tokenizer/vocab_train.h"
#include "tokenizer/tok_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MARKER ' ' /* the SPM word marker as tokenizer.bin stores it (the loader maps it to U+2581) */

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

typedef struct { int32_t *v; size_t n, cap; } i32vec;

static bool i32_push(i32vec *a, int32_t x) {
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 4;
        int32_t *p = realloc(a->v, c * sizeof *p);
        if (!p) return false;
        a->v = p; a->cap = c;
    }
    a->v[a->n++] = x;
    return true;
}

/* Grows *p (elements of size sz) to hold at least n; false on overflow/out of memory. */
static bool grow(void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < n) {
        if (c > SIZE_MAX / 2 / sz) return false;
        c *= 2;
    }
    void *q = realloc(*p, c * sz);
    if (!q) return false;
    *p = q; *cap = c;
    return true;
}

/* ---------------------------------------------------------------- strings -> index */

/* Open addressing over keys that live elsewhere (key(i) gives them); slot value -1 is empty. */
typedef struct {
    int32_t *slot;
    size_t mask, n;
} smap;

typedef struct { const char *s; size_t n; } slice;
typedef slice (*key_fn)(const void *ctx, int32_t i);

static bool smap_rehash(smap *m, size_t cap, key_fn key, const void *ctx) {
    int32_t *s = malloc(cap * sizeof *s);
    if (!s) return false;
    memset(s, 0xff, cap * sizeof *s);
    for (size_t i = 0; m->slot && i <= m->mask; i++) {
        int32_t id = m->slot[i];
        if (id < 0) continue;
        slice k = key(ctx, id);
        size_t j = fnv(k.s, k.n) & (cap - 1);
        while (s[j] >= 0) j = (j + 1) & (cap - 1);
        s[j] = id;
    }
    free(m->slot);
    m->slot = s;
    m->mask = cap - 1;
    return true;
}

/* The slot where (s, n) is or would go. */
static size_t smap_slot(const smap *m, const char *s, size_t n, key_fn key, const void *ctx) {
    for (size_t j = fnv(s, n) & m->mask;; j = (j + 1) & m->mask) {
        int32_t id = m->slot[j];
        if (id < 0) return j;
        slice k = key(ctx, id);
        if (k.n == n && !memcmp(k.s, s, n)) return j;
    }
}

/* Call before inserting one more key. */
static bool smap_reserve(smap *m, key_fn key, const void *ctx) {
    if (m->slot && (m->n + 1) * 2 <= m->mask + 1) return true;
    return smap_rehash(m, m->slot ? (m->mask + 1) * 2 : 1024, key, ctx);
}

/* ---------------------------------------------------------------- the vocabulary being built */

typedef struct {
    char *arena;
    size_t arena_n, arena_cap;
    size_t *off;
    uint32_t *len;
    float *score;
    size_t n, cap;
    smap map;
} vocab;

static slice vocab_key(const void *ctx, int32_t i) {
    const vocab *v = ctx;
    return (slice){v->arena + v->off[i], v->len[i]};
}

static int32_t vocab_find(const vocab *v, const char *s, size_t n) {
    if (!v->map.slot) return -1;
    return v->map.slot[smap_slot(&v->map, s, n, vocab_key, v)];
}

/* Adds a piece that is not in the vocabulary yet; -1 when out of memory. */
static int32_t vocab_add(vocab *v, const char *s, size_t n, float score) {
    if (v->n >= CKE_TOK_MAX_VOCAB || n > UINT32_MAX) return -1;
    if (!smap_reserve(&v->map, vocab_key, v)) return -1;
    size_t c = v->cap;
    if (!grow((void **)&v->off, &c, v->n + 1, sizeof *v->off)) return -1;
    c = v->cap;
    if (!grow((void **)&v->len, &c, v->n + 1, sizeof *v->len)) return -1;
    c = v->cap;
    if (!grow((void **)&v->score, &c, v->n + 1, sizeof *v->score)) return -1;
    v->cap = c;
    if (!grow((void **)&v->arena, &v->arena_cap, v->arena_n + n + 1, 1)) return -1;
    memcpy(v->arena + v->arena_n, s, n);
    int32_t id = (int32_t)v->n++;
    v->off[id] = v->arena_n;
    v->len[id] = (uint32_t)n;
    v->score[id] = score;
    v->arena_n += n;
    v->map.slot[smap_slot(&v->map, s, n, vocab_key, v)] = id;
    v->map.n++;
    return id;
}

static void vocab_free(vocab *v) {
    free(v->arena); free(v->off); free(v->len); free(v->score); free(v->map.slot);
}

/* Bytewise order of two pieces (shorter first on a common prefix). */
static int piece_cmp(const vocab *v, int32_t a, int32_t b) {
    size_t la = v->len[a], lb = v->len[b];
    int c = memcmp(v->arena + v->off[a], v->arena + v->off[b], la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* ---------------------------------------------------------------- words, characters, pairs */

typedef struct {
    size_t off;      /* in the normalized text */
    uint32_t len;
    int64_t freq;
    size_t sym;      /* first symbol in the symbol arena */
    uint32_t n_sym;
} word;

typedef struct {
    const char *text;
    word *w;
    size_t n, cap;
    smap map;
} words;

static slice word_key(const void *ctx, int32_t i) {
    const words *ws = ctx;
    return (slice){ws->text + ws->w[i].off, ws->w[i].len};
}

typedef struct {
    int32_t a, b;
    int64_t count;
    int64_t pushed; /* the count of the newest heap entry for this pair */
    bool dirty;
    i32vec where;   /* words holding the pair (may repeat or be stale: checked on use) */
} pair;

typedef struct { int64_t count; int32_t pair; } hent;

typedef struct {
    vocab voc;
    words ws;
    int32_t *sym;
    size_t n_sym, sym_cap;
    pair *p;
    size_t np, pcap;
    uint64_t *pkey;   /* open addressing (a << 32 | b) -> pair index in pidx */
    int32_t *pidx;
    size_t pmask;
    hent *heap;
    size_t nh, hcap;
    i32vec dirty;
} trainer;

static bool pairs_rehash(trainer *t, size_t cap) {
    uint64_t *k = malloc(cap * sizeof *k);
    int32_t *x = malloc(cap * sizeof *x);
    if (!k || !x) { free(k); free(x); return false; }
    memset(x, 0xff, cap * sizeof *x);
    for (size_t i = 0; i < t->np; i++) {
        uint64_t key = (uint64_t)(uint32_t)t->p[i].a << 32 | (uint32_t)t->p[i].b;
        size_t j = mix64(key) & (cap - 1);
        while (x[j] >= 0) j = (j + 1) & (cap - 1);
        k[j] = key;
        x[j] = (int32_t)i;
    }
    free(t->pkey); free(t->pidx);
    t->pkey = k; t->pidx = x; t->pmask = cap - 1;
    return true;
}

/* Index of pair (a, b), created with count 0 when absent; -1 when out of memory. */
static int32_t pair_get(trainer *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    if (t->pidx) {
        for (size_t j = mix64(key) & t->pmask; t->pidx[j] >= 0; j = (j + 1) & t->pmask)
            if (t->pkey[j] == key) return t->pidx[j];
    }
    if (t->np >= INT32_MAX) return -1;
    if ((!t->pidx || (t->np + 1) * 2 > t->pmask + 1) && !pairs_rehash(t, t->pidx ? (t->pmask + 1) * 2 : 4096))
        return -1;
    if (!grow((void **)&t->p, &t->pcap, t->np + 1, sizeof *t->p)) return -1;
    size_t j = mix64(key) & t->pmask;
    while (t->pidx[j] >= 0) j = (j + 1) & t->pmask;
    t->pkey[j] = key;
    t->pidx[j] = (int32_t)t->np;
    t->p[t->np] = (pair){a, b, 0, 0, false, {0}};
    return (int32_t)t->np++;
}

/* Heap order: higher count first, then the pair whose left, then right piece sorts first. */
static bool hent_before(const trainer *t, hent x, hent y) {
    if (x.count != y.count) return x.count > y.count;
    const pair *px = &t->p[x.pair], *py = &t->p[y.pair];
    int c = piece_cmp(&t->voc, px->a, py->a);
    if (c) return c < 0;
    return piece_cmp(&t->voc, px->b, py->b) < 0;
}

static bool heap_push(trainer *t, hent x) {
    if (!grow((void **)&t->heap, &t->hcap, t->nh + 1, sizeof *t->heap)) return false;
    size_t i = t->nh++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!hent_before(t, x, t->heap[up])) break;
        t->heap[i] = t->heap[up];
        i = up;
    }
    t->heap[i] = x;
    return true;
}

static hent heap_pop(trainer *t) {
    hent top = t->heap[0], x = t->heap[--t->nh];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->nh) break;
        if (c + 1 < t->nh && hent_before(t, t->heap[c + 1], t->heap[c])) c++;
        if (!hent_before(t, t->heap[c], x)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (t->nh) t->heap[i] = x;
    return top;
}

/* Adds freq * (occurrences) to every adjacent pair of word wi (sign -1 removes them). */
static bool count_word(trainer *t, int32_t wi, int64_t sign) {
    const word *w = &t->ws.w[wi];
    for (uint32_t j = 0; j + 1 < w->n_sym; j++) {
        int32_t pi = pair_get(t, t->sym[w->sym + j], t->sym[w->sym + j + 1]);
        if (pi < 0) return false;
        pair *p = &t->p[pi];
        p->count += sign * w->freq;
        if (sign > 0 && (p->where.n == 0 || p->where.v[p->where.n - 1] != wi) && !i32_push(&p->where, wi))
            return false;
        if (!p->dirty) {
            p->dirty = true;
            if (!i32_push(&t->dirty, pi)) return false;
        }
    }
    return true;
}

/* Pushes a heap entry for every pair whose count moved since its last entry. */
static bool flush_dirty(trainer *t) {
    for (size_t k = 0; k < t->dirty.n; k++) {
        pair *p = &t->p[t->dirty.v[k]];
        p->dirty = false;
        if (p->count > 0 && p->count != p->pushed) {
            p->pushed = p->count;
            if (!heap_push(t, (hent){p->count, t->dirty.v[k]})) return false;
        }
    }
    t->dirty.n = 0;
    return true;
}

/* Character classes for word splitting: the marker starts a word; otherwise a word is a run of
 * one class. Apostrophes count as letters so contractions ("didn't") can become tokens. */
enum { C_MARKER, C_WORD, C_PUNCT, C_CTRL };

static int char_class(const unsigned char *c, size_t n) {
    if (n > 1) return C_WORD; /* non-ASCII: letters of other scripts */
    if (c[0] == MARKER) return C_MARKER;
    if (c[0] < 0x20 || c[0] == 0x7f) return C_CTRL;
    if (c[0] == '\'' || (c[0] >= '0' && c[0] <= '9') || ((c[0] | 0x20) >= 'a' && (c[0] | 0x20) <= 'z')) return C_WORD;
    return C_PUNCT;
}

static bool add_word(trainer *t, size_t off, size_t len) {
    if (len == 0) return true;
    if (len > UINT32_MAX || !smap_reserve(&t->ws.map, word_key, &t->ws)) return false;
    size_t j = smap_slot(&t->ws.map, t->ws.text + off, len, word_key, &t->ws);
    if (t->ws.map.slot[j] >= 0) { t->ws.w[t->ws.map.slot[j]].freq++; return true; }
    if (t->ws.n >= INT32_MAX || !grow((void **)&t->ws.w, &t->ws.cap, t->ws.n + 1, sizeof *t->ws.w)) return false;
    t->ws.w[t->ws.n] = (word){off, (uint32_t)len, 1, 0, 0};
    t->ws.map.slot[j] = (int32_t)t->ws.n++;
    t->ws.map.n++;
    return true;
}

typedef struct { int64_t count; int32_t id; } char_count;

static const vocab *g_sort_voc; /* qsort has no context argument; only used inside one call */

static int char_order(const void *x, const void *y) {
    const char_count *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return piece_cmp(g_sort_voc, a->id, b->id);
}

static void trainer_free(trainer *t) {
    vocab_free(&t->voc);
    free(t->ws.w); free(t->ws.map.slot);
    free(t->sym);
    for (size_t i = 0; i < t->np; i++) free(t->p[i].where.v);
    free(t->p); free(t->pkey); free(t->pidx); free(t->heap); free(t->dirty.v);
}

#define OOM(t) cke_fail(err, CKE_ERR_NOMEM, "vocab: out of memory")

cke_status cke_vocab_train(const char *text, size_t len, int64_t vocab_size, char **out, size_t *out_len,
                           cke_vocab_stats *stats, cke_err *err) {
    *out = NULL;
    *out_len = 0;
    if (!text && len) return cke_fail(err, CKE_ERR_ARG, "vocab: NULL text");
    if (len == 0) return cke_fail(err, CKE_ERR_ARG, "vocab: the training text is empty");
    if (vocab_size < CKE_VOCAB_N_FIXED || vocab_size > CKE_TOK_MAX_VOCAB)
        return cke_fail(err, CKE_ERR_ARG, "vocab: size %lld outside [%d, %d] (259 = <unk> <s> </s> + 256 byte tokens)",
                        (long long)vocab_size, CKE_VOCAB_N_FIXED, CKE_TOK_MAX_VOCAB);
    if (len > SIZE_MAX - 2) return cke_fail(err, CKE_ERR_ARG, "vocab: text too large");

    /* Normalize as the SPM encoder does: a dummy prefix; spaces are already the marker. */
    char *norm = malloc(len + 2);
    if (!norm) return OOM(t);
    norm[0] = MARKER;
    memcpy(norm + 1, text, len);
    size_t n = len + 1;
    norm[n] = 0;

    trainer t = {0};
    t.ws.text = norm;
    cke_status st = CKE_OK;
    char_count *cc = NULL;
    char *file = NULL;

    /* fixed tokens: ids 0..258 */
    if (vocab_add(&t.voc, "<unk>", 5, 0) < 0 || vocab_add(&t.voc, "<s>", 3, 0) < 0 || vocab_add(&t.voc, "</s>", 4, 0) < 0) {
        st = OOM(t); goto done;
    }
    for (int b = 0; b < 256; b++) {
        static const char hx[] = "0123456789ABCDEF";
        char buf[6] = {'<', '0', 'x', hx[b >> 4], hx[b & 15], '>'};
        if (vocab_add(&t.voc, buf, 6, 0) < 0) { st = OOM(t); goto done; }
    }

    /* Split into words; collect the characters (as pieces, counted in a side table). Invalid
     * UTF-8 bytes end a word and join nothing: the encoder turns them into byte tokens. */
    vocab chars = {0};
    int64_t *ccount = NULL;
    size_t ccap = 0;
    int64_t n_words = 0;
    {
        size_t ws = SIZE_MAX;
        int prev = -1;
        for (size_t i = 0; i < n;) {
            size_t cl = tok_utf8_len((const unsigned char *)norm + i, n - i);
            if (cl == 0) {
                if (ws != SIZE_MAX) { if (!add_word(&t, ws, i - ws)) goto oom_chars; n_words++; }
                ws = SIZE_MAX;
                prev = -1;
                i++;
                continue;
            }
            int c = char_class((const unsigned char *)norm + i, cl);
            if (ws != SIZE_MAX && (c == C_MARKER || (prev != C_MARKER && c != prev))) {
                if (!add_word(&t, ws, i - ws)) goto oom_chars;
                n_words++;
                ws = SIZE_MAX;
            }
            if (ws == SIZE_MAX) ws = i;
            prev = c;
            int32_t id = vocab_find(&chars, norm + i, cl);
            if (id < 0) {
                if ((id = vocab_add(&chars, norm + i, cl, 0)) < 0) goto oom_chars;
                if (!grow((void **)&ccount, &ccap, (size_t)id + 1, sizeof *ccount)) goto oom_chars;
                ccount[id] = 0;
            }
            ccount[id]++;
            i += cl;
        }
        if (ws != SIZE_MAX) { if (!add_word(&t, ws, n - ws)) goto oom_chars; n_words++; }
    }

    /* characters, most frequent first */
    int64_t n_chars = (int64_t)chars.n;
    if (CKE_VOCAB_N_FIXED + n_chars > vocab_size) {
        st = cke_fail(err, CKE_ERR_ARG, "vocab: size %lld is too small: the text has %lld distinct characters, so the "
                      "vocabulary needs at least 259 + %lld = %lld tokens", (long long)vocab_size, (long long)n_chars,
                      (long long)n_chars, (long long)(CKE_VOCAB_N_FIXED + n_chars));
        goto done_chars;
    }
    cc = malloc((chars.n ? chars.n : 1) * sizeof *cc);
    if (!cc) goto oom_chars;
    for (size_t i = 0; i < chars.n; i++) cc[i] = (char_count){ccount[i], (int32_t)i};
    g_sort_voc = &chars;
    qsort(cc, chars.n, sizeof *cc, char_order);
    g_sort_voc = NULL;
    for (size_t i = 0; i < chars.n; i++) {
        slice s = vocab_key(&chars, cc[i].id);
        /* below every merge score (merges are 0, -1, ... > -vocab_size) */
        if (vocab_add(&t.voc, s.s, s.n, -(float)(vocab_size + (int64_t)i)) < 0) goto oom_chars;
    }

    /* words -> symbol sequences of character ids */
    for (size_t wi = 0; wi < t.ws.n; wi++) {
        word *w = &t.ws.w[wi];
        w->sym = t.n_sym;
        for (size_t i = w->off; i < w->off + w->len;) {
            size_t cl = tok_utf8_len((const unsigned char *)norm + i, w->off + w->len - i);
            if (!grow((void **)&t.sym, &t.sym_cap, t.n_sym + 1, sizeof *t.sym)) goto oom_chars;
            t.sym[t.n_sym++] = vocab_find(&t.voc, norm + i, cl);
            w->n_sym++;
            i += cl;
        }
    }
    for (size_t wi = 0; wi < t.ws.n; wi++)
        if (!count_word(&t, (int32_t)wi, 1)) goto oom_chars;
    if (!flush_dirty(&t)) goto oom_chars;

    /* merges */
    int64_t n_merges = 0;
    char *cat = NULL;
    size_t cat_cap = 0;
    while ((int64_t)t.voc.n < vocab_size) {
        if (t.nh == 0) {
            st = cke_fail(err, CKE_ERR_ARG, "vocab: the text has no more pairs to merge after %lld merges: size %lld is "
                          "too large for it (at most %lld)", (long long)n_merges, (long long)vocab_size,
                          (long long)t.voc.n);
            free(cat);
            goto done_chars;
        }
        hent e = heap_pop(&t);
        if (e.count != t.p[e.pair].count || e.count <= 0) continue; /* stale */
        int32_t a = t.p[e.pair].a, b = t.p[e.pair].b;
        size_t la = t.voc.len[a], lb = t.voc.len[b];
        if (!grow((void **)&cat, &cat_cap, la + lb, 1)) { free(cat); goto oom_chars; }
        memcpy(cat, t.voc.arena + t.voc.off[a], la);
        memcpy(cat + la, t.voc.arena + t.voc.off[b], lb);
        /* the same string can arise from another split ("a"+"bc" after "ab"+"c"): merge the
         * symbols but keep one token */
        int32_t id = vocab_find(&t.voc, cat, la + lb);
        if (id < 0) {
            if ((id = vocab_add(&t.voc, cat, la + lb, -(float)n_merges)) < 0) { free(cat); goto oom_chars; }
            n_merges++;
        }
        i32vec where = t.p[e.pair].where; /* taken: the pair is gone from every word after this */
        t.p[e.pair].where = (i32vec){0};
        for (size_t k = 0; k < where.n; k++) {
            int32_t wi = where.v[k];
            if (k && where.v[k - 1] == wi) continue;
            word *w = &t.ws.w[wi];
            int32_t *s = t.sym + w->sym;
            bool has = false;
            for (uint32_t j = 0; j + 1 < w->n_sym && !has; j++) has = s[j] == a && s[j + 1] == b;
            if (!has) continue;
            if (!count_word(&t, wi, -1)) { free(where.v); free(cat); goto oom_chars; }
            uint32_t m = 0;
            for (uint32_t j = 0; j < w->n_sym; j++) {
                if (j + 1 < w->n_sym && s[j] == a && s[j + 1] == b) { s[m++] = id; j++; }
                else s[m++] = s[j];
            }
            w->n_sym = m;
            if (!count_word(&t, wi, 1)) { free(where.v); free(cat); goto oom_chars; }
        }
        free(where.v);
        if (!flush_dirty(&t)) { free(cat); goto oom_chars; }
    }
    free(cat);

    /* tokenizer.bin */
    size_t fsize = 4, maxlen = 1;
    for (size_t i = 0; i < t.voc.n; i++) {
        fsize += 8 + t.voc.len[i];
        if (t.voc.len[i] > maxlen) maxlen = t.voc.len[i];
    }
    if (maxlen > (1 << 20)) {
        st = cke_fail(err, CKE_ERR_ARG, "vocab: a learned token is %zu bytes long (tokenizer.bin allows 1 MiB)", maxlen);
        goto done_chars;
    }
    if (!(file = malloc(fsize))) goto oom_chars;
    int32_t ml = (int32_t)maxlen;
    memcpy(file, &ml, 4);
    size_t o = 4;
    for (size_t i = 0; i < t.voc.n; i++) {
        int32_t l = (int32_t)t.voc.len[i];
        memcpy(file + o, &t.voc.score[i], 4);
        memcpy(file + o + 4, &l, 4);
        memcpy(file + o + 8, t.voc.arena + t.voc.off[i], (size_t)l);
        o += 8 + (size_t)l;
    }
    *out = file;
    *out_len = fsize;
    file = NULL;
    if (stats) {
        *stats = (cke_vocab_stats){(int64_t)t.voc.n, n_chars, n_merges, n_words, (int64_t)t.ws.n, (int64_t)maxlen};
    }
    goto done_chars;

oom_chars:
    st = OOM(t);
done_chars:
    vocab_free(&chars);
    free(ccount);
done:
    free(cc);
    free(file);
    trainer_free(&t);
    free(norm);
    return st;
}

cke_status cke_vocab_train_file(const char *text_path, const char *out_path, int64_t vocab_size,
                                cke_vocab_stats *stats, cke_err *err) {
    FILE *f = fopen(text_path, "rb");
    if (!f) return cke_fail(err, CKE_ERR_IO, "%s: %s", text_path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > ((uint64_t)1 << 32)) {
        fclose(f);
        return cke_fail(err, CKE_ERR_IO, "%s: not a regular file under 4 GiB", text_path);
    }
    size_t n = (size_t)sb.st_size;
    char *text = malloc(n ? n : 1);
    if (!text) { fclose(f); return cke_fail(err, CKE_ERR_NOMEM, "%s: out of memory", text_path); }
    if (n && fread(text, 1, n, f) != n) {
        fclose(f); free(text);
        return cke_fail(err, CKE_ERR_IO, "%s: short read", text_path);
    }
    fclose(f);
    char *bin;
    size_t blen;
    cke_status st = cke_vocab_train(text, n, vocab_size, &bin, &blen, stats, err);
    free(text);
    if (st) {
        if (err) { /* name the file in the message */
            char m[sizeof err->msg];
            snprintf(m, sizeof m, "%s: %s", text_path, err->msg);
            memcpy(err->msg, m, sizeof m);
        }
        return st;
    }
    FILE *g = fopen(out_path, "wb");
    if (!g) { free(bin); return cke_fail(err, CKE_ERR_IO, "%s: %s", out_path, strerror(errno)); }
    bool ok = fwrite(bin, 1, blen, g) == blen;
    ok = (fclose(g) == 0) && ok;
    free(bin);
    if (!ok) return cke_fail(err, CKE_ERR_IO, "%s: write failed", out_path);
    return CKE_OK;
}
