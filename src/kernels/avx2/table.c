/* The avx2 dispatch table. A slot with no avx2 variant points at the _ref
 * (only where SIMD does not pay off; say why next to it). NULL = not written yet. */
#include "../kdecl.h"

const cke_ktable cke_ktable_avx2 = {
    .name = "avx2",
    /* ==== gemm ==== */
    .gemm = cke_gemm_avx2,
    .gemm_bf16 = cke_gemm_bf16_avx2,
    .gemm_bf16_b16 = cke_gemm_bf16_b16_avx2,
    .round_bf16 = cke_round_bf16_avx2,
    /* ==== embed ==== */
    /* embed: row memcpy / add loops already run at memory speed; no SIMD variant */
    .embed_fwd = cke_embed_fwd_ref,
    .embed_bwd = cke_embed_bwd_ref,
    .posemb_fwd = cke_posemb_fwd_ref,
    .posemb_bwd = cke_posemb_bwd_ref,
    /* ==== norm ==== */
    .rmsnorm_fwd = cke_rmsnorm_fwd_avx2,
    .rmsnorm_bwd = cke_rmsnorm_bwd_avx2,
    .layernorm_fwd = cke_layernorm_fwd_avx2,
    .layernorm_bwd = cke_layernorm_bwd_avx2,
    /* ==== rope ==== */
    .rope_fwd = cke_rope_fwd_avx2,
    .rope_bwd = cke_rope_bwd_avx2,
    /* ==== act ==== */
    .softmax_fwd = cke_softmax_fwd_avx2,
    .softmax_bwd = cke_softmax_bwd_avx2,
    .silu_fwd = cke_silu_fwd_avx2,
    .silu_bwd = cke_silu_bwd_avx2,
    .gelu_fwd = cke_gelu_fwd_avx2,
    .gelu_bwd = cke_gelu_bwd_avx2,
    .swiglu_fwd = cke_swiglu_fwd_avx2,
    .swiglu_bwd = cke_swiglu_bwd_avx2,
    .geglu_fwd = cke_geglu_fwd_avx2,
    .geglu_bwd = cke_geglu_bwd_avx2,
    .add_fwd = cke_add_fwd_avx2,
    .axpy = cke_axpy_avx2,
    .scale_fwd = cke_scale_fwd_avx2,
    /* softcap runs once per token on [vocab] logits (Gemma 2): not worth a SIMD tanh */
    .softcap_fwd = cke_softcap_fwd_ref,
    .softcap_bwd = cke_softcap_bwd_ref,
    /* ==== attn ==== */
    .attn_fwd = cke_attn_fwd_avx2,
    .attn_bwd = cke_attn_bwd_avx2,
    .attn_fwd_f16 = cke_attn_fwd_f16_avx2,
    .attn_fwd_q8_0 = cke_attn_fwd_q8_0_avx2,
    .f32_to_f16 = cke_f32_to_f16_avx2,
    /* ==== loss / optim ==== */
    .xent_fwd_bwd = cke_xent_fwd_bwd_avx2,
    .adamw = cke_adamw_avx2,
    .sumsq = cke_sumsq_avx2,
    /* ==== quant ==== */
    .qops = CKE_QOPS_TABLE(avx2),
};
