# cke profile (issue 11): per-op profile of prefill and decode, profile.json / trace.json contract
# (docs/PROFILE.md), hand-computed FLOPs and bytes, op-time coverage, zero cost when off.
ok prof_help "$CKE" profile --help
refuses prof_no_model 2 'profile: no model given' "$CKE" profile
refuses prof_no_prompt 2 'profile: no prompt given' "$CKE" profile m.gguf
refuses prof_bad_n 2 'profile: -n: -1 is not a token count' "$CKE" profile m.gguf -p hi -n -1
refuses prof_bad_threads 2 'profile: --threads: 0 is not a thread count' "$CKE" profile m.gguf -p hi --threads 0
refuses prof_train_no_data 2 'profile: --train needs --data' "$CKE" profile m.gguf --train
refuses prof_unknown 2 'profile: unknown option --frob' "$CKE" profile m.gguf -p hi --frob
refuses prof_missing_model 1 'no-such' "$CKE" profile "$T/no-such.gguf" -p hi

# Checks profile.json and trace.json of OUT against the compiled directory's ir.json:
# prof_check OUT DECODE_STEPS [ref]
prof_check() {
    python3 - "$@" <<'EOF'
import json, os, sys
out, steps = sys.argv[1], int(sys.argv[2])
want_ref = len(sys.argv) > 3 and sys.argv[3] == "ref"
p = json.load(open(os.path.join(out, "profile.json")))
tr = json.load(open(os.path.join(out, "trace.json")))
def need(obj, keys, where):
    for k in keys:
        assert k in obj, f"{where}: no '{k}'"
assert p["schema"] == "cke-profile/1"
need(p, ["model", "machine", "run", "modes"], "profile")
need(p["model"], ["name", "family", "source", "dir", "n_layers", "dim", "vocab", "params", "weights_bytes", "ctx"], "model")
need(p["machine"], ["cpu", "isa", "threads", "peak_gflops", "bandwidth_gbs"], "machine")
need(p["machine"]["peak_gflops"], ["f32", "bf16", "int8"], "peak_gflops")
assert p["machine"]["peak_gflops"]["f32"] > 0 and p["machine"]["bandwidth_gbs"] > 0
need(p["run"], ["command", "kind", "prompt_tokens", "generated_tokens", "steps", "wall_s"], "run")
modes = {m["mode"]: m for m in p["modes"]}
assert set(modes) == {"prefill", "decode"}, modes.keys()
ir = json.load(open(os.path.join(p["model"]["dir"], "ir.json")))
nodes = [n["out"] for n in ir["nodes"]]
row_keys = ["id", "name", "layer", "op", "shape", "kernel", "calls", "time_s", "thread_time_s", "flops", "bytes",
            "bytes_weights", "bytes_act", "bytes_kv", "gflops", "gbs", "intensity", "roof_gflops", "frac_roof", "bound"]
for name, m in modes.items():
    need(m, ["mode", "calls", "tokens", "wall_s", "ops_s", "outside_ops_s", "ops"], name)
    names = set()
    for r in m["ops"]:
        need(r, row_keys, f"{name} {r.get('name')}")
        assert r["bound"] in ("compute", "memory") and r["kernel"], r
        assert abs(r["bytes"] - r["bytes_weights"] - r["bytes_act"] - r["bytes_kv"]) <= 1e-6 * r["bytes"] + 1, r
        if want_ref:
            assert r["kernel"].startswith("ref") or r["kernel"] == "memmove", r["kernel"]
        names.add(r["name"])
    missing = [n for n in nodes if n not in names]
    assert not missing, f"{name}: IR nodes without a row: {missing[:5]}"
    # Op times vs wall time of the forward passes. The real number is >= 95% in the optimized
    # build (docs/PROFILE.md); the bound here is loose because the sanitized build and a loaded
    # 2-core test machine stretch the code between ops and preempt the process.
    assert m["ops_s"] >= 0.80 * m["wall_s"], f"{name}: ops {m['ops_s']} s of wall {m['wall_s']} s"
    assert abs(m["outside_ops_s"] - (m["wall_s"] - m["ops_s"])) < 1e-9
# stories260K: dim 64, 8 heads / 4 kv heads of 8, ffn 172, vocab 512, f32 weights
d, kv, ffn, V, H, hd = 64, 32, 172, 512, 8, 8
dec = {r["name"]: r for r in modes["decode"]["ops"]}
n = steps
assert modes["decode"]["calls"] == n and dec["l0.q"]["calls"] == n
q = dec["l0.q"]  # linear [1,64] . [64,64]^T
assert q["op"] == "linear" and q["flops"] == n * 2 * d * d, q
assert q["bytes_weights"] == n * d * d * 4 and q["bytes_act"] == n * (d + d) * 4 and q["bytes_kv"] == 0, q
g = dec["l3.gate"]  # linear [1,64] . [172,64]^T
assert g["flops"] == n * 2 * d * ffn and g["bytes_weights"] == n * ffn * d * 4, g
nrm = dec["l2.attn_in"]  # rmsnorm over 64: x^2, sum, times rstd, times w
assert nrm["op"] == "rmsnorm" and nrm["flops"] == n * 4 * d, nrm
assert nrm["bytes_weights"] == n * d * 4 and nrm["bytes_act"] == n * 2 * d * 4, nrm
lg = dec["logits"]  # the output head runs on the last row only
assert lg["flops"] == n * 2 * d * V and lg["bytes_weights"] == n * V * d * 4, lg
# attention, step i at position P + i sees P + i + 1 keys: 4 * H * hd FLOPs per key;
# K and V of this row written, of every visible key read, 2 bytes each (the default f16 KV cache)
P = p["run"]["prompt_tokens"]
at = dec["l1.attn"]
keys = sum(P + i + 1 for i in range(n))
assert at["flops"] == 4 * H * hd * keys, (at["flops"], 4 * H * hd * keys)
assert at["bytes_kv"] == n * 2 * kv * 2 + 2 * kv * 2 * keys, at
pre = {r["name"]: r for r in modes["prefill"]["ops"]}
assert pre["l0.q"]["flops"] == P * 2 * d * d and pre["l0.q"]["calls"] == 1
# trace: Chrome Trace Event format, one track per thread, names and durations
ev = tr["traceEvents"]
assert tr["displayTimeUnit"] == "ms"
xs = [e for e in ev if e["ph"] == "X"]
assert any(e["ph"] == "M" and e["name"] == "thread_name" for e in ev)
for e in xs:
    need(e, ["name", "cat", "ph", "ts", "dur", "pid", "tid", "args"], "event")
    assert e["dur"] >= 0
assert {e["name"] for e in xs} >= {"l0.q", "logits", "decode", "prefill"}
EOF
}

if have_models; then
    S=$CKE_MODELS/stories260K/stories260K.gguf
    P=$T/prof
    refuses prof_s260 0 'top 10 ops by time' "$CKE" profile "$S" -p "Once upon a time" -n 6 -o "$P" --quick -t 2
    check prof_s260_json prof_check "$P" 6
    check prof_s260_summary grep -q 'decode' "$P/profile.json"
    # zero cost when off: the plain model.so has no timing code, model_prof.so has
    dir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["dir"])' "$P/profile.json")
    check prof_plain_untimed sh -c "! nm -D '$dir/model.so' | grep -q omp_get_wtime"
    check prof_prof_timed sh -c "nm -D '$P/model_prof.so' | grep -q omp_get_wtime"
    # CKE_ISA=ref: every kernel is named ref
    refuses prof_s260_ref 0 'ref ' env CKE_ISA=ref "$CKE" profile "$S" -p "Once" -n 3 -o "$T/prof-ref" --quick -t 1
    check prof_s260_ref_json prof_check "$T/prof-ref" 3 ref
    # quantized weights: bytes in the stored format, the quantized kernel named (Q4_0 -> q4_0r
    # repacked; ffn_down's 172 columns are no multiple of 32: F16; the tied head Q8_0)
    "$CKE" quantize "$S" "$T/s260-q4_0.gguf" Q4_0 >/dev/null 2>&1
    refuses prof_q4_0 0 'q4_0r (gemv|dot_rows|gemm_tile)' "$CKE" profile "$T/s260-q4_0.gguf" -p "Once" -n 3 -o "$T/prof-q4" --quick -t 1
    check prof_q4_0_bytes python3 -c '
import json, re, sys
p = json.load(open(sys.argv[1] + "/profile.json"))
d = {r["name"]: r for r in [m for m in p["modes"] if m["mode"] == "decode"][0]["ops"]}
def per_call(n): return d[n]["bytes_weights"] / d[n]["calls"]
assert per_call("l0.q") == 64 * 2 * 18, d["l0.q"]            # 64 rows of 2 Q4_0 blocks of 18 bytes
assert per_call("l1.gate") == 172 * 2 * 18, d["l1.gate"]
assert per_call("l0.ffn_out") == 64 * 172 * 2, d["l0.ffn_out"]  # F16
assert per_call("logits") == 512 * 2 * 34, d["logits"]        # Q8_0: 34-byte blocks
assert re.match(r"(ref|avx2|avx512) q4_0r? ", d["l0.q"]["kernel"]), d["l0.q"]["kernel"]
assert "q4_0" in d["l0.q"]["shape"], d["l0.q"]["shape"]
' "$T/prof-q4"
    # training: every op of train_run's forward (with the loss) and backward, AdamW per thread
    refuses prof_train 0 'optimizer +[0-9.]+ ms per step' "$CKE" profile "$S" --train --data tests/data/tinystories_ppl.txt --steps 2 --batch 2 --seq 32 -o "$T/prof-train" --quick -t 2
    check prof_train_json python3 -c '
import json, os, sys
p = json.load(open(sys.argv[1] + "/profile.json")); json.load(open(sys.argv[1] + "/trace.json"))
assert p["run"]["kind"] == "train" and p["model"]["name"] and p["run"]["steps"] == 2
m = {x["mode"]: x for x in p["modes"]}
assert set(m) == {"train_forward", "train_backward", "optimizer"}, m.keys()
nodes = [n["out"] for n in json.load(open(os.path.join(p["model"]["dir"], "ir.json")))["nodes"]]
for name in ("train_forward", "train_backward"):
    names = {r["name"] for r in m[name]["ops"]}
    assert not [n for n in nodes if n not in names], (name, [n for n in nodes if n not in names][:5])
    assert m[name]["calls"] == 2 and m[name]["tokens"] == 2 * 64 and m[name]["ops_s"] >= 0.8 * m[name]["wall_s"], m[name]
f = {r["name"]: r for r in m["train_forward"]["ops"]}
b = {r["name"]: r for r in m["train_backward"]["ops"]}
R = 2 * 32
assert f["l0.q"]["flops"] == 2 * R * 2 * 64 * 64 and f["l0.q"]["bytes_weights"] == 2 * 64 * 64 * 4, f["l0.q"]
assert b["l0.q"]["flops"] == 2 * f["l0.q"]["flops"] and b["l0.q"]["bytes_weights"] == 3 * f["l0.q"]["bytes_weights"], b["l0.q"]
assert f["loss"]["op"] == "xent" and "bwd" in b["l1.attn_in"]["kernel"], (f["loss"], b["l1.attn_in"])
assert [r["name"] for r in m["train_backward"]["ops"]][:2] == ["logits", "out_norm"]  # reverse order
a = m["optimizer"]["ops"][0]
assert a["name"] == "adamw" and len(a["thread_time_s"]) == 2 and all(t > 0 for t in a["thread_time_s"]), a
' "$T/prof-train"
    # mixed precision: the linear layers name the BF16 GEMM and its form, the run says bf16
    refuses prof_train_bf16 0 'bf16 mixed precision' "$CKE" profile "$S" --train --precision bf16 --data tests/data/tinystories_ppl.txt --steps 1 --batch 2 --seq 32 -o "$T/prof-train16" --quick -t 2
    check prof_train_bf16_json python3 -c '
import json, sys
p = json.load(open(sys.argv[1] + "/profile.json"))
assert p["run"]["kind"] == "train" and p["run"]["precision"] == "bf16", p["run"]
m = {x["mode"]: x for x in p["modes"]}
for mode in ("train_forward", "train_backward"):
    k = [r["kernel"] for r in m[mode]["ops"] if r["op"] == "linear"]
    assert k and all(" bf16 gemm (" in x for x in k), (mode, k)
    assert all(x.startswith(("ref bf16 gemm (double sums", "avx2 bf16 gemm (FMAs", "avx512 bf16 gemm (FMAs", "avx512 bf16 gemm (vdpbf16ps")) for x in k), k
' "$T/prof-train16"
    refuses prof_train_precision 2 'precision fp16: fp32 or bf16' "$CKE" profile "$S" --train --precision fp16 --data tests/data/tinystories_ppl.txt
    refuses prof_precision_infer 2 'precision is for --train' "$CKE" profile "$S" -p "Once" --precision bf16
    refuses prof_ctx_overflow 1 'exceed the context' "$CKE" profile "$S" -p "Once" -n 100000 -o "$T/prof-big" --quick
fi
