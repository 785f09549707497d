#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tquick = 0;

const int64_t tsizes[] = {1, 3, 16, 17, 33, 64, 127, 1025, 0};

double tnmse(const float *got, const float *want, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)want[i];
        num += d * d;
        den += (double)want[i] * (double)want[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return num / den;
}

static int check_generic(const char *what, int64_t n, tol_t tol, double (*get)(const void *, int64_t),
                         const void *g, const void *w) {
    double num = 0, den = 0, worst = 0;
    int64_t worst_i = -1, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = get(g, i), b = get(w, i);
        if (!isfinite(a) || !isfinite(b)) {
            if (!(isnan(a) && isnan(b)) && a != b) {
                if (bad++ == 0) worst_i = i;
                worst = INFINITY;
            }
            continue;
        }
        double d = fabs(a - b);
        num += d * d;
        den += b * b;
        double lim = tol.atol + tol.rtol * fabs(b);
        if (d > lim) {
            bad++;
            if (d - lim > worst || worst_i < 0) { worst = d - lim; worst_i = i; }
        }
    }
    double nmse = den == 0 ? (num == 0 ? 0 : INFINITY) : num / den;
    if (bad == 0 && nmse <= tol.nmse) return 0;
    printf("    FAIL %s: n=%lld nmse=%.3g (tol %.3g), %lld elements out of atol %.3g + rtol %.3g",
           what, (long long)n, nmse, tol.nmse, (long long)bad, tol.atol, tol.rtol);
    if (worst_i >= 0)
        printf("; worst [%lld] got %.9g want %.9g", (long long)worst_i, get(g, worst_i), get(w, worst_i));
    printf("\n");
    return 1;
}

static double getf(const void *p, int64_t i) { return (double)((const float *)p)[i]; }
static double getd(const void *p, int64_t i) { return ((const double *)p)[i]; }

int tcheck(const char *what, const float *got, const float *want, int64_t n, tol_t tol) {
    return check_generic(what, n, tol, getf, got, want);
}
int tcheck_d(const char *what, const double *got, const double *want, int64_t n, tol_t tol) {
    return check_generic(what, n, tol, getd, got, want);
}

uint64_t trng_u64(trng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
float trng_uniform(trng *r, float lo, float hi) {
    double u = (double)(trng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}
float trng_normal(trng *r) {
    double u1 = ((double)(trng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(trng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
void tfill_normal(trng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * trng_normal(r);
}
void tfill_uniform(trng *r, float *x, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = trng_uniform(r, lo, hi);
}

void *talloc(size_t bytes) {
    size_t sz = (bytes + 63) / 64 * 64;
    if (sz == 0) sz = 64;
    void *p = aligned_alloc(64, sz);
    if (!p) { fprintf(stderr, "test: out of memory (%zu bytes)\n", bytes); exit(2); }
    memset(p, 0, sz);
    return p;
}
float *tallocf(int64_t n) { return (float *)talloc((size_t)(n > 0 ? n : 1) * sizeof(float)); }
float *tcopyf(const float *x, int64_t n) {
    float *y = tallocf(n);
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}

/* ---- fixture file ----
 * "CKEFX001", u32 count, then per tensor: u32 name_len, name, u32 dtype, u32 ndim,
 * i64 dims[ndim], payload (numel * 4 bytes). Little-endian. */
struct fx_file {
    unsigned char *buf;
    size_t len;
    fx_tensor *t;
    int n;
    uint32_t cap;
    char **names;
};

static int rd(const unsigned char *b, size_t len, size_t *off, void *dst, size_t n) {
    if (n > len || *off > len - n) return -1;
    memcpy(dst, b + *off, n);
    *off += n;
    return 0;
}

fx_file *fx_open(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { printf("fixtures: cannot open %s\n", path); return NULL; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    fx_file *fx = calloc(1, sizeof *fx);
    fx->buf = malloc((size_t)len + 1);
    fx->len = (size_t)len;
    if (fread(fx->buf, 1, (size_t)len, f) != (size_t)len) { fclose(f); goto bad; }
    fclose(f);
    size_t off = 0;
    char magic[8];
    uint32_t count;
    if (rd(fx->buf, fx->len, &off, magic, 8) || memcmp(magic, "CKEFX001", 8) ||
        rd(fx->buf, fx->len, &off, &count, 4) || count > 1000000)
        goto bad;
    fx->t = calloc(count ? count : 1, sizeof(fx_tensor));
    fx->names = calloc(count ? count : 1, sizeof(char *));
    fx->cap = count;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t nl, dt, nd;
        if (rd(fx->buf, fx->len, &off, &nl, 4) || nl > 4096) goto bad;
        fx->names[i] = calloc(nl + 1, 1);
        if (rd(fx->buf, fx->len, &off, fx->names[i], nl)) goto bad;
        if (rd(fx->buf, fx->len, &off, &dt, 4) || rd(fx->buf, fx->len, &off, &nd, 4) || nd > 8 || dt > 1)
            goto bad;
        fx_tensor *t = &fx->t[i];
        t->name = fx->names[i];
        t->ndim = (int)nd;
        t->dtype = (int)dt;
        t->numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if (rd(fx->buf, fx->len, &off, &t->dims[d], 8) || t->dims[d] < 0 || t->dims[d] > (1 << 30))
                goto bad;
            t->numel *= t->dims[d];
        }
        if ((size_t)t->numel * 4 > fx->len - off) goto bad;
        /* names have odd lengths: copy each payload to its own aligned block */
        void *copy = talloc((size_t)t->numel * 4);
        memcpy(copy, fx->buf + off, (size_t)t->numel * 4);
        t->data = copy;
        off += (size_t)t->numel * 4;
        fx->n = (int)i + 1;
    }
    return fx;
bad:
    printf("fixtures: %s is corrupt or truncated\n", path);
    fx_close(fx);
    return NULL;
}

void fx_close(fx_file *fx) {
    if (!fx) return;
    for (int i = 0; i < fx->n; i++) free((void *)fx->t[i].data);
    for (uint32_t i = 0; fx->names && i < fx->cap; i++) free(fx->names[i]);
    free(fx->names);
    free(fx->t);
    free(fx->buf);
    free(fx);
}

const fx_tensor *fx_get(const fx_file *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->t[i].name, name) == 0) return &fx->t[i];
    printf("    fixture tensor '%s' missing (regenerate fixtures?)\n", name);
    return NULL;
}


const float *fx_f32(const fx_file *fx, const char *name, int64_t numel_expected) {
    const fx_tensor *t = fx_get(fx, name);
    if (!t) return NULL;
    if (t->dtype != 0 || (numel_expected >= 0 && t->numel != numel_expected)) {
        printf("    fixture tensor '%s': dtype %d numel %lld, expected f32 numel %lld\n", name, t->dtype,
               (long long)t->numel, (long long)numel_expected);
        return NULL;
    }
    return t->data; /* owned by fx, 64-byte aligned */
}

const int32_t *fx_i32(const fx_file *fx, const char *name, int64_t numel_expected) {
    const fx_tensor *t = fx_get(fx, name);
    if (!t) return NULL;
    if (t->dtype != 1 || (numel_expected >= 0 && t->numel != numel_expected)) {
        printf("    fixture tensor '%s': dtype %d numel %lld, expected i32 numel %lld\n", name, t->dtype,
               (long long)t->numel, (long long)numel_expected);
        return NULL;
    }
    return t->data; /* owned by fx, 64-byte aligned */
}

int64_t fx_scalar_i(const fx_file *fx, const char *name, int64_t dflt) {
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->t[i].name, name) == 0 && fx->t[i].numel == 1) {
            if (fx->t[i].dtype == 1) { int32_t v; memcpy(&v, fx->t[i].data, 4); return v; }
            float v; memcpy(&v, fx->t[i].data, 4); return (int64_t)v;
        }
    return dflt;
}

double fx_scalar_f(const fx_file *fx, const char *name, double dflt) {
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->t[i].name, name) == 0 && fx->t[i].numel == 1) {
            if (fx->t[i].dtype == 1) { int32_t v; memcpy(&v, fx->t[i].data, 4); return v; }
            float v; memcpy(&v, fx->t[i].data, 4); return v;
        }
    return dflt;
}

int fx_count_prefix(const fx_file *fx, const char *prefix) {
    int c = 0;
    size_t pl = strlen(prefix);
    for (int i = 0; i < fx->n; i++)
        if (strncmp(fx->t[i].name, prefix, pl) == 0) c++;
    return c;
}
