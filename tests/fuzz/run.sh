#!/usr/bin/env bash
# Builds the libFuzzer targets (clang -fsanitize=fuzzer,address,undefined, no recovery: the first
# sanitizer report aborts) into build-fuzz/ and, per target:
#   1. runs every file of tests/fuzz/regress/<target>/ once (crashing inputs found earlier, kept
#      as regression cases);
#   2. fuzzes for FUZZ_SECONDS (default 10) from the committed seeds of tests/fuzz/corpus/<target>/
#      plus small real files when present (copied into the writable build-fuzz/corpus_<target>),
#      with the libFuzzer dictionary tests/fuzz/<target>.dict when there is one.
# A target fails on a crash, leak, time-out or any sanitizer report ('runtime error', 'Sanitizer'
# in its log). Ends with "N passed, N failed". tests/run.sh runs it briefly (8 s per target).
#
# Each target names its sources in one header line of its .c file, globs relative to the repo
# root (src/util/status.c is always added), and optionally its extra libraries:
#   /* fuzz-src: src/formats/*.c src/tokenizer/*.c */
#   /* fuzz-libs: -lfoo */            (default: -lcjson -lpcre2-8 -lutf8proc -lm)
# Usage: tests/fuzz/run.sh [target...]   (a target is NAME of tests/fuzz/fuzz_NAME.c)
set -eu
cd "$(dirname "$0")/../.."
command -v clang >/dev/null || { echo "SKIP fuzz: clang not installed"; exit 0; }
SECS=${FUZZ_SECONDS:-10}
OUT=build-fuzz
mkdir -p "$OUT"
# objects: instrumented for the fuzzer (no libFuzzer main), built once per run and shared by the targets
CF="-Wno-comment -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -Iinclude -Isrc"
LF="-fsanitize=fuzzer,address,undefined"
OBJ=$OUT/obj
rm -rf "$OBJ"
mkdir -p "$OBJ"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
targets=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')}
fail=0
pass=0

# sources of a target: its fuzz-src line, globs expanded here (a glob matching nothing is an error)
sources() {
    local line g f n
    line=$(sed -n 's|^/\* fuzz-src: \(.*\) \*/$|\1|p' "$1" | head -1)
    [ -n "$line" ] || { echo "$1: no '/* fuzz-src: ... */' line" >&2; return 1; }
    echo src/util/status.c
    for g in $line; do
        n=0
        for f in $g; do [ -f "$f" ] && { echo "$f"; n=$((n + 1)); }; done
        [ $n -gt 0 ] || { echo "$1: fuzz-src glob '$g' matches no file" >&2; return 1; }
    done
}

# objects FILE...: compiles each file once into $OBJ, prints the object paths
objects() {
    local f o
    for f in "$@"; do
        o=$OBJ/$(echo "$f" | tr / _).o
        # shellcheck disable=SC2086
        [ -f "$o" ] || clang $CF -c "$f" -o "$o" || return 1
        echo "$o"
    done
}

# clean LOG: no sanitizer report in it
clean() { ! grep -q 'runtime error\|Sanitizer' "$1"; }

for t in $targets; do
    src=tests/fuzz/fuzz_$t.c
    echo "== fuzz_$t"
    if ! files=$(sources "$src"); then fail=$((fail + 1)); echo "FAIL fuzz_$t (sources)"; continue; fi
    libs=$(sed -n 's|^/\* fuzz-libs: \(.*\) \*/$|\1|p' "$src" | head -1)
    # shellcheck disable=SC2046,SC2086
    if ! objs=$(objects "$src" $(echo "$files" | sort -u) 2>"$OUT/fuzz_$t.build.log") ||
        ! clang $LF -o "$OUT/fuzz_$t" $objs ${libs:--lcjson -lpcre2-8 -lutf8proc -lm} 2>>"$OUT/fuzz_$t.build.log"; then
        tail -20 "$OUT/fuzz_$t.build.log"; fail=$((fail + 1)); echo "FAIL fuzz_$t (build)"; continue
    fi
    log=$OUT/fuzz_$t.log
    # 1. kept crashing inputs: each must now run clean
    reg=tests/fuzz/regress/$t
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        if ! "$OUT/fuzz_$t" -runs=1 "$reg"/* >"$log" 2>&1 || ! clean "$log"; then
            tail -30 "$log"; fail=$((fail + 1)); echo "FAIL fuzz_$t (a regression input of $reg)"; continue
        fi
        echo "   $(ls "$reg" | wc -l) regression inputs ran clean"
    fi
    # 2. fuzz from the seeds
    corpus=$OUT/corpus_$t
    mkdir -p "$corpus"
    [ -d "tests/fuzz/corpus/$t" ] && cp -f tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
    M=${CKE_MODELS:-../shared/models}
    case $t in
        gguf) [ -f "$M/stories260K/stories260K-F16.gguf" ] && head -c 4096 "$M/stories260K/stories260K-F16.gguf" > "$corpus/seed1" ;;
        safetensors) [ -f "$M/tiny-random-gpt2/model.safetensors" ] && head -c 8192 "$M/tiny-random-gpt2/model.safetensors" > "$corpus/seed1" ;;
        tokenizer) [ -f "$M/stories260K/tok512.bin" ] && { printf '\0'; cat "$M/stories260K/tok512.bin"; } > "$corpus/seed1"
                   printf '\003{"a":0,"b":1,"ab":2,"<|endoftext|>":3}\000#version\na b\n' > "$corpus/seed2" ;;
    esac
    dict=
    [ -f "tests/fuzz/$t.dict" ] && dict=-dict=tests/fuzz/$t.dict
    echo "   fuzzing ${SECS}s from $(ls "$corpus" | wc -l) seeds${dict:+ with tests/fuzz/$t.dict}"
    # shellcheck disable=SC2086
    if ! "$OUT/fuzz_$t" -max_total_time="$SECS" -max_len=65536 -timeout=10 -print_final_stats=0 $dict \
        -artifact_prefix="$OUT/fuzz_$t-" "$corpus" >"$log" 2>&1 || ! clean "$log"; then
        tail -30 "$log"; fail=$((fail + 1))
        echo "FAIL fuzz_$t (crashing input: $(ls -t "$OUT"/fuzz_"$t"-* 2>/dev/null | head -1); keep it in $reg/)"
    else
        grep -E '^#[0-9]+.*DONE' "$log" | tail -1 || true
        pass=$((pass + 1)); echo "PASS fuzz_$t"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
