/* llama2.c checkpoint header and weight layout. */
#include "formats/llama2c.h"

#include <stdio.h>
#include <string.h>

#define L2C_MAGIC 0x616b3432u

/* Weight groups in file order; per-layer groups repeat for every layer. */
typedef enum { G_EMB, G_ATT_NORM, G_FFN_NORM, G_FINAL, G_Q, G_K, G_V, G_O, G_W1, G_W2, G_W3, G_FREQ, G_CLS } group;

static const group order_v0[] = {G_EMB, G_ATT_NORM, G_Q, G_K, G_V, G_O, G_FFN_NORM, G_W1, G_W2, G_W3, G_FINAL, G_FREQ, G_CLS};
static const group order_v1[] = {G_ATT_NORM, G_FFN_NORM, G_FINAL, G_EMB, G_Q, G_K, G_V, G_O, G_W1, G_W2, G_W3, G_CLS};

static bool per_layer(group g) { return g != G_EMB && g != G_FINAL && g != G_FREQ && g != G_CLS; }

/* Shape of one tensor of group g (freq_cis: both tables as one [2, seq*hs/2] blob). */
static void shape_of(const cke_llama2c_header *h, group g, int *nd, int64_t s[2]) {
    int64_t hs = h->dim / h->n_heads, kv = h->n_kv_heads * hs, v = h->vocab;
    *nd = 2;
    switch (g) {
    case G_EMB: case G_CLS: s[0] = v; s[1] = h->dim; break;
    case G_ATT_NORM: case G_FFN_NORM: case G_FINAL: *nd = 1; s[0] = h->dim; s[1] = 1; break;
    case G_Q: case G_O: s[0] = h->dim; s[1] = h->dim; break;
    case G_K: case G_V: s[0] = kv; s[1] = h->dim; break;
    case G_W1: case G_W3: s[0] = h->hidden_dim; s[1] = h->dim; break;
    case G_W2: s[0] = h->dim; s[1] = h->hidden_dim; break;
    case G_FREQ: s[0] = 2; s[1] = h->seq_len * (hs / 2); break;
    }
}

static const char *gname[] = {
    [G_EMB] = "tok_embd", [G_ATT_NORM] = "attn_norm", [G_FFN_NORM] = "ffn_norm", [G_FINAL] = "output_norm",
    [G_Q] = "attn_q", [G_K] = "attn_k", [G_V] = "attn_v", [G_O] = "attn_o", [G_W1] = "ffn_gate",
    [G_W2] = "ffn_down", [G_W3] = "ffn_up", [G_FREQ] = "freq_cis", [G_CLS] = "output",
};

static void order(const cke_llama2c_header *h, const group **o, int *n) {
    if (h->version == 0) { *o = order_v0; *n = (int)(sizeof order_v0 / sizeof *order_v0); }
    else { *o = order_v1; *n = (int)(sizeof order_v1 / sizeof *order_v1); }
}

static bool present(const cke_llama2c_header *h, group g) { return g != G_CLS || !h->shared_classifier; }

cke_status cke_llama2c_parse(const void *data, size_t size, cke_llama2c_header *h, cke_err *err) {
    const uint8_t *p = data;
    memset(h, 0, sizeof *h);
    int32_t v[7];
    uint32_t magic = 0;
    if (size >= 4) memcpy(&magic, p, 4);
    if (magic == L2C_MAGIC) {
        int32_t ver;
        if (size < 256) return cke_fail(err, CKE_ERR_FORMAT, "truncated llama2.c v1 header (%zu of 256 bytes)", size);
        memcpy(&ver, p + 4, 4);
        if (ver != 1)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "llama2.c checkpoint version %d (only legacy and 1, fp32)", ver);
        memcpy(v, p + 8, sizeof v);
        h->version = 1;
        h->shared_classifier = p[36] != 0;
        h->header_bytes = 256;
    } else {
        if (size < 28) return cke_fail(err, CKE_ERR_FORMAT, "truncated llama2.c header (%zu of 28 bytes)", size);
        memcpy(v, p, sizeof v);
        h->version = 0;
        h->shared_classifier = v[5] > 0;
        if (v[5] < 0) v[5] = v[5] == INT32_MIN ? 0 : -v[5];
        h->header_bytes = 28;
    }
    h->dim = v[0]; h->hidden_dim = v[1]; h->n_layers = v[2]; h->n_heads = v[3];
    h->n_kv_heads = v[4]; h->vocab = v[5]; h->seq_len = v[6];
    if (h->dim <= 0 || h->hidden_dim <= 0 || h->n_layers <= 0 || h->n_heads <= 0 || h->n_kv_heads <= 0 ||
        h->vocab <= 0 || h->seq_len <= 0)
        return cke_fail(err, CKE_ERR_FORMAT, "llama2.c header has a non-positive size (dim %lld hidden %lld "
                        "layers %lld heads %lld kv_heads %lld vocab %lld seq_len %lld)", (long long)h->dim,
                        (long long)h->hidden_dim, (long long)h->n_layers, (long long)h->n_heads,
                        (long long)h->n_kv_heads, (long long)h->vocab, (long long)h->seq_len);
    if (h->dim % h->n_heads || h->n_heads % h->n_kv_heads)
        return cke_fail(err, CKE_ERR_FORMAT, "llama2.c header: dim %lld / heads %lld / kv_heads %lld do not divide",
                        (long long)h->dim, (long long)h->n_heads, (long long)h->n_kv_heads);
    /* total size, overflow-checked: every factor is < 2^31, products of two fit, sums are checked */
    const group *o;
    int n;
    order(h, &o, &n);
    uint64_t total = h->header_bytes;
    for (int i = 0; i < n; i++) {
        if (!present(h, o[i])) continue;
        int nd;
        int64_t s[2];
        shape_of(h, o[i], &nd, s);
        uint64_t b = (uint64_t)s[0] * (uint64_t)s[1], t;
        if (per_layer(o[i]) && __builtin_mul_overflow(b, (uint64_t)h->n_layers, &b))
            return cke_fail(err, CKE_ERR_FORMAT, "llama2.c header: sizes overflow");
        if (__builtin_mul_overflow(b, 4u, &t) || __builtin_add_overflow(total, t, &total))
            return cke_fail(err, CKE_ERR_FORMAT, "llama2.c header: sizes overflow");
    }
    if (total > size)
        return cke_fail(err, CKE_ERR_FORMAT, "llama2.c checkpoint truncated: the header needs %llu bytes, file has %zu",
                        (unsigned long long)total, size);
    return CKE_OK;
}

int64_t cke_llama2c_n_tensors(const cke_llama2c_header *h) {
    /* emb, final, 9 per layer, (+cls); freq_cis is skipped */
    return 2 + 9 * h->n_layers + (h->shared_classifier ? 0 : 1);
}

void cke_llama2c_layout(const cke_llama2c_header *h, cke_llama2c_tensor *out) {
    const group *o;
    int n;
    order(h, &o, &n);
    uint64_t off = h->header_bytes;
    int64_t k = 0;
    for (int i = 0; i < n; i++) {
        if (!present(h, o[i])) continue;
        int nd;
        int64_t s[2];
        shape_of(h, o[i], &nd, s);
        int64_t nb = s[0] * s[1] * 4;
        int64_t reps = per_layer(o[i]) ? h->n_layers : 1;
        for (int64_t l = 0; l < reps; l++, off += (uint64_t)nb) {
            if (o[i] == G_FREQ) continue;
            cke_llama2c_tensor *t = &out[k++];
            if (per_layer(o[i])) snprintf(t->name, sizeof t->name, "l%lld.%s", (long long)l, gname[o[i]]);
            else snprintf(t->name, sizeof t->name, "%s", gname[o[i]]);
            t->ndim = nd;
            t->shape[0] = s[0];
            t->shape[1] = s[1];
            t->offset = off;
            t->nbytes = nb;
        }
    }
}
