/* Internal declarations of every kernel variant: cke_<op>_<isa>.
 * Sections per op family; each family's owner edits only its section. */
#ifndef CKE_KDECL_H
#define CKE_KDECL_H
#include "cke/kernels.h"

extern const cke_ktable cke_ktable_ref;
extern const cke_ktable cke_ktable_avx2;
extern const cke_ktable cke_ktable_avx512;

/* ==== gemm ==== */

/* ==== embed ==== */

/* ==== norm ==== */

/* ==== rope ==== */

/* ==== act (softmax, activations, elementwise) ==== */

/* ==== attn ==== */

/* ==== loss / optim ==== */

#endif
