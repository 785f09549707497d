/* Quantized dot products, plain NEON (vmull_s8 + vpadalq_s16): the code is quant_neon.h. */
#define QN_SFX neon
#define QN_DOT 0
#include "quant_neon.h"
