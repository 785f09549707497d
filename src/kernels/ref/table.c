/* The ref dispatch table. A slot with no ref variant points at the _ref
 * (only where SIMD does not pay off; say why next to it). NULL = not written yet. */
#include "../kdecl.h"

const cke_ktable cke_ktable_ref = {
    .name = "ref",
    /* ==== gemm ==== */
    .gemm = cke_gemm_ref,
    .gemm_bf16 = cke_gemm_bf16_ref,
    .gemm_bf16_b16 = cke_gemm_bf16_b16_ref,
    .round_bf16 = cke_round_bf16_ref,
    /* ==== embed ==== */
    .embed_fwd = cke_embed_fwd_ref,
    .embed_bwd = cke_embed_bwd_ref,
    .posemb_fwd = cke_posemb_fwd_ref,
    .posemb_bwd = cke_posemb_bwd_ref,
    /* ==== norm ==== */
    .rmsnorm_fwd = cke_rmsnorm_fwd_ref,
    .rmsnorm_bwd = cke_rmsnorm_bwd_ref,
    .layernorm_fwd = cke_layernorm_fwd_ref,
    .layernorm_bwd = cke_layernorm_bwd_ref,
    /* ==== rope ==== */
    .rope_fwd = cke_rope_fwd_ref,
    .rope_bwd = cke_rope_bwd_ref,
    /* ==== act ==== */
    .softmax_fwd = cke_softmax_fwd_ref,
    .softmax_bwd = cke_softmax_bwd_ref,
    .silu_fwd = cke_silu_fwd_ref,
    .silu_bwd = cke_silu_bwd_ref,
    .gelu_fwd = cke_gelu_fwd_ref,
    .gelu_bwd = cke_gelu_bwd_ref,
    .swiglu_fwd = cke_swiglu_fwd_ref,
    .swiglu_bwd = cke_swiglu_bwd_ref,
    .geglu_fwd = cke_geglu_fwd_ref,
    .geglu_bwd = cke_geglu_bwd_ref,
    .add_fwd = cke_add_fwd_ref,
    .axpy = cke_axpy_ref,
    .scale_fwd = cke_scale_fwd_ref,
    .softcap_fwd = cke_softcap_fwd_ref,
    .softcap_bwd = cke_softcap_bwd_ref,
    /* ==== attn ==== */
    .attn_fwd = cke_attn_fwd_ref,
    .attn_bwd = cke_attn_bwd_ref,
    .attn_fwd_f16 = cke_attn_fwd_f16_ref,
    .attn_fwd_q8_0 = cke_attn_fwd_q8_0_ref,
    .f32_to_f16 = cke_f32_to_f16_ref,
    /* ==== loss / optim ==== */
    .xent_fwd_bwd = cke_xent_fwd_bwd_ref,
    .adamw = cke_adamw_ref,
    .sumsq = cke_sumsq_ref,
    /* ==== quant ==== */
    .qops = CKE_QOPS_TABLE(ref),
};
