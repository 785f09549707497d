/* Fused softmax + cross-entropy, avx2 instance of the shared template loss_simd.h. */
#include "../kdecl.h"
#include "attn_vec.h"
#include "../loss_simd.h"
