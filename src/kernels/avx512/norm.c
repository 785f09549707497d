/* RMSNorm and LayerNorm, avx512 instance of the shared template norm_simd.h. */
#include "../kdecl.h"
#include "attn_vec.h"
#include "../norm_simd.h"
