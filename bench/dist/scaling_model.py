#!/usr/bin/python3
"""Data-parallel training on N machines, on paper: step time = compute + the communication the
overlap does not hide, for cke's scheme (ZeRO-1: gradients reduce-scattered per layer while the
backward goes on, the updated parameters all-gathered after AdamW, not overlapped).

Assumptions (state them next to any number quoted from here):
  - weak scaling: every machine runs TOKENS tokens per step (its batch share), so the global batch
    grows with N; one machine's training speed is SPEED tokens/s (measured: bench/bench_train.sh,
    2 cores; a 1B shape from 6 * params FLOPs per token at the 110M run's GFLOPS)
  - f32 gradients and parameters: each machine sends and receives (N-1)/N * 4P bytes in the
    reduce-scatter and again in the all-gather (ring-optimal volume; cke's all-to-all moves the same
    bytes), at LINK * 0.9 (protocol overhead), plus a latency of ALPHA per message: N-1 messages per
    bucket in each collective, one bucket per layer
  - the backward is 2/3 of a step's compute; a layer's reduce-scatter overlaps the backward of the
    layers below it (all but the last bucket can hide), the all-gather hides nothing
usage: scaling_model.py [--alpha-us 30]
"""
import sys

ALPHA = 30e-6
if "--alpha-us" in sys.argv:
    ALPHA = float(sys.argv[sys.argv.index("--alpha-us") + 1]) * 1e-6

# name, parameters, layers, tokens per machine per step, tokens/s of one machine (2 cores)
MODELS = [
    ("110M", 110e6, 12, 4 * 256, 269.0),              # measured: docs/PERFORMANCE.md training table
    ("1.1B", 1.1e9, 22, 4 * 256, 269.0 * 110 / 1100),  # same GFLOPS, 10x the FLOPs per token
]
LINKS = [("10 Gbit/s", 10e9 / 8), ("100 Gbit/s", 100e9 / 8)]


def step(P, layers, tokens, speed, N, link):
    t_compute = tokens / speed
    if N == 1:
        return t_compute, 0.0, 0.0
    bytes_one = (N - 1) / N * 4 * P                      # reduce-scatter (or all-gather) per machine
    t_wire = bytes_one / (link * 0.9) + layers * (N - 1) * ALPHA
    backward = t_compute * 2 / 3
    hidden = min(t_wire * (layers - 1) / layers, backward)  # the last layer's bucket cannot hide
    exposed = (t_wire - hidden) + t_wire                 # + the all-gather
    return t_compute, t_wire, exposed


print(f"alpha {ALPHA * 1e6:.0f} us per message; efficiency = compute / (compute + exposed communication)")
print(f"{'model':6} {'link':11} {'N':>4} {'step s':>8} {'comm s':>8} {'exposed s':>9} {'eff':>6} {'tok/s total':>12} "
      f"{'AdamW state/machine':>20}")
for name, P, layers, tokens, speed in MODELS:
    for lname, link in LINKS:
        for N in (1, 8, 32, 128):
            tc, tw, ex = step(P, layers, tokens, speed, N, link)
            eff = tc / (tc + ex)
            state = 8 * P / N / 2**30                    # m and v, f32, 1/N each (ZeRO-1)
            print(f"{name:6} {lname:11} {N:4d} {tc + ex:8.2f} {2 * tw:8.2f} {ex:9.2f} {eff:6.1%} "
                  f"{N * tokens / (tc + ex):12.0f} {state:17.2f} GiB")
