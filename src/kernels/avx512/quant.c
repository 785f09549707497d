/* Quantized dot products, AVX-512 level: the _0/_1 formats use VNNI (vpdpbusd) for their u8 x s8
 * products; this file alone is compiled with -mavx512vnni (Makefile), and the avx512 level
 * requires VNNI (dispatch.c). The code is quant_simd.h. */
#define QS_SFX avx512
#define QS_VNNI 1
#include "../quant_simd.h"
#include "../quant_r_simd.h"
