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
