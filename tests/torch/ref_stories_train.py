#!/usr/bin/python3
"""PyTorch training reference on real weights: stories260K (llama2.c checkpoint) — the loss, every
parameter's gradient and every parameter after 5 AdamW steps, for `test_train` (Debian's torch).

The forward is written from llama2.c's definition (RMSNorm, interleaved-pair RoPE with float32
frequencies, grouped-query attention, SwiGLU, tied classifier), independently of cke, in float64
from the checkpoint's float32 weights.

usage: ref_stories_train.py stories260K.bin reference_greedy_t0_256steps.ids.txt OUT.bin
OUT.bin has the layout of ref_llama.py's ref_train.bin (cke's canonical tensor names).
"""
import struct
import sys

import os

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_llama import train_reference  # noqa: E402  (the shared loss/grad/AdamW writer)


def load(path):
    raw = open(path, "rb").read()
    dim, hidden, L, H, KV, V, S = struct.unpack("<7i", raw[:28])
    shared = V > 0
    V = abs(V)
    hd, kvd = dim // H, dim // H * KV
    a = np.frombuffer(raw, dtype=np.float32, offset=28)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        t = torch.from_numpy(a[off:off + n].copy()).reshape(*shape)
        off += n
        return t

    W = {"tok_embd": take(V, dim)}
    rms_att, wq, wk, wv, wo = take(L, dim), take(L, dim, dim), take(L, kvd, dim), take(L, kvd, dim), take(L, dim, dim)
    rms_ffn, w1, w2, w3 = take(L, dim), take(L, hidden, dim), take(L, dim, hidden), take(L, hidden, dim)
    W["output_norm"] = take(dim)
    for l in range(L):
        W[f"l{l}.attn_norm"], W[f"l{l}.attn_q"], W[f"l{l}.attn_k"] = rms_att[l], wq[l], wk[l]
        W[f"l{l}.attn_v"], W[f"l{l}.attn_o"], W[f"l{l}.ffn_norm"] = wv[l], wo[l], rms_ffn[l]
        W[f"l{l}.ffn_gate"], W[f"l{l}.ffn_down"], W[f"l{l}.ffn_up"] = w1[l], w2[l], w3[l]
    assert shared, "stories260K shares its classifier with the embedding"
    return W, dict(dim=dim, L=L, H=H, KV=KV, V=V, hd=hd)


def rope(x, pos, hd):  # x [T, heads, hd]; llama2.c pairs (2i, 2i+1)
    j = torch.arange(0, hd, 2, dtype=torch.float32)
    freq = 1.0 / torch.pow(torch.tensor(10000.0), j / hd)  # float32, as llama2.c
    ang = (pos.to(torch.float32)[:, None] * freq[None, :]).to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    c, s = ang.cos()[:, None, :], ang.sin()[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


def forward(P, c, ids):
    T, H, KV, hd = len(ids), c["H"], c["KV"], c["hd"]
    rms = lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w
    pos = torch.arange(T)
    x = P["tok_embd"][ids]
    mask = torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)  # x: float64 (parity) or float32 (mixed)
    for l in range(c["L"]):
        n = rms(x, P[f"l{l}.attn_norm"])
        q = rope((n @ P[f"l{l}.attn_q"].T).view(T, H, hd), pos, hd).transpose(0, 1)
        k = rope((n @ P[f"l{l}.attn_k"].T).view(T, KV, hd), pos, hd).transpose(0, 1)
        v = (n @ P[f"l{l}.attn_v"].T).view(T, KV, hd).transpose(0, 1)
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
        a = torch.softmax(q @ k.transpose(1, 2) / hd ** 0.5 + mask, -1) @ v
        x = x + a.transpose(0, 1).reshape(T, H * hd) @ P[f"l{l}.attn_o"].T
        n = rms(x, P[f"l{l}.ffn_norm"])
        x = x + (torch.nn.functional.silu(n @ P[f"l{l}.ffn_gate"].T) * (n @ P[f"l{l}.ffn_up"].T)) @ P[f"l{l}.ffn_down"].T
    return rms(x, P["output_norm"]) @ P["tok_embd"].T


def main():
    W, c = load(sys.argv[1])
    ids = [int(v) for v in open(sys.argv[2]).read().split(":")[1].split()]
    B, T = 2, 32
    seq = torch.tensor([1] + ids[: B * T])  # BOS then the published greedy continuation
    train_reference(sys.argv[3], W, lambda P, ids_: forward(P, c, ids_), seq[:-1].view(B, T), seq[1:].view(B, T), c["V"])


if __name__ == "__main__":
    main()
