/* Continuous batching (ABI 5) against single-sequence decode, shared by test_compiler and
 * test_families: three sequences with different prompts, prefilled into three of four KV slots
 * and decoded together with decode_batch, must give at every step the logits each gives decoded
 * alone with prefill/decode. Rows come in different orders and in batches smaller than the slot
 * count; slot_truncate + prefill of the rest equals a fresh prefill; bad calls are refused and
 * append nothing. Header-only: static functions for one test program each. */
#ifndef CKE_TEST_BATCH_CHECK_H
#define CKE_TEST_BATCH_CHECK_H

#include "cke/model_abi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BC_SEQ = 3, BC_SLOTS = 4, BC_STEPS = 6, BC_MAXP = 9 };

static double bc_maxdiff(const float *a, const float *b, int64_t n) {
    double w = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= w)) w = d; /* NaN propagates as the worst */
    }
    return w;
}

static int bc_argmax(const float *x, int64_t n) {
    int b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = (int)i;
    return b;
}

/* More rows than one forward takes (batch_rows + 3): decode_batch runs them in pieces, and every
 * row still equals its sequence decoded alone. Returns the worst difference, or -1 on failure. */
static double batch_pieces(const ckm_api *api, const char *weights, int nth, char *err, size_t nerr) {
    const int n = (int)api->batch_rows + 3;
    const int64_t V = api->vocab;
    ckm_model *one = api->open(weights, nth, err, nerr);
    ckm_model *m = api->open_slots(weights, nth, n, err, nerr);
    int32_t *tok = malloc((size_t)n * sizeof(int32_t)), *sl = malloc((size_t)n * sizeof(int32_t));
    float *out = malloc((size_t)n * (size_t)V * sizeof(float));
    double worst = one && m && tok && sl && out ? 0 : -1;
    for (int i = 0; worst >= 0 && i < n; i++) { /* slot n-1-i holds sequence i: rows not in slot order */
        int32_t p[2] = {(int32_t)(1 + (i * 17) % (V - 1)), (int32_t)(1 + (i * 29 + 5) % (V - 1))};
        tok[i] = (int32_t)(1 + (i * 41 + 3) % (V - 1));
        sl[i] = n - 1 - i;
        if (api->slot_prefill(m, sl[i], p, 2)) worst = -1;
    }
    if (worst >= 0 && api->decode_batch(m, n, tok, sl, out)) worst = -1;
    for (int i = 0; worst >= 0 && i < n; i++) {
        int32_t p[2] = {(int32_t)(1 + (i * 17) % (V - 1)), (int32_t)(1 + (i * 29 + 5) % (V - 1))};
        api->reset(one);
        if (api->prefill(one, p, 2) || api->decode(one, tok[i]) || api->slot_pos(m, sl[i]) != 3) { worst = -1; break; }
        double d = bc_maxdiff(out + (size_t)i * (size_t)V, api->logits(one), V);
        if (!(d <= worst)) worst = d;
    }
    if (worst < 0 && m && !err[0]) snprintf(err, nerr, "%s", api->last_error(m));
    if (one) api->free(one);
    if (m) api->free(m);
    free(tok);
    free(sl);
    free(out);
    return worst;
}

/* Returns 1 when everything holds; msg says what was measured (or what failed). tol: the largest
 * |batched - alone| logit difference allowed (the caller says why it is what it is). */
static int batch_check(const ckm_api *api, const char *weights, int nth, double tol, char *msg, size_t nmsg) {
    char err[256] = "";
    const int64_t V = api->vocab;
    static const int plen[BC_SEQ] = {5, 9, 3};
    static const int slot_of[BC_SEQ] = {2, 0, 3}; /* slot 1 stays empty */
    if (!api->open_slots || !api->decode_batch || !api->slot_prefill || !api->slot_truncate || !api->slot_pos ||
        !api->slot_reset || api->batch_rows < 1) {
        snprintf(msg, nmsg, "the model lacks the ABI 5 batching entries");
        return 0;
    }
    if (api->ctx < BC_MAXP + BC_STEPS + 1) {
        snprintf(msg, nmsg, "context %lld too short for the check", (long long)api->ctx);
        return 0;
    }
    int32_t prompt[BC_SEQ][BC_MAXP], next[BC_SEQ][BC_STEPS];
    for (int i = 0; i < BC_SEQ; i++)
        for (int j = 0; j < plen[i]; j++) prompt[i][j] = (int32_t)(1 + (i * 131 + j * 37 + 7) % (V - 1));
    float *ref = malloc((size_t)BC_SEQ * (BC_STEPS + 1) * (size_t)V * sizeof(float));
    float *out = malloc((size_t)BC_SLOTS * (size_t)V * sizeof(float));
    ckm_model *one = api->open(weights, nth, err, sizeof err);
    ckm_model *m = api->open_slots(weights, nth, BC_SLOTS, err, sizeof err);
    int ok = ref && out && one && m;
    if (!ok) snprintf(msg, nmsg, "open: %s", err);
#define REF(i, k) (ref + ((size_t)(i) * (BC_STEPS + 1) + (size_t)(k)) * (size_t)V)
    /* each sequence alone: prefill, then greedy decode; its tokens are fed to the batch too */
    for (int i = 0; ok && i < BC_SEQ; i++) {
        api->reset(one);
        ok = api->prefill(one, prompt[i], plen[i]) == 0;
        for (int k = 0; ok; k++) {
            memcpy(REF(i, k), api->logits(one), (size_t)V * sizeof(float));
            if (k == BC_STEPS) break;
            next[i][k] = (int32_t)bc_argmax(REF(i, k), V);
            ok = api->decode(one, next[i][k]) == 0;
        }
        if (!ok) snprintf(msg, nmsg, "single-sequence run: %s", api->last_error(one));
    }
    /* together: prefill into slots, then decode steps in varying orders and groupings */
    double worst = 0;
    for (int i = 0; ok && i < BC_SEQ; i++) {
        ok = api->slot_prefill(m, slot_of[i], prompt[i], plen[i]) == 0 && api->slot_pos(m, slot_of[i]) == plen[i];
        if (ok) {
            double d = bc_maxdiff(api->logits(m), REF(i, 0), V);
            if (!(d <= worst)) worst = d;
        } else {
            snprintf(msg, nmsg, "slot_prefill %d: %s", i, api->last_error(m));
        }
    }
    static const int order[BC_STEPS][BC_SEQ] = {{0, 1, 2}, {2, 0, 1}, {1, 2, 0}, {0, 2, 1}, {2, 1, 0}, {1, 0, 2}};
    static const int split[BC_STEPS] = {3, 3, 1, 2, 3, 1}; /* rows of the first call; the rest in a second */
    for (int k = 0; ok && k < BC_STEPS; k++) {
        for (int part = 0; ok && part < 2; part++) {
            int r0 = part ? split[k] : 0, r1 = part ? BC_SEQ : split[k];
            if (r1 == r0) continue;
            int32_t tok[BC_SEQ], sl[BC_SEQ];
            for (int r = r0; r < r1; r++) tok[r - r0] = next[order[k][r]][k], sl[r - r0] = slot_of[order[k][r]];
            ok = api->decode_batch(m, r1 - r0, tok, sl, out) == 0;
            if (!ok) { snprintf(msg, nmsg, "decode_batch step %d: %s", k, api->last_error(m)); break; }
            for (int r = r0; r < r1; r++) {
                double d = bc_maxdiff(out + (size_t)(r - r0) * (size_t)V, REF(order[k][r], k + 1), V);
                if (!(d <= worst)) worst = d;
            }
            ok = !memcmp(api->logits(m), out + (size_t)(r1 - r0 - 1) * (size_t)V, (size_t)V * sizeof(float));
            if (!ok) snprintf(msg, nmsg, "logits() after decode_batch is not the last row");
        }
    }
    for (int i = 0; ok && i < BC_SEQ; i++) ok = api->slot_pos(m, slot_of[i]) == plen[i] + BC_STEPS;
    int batched = ok && worst <= tol;
    /* prefix reuse: keep all but the last 2 prompt tokens of sequence 1, prefill those again */
    double trunc = 0;
    int s1 = slot_of[1];
    int reuse = ok && api->slot_truncate(m, s1, plen[1] - 2) == 0 && api->slot_pos(m, s1) == plen[1] - 2 &&
                api->slot_prefill(m, s1, prompt[1] + plen[1] - 2, 2) == 0 && api->slot_pos(m, s1) == plen[1];
    if (reuse) trunc = bc_maxdiff(api->logits(m), REF(1, 0), V);
    reuse = reuse && trunc <= tol && api->slot_truncate(m, s1, plen[1] + 1) != 0 && api->slot_truncate(m, s1, -1) != 0 &&
            api->slot_pos(m, s1) == plen[1];
    /* refusals: nothing appended to any slot */
    int64_t before[BC_SLOTS];
    for (int s = 0; s < BC_SLOTS; s++) before[s] = api->slot_pos(m, s);
    int32_t t2[2] = {1, 2}, dup[2] = {0, 0}, oor[2] = {0, BC_SLOTS}, neg[2] = {-1, 0}, good[2] = {0, 2};
    int32_t badtok[2] = {1, (int32_t)V};
    int refused = ok && api->decode_batch(m, 2, t2, dup, out) != 0 && strstr(api->last_error(m), "twice") &&
                  api->decode_batch(m, 2, t2, oor, out) != 0 && strstr(api->last_error(m), "range") &&
                  api->decode_batch(m, 2, t2, neg, out) != 0 && api->decode_batch(m, 2, badtok, good, out) != 0 &&
                  strstr(api->last_error(m), "token") && api->decode_batch(m, 0, t2, good, out) != 0 &&
                  api->decode_batch(m, BC_SLOTS + 1, t2, good, out) != 0 &&
                  api->slot_prefill(m, BC_SLOTS, t2, 1) != 0 && api->slot_reset(m, -1) != 0 && api->slot_pos(m, 99) == -1;
    for (int s = 0; s < BC_SLOTS; s++) refused = refused && api->slot_pos(m, s) == before[s];
    /* a full slot: slot 1 filled to the context, then a row for it is refused with the others untouched */
    int full = 0;
    if (refused) {
        int64_t C = api->ctx;
        int32_t *fill = malloc((size_t)C * sizeof(int32_t));
        for (int64_t j = 0; fill && j < C; j++) fill[j] = (int32_t)(1 + j % (V - 1));
        int32_t tf[2] = {3, 3}, sf[2] = {0, 1};
        full = fill && api->slot_prefill(m, 1, fill, C) == 0 && api->decode_batch(m, 2, tf, sf, out) != 0 &&
               strstr(api->last_error(m), "full") && api->slot_pos(m, 0) == before[0] && api->slot_pos(m, 1) == C &&
               api->slot_reset(m, 1) == 0 && api->slot_pos(m, 1) == 0 && api->slot_prefill(m, 1, fill, C + 1) != 0;
        free(fill);
    }
    char err3[256] = "";
    double pieces = ok ? batch_pieces(api, weights, nth, err3, sizeof err3) : -1;
    char err2[256] = "";
    ckm_model *none = api->open_slots(weights, nth, 0, err2, sizeof err2);
    int zero_refused = !none && err2[0];
    if (none) api->free(none);
    if (ok)
        snprintf(msg, nmsg,
                 "%d sequences x %d steps in %d slots: max |batched - alone| %.3g (tol %.1g); truncate+prefill %.3g, "
                 "prefix reuse %d; refusals %d, full slot %d, 0 slots refused %d (%s); %lld rows in pieces: %.3g %s",
                 BC_SEQ, BC_STEPS, BC_SLOTS, worst, tol, trunc, reuse, refused, full, zero_refused, err2,
                 (long long)api->batch_rows + 3, pieces, err3);
#undef REF
    if (one) api->free(one);
    if (m) api->free(m);
    free(ref);
    free(out);
    return ok && batched && reuse && refused && full && zero_refused && pieces >= 0 && pieces <= tol;
}

#endif
