#!/usr/bin/env python3
"""Seed corpora and regression inputs for the model-level fuzz targets, made from real files.

  tests/fuzz/corpus/model_gguf/   tiny GGUFs: stories260K's own metadata and tensor names with
                                  every size cut down (values: the first elements of the real
                                  tensors, tokenizer arrays cut to the new vocabulary), a GPT-2
                                  with a fused attn_qkv, a llama2.c checkpoint, mutants
  tests/fuzz/corpus/model_hf/     config.json NUL model.safetensors: tiny-random-gpt2's real
                                  config with sizes cut down and real weight slices, a llama and
                                  a Phi-3 (fused qkv_proj / gate_up_proj), mutants
  tests/fuzz/regress/<target>/    the inputs that crashed before issue 15 (run once per CI run)

Usage: CKE_MODELS=/path/to/models tests/fuzz/make_corpus.py   (rewrites those folders' files)
"""
import json, math, os, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODELS = os.environ.get("CKE_MODELS", os.path.join(ROOT, "..", "shared", "models"))
HERE = os.path.dirname(os.path.abspath(__file__))

# ---- GGUF (v3) ----
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B", U64: "<Q",
          I64: "<q", F64: "<d"}
DT_SIZE = {0: 4, 1: 2, 30: 2}  # f32, f16, bf16


def read_gguf(path):
    b = open(path, "rb").read()
    o = [0]

    def take(fmt):
        v = struct.unpack_from(fmt, b, o[0])
        o[0] += struct.calcsize(fmt)
        return v[0]

    def s():
        n = take("<Q")
        v = b[o[0]:o[0] + n].decode("utf-8", "replace")
        o[0] += n
        return v

    def val(t):
        if t == STR:
            return s()
        if t == ARR:
            et, n = take("<I"), take("<Q")
            return (et, [val(et) for _ in range(n)])
        return take(SCALAR[t])

    assert b[:4] == b"GGUF"
    o[0] = 4
    take("<I")
    nt, nkv = take("<Q"), take("<Q")
    kvs = []
    for _ in range(nkv):
        k = s()
        t = take("<I")
        kvs.append((k, t, val(t)))
    infos = []
    for _ in range(nt):
        name = s()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        infos.append((name, ne, take("<I"), take("<Q")))
    align = next((v for k, t, v in kvs if k == "general.alignment"), 32)
    base = (o[0] + align - 1) // align * align
    tensors = {n: (ne, dt, b[base + off:]) for n, ne, dt, off in infos}
    return kvs, tensors


def write_gguf(kvs, tensors):
    """kvs: [(key, type, value)]; tensors: [(name, ne, dtype, bytes)]"""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))

    def s(x):
        x = x.encode()
        out.extend(struct.pack("<Q", len(x)) + x)

    def val(t, v):
        if t == STR:
            s(v)
        elif t == ARR:
            et, xs = v
            out.extend(struct.pack("<IQ", et, len(xs)))
            for x in xs:
                val(et, x)
        else:
            out.extend(struct.pack(SCALAR[t], v))

    for k, t, v in kvs:
        s(k)
        out.extend(struct.pack("<I", t))
        val(t, v)
    off = 0
    for name, ne, dt, data in tensors:
        s(name)
        out.extend(struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", dt, off))
        off += (len(data) + 31) // 32 * 32
    out.extend(b"\0" * (-len(out) % 32))
    for name, ne, dt, data in tensors:
        out.extend(data + b"\0" * (-len(data) % 32))
    return bytes(out)


def f32s(n, seed=1):
    return b"".join(struct.pack("<f", 0.01 * ((i * 7 + seed) % 13) - 0.05) for i in range(n))


def setkv(kvs, key, t, v):
    kvs = [kv for kv in kvs if kv[0] != key]
    return kvs + [(key, t, v)]


def stories_tiny():
    """stories260K.gguf with dim 8, 2 heads / 1 kv head, ffn 16, 1 layer, vocab 16: the real keys
    and tensor names, the first elements of each real tensor."""
    kvs, ts = read_gguf(os.path.join(MODELS, "stories260K", "stories260K.gguf"))
    D, H, KV, F, V, L = 8, 2, 1, 16, 16, 1
    sizes = {"llama.embedding_length": D, "llama.attention.head_count": H, "llama.attention.head_count_kv": KV,
             "llama.feed_forward_length": F, "llama.block_count": L, "llama.context_length": 32,
             "llama.rope.dimension_count": D // H, "llama.vocab_size": V}
    out = []
    for k, t, v in kvs:
        if k in sizes:
            v = sizes[k]
        elif t == ARR and k.startswith("tokenizer."):
            v = (v[0], v[1][:V])
        elif k.startswith("tokenizer.") and k.endswith("_id") and v >= V:
            v = 1
        out.append((k, t, v))
    shape = {"token_embd.weight": [D, V], "output.weight": [D, V], "output_norm.weight": [D],
             "attn_norm.weight": [D], "ffn_norm.weight": [D], "attn_q.weight": [D, D],
             "attn_k.weight": [D, KV * D // H], "attn_v.weight": [D, KV * D // H], "attn_output.weight": [D, D],
             "ffn_gate.weight": [D, F], "ffn_up.weight": [D, F], "ffn_down.weight": [F, D]}
    tensors = []
    for name, (ne, dt, data) in ts.items():
        if name.startswith("blk.") and not name.startswith("blk.0."):
            continue
        key = name.split(".", 2)[2] if name.startswith("blk.") else name
        if key not in shape or dt not in DT_SIZE:
            continue
        n = math.prod(shape[key])
        tensors.append((name, shape[key], dt, data[:n * DT_SIZE[dt]]))
    return out, tensors


def gpt2_tiny(edits=()):
    D, F, V, C = 8, 16, 8, 4
    kvs = [("general.architecture", STR, "gpt2"), ("gpt2.embedding_length", U32, D), ("gpt2.block_count", U32, 1),
           ("gpt2.attention.head_count", U32, 2), ("gpt2.feed_forward_length", U32, F),
           ("gpt2.context_length", U32, C), ("gpt2.attention.layer_norm_epsilon", F32, 1e-5)]
    for k, t, v in edits:
        kvs = setkv(kvs, k, t, v)
    shapes = [("token_embd.weight", [D, V]), ("position_embd.weight", [D, C]), ("output_norm.weight", [D]),
              ("output_norm.bias", [D]), ("blk.0.attn_norm.weight", [D]), ("blk.0.attn_norm.bias", [D]),
              ("blk.0.attn_qkv.weight", [D, 3 * D]), ("blk.0.attn_qkv.bias", [3 * D]),
              ("blk.0.attn_output.weight", [D, D]), ("blk.0.attn_output.bias", [D]),
              ("blk.0.ffn_norm.weight", [D]), ("blk.0.ffn_norm.bias", [D]), ("blk.0.ffn_up.weight", [D, F]),
              ("blk.0.ffn_up.bias", [F]), ("blk.0.ffn_down.weight", [F, D]), ("blk.0.ffn_down.bias", [D])]
    return write_gguf(kvs, [(n, s, 0, f32s(math.prod(s), i)) for i, (n, s) in enumerate(shapes)])


def llama2c_tiny():
    dim, hid, L, H, KV, V, S = 8, 16, 1, 2, 1, 8, 4
    hs = dim // H
    n = (V * dim + L * dim + L * dim * dim + 2 * L * dim * KV * hs + L * dim * dim + L * dim + 3 * L * dim * hid + dim
         + S * hs)  # shared classifier (vocab > 0), freq_cis real+imag
    return struct.pack("<7i", dim, hid, L, H, KV, V, S) + f32s(n)


# ---- safetensors ----
def safetensors(ts):
    """ts: [(name, shape, bytes)] all F32"""
    hdr, off = {}, 0
    for name, shape, data in ts:
        hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(d for _, _, d in ts)


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack_from("<Q", b)[0]
    h = json.loads(b[8:8 + n])
    return {k: (v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}


def hf(cfg, ts):
    return json.dumps(cfg).encode() + b"\0" + safetensors(ts)


def gpt2_hf_tiny(edits=None):
    """tiny-random-gpt2's real config.json and tensor names, sizes cut to dim 8 / 2 heads / 1 layer."""
    cfg = json.load(open(os.path.join(MODELS, "tiny-random-gpt2", "config.json")))
    real = read_safetensors(os.path.join(MODELS, "tiny-random-gpt2", "model.safetensors"))
    D, V, C = 8, 16, 4
    cfg.update({"n_embd": D, "n_head": 2, "n_layer": 1, "vocab_size": V, "n_positions": C, "n_ctx": C})
    cfg.update(edits or {})
    shape = {"wte.weight": [V, D], "wpe.weight": [C, D], "ln_f.weight": [D], "ln_f.bias": [D],
             "ln_1.weight": [D], "ln_1.bias": [D], "ln_2.weight": [D], "ln_2.bias": [D],
             "attn.c_attn.weight": [D, 3 * D], "attn.c_attn.bias": [3 * D], "attn.c_proj.weight": [D, D],
             "attn.c_proj.bias": [D], "mlp.c_fc.weight": [D, 4 * D], "mlp.c_fc.bias": [4 * D],
             "mlp.c_proj.weight": [4 * D, D], "mlp.c_proj.bias": [D]}
    ts = []
    for name, (s, data) in real.items():
        if name.startswith("h.") and not name.startswith("h.0."):
            continue
        key = name.split(".", 2)[2] if name.startswith("h.") else name
        if key in shape:
            ts.append((name, shape[key], data[:4 * math.prod(shape[key])]))
    return hf(cfg, ts)


def llama_hf_tiny(phi3=False, edits=None):
    D, H, KV, F, V = 8, 2, 1, 16, 8
    hd = D // H
    cfg = {"model_type": "phi3" if phi3 else "llama", "hidden_size": D, "num_hidden_layers": 1,
           "num_attention_heads": H, "num_key_value_heads": KV, "intermediate_size": F, "vocab_size": V,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 16, "tie_word_embeddings": False,
           "hidden_act": "silu"}
    cfg.update(edits or {})
    p = "model.layers.0."
    shapes = [("model.embed_tokens.weight", [V, D]), ("model.norm.weight", [D]), ("lm_head.weight", [V, D]),
              (p + "input_layernorm.weight", [D]), (p + "post_attention_layernorm.weight", [D]),
              (p + "self_attn.o_proj.weight", [D, H * hd]), (p + "mlp.down_proj.weight", [D, F])]
    if phi3:
        shapes += [(p + "self_attn.qkv_proj.weight", [(H + 2 * KV) * hd, D]), (p + "mlp.gate_up_proj.weight", [2 * F, D])]
    else:
        shapes += [(p + "self_attn.q_proj.weight", [H * hd, D]), (p + "self_attn.k_proj.weight", [KV * hd, D]),
                   (p + "self_attn.v_proj.weight", [KV * hd, D]), (p + "mlp.gate_proj.weight", [F, D]),
                   (p + "mlp.up_proj.weight", [F, D])]
    return hf(cfg, [(n, s, f32s(math.prod(s), i)) for i, (n, s) in enumerate(shapes)])


def tokenizer_all_empty():
    """fuzz_tokenizer input (first byte 0: llama2.c loader): five empty pieces (issue 15 item 8)"""
    return b"\0" + struct.pack("<i", 4) + b"".join(struct.pack("<fi", -float(i), 0) for i in range(5))


def save(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    big = 1 << 32
    cg, rg = os.path.join(HERE, "corpus", "model_gguf"), os.path.join(HERE, "regress", "model_gguf")
    ch, rh = os.path.join(HERE, "corpus", "model_hf"), os.path.join(HERE, "regress", "model_hf")
    kvs, ts = stories_tiny()
    save(cg, "stories260K-tiny.gguf", write_gguf(kvs, ts))
    for name, key, t, v in [("nan-eps", "llama.attention.layer_norm_rms_epsilon", F32, float("nan")),
                            ("theta-0", "llama.rope.freq_base", F32, 0.0),
                            ("kv-heads-3", "llama.attention.head_count_kv", U32, 3)]:
        save(cg, f"stories260K-tiny-{name}.gguf", write_gguf(setkv(kvs, key, t, v), ts))
    save(cg, "gpt2-tiny.gguf", gpt2_tiny())
    save(cg, "stories-tiny.bin", llama2c_tiny())
    # issue 15 items 1 and 2: SIGFPE splitting attn_qkv with no heads; int64 overflow in the shape checks
    save(rg, "gpt2-head-count-0.gguf", gpt2_tiny([("gpt2.attention.head_count", U32, 0),
                                                  ("gpt2.attention.head_count_kv", U32, 2)]))
    save(rg, "llama-heads-keylen-2e32.gguf", write_gguf(
        setkv(setkv(kvs, "llama.attention.head_count", U64, big), "llama.attention.key_length", U64, big), ts))
    save(rg, "gpt2-head-count-2e32.gguf", gpt2_tiny([("gpt2.attention.head_count", U64, big)]))

    save(ch, "tiny-random-gpt2-tiny.hf", gpt2_hf_tiny())
    save(ch, "llama-tiny.hf", llama_hf_tiny())
    save(ch, "phi3-tiny.hf", llama_hf_tiny(phi3=True))
    save(ch, "llama-tiny-eps-neg.hf", llama_hf_tiny(edits={"rms_norm_eps": -1}))
    save(rh, "phi3-heads-0.hf", llama_hf_tiny(phi3=True, edits={"num_attention_heads": 0}))
    save(rh, "llama-heads-headdim-2e32.hf", llama_hf_tiny(edits={"num_attention_heads": big, "head_dim": big}))
    save(rh, "gpt2-n-head-2e32.hf", gpt2_hf_tiny({"n_head": big}))

    save(os.path.join(HERE, "regress", "tokenizer"), "all-empty-pieces.bin", tokenizer_all_empty())
    print("corpus and regression inputs written under", HERE)


if __name__ == "__main__":
    sys.exit(main())
