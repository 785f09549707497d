/* Fused softmax + cross-entropy, neon instance of the shared template loss_simd.h. */
#include "../kdecl.h"
#include "ndecl.h"
#include "attn_vec.h"
#include "../loss_simd.h"
