/* RoPE frequencies per scaling scheme, as transformers' rope init functions compute them
 * (modeling_rope_utils: _compute_default/linear/llama3/yarn/longrope/dynamic_ntk_parameters):
 * tensors in float32, Python scalars (log, floor, the correction range) in double. The compiler
 * writes the result into model.c as a table, so every frequency a model uses is visible there.
 *
 * Static tables, like llama.cpp's: schemes whose frequencies HF recomputes from the running
 * sequence length are fixed by the compiled context instead. LongRoPE takes its long factors when
 * the context exceeds the original one (HF: when the sequence does; the same for any sequence
 * longer than the original context, prefilled at once); dynamic NTK is the default rope up to its
 * original context and refused beyond it. */
#include "formats/model.h"

#include <math.h>

double cke_yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * log(scale) + 1.0; }

/* HF find_correction_dim: the pair index where num_rotations turns fit the original context */
static double yarn_corr_dim(double num_rot, int64_t rot, double base, double orig) {
    return ((double)rot * log(orig / (num_rot * 2 * 3.141592653589793))) / (2 * log(base));
}

static void yarn(const cke_hparams *h, int64_t rot, float *freq, float *af) {
    const double base = h->rope.theta, factor = h->rope.factor;
    const double orig = (double)(h->rope.orig_ctx > 0 ? h->rope.orig_ctx : h->ctx_len);
    const double bf = h->rope.beta_fast > 0 ? h->rope.beta_fast : 32, bs = h->rope.beta_slow > 0 ? h->rope.beta_slow : 1;
    double lo = yarn_corr_dim(bf, rot, base, orig), hi = yarn_corr_dim(bs, rot, base, orig);
    if (!h->rope.no_truncate) {
        lo = floor(lo);
        hi = ceil(hi);
    }
    if (lo < 0) lo = 0;
    if (hi > (double)(rot - 1)) hi = (double)(rot - 1);
    if (lo == hi) hi += 0.001; /* HF linear_ramp_factor: no division by zero */
    const float flo = (float)lo, span = (float)(hi - lo);
    for (int64_t i = 0; i < rot / 2; i++) {
        /* pos_freqs = base ** (2i / rot); extrapolation 1 / pos, interpolation 1 / (factor * pos) */
        const float pos = powf((float)base, (float)(2 * i) / (float)rot);
        const float ext = 1.0f / pos, itp = 1.0f / ((float)factor * pos);
        float ramp = ((float)i - flo) / span;
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        const float ef = 1.0f - ramp; /* inv_freq_extrapolation_factor */
        freq[i] = itp * (1.0f - ef) + ext * ef;
    }
    *af = h->rope.attn_factor > 0 ? (float)h->rope.attn_factor : (float)cke_yarn_mscale(factor, 1);
}

static cke_status longrope(const cke_hparams *h, int64_t rot, int64_t ctx, float *freq, float *af, cke_err *err) {
    if (h->rope.n_factor != rot / 2)
        return cke_fail(err, CKE_ERR_SHAPE, "longrope: %lld long/short factors for %lld rotated pairs",
                        (long long)h->rope.n_factor, (long long)(rot / 2));
    const int64_t orig = h->rope.orig_ctx;
    const float *ext = ctx > orig ? h->rope.long_factor : h->rope.short_factor;
    for (int64_t i = 0; i < rot / 2; i++) freq[i] = 1.0f / (ext[i] * powf((float)h->rope.theta, (float)(2 * i) / (float)rot));
    double factor = h->rope.factor > 0 ? h->rope.factor : (double)h->ctx_len / (double)orig;
    if (h->rope.attn_factor > 0) *af = (float)h->rope.attn_factor;
    else *af = factor <= 1 ? 1.0f : (float)sqrt(1 + log(factor) / log((double)orig));
    return CKE_OK;
}

cke_status cke_rope_freq_table(const cke_hparams *h, int64_t rot, int64_t ctx, const float *rope_freqs, float *freq,
                               float *attn_factor, cke_err *err) {
    *attn_factor = 1.0f;
    if (rot <= 0) return CKE_OK;
    cke_rope_freqs(freq, rot, h->rope.theta);
    switch (h->rope.scaling) {
    case CKE_ROPE_SCALING_NONE: return CKE_OK;
    case CKE_ROPE_SCALING_LINEAR:
        cke_rope_freqs_scale(freq, rot, CKE_ROPE_SCALE_LINEAR, (float)h->rope.factor, 1, 1, 0);
        return CKE_OK;
    case CKE_ROPE_SCALING_LLAMA3:
        cke_rope_freqs_scale(freq, rot, CKE_ROPE_SCALE_LLAMA3, (float)h->rope.factor, (float)h->rope.low_freq_factor,
                             (float)h->rope.high_freq_factor, h->rope.orig_ctx);
        return CKE_OK;
    case CKE_ROPE_SCALING_FREQS: /* llama.cpp: theta / freq_factor per pair */
        if (!rope_freqs) return cke_fail(err, CKE_ERR_MISSING, "rope scaling by a rope_freqs tensor, which is missing");
        for (int64_t i = 0; i < rot / 2; i++) {
            if (!(rope_freqs[i] > 0) || !isfinite(rope_freqs[i]))
                return cke_fail(err, CKE_ERR_FORMAT, "rope_freqs[%lld] = %g is not a positive divisor", (long long)i,
                                (double)rope_freqs[i]);
            freq[i] = freq[i] / rope_freqs[i];
        }
        return CKE_OK;
    case CKE_ROPE_SCALING_YARN: yarn(h, rot, freq, attn_factor); return CKE_OK;
    case CKE_ROPE_SCALING_LONGROPE: return longrope(h, rot, ctx, freq, attn_factor, err);
    case CKE_ROPE_SCALING_DYNAMIC: {
        const int64_t orig = h->rope.orig_ctx > 0 ? h->rope.orig_ctx : h->ctx_len;
        if (ctx > orig)
            return cke_fail(err, CKE_ERR_UNSUPPORTED, "dynamic NTK rope scaling beyond its original context %lld (ctx %lld): "
                            "its frequencies change with the sequence length; compile with --ctx %lld or less",
                            (long long)orig, (long long)ctx, (long long)orig);
        return CKE_OK; /* HF: seq_len <= max_position_embeddings leaves the base unchanged */
    }
    }
    return cke_fail(err, CKE_ERR_UNSUPPORTED, "rope scaling kind %d", (int)h->rope.scaling);
}
