/* Quantized dot products with the armv8.2-a dot product (vdotq_s32): the code is
 * ../quant_neon.h; this folder is compiled with -march=armv8.2-a+dotprod (Makefile). */
#define QN_SFX neon_dot
#define QN_DOT 1
#include "../quant_neon.h"
