# --kv-type f16|f32|q8_0: the KV cache's element type (f16 by default), taken by every command that
# compiles a model; recorded in cke-model.txt (cke inspect), sized in the memory map, a separate
# variant in the compile cache; a compiled directory of another type is refused.

# bad values: named, exit 2, before anything is loaded
for c in run chat compile serve profile perplexity; do
    refuses "kv_bad_$c" 2 "cke $c: --kv-type: q3 is not a KV cache type \(f16, f32, q8_0\)" \
        "$CKE" "$c" "$T/no-model" --kv-type q3 -o "$T/x" -p hi "$T/no-text"
done
refuses kv_bad_bench 2 'cke bench: --kv-type: q3 is not a KV cache type \(f16, f32, q8_0\)' "$CKE" bench --kv-type q3
refuses kv_missing_value 2 'cke run: --kv-type needs a value' "$CKE" run "$T/no-model" --kv-type
refuses kv_empty_value 2 'is not a KV cache type' "$CKE" compile "$T/no-model" -o "$T/x" --kv-type ''
check kv_help_run sh -c "'$CKE' run --help | grep -q -- '--kv-type'"
check kv_help_compile sh -c "'$CKE' compile --help | grep -q -- '--kv-type f16|f32|q8_0'"

if have_models; then
    S=$CKE_MODELS/stories260K
    ok kv_compile_f16 "$CKE" compile "$S/stories260K.gguf" -o "$T/kv16" --ctx 256
    ok kv_compile_f32 "$CKE" compile "$S/stories260K.gguf" -o "$T/kv32" --ctx 256 --kv-type f32
    check kv_manifest_f16 grep -qx 'kv_type f16' "$T/kv16/cke-model.txt"
    check kv_manifest_f32 grep -qx 'kv_type f32' "$T/kv32/cke-model.txt"
    refuses kv_inspect_f16 0 '^kv cache: +f16, ctx 256' "$CKE" inspect "$T/kv16"
    check kv_model_c grep -q 'kt->attn_fwd_f16((out)' "$T/kv16/model.c"
    # the KV region halves: 5 layers x 256 positions x 32 x K,V x 2 bytes (f32: 4)
    check kv_map_f16 grep -q 'kv cache        163840 bytes .* x 32 f16$' "$T/kv16/memory_map.txt"
    check kv_map_f32 grep -q 'kv cache        327680 bytes .* x 32 f32$' "$T/kv32/memory_map.txt"
    # f16 vs f32 greedy: stories260K's 200-token text does not change (the published reference's
    # comparison is tests/compiler's stories260K_*_greedy256, on both caches)
    "$CKE" run "$T/kv16" -p "Once upon a time" -n 200 --temp 0 >"$T/kv16.txt" 2>/dev/null
    "$CKE" run "$T/kv32" -p "Once upon a time" -n 200 --temp 0 >"$T/kv32.txt" 2>/dev/null
    check kv_greedy_f16_eq_f32 sh -c "[ -s '$T/kv16.txt' ] && cmp -s '$T/kv16.txt' '$T/kv32.txt'"
    # a compiled directory's type is fixed: another one asked for is refused, the same one runs
    refuses kv_dir_mismatch 1 'compiled with a f16 KV cache, not f32: compile it again with --kv-type f32' \
        "$CKE" run "$T/kv16" --kv-type f32 -p hi -n 1
    ok kv_dir_same "$CKE" run "$T/kv32" --kv-type f32 -p hi -n 1 --temp 0
    # the compile cache: f16 (default) and f32 are two variants of one entry, each recording its type
    ok kv_cache_f16 "$CKE" run "$S/stories260K.gguf" -p hi -n 2 --temp 0 --ctx 64
    ok kv_cache_f32 "$CKE" run "$S/stories260K.gguf" -p hi -n 2 --temp 0 --ctx 64 --kv-type f32
    check kv_cache_variants sh -c "grep -qx 'kv_type f16' '$CKE_CACHE'/stories260K.gguf-*/ctx-64/cke-model.txt &&
        grep -qx 'kv_type f32' '$CKE_CACHE'/stories260K.gguf-*/ctx-64-kv-f32/cke-model.txt"
    # perplexity on both caches: close (the cache's rounding), not a different model
    "$CKE" perplexity "$S/stories260K.gguf" "$S/reference_greedy_t0_256steps.txt" --ctx 64 >"$T/ppl16.txt" 2>/dev/null
    "$CKE" perplexity "$S/stories260K.gguf" "$S/reference_greedy_t0_256steps.txt" --ctx 64 --kv-type f32 \
        >"$T/ppl32.txt" 2>/dev/null
    check kv_ppl_close python3 -c '
import re, sys
a, b = (float(re.search(r"PPL = ([0-9.]+)", open(f).read()).group(1)) for f in sys.argv[1:])
assert abs(a - b) <= 1e-2 * b, (a, b)   # 2^-11 rounding of k/v: ~1e-4 relative measured
' "$T/ppl16.txt" "$T/ppl32.txt"
    # q8_0 needs whole 32-value blocks per head: stories260K's heads of 8 are refused by name
    refuses kv_q8_head_dim 1 'q8_0 needs a head_dim that is a multiple of 32 .* this model.s is 8: use f16' \
        "$CKE" compile "$S/stories260K.gguf" -o "$T/kvq8" --kv-type q8_0
    check kv_q8_nothing_left sh -c "[ ! -e '$T/kvq8' ]"
else
    echo "SKIP t_kv models (no stories260K)"
fi

# q8_0 on a model with heads of 32 (random weights, bench_quant's writer; a real vocabulary from
# the shared tokenizers): compiles, its KV region is 34/64 of f16's, and it generates
BQ=$PWD/$BUILD/bench_quant
TOKSRC=$CKE_MODELS/tokenizers/ggml-vocab-llama-spm.gguf
if [ -x "$BQ" ] && [ -f "$TOKSRC" ]; then
    ok kv_q8_make_model "$BQ" make-model "$T/hd32.gguf" 64 128 2 2 2 32000 "$TOKSRC"
    ok kv_q8_compile "$CKE" compile "$T/hd32.gguf" -o "$T/hd32-q8" --ctx 64 --kv-type q8_0
    ok kv_q8_compile_f16 "$CKE" compile "$T/hd32.gguf" -o "$T/hd32-f16" --ctx 64
    # 2 layers x 64 positions x 64 values, K and V: q8_0 2 blocks of 34 bytes per row, f16 128 bytes
    check kv_q8_map grep -q 'kv cache         17408 bytes .* x 64 q8_0$' "$T/hd32-q8/memory_map.txt"
    check kv_f16_map grep -q 'kv cache         32768 bytes .* x 64 f16$' "$T/hd32-f16/memory_map.txt"
    check kv_q8_model_c grep -q 'kt->attn_fwd_q8_0((out)' "$T/hd32-q8/model.c"
    ok kv_q8_run "$CKE" run "$T/hd32-q8" -p "Once upon a time" -n 40 --temp 0
    refuses kv_q8_inspect 0 '^kv cache: +q8_0, ctx 64' "$CKE" inspect "$T/hd32-q8"
    # decode_batch on a q8_0 cache: each slot's row quantized as decode quantizes it, so sequences
    # decoded together in slots = each alone (tests/compiler/batch_check.h; 1e-4 as for f32)
    if [ -x "$PWD/$BUILD/batch_decode" ]; then
        ok kv_q8_decode_batch "$PWD/$BUILD/batch_decode" --check "$T/hd32-q8" 1e-4
    fi
else
    echo "SKIP t_kv q8_0 (no $BQ or $TOKSRC)"
fi
