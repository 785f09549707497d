/* Softmax, activations and elementwise ops, avx512 instance of the shared template act_simd.h. */
#include "../kdecl.h"
#include "attn_vec.h"
#include "../act_simd.h"
