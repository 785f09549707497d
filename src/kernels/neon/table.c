/* The neon dispatch table (armv8-a Advanced SIMD); the slots are listed in table.h. */
#include "table.h"

#define NT_Q_NEON(t) cke_qops_##t##_neon
const cke_ktable cke_ktable_neon = NT_TABLE("neon", NT_Q_NEON);
