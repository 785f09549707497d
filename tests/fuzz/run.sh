#!/usr/bin/env bash
# Builds the libFuzzer targets (clang -fsanitize=fuzzer,address,undefined) into build-fuzz/ and runs
# each for FUZZ_SECONDS (default 10) from a small seed corpus. tests/run.sh runs it briefly.
# Ends with "N passed, N failed" (one per target: a crash, leak or sanitizer report is a failure).
# Usage: tests/fuzz/run.sh [target...]   (targets: gguf safetensors, or any tests/fuzz/fuzz_*.c)
set -eu
cd "$(dirname "$0")/../.."
command -v clang >/dev/null || { echo "SKIP fuzz: clang not installed"; exit 0; }
SECS=${FUZZ_SECONDS:-10}
OUT=build-fuzz
mkdir -p "$OUT"
CF="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=fuzzer,address,undefined -Iinclude -Isrc"
SRC="src/util/status.c $(ls src/formats/*.c) $(ls src/tokenizer/*.c)"
targets=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')}
fail=0
pass=0
for t in $targets; do
    clang $CF -o "$OUT/fuzz_$t" "tests/fuzz/fuzz_$t.c" $SRC -lcjson -lpcre2-8 -lutf8proc -lm
    corpus="$OUT/corpus_$t"
    mkdir -p "$corpus"
    # seeds: small real files when present (CKE_MODELS, default ../shared/models)
    M=${CKE_MODELS:-../shared/models}
    case $t in
        gguf) [ -f "$M/stories260K/stories260K-F16.gguf" ] && head -c 4096 "$M/stories260K/stories260K-F16.gguf" > "$corpus/seed1" ;;
        safetensors) [ -f "$M/tiny-random-gpt2/model.safetensors" ] && head -c 8192 "$M/tiny-random-gpt2/model.safetensors" > "$corpus/seed1" ;;
        tokenizer) [ -f "$M/stories260K/tok512.bin" ] && { printf '\0'; cat "$M/stories260K/tok512.bin"; } > "$corpus/seed1"
                   printf '\003{"a":0,"b":1,"ab":2,"<|endoftext|>":3}\000#version\na b\n' > "$corpus/seed2" ;;
    esac
    echo "== fuzz_$t (${SECS}s)"
    if ! "$OUT/fuzz_$t" -max_total_time="$SECS" -max_len=65536 -print_final_stats=0 "$corpus" 2>"$OUT/fuzz_$t.log"; then
        tail -30 "$OUT/fuzz_$t.log"; fail=$((fail + 1)); echo "FAIL fuzz_$t"
    else
        grep -E '^#[0-9]+.*DONE' "$OUT/fuzz_$t.log" | tail -1 || true
        pass=$((pass + 1)); echo "PASS fuzz_$t"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
