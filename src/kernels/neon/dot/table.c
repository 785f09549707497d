/* The neon_dot dispatch table: the neon table with the quantized dots on vdotq_s32
 * (../quant_neon.h with QN_DOT 1); every other slot is the neon code. */
#include "../table.h"

#define NT_Q_DOT(t) cke_qops_##t##_neon_dot
const cke_ktable cke_ktable_neon_dot = NT_TABLE("neon_dot", NT_Q_DOT);
