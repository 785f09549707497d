#!/usr/bin/python3
"""PyTorch side of the training benchmark (bench/bench_train.sh): the same llama-style model,
batch, sequence length and thread count as cke's, AdamW, random tokens. Run with
OMP_WAIT_POLICY=PASSIVE (else ~1.5x slower on 2 threads). Throughput is from the median step time
after the warm-up steps (the same rule as for cke; torch.compile's first step compiles).
Each PyTorch at its best: torch 2.x's fused scaled_dot_product_attention where it exists.
MODE eager (default) or compile (torch.compile of the model, torch 2.x); PREC fp32 (default) or
bf16 (torch.autocast("cpu", dtype=torch.bfloat16) around the forward and loss); FAMILY llama
(default) or gpt2 (GPT-2 as cke's --init gpt2: LayerNorm, fused q|k|v with biases, learned
positions, tanh GELU, tied output).
Prints one line:
  torch tok/s <float> peak_rss_mib <float> loss <float>
usage: bench_train_torch.py DIM LAYERS HEADS FFN VOCAB BATCH SEQ STEPS THREADS [MODE [PREC [FAMILY]]]
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
        x = x + self.o(attend(q, k, v, mask, self.hd).transpose(1, 2).reshape(B, T, D))
        n = self.rms(x, self.n2)
        return x + self.dn(F.silu(self.g(n)) * self.u(n))


def attend(q, k, v, mask, hd):
    if hasattr(F, "scaled_dot_product_attention"):  # torch 2.x: the fused kernel
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1) @ v


class Gpt2Block(torch.nn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.h, self.hd = h, d // h
        self.n1, self.n2 = torch.nn.LayerNorm(d, eps=1e-5), torch.nn.LayerNorm(d, eps=1e-5)
        self.qkv, self.o = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.fc, self.proj = torch.nn.Linear(d, f), torch.nn.Linear(f, d)

    def forward(self, x, mask):
        B, T, D = x.shape
        q, k, v = (t.view(B, T, self.h, self.hd).transpose(1, 2) for t in self.qkv(self.n1(x)).split(D, -1))
        x = x + self.o(attend(q, k, v, mask, self.hd).transpose(1, 2).reshape(B, T, D))
        return x + self.proj(F.gelu(self.fc(self.n2(x)), approximate="tanh"))


class Gpt2(torch.nn.Module):
    def __init__(self, d, L, h, f, V, T):
        super().__init__()
        self.emb, self.pos = torch.nn.Embedding(V, d), torch.nn.Embedding(T, d)
        self.blocks = torch.nn.ModuleList(Gpt2Block(d, h, f) for _ in range(L))
        self.norm = torch.nn.LayerNorm(d, eps=1e-5)

    def forward(self, tok, cos, sin, mask):
        x = self.emb(tok) + self.pos.weight[: tok.shape[1]]
        for b in self.blocks:
            x = b(x, mask)
        return self.norm(x) @ self.emb.weight.T  # tied output, as cke's --init gpt2


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
    gpt2 = len(sys.argv) > 12 and sys.argv[12] == "gpt2"
    torch.set_num_threads(th)
    torch.manual_seed(0)
    # GPT-2's 50257 rows padded to a multiple of 64 (50304), as nanoGPT does: PyTorch's CPU
    # matmuls run several times slower at that odd width; the labels stay below V
    m = Gpt2(d, L, h, f, (V + 63) // 64 * 64, T) if gpt2 else Model(d, L, h, f, V)
    # initialized as cke's --init (N(0, 0.02) matrices and embeddings, zero biases, unit norms):
    # PyTorch's default N(0, 1) tied embedding makes logits of ~27 and a loss of ~200 whose
    # training steps ran 2x slower and varied (denormals), not PyTorch's best
    for name, p in m.named_parameters():
        if p.dim() >= 2:
            torch.nn.init.normal_(p, 0.0, 0.02)
        elif name.endswith("bias"):
            torch.nn.init.zeros_(p)
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
            logits = fwd(x, cos, sin, mask)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
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
