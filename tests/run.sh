#!/usr/bin/env bash
# The whole test suite: the README's test command, and what .ci/run runs.
#   1. installs what the tests need on a fresh Debian 12 (apt-get, only when missing)
#   2. builds everything with strict warnings
#   3. writes PyTorch fixtures with Debian's torch (/usr/bin/python3), no network
#   4. runs every op test on every ISA this CPU has, then the whole suite again under ASan+UBSan
# Ends with "N passed, N failed"; exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/.."

./tools/deps.sh --test || { echo "apt-get install failed"; echo "0 passed, 1 failed"; exit 1; }

JOBS=${JOBS:-2}
total_pass=0
total_fail=0
logdir=build/test-logs
mkdir -p "$logdir"

# run NAME CMD...: runs a test binary, adds its "N passed, N failed" line to the totals.
# A binary that crashes or prints no summary counts as one failure.
run() {
    local name=$1; shift
    local log="$logdir/$name.log"
    echo "== $name: $*"
    "$@" >"$log" 2>&1
    local rc=$?
    grep -E '^(FAIL|SKIP)' "$log" | head -50
    grep -E '^ +FAIL' "$log" | head -20
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "   $name: no summary (exit $rc); last lines:"; tail -20 "$log"
        total_fail=$((total_fail + 1)); return
    fi
    local p f
    p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; echo "   $name: exit $rc"; fi
    echo "   $line"
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
}

if ! make -j"$JOBS" all >"$logdir/build.log" 2>&1; then
    tail -40 "$logdir/build.log"; echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
if ! /usr/bin/python3 tests/torch/gen_fixtures.py build/fixtures.bin >"$logdir/fixtures.log" 2>&1; then
    tail -30 "$logdir/fixtures.log"; echo "fixture generation failed"; total_fail=$((total_fail + 1))
fi

run kernels ./build/test_kernels --fixtures build/fixtures.bin
run formats ./build/test_formats
run tokenizer ./build/test_tokenizer
run vocab ./build/test_vocab
run compiler ./build/test_compiler
# chat templates (Jinja subset on real templates) and `cke chat` end to end
run chat ./build/test_chat
# the public library (cke.h): sessions in threads, prefix reuse, callback, stops, bad input
run api ./build/test_api
# quantized models end to end (cke quantize -> compile -> perplexity), every format
run quant-models env BUILD=build ./tests/quant/test_quant_models.sh
# block formats bit for bit against gguf-py (an independent implementation; pip-installed, pinned)
run gguf-py env BUILD=build ./tests/quant/test_gguf_crosscheck.sh
run families ./build/test_families
run train ./build/test_train
# libFuzzer targets for the GGUF, safetensors and tokenizer loaders, briefly
# the command line on bad input, odd paths and real models (each case time-limited)
run cli env BUILD=build ./tests/cli/run.sh
# data-parallel training over Open MPI (mpirun -np 2 on this machine)
run dist env BUILD=build ./tests/dist/test_dist.sh
# two ranks on two "machines" (network namespaces joined by a veth pair, MPI over TCP between them)
run hosts env BUILD=build ./tests/dist/test_hosts.sh
# the embedded build of stories260K: host, aarch64 under qemu, quantized, Cortex-M compile-only
run embed env BUILD=build ./tests/embed/test_embed.sh
# aarch64 under qemu-user: the neon tables in the op harness, formats/tokenizer suites, and
# stories260K cross-compiled with cke compile --target and run by the aarch64 cke
run aarch64 env BUILD=build JOBS="$JOBS" ./tests/cross/test_aarch64.sh
run fuzz env FUZZ_SECONDS=${FUZZ_SECONDS:-8} ./tests/fuzz/run.sh

# The same suite under ASan+UBSan (smaller sweeps: sanitized code is ~10x slower).
if make -j"$JOBS" SAN=1 all >"$logdir/build-san.log" 2>&1; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run kernels-san ./build-san/test_kernels --quick --fixtures build/fixtures.bin
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run formats-san ./build-san/test_formats
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run tokenizer-san ./build-san/test_tokenizer
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run vocab-san ./build-san/test_vocab
    # compiled models link build-san's (sanitized) kernel library, so they are checked too
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run compiler-san ./build-san/test_compiler
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run chat-san ./build-san/test_chat
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run api-san ./build-san/test_api
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run quant-models-san env BUILD=build-san ./tests/quant/test_quant_models.sh
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run families-san ./build-san/test_families
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run train-san ./build-san/test_train
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run cli-san env BUILD=build-san ./tests/cli/run.sh
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run dist-san env BUILD=build-san ./tests/dist/test_dist.sh
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run hosts-san env BUILD=build-san ./tests/dist/test_hosts.sh
else
    tail -40 "$logdir/build-san.log"; echo "sanitizer build failed"; total_fail=$((total_fail + 1))
fi

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
