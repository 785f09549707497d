/* Softmax, activations and elementwise ops, neon instance of the shared template act_simd.h. */
#include "../kdecl.h"
#include "ndecl.h"
#include "attn_vec.h"
#include "../act_simd.h"
