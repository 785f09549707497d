#!/usr/bin/env bash
# Rebuilds models/stories-cke, the model the README's quick start runs, from nothing but the text
# in this repository: a 512-token BPE vocabulary learned by `cke vocab` from data/stories.txt, then
# a fresh llama-family model (dim 96, 4 layers, 4 heads, ffn 256: 0.49M parameters) trained by
# `cke train` for 300 steps of 16 x 256 tokens (about a minute on 2 cores). Training is
# deterministic for a given seed and thread count, so this reproduces the committed files.
set -eu
cd "$(dirname "$0")/.."
make -s -j2 build/cke
work=$(mktemp -d)
./build/cke vocab data/stories.txt -o "$work/tokenizer.bin" --size 512
./build/cke train --init llama --tokenizer "$work/tokenizer.bin" --dim 96 --layers 4 --heads 4 --ffn 256 \
    --data data/stories.txt --out "$work/run" --batch 16 --seq 256 --steps 300 --lr 3e-3 --min-lr 3e-4 \
    --warmup 30 --val-frac 0.05 --eval-every 50 --threads 2 --seed 1
mkdir -p models/stories-cke
cp "$work/run/checkpoint/config.json" "$work/run/checkpoint/model.safetensors" "$work/run/checkpoint/tokenizer.bin" \
    models/stories-cke/
grep val_loss "$work/run/log.txt"
rm -rf "$work"
