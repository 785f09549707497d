#!/usr/bin/env bash
# The embedded build of a model (`cke compile MODEL --embedded -o DIR`, src/codegen/codegen_embed.c):
#   - stories260K built for this machine with the host cc: its 256 greedy ids from BOS exactly the
#     published reference's, and its text (vocab.c) the published text; only the kernels its table
#     names are linked (gc-sections);
#   - the static RAM: model.o's .bss holds exactly the arena, scratch, KV cache and positions that
#     model.h and memory_map.txt state, the arena is the plan's (max of prefill's and decode's) and
#     the KV cache the plan's; the binary sizes are printed;
#   - built for aarch64 (aarch64-linux-gnu-gcc -static) and run under qemu-aarch64: the same ids and text;
#   - --weights blob: the same ids from weights.bin passed in; a truncated or foreign file refused;
#   - stories260K quantized to Q8_0 and Q4_0 (cke quantize): weights under 1 MiB, greedy text equal
#     to the regular cke model's on the same kernels (CKE_ISA=ref CKE_REPACK=0: the embedded build's
#     ref kernels and GGUF block layout);
#   - GPT-2 (no tokenizer), tiny Llama, F16 and Q4_K_M stories260K, a mixture of experts (f32 and
#     Q4_0 experts): greedy ids after a 42-token
#     prompt equal model.so's on the same kernels (examples/minimal_run.c, CKE_ISA=ref);
#   - Cortex-M7 (arm-none-eabi-gcc -ffreestanding -c, no run): the objects need nothing from libc
#     but memcpy/memset/memmove and math functions (and libgcc's __aeabi_ helpers);
#   - the f32 and Q4_0 programs built with ASan+UBSan run clean (every buffer is big enough);
#   - the API (api_check.c): errors for bad tokens, positions and context, rewinding exact;
#   - bad options refused with a message.
# Ends with "N passed, N failed". BUILD=build-san runs the sanitized cke.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
CKE=$PWD/$B/cke
M=${CKE_MODELS:-../shared/models}
S=$M/stories260K
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export CKE_CACHE=$T/cache
pass=0
fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
skip() { echo "SKIP $1"; }
check() { if [ "$2" = 1 ]; then ok "$1"; else bad "$1${3:+: $3}"; fi; }
have() { command -v "$1" >/dev/null 2>&1; }
to() { timeout 300 "$@"; }
# the value of a #define in DIR/model.h
hdef() { sed -n "s/^#define $2 \([0-9]*\)u\{0,1\}.*/\1/p" "$1/model.h"; }
CFLAGS_E=(-std=c11 -O2 -ffunction-sections -fdata-sections -Wl,--gc-sections)
# asan_run NAME DIR STEPS: DIR's program built with ASan+UBSan gives the ids of its plain build
asan_run() {
    local d=$2 got want rc
    if ! (cd "$d" && to cc -std=c11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -o model_asan ./*.c kernels/*.c -lm) 2>"$T/err"; then
        bad "$1 ASan build: $(tail -2 "$T/err")"
        return
    fi
    want=$(to "$d/model_main" -n "$3" 1)
    got=$(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 to "$d/model_asan" -n "$3" 1 2>"$T/asan")
    rc=$?
    check "$1_embedded_asan_ubsan_clean" "$([ "$rc" = 0 ] && [ "$got" = "$want" ] && echo 1)" "exit $rc: $(head -3 "$T/asan")"
}

# ---- bad options (no model needed: refused before loading anything)
refuse() { # NAME EXIT REGEX CMD...
    local name=$1 want=$2 re=$3
    shift 3
    local out rc
    out=$(to "$@" 2>&1)
    rc=$?
    if [ "$rc" = "$want" ] && echo "$out" | grep -Eq "$re"; then ok "$name"; else bad "$name: exit $rc, output: $(echo "$out" | head -3)"; fi
}
refuse weights_without_embedded 2 'cke compile: --weights const\|blob is for the embedded build: add --embedded' \
    "$CKE" compile "$S/stories260K.bin" --weights blob -o "$T/x"
refuse embedded_debug 2 'cke compile: --embedded has no debug build' "$CKE" compile "$S/stories260K.bin" --embedded --debug -o "$T/x"
refuse weights_unknown 2 'cke compile: --weights: flash is not const or blob' \
    "$CKE" compile "$S/stories260K.bin" --embedded --weights flash -o "$T/x"
refuse weights_missing_value 2 'cke compile: --weights' "$CKE" compile "$S/stories260K.bin" --embedded --weights

if [ ! -f "$S/stories260K.bin" ]; then
    skip "stories260K (no $S/stories260K.bin)"
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
    exit
fi
REF=$(cut -d: -f2 "$S/reference_greedy_t0_256steps.ids.txt" | xargs)

# ---- stories260K, f32 weights compiled in, host cc
D=$T/s
if ! to "$CKE" compile "$S/stories260K.bin" --embedded -o "$D" 2>"$T/err"; then
    bad "compile stories260K --embedded: $(tail -1 "$T/err")"
else
    ok compile_embedded
    for f in model.c model.h main.c Makefile weights.c memory_map.txt kernels/cke/kernels.h kernels/kdecl.h; do
        [ -f "$D/$f" ] || bad "embedded dir lacks $f"
    done
    [ ! -e "$D/weights.bin" ] && [ ! -e "$D/model.so" ] && ok no_weights_bin_or_so || bad "const build left weights.bin or model.so"
    # model.c itself: no allocation, file, mmap, stdio or OpenMP
    if grep -En '\b(malloc|calloc|realloc|free|fopen|open|mmap|printf|snprintf|fprintf|omp_[a-z_]+)\s*\(|#include <(stdio|stdlib|omp|unistd|fcntl)\.h>|sys/mman' "$D/model.c" | head -3 | grep -q .; then
        bad "model.c calls the C library beyond string.h: $(grep -En '\b(malloc|fopen|mmap|printf|snprintf|omp_)' "$D/model.c" | head -2)"
    else ok model_c_no_libc_calls; fi
    if (cd "$D" && to cc "${CFLAGS_E[@]}" -o model_main ./*.c kernels/*.c -lm) 2>"$T/err"; then
        got=$(to "$D/model_main" -n 256 1)
        check stories260K_embedded_greedy256_exact "$([ "$got" = "$REF" ] && echo 1)" "ids differ: $(echo "$got" | cut -c1-80)"
        # the text, from the vocabulary compiled in (vocab.c): the published file byte for byte
        to "$D/model_main" --text -n 256 1 >"$T/text.txt"
        cmp -s "$T/text.txt" "$S/reference_greedy_t0_256steps.txt" && ok stories260K_embedded_text_exact \
            || bad "stories260K_embedded_text_exact: $(head -c 80 "$T/text.txt")"
        # only the slots the model calls: no backward, no other table, no SIMD driver
        extra=$(nm "$D/model_main" | grep -E ' [Tt] cke_[a-z0-9_]*(_bwd_ref|_avx2|_avx512)$| cke_gemm_drive$| cke_ktable_avx| cke_softmax_fwd_ref$| cke_layernorm_fwd_ref$' | head -3)
        check kernels_gc_only_used "$([ -z "$extra" ] && nm "$D/model_main" | grep -q ' cke_rmsnorm_fwd_ref$' && echo 1)" "linked: $extra"
        echo "   host binary: $(size "$D/model_main" | tail -1 | awk '{print "text " $1 ", data " $2 ", bss " $3 ", total " $4 " bytes"}')"
    else
        bad "host build: $(tail -3 "$T/err")"
    fi
    # the program itself under ASan+UBSan: the static arena, scratch and KV cache are enough
    asan_run stories260K "$D" 256
    # the API on bad input, a full context, rewinding (tests/embed/api_check.c, under ASan+UBSan)
    if to cc -std=c11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -I"$D" tests/embed/api_check.c "$D/model.c" \
        "$D/weights.c" "$D"/kernels/*.c -lm -o "$T/api_check" 2>"$T/err"; then
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 to "$T/api_check" >"$T/api.txt" 2>&1 && ok "embedded_api ($(tail -1 "$T/api.txt"))" \
            || bad "embedded_api: $(grep -E '^FAIL|ERROR' "$T/api.txt" | head -3)"
    else
        bad "api_check build: $(tail -2 "$T/err")"
    fi
    # the plain command (no gc): still builds and links alone
    (cd "$D" && to cc -O2 -o model_plain ./*.c kernels/*.c -lm) 2>"$T/err" && ok plain_cc_command || bad "cc -O2 -o model_plain *.c kernels/*.c -lm: $(tail -2 "$T/err")"

    # ---- static RAM against the plan
    ram=$(hdef "$D" CKM_RAM_BYTES)
    arena=$(hdef "$D" CKM_ARENA_BYTES)
    scratch=$(hdef "$D" CKM_SCRATCH_BYTES)
    kv=$(hdef "$D" CKM_KV_BYTES)
    posb=$(hdef "$D" CKM_POS_BYTES)
    check ram_is_the_sum "$([ -n "$ram" ] && [ "$ram" = $((arena + scratch + kv + posb)) ] && echo 1)" "ram $ram"
    pa=$(sed -n 's/^prefill (T = [0-9]*): activations \([0-9]*\) bytes.*/\1/p' "$D/memory_map.txt")
    da=$(sed -n 's/^decode (T = [0-9]*): activations \([0-9]*\) bytes.*/\1/p' "$D/memory_map.txt")
    pkv=$(sed -n 's/^kv cache *\([0-9]*\) bytes.*/\1/p' "$D/memory_map.txt")
    want_arena=$((pa > da ? pa : da))
    check arena_and_kv_are_the_plans "$([ "$arena" = "$want_arena" ] && [ "$kv" = "$pkv" ] && echo 1)" \
        "model.h arena $arena kv $kv; plan prefill $pa decode $da kv $pkv"
    grep -q "static RAM  *$ram bytes" "$D/memory_map.txt" && ok memory_map_states_ram || bad "memory_map.txt does not state static RAM $ram"
    "$D/model_main" --sizes | grep -q "^static RAM $ram bytes: arena $arena, scratch $scratch, KV cache $kv" && ok sizes_printed \
        || bad "model_main --sizes: $("$D/model_main" --sizes | head -1)"
    # .bss of model.o: the four arrays plus the instance struct (< 256 bytes) and alignment
    cc -std=c11 -O2 -c "$D/model.c" -o "$T/model.o" -I"$D"
    bss=$(size -A "$T/model.o" | awk '$1 == ".bss" {print $2}')
    check bss_is_arena_plus_kv "$([ -n "$bss" ] && [ "$bss" -ge "$ram" ] && [ "$bss" -lt $((ram + 256)) ] && echo 1)" "bss $bss, stated $ram"
    echo "   static RAM: model.o .bss $bss bytes = arena $arena + scratch $scratch + KV $kv + positions $posb (+ $((bss - ram)) instance)"
    syms=$(nm -S -t d "$D/model_main" 2>/dev/null | awk '$4 == "ckm_arena" || $4 == "ckm_kv" || $4 == "ckm_scratch" {printf "%s=%d ", $4, $2}')
    check symbols_sized_as_stated "$(echo "$syms" | grep -q "ckm_arena=$arena " && echo "$syms" | grep -q "ckm_kv=$kv " && echo 1)" "$syms"

    # ---- aarch64, static, under qemu
    if have aarch64-linux-gnu-gcc && have qemu-aarch64; then
        if (cd "$D" && to aarch64-linux-gnu-gcc "${CFLAGS_E[@]}" -static -o model_a64 ./*.c kernels/*.c -lm) 2>"$T/err"; then
            got=$(to qemu-aarch64 "$D/model_a64" -n 256 1)
            check stories260K_embedded_aarch64_qemu_exact "$([ "$got" = "$REF" ] && echo 1)" "ids differ: $(echo "$got" | cut -c1-80)"
            to qemu-aarch64 "$D/model_a64" --text -n 256 1 >"$T/text64.txt"
            cmp -s "$T/text64.txt" "$S/reference_greedy_t0_256steps.txt" && ok stories260K_embedded_aarch64_text_exact \
                || bad "stories260K_embedded_aarch64_text_exact: $(head -c 80 "$T/text64.txt")"
            echo "   aarch64 static binary: $(stat -c %s "$D/model_a64") bytes ($(aarch64-linux-gnu-size "$D/model_a64" | tail -1 | awk '{print "text " $1 ", data " $2 ", bss " $3}'))"
            syms=$(aarch64-linux-gnu-nm -S -t d "$D/model_a64" | awk '$4 == "ckm_arena" || $4 == "ckm_kv" {printf "%s=%d ", $4, $2}')
            check aarch64_static_ram_as_stated "$(echo "$syms" | grep -q "ckm_arena=$arena " && echo "$syms" | grep -q "ckm_kv=$kv " && echo 1)" "$syms"
        else
            bad "aarch64 build: $(tail -3 "$T/err")"
        fi
    else
        skip "aarch64 (no aarch64-linux-gnu-gcc or qemu-aarch64)"
    fi
fi

# ---- --weights blob
D=$T/b
if to "$CKE" compile "$S/stories260K.bin" --embedded --weights blob -o "$D" 2>"$T/err" && [ -f "$D/weights.bin" ] && [ ! -e "$D/weights.c" ]; then
    if (cd "$D" && to cc "${CFLAGS_E[@]}" -o model_main ./*.c kernels/*.c -lm) 2>"$T/err"; then
        got=$(cd "$D" && to ./model_main -n 256 1)
        check blob_greedy256_exact "$([ "$got" = "$REF" ] && echo 1)" "ids differ"
        head -c 5000 "$D/weights.bin" >"$T/trunc.bin"
        refuse blob_truncated 1 'model_main: .*trunc.bin: the weights are not CKM_WEIGHTS_FILE_BYTES long' "$D/model_main" -w "$T/trunc.bin" 1
        cp "$D/weights.bin" "$T/bad.bin"
        printf 'XXXXXXXX' | dd of="$T/bad.bin" conv=notrunc status=none
        refuse blob_bad_magic 1 'not a cke weights file for this model' "$D/model_main" -w "$T/bad.bin" 1
        refuse blob_missing 1 'model_main: cannot read' "$D/model_main" -w "$T/none.bin" 1
        refuse main_bad_id 2 'model_main: 600 is not a token id in \[0, 512\)' "$D/model_main" 600
    else
        bad "blob build: $(tail -3 "$T/err")"
    fi
else
    bad "compile --weights blob: $(tail -1 "$T/err")"
fi

# ---- quantized: Q8_0 and Q4_0
for t in Q8_0 Q4_0; do
    q=$T/s-$t.gguf
    D=$T/q-$t
    if ! to "$CKE" quantize "$S/stories260K.gguf" "$q" $t 2>"$T/err"; then bad "quantize $t: $(tail -1 "$T/err")"; continue; fi
    if ! to "$CKE" compile "$q" --embedded -o "$D" 2>"$T/err"; then bad "compile $t --embedded: $(tail -1 "$T/err")"; continue; fi
    w=$(hdef "$D" CKM_WEIGHTS_BYTES)
    check "quant_${t}_weights_under_1MiB" "$([ -n "$w" ] && [ "$w" -lt 1048576 ] && echo 1)" "$w bytes"
    echo "   $t: weights $w bytes"
    if ! (cd "$D" && to cc "${CFLAGS_E[@]}" -o model_main ./*.c kernels/*.c -lm) 2>"$T/err"; then bad "$t build: $(tail -3 "$T/err")"; continue; fi
    ids=$(to "$D/model_main" -n 200 1)
    text=$(to "$D/model_main" --text -n 200 1)
    want=$(CKE_ISA=ref CKE_REPACK=0 to "$CKE" run "$q" -p "" --temp 0 -n 200 2>/dev/null)
    check "quant_${t}_greedy200_equals_cke_run" "$([ -n "$want" ] && [ "$text" = "$want" ] && echo 1)" \
        "embedded: $(echo "$text" | head -c 80) / cke run: $(echo "$want" | head -c 80)"
    [ $t = Q4_0 ] && asan_run "quant_$t" "$D" 200
    if [ $t = Q4_0 ] && have aarch64-linux-gnu-gcc && have qemu-aarch64; then
        (cd "$D" && to aarch64-linux-gnu-gcc "${CFLAGS_E[@]}" -static -o model_a64 ./*.c kernels/*.c -lm) 2>"$T/err" &&
            got=$(to qemu-aarch64 "$D/model_a64" -n 200 1)
        check "quant_${t}_aarch64_qemu_same_ids" "$([ "${got:-}" = "$ids" ] && echo 1)"
    fi
done

# ---- other families and formats against model.so on the same kernels: the regular compile
# (GGUF block layout: CKE_REPACK=0) run by examples/minimal_run.c (the ABI only) with CKE_ISA=ref,
# greedy ids after a 42-token prompt (two 32-row chunks of the embedded prefill, one of model.so's).
# GPT-2 (layernorm, GELU, learned positions, biases) without its tokenizer: no vocab.c, --text refused.
P="1 $(seq -s ' ' 10 50)"
# (under build-san the model.so links the sanitized kernels: minimal_run gets the same runtime)
SANF=()
[ "$(basename "$B")" = build-san ] && SANF=(-fsanitize=address,undefined)
if cc -O2 "${SANF[@]}" -Iinclude examples/minimal_run.c -ldl -o "$T/minimal_run" 2>"$T/err"; then
    mkdir -p "$T/gpt2"
    cp "$M/tiny-random-gpt2/config.json" "$M/tiny-random-gpt2/model.safetensors" "$T/gpt2/" 2>/dev/null
    to "$CKE" quantize "$S/stories260K.gguf" "$T/s-Q4_K_M.gguf" Q4_K_M 2>/dev/null
    # a mixture of experts (random Mixtral layout, 6 experts, 2 per token; stories260K's vocabulary), f32 and Q4_0
    to "$PWD/$B/bench_quant" make-model "$T/moe.gguf" 64 96 2 4 2 512 "$S/stories260K.gguf" 5 6 2 >/dev/null 2>&1
    to "$CKE" quantize "$T/moe.gguf" "$T/moe-Q4_0.gguf" Q4_0 2>/dev/null
    for mdl in "$T/gpt2" "$M/tiny-random-llama/llama-2-tiny-random.gguf" "$S/stories260K-F16.gguf" "$T/s-Q4_K_M.gguf" \
        "$T/moe.gguf" "$T/moe-Q4_0.gguf"; do
        n=$(basename "$mdl")
        [ -e "$mdl" ] || { skip "family $n (missing)"; continue; }
        if ! to "$CKE" compile "$mdl" --embedded -o "$T/x-$n" --ctx 128 2>"$T/err"; then bad "compile $n --embedded: $(tail -1 "$T/err")"; continue; fi
        if ! CKE_REPACK=0 to "$CKE" compile "$mdl" -o "$T/r-$n" --ctx 128 2>"$T/err"; then bad "compile $n: $(tail -1 "$T/err")"; continue; fi
        if ! (cd "$T/x-$n" && to cc "${CFLAGS_E[@]}" -o model_main ./*.c kernels/*.c -lm) 2>"$T/err"; then bad "$n build: $(tail -3 "$T/err")"; continue; fi
        # shellcheck disable=SC2086
        got=$(to "$T/x-$n/model_main" -n 30 $P)
        # shellcheck disable=SC2086
        # (no leak check for it: dlopen of an OpenMP model.so leaves 8 bytes of the loader's behind)
        want=$(ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" CKE_ISA=ref to "$T/minimal_run" "$T/r-$n" -n 30 $P)
        check "family_${n}_equals_model_so" "$([ -n "$want" ] && [ "$got" = "$want" ] && echo 1)" "embedded: $got / model.so: $want"
    done
    if [ -d "$T/x-gpt2" ]; then
        [ ! -e "$T/x-gpt2/vocab.c" ] && grep -q '^#define CKM_HAS_VOCAB 0' "$T/x-gpt2/model.h" && ok no_tokenizer_no_vocab || bad "gpt2 without a tokenizer has a vocab.c"
        refuse text_without_vocab 2 'model_main: --text: compiled without a tokenizer' "$T/x-gpt2/model_main" --text 1
    fi
else
    bad "cannot build examples/minimal_run.c: $(tail -2 "$T/err")"
fi

# ---- Cortex-M7, bare metal: compile only; what the objects need from outside them
cortex() { # NAME DIR
    local name=$1 d=$2 o=$T/cm-$1
    mkdir -p "$o"
    for f in "$d"/model.c "$d"/kernels/*.c; do
        arm-none-eabi-gcc -std=c11 -O2 -mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard -ffreestanding \
            -ffunction-sections -fdata-sections -I"$d" -c "$f" -o "$o/$(basename "$f" .c).o" 2>>"$T/cm.err" ||
            { bad "cortex-m7 $name: $f does not compile: $(tail -2 "$T/cm.err")"; return; }
    done
    arm-none-eabi-nm -u "$o"/*.o | awk 'NF == 2 {print $2}' | sort -u >"$o/undef"
    arm-none-eabi-nm --defined-only "$o"/*.o | awk 'NF == 3 {print $3}' | sort -u >"$o/def"
    local ext
    ext=$(comm -23 "$o/undef" "$o/def" | grep -v '^ckm_weights$')
    local allowed='^(memcpy|memset|memmove|__aeabi_[a-z0-9]+|(sqrt|exp|expm1|log|log1p|tanh|erf|erfc|pow|cos|sin|fabs|fmax|fmin|round|floor|ceil|ldexp)f?)$'
    local other
    other=$(echo "$ext" | grep -Ev "$allowed" | xargs)
    check "cortex_m7_${name}_no_libc_beyond_mem_math" "$([ -z "$other" ] && echo 1)" "needs: $other"
    echo "   cortex-m7 $name needs: $(echo "$ext" | xargs)"
}
if have arm-none-eabi-gcc; then
    [ -d "$T/s" ] && cortex f32 "$T/s"
    [ -d "$T/q-Q4_0" ] && cortex q4_0 "$T/q-Q4_0"
    [ -d "$T/x-gpt2" ] && cortex gpt2 "$T/x-gpt2"
    [ -d "$T/x-s-Q4_K_M.gguf" ] && cortex q4_k_m "$T/x-s-Q4_K_M.gguf"
else
    skip "cortex-m7 (no arm-none-eabi-gcc)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
