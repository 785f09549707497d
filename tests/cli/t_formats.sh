# Model files a user (or an attacker) can hand to cke: absurd hyperparameters, NaN/Inf, FIFOs,
# a tokenizer larger than the vocabulary (issue 15 items 1, 2, 10 and the "also" list).
# The GGUF cases use the inputs tests/fuzz/make_corpus.py makes from real files (kept under
# tests/fuzz/regress|corpus); the rest are crafted here from the real models.
R=tests/fuzz/regress
C=tests/fuzz/corpus

refuses fmt_gguf_head_count_0 1 "GGUF key 'gpt2.attention.head_count' = 0 is out of range \[1, 65536\]" \
    "$CKE" inspect $R/model_gguf/gpt2-head-count-0.gguf
refuses fmt_gguf_heads_2e32 1 "GGUF key 'llama.attention.head_count' = 4294967296 is out of range" \
    "$CKE" inspect $R/model_gguf/llama-heads-keylen-2e32.gguf
refuses fmt_gguf_nan_eps_compile 1 "'llama.attention.layer_norm_rms_epsilon' = nan: expected a finite number" \
    "$CKE" compile $C/model_gguf/stories260K-tiny-nan-eps.gguf -o "$T/nan_eps"
refuses fmt_gguf_theta_0 1 "'llama.rope.freq_base' = 0: expected a finite number > 0" \
    "$CKE" inspect $C/model_gguf/stories260K-tiny-theta-0.gguf
ok fmt_gguf_tiny_opens "$CKE" inspect $C/model_gguf/stories260K-tiny.gguf

mkdir -p "$T/hf2e32"
printf '{"model_type":"llama","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":4294967296,"head_dim":4294967296,"intermediate_size":16,"vocab_size":8}' >"$T/hf2e32/config.json"
refuses fmt_hf_heads_2e32 1 "config.json: num_attention_heads = 4294967296 is out of range" "$CKE" inspect "$T/hf2e32"
mkdir -p "$T/hfeps"
printf '{"model_type":"llama","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"vocab_size":8,"rms_norm_eps":-1e-6}' >"$T/hfeps/config.json"
refuses fmt_hf_eps_negative 1 "config.json: rms_norm_eps = -1e-06" "$CKE" inspect "$T/hfeps"

# item 10: FIFOs are refused at once, not read (the open used to wait for a writer forever)
mkfifo "$T/model.gguf"
refuses fmt_fifo_model 1 "model.gguf:? (is )?not a regular file \(a FIFO" "$CKE" inspect "$T/model.gguf"
mkdir -p "$T/hffifo"
printf '{"model_type":"llama","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"vocab_size":8}' >"$T/hffifo/config.json"
mkfifo "$T/hffifo/model.safetensors"
refuses fmt_fifo_safetensors 1 "model.safetensors: not a regular file \(a FIFO\)" "$CKE" inspect "$T/hffifo"
mkdir -p "$T/hffifo2"
mkfifo "$T/hffifo2/config.json"
refuses fmt_fifo_config 1 "config.json: not a regular file \(a FIFO\)" "$CKE" inspect "$T/hffifo2"

if have_models && command -v python3 >/dev/null; then
    S=$CKE_MODELS/stories260K
    # NaN / Inf weights: refused where compile reads them, naming the tensor
    python3 - "$S/stories260K.bin" "$T/nan.bin" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
struct.pack_into("<f", b, 28 + 4 * 100, float("nan"))  # token embedding row 1 (legacy header: 7 ints)
open(sys.argv[2], "wb").write(b)
PY
    cp "$S/tok512.bin" "$T/tokenizer.bin"
    refuses fmt_nan_weight_f32 1 "tensor 'tok_embd' has a NaN or Inf weight \(element 100\)" \
        "$CKE" compile "$T/nan.bin" -o "$T/nanw"
    python3 - "$S/stories260K-F16.gguf" "$T/inf16.gguf" <<'PY'
import struct, sys
sys.path.insert(0, "tests/fuzz")
from make_corpus import read_gguf
b = bytearray(open(sys.argv[1], "rb").read())
kvs, ts = read_gguf(sys.argv[1])
ne, dt, data = ts["blk.1.attn_q.weight"]
assert dt == 1, dt  # f16: kept as f16 in weights.bin, so the raw copy path is the one tested
off = len(b) - len(data) + 2 * 7
struct.pack_into("<H", b, off, 0x7c00)  # +Inf
open(sys.argv[2], "wb").write(b)
PY
    refuses fmt_inf_weight_f16 1 "tensor 'blk.1.attn_q.weight' has a NaN or Inf weight \(element 7\)" \
        "$CKE" compile "$T/inf16.gguf" -o "$T/infw"
    # a tokenizer with more tokens than the model's vocabulary (perplexity read logits past the end)
    python3 - "$S/tok512.bin" "$T/tok600.bin" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
extra = b"".join(struct.pack("<fi", -100.0, 5) + b"xtra%d" % (i % 10) for i in range(88))
open(sys.argv[2], "wb").write(b + extra)
PY
    refuses fmt_tokenizer_larger_than_vocab 1 "tokenizer .*tok600.bin has 600 tokens but the model .* has a vocabulary of 512" \
        "$CKE" compile "$S/stories260K.bin" -o "$T/tokbig" --tokenizer "$T/tok600.bin"
    ok fmt_compile_good_model "$CKE" compile "$S/stories260K.bin" -o "$T/good" --tokenizer "$S/tok512.bin"
fi

# GGUF rope_freqs (llama.cpp's per-pair divisors, Llama 3.1): the compiler divides the table by them
if have_models; then
    S=$CKE_MODELS/stories260K
    python3 tests/quant/gguf_rename.py "$S/stories260K.gguf" "$T/rf-one.gguf" rope_freqs.weight 1,1,1,1 --add
    python3 tests/quant/gguf_rename.py "$S/stories260K.gguf" "$T/rf-div.gguf" rope_freqs.weight 1,2,4,8 --add
    python3 tests/quant/gguf_rename.py "$S/stories260K.gguf" "$T/rf-zero.gguf" rope_freqs.weight 0,1,1,1 --add
    ppl() { "$CKE" perplexity "$1" tests/data/tinystories_ppl.txt --ctx 128 2>/dev/null | grep '^Final estimate'; }
    p_base=$(ppl "$S/stories260K.gguf")
    p_one=$(ppl "$T/rf-one.gguf")
    p_div=$(ppl "$T/rf-div.gguf")
    check rope_freqs_ones_same test -n "$p_one" -a "$p_one" = "$p_base"
    check rope_freqs_divisors_differ test -n "$p_div" -a "$p_div" != "$p_base"
    ok rope_freqs_compile "$CKE" compile "$T/rf-div.gguf" -o "$T/rf-div"
    check rope_freqs_table grep -q '1.0f, 0.0500000007f, 0.00249999994f, 0.000125000006f' "$T/rf-div/model.c"
    refuses rope_freqs_zero 1 'rope_freqs\[0\] = 0 is not a positive divisor' "$CKE" compile "$T/rf-zero.gguf" -o "$T/rf-zero"
fi

# Phi-3 to GGUF in llama.cpp's layout (fused attn_qkv, ffn_up of gate | up rows; LongRoPE as
# rope_factors_long / rope_factors_short and the original-context and attn_factor keys), read by
# gguf-py (llama.cpp's Python package, where the suite installed it) against its phi3 tensor list;
# a LongRoPE GGUF missing its short factors is refused by name.
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    for f in phi3 phi3_longrope; do
        /usr/bin/python3 tests/torch/ref_families.py "$T/$f" $f >"$T/$f.log" 2>&1
        ok "phi3_export_$f" "$CKE" quantize "$T/$f" "$T/$f.gguf" F32
        if [ -f "$BUILD/pydeps/gguf/__init__.py" ]; then
            check "phi3_gguf_py_reads_$f" env PYTHONPATH="$BUILD/pydeps" /usr/bin/python3 - "$T/$f.gguf" "$f" <<'PY'
import sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
names = {gguf.TENSOR_NAMES[t].format(bid=b) for t in gguf.MODEL_TENSORS[gguf.MODEL_ARCH.PHI3] for b in range(4)}
got = {t.name.rsplit(".", 1)[0]: t for t in r.tensors}
bad = [n for n in got if n not in names]
fused = "blk.0.attn_qkv" in got and "blk.0.attn_q" not in got and "blk.0.ffn_gate" not in got
F = int(r.fields["phi3.feed_forward_length"].parts[-1][0])
up2 = int(got["blk.0.ffn_up"].shape[1]) == 2 * F  # gguf-py shapes: fastest first
long = sys.argv[2] != "phi3_longrope" or ("rope_factors_long" in got and "rope_factors_short" in got and
                                          "phi3.rope.scaling.attn_factor" in r.fields and
                                          "phi3.rope.scaling.original_context_length" in r.fields)
print("unknown tensors:", bad, "fused:", fused, "ffn_up 2F:", up2, "longrope:", long)
sys.exit(0 if not bad and fused and up2 and long else 1)
PY
        fi
    done
    python3 tests/quant/gguf_rename.py "$T/phi3_longrope.gguf" "$T/lr-noshort.gguf" rope_factors_short.weight -
    refuses longrope_gguf_needs_both 1 "LongRoPE needs both rope_factors_long and rope_factors_short" \
        "$CKE" inspect "$T/lr-noshort.gguf"
fi
