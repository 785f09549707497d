#!/usr/bin/env bash
# Continuous batching: aggregate decode tokens/s with 1, 2, 4, 8 rows per decode_batch step
# against single-sequence decode, on a random-weight model of the llama2.c stories110M shape
# (dim 768, ffn 2048, 12 layers, 12 heads, vocab 32000) in F32 and Q4_0, 1 thread by default.
# SHAPE="2048 5632 22 32 4 32000" gives the TinyLlama-1.1B shape. Not a test: numbers only.
#   THREADS=1 STEPS=32 TYPES="F32 Q4_0" CKE_BENCH_DIR=/tmp/cke-bench-batch bench/batch/batch.sh
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
D=${CKE_BENCH_DIR:-/tmp/cke-bench-batch}
SHAPE=${SHAPE:-768 2048 12 12 12 32000}
TOK=${CKE_MODELS:-../shared/models}/tokenizers/ggml-vocab-llama-spm.gguf
mkdir -p "$D"
# shellcheck disable=SC2086 # SHAPE is a list of numbers
[ -f "$D/f32.gguf" ] || "$B/bench_quant" make-model "$D/f32.gguf" $SHAPE "$TOK"
for t in ${TYPES:-F32 Q4_0}; do
    src="$D/f32.gguf"
    if [ "$t" != F32 ]; then
        [ -f "$D/$t.gguf" ] || "$B/cke" quantize "$D/f32.gguf" "$D/$t.gguf" "$t" 2>/dev/null
        src="$D/$t.gguf"
    fi
    [ -f "$D/$t/model.so" ] || "$B/cke" compile "$src" -o "$D/$t" --ctx 256 >/dev/null
    echo "== $t"
    "$B/batch_decode" "$D/$t" "${THREADS:-1}" "${STEPS:-32}" 1 2 4 8
done
