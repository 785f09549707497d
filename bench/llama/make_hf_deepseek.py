#!/usr/bin/python3
"""A random-weight DeepSeek-V3 checkpoint in Hugging Face layout (config.json + model.safetensors), for
the side-by-side benchmark: cke quantizes it to a GGUF llama.cpp reads (deepseek2), so both engines run
the very same file. numpy only; weights N(0, 0.02) (norms 1, the router's choice bias 0).

usage: make_hf_deepseek.py OUT_DIR DIM LAYERS HEADS KV_LORA NOPE ROPE V_DIM EXPERTS USED SHARED EXPERT_FFN DENSE_FFN VOCAB SEED
q is projected directly (q_lora_rank null, as DeepSeek-V2-Lite); the first layer has the dense MLP."""
import json
import os
import struct
import sys

import numpy as np


def save_safetensors(path, tensors):
    hdr, off = {}, 0
    for k, v in tensors.items():
        n = v.size * 4
        hdr[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for v in tensors.values():
            f.write(np.ascontiguousarray(v, dtype=np.float32).tobytes())


def main():
    out = sys.argv[1]
    dim, L, H, kvl, nope, rope, vd, E, k, shared, fe, fd, V, seed = map(int, sys.argv[2:16])
    rng = np.random.default_rng(seed)
    rnd = lambda *s: (rng.standard_normal(s, dtype=np.float32) * 0.02)  # noqa: E731
    hd = nope + rope
    W = {"model.embed_tokens.weight": rnd(V, dim), "model.norm.weight": np.ones(dim, np.float32), "lm_head.weight": rnd(V, dim)}
    for i in range(L):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = np.ones(dim, np.float32)
        W[p + "post_attention_layernorm.weight"] = np.ones(dim, np.float32)
        a = p + "self_attn."
        W[a + "q_proj.weight"] = rnd(H * hd, dim)
        W[a + "kv_a_proj_with_mqa.weight"] = rnd(kvl + rope, dim)
        W[a + "kv_a_layernorm.weight"] = np.ones(kvl, np.float32)
        W[a + "kv_b_proj.weight"] = rnd(H * (nope + vd), kvl)
        W[a + "o_proj.weight"] = rnd(dim, H * vd)
        if i == 0:
            for m, s in (("gate", (fd, dim)), ("up", (fd, dim)), ("down", (dim, fd))):
                W[f"{p}mlp.{m}_proj.weight"] = rnd(*s)
            continue
        W[p + "mlp.gate.weight"] = rnd(E, dim)
        W[p + "mlp.gate.e_score_correction_bias"] = np.zeros(E, np.float32)
        for e in range(E):
            for m, s in (("gate", (fe, dim)), ("up", (fe, dim)), ("down", (dim, fe))):
                W[f"{p}mlp.experts.{e}.{m}_proj.weight"] = rnd(*s)
        for m, s in (("gate", (fe * shared, dim)), ("up", (fe * shared, dim)), ("down", (dim, fe * shared))):
            W[f"{p}mlp.shared_experts.{m}_proj.weight"] = rnd(*s)
    os.makedirs(out, exist_ok=True)
    save_safetensors(os.path.join(out, "model.safetensors"), W)
    cfg = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": dim, "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": H, "intermediate_size": fd, "moe_intermediate_size": fe,
           "n_routed_experts": E, "num_experts_per_tok": k, "n_shared_experts": shared, "n_group": 1, "topk_group": 1,
           "routed_scaling_factor": 1.0, "norm_topk_prob": True, "first_k_dense_replace": 1, "q_lora_rank": None,
           "kv_lora_rank": kvl, "qk_nope_head_dim": nope, "qk_rope_head_dim": rope, "v_head_dim": vd, "head_dim": rope,
           "rope_interleave": True, "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "vocab_size": V,
           "max_position_embeddings": 4096, "tie_word_embeddings": False, "hidden_act": "silu", "attention_bias": False,
           "num_nextn_predict_layers": 0, "torch_dtype": "float32"}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


if __name__ == "__main__":
    main()
