/* RMSNorm and LayerNorm, neon instance of the shared template norm_simd.h. */
#include "../kdecl.h"
#include "ndecl.h"
#include "attn_vec.h"
#include "../norm_simd.h"
