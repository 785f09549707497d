# decode_batch (ABI 5) in quantized formats: stories260K quantized, compiled, and the equivalence
# check of tests/compiler/batch_check.h (sequences decoded together in KV slots = each decoded
# alone; refusals) run by batch_decode --check. The repacked formats' batch rows go through
# gemm_tile (AVX-512) or dot_rows, decode's single row through gemv: both sum the same integer block dots, so 1e-4.
BD=$PWD/$BUILD/batch_decode
if have_models && [ -x "$BD" ]; then
    for qt in Q8_0 Q4_0 Q4_K; do
        ok "batch_quantize_$qt" "$CKE" quantize "$CKE_MODELS/stories260K/stories260K.gguf" "$T/batch-$qt.gguf" "$qt"
        ok "batch_compile_$qt" "$CKE" compile "$T/batch-$qt.gguf" -o "$T/batch-$qt" --ctx 64
        ok "batch_equals_alone_$qt" "$BD" --check "$T/batch-$qt" 1e-4
    done
    refuses batch_check_no_model 1 'not a cke model directory' "$BD" --check "$T/no-such" 1e-4
else
    echo "SKIP t_batch (no stories260K or no $BD)"
fi
