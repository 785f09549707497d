/* Quantized dot products, AVX2 (maddubs + madd for u8 x s8). The code is quant_simd.h. */
#define QS_SFX avx2
#define QS_VNNI 0
#include "../quant_simd.h"
#include "../quant_r_simd.h"
