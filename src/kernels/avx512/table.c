/* The avx512 dispatch table. A slot with no avx512 variant points at the _ref
 * (only where SIMD does not pay off; say why next to it). NULL = not written yet. */
#include "../kdecl.h"

const cke_ktable cke_ktable_avx512 = {
    .name = "avx512",
    /* ==== gemm ==== */
    .gemm = cke_gemm_avx512,
    .gemm_bf16 = cke_gemm_bf16_avx512,
    .gemm_bf16_b16 = cke_gemm_bf16_b16_avx512,
    .round_bf16 = cke_round_bf16_avx512,
    /* ==== embed ==== */
    /* embed: row memcpy / add loops already run at memory speed; no SIMD variant */
    .embed_fwd = cke_embed_fwd_ref,
    .embed_bwd = cke_embed_bwd_ref,
    .posemb_fwd = cke_posemb_fwd_ref,
    .posemb_bwd = cke_posemb_bwd_ref,
    /* ==== norm ==== */
    .rmsnorm_fwd = cke_rmsnorm_fwd_avx512,
    .rmsnorm_bwd = cke_rmsnorm_bwd_avx512,
    .layernorm_fwd = cke_layernorm_fwd_avx512,
    .layernorm_bwd = cke_layernorm_bwd_avx512,
    /* ==== rope ==== */
    .rope_fwd = cke_rope_fwd_avx512,
    .rope_bwd = cke_rope_bwd_avx512,
    /* ==== act ==== */
    .softmax_fwd = cke_softmax_fwd_avx512,
    .softmax_bwd = cke_softmax_bwd_avx512,
    .silu_fwd = cke_silu_fwd_avx512,
    .silu_bwd = cke_silu_bwd_avx512,
    .gelu_fwd = cke_gelu_fwd_avx512,
    .gelu_bwd = cke_gelu_bwd_avx512,
    .swiglu_fwd = cke_swiglu_fwd_avx512,
    .swiglu_bwd = cke_swiglu_bwd_avx512,
    .geglu_fwd = cke_geglu_fwd_avx512,
    .geglu_bwd = cke_geglu_bwd_avx512,
    .add_fwd = cke_add_fwd_avx512,
    .axpy = cke_axpy_avx512,
    .scale_fwd = cke_scale_fwd_avx512,
    /* softcap runs once per token on [vocab] logits (Gemma 2): not worth a SIMD tanh */
    .softcap_fwd = cke_softcap_fwd_ref,
    .softcap_bwd = cke_softcap_bwd_ref,
    /* ==== attn ==== */
    .attn_fwd = cke_attn_fwd_avx512,
    .attn_bwd = cke_attn_bwd_avx512,
    .attn_fwd_f16 = cke_attn_fwd_f16_avx512,
    .attn_fwd_q8_0 = cke_attn_fwd_q8_0_avx512,
    .f32_to_f16 = cke_f32_to_f16_avx512,
    /* ==== loss / optim ==== */
    .xent_fwd_bwd = cke_xent_fwd_bwd_avx512,
    .adamw = cke_adamw_avx512,
    .sumsq = cke_sumsq_avx512,
    /* ==== quant ==== */
    .qops = CKE_QOPS_TABLE(avx512),
};
