#!/usr/bin/env bash
# aarch64 under emulation (qemu-user): builds build-aarch64/ with the cross compiler, runs the op
# harness against the neon tables, the formats and tokenizer suites, and stories260K compiled by
# the x86 cke with --target aarch64-linux-gnu and run by the aarch64 cke:
#   - -cpu max (has the dot product): the neon_dot table, simd, grad and torch modes;
#   - -cpu cortex-a72 (armv8.0, no dot product): the plain neon path (dispatch must pick it);
#   - f32 stories260K: its published greedy text, exactly, for CKE_ISA=neon and neon_dot;
#   - Q8_0 / Q4_0 stories260K: the x86 cke's tokens where the summation order is the same
#     (x86 and aarch64 _ref: identical), and the SIMD levels' perplexity within 2e-3 of x86's
#     (NEON's 4-lane reductions and x86's 8/16-lane ones round differently: a near-tie in a
#     quantized model's logits may then pick the other token late in the text).
# Wall time: qemu is 10-50x slower than the host, so the harness runs --quick (its smaller sweep)
# and the plain-neon pass covers only what differs from neon_dot (the quantized dots) plus a few
# shared families as a smoke test. Prints "N passed, N failed"; a missing tool is a failure.
#   BUILD (host build folder, default build), JOBS (make -j, default 2), CKE_MODELS.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
XB=build-aarch64
export CKE_MODELS=${CKE_MODELS:-$(cd .. && pwd)/shared/models}
S="$CKE_MODELS/stories260K"
T=$(mktemp -d "${TMPDIR:-/tmp}/cke-aarch64.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v $tool >/dev/null || bad "$tool is not installed (tools/deps.sh --test)"
done
[ -x "$BUILD/cke" ] || bad "$BUILD/cke (the host cke) is not built"
[ "$fail" = 0 ] || finish
if ! make -j"${JOBS:-2}" CC=aarch64-linux-gnu-gcc BUILD=$XB $XB/test_kernels $XB/cke $XB/test_formats $XB/test_tokenizer \
    >"$T/build.log" 2>&1; then
    tail -30 "$T/build.log"; bad "cross build (make CC=aarch64-linux-gnu-gcc BUILD=$XB)"; finish
fi
ok "cross build"

# The cross toolchain's libc (libc6-arm64-cross) comes first: when Debian's multiarch libc6:arm64
# is also installed (for libcjson:arm64 etc.), its libc.so.6 must not be paired with the cross
# ld.so (a mismatched pair hangs in the first pthread_create).
qemu() { # qemu CPU CMD ARGS...
    local cpu=$1; shift
    timeout 300 qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$cpu" \
        -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib:/usr/lib/aarch64-linux-gnu -E CKE_MODELS="$CKE_MODELS" "$@"
}
# a test binary's own summary line, counted as one result
suite() { # NAME CPU BINARY ARGS...
    local name=$1 cpu=$2; shift 2
    qemu "$cpu" "$@" >"$T/$name.log" 2>&1
    local rc=$? line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$T/$name.log" | tail -1)
    if [ $rc = 0 ] && [ -n "$line" ]; then ok "$name ($line)"
    else bad "$name (exit $rc, ${line:-no summary})"; grep -E '^ *FAIL' "$T/$name.log" | head -10; tail -3 "$T/$name.log"; fi
}

# ---- dispatch: what each emulated CPU gets
qemu max $XB/cke isa >"$T/isa_max.txt" 2>&1
grep -qx 'neon_dot supported (active)' "$T/isa_max.txt" && ok "isa: -cpu max picks neon_dot" || { bad "isa -cpu max"; cat "$T/isa_max.txt"; }
qemu cortex-a72 $XB/cke isa >"$T/isa_a72.txt" 2>&1
grep -qx 'neon    supported (active)' "$T/isa_a72.txt" && grep -qx 'neon_dot not supported' "$T/isa_a72.txt" &&
    ok "isa: -cpu cortex-a72 picks neon (no dot product)" || { bad "isa -cpu cortex-a72"; cat "$T/isa_a72.txt"; }
qemu cortex-a72 -E CKE_ISA=neon_dot $XB/cke isa >"$T/isa_force.txt" 2>&1
[ $? = 1 ] && grep -q 'CKE_ISA names an unknown or unsupported level' "$T/isa_force.txt" &&
    ok "isa: CKE_ISA=neon_dot refused without the dot product" || bad "CKE_ISA=neon_dot on cortex-a72 not refused"
qemu max -E CKE_ISA=neon $XB/cke isa 2>&1 | grep -qx 'neon    supported (active)' && ok "isa: CKE_ISA=neon forced on a dot-product CPU" ||
    bad "CKE_ISA=neon on -cpu max"
qemu max -E CKE_ISA=avx2 $XB/cke isa >/dev/null 2>&1
[ $? = 1 ] && ok "isa: CKE_ISA=avx2 refused on aarch64" || bad "CKE_ISA=avx2 on aarch64 not refused"

# ---- the op harness against the neon tables
suite harness_simd_neon_dot max $XB/test_kernels --quick --mode simd --isa neon_dot
suite harness_grad max $XB/test_kernels --quick --mode grad
# PyTorch parity of ref, neon and neon_dot: the host suite's fixtures (written by tests/run.sh), or
# written here by the same generator
FX="$BUILD/fixtures.bin"
[ -s "$FX" ] || { FX="$T/fixtures.bin"; /usr/bin/python3 tests/torch/gen_fixtures.py "$FX" >"$T/fx.log" 2>&1 || { bad "fixtures"; tail -5 "$T/fx.log"; }; }
suite harness_torch max $XB/test_kernels --quick --mode torch --fixtures "$FX"
for op in quant_dot quant_linear quant_blocks gemm rmsnorm attn_decode; do
    suite "harness_simd_neon_a72_$op" cortex-a72 $XB/test_kernels --quick --mode simd --isa neon --op $op
done
# ---- formats and tokenizer suites
suite formats max $XB/test_formats
suite tokenizer max $XB/test_tokenizer

# ---- stories260K cross-compiled by the host cke, run by the aarch64 cke (which must not compile:
# CC=/bin/false would fail any attempt)
if [ ! -f "$S/stories260K.bin" ]; then
    bad "stories260K is missing from $CKE_MODELS"; finish
fi
run_a64() { # CPU DIR ISA OUT: greedy 256 tokens from BOS
    qemu "$1" -E CC=/bin/false -E CKE_ISA="$3" $XB/cke run "$2" -p "" -n 256 --temp 0 -t 1 >"$4" 2>"$4.err"
}
if "$BUILD/cke" compile "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -o "$T/f32" --target aarch64-linux-gnu >"$T/c.log" 2>&1 &&
    file "$T/f32/model.so" | grep -q 'ARM aarch64'; then
    ok "cke compile --target aarch64-linux-gnu (model.so is aarch64)"
else
    bad "cke compile --target aarch64-linux-gnu"; cat "$T/c.log"
fi
touch -d '2000-01-01' "$T/f32/model.so"
for isa in neon neon_dot; do
    run_a64 max "$T/f32" $isa "$T/f32_$isa.txt"
    cmp -s "$T/f32_$isa.txt" "$S/reference_greedy_t0_256steps.txt" && ok "stories260K f32 $isa: the reference greedy text, exactly" ||
        { bad "stories260K f32 $isa differs from the reference"; tail -3 "$T/f32_$isa.txt.err"; }
done
run_a64 cortex-a72 "$T/f32" neon "$T/f32_a72.txt"
cmp -s "$T/f32_a72.txt" "$S/reference_greedy_t0_256steps.txt" && ok "stories260K f32 on cortex-a72: the reference text" ||
    bad "stories260K f32 on cortex-a72"
[ "$(stat -c %Y "$T/f32/model.so")" = "$(date -d 2000-01-01 +%s)" ] && ok "the aarch64 cke ran the directory without recompiling" ||
    bad "model.so was rewritten"

"$BUILD/cke" run "$T/f32" -p hi -n 2 >"$T/host_run.txt" 2>&1
[ $? = 1 ] && grep -q 'was compiled for aarch64-linux-gnu (cke compile --target): run it there' "$T/host_run.txt" &&
    ok "the host cke refuses the aarch64 directory by name" || { bad "host cke on an aarch64 directory"; cat "$T/host_run.txt"; }

ppl() { grep -o 'PPL = [0-9.]*' "$1" | awk '{print $3}'; }
for q in Q8_0 Q4_0; do
    if ! "$BUILD/cke" quantize "$S/stories260K.gguf" "$T/$q.gguf" $q >"$T/q.log" 2>&1 ||
        ! "$BUILD/cke" compile "$T/$q.gguf" -o "$T/x_$q" >>"$T/q.log" 2>&1 ||
        ! CKE_REPACK=0 "$BUILD/cke" compile "$T/$q.gguf" -o "$T/g_$q" >>"$T/q.log" 2>&1 ||
        ! "$BUILD/cke" compile "$T/$q.gguf" -o "$T/a_$q" --target aarch64-linux-gnu >>"$T/q.log" 2>&1; then
        bad "$q: quantize / compile"; cat "$T/q.log"; continue
    fi
    # same summation order (the _ref on both machines, GGUF layout): the same token ids
    CKE_ISA=ref "$BUILD/cke" run "$T/g_$q" -p "" -n 256 --temp 0 -t 1 >"$T/xref_$q.txt" 2>/dev/null
    run_a64 max "$T/a_$q" ref "$T/aref_$q.txt"
    cmp -s "$T/xref_$q.txt" "$T/aref_$q.txt" && [ -s "$T/aref_$q.txt" ] && ok "stories260K $q: aarch64 ref = x86 ref, token for token" ||
        bad "stories260K $q: aarch64 ref differs from x86 ref"
    # the NEON dots are the _ref's integer sums and float steps: neon and neon_dot give one text
    run_a64 max "$T/a_$q" neon "$T/aneon_$q.txt"
    run_a64 max "$T/a_$q" neon_dot "$T/adot_$q.txt"
    cmp -s "$T/aneon_$q.txt" "$T/adot_$q.txt" && ok "stories260K $q: neon = neon_dot" || bad "stories260K $q: neon and neon_dot differ"
    if cmp -s "$T/adot_$q.txt" <("$BUILD/cke" run "$T/x_$q" -p "" -n 256 --temp 0 -t 1 2>/dev/null); then
        ok "stories260K $q: aarch64 neon_dot = x86 (default, repacked), token for token"
    else
        echo "     $q: neon_dot's greedy text differs from x86's (SIMD summation order): logits compared by perplexity"
    fi
    # logits with a tolerance: teacher-forced perplexity of the reference text
    "$BUILD/cke" perplexity "$T/x_$q" "$S/reference_greedy_t0_256steps.txt" >"$T/px.txt" 2>&1
    for isa in neon neon_dot; do
        qemu max -E CC=/bin/false -E CKE_ISA=$isa $XB/cke perplexity "$T/a_$q" "$S/reference_greedy_t0_256steps.txt" >"$T/pa.txt" 2>&1
        a=$(ppl "$T/pa.txt") x=$(ppl "$T/px.txt")
        if [ -n "$a" ] && [ -n "$x" ] && awk -v a="$a" -v x="$x" 'BEGIN { d = a - x; if (d < 0) d = -d; exit !(d <= 2e-3 * x) }'; then
            ok "stories260K $q $isa: perplexity $a vs x86 $x (within 2e-3)"
        else
            bad "stories260K $q $isa: perplexity ${a:-?} vs x86 ${x:-?}"
        fi
    done
done

# ---- bench: decode speed under emulation, best of 3 (emulated time only indicates instruction
# counts: qemu translates each guest instruction, and its NEON integer helpers cost more than its
# scalar ones; not a hardware speed)
bench() { # LABEL DIR
    for isa in ref neon neon_dot; do
        best=0
        for rep in 1 2 3; do
            run_a64 max "$2" $isa "$T/b.txt"
            r=$(grep -o 'generated [0-9]* tokens in [0-9.]* s ([0-9.]*' "$T/b.txt.err" | sed 's/.*(//')
            best=$(awk -v a="${r:-0}" -v b="$best" 'BEGIN { print (a > b ? a : b) }')
        done
        printf 'bench: qemu -cpu max, stories260K %s decode, %-8s %8.1f tok/s\n' "$1" $isa "$best"
    done
}
# per kernel: tests/cross/kbench.c against the kernel library, each table's time per call and its
# ratio to the _ref (same caveat: emulated)
if aarch64-linux-gnu-gcc -std=c11 -O2 -fopenmp -Wall -Wextra -Werror -Iinclude tests/cross/kbench.c $XB/libckekernels.a -lm \
    -o "$T/kbench" 2>"$T/kbench.log" && qemu max "$T/kbench" >"$T/kbench.txt" 2>&1; then
    ok "kbench ran"; sed 's/^bench /bench: qemu -cpu max, /' "$T/kbench.txt"
else
    bad "kbench"; cat "$T/kbench.log" "$T/kbench.txt" 2>/dev/null | tail -5
fi
bench f32 "$T/f32"
bench Q4_0 "$T/a_Q4_0"
bench Q8_0 "$T/a_Q8_0"
finish
