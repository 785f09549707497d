#!/usr/bin/env python3
"""Cross-check of cke's GGUF block formats against gguf-py, the Python GGUF package of the
llama.cpp project (pinned by tests/quant/test_gguf_crosscheck.sh), which implements the formats
independently of cke (numpy, from ggml's definitions).

For every format, `cke quantize` turns an F32 GGUF of test matrices (weights of a tiny llama, since
quantize takes only models) into that format, then:
  - where gguf-py has a quantizer (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), its bytes for the same
    floats must equal cke's, block for block;
  - gguf-py's dequantization of cke's bytes (every format, the K formats included) must equal
    cke's own dequantization (`cke quantize OUT F32`) bit for bit.
Usage: gguf_crosscheck.py CKE TMPDIR. Prints PASS/FAIL lines and "N passed, N failed"."""
import subprocess
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import quants

CKE, TMP = sys.argv[1], sys.argv[2]
passed = failed = 0


def report(ok, msg):
    global passed, failed
    print(("PASS " if ok else "FAIL ") + msg)
    if ok:
        passed += 1
    else:
        failed += 1


def matrices():
    rng = np.random.default_rng(20261126)
    gauss = rng.standard_normal((8, 512)).astype(np.float32)
    # heavy tails, like real weights: a few outliers per block
    heavy = (rng.standard_normal((8, 512)) * np.where(rng.random((8, 512)) < 0.02, 8.0, 1.0) * 0.02).astype(np.float32)
    edge = np.zeros((8, 512), np.float32)  # row 0: all zero
    edge[1, :] = 0.5                        # constant
    edge[2, 37] = -3.0                      # one negative value, the rest zero
    edge[3] = np.linspace(-1.0, 1.0, 512)   # ramp
    edge[4] = rng.standard_normal(512) * 1e-3
    edge[5, ::2], edge[5, 1::2] = 1.0, -1.0  # alternating signs
    edge[6] = rng.uniform(0.0, 1.0, 512)     # all positive (the _1 and K formats' mins)
    edge[7] = -rng.uniform(0.0, 1.0, 512)    # all negative
    return {"blk.0.attn_k.weight": gauss, "blk.0.attn_v.weight": heavy, "blk.0.ffn_gate.weight": edge}


def run(*args):
    r = subprocess.run([CKE, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"cke {' '.join(args)}: {r.stderr.strip()[-400:]}")


def tensors(path):
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def raw_rows(t, rows):
    return np.frombuffer(np.asarray(t.data).tobytes(), dtype=np.uint8).reshape(rows, -1)


def main():
    mats = matrices()
    src = f"{TMP}/f32.gguf"
    # `cke quantize` takes only what loads as a model: the test matrices are weights of a one-layer
    # llama whose 8-row matrices are attn_k / attn_v (1 kv head of 8 dims) and ffn_gate (ffn 8)
    w = gguf.GGUFWriter(src, "llama")
    dim, vocab = 512, 32
    w.add_context_length(64)
    w.add_embedding_length(dim)
    w.add_block_count(1)
    w.add_feed_forward_length(8)
    w.add_head_count(dim // 8)
    w.add_head_count_kv(1)
    w.add_rope_dimension_count(8)
    w.add_layer_norm_rms_eps(1e-5)
    rng = np.random.default_rng(7)
    rand = lambda *shape: (rng.standard_normal(shape) * 0.05).astype(np.float32)  # noqa: E731
    model = {"token_embd.weight": rand(vocab, dim), "output_norm.weight": np.ones(dim, np.float32),
             "output.weight": rand(vocab, dim), "blk.0.attn_norm.weight": np.ones(dim, np.float32),
             "blk.0.attn_q.weight": rand(dim, dim), "blk.0.attn_output.weight": rand(dim, dim),
             "blk.0.ffn_norm.weight": np.ones(dim, np.float32), "blk.0.ffn_up.weight": rand(8, dim),
             "blk.0.ffn_down.weight": rand(dim, 8)}
    model.update(mats)
    for name, m in model.items():
        w.add_tensor(name, m)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    formats = [("F16", QT.F16), ("BF16", QT.BF16), ("Q8_0", QT.Q8_0), ("Q4_0", QT.Q4_0), ("Q4_1", QT.Q4_1),
               ("Q5_0", QT.Q5_0), ("Q5_1", QT.Q5_1), ("Q4_K", QT.Q4_K), ("Q5_K", QT.Q5_K), ("Q6_K", QT.Q6_K)]
    for name, qt in formats:
        out, back = f"{TMP}/{name}.gguf", f"{TMP}/{name}-f32.gguf"
        try:
            run("quantize", src, out, name)
            run("quantize", out, back, "F32")
        except RuntimeError as e:
            report(False, f"{name}: {e}")
            continue
        qts, bts = tensors(out), tensors(back)
        for tname, m in mats.items():
            t = qts[tname]
            if t.tensor_type != qt:
                report(False, f"{name} {tname}: stored as {t.tensor_type.name}")
                continue
            got = raw_rows(t, m.shape[0])
            if qt == QT.F16:
                ref = np.frombuffer(m.astype(np.float16).tobytes(), np.uint8).reshape(m.shape[0], -1)
            elif qt in (QT.BF16, QT.Q8_0, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1):
                ref = quants.quantize(m, qt)
            else:
                ref = None  # gguf-py has no K-format quantizers
            if ref is not None:
                diff = np.nonzero(np.any(ref != got, axis=1))[0]
                report(diff.size == 0, f"{name} {tname}: cke's bytes == gguf-py's quantizer"
                       + (f" (rows differ: {diff.tolist()})" if diff.size else ""))
            deq = quants.dequantize(got, qt).astype(np.float32)
            mine = np.asarray(bts[tname].data, dtype=np.float32).reshape(m.shape)
            bad = np.nonzero(deq.view(np.uint32) != mine.view(np.uint32))
            report(bad[0].size == 0, f"{name} {tname}: gguf-py dequantizes cke's blocks to cke's values"
                   + (f" (first at {bad[0][0]},{bad[1][0]}: {deq[bad][0]!r} vs {mine[bad][0]!r})" if bad[0].size else ""))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
