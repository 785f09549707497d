/* The two aarch64 dispatch tables, written once: NT_Q(t) names a quantized format's ops of the
 * level being defined (table.c: neon, dot/table.c: neon_dot); everything else is shared. A slot
 * with no NEON variant points at the _ref with the reason next to it. */
#include "../kdecl.h"
#include "ndecl.h"

#define NT_TABLE(NAME, NT_Q)                                                                       \
    {                                                                                              \
        .name = NAME,                                                                              \
        .gemm = cke_gemm_neon,                                                                     \
        .gemm_bf16 = cke_gemm_bf16_generic,                                                        \
        .gemm_bf16_b16 = cke_gemm_bf16_b16_generic, .round_bf16 = cke_round_bf16_ref,              \
        /* embed: row memcpy / add loops already run at memory speed; no SIMD variant */          \
        .embed_fwd = cke_embed_fwd_ref, .embed_bwd = cke_embed_bwd_ref,                            \
        .posemb_fwd = cke_posemb_fwd_ref, .posemb_bwd = cke_posemb_bwd_ref,                        \
        .rmsnorm_fwd = cke_rmsnorm_fwd_neon, .rmsnorm_bwd = cke_rmsnorm_bwd_neon,                  \
        .layernorm_fwd = cke_layernorm_fwd_neon, .layernorm_bwd = cke_layernorm_bwd_neon,          \
        .rope_fwd = cke_rope_fwd_neon, .rope_bwd = cke_rope_bwd_neon,                              \
        .softmax_fwd = cke_softmax_fwd_neon, .softmax_bwd = cke_softmax_bwd_neon,                  \
        .silu_fwd = cke_silu_fwd_neon, .silu_bwd = cke_silu_bwd_neon,                              \
        .gelu_fwd = cke_gelu_fwd_neon, .gelu_bwd = cke_gelu_bwd_neon,                              \
        .swiglu_fwd = cke_swiglu_fwd_neon, .swiglu_bwd = cke_swiglu_bwd_neon,                      \
        .geglu_fwd = cke_geglu_fwd_neon, .geglu_bwd = cke_geglu_bwd_neon,                          \
        .add_fwd = cke_add_fwd_neon, .axpy = cke_axpy_neon, .scale_fwd = cke_scale_fwd_neon,       \
        /* softcap runs once per token on [vocab] logits (Gemma 2): not worth a SIMD tanh */       \
        .softcap_fwd = cke_softcap_fwd_ref, .softcap_bwd = cke_softcap_bwd_ref,                    \
        .attn_fwd = cke_attn_fwd_neon, .attn_bwd = cke_attn_bwd_neon,                              \
        .attn_fwd_f16 = cke_attn_fwd_f16_neon, .attn_fwd_q8_0 = cke_attn_fwd_q8_0_neon,            \
        .f32_to_f16 = cke_f32_to_f16_neon,                                                         \
        .xent_fwd_bwd = cke_xent_fwd_bwd_neon, .adamw = cke_adamw_neon, .sumsq = cke_sumsq_neon,   \
        /* quantized: NEON dots for F16, Q8_0, Q4_0, Q4_K, Q6_K (quant_neon.h); the other GGUF */  \
        /* formats and the activation formats are the _ref's. The repacked layouts (40..) are */   \
        /* AVX-512's: aarch64 compiles keep the GGUF layout, the _ref ops serve a model */         \
        /* compiled elsewhere with them */                                                         \
        .qops = {[1] = &NT_Q(f16), [30] = &cke_qops_bf16_ref, [8] = &NT_Q(q8_0),                   \
                 [9] = &cke_qops_q8_1_ref, [2] = &NT_Q(q4_0), [3] = &cke_qops_q4_1_ref,            \
                 [6] = &cke_qops_q5_0_ref, [7] = &cke_qops_q5_1_ref, [15] = &cke_qops_q8_K_ref,     \
                 [12] = &NT_Q(q4_K), [13] = &cke_qops_q5_K_ref, [14] = &NT_Q(q6_K),                \
                 [40] = &cke_qops_q8_0r_ref, [41] = &cke_qops_q4_0r_ref, [42] = &cke_qops_q4_Kr_ref, \
                 [43] = &cke_qops_q8_0s_ref, [44] = &cke_qops_q8_Ki_ref, [45] = &cke_qops_q6_Kr_ref, \
                 [46] = &cke_qops_q8_K16_ref, [47] = &cke_qops_q5_Kr_ref, [48] = &cke_qops_q4_1r_ref, \
                 [49] = &cke_qops_q5_0r_ref, [50] = &cke_qops_q5_1r_ref},                          \
    }
