#!/usr/bin/python3
"""PyTorch reference of the llama template family (test-only; Debian's torch, no network).

Writes a random-initialized Llama-style model in Hugging Face layout (config.json +
model.safetensors, written by hand: the format is an 8-byte header length, a JSON header and the
raw tensors), and the reference logits at every position of a fixed token sequence, computed in
float64 by an independent forward written from the HF modeling code's definition (RMSNorm,
split-halves RoPE on HF's row order, grouped-query attention, SwiGLU).

usage: ref_llama.py OUT_DIR VARIANT [drop=HF_NAME | shape=HF_NAME | perturb=HF_NAME | model_type=NAME | train]
       VARIANT: gqa | mha_tied | bias. The optional edit breaks the model on purpose (bad-input tests).
       `train` writes ref_train.bin instead: a batch, the mean cross-entropy, every parameter's
       gradient and every parameter after 5 AdamW steps (torch.optim.AdamW; weight decay on
       matrices only), keyed by cke's canonical tensor names.
Outputs OUT_DIR/{config.json, model.safetensors, ref.bin, ref.trace}; ref.bin = int32 n_tok,
int32 vocab, int32 ids[n_tok], float32 logits[n_tok][vocab]. ref.trace holds every intermediate value
under its IR name (the names of src/templates/llama.json), for `cke parity`: "CKETRC01", int32
n_tok, int32 ids[n_tok], int32 n_rec, then per record int32 name_len, name, int32 layer,
int64 pos0, int64 rows, int64 cols, float32 data[rows][cols].
"""
import json
import os
import struct
import sys

import torch

VARIANTS = {
    # name: (dim, layers, heads, kv_heads, ffn, vocab, tied, qkv_bias, theta)
    "gqa": (48, 3, 6, 2, 80, 97, False, False, 10000.0),
    "mha_tied": (32, 2, 4, 4, 64, 61, True, False, 500000.0),
    "bias": (40, 2, 4, 2, 72, 53, False, True, 1000000.0),  # model_type qwen2: compiled with qwen2.json
}


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def make_weights(variant):
    dim, L, H, KV, F, V, tied, bias, theta = VARIANTS[variant]
    hd = dim // H
    g = torch.Generator().manual_seed(7)

    def rnd(*shape, s=0.2):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * s

    W = {"model.embed_tokens.weight": rnd(V, dim, s=1.0), "model.norm.weight": 1 + rnd(dim, s=0.1)}
    for i in range(L):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = 1 + rnd(dim, s=0.1)
        W[p + "post_attention_layernorm.weight"] = 1 + rnd(dim, s=0.1)
        W[p + "self_attn.q_proj.weight"] = rnd(H * hd, dim)
        W[p + "self_attn.k_proj.weight"] = rnd(KV * hd, dim)
        W[p + "self_attn.v_proj.weight"] = rnd(KV * hd, dim)
        W[p + "self_attn.o_proj.weight"] = rnd(dim, H * hd)
        if bias:
            W[p + "self_attn.q_proj.bias"] = rnd(H * hd, s=0.1)
            W[p + "self_attn.k_proj.bias"] = rnd(KV * hd, s=0.1)
            W[p + "self_attn.v_proj.bias"] = rnd(KV * hd, s=0.1)
        W[p + "mlp.gate_proj.weight"] = rnd(F, dim)
        W[p + "mlp.up_proj.weight"] = rnd(F, dim)
        W[p + "mlp.down_proj.weight"] = rnd(dim, F)
    if not tied:
        W["lm_head.weight"] = rnd(V, dim)
    return W


CANON = [("model.embed_tokens.weight", "tok_embd"), ("model.norm.weight", "output_norm"),
         ("lm_head.weight", "output"), ("input_layernorm.weight", "attn_norm"),
         ("post_attention_layernorm.weight", "ffn_norm"), ("self_attn.q_proj.weight", "attn_q"),
         ("self_attn.k_proj.weight", "attn_k"), ("self_attn.v_proj.weight", "attn_v"),
         ("self_attn.q_proj.bias", "attn_q_b"), ("self_attn.k_proj.bias", "attn_k_b"),
         ("self_attn.v_proj.bias", "attn_v_b"), ("self_attn.o_proj.weight", "attn_o"),
         ("mlp.gate_proj.weight", "ffn_gate"), ("mlp.up_proj.weight", "ffn_up"),
         ("mlp.down_proj.weight", "ffn_down")]


def canonical(hf):
    for a, b in CANON:
        if hf == a:
            return b
        if hf.startswith("model.layers.") and hf.endswith("." + a):
            return "l%s.%s" % (hf.split(".")[2], b)
    raise KeyError(hf)


def forward(D, ids, variant, tr=None):
    """Logits [T, V] of one sequence; D maps HF names to float64 tensors (autograd-able)."""
    dim, L, H, KV, F, V, tied, bias, theta = VARIANTS[variant]
    hd, eps, T = dim // H, 1e-5, len(ids)
    tr = tr or (lambda *a: None)
    x = D["model.embed_tokens.weight"][ids]
    tr("x", -1, x)
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))  # float32 as HF
    ang = (torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]).to(torch.float64)
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(L):
        p = f"model.layers.{i}."
        n = rmsnorm(x, D[p + "input_layernorm.weight"], eps)
        tr("attn_in", i, n)
        q = n @ D[p + "self_attn.q_proj.weight"].T
        k = n @ D[p + "self_attn.k_proj.weight"].T
        v = n @ D[p + "self_attn.v_proj.weight"].T
        if bias:
            q = q + D[p + "self_attn.q_proj.bias"]
            k = k + D[p + "self_attn.k_proj.bias"]
            v = v + D[p + "self_attn.v_proj.bias"]
        tr("q", i, q), tr("k", i, k), tr("v", i, v)
        q = q.view(T, H, hd).transpose(0, 1)
        k = k.view(T, KV, hd).transpose(0, 1)
        v = v.view(T, KV, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        tr("q_rope", i, q.transpose(0, 1)), tr("k_rope", i, k.transpose(0, 1))
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / hd ** 0.5 + mask, dim=-1) @ v
        att = att.transpose(0, 1).reshape(T, H * hd)
        ao = att @ D[p + "self_attn.o_proj.weight"].T
        tr("attn", i, att), tr("attn_out", i, ao)
        x = x + ao
        tr("h", i, x)
        n = rmsnorm(x, D[p + "post_attention_layernorm.weight"], eps)
        gt, up = n @ D[p + "mlp.gate_proj.weight"].T, n @ D[p + "mlp.up_proj.weight"].T
        a = torch.nn.functional.silu(gt) * up
        fo = a @ D[p + "mlp.down_proj.weight"].T
        tr("ffn_in", i, n), tr("gate", i, gt), tr("up", i, up), tr("act", i, a), tr("ffn_out", i, fo)
        x = x + fo
        tr("x", i, x)
    x = rmsnorm(x, D["model.norm.weight"], eps)
    logits = x @ (D["model.embed_tokens.weight"] if tied else D["lm_head.weight"]).T
    tr("out_norm", -1, x), tr("logits", -1, logits)
    return logits


def train_reference(path, W, forward_seq, toks, tgts, V, steps=5, to_canonical=None, extra_loss=None):
    """The training reference shared by every family: mean cross-entropy over the batch, every
    parameter's gradient (autograd, float64) and every parameter after `steps` torch.optim.AdamW
    steps (lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only), written as
    ref_train.bin: i32 B, T, V, n, steps; i32 tok[B*T], tgt[B*T]; f64 loss; per tensor i32 name
    length, name, i64 numel, f32 grad[numel], f32 after[numel]. to_canonical(name, tensor) maps
    a file tensor to [(cke name, tensor)] (default: the name as is). extra_loss(), called after the
    batch's forward, returns a term added to the loss (a MoE's load-balancing loss)."""
    B, T = toks.shape
    P = {k: v.to(torch.float64).clone().requires_grad_(True) for k, v in W.items()}

    def loss_fn():
        logits = torch.cat([forward_seq(P, toks[b]) for b in range(B)])
        loss = torch.nn.functional.cross_entropy(logits, tgts.reshape(-1))
        return loss + extra_loss() if extra_loss else loss

    loss = loss_fn()
    loss.backward()
    grads = {k: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for k, p in P.items()}  # an unchosen expert: none
    opt = torch.optim.AdamW([{"params": [p for p in P.values() if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in P.values() if p.dim() < 2], "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    for p in P.values():
        p.grad = None
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        for p in P.values():  # an expert no token chose has no grad, and torch's AdamW would skip it (no decay,
            if p.grad is None:  # no step count); cke's flat gradient buffer holds zeros: the same as a zero grad
                p.grad = torch.zeros_like(p)
        opt.step()
    mapf = to_canonical or (lambda k, t: [(k, t)])
    recs = []
    for k in P:
        recs += [(n, g, a) for (n, g), (_, a) in zip(mapf(k, grads[k]), mapf(k, P[k].detach()))]
    merged = {}  # tensors mapped to one name (a MoE's experts) are its slices, in order
    for name, g, a in recs:
        if name in merged:
            g0, a0 = merged[name]
            merged[name] = (torch.cat([g0.reshape(-1), g.reshape(-1)]), torch.cat([a0.reshape(-1), a.reshape(-1)]))
        else:
            merged[name] = (g, a)
    recs = [(n, g, a) for n, (g, a) in merged.items()]
    with open(path, "wb") as f:
        f.write(struct.pack("<iiiii", B, T, V, len(recs), steps))
        f.write(toks.reshape(-1).to(torch.int32).numpy().tobytes())
        f.write(tgts.reshape(-1).to(torch.int32).numpy().tobytes())
        f.write(struct.pack("<d", loss.item()))
        for name, g, a in recs:
            f.write(struct.pack("<i", len(name)) + name.encode() + struct.pack("<q", g.numel()))
            f.write(g.contiguous().to(torch.float32).numpy().tobytes())
            f.write(a.contiguous().to(torch.float32).numpy().tobytes())


def write_train_ref(out, variant, W):
    """Loss, gradients and 5 AdamW steps on one batch of B=2 sequences of T=16 tokens."""
    V = VARIANTS[variant][5]
    B, T = 2, 16
    seq = torch.tensor([(5 * i * i + 3 * i + 1) % V for i in range(B * T + 1)])
    train_reference(os.path.join(out, "ref_train.bin"), W, lambda P, ids: forward(P, ids, variant),
                    seq[:-1].view(B, T), seq[1:].view(B, T), V, to_canonical=lambda k, t: [(canonical(k), t)])


def write_outputs(out, ids, logits, trace, V):
    """ref.trace (every traced IR value, for cke parity) and ref.bin (the logits), as the module
    docstring describes; shared with ref_families.py."""
    T = len(ids)
    with open(os.path.join(out, "ref.trace"), "wb") as f:
        f.write(b"CKETRC01")
        f.write(struct.pack("<i", T))
        f.write(ids.to(torch.int32).numpy().tobytes())
        f.write(struct.pack("<i", len(trace)))
        for name, layer, t in trace:
            nb = name.encode()
            f.write(struct.pack("<i", len(nb)) + nb + struct.pack("<iqqq", layer, 0, t.shape[0], t.shape[1]))
            f.write(t.numpy().tobytes())
    with open(os.path.join(out, "ref.bin"), "wb") as f:
        f.write(struct.pack("<ii", T, V))
        f.write(ids.to(torch.int32).numpy().tobytes())
        f.write(logits.to(torch.float32).numpy().tobytes())


def main():
    out, variant = sys.argv[1], sys.argv[2]
    dim, L, H, KV, F, V, tied, bias, theta = VARIANTS[variant]
    os.makedirs(out, exist_ok=True)
    W = make_weights(variant)
    edit = sys.argv[3] if len(sys.argv) > 3 else ""
    saved = dict(W)
    if edit.startswith("drop="):
        del saved[edit[5:]]
    elif edit.startswith("perturb="):  # the file's tensor differs from the one the reference uses
        saved[edit[8:]] = saved[edit[8:]] * 1.01
    elif edit.startswith("shape="):
        saved[edit[6:]] = saved[edit[6:]][:-1]
    save_safetensors(os.path.join(out, "model.safetensors"), saved)
    cfg = {
        "architectures": ["Qwen2ForCausalLM" if bias else "LlamaForCausalLM"],
        "model_type": "qwen2" if bias else "llama",
        "hidden_size": dim, "intermediate_size": F, "num_attention_heads": H,
        "num_key_value_heads": KV, "num_hidden_layers": L, "rms_norm_eps": 1e-5,
        "rope_theta": theta, "vocab_size": V, "max_position_embeddings": 256,
        "tie_word_embeddings": tied, "hidden_act": "silu", "torch_dtype": "float32",
    }
    if edit.startswith("model_type="):
        cfg["model_type"] = edit[11:]
        cfg["architectures"] = [edit[11:]]
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    if edit == "train":
        write_train_ref(out, variant, W)
        return

    ids = torch.tensor([(7 * i + 3) % V for i in range(23)])
    trace = []

    def tr(name, layer, t):
        trace.append((name, layer, t.reshape(t.shape[0], -1).to(torch.float32).contiguous()))

    D = {k: v.to(torch.float64) for k, v in W.items()}
    logits = forward(D, ids, variant, tr)
    write_outputs(out, ids, logits, trace, V)


if __name__ == "__main__":
    main()
