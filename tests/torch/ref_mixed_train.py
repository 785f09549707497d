#!/usr/bin/python3
"""PyTorch reference for mixed-precision training (cke train --precision bf16): stories260K
fine-tuned for STEPS AdamW steps twice, in float32 and under torch.autocast("cpu", torch.bfloat16)
(the way PyTorch users train in BF16 on CPUs: matmuls in bf16, fp32 master weights, loss and
optimizer), on the same batches as test_train's mixed-precision case.

Batches: windows of T + 1 tokens of IDS (test_train writes the start of data/stories.txt in the
model's vocabulary there); step s takes B windows starting at (s * 131 + b * 1009) % (n - T). AdamW: lr LR, betas 0.9/0.95, eps
1e-8, weight decay 0.1 on matrices only, no clipping: cke's adamw entry with the same arguments.

usage: ref_mixed_train.py stories260K.bin IDS.txt OUT.bin STEPS B T LR   (IDS.txt: "label: id id ...")
OUT.bin: i32 steps; f64 fp32_loss[steps]; f64 bf16_loss[steps] (the loss of each step's batch
before its update).
"""
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_stories_train import forward, load  # noqa: E402  (llama2.c's definition, dtype-following)


def run(W, c, seq, steps, B, T, lr, bf16):
    P = {k: v.to(torch.float32).clone().requires_grad_(True) for k, v in W.items()}
    opt = torch.optim.AdamW([{"params": [p for p in P.values() if p.dim() >= 2], "weight_decay": 0.1},
                             {"params": [p for p in P.values() if p.dim() < 2], "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    n = len(seq)
    losses = []
    for s in range(steps):
        starts = [(s * 131 + b * 1009) % (n - T) for b in range(B)]
        toks = torch.stack([seq[i:i + T] for i in starts])
        tgts = torch.stack([seq[i + 1:i + T + 1] for i in starts])
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = torch.cat([forward(P, c, toks[b]) for b in range(B)])
        loss = torch.nn.functional.cross_entropy(logits.float(), tgts.reshape(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main():
    W, c = load(sys.argv[1])
    ids = [int(v) for v in open(sys.argv[2]).read().split(":")[1].split()]
    steps, B, T, lr = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
    torch.set_num_threads(2)
    seq = torch.tensor(ids)
    a = run(W, c, seq, steps, B, T, lr, False)
    b = run(W, c, seq, steps, B, T, lr, True)
    with open(sys.argv[3], "wb") as f:
        f.write(struct.pack("<i", steps))
        f.write(struct.pack(f"<{steps}d", *a))
        f.write(struct.pack(f"<{steps}d", *b))


if __name__ == "__main__":
    main()
