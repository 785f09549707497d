#!/usr/bin/env bash
# Tensor-parallel decode: `mpirun -np 2 cke run` (1 thread per rank) against one process with 1 and
# 2 threads, on a random-weight model of the llama2.c stories110M shape (dim 768, ffn 2048, 12
# layers, 12 heads, vocab 32000) in F32 and Q4_0. Prints prefill and decode tokens/s as cke run
# reports them (rank 0's), the best of REPS runs. SHAPE="2048 5632 22 32 4 32000": TinyLlama-1.1B.
# Not a test: numbers only, for a quiet machine.
#   REPS=3 N=64 TYPES="F32 Q4_0" CKE_BENCH_DIR=/tmp/cke-bench-tp bench/dist/tp_bench.sh
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
D=${CKE_BENCH_DIR:-/tmp/cke-bench-tp}
SHAPE=${SHAPE:-768 2048 12 12 12 32000}
TOK=${CKE_MODELS:-../shared/models}/tokenizers/ggml-vocab-llama-spm.gguf
export CKE_CACHE=$D/cache
MPI=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && MPI+=(--allow-run-as-root)
PROMPT="Once upon a time there was a little robot who lived in a big city full of lights and sounds and people"
mkdir -p "$D"
# shellcheck disable=SC2086 # SHAPE is a list of numbers
[ -f "$D/F32.gguf" ] || "$B/bench_quant" make-model "$D/F32.gguf" $SHAPE "$TOK"
# best "prompt ... (P tok/s); generated ... (G tok/s)" of REPS runs of the command
best() {
    local bp=0 bg=0 line p g
    for _ in $(seq "${REPS:-3}"); do
        line=$("$@" 2>&1 >/dev/null | grep '^cke: prompt' | tail -1)
        p=$(echo "$line" | sed -n 's/.*tokens in [0-9.]* s (\([0-9.]*\) tok\/s); generated.*/\1/p')
        g=$(echo "$line" | sed -n 's/.*generated .* (\([0-9.]*\) tok\/s).*/\1/p')
        bp=$(echo "$p $bp" | awk '{print ($1 > $2) ? $1 : $2}')
        bg=$(echo "$g $bg" | awk '{print ($1 > $2) ? $1 : $2}')
    done
    echo "$bp $bg"
}
printf "%-6s %-28s %14s %14s\n" type run "prefill tok/s" "decode tok/s"
for t in ${TYPES:-F32 Q4_0}; do
    [ "$t" = F32 ] || [ -f "$D/$t.gguf" ] || "$B/cke" quantize "$D/F32.gguf" "$D/$t.gguf" "$t" >/dev/null 2>&1
    ARGS=("$D/$t.gguf" -p "$PROMPT" -n "${N:-64}" --temp 0 --ctx 256)
    "$B/cke" run "${ARGS[@]}" -t 1 >/dev/null 2>&1                          # compile (whole model)
    "${MPI[@]}" -np 2 "$B/cke" run "${ARGS[@]}" -t 1 >/dev/null 2>&1         # compile (2 ranks)
    read -r p g < <(best "$B/cke" run "${ARGS[@]}" -t 1)
    printf "%-6s %-28s %14s %14s\n" "$t" "1 process, 1 thread" "$p" "$g"
    read -r p g < <(best "$B/cke" run "${ARGS[@]}" -t 2)
    printf "%-6s %-28s %14s %14s\n" "$t" "1 process, 2 threads" "$p" "$g"
    read -r p g < <(best "${MPI[@]}" -np 2 "$B/cke" run "${ARGS[@]}" -t 1)
    printf "%-6s %-28s %14s %14s\n" "$t" "mpirun -np 2, 1 thread each" "$p" "$g"
done
