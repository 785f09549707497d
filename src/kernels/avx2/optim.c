/* AdamW and sum of squares, avx2 instance of the shared template optim_simd.h. */
#include "../kdecl.h"
#include "attn_vec.h"
#include "../optim_simd.h"
