#!/usr/bin/env bash
# Training throughput and peak memory, cke against PyTorch (Debian's torch), side by side in one
# run: same llama-style shapes (tied output), batch, sequence length, thread count, AdamW.
#   bench/bench_train.sh [--quick]
# cke trains through `cke train --init llama` on data/stories.txt tokenized with a 32000-token
# vocabulary (tokens are what matters for speed); PyTorch on random tokens of the same vocabulary.
set -eu
cd "$(dirname "$0")/.."
MODELS=${CKE_MODELS:-../shared/models}
VOCAB_FILE=$MODELS/tokenizers/ggml-vocab-llama-spm.gguf
THREADS=${THREADS:-2}
STEPS=${STEPS:-6}
[ "${1:-}" = "--quick" ] && STEPS=3
CKE=${CKE:-build/cke}
[ -x "$CKE" ] || make -s -j2 build/cke >/dev/null
[ -f "$VOCAB_FILE" ] || { echo "need $VOCAB_FILE (a 32000-token vocabulary)"; exit 1; }
DATA=$(mktemp -d)/text.txt
for i in 1 2 3 4 5 6 7 8; do cat data/stories.txt; done > "$DATA"

# name dim layers heads ffn batch seq
CONFIGS="15M:288:6:6:768:8:256 110M:768:12:12:2048:4:256"
printf '%-6s %6s %5s %4s | %12s %12s %7s | %12s %12s %7s\n' model batch seq thr "cke tok/s" "torch tok/s" ratio \
    "cke MiB" "torch MiB" ratio
for c in $CONFIGS; do
    IFS=: read -r name dim layers heads ffn batch seq <<<"$c"
    out=$(mktemp -d)
    cke_line=$( { /usr/bin/time -f "rss_kib %M" "$CKE" train --init llama --tokenizer "$VOCAB_FILE" \
        --dim "$dim" --layers "$layers" --heads "$heads" --ffn "$ffn" --data "$DATA" --out "$out" \
        --batch "$batch" --seq "$seq" --steps $((STEPS + 1)) --warmup 1 --eval-every 0 --val-frac 0.01 \
        --threads "$THREADS" --lr 1e-4 ; } 2>&1 | tr '\r' '\n' )
    # tokens/s from the median step time after the first step (log.txt "ms" fields): the first
    # step pays for first-touch page faults, and the median resists a shared machine's noise
    cke_tps=$(grep -E '^step [0-9]+ loss' "$out/log.txt" | tail -n +2 | awk '{print $NF}' | sort -n |
        awk -v bt=$((batch * seq)) '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.1f", bt / (m / 1000)}')
    cke_rss=$(echo "$cke_line" | grep -o 'rss_kib [0-9]*' | awk '{printf "%.1f", $2/1024}')
    t_line=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/bench_train_torch.py "$dim" "$layers" "$heads" "$ffn" 32000 \
        "$batch" "$seq" "$STEPS" "$THREADS")
    t_tps=$(echo "$t_line" | awk '{print $3}')
    t_rss=$(echo "$t_line" | awk '{print $5}')
    printf '%-6s %6s %5s %4s | %12.0f %12.0f %6.2fx | %12.0f %12.0f %6.2fx\n' "$name" "$batch" "$seq" "$THREADS" \
        "$cke_tps" "$t_tps" "$(echo "$cke_tps / $t_tps" | bc -l)" "$cke_rss" "$t_rss" "$(echo "$cke_rss / $t_rss" | bc -l)"
    rm -rf "$out"
done
