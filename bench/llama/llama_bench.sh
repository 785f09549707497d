#!/usr/bin/env bash
# cke vs llama.cpp, side by side on the same random-weight GGUF files (issue 17's ratio table).
#
#   bench/llama/llama_bench.sh [--update-docs] [--build-only]
#
# 1. builds llama.cpp's llama-bench and llama-quantize (CPU, native, Release) from the sources
#    vendored in llama-cpp-python's sdist, into $WORK (reused when present);
# 2. makes random-weight F32 GGUFs with `bench_quant make-model` and quantizes them with
#    llama-quantize (so both engines read the very same files);
# 3. measures, per format x threads x shape, prefill of a 512-token prompt (llama-bench pp512),
#    decode of 128 tokens from an empty context (tg128) and 128 tokens after a 512-token prompt
#    (tg128 at -d 512), with llama-bench and with `bench_quant llama-bench` (cke's compiled model);
# 4. prints the ratio table and writes it as markdown to $WORK/table.md; --update-docs replaces
#    the section of docs/PERFORMANCE.md between the llama-bench markers with it.
#
# Picks (environment):
#   SHAPES   "110m 1.1b"                      110m: dim 768, ffn 2048, 12 layers, 12 heads, 12 kv
#                                             1.1b: TinyLlama (2048/5632, 22 layers, 32 heads, 4 kv)
#                                             moe, dsv3: mixtures of experts (below)
#   FORMATS  "F32 F16 BF16 Q8_0 Q4_0 Q4_K_M"
#   THREADS  "1 2"
#   REPS     3                                repetitions per measurement; both sides report
#                                             their best (llama-bench's best sample)
#   PP TG DEPTH  512 128 512                  prompt length, decoded tokens, depth of the 3rd test
#   WORK     build/llama-bench                llama.cpp build, models, results
#   SDIST    (pip download)                   an already downloaded llama_cpp_python-$SDIST_VERSION.tar.gz
#   JOBS     1                                make -j for the llama.cpp build (runs under nice -n 19)
#   BUILD    build                            cke's build directory (needs cke and bench_quant)
#   KEEP_MODELS 0                             0: each format's compiled model and quantized GGUF
#                                             go after its rows (the F32 GGUFs stay); 1 keeps all
# Quick look: SHAPES=110m FORMATS="Q4_0 F32" THREADS=1 REPS=1 bench/llama/llama_bench.sh
# Not a test: timings only, noisy on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

SHAPES=${SHAPES:-110m 1.1b}
FORMATS=${FORMATS:-F32 F16 BF16 Q8_0 Q4_0 Q4_K_M}
THREADS=${THREADS:-1 2}
REPS=${REPS:-3}
PP=${PP:-512}
TG=${TG:-128}
DEPTH=${DEPTH:-512}
WORK=${WORK:-build/llama-bench}
JOBS=${JOBS:-1}
BUILD=${BUILD:-build}
KEEP_MODELS=${KEEP_MODELS:-0}
TOK=${CKE_MODELS:-../shared/models}/tokenizers/ggml-vocab-llama-spm.gguf
SDIST_VERSION=${SDIST_VERSION:-0.3.36}

UPDATE_DOCS=0
BUILD_ONLY=0
for a in "$@"; do
    case $a in
        --update-docs) UPDATE_DOCS=1 ;;
        --build-only) BUILD_ONLY=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "llama_bench.sh: unknown option $a (see --help)" >&2; exit 2 ;;
    esac
done

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LLAMA_BIN=$WORK/llama.cpp-build/bin

# shape -> bench_quant make-model's DIM FFN LAYERS HEADS KV_HEADS VOCAB; moe: OLMoE-1B-7B's
# routing (64 experts, 8 per token) at half its width and layers (dim 1024, experts of 512, 8
# layers: 0.8B parameters, 0.13B active per token), in llama.cpp's Mixtral layout; dsv3:
# DeepSeek-V2-Lite's attention at half width (16 heads of 64 + 32 rotated, kv latent 256, values 64)
# with DeepSeek-V3's routing (64 experts of 512, 6 per token + 2 shared, sigmoid), a dense first
# layer, 8 layers (make_hf_deepseek.py: DIM LAYERS HEADS KV_LORA NOPE ROPE V EXPERTS USED SHARED
# EXPERT_FFN DENSE_FFN VOCAB SEED)
shape_args() {
    case $1 in
        110m) echo 768 2048 12 12 12 32000 ;;
        1.1b) echo 2048 5632 22 32 4 32000 ;;
        moe) echo 1024 512 8 16 16 32000 ;;
        dsv3) echo 1024 8 16 256 64 32 64 64 6 2 512 2816 32000 1234 ;; # make_hf_deepseek.py's numbers
        *) echo "llama_bench.sh: unknown shape '$1' (110m, 1.1b, moe, dsv3)" >&2; return 1 ;;
    esac
}
# make-model's arguments after the tokenizer: SEED EXPERTS USED
shape_extra() { case $1 in moe) echo 1234 64 8 ;; esac; }

for shape in $SHAPES; do shape_args "$shape" >/dev/null; done

# --- 1. llama.cpp from llama-cpp-python's sdist -------------------------------------------------
sdist_sources() {
    local tgz=$WORK/llama_cpp_python-$SDIST_VERSION.tar.gz
    if [ ! -f "$tgz" ]; then
        if [ -n "${SDIST:-}" ]; then cp "$SDIST" "$tgz"
        else python3 -m pip download --no-binary :all: --no-deps -d "$WORK" \
                 "llama-cpp-python==$SDIST_VERSION"; fi
    fi
    if [ ! -d "$WORK/src/vendor/llama.cpp" ]; then
        rm -rf "$WORK/src" && mkdir -p "$WORK/src"
        tar xzf "$tgz" -C "$WORK/src" --strip-components=1
    fi
}

# The sdist has no .git: its CHANGELOG names the llama.cpp commit of this release.
llama_commit() {
    sed -n 's/.*update llama.cpp to ggml-org\/llama.cpp@\([0-9a-f]*\).*/\1/p' \
        "$WORK/src/CHANGELOG.md" | head -n 1
}

build_llama() {
    if [ -x "$LLAMA_BIN/llama-bench" ] && [ -x "$LLAMA_BIN/llama-quantize" ]; then return; fi
    sdist_sources
    local commit
    commit=$(llama_commit)
    echo "building llama.cpp ${commit:-?} (llama-cpp-python $SDIST_VERSION) in $WORK" >&2
    cmake -S "$WORK/src/vendor/llama.cpp" -B "$WORK/llama.cpp-build" \
        -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_COMMIT="${commit:-unknown}" \
        >"$WORK/cmake.log" 2>&1 || { echo "cmake failed: see $WORK/cmake.log" >&2; return 1; }
    nice -n 19 cmake --build "$WORK/llama.cpp-build" -j "$JOBS" \
        --target llama-bench llama-quantize >"$WORK/make.log" 2>&1 ||
        { echo "llama.cpp build failed: see $WORK/make.log" >&2; return 1; }
}

build_llama
[ "$BUILD_ONLY" = 1 ] && exit 0
for b in cke bench_quant; do
    [ -x "$BUILD/$b" ] || { echo "llama_bench.sh: no $BUILD/$b (make $BUILD/$b)" >&2; exit 1; }
done
[ -f "$TOK" ] || { echo "llama_bench.sh: no tokenizer $TOK (set CKE_MODELS)" >&2; exit 1; }
load_before=$(cut -d' ' -f1 /proc/loadavg)
case $load_before in 0.[0-4]*) ;; *)
    echo "llama_bench.sh: load average $load_before: other processes will be in the numbers" \
         "(two-thread rows most: a busy core stalls both engines' thread teams)" >&2 ;;
esac

# --- 2. the same GGUF files for both ------------------------------------------------------------
# prints the path of SHAPE's model in FORMAT, making it when missing
model_file() {
    local shape=$1 fmt=$2 d=$WORK/models/$1
    mkdir -p "$d"
    if [ ! -f "$d/F32.gguf" ] && [ "$shape" = dsv3 ]; then
        # DeepSeek-V3's layout (multi-head latent attention, a dense first layer, sigmoid-routed experts
        # with 2 shared ones): an HF checkpoint cke exports to GGUF deepseek2, the vocabulary beside it
        # shellcheck disable=SC2046
        /usr/bin/python3 bench/llama/make_hf_deepseek.py "$d/hf" $(shape_args dsv3) >&2 # numpy: with python3-torch
        ln -sfn "$(cd "$(dirname "$TOK")" && pwd)/$(basename "$TOK")" "$d/hf/tokenizer.gguf"
        "$BUILD/cke" quantize "$d/hf" "$d/F32.gguf.tmp" F32 >&2
        mv "$d/F32.gguf.tmp" "$d/F32.gguf"
        rm -rf "$d/hf"
    fi
    if [ ! -f "$d/F32.gguf" ]; then
        local args
        args=$(shape_args "$shape")
        # shellcheck disable=SC2086,SC2046 # six numbers, and the MoE shape's three more
        "$BUILD/bench_quant" make-model "$d/F32.gguf.tmp" $args "$TOK" $(shape_extra "$shape") >&2
        mv "$d/F32.gguf.tmp" "$d/F32.gguf"
    fi
    if [ "$fmt" != F32 ] && [ ! -f "$d/$fmt.gguf" ]; then
        "$LLAMA_BIN/llama-quantize" "$d/F32.gguf" "$d/$fmt.gguf.tmp" "$fmt" >"$d/$fmt.quantize.log" 2>&1 ||
            { echo "llama-quantize $fmt failed: see $d/$fmt.quantize.log" >&2; return 1; }
        mv "$d/$fmt.gguf.tmp" "$d/$fmt.gguf"
    fi
    echo "$d/$fmt.gguf"
}

# --- 3. measurements: lines "pp|tg DEPTH tok/s" from each engine --------------------------------
# decode at depth (-d, --n-depth) came to llama-bench in 2025: older ones leave that column empty
has_depth=0
case $("$LLAMA_BIN/llama-bench" --help 2>&1) in *--n-depth*) has_depth=1 ;; esac

run_llama() { # GGUF THREADS
    local out=$WORK/llama.jsonl
    "$LLAMA_BIN/llama-bench" -m "$1" -t "$2" -r "$REPS" -p "$PP" -n "$TG" -o jsonl >"$out" 2>"$WORK/llama.err"
    if [ "$has_depth" = 1 ] && [ "$DEPTH" -gt 0 ]; then
        "$LLAMA_BIN/llama-bench" -m "$1" -t "$2" -r "$REPS" -p 0 -n "$TG" -d "$DEPTH" -o jsonl \
            >>"$out" 2>>"$WORK/llama.err"
    fi
    python3 bench/llama/table.py llama-jsonl "$out"
}

run_cke() { # COMPILED_DIR THREADS
    "$BUILD/bench_quant" llama-bench "$1" "$2" "$PP" "$TG" "$DEPTH" "$REPS"
}

RESULTS=$WORK/results.txt
: >"$RESULTS"
ctx=$PP
[ $((DEPTH + TG)) -gt "$ctx" ] && ctx=$((DEPTH + TG))
for shape in $SHAPES; do
    for fmt in $FORMATS; do
        gguf=$(model_file "$shape" "$fmt")
        cdir=$WORK/models/$shape/$fmt.cke
        if [ ! -f "$cdir/model.so" ] || [ "$BUILD/cke" -nt "$cdir/model.so" ]; then
            rm -rf "$cdir"
            "$BUILD/cke" compile "$gguf" -o "$cdir" --ctx "$ctx" --prefill-chunk "$PP" >/dev/null
        fi
        for nth in $THREADS; do
            echo "== $shape $fmt, $nth thread(s)" >&2
            run_cke "$cdir" "$nth" | sed "s/^/$shape $fmt $nth cke /" | tee -a "$RESULTS" >&2
            run_llama "$gguf" "$nth" | sed "s/^/$shape $fmt $nth llama /" | tee -a "$RESULTS" >&2
        done
        cp "$cdir/cke-model.txt" "$WORK/cke-model.txt"
        # a TinyLlama in F32 is 4.4 GB in each of the GGUF and weights.bin: keep only F32.gguf
        if [ "$KEEP_MODELS" != 1 ]; then
            rm -rf "$cdir"
            [ "$fmt" = F32 ] || rm -f "$gguf"
        fi
    done
done

# --- 4. the table --------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
{
    echo "# PP=$PP"
    echo "# TG=$TG"
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores of $cpu by \`bench/llama/llama_bench.sh\`"
    echo "(SHAPES=\"$SHAPES\" FORMATS=\"$FORMATS\" THREADS=\"$THREADS\" REPS=$REPS): cke $(git describe --always --dirty 2>/dev/null || echo '?')"
    echo "against llama.cpp $(sdist_sources >&2; llama_commit) (llama-cpp-python $SDIST_VERSION's sources; CPU, native, Release),"
    echo "both on the same random-weight GGUF files (bench_quant make-model, quantized by llama-quantize)."
    echo "Best of $REPS repetitions on each side; llama-bench's defaults otherwise ($(python3 bench/llama/table.py llama-settings "$WORK/llama.jsonl"))."
    # settings in cke-model.txt beyond these (a KV cache type, say) are named too
    extra=$(grep -v -E '^(family|source|format|tokenizer|ctx|prefill_chunk|layout_hash) ' \
        "$WORK/cke-model.txt" | tr '\n' ' ' | sed 's/ $//') || true
    echo "cke: \`bench_quant llama-bench\` on the model that \`cke compile --ctx $ctx --prefill-chunk $PP\` makes${extra:+ ($extra)}."
    echo "Load average (1 min) before / after: $load_before / $(cut -d' ' -f1 /proc/loadavg): other processes"
    echo "running then are in these numbers."
} >"$RESULTS.meta"
echo
python3 bench/llama/table.py render "$RESULTS" "$WORK/table.md"
echo "markdown: $WORK/table.md"
if [ "$UPDATE_DOCS" = 1 ]; then
    python3 bench/llama/table.py update-docs "$WORK/table.md" docs/PERFORMANCE.md
    echo "docs/PERFORMANCE.md updated"
fi
