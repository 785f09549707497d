/* RoPE frequency and cos/sin tables (built once at load, not kernels). float32 arithmetic
 * exactly as llama2.c / HF so the angles match theirs bit for bit (see kernels.h). */
#include "cke/kernels.h"

#include <math.h>

void cke_rope_freqs(float *freq /* [rot/2] */, int64_t rot, double theta) {
    for (int64_t i = 0; i < rot / 2; i++)
        freq[i] = 1.0f / powf((float)theta, (float)(2 * i) / (float)rot);
}

void cke_rope_table(float *cs /* [P, rot/2, 2] */, const float *freq /* [rot/2] */,
                    int64_t P, int64_t rot) {
    for (int64_t p = 0; p < P; p++)
        for (int64_t i = 0; i < rot / 2; i++) {
            float a = (float)p * freq[i];
            cs[(p * (rot / 2) + i) * 2] = (float)cos(a);
            cs[(p * (rot / 2) + i) * 2 + 1] = (float)sin(a);
        }
}

void cke_rope_freqs_scale(float *freq /* [rot/2] */, int64_t rot, cke_rope_scale_kind kind, float factor,
                          float low_freq_factor, float high_freq_factor, int64_t orig_ctx) {
    if (kind == CKE_ROPE_SCALE_LINEAR) {
        for (int64_t i = 0; i < rot / 2; i++) freq[i] = freq[i] / factor;
        return;
    }
    if (kind != CKE_ROPE_SCALE_LLAMA3) return;
    /* the order of HF's _compute_llama3_parameters, in float32 */
    const float old = (float)orig_ctx, low_wl = old / low_freq_factor, high_wl = old / high_freq_factor;
    for (int64_t i = 0; i < rot / 2; i++) {
        float f = freq[i], wl = (float)6.283185307179586 / f; /* 2 pi rounded to float32, as torch does */
        float fl = wl > low_wl ? f / factor : f;
        if (!(wl < high_wl) && !(wl > low_wl)) {
            float s = (old / wl - low_freq_factor) / (high_freq_factor - low_freq_factor);
            fl = (1 - s) * fl / factor + s * fl;
        }
        freq[i] = fl;
    }
}
