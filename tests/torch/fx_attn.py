"""Attention fixtures: causal GQA attention with optional sliding window and softcap, forward
(out, lse) and autograd gradients (dq, dk, dv of sum(out * dout)), in float64 from float32 inputs.
Layouts as the kernels: q/out [T, H, hd], k/v [Tk, KV, hd], lse [H, T]."""
import math

CASES = [
    # name,     T,  Tk, H, KV, hd, window, softcap, qscale
    ("basic",   13, 13, 4, 4, 16, 0, 0.0, 1.0),
    ("gqa",     17, 17, 8, 2, 32, 0, 0.0, 1.0),
    ("window",  20, 20, 4, 2, 8, 5, 0.0, 1.0),
    ("softcap", 9, 11, 4, 2, 24, 0, 3.0, 4.0),
    ("decode",  1, 70, 8, 2, 64, 0, 0.0, 1.0),
    ("chunk",   5, 12, 6, 3, 24, 0, 0.0, 1.0),
]


def attention(torch, q, k, v, T, Tk, H, KV, hd, window, softcap, scale):
    rep = H // KV
    kk = k.repeat_interleave(rep, dim=1)  # [Tk, H, hd]: query head h reads kv head h // rep
    vv = v.repeat_interleave(rep, dim=1)
    s = torch.einsum("thd,jhd->htj", q, kk) * scale
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    p = (Tk - T + torch.arange(T)).view(T, 1)
    j = torch.arange(Tk).view(1, Tk)
    vis = j <= p
    if window:
        vis = vis & (j > p - window)
    s = s.masked_fill(~vis.view(1, T, Tk), float("-inf"))
    lse = torch.logsumexp(s, dim=-1)  # [H, T]
    out = torch.einsum("htj,jhd->thd", torch.softmax(s, dim=-1), vv)
    return out, lse


def gen(w, torch):
    for name, T, Tk, H, KV, hd, window, softcap, qscale in CASES:
        scale = 1.0 / math.sqrt(hd)
        q = (torch.randn(T, H, hd) * qscale).float()
        k = torch.randn(Tk, KV, hd).float()
        v = torch.randn(Tk, KV, hd).float()
        dout = torch.randn(T, H, hd).float()
        qd, kd, vd = (x.double().requires_grad_(True) for x in (q, k, v))
        out, lse = attention(torch, qd, kd, vd, T, Tk, H, KV, hd, window, softcap,
                             float(torch.tensor(scale, dtype=torch.float32)))
        (out * dout.double()).sum().backward()
        p = f"attn.{name}."
        for n, val in (("T", T), ("Tk", Tk), ("H", H), ("KV", KV), ("hd", hd), ("window", window)):
            w(p + n, torch.tensor([val], dtype=torch.int32))
        w(p + "scale", torch.tensor([scale]))
        w(p + "softcap", torch.tensor([softcap]))
        w(p + "q", q)
        w(p + "k", k)
        w(p + "v", v)
        w(p + "dout", dout)
        w(p + "out", out)
        w(p + "lse", lse)
        w(p + "dq", qd.grad)
        w(p + "dk", kd.grad)
        w(p + "dv", vd.grad)
