/* Workspace sizes of the attention kernels: the max of what the scalar reference and the SIMD
 * plan (attn_plan.h) need, so one size serves every ISA. */
#include "attn_plan.h"
#include "cke/kernels.h"

static size_t ws_size(const cke_attn_shape *s, int nth, int bwd) {
    if (nth < 1) nth = 1;
    attn_plan p = attn_make_plan(s, bwd);
    size_t simd = p.shared + (size_t)nth * p.per_thread;
    size_t ref = bwd ? 0 : (size_t)nth * (size_t)s->Tk * sizeof(float); /* a score row per thread */
    return (simd > ref ? simd : ref) + 64; /* + 64: room to align a caller's unaligned ws */
}

size_t cke_attn_ws_size(const cke_attn_shape *s, int nth) { return ws_size(s, nth, 0); }
size_t cke_attn_bwd_ws_size(const cke_attn_shape *s, int nth) { return ws_size(s, nth, 1); }
