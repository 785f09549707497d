/* Sampling next tokens from logits, as the usual tools do it: repetition penalty over the last
 * tokens, then temperature, top-k, top-p (nucleus), min-p, and a draw from a seeded generator.
 * temp == 0 is greedy (argmax after the penalty). Deterministic for a given seed. */
#ifndef CKE_SAMPLER_H
#define CKE_SAMPLER_H

#include "cke/status.h"

#include <stdint.h>

typedef struct {
    float temp;            /* 0 = greedy */
    int top_k;             /* 0 = off */
    float top_p;           /* 1 = off */
    float min_p;           /* 0 = off: drop tokens below min_p * p(best) */
    float repeat_penalty;  /* 1 = off: logits of recent tokens / penalty (x penalty if negative) */
    int repeat_last_n;     /* how many recent tokens the penalty looks at */
    uint64_t seed;
} cke_sampler_opts;

#define CKE_SAMPLER_DEFAULTS ((cke_sampler_opts){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, \
                                                 .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 42})

typedef struct cke_sampler cke_sampler;

cke_status cke_sampler_new(cke_sampler **out, int64_t vocab, const cke_sampler_opts *o, cke_err *err);
void cke_sampler_free(cke_sampler *s);
/* history: the tokens so far (prompt + generated), for the repetition penalty.
 * Returns -1 when logits is NULL (the model was given no tokens yet): callers must check. */
int32_t cke_sampler_next(cke_sampler *s, const float *logits /* [vocab] */, const int32_t *history, int64_t n_hist);

#endif
