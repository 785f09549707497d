#!/usr/bin/python3
"""Writes the PyTorch parity fixtures for the kernel tests (run with Debian's torch, no network).

Every fx_<family>.py next to this file defines gen(w, torch) and calls w(name, tensor) for each
input, output and gradient; names are "<op>.<case>.<what>". References are computed in float64
from the float32 inputs, then stored as float32 (ints as int32).

usage: /usr/bin/python3 tests/torch/gen_fixtures.py OUT.bin [family ...]
"""
import importlib
import os
import struct
import sys

import torch


def main():
    out = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    families = sys.argv[2:] or sorted(f[3:-3] for f in os.listdir(here)
                                      if f.startswith("fx_") and f.endswith(".py"))
    torch.manual_seed(1234)
    recs = []
    names = set()

    def w(name, t):
        if name in names:
            raise SystemExit(f"duplicate fixture name {name}")
        names.add(name)
        t = torch.as_tensor(t).detach().cpu()
        if t.dtype in (torch.int32, torch.int64, torch.int16, torch.int8, torch.uint8, torch.bool):
            t, dt = t.to(torch.int32), 1
        else:
            t, dt = t.to(torch.float32), 0
        recs.append((name, dt, list(t.shape), t.contiguous().numpy().tobytes()))

    for fam in families:
        mod = importlib.import_module("fx_" + fam)
        mod.gen(w, torch)

    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"CKEFX001")
        f.write(struct.pack("<I", len(recs)))
        for name, dt, shape, data in recs:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<II", dt, len(shape)))
            for d in shape:
                f.write(struct.pack("<q", d))
            f.write(data)
    os.replace(tmp, out)
    print(f"fixtures: {len(recs)} tensors from {', '.join(families)} -> {out}")


if __name__ == "__main__":
    main()
