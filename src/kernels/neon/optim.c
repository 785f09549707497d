/* AdamW and sum of squares, neon instance of the shared template optim_simd.h. */
#include "../kdecl.h"
#include "ndecl.h"
#include "attn_vec.h"
#include "../optim_simd.h"
