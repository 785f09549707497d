/* Rotary position embedding, neon instance of the shared template rope_simd.h. */
#include "../kdecl.h"
#include "ndecl.h"
#include "attn_vec.h"
#include "../rope_simd.h"
