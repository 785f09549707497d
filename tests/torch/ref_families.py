#!/usr/bin/python3
"""PyTorch references of the model families beyond llama (test-only; Debian's torch, no network).

For each family, writes a random-initialized small model in Hugging Face layout (config.json +
model.safetensors, the checkpoint's real tensor names and layouts: GPT-2 Conv1D [in, out] with
fused c_attn, Phi-3 fused qkv_proj / gate_up_proj ...) and the reference logits at every position
of a fixed token sequence, computed in float64 by an independent forward written from the HF
modeling code's definitions (modeling_gpt2 / qwen2 / qwen3 / gemma / gemma2 / mistral / phi3 /
llama with rope_scaling "llama3" / mixtral / qwen3_moe / olmoe / qwen2_moe / glm4_moe / deepseek_v3).

usage: ref_families.py OUT_DIR FAMILY [drop=HF_NAME | perturb=HF_NAME | ablate=CONFIG_KEY | set=KEY=JSON | train | vocab=N]
       ref_families.py OUT_DIR gpt2 --from HF_DIR     (trace of an existing GPT-2 checkpoint)
FAMILY: gpt2 | qwen2 | qwen3 | gemma | gemma2 | mistral | phi3 | llama3 | llama_bias | qwen3_bias | gemma_gelu | qwen2_yarn | phi3_longrope | llama_dynamic | gemma3 | gemma3_swa3 | mixtral | qwen3_moe | qwen3_moe_norm | olmoe | qwen2_moe | glm4_moe | glm4_moe_plain | deepseek_v3 | deepseek_v3_plain | deepseek_v3_bias | deepseek_v3_wide
The optional edit breaks the model on purpose: drop/perturb a tensor, or remove a config key (the
reference still uses the feature), which proves the feature changes the numbers.
Outputs OUT_DIR/{config.json, model.safetensors, ref.bin, ref.trace} in the formats of
ref_llama.py: ref.bin = int32 n_tok, int32 vocab, int32 ids[n_tok], float32 logits[n_tok][vocab];
ref.trace = every intermediate value under its IR name (the value names of
src/templates/<family>.json) for `cke parity`.
"""
import json
import math
import os
import struct
import sys

import torch

from ref_llama import save_safetensors, train_reference, write_outputs  # shared writers


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, d in hdr.items():
            if name == "__metadata__":
                continue
            assert d["dtype"] == "F32", name
            f.seek(base + d["data_offsets"][0])
            b = f.read(d["data_offsets"][1] - d["data_offsets"][0])
            out[name] = torch.frombuffer(bytearray(b), dtype=torch.float32).reshape(d["shape"]).clone()
    return out


# name: model_type, dim, layers, heads, kv_heads, head_dim, ffn, vocab, extras
FAMILIES = {
    "gpt2": dict(dim=32, L=2, H=4, KV=4, hd=8, F=128, V=71),
    "qwen2": dict(dim=40, L=2, H=4, KV=2, hd=10, F=72, V=53, theta=1e6),
    "qwen3": dict(dim=32, L=2, H=4, KV=2, hd=16, F=64, V=59, theta=1e6, tied=True),
    "gemma": dict(dim=32, L=2, H=4, KV=1, hd=16, F=64, V=67, tied=True),
    # 4 layers: even ones slide over 6 positions, odd ones are global; logits are soft-capped low
    # enough (1.5 attention, 3.0 final) that tanh actually bends them
    "gemma2": dict(dim=32, L=4, H=4, KV=2, hd=8, F=64, V=67, tied=True, window=6, attn_cap=1.5,
                   final_cap=3.0, qpas=24),
    "mistral": dict(dim=32, L=2, H=4, KV=2, hd=8, F=64, V=61, window=7),
    "phi3": dict(dim=32, L=2, H=4, KV=2, hd=8, F=64, V=61, window=10, partial=0.5),
    "llama3": dict(dim=64, L=2, H=4, KV=2, hd=16, F=96, V=61, theta=500000.0,
                   scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                original_max_position_embeddings=64)),
    # variants of a family (kind = the family whose structure they share): biases on every
    # projection (Llama's attention_bias + mlp_bias, Qwen3's attention_bias)
    "llama_bias": dict(kind="llama3", dim=32, L=2, H=4, KV=2, hd=8, F=64, V=61, attn_bias=True, mlp_bias=True),
    # long-context RoPE: YaRN (Qwen2.5: factor 4 over an original 32 of 128 positions) and LongRoPE
    # (Phi-3 128k: per-pair factors, the long ones for a sequence past the original 16 positions)
    "qwen2_yarn": dict(kind="qwen2", dim=40, L=2, H=4, KV=2, hd=10, F=72, V=53, theta=10000.0,
                       scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=32)),
    "phi3_longrope": dict(kind="phi3", dim=32, L=2, H=4, KV=2, hd=16, F=64, V=61, orig=16,
                          scaling=dict(rope_type="longrope", long_factor=[1.0, 1.5, 2.5, 4.0, 6.0, 9.0, 13.0, 20.0],
                                       short_factor=[1.0, 1.1, 1.2, 1.4, 1.6, 1.9, 2.2, 2.6])),
    "llama_dynamic": dict(kind="llama3", dim=32, L=2, H=4, KV=2, hd=8, F=64, V=61, scaling=dict(rope_type="dynamic", factor=2.0)),
    # Gemma 3: every 6th layer global (theta 1e6, linear scaling 2), the others slide over 6 positions
    # at the local base 10000; q/k norms (llama.cpp's fixed pattern and bases: exported to GGUF too);
    # gemma3_swa3: a global layer every 3rd, query_pre_attn_scalar 24 for head_dim 16 (HF only)
    "gemma3": dict(dim=32, L=6, H=4, KV=2, hd=16, F=64, V=67, tied=True, window=6, qpas=16, pattern=6, theta=1e6,
                   local_theta=10000.0, scaling=dict(rope_type="linear", factor=2.0)),
    "gemma3_swa3": dict(kind="gemma3", dim=32, L=4, H=4, KV=2, hd=16, F=64, V=67, tied=True, window=6, qpas=24, pattern=3,
                        theta=1e6, local_theta=20000.0, scaling=dict(rope_type="linear", factor=2.0)),
    # Gemma whose config says exact GELU (HF honours hidden_activation / hidden_act)
    "gemma_gelu": dict(kind="gemma", dim=32, L=2, H=4, KV=1, hd=16, F=64, V=67, tied=True, act="gelu"),
    "qwen3_bias": dict(kind="qwen3", dim=32, L=2, H=4, KV=2, hd=16, F=64, V=59, theta=1e6, tied=True, attn_bias=True),
    # Mixtral: 4 experts, 2 per token (23 tokens x 2 choices: every expert serves several rows)
    "mixtral": dict(dim=32, L=2, H=4, KV=2, hd=8, F=48, V=61, theta=1e6, E=4, k=2),
    # Qwen3-MoE: QK-norm attention, 6 experts of moe_intermediate_size 24, 2 per token, the router's
    # probabilities as they are (norm_topk_prob false, HF's default) or renormalized (_norm)
    "qwen3_moe": dict(dim=32, L=2, H=4, KV=2, hd=16, F=24, V=59, theta=1e6, E=6, k=2, norm=False),
    "qwen3_moe_norm": dict(kind="qwen3_moe", dim=32, L=2, H=4, KV=2, hd=16, F=24, V=59, theta=1e6, E=6, k=2, norm=True),
    # OLMoE: RMSNorm over the whole q and k width, 8 experts, 3 per token, not renormalized
    "olmoe": dict(dim=32, L=2, H=4, KV=2, hd=8, F=24, V=67, E=8, k=3, norm=False),
    # Qwen2-MoE: Qwen2's biased attention, 6 experts of 16, 2 per token, and a shared expert of 40
    # gated by sigmoid(x . shared_expert_gate)
    "qwen2_moe": dict(dim=32, L=2, H=4, KV=2, hd=8, F=16, Fs=40, V=53, theta=1e6, E=6, k=2, norm=False),
    # GLM-4.5 (DeepSeek-V3-style MoE): layer 0 a dense MLP of 48, layers 1-2 8 experts of 16 (2 per token,
    # chosen by sigmoid score + a choice bias among the 2 best of 4 groups, renormalized, x 2.5) and a
    # shared expert of 16; q/k/v biases, per-head QK-norm, half the head rotated
    "glm4_moe": dict(dim=32, L=3, H=4, KV=2, hd=16, F=48, Fe=16, V=73, theta=1e6, E=8, k=2, norm=True, partial=0.5,
                     qk=True, groups=(4, 2), scale=2.5, dense=1, shared=1),
    # DeepSeek-V3: multi-head latent attention (q through a rank-16 bottleneck, a kv latent of 12 and one
    # shared rotated key head of 4; keys 8 + 4 wide, values 6) with GLM-4.5's experts after one dense layer
    "deepseek_v3": dict(dim=32, L=3, H=4, KV=4, hd=12, F=48, Fe=16, V=59, theta=1e4, E=8, k=2, norm=True, groups=(4, 2),
                        scale=2.5, dense=1, shared=1, ql=16, kvl=12, nope=8, rope=4, vd=6, interleave=True),
    # ... with q projected directly, the rotated halves layout, biased projections, YaRN (mscale_all_dim scales
    # the softmax too) and no groups
    "deepseek_v3_plain": dict(kind="deepseek_v3", dim=32, L=2, H=2, KV=2, hd=14, F=40, Fe=12, V=61, theta=1e4, E=6, k=2, norm=False,
                              groups=(1, 1), scale=1.5, dense=1, shared=1, ql=None, kvl=10, nope=8, rope=6, vd=8, interleave=False,
                              scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=32,
                                                      mscale=0.8, mscale_all_dim=0.8, beta_fast=32.0, beta_slow=1.0)),
    # ... with attention_bias (q_a, kv_a and o biased)
    "deepseek_v3_bias": dict(kind="deepseek_v3", dim=32, L=2, H=2, KV=2, hd=12, F=40, Fe=12, V=67, theta=1e4, E=4, k=2, norm=True,
                             groups=(1, 1), scale=1.0, dense=1, shared=1, ql=8, kvl=8, nope=8, rope=4, vd=8, interleave=True, bias=True),
    # ... wide enough for block formats in every matrix (heads of 32 + 8, latent 32): cke quantize's Q8_0
    # gives the GGUF's attn_k_b / attn_v_b q8_0 blocks, which the loader decodes to join kv_b (t_moe.sh)
    "deepseek_v3_wide": dict(kind="deepseek_v3", dim=64, L=2, H=2, KV=2, hd=40, F=64, Fe=32, V=67, theta=1e4, E=4, k=2, norm=True,
                             groups=(1, 1), scale=1.0, dense=1, shared=1, ql=32, kvl=32, nope=32, rope=8, vd=32, interleave=True),
    # ... without QK-norm, groups or renormalization, two dense layers, two shared experts
    "glm4_moe_plain": dict(kind="glm4_moe", dim=32, L=3, H=4, KV=2, hd=8, F=40, Fe=12, V=53, theta=1e4, E=6, k=3, norm=False,
                           partial=0.5, qk=False, groups=(1, 1), scale=1.0, dense=2, shared=2),
}


# mixture-of-experts families: the MoE block's name and its experts' gate, up, down tensors
MOE = {"mixtral": ("block_sparse_moe", ("w1.weight", "w3.weight", "w2.weight")),
       "qwen3_moe": ("mlp", ("gate_proj.weight", "up_proj.weight", "down_proj.weight")),
       "olmoe": ("mlp", ("gate_proj.weight", "up_proj.weight", "down_proj.weight")),
       "qwen2_moe": ("mlp", ("gate_proj.weight", "up_proj.weight", "down_proj.weight"))}


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def yarn_freqs(rot, theta, sc, max_pos):
    """HF _compute_yarn_parameters: float32 tensors, Python-float scalars; -> (inv_freq, attention_factor)"""
    factor, orig = sc["factor"], sc.get("original_max_position_embeddings", max_pos)
    mscale = lambda s, m=1.0: 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0  # noqa: E731
    af = sc.get("attention_factor", mscale(factor))
    if sc.get("mscale") and sc.get("mscale_all_dim"):  # DeepSeek's form
        af = mscale(factor, sc["mscale"]) / mscale(factor, sc["mscale_all_dim"])
    bf, bs = sc.get("beta_fast", 32), sc.get("beta_slow", 1)
    corr = lambda r: (rot * math.log(orig / (r * 2 * math.pi))) / (2 * math.log(theta))  # noqa: E731
    lo, hi = max(math.floor(corr(bf)), 0), min(math.ceil(corr(bs)), rot - 1)
    if lo == hi:
        hi += 0.001
    pos = theta ** (torch.arange(0, rot, 2).to(torch.float32) / rot)
    ext, itp = 1.0 / pos, 1.0 / (factor * pos)
    ramp = torch.clamp((torch.arange(rot // 2, dtype=torch.float32) - lo) / (hi - lo), 0, 1)
    ef = 1 - ramp
    return itp * (1 - ef) + ext * ef, af


def longrope_freqs(rot, theta, sc, orig, max_pos, seq_len):
    """HF _compute_longrope_parameters with the sequence's length (long factors past orig)"""
    factor = sc.get("factor", max_pos / orig)
    af = sc.get("attention_factor", 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(orig)))
    ext = torch.tensor(sc["long_factor"] if seq_len > orig else sc["short_factor"], dtype=torch.float32)
    return 1.0 / (ext * theta ** (torch.arange(0, rot, 2, dtype=torch.int64).float() / rot)), af


def inv_freqs(rot, theta, scaling):
    """HF _compute_default_rope_parameters (+ _compute_llama3_parameters), float32 as HF."""
    inv = 1.0 / (theta ** (torch.arange(0, rot, 2, dtype=torch.int64).to(torch.float32) / rot))
    if scaling and scaling.get("rope_type") == "linear":  # _compute_linear_scaling_rope_parameters
        return inv / scaling["factor"]
    if scaling:
        factor, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wavelen = 2 * math.pi / inv
        il = torch.where(wavelen > low_wl, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * il / factor + smooth * il
        medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
        inv = torch.where(medium, smoothed, il)
    return inv


def make_weights(fam, c, g):
    fam = c.get("kind", fam)

    def rnd(*shape, s=0.2):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * s

    dim, L, H, KV, hd, F, V = c["dim"], c["L"], c["H"], c["KV"], c["hd"], c["F"], c["V"]
    W = {}
    if fam == "gpt2":
        P = 64
        t = "transformer."
        W[t + "wte.weight"] = rnd(V, dim, s=1.0)
        W[t + "wpe.weight"] = rnd(P, dim, s=0.5)
        for i in range(L):
            p = f"{t}h.{i}."
            W[p + "ln_1.weight"], W[p + "ln_1.bias"] = 1 + rnd(dim, s=0.1), rnd(dim, s=0.1)
            W[p + "attn.c_attn.weight"], W[p + "attn.c_attn.bias"] = rnd(dim, 3 * dim), rnd(3 * dim, s=0.1)
            W[p + "attn.c_proj.weight"], W[p + "attn.c_proj.bias"] = rnd(dim, dim), rnd(dim, s=0.1)
            W[p + "ln_2.weight"], W[p + "ln_2.bias"] = 1 + rnd(dim, s=0.1), rnd(dim, s=0.1)
            W[p + "mlp.c_fc.weight"], W[p + "mlp.c_fc.bias"] = rnd(dim, F), rnd(F, s=0.1)
            W[p + "mlp.c_proj.weight"], W[p + "mlp.c_proj.bias"] = rnd(F, dim), rnd(dim, s=0.1)
        W[t + "ln_f.weight"], W[t + "ln_f.bias"] = 1 + rnd(dim, s=0.1), rnd(dim, s=0.1)
        return W
    if fam in ("glm4_moe", "deepseek_v3"):
        return glm4_weights(c, rnd)
    gem = fam.startswith("gemma")
    nw = (lambda n: rnd(n, s=0.1)) if gem else (lambda n: 1 + rnd(n, s=0.1))  # Gemma stores w of (1 + w)
    W["model.embed_tokens.weight"] = rnd(V, dim, s=0.3 if gem else 1.0)
    W["model.norm.weight"] = nw(dim)
    for i in range(L):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = nw(dim)
        W[p + "post_attention_layernorm.weight"] = nw(dim)
        if fam in ("gemma2", "gemma3"):
            W[p + "pre_feedforward_layernorm.weight"] = nw(dim)
            W[p + "post_feedforward_layernorm.weight"] = nw(dim)
        if fam == "phi3":
            W[p + "self_attn.qkv_proj.weight"] = rnd((H + 2 * KV) * hd, dim)
            W[p + "mlp.gate_up_proj.weight"] = rnd(2 * F, dim)
        else:
            W[p + "self_attn.q_proj.weight"] = rnd(H * hd, dim)
            W[p + "self_attn.k_proj.weight"] = rnd(KV * hd, dim)
            W[p + "self_attn.v_proj.weight"] = rnd(KV * hd, dim)
        if fam in MOE:  # the router, then each expert's gate, up, down (Mixtral: w1, w3, w2)
            blk, names = MOE[fam]
            W[f"{p}{blk}.gate.weight"] = rnd(c["E"], dim, s=0.3)
            for e in range(c["E"]):
                q = f"{p}{blk}.experts.{e}."
                W[q + names[0]], W[q + names[1]], W[q + names[2]] = rnd(F, dim), rnd(F, dim), rnd(dim, F)
            if "Fs" in c:  # Qwen2-MoE's shared expert and its gate
                q, Fs = f"{p}mlp.shared_expert.", c["Fs"]
                W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"] = rnd(Fs, dim), rnd(Fs, dim), rnd(dim, Fs)
                W[p + "mlp.shared_expert_gate.weight"] = rnd(1, dim, s=0.5)
        elif fam != "phi3":
            W[p + "mlp.gate_proj.weight"] = rnd(F, dim)
            W[p + "mlp.up_proj.weight"] = rnd(F, dim)
        W[p + "self_attn.o_proj.weight"] = rnd(dim, H * hd)
        if fam not in MOE:
            W[p + "mlp.down_proj.weight"] = rnd(dim, F)
        if fam in ("qwen2", "qwen2_moe") or c.get("attn_bias"):
            W[p + "self_attn.q_proj.bias"] = rnd(H * hd, s=0.1)
            W[p + "self_attn.k_proj.bias"] = rnd(KV * hd, s=0.1)
            W[p + "self_attn.v_proj.bias"] = rnd(KV * hd, s=0.1)
        if c.get("attn_bias"):
            W[p + "self_attn.o_proj.bias"] = rnd(dim, s=0.1)
        if c.get("mlp_bias"):
            W[p + "mlp.gate_proj.bias"] = rnd(F, s=0.1)
            W[p + "mlp.up_proj.bias"] = rnd(F, s=0.1)
            W[p + "mlp.down_proj.bias"] = rnd(dim, s=0.1)
        if fam == "olmoe":  # OlmoeAttention: RMSNorm(hidden_size) of q, of the kv width of k
            W[p + "self_attn.q_norm.weight"], W[p + "self_attn.k_norm.weight"] = 1 + rnd(H * hd, s=0.1), 1 + rnd(KV * hd, s=0.1)
        if fam in ("qwen3", "gemma3", "qwen3_moe"):
            W[p + "self_attn.q_norm.weight"] = nw(hd) if gem else 1 + rnd(hd, s=0.1)
            W[p + "self_attn.k_norm.weight"] = nw(hd) if gem else 1 + rnd(hd, s=0.1)
    if not c.get("tied"):
        W["lm_head.weight"] = rnd(V, dim)
    return W


def glm4_weights(c, rnd):
    """Glm4MoeForCausalLM's checkpoint: dense MLPs in the first c["dense"] layers, then the router (with its
    e_score_correction_bias), per-expert matrices and the shared experts' MLP."""
    dim, L, H, KV, hd, F, Fe, V, E = c["dim"], c["L"], c["H"], c["KV"], c["hd"], c["F"], c["Fe"], c["V"], c["E"]
    W = {"model.embed_tokens.weight": rnd(V, dim, s=1.0), "model.norm.weight": 1 + rnd(dim, s=0.1)}
    for i in range(L):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = 1 + rnd(dim, s=0.1)
        W[p + "post_attention_layernorm.weight"] = 1 + rnd(dim, s=0.1)
        if "kvl" in c:  # DeepseekV3Attention: multi-head latent attention
            a, kvl, rp, nope, vd = p + "self_attn.", c["kvl"], c["rope"], c["nope"], c["vd"]
            if c["ql"]:
                W[a + "q_a_proj.weight"], W[a + "q_a_layernorm.weight"] = rnd(c["ql"], dim), 1 + rnd(c["ql"], s=0.1)
                W[a + "q_b_proj.weight"] = rnd(H * hd, c["ql"], s=0.3)
            else:
                W[a + "q_proj.weight"] = rnd(H * hd, dim)
            W[a + "kv_a_proj_with_mqa.weight"], W[a + "kv_a_layernorm.weight"] = rnd(kvl + rp, dim), 1 + rnd(kvl, s=0.1)
            W[a + "kv_b_proj.weight"], W[a + "o_proj.weight"] = rnd(H * (nope + vd), kvl, s=0.3), rnd(dim, H * vd)
            if c.get("bias"):  # attention_bias: q_a (when it exists), kv_a and o
                if c["ql"]:
                    W[a + "q_a_proj.bias"] = rnd(c["ql"], s=0.1)
                W[a + "kv_a_proj_with_mqa.bias"], W[a + "o_proj.bias"] = rnd(kvl + rp, s=0.1), rnd(dim, s=0.1)
        else:
            W[p + "self_attn.q_proj.weight"], W[p + "self_attn.q_proj.bias"] = rnd(H * hd, dim), rnd(H * hd, s=0.1)
            W[p + "self_attn.k_proj.weight"], W[p + "self_attn.k_proj.bias"] = rnd(KV * hd, dim), rnd(KV * hd, s=0.1)
            W[p + "self_attn.v_proj.weight"], W[p + "self_attn.v_proj.bias"] = rnd(KV * hd, dim), rnd(KV * hd, s=0.1)
            W[p + "self_attn.o_proj.weight"] = rnd(dim, H * hd)
        if c.get("qk"):
            W[p + "self_attn.q_norm.weight"], W[p + "self_attn.k_norm.weight"] = 1 + rnd(hd, s=0.1), 1 + rnd(hd, s=0.1)
        if i < c["dense"]:
            W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"], W[p + "mlp.down_proj.weight"] = rnd(F, dim), rnd(F, dim), rnd(dim, F)
            continue
        W[p + "mlp.gate.weight"] = rnd(E, dim, s=0.3)
        W[p + "mlp.gate.e_score_correction_bias"] = rnd(E, s=0.1)
        for e in range(E):
            q = f"{p}mlp.experts.{e}."
            W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"] = rnd(Fe, dim), rnd(Fe, dim), rnd(dim, Fe)
        q, Fs = f"{p}mlp.shared_experts.", Fe * c["shared"]
        W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"] = rnd(Fs, dim), rnd(Fs, dim), rnd(dim, Fs)
    W["lm_head.weight"] = rnd(V, dim)
    return W


def glm4_route(rl, bias, c):
    """Glm4MoeTopkRouter (= DeepseekV3TopkRouter): sigmoid scores; the choice adds the bias and keeps the
    topk_group groups with the largest sum of their two best; weights are the unbiased scores of the chosen,
    renormalized (+1e-20) when norm_topk_prob, times routed_scaling_factor."""
    E, k, (G, TG) = c["E"], c["k"], c["groups"]
    scores = rl.sigmoid()
    choice = scores + bias
    gs = choice.view(-1, G, E // G).topk(min(2, E // G), dim=-1)[0].sum(dim=-1)
    gidx = torch.topk(gs, k=TG, dim=-1)[1]
    gmask = torch.zeros_like(gs).scatter_(1, gidx, 1)
    smask = gmask.unsqueeze(-1).expand(-1, G, E // G).reshape(-1, E)
    choice = choice.masked_fill(~smask.bool(), float("-inf"))
    sel = torch.topk(choice, k=k, dim=-1)[1]
    w = scores.gather(1, sel)
    if c["norm"]:
        w = w / (w.sum(dim=-1, keepdim=True) + 1e-20)
    return w * c["scale"], sel


def config(fam, c):
    fam = c.get("kind", fam)
    dim, L, H, KV, hd, F, V = c["dim"], c["L"], c["H"], c["KV"], c["hd"], c["F"], c["V"]
    if fam == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": dim, "n_layer": L, "n_head": H,
                "n_inner": None, "n_positions": 64, "n_ctx": 64, "vocab_size": V, "layer_norm_epsilon": 1e-5,
                "activation_function": "gelu_new", "scale_attn_weights": True, "torch_dtype": "float32"}
    arch = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "gemma": "GemmaForCausalLM",
            "gemma3": "Gemma3ForCausalLM",
            "gemma2": "Gemma2ForCausalLM", "mistral": "MistralForCausalLM", "phi3": "Phi3ForCausalLM",
            "llama3": "LlamaForCausalLM", "mixtral": "MixtralForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
            "olmoe": "OlmoeForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM", "glm4_moe": "Glm4MoeForCausalLM",
            "deepseek_v3": "DeepseekV3ForCausalLM"}[fam]
    mt = {"llama3": "llama", "gemma3": "gemma3_text"}.get(fam, fam)
    cfg = {"architectures": [arch], "model_type": mt, "hidden_size": dim,
           "intermediate_size": F, "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": hd,
           "num_hidden_layers": L, "rms_norm_eps": 1e-6, "rope_theta": c.get("theta", 10000.0), "vocab_size": V,
           "max_position_embeddings": 128, "tie_word_embeddings": bool(c.get("tied")), "hidden_act": "silu",
           "torch_dtype": "float32"}
    if fam.startswith("gemma"):
        cfg["hidden_act"] = cfg["hidden_activation"] = c.get("act", "gelu_pytorch_tanh")
    if fam in ("qwen2", "qwen3", "qwen3_moe", "qwen2_moe"):  # as in real Qwen configs: a window that is switched off
        cfg["sliding_window"], cfg["use_sliding_window"] = 4096, False
    if "window" in c:
        cfg["sliding_window"] = c["window"]
    if fam == "gemma3":
        cfg["query_pre_attn_scalar"] = c["qpas"]
        cfg["rope_local_base_freq"] = c["local_theta"]
        cfg["sliding_window_pattern"] = c["pattern"]
        cfg["layer_types"] = ["full_attention" if (i + 1) % c["pattern"] == 0 else "sliding_attention" for i in range(L)]
        cfg["attn_logit_softcapping"] = cfg["final_logit_softcapping"] = None
    if fam == "gemma2":
        cfg["attn_logit_softcapping"] = c["attn_cap"]
        cfg["final_logit_softcapping"] = c["final_cap"]
        cfg["query_pre_attn_scalar"] = c["qpas"]
    if "partial" in c:
        cfg["partial_rotary_factor"] = c["partial"]
    if "scaling" in c:
        cfg["rope_scaling"] = c["scaling"]
    if "orig" in c:
        cfg["original_max_position_embeddings"] = c["orig"]
    if "attn_bias" in c:
        cfg["attention_bias"] = c["attn_bias"]
    if "mlp_bias" in c:
        cfg["mlp_bias"] = c["mlp_bias"]
    if fam == "mixtral":
        cfg.update(num_local_experts=c["E"], num_experts_per_tok=c["k"], router_aux_loss_coef=0.02,
                   output_router_logits=False, router_jitter_noise=0.0, sliding_window=None)
    if fam == "olmoe":  # experts of intermediate_size
        cfg.update(num_experts=c["E"], num_experts_per_tok=c["k"], norm_topk_prob=c["norm"], clip_qkv=None,
                   router_aux_loss_coef=0.01, output_router_logits=False, attention_bias=False)
    if fam == "qwen2_moe":
        cfg.update(num_experts=c["E"], num_experts_per_tok=c["k"], moe_intermediate_size=F, intermediate_size=4 * F,
                   shared_expert_intermediate_size=c["Fs"], norm_topk_prob=c["norm"], decoder_sparse_step=1,
                   mlp_only_layers=[], router_aux_loss_coef=0.001, output_router_logits=False)
    if fam == "glm4_moe":  # as transformers 5 writes it: theta and the partial rotary factor in rope_parameters
        del cfg["rope_theta"]
        cfg.update(n_routed_experts=c["E"], num_experts_per_tok=c["k"], moe_intermediate_size=c["Fe"], n_shared_experts=c["shared"],
                   n_group=c["groups"][0], topk_group=c["groups"][1], routed_scaling_factor=c["scale"], norm_topk_prob=c["norm"],
                   first_k_dense_replace=c["dense"], use_qk_norm=c["qk"], attention_bias=True, num_nextn_predict_layers=0,
                   rope_parameters={"rope_theta": c["theta"], "partial_rotary_factor": c["partial"], "rope_type": "default"})
    if fam == "deepseek_v3":  # DeepseekV3Config as its checkpoints have it (rope_theta, rope_scaling at the top)
        cfg.update(n_routed_experts=c["E"], num_experts_per_tok=c["k"], moe_intermediate_size=c["Fe"], n_shared_experts=c["shared"],
                   n_group=c["groups"][0], topk_group=c["groups"][1], routed_scaling_factor=c["scale"], norm_topk_prob=c["norm"],
                   first_k_dense_replace=c["dense"], q_lora_rank=c["ql"], kv_lora_rank=c["kvl"], qk_rope_head_dim=c["rope"],
                   qk_nope_head_dim=c["nope"], v_head_dim=c["vd"], rope_interleave=c["interleave"], head_dim=c["rope"],
                   attention_bias=bool(c.get("bias")), num_nextn_predict_layers=0, topk_method="noaux_tc", scoring_func="sigmoid")
    if fam == "qwen3_moe":  # intermediate_size: the dense MLP no layer here has
        cfg.update(num_experts=c["E"], num_experts_per_tok=c["k"], moe_intermediate_size=F, intermediate_size=4 * F,
                   norm_topk_prob=c["norm"], decoder_sparse_step=1, mlp_only_layers=[], router_aux_loss_coef=0.001,
                   output_router_logits=False, attention_bias=False)
    return cfg


def forward(fam, c, W, ids, tr, router=None):
    """float64 forward after the HF modeling code; tr(name, layer, value) records the IR values;
    router(logits) receives each MoE layer's router logits (for the load-balancing loss)."""
    fam = c.get("kind", fam)
    dim, L, H, KV, hd, V = c["dim"], c["L"], c["H"], c["KV"], c["hd"], c["V"]
    D = {k: v.to(torch.float64) for k, v in W.items()}
    T = len(ids)
    eps = 1e-5 if fam == "gpt2" else 1e-6
    gem = fam.startswith("gemma")

    def rms(x, w):
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return y * (1.0 + w) if gem else y * w

    def ln(x, w, b):
        mu = x.mean(-1, keepdim=True)
        var = (x - mu).pow(2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * w + b

    def attend(q, k, v, scale, window, cap):
        """q [T,H*hd], k/v [T,KV*hd] -> [T,H*hd]: causal, GQA, optional window and soft-cap"""
        q = q.view(T, H, hd).transpose(0, 1)
        k = k.view(T, KV, hd).transpose(0, 1).repeat_interleave(H // KV, dim=0)
        v = v.view(T, KV, hd).transpose(0, 1).repeat_interleave(H // KV, dim=0)
        s = q @ k.transpose(1, 2) * scale
        if cap:
            s = cap * torch.tanh(s / cap)
        i = torch.arange(T)[:, None]
        j = torch.arange(T)[None, :]
        allowed = j <= i
        if window:
            allowed = allowed & (j > i - window)  # HF sliding_window_overlay: kv_idx > q_idx - window
        s = s.masked_fill(~allowed, float("-inf"))
        return (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, H * hd)

    if fam == "gpt2":
        t = "transformer."
        x = D[t + "wte.weight"][ids]
        tr("emb", -1, x)
        x = x + D[t + "wpe.weight"][:T]
        tr("x", -1, x)
        for i in range(L):
            p = f"{t}h.{i}."
            n = ln(x, D[p + "ln_1.weight"], D[p + "ln_1.bias"])
            qkv = n @ D[p + "attn.c_attn.weight"] + D[p + "attn.c_attn.bias"]  # Conv1D: x W + b
            q, k, v = qkv.split(dim, dim=-1)
            tr("attn_in", i, n), tr("q", i, q), tr("k", i, k), tr("v", i, v)
            a = attend(q, k, v, 1.0 / math.sqrt(hd), 0, 0)
            ao = a @ D[p + "attn.c_proj.weight"] + D[p + "attn.c_proj.bias"]
            tr("attn", i, a), tr("attn_out", i, ao)
            x = x + ao
            tr("h", i, x)
            n = ln(x, D[p + "ln_2.weight"], D[p + "ln_2.bias"])
            up = n @ D[p + "mlp.c_fc.weight"] + D[p + "mlp.c_fc.bias"]
            act = gelu_tanh(up)
            fo = act @ D[p + "mlp.c_proj.weight"] + D[p + "mlp.c_proj.bias"]
            tr("ffn_in", i, n), tr("up", i, up), tr("act", i, act), tr("ffn_out", i, fo)
            x = x + fo
            tr("x", i, x)
        x = ln(x, D[t + "ln_f.weight"], D[t + "ln_f.bias"])
        logits = x @ D[t + "wte.weight"].T
        tr("out_norm", -1, x), tr("logits", -1, logits)
        return logits

    rot = c["rope"] if "kvl" in c else int(hd * c.get("partial", 1.0))
    if "kvl" in c:  # MLA: hd^-0.5, times mscale(factor, mscale_all_dim)^2 under YaRN (HF yarn_apply_mscale)
        ys, m = c.get("scaling") or {}, 1.0
        if ys.get("mscale_all_dim"):
            m = 0.1 * ys["mscale_all_dim"] * math.log(ys["factor"]) + 1.0 if ys["factor"] > 1 else 1.0
        c = dict(c, attn_scale=hd ** -0.5 * m * m)
    sc, af = c.get("scaling"), 1.0
    if sc and sc.get("rope_type") == "yarn":
        inv, af = yarn_freqs(rot, c.get("theta", 10000.0), sc, 128)
    elif sc and sc.get("rope_type") == "dynamic":  # HF: the default base while seq_len <= max_position_embeddings
        assert T <= 128
        inv = inv_freqs(rot, c.get("theta", 10000.0), None)
    elif sc and sc.get("rope_type") == "longrope":
        inv, af = longrope_freqs(rot, c.get("theta", 10000.0), sc, c["orig"], 128, T)
    else:
        inv = inv_freqs(rot, c.get("theta", 10000.0), sc)
    ang = (torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]).to(torch.float64)
    emb = torch.cat((ang, ang), dim=-1)
    af = torch.tensor(af, dtype=torch.float32).item()  # HF: cos * attention_scaling in float32
    cos_sin_global = (emb.cos() * af, emb.sin() * af)

    if fam == "gemma3":  # local layers: their own base, unscaled
        ang_l = (torch.arange(T, dtype=torch.float32)[:, None] * inv_freqs(rot, c["local_theta"], None)[None, :]).to(torch.float64)
        emb_l = torch.cat((ang_l, ang_l), dim=-1)
        cos_sin_local = (emb_l.cos(), emb_l.sin())

    def rope(x, nh, local=False):
        cos, sin = cos_sin_local if local else cos_sin_global
        x = x.view(T, nh, hd).transpose(0, 1)
        xr, xp = x[..., :rot], x[..., rot:]  # partial rotary: rotate a prefix, pass the rest
        xr = xr * cos + rotate_half(xr) * sin
        return torch.cat((xr, xp), dim=-1).transpose(0, 1).reshape(T, nh * hd)

    x = D["model.embed_tokens.weight"][ids]
    if gem:
        tr("emb", -1, x)
        x = x * torch.tensor(dim ** 0.5, dtype=torch.float32).item()  # HF: normalizer in the model dtype
    tr("x", -1, x)
    scale = 1.0 / math.sqrt(c["qpas"] if "qpas" in c else hd)

    def glm4_ffn(p, i, x, n):
        """Glm4MoeMLP (first c["dense"] layers) or Glm4MoeMoE (= DeepseekV3MoE): routed experts + shared MLP"""
        mlp = lambda q, v: (torch.nn.functional.silu(v @ D[q + "gate_proj.weight"].T) * (v @ D[q + "up_proj.weight"].T)) @ D[q + "down_proj.weight"].T  # noqa: E731
        if i < c["dense"]:
            fo = mlp(p + "mlp.", n)
            tr("ffn_in", i, n), tr("ffn_out", i, fo)
        else:
            w, sel = glm4_route(n @ D[p + "mlp.gate.weight"].T, D[p + "mlp.gate.e_score_correction_bias"], c)
            mo = torch.zeros_like(n)
            for t in range(T):
                for j in range(c["k"]):
                    mo[t] += w[t, j] * mlp(f"{p}mlp.experts.{int(sel[t, j])}.", n[t])
            sh = mlp(p + "mlp.shared_experts.", n)
            fo = mo + sh
            tr("ffn_in", i, n), tr("moe_out", i, mo), tr("sh_out", i, sh), tr("ffn_out", i, fo)
        x = x + fo
        tr("x", i, x)
        return x

    def mla(p, i, n):
        """DeepseekV3Attention: q (through q_a/q_b or q_proj) split into unrotated and rotated parts per head; the
        kv latent and the one shared rotated key head from kv_a; keys and values per head from kv_b(norm(latent)).
        rope_interleave: HF rotates adjacent pairs and lays the result out as halves, in q and k alike (the
        scores do not change), so the rotated parts are not traced."""
        a, nope, rp, vd, kvl = p + "self_attn.", c["nope"], c["rope"], c["vd"], c["kvl"]
        lin = lambda v, nm: v @ D[a + nm + ".weight"].T + (D[a + nm + ".bias"] if a + nm + ".bias" in D else 0)  # noqa: E731
        r6 = lambda v, w: v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + 1e-6) * w  # DeepseekV3RMSNorm's default eps  # noqa: E731
        q = lin(r6(lin(n, "q_a_proj"), D[a + "q_a_layernorm.weight"]), "q_b_proj") if c["ql"] else lin(n, "q_proj")
        ckv = lin(n, "kv_a_proj_with_mqa")
        lat = r6(ckv[:, :kvl], D[a + "kv_a_layernorm.weight"])
        kv = lin(lat, "kv_b_proj")
        tr("q", i, q), tr("kv_down", i, ckv), tr("kv_latent_n", i, lat), tr("kv", i, kv)
        qh = q.view(T, H, hd)
        kvh = kv.view(T, H, nope + vd)
        cos, sin = cos_sin_global  # [T, rot] (cat(freqs, freqs))
        cos, sin = cos[:, None, :], sin[:, None, :]

        def rot(v):  # v [T, h, rp]
            if c["interleave"]:  # apply_rotary_pos_emb_interleave
                v1, v2, ch, sh = v[..., 0::2], v[..., 1::2], cos[..., : rp // 2], sin[..., : rp // 2]
                return torch.cat([v1 * ch - v2 * sh, v2 * ch + v1 * sh], dim=-1)
            return v * cos + rotate_half(v) * sin
        qf = torch.cat([qh[..., :nope], rot(qh[..., nope:])], dim=-1)
        kf = torch.cat([kvh[..., :nope], rot(ckv[:, None, kvl:]).expand(T, H, rp)], dim=-1)
        sc = torch.einsum("thd,shd->hts", qf, kf) * c["attn_scale"]
        sc = sc.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        att = torch.einsum("hts,shd->thd", torch.softmax(sc, dim=-1), kvh[..., nope:]).reshape(T, H * vd)
        tr("q_nope", i, qh[..., :nope].reshape(T, H * nope)), tr("k_nope", i, kvh[..., :nope].reshape(T, H * nope))
        tr("attn", i, att)
        return lin(att, "o_proj")

    for i in range(L):
        p = f"model.layers.{i}."
        n = rms(x, D[p + "input_layernorm.weight"])
        tr("attn_in", i, n)
        if fam == "deepseek_v3":  # DeepseekV3Attention (eager): multi-head latent attention
            ao = mla(p, i, n)
            tr("attn_out", i, ao)
            x = x + ao
            tr("h", i, x)
            x = glm4_ffn(p, i, x, rms(x, D[p + "post_attention_layernorm.weight"]))
            continue
        if fam == "phi3":
            q, k, v = (n @ D[p + "self_attn.qkv_proj.weight"].T).split([H * hd, KV * hd, KV * hd], dim=-1)
        else:
            q, k, v = (n @ D[p + f"self_attn.{m}_proj.weight"].T for m in "qkv")
        if fam in ("qwen2", "qwen2_moe", "glm4_moe") or c.get("attn_bias"):
            q, k, v = (t_ + D[p + f"self_attn.{m}_proj.bias"] for t_, m in zip((q, k, v), "qkv"))
        tr("q", i, q), tr("k", i, k), tr("v", i, v)
        local = fam == "gemma3" and (i + 1) % c["pattern"] != 0
        if fam == "olmoe":  # RMSNorm over the whole projection, before RoPE
            q, k = rms(q, D[p + "self_attn.q_norm.weight"]), rms(k, D[p + "self_attn.k_norm.weight"])
            tr("q_norm", i, q), tr("k_norm", i, k)
        if fam in ("qwen3", "gemma3", "qwen3_moe") or c.get("qk"):  # RMSNorm over each head's head_dim, before RoPE
            q = rms(q.view(T, H, hd), D[p + "self_attn.q_norm.weight"]).reshape(T, H * hd)
            k = rms(k.view(T, KV, hd), D[p + "self_attn.k_norm.weight"]).reshape(T, KV * hd)
            tr("q_norm", i, q), tr("k_norm", i, k)
        q, k = rope(q, H, local), rope(k, KV, local)
        tr("q_rope", i, q), tr("k_rope", i, k)
        window = c.get("window", 0)
        if fam == "gemma2" and i % 2 == 1:
            window = 0  # odd layers attend globally
        if fam == "gemma3" and not local:
            window = 0
        a = attend(q, k, v, scale, window, c.get("attn_cap", 0))
        ao = a @ D[p + "self_attn.o_proj.weight"].T
        if c.get("attn_bias"):
            ao = ao + D[p + "self_attn.o_proj.bias"]
        tr("attn", i, a), tr("attn_out", i, ao)
        if fam in ("gemma2", "gemma3"):
            ao = rms(ao, D[p + "post_attention_layernorm.weight"])
            tr("attn_post", i, ao)
        x = x + ao
        tr("h", i, x)
        n = rms(x, D[p + ("pre_feedforward_layernorm.weight" if fam in ("gemma2", "gemma3") else "post_attention_layernorm.weight")])
        if fam == "glm4_moe":
            x = glm4_ffn(p, i, x, n)
            continue
        if fam in MOE:  # modeling_mixtral / qwen3_moe: softmax over all experts, top-k, renormalized (Mixtral, norm_topk_prob)
            blk, names = MOE[fam]
            rl = n @ D[f"{p}{blk}.gate.weight"].T
            if router:
                router(rl)
            probs = torch.softmax(rl, dim=-1)
            w, sel = torch.topk(probs, c["k"], dim=-1)
            if fam == "mixtral" or c["norm"]:
                w = w / w.sum(dim=-1, keepdim=True)
            fo = torch.zeros_like(n)
            for t in range(T):
                for j in range(c["k"]):
                    q = f"{p}{blk}.experts.{int(sel[t, j])}."
                    hmid = torch.nn.functional.silu(n[t] @ D[q + names[0]].T) * (n[t] @ D[q + names[1]].T)
                    fo[t] += w[t, j] * (hmid @ D[q + names[2]].T)
            if "Fs" in c:  # Qwen2MoeSparseMoeBlock: + sigmoid(shared_expert_gate(x)) * shared_expert(x)
                q = f"{p}mlp.shared_expert."
                sh = (torch.nn.functional.silu(n @ D[q + "gate_proj.weight"].T) * (n @ D[q + "up_proj.weight"].T)) @ D[q + "down_proj.weight"].T
                sh = torch.sigmoid(n @ D[p + "mlp.shared_expert_gate.weight"].T) * sh
                tr("moe_out", i, fo), tr("sh_out", i, sh)
                fo = fo + sh
            tr("ffn_in", i, n), tr("ffn_out", i, fo)
            x = x + fo
            tr("x", i, x)
            continue
        if fam == "phi3":
            gt, up = (n @ D[p + "mlp.gate_up_proj.weight"].T).chunk(2, dim=-1)
        else:
            gt, up = n @ D[p + "mlp.gate_proj.weight"].T, n @ D[p + "mlp.up_proj.weight"].T
        if c.get("mlp_bias"):
            gt, up = gt + D[p + "mlp.gate_proj.bias"], up + D[p + "mlp.up_proj.bias"]
        if gem:
            act = (torch.nn.functional.gelu(gt) if c.get("act") == "gelu" else gelu_tanh(gt)) * up  # erf form
        else:
            act = torch.nn.functional.silu(gt) * up
        fo = act @ D[p + "mlp.down_proj.weight"].T
        if c.get("mlp_bias"):
            fo = fo + D[p + "mlp.down_proj.bias"]
        tr("ffn_in", i, n), tr("gate", i, gt), tr("up", i, up), tr("act", i, act), tr("ffn_out", i, fo)
        if fam in ("gemma2", "gemma3"):
            fo = rms(fo, D[p + "post_feedforward_layernorm.weight"])
            tr("ffn_post", i, fo)
        x = x + fo
        tr("x", i, x)
    x = rms(x, D["model.norm.weight"])
    logits = x @ (D["model.embed_tokens.weight"] if c.get("tied") else D["lm_head.weight"]).T
    tr("out_norm", -1, x)
    if fam == "gemma2":
        tr("logits_raw", -1, logits)
        logits = c["final_cap"] * torch.tanh(logits / c["final_cap"])
    tr("logits", -1, logits)
    return logits


def gpt2_canonical(hf, t, D):
    """cke's canonical tensors of one GPT-2 HF tensor (Conv1D [in, out] transposed, c_attn split)."""
    n = hf.replace("transformer.", "")
    simple = {"wte.weight": "tok_embd", "wpe.weight": "pos_embd", "ln_f.weight": "output_norm", "ln_f.bias": "output_norm_b"}
    if n in simple:
        return [(simple[n], t)]
    parts = n.split(".")
    l, rest = parts[1], ".".join(parts[2:])
    per = {"ln_1.weight": "attn_norm", "ln_1.bias": "attn_norm_b", "ln_2.weight": "ffn_norm", "ln_2.bias": "ffn_norm_b",
           "attn.c_proj.bias": "attn_o_b", "mlp.c_fc.bias": "ffn_up_b", "mlp.c_proj.bias": "ffn_down_b"}
    if rest in per:
        return [(f"l{l}.{per[rest]}", t)]
    if rest == "attn.c_attn.weight":
        return [(f"l{l}.attn_{x}", t[:, i * D:(i + 1) * D].T) for i, x in enumerate("qkv")]
    if rest == "attn.c_attn.bias":
        return [(f"l{l}.attn_{x}_b", t[i * D:(i + 1) * D]) for i, x in enumerate("qkv")]
    conv = {"attn.c_proj.weight": "attn_o", "mlp.c_fc.weight": "ffn_up", "mlp.c_proj.weight": "ffn_down"}
    return [(f"l{l}.{conv[rest]}", t.T)]


def load_balancing_loss(logits, E, k):
    """HF load_balancing_loss_func (modeling_mixtral, shared by qwen2_moe / qwen3_moe / olmoe) without an
    attention mask: every layer's router logits concatenated, E * sum_e (fraction of the (row, choice)
    pairs that chose e, per choice) * (mean router probability of e)."""
    p = torch.softmax(torch.cat(logits), dim=-1)
    _, sel = torch.topk(p, k, dim=-1)
    mask = torch.nn.functional.one_hot(sel, E).to(p.dtype)  # [N, k, E]
    return torch.sum(mask.mean(dim=0) * p.mean(dim=0).unsqueeze(0)) * E


MOE_TRAIN_COEF = 0.05  # the router_aux_loss_coef the MoE train references run with (output_router_logits on)


HF_LAYER = {"input_layernorm.weight": "attn_norm", "post_attention_layernorm.weight": "ffn_norm",
            "self_attn.q_proj.weight": "attn_q", "self_attn.q_proj.bias": "attn_q_b", "self_attn.k_proj.weight": "attn_k",
            "self_attn.k_proj.bias": "attn_k_b", "self_attn.v_proj.weight": "attn_v", "self_attn.v_proj.bias": "attn_v_b",
            "self_attn.o_proj.weight": "attn_o", "self_attn.q_norm.weight": "attn_q_norm",
            "self_attn.k_norm.weight": "attn_k_norm", "block_sparse_moe.gate.weight": "ffn_gate_inp",
            "mlp.gate.weight": "ffn_gate_inp", "mlp.shared_expert.gate_proj.weight": "ffn_gate_shexp",
            "mlp.shared_expert.up_proj.weight": "ffn_up_shexp", "mlp.shared_expert.down_proj.weight": "ffn_down_shexp",
            "mlp.shared_expert_gate.weight": "ffn_gate_inp_shexp", "mlp.gate.e_score_correction_bias": "exp_probs_b",
            "mlp.shared_experts.gate_proj.weight": "ffn_gate_shexp", "mlp.shared_experts.up_proj.weight": "ffn_up_shexp",
            "mlp.shared_experts.down_proj.weight": "ffn_down_shexp", "mlp.gate_proj.weight": "ffn_gate",
            "mlp.up_proj.weight": "ffn_up", "mlp.down_proj.weight": "ffn_down",
            "self_attn.q_a_proj.weight": "attn_q_down", "self_attn.q_a_proj.bias": "attn_q_down_b",
            "self_attn.q_a_layernorm.weight": "attn_q_down_norm", "self_attn.q_b_proj.weight": "attn_q_up",
            "self_attn.kv_a_proj_with_mqa.weight": "attn_kv_down", "self_attn.kv_a_proj_with_mqa.bias": "attn_kv_down_b",
            "self_attn.kv_a_layernorm.weight": "attn_kv_down_norm", "self_attn.kv_b_proj.weight": "attn_kv_up",
            "self_attn.o_proj.bias": "attn_o_b"}
EXPERT = {"w1": "gate", "w3": "up", "w2": "down", "gate_proj": "gate", "up_proj": "up", "down_proj": "down"}


def moe_canonical(k, t):
    """cke's canonical name of a MoE checkpoint's HF tensor (as src/formats/model_hf.c maps them);
    each expert's matrix is a slice of the stacked l<i>.ffn_<x>_exps, in expert order (the
    reference's writer concatenates the slices)."""
    top = {"model.embed_tokens.weight": "tok_embd", "model.norm.weight": "output_norm", "lm_head.weight": "output"}
    if k in top:
        return [(top[k], t)]
    parts = k.split(".")
    l, rest = parts[2], ".".join(parts[3:])
    if ".experts." in rest:
        return [(f"l{l}.ffn_{EXPERT[parts[-2]]}_exps", t)]
    return [(f"l{l}.{HF_LAYER[rest]}", t)]


def write_train_ref(out, fam, c, W):
    """Training reference (ref_llama.train_reference): GPT-2 with its tensors mapped to cke's canonical
    ones; MoE families in HF names (cke's test maps them), with the load-balancing loss."""
    B, T, V = 2, 16, c["V"]
    seq = torch.tensor([(5 * i * i + 3 * i + 1) % V for i in range(B * T + 1)])
    if fam == "gpt2":
        train_reference(os.path.join(out, "ref_train.bin"), W, lambda P, ids: forward(fam, c, P, ids, lambda *a: None),
                        seq[:-1].view(B, T), seq[1:].view(B, T), V, to_canonical=lambda k, t: gpt2_canonical(k, t, c["dim"]))
        return
    if c.get("kind", fam) in ("glm4_moe", "deepseek_v3"):  # no load-balancing loss (HF computes none for them)
        train_reference(os.path.join(out, "ref_train.bin"), W, lambda P, ids: forward(fam, c, P, ids, lambda *a: None),
                        seq[:-1].view(B, T), seq[1:].view(B, T), V, to_canonical=moe_canonical)
        return
    assert c.get("kind", fam) in MOE, "the train reference covers gpt2 and the MoE families"
    routers = []

    def aux():
        loss = MOE_TRAIN_COEF * load_balancing_loss(routers, c["E"], c["k"])
        routers.clear()
        return loss

    train_reference(os.path.join(out, "ref_train.bin"), W,
                    lambda P, ids: forward(fam, c, P, ids, lambda *a: None, routers.append),
                    seq[:-1].view(B, T), seq[1:].view(B, T), V, to_canonical=moe_canonical, extra_loss=aux)


def main():
    out, fam = sys.argv[1], sys.argv[2]
    extra = sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    trace = []

    def tr(name, layer, t):
        trace.append((name, layer, t.reshape(t.shape[0], -1).to(torch.float32).contiguous()))

    if extra[:1] == ["--from"]:  # an existing checkpoint (the real tiny-random-gpt2)
        assert fam == "gpt2", "--from is implemented for gpt2"
        src = extra[1]
        cfgj = json.load(open(os.path.join(src, "config.json")))
        W = load_safetensors(os.path.join(src, "model.safetensors"))
        W = {k if k.startswith("transformer.") else "transformer." + k: v for k, v in W.items()}
        dim, H = cfgj["n_embd"], cfgj["n_head"]
        c = dict(dim=dim, L=cfgj["n_layer"], H=H, KV=H, hd=dim // H, V=cfgj["vocab_size"])
        ids = torch.tensor([int(v) for v in extra[2].split(",")]) if len(extra) > 2 else \
            torch.tensor([(37 * i + 11) % c["V"] for i in range(19)])
        logits = forward(fam, c, W, ids, tr)
        write_outputs(out, ids, logits, trace, c["V"])
        return

    c = FAMILIES[fam]
    edit = extra[0] if extra else ""
    if edit.startswith("vocab="):  # a vocabulary of another size (a tokenizer's, for cke train)
        c = dict(c, V=int(edit[6:]))
    g = torch.Generator().manual_seed(11)
    W = make_weights(fam, c, g)
    saved = dict(W)
    if edit.startswith("drop="):
        del saved[edit[5:]]
    elif edit.startswith("perturb="):  # the file's tensor differs from the one the reference uses
        saved[edit[8:]] = saved[edit[8:]] * 1.01
    save_safetensors(os.path.join(out, "model.safetensors"), saved)
    cfg = config(fam, c)
    if edit.startswith("ablate="):  # the config loses a feature the reference keeps: cke must diverge
        del cfg[edit[7:]]
    elif edit.startswith("set="):  # set=KEY=JSON: a config the loader or a template must refuse
        k, v = edit[4:].split("=", 1)
        cfg[k] = json.loads(v)
    if edit == "train" and fam != "gpt2" and c.get("kind", fam) not in ("glm4_moe", "deepseek_v3"):  # the load-balancing loss on, as a training run would set it
        cfg.update(output_router_logits=True, router_aux_loss_coef=MOE_TRAIN_COEF)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    if edit == "train":
        write_train_ref(out, fam, c, W)
        return
    ids = torch.tensor([(7 * i + 3) % c["V"] for i in range(23)])
    logits = forward(fam, c, W, ids, tr)
    write_outputs(out, ids, logits, trace, c["V"])


if __name__ == "__main__":
    main()
