#!/usr/bin/env bash
# Decode / prefill speed of the TinyLlama-1.1B shape (dim 2048, ffn 5632, 22 layers, 32 heads,
# 4 kv heads, vocab 32000; random weights) in F32, F16, Q8_0, Q4_0, Q4_K at 1 and 2 threads,
# each decode rate next to its memory roofline (bandwidth measured in the same run / weight
# bytes per token). Needs ~15 GB of disk in $CKE_BENCH_DIR (default /tmp/cke-bench-quant).
# LAYERS=N shrinks the model for a quick look. Not a test: numbers only.
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
D=${CKE_BENCH_DIR:-/tmp/cke-bench-quant}
L=${LAYERS:-22}
TOK=${CKE_MODELS:-../shared/models}/tokenizers/ggml-vocab-llama-spm.gguf
mkdir -p "$D"
[ -f "$D/f32.gguf" ] || "$B/bench_quant" make-model "$D/f32.gguf" 2048 5632 "$L" 32 4 32000 "$TOK"
for t in ${TYPES:-F32 F16 Q8_0 Q4_0 Q4_K}; do
    src="$D/f32.gguf"
    if [ "$t" != F32 ]; then
        [ -f "$D/$t.gguf" ] || "$B/cke" quantize "$D/f32.gguf" "$D/$t.gguf" "$t" 2>/dev/null
        src="$D/$t.gguf"
    fi
    [ -f "$D/$t/model.so" ] || "$B/cke" compile "$src" -o "$D/$t" --ctx 512 >/dev/null
    rm -f "$D/$t.gguf"
    for n in 1 2; do "$B/bench_quant" speed "$D/$t" "$n" "${DECODE:-8}" "${PREFILL:-64}"; done
    rm -rf "$D/$t"
done
