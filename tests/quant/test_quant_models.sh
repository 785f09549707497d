#!/usr/bin/env bash
# Quantized models end to end: `cke quantize` in every format, compile, run, perplexity; GGUF
# written from a llama2.c checkpoint and a Hugging Face directory.
#   1. stories260K (dim 64, hidden 172: the K formats need rows of 256, so they fall back to
#      Q5_0/Q5_1/Q8_0 and ffn_down (rows of 172) to F16 -- the quantizer notes each fallback)
#   2. a random llama with dims that are multiples of 256 (bench_quant make-model), so every
#      K format really runs
# Each: perplexity on tests/data/tinystories_ppl.txt within a bound of the F32 model's.
# Prints PASS/FAIL lines and "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
M=${CKE_MODELS:-../shared/models}/stories260K
T=$(mktemp -d /tmp/cke-quant-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export CKE_CACHE="$T/cache"
TXT=tests/data/tinystories_ppl.txt
pass=0; fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
ppl() { "$B/cke" perplexity "$1" "$TXT" --ctx "$2" 2>"$T/err" | awk '/^Final estimate: PPL = / {print $5}'; }
# check NAME PPL BASE MAXRATIO
check() {
    if [ -z "$2" ]; then bad "$1: no perplexity ($(tail -2 "$T/err"))"; return; fi
    if awk -v p="$2" -v b="$3" -v r="$4" 'BEGIN { exit !(p <= b * r && p >= b / r) }'; then ok "$1 ppl $2 (f32 $3, bound x$4)"
    else bad "$1 ppl $2 vs f32 $3: beyond x$4"; fi
}
# ratio bounds of perplexity against F32: measured rises (report) with ~2x headroom
bound() {
    case $1 in
        F16) echo 1.002 ;; Q8_0) echo 1.01 ;; Q6_K) echo 1.02 ;; Q5_K|Q5_K_M|Q5_0|Q5_1) echo 1.06 ;;
        *) echo 1.25 ;;
    esac
}
TYPES="F16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q4_K_M Q5_K_M"

if [ -f "$M/stories260K.gguf" ]; then
    base=$(ppl "$M/stories260K.gguf" 128)
    [ -n "$base" ] && ok "stories260K f32 ppl $base" || bad "stories260K f32 perplexity"
    for t in $TYPES; do
        if ! "$B/cke" quantize "$M/stories260K.gguf" "$T/s-$t.gguf" "$t" 2>"$T/qerr"; then bad "quantize stories260K $t: $(tail -1 "$T/qerr")"; continue; fi
        check "stories260K $t" "$(ppl "$T/s-$t.gguf" 128)" "$base" "$(bound "$t")"
        rm -rf "$CKE_CACHE"
    done
else
    echo "SKIP stories260K ($M missing)"
fi

# random llama: dim 256, ffn 512, 2 layers, 4 heads / 2 kv heads, the stories260K vocabulary
mm_ok=0
if [ -f "$M/stories260K.gguf" ]; then
    if "$B/bench_quant" make-model "$T/r.gguf" 256 512 2 4 2 512 "$M/stories260K.gguf" 7 2>"$T/mmerr"; then mm_ok=1
    else bad "bench_quant make-model: $(tail -3 "$T/mmerr")"; fi
fi
if [ "$mm_ok" = 1 ]; then
    base=$(ppl "$T/r.gguf" 64)
    [ -n "$base" ] && ok "random llama f32 ppl $base" || bad "random llama f32 perplexity"
    for t in $TYPES; do
        if ! "$B/cke" quantize "$T/r.gguf" "$T/r-$t.gguf" "$t" 2>"$T/qerr"; then bad "quantize random $t"; continue; fi
        # the compiled model keeps the format: layout.json names it
        check "random-llama $t" "$(ppl "$T/r-$t.gguf" 64)" "$base" "$(bound "$t")"
        rm -rf "$CKE_CACHE"
    done
fi
# non-GGUF input (formats/model_export.c): a llama2.c checkpoint and a Hugging Face directory are
# written as GGUF in llama.cpp's conventions, tokenizer included
if [ -f "$M/stories260K.bin" ]; then
    base=$(ppl "$M/stories260K.bin" 128)
    if "$B/cke" quantize "$M/stories260K.bin" "$T/bin-f32.gguf" F32 2>"$T/qerr"; then
        got=$(ppl "$T/bin-f32.gguf" 128)
        [ -n "$base" ] && [ "$got" = "$base" ] && ok "stories260K.bin -> GGUF F32: same perplexity $got" ||
            bad "stories260K.bin -> GGUF F32: perplexity '$got' vs '$base'"
        a=$("$B/cke" tokenize "$T/bin-f32.gguf" "Once upon a time, Lily's 3 cats sat." 2>&1)
        b=$("$B/cke" tokenize "$M/stories260K.gguf" "Once upon a time, Lily's 3 cats sat." 2>&1)
        [ -n "$a" ] && [ "$a" = "$b" ] && ok "stories260K.bin -> GGUF: tokenizer metadata tokenizes as the original GGUF" ||
            bad "stories260K.bin -> GGUF tokenizer: '$a' vs '$b'"
    else bad "quantize stories260K.bin F32: $(tail -1 "$T/qerr")"; fi
    if "$B/cke" quantize "$M/stories260K.bin" "$T/bin-q8.gguf" Q8_0 2>"$T/qerr"; then
        check "stories260K.bin -> Q8_0" "$(ppl "$T/bin-q8.gguf" 128)" "$base" "$(bound Q8_0)"
    else bad "quantize stories260K.bin Q8_0: $(tail -1 "$T/qerr")"; fi
    rm -rf "$CKE_CACHE"
fi
G=${CKE_MODELS:-../shared/models}/tiny-random-gpt2
if [ -f "$G/tokenizer.json" ]; then
    if "$B/cke" quantize "$G" "$T/g2.gguf" Q8_0 2>"$T/qerr"; then
        probe="Hello world! It's 2024: caf$(printf '\xc3\xa9') 1234567 I've   spaces"
        a=$("$B/cke" tokenize "$T/g2.gguf" "$probe" 2>&1)
        b=$("$B/cke" tokenize "$G" "$probe" 2>&1)
        [ -n "$a" ] && [ "$a" = "$b" ] && ok "tiny-random-gpt2 HF -> GGUF Q8_0: same token ids" || bad "tiny-random-gpt2 ids: '$a' vs '$b'"
        "$B/cke" inspect "$T/g2.gguf" 2>&1 | grep -q "q8_0.*blk.0.attn_qkv.weight" && ok "tiny-random-gpt2 HF -> GGUF: fused attn_qkv in q8_0" ||
            bad "tiny-random-gpt2 HF -> GGUF: no q8_0 attn_qkv"
    else bad "quantize tiny-random-gpt2: $(tail -1 "$T/qerr")"; fi
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
