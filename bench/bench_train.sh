#!/usr/bin/env bash
# Training throughput and peak memory, cke against PyTorch, side by side in one run: same
# llama-style shapes (tied output), batch, sequence length, thread count, AdamW.
#   bench/bench_train.sh [--quick]          SHAPES="15M 110M" THREADS=2 STEPS=6
# Rows per shape: cke fp32 and --precision bf16; Debian's torch (1.13) eager fp32; and, with
# TORCH2=PYTHON (a venv's python with PyPI's torch 2.x: python3 -m venv V && V/bin/pip install
# torch), torch 2.x eager fp32, torch.compile fp32, eager autocast bf16 and torch.compile bf16
# (the bf16 ones on the first shape only where the CPU has no bf16 multiply: TORCH_BF16 below).
# Every PyTorch runs with OMP_WAIT_POLICY=PASSIVE (its best on 2 threads here).
# cke trains through `cke train --init llama` (15M, 110M: a 32000-token vocabulary) or `--init
# gpt2` (124M: GPT-2 small, the 50257-token GPT-2 vocabulary) on data/stories.txt (tokens are what
# matters for speed); PyTorch the same family on random tokens of the same vocabulary.
# "% peak": model FLOPs per token (6 x matrix parameters + 6 x layers x seq x dim for causal
# attention) x tok/s over THREADS x PEAK_GFLOPS (the measured one-core FP32 FMA peak; 176 on
# an Emerald Rapids, 101 on a Zen 3 EPYC: docs/PERFORMANCE.md).
set -eu
cd "$(dirname "$0")/.."
MODELS=${CKE_MODELS:-../shared/models}
VOCAB_LLAMA=$MODELS/tokenizers/ggml-vocab-llama-spm.gguf
VOCAB_GPT2=$MODELS/tokenizers/ggml-vocab-gpt-2.gguf
THREADS=${THREADS:-2}
STEPS=${STEPS:-6}
PEAK_GFLOPS=${PEAK_GFLOPS:-176}
TORCH2=${TORCH2:-}
SHAPES=${SHAPES:-15M 110M 124M}
[ "${1:-}" = "--quick" ] && STEPS=3
# PyTorch's bf16 rows on every shape where the CPU multiplies bf16 (AVX512_BF16 or AMX), else on
# the first shape only: without them PyTorch emulates bf16 matmuls (40x slower than its fp32 at
# 15M on a Zen 3) and a 110M row would take hours. TORCH_BF16=all forces every shape.
TORCH_BF16=${TORCH_BF16:-$(grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo all || echo first)}
CKE=${CKE:-build/cke}
[ -x "$CKE" ] || make -s -j2 build/cke >/dev/null
for v in "$VOCAB_LLAMA" "$VOCAB_GPT2"; do [ -f "$v" ] || { echo "need $v"; exit 1; }; done
DATA=$(mktemp -d)/text.txt
for i in 1 2 3 4 5 6 7 8; do cat data/stories.txt; done > "$DATA"

# name: family dim layers heads ffn vocab batch seq
declare -A CFG=([15M]=llama:288:6:6:768:32000:8:256 [110M]=llama:768:12:12:2048:32000:4:256
                [124M]=gpt2:768:12:12:3072:50257:4:256)
printf '%-5s %-22s | %10s %9s %9s %7s\n' model config "tok/s" "vs cke" "peak MiB" "% peak"
for name in $SHAPES; do
    IFS=: read -r fam dim layers heads ffn vocab batch seq <<<"${CFG[$name]}"
    nmat=3 vocab_file=$VOCAB_LLAMA  # SwiGLU: gate, up, down
    [ "$fam" = gpt2 ] && nmat=2 vocab_file=$VOCAB_GPT2
    flops=$(echo "6 * ($layers * (4 * $dim * $dim + $nmat * $dim * $ffn) + $vocab * $dim) + 6 * $layers * $seq * $dim" | bc)
    base=""
    row() { # CONFIG TOK/S RSS_MIB
        [ -n "$base" ] || base=$2
        printf '%-5s %-22s | %10.0f %8.2fx %9.0f %6.1f%%\n' "$name" "$1" "$2" "$(echo "$2 / $base" | bc -l)" "$3" \
            "$(echo "100 * $2 * $flops / ($THREADS * $PEAK_GFLOPS * 10^9)" | bc -l)"
    }
    for prec in fp32 bf16; do
        out=$(mktemp -d)
        cke_line=$( { /usr/bin/time -f "rss_kib %M" "$CKE" train --init "$fam" --tokenizer "$vocab_file" \
            --dim "$dim" --layers "$layers" --heads "$heads" --ffn "$ffn" --data "$DATA" --out "$out" \
            --batch "$batch" --seq "$seq" --steps $((STEPS + 1)) --warmup 1 --eval-every 0 --val-frac 0.01 \
            --threads "$THREADS" --lr 1e-4 --precision "$prec" ; } 2>&1 | tr '\r' '\n' )
        # tokens/s from the median step time after the first step (log.txt "ms" fields): the first
        # step pays for first-touch page faults, and the median resists a shared machine's noise
        tps=$(grep -E '^step [0-9]+ loss' "$out/log.txt" | tail -n +2 | awk '{print $NF}' | sort -n |
            awk -v bt=$((batch * seq)) '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.1f", bt / (m / 1000)}')
        rss=$(echo "$cke_line" | grep -o 'rss_kib [0-9]*' | awk '{printf "%.1f", $2/1024}')
        row "cke $prec" "$tps" "$rss"
        rm -rf "$out"
    done
    torch_row() { # LABEL PYTHON MODE PREC
        local l
        l=$(OMP_WAIT_POLICY=PASSIVE "$2" bench/bench_train_torch.py "$dim" "$layers" "$heads" "$ffn" "$vocab" \
            "$batch" "$seq" "$STEPS" "$THREADS" "$3" "$4" "$fam" 2>/dev/null) || { printf '%-5s %-22s | failed\n' "$name" "$1"; return 0; }
        row "$1" "$(echo "$l" | awk '{print $3}')" "$(echo "$l" | awk '{print $5}')"
    }
    torch_row "torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') eager fp32" /usr/bin/python3 eager fp32
    if [ -n "$TORCH2" ]; then
        v=$("$TORCH2" -c 'import torch; print(torch.__version__.split("+")[0])')
        torch_row "torch $v eager fp32" "$TORCH2" eager fp32
        torch_row "torch $v compile fp32" "$TORCH2" compile fp32
        if [ "$TORCH_BF16" = all ] || [ "$name" = "${SHAPES%% *}" ]; then
            torch_row "torch $v eager bf16" "$TORCH2" eager bf16
            torch_row "torch $v compile bf16" "$TORCH2" compile bf16
        else
            printf '%-5s %-22s | skipped: no AVX512_BF16/AMX, PyTorch bf16 emulated (see the first shape)\n' "$name" "torch $v bf16"
        fi
    fi
done
