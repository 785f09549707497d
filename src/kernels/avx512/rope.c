/* Rotary position embedding, avx512 instance of the shared template rope_simd.h. */
#include "../kdecl.h"
#include "attn_vec.h"
#include "../rope_simd.h"
