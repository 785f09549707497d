#!/usr/bin/python3
"""PyTorch side of the training benchmark (bench/bench_train.sh): the same llama-style model,
batch, sequence length and thread count as cke's, AdamW, random tokens. Run with
OMP_WAIT_POLICY=PASSIVE (else ~1.5x slower on 2 threads). Throughput is from the median step time
after the warm-up steps (the same rule as for cke; torch.compile's first step compiles).
Each PyTorch at its best: torch 2.x's fused scaled_dot_product_attention where it exists.
MODE eager (default) or compile (torch.compile of the model, torch 2.x); PREC fp32 (default) or
bf16 (torch.autocast("cpu", dtype=torch.bfloat16) around the forward and loss).
Prints one line:
  torch tok/s <float> peak_rss_mib <float> loss <float>
usage: bench_train_torch.py DIM LAYERS HEADS FFN VOCAB BATCH SEQ STEPS THREADS [MODE [PREC]]
"""
import math
import resource
import sys
import time

import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.h, self.hd = h, d // h
        self.n1, self.n2 = torch.nn.Parameter(torch.ones(d)), torch.nn.Parameter(torch.ones(d))
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d, bias=False) for _ in range(4))
        self.g, self.u = torch.nn.Linear(d, f, bias=False), torch.nn.Linear(d, f, bias=False)
        self.dn = torch.nn.Linear(f, d, bias=False)

    @staticmethod
    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        n = self.rms(x, self.n1)
        q = self.q(n).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k(n).view(B, T, self.h, self.hd).transpose(1, 2)
        v = self.v(n).view(B, T, self.h, self.hd).transpose(1, 2)
        rot = lambda t: torch.cat((-t[..., self.hd // 2:], t[..., : self.hd // 2]), -1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        if hasattr(F, "scaled_dot_product_attention"):  # torch 2.x: the fused kernel
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask, -1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
        n = self.rms(x, self.n2)
        return x + self.dn(F.silu(self.g(n)) * self.u(n))


class Model(torch.nn.Module):
    def __init__(self, d, L, h, f, V):
        super().__init__()
        self.emb = torch.nn.Embedding(V, d)
        self.blocks = torch.nn.ModuleList(Block(d, h, f) for _ in range(L))
        self.norm = torch.nn.Parameter(torch.ones(d))

    def forward(self, tok, cos, sin, mask):
        x = self.emb(tok)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        return Block.rms(x, self.norm) @ self.emb.weight.T  # tied output, as cke's --init


def main():
    d, L, h, f, V, B, T, steps, th = map(int, sys.argv[1:10])
    mode = sys.argv[10] if len(sys.argv) > 10 else "eager"
    bf16 = len(sys.argv) > 11 and sys.argv[11] == "bf16"
    torch.set_num_threads(th)
    torch.manual_seed(0)
    m = Model(d, L, h, f, V)
    fwd = torch.compile(m) if mode == "compile" else m
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    hd = d // h
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.arange(T).float()[:, None] * inv[None]
    cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, V, (steps + 3, B, T + 1), generator=g)
    loss = None
    times = []
    warm = 2 if mode == "compile" else 1
    for s in range(steps + warm):
        t0 = time.perf_counter()
        x, y = data[s, :, :-1], data[s, :, 1:]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(fwd(x, cos, sin, mask).reshape(-1, V).float(), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    # the median step after the warm-up: robust to the noise of a shared machine
    dt = sorted(times[warm:])[len(times[warm:]) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch tok/s {B * T / dt:.1f} peak_rss_mib {rss:.1f} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
