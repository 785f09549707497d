/* RMSNorm and LayerNorm, avx2 instance of the shared template norm_simd.h. */
#include "../kdecl.h"
#include "attn_vec.h"
#include "../norm_simd.h"
