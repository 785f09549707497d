/* Vocabulary -> GGUF tokenizer.ggml.* metadata, the keys tok_load.c (and llama.cpp) read. */
#include "formats/gguf.h"
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static cke_status set_id(cke_gguf_writer *w, const char *key, int32_t id, cke_err *err) {
    return id < 0 ? CKE_OK : cke_gguf_writer_set_u32(w, key, (uint32_t)id, err);
}

cke_status cke_tok_write_gguf(const cke_tok *t, cke_gguf_writer *w, const char *pre, cke_err *err) {
    const int32_t n = t->n;
    const char **strs = malloc((size_t)(n > 0 ? n : 1) * sizeof *strs);
    size_t *lens = malloc((size_t)(n > 0 ? n : 1) * sizeof *lens);
    int32_t *types = malloc((size_t)(n > 0 ? n : 1) * sizeof *types);
    float *scores = malloc((size_t)(n > 0 ? n : 1) * sizeof *scores);
    char **merges = NULL;
    size_t *mlens = NULL;
    cke_status st = CKE_OK;
    if (!strs || !lens || !types || !scores) { st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); goto done; }
    for (int32_t i = 0; i < n; i++) {
        strs[i] = t->arena + t->off[i];
        lens[i] = t->len[i];
        types[i] = t->type[i] ? t->type[i] : CKE_TOKT_NORMAL;
        scores[i] = t->score[i];
    }
    const char *model = t->kind == CKE_TOK_SPM ? "llama" : "gpt2";
    if ((st = cke_gguf_writer_set_str(w, "tokenizer.ggml.model", model, strlen(model), err)) ||
        (st = cke_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, (uint64_t)n, err)) ||
        (st = cke_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", CKE_GGUF_I32, types, (uint64_t)n, err)))
        goto done;
    if (t->kind == CKE_TOK_SPM) {
        if ((st = cke_gguf_writer_set_arr(w, "tokenizer.ggml.scores", CKE_GGUF_F32, scores, (uint64_t)n, err)) ||
            (st = cke_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix, err)))
            goto done;
    } else {
        /* merges by rank, "left right", from the (left, right) -> rank table */
        merges = calloc(t->n_merges ? t->n_merges : 1, sizeof *merges);
        mlens = calloc(t->n_merges ? t->n_merges : 1, sizeof *mlens);
        if (!merges || !mlens) { st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); goto done; }
        size_t got = 0;
        for (size_t s = 0; t->mkey && s <= t->mmask; s++) {
            if (t->mres[s] < 0) continue;
            const int32_t a = (int32_t)(t->mkey[s] >> 32), b = (int32_t)(uint32_t)t->mkey[s], r = t->mrank[s];
            if (r < 0 || (size_t)r >= t->n_merges || merges[r]) continue;
            char *m = malloc(t->len[a] + 1 + t->len[b]);
            if (!m) { st = cke_fail(err, CKE_ERR_NOMEM, "out of memory"); goto done; }
            memcpy(m, t->arena + t->off[a], t->len[a]);
            m[t->len[a]] = ' ';
            memcpy(m + t->len[a] + 1, t->arena + t->off[b], t->len[b]);
            merges[r] = m;
            mlens[r] = t->len[a] + 1 + t->len[b];
            got++;
        }
        /* ranks of merges the loader skipped (parts not in the vocabulary) leave holes: close them */
        size_t k = 0;
        for (size_t r = 0; r < t->n_merges; r++)
            if (merges[r]) {
                merges[k] = merges[r];
                mlens[k] = mlens[r];
                if (k != r) merges[r] = NULL;
                k++;
            }
        if ((st = cke_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, mlens, (uint64_t)got, err)))
            goto done;
        if (pre && (st = cke_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre, strlen(pre), err))) goto done;
    }
    if ((st = set_id(w, "tokenizer.ggml.bos_token_id", t->bos, err)) || (st = set_id(w, "tokenizer.ggml.eos_token_id", t->eos, err)) ||
        (st = set_id(w, "tokenizer.ggml.unknown_token_id", t->unk, err)) ||
        (st = set_id(w, "tokenizer.ggml.padding_token_id", t->pad, err)) ||
        (st = cke_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos, err)) ||
        (st = cke_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos, err)))
        goto done;
done:
    if (merges)
        for (size_t r = 0; r < t->n_merges; r++) free(merges[r]);
    free(merges);
    free(mlens);
    free(strs);
    free(lens);
    free(types);
    free(scores);
    return st;
}
