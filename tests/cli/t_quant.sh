# cke quantize: options, inputs that are not models, crafted tensor names, the fallback summary,
# requantizing, and llama.cpp's output-head types (Q6_K, tied embeddings too).
ok quant_help "$CKE" quantize --help
refuses quant_no_args 2 '^usage: cke quantize IN OUT.gguf TYPE' "$CKE" quantize
refuses quant_unknown_type 2 "unknown type 'Q3_X'" "$CKE" quantize a.gguf b.gguf Q3_X
refuses quant_extra_arg 2 'quantize: unexpected argument extra' "$CKE" quantize a.gguf b.gguf Q4_0 extra
refuses quant_unknown_opt 2 'quantize: unknown option --frob' "$CKE" quantize a.gguf b.gguf Q4_0 --frob
printf 'not a model at all, just some text\n' > "$T/q-text.gguf"
refuses quant_not_a_model 1 '^cke quantize: .*q-text.gguf' "$CKE" quantize "$T/q-text.gguf" "$T/q-out.gguf" Q4_0
check quant_not_a_model_no_output test ! -e "$T/q-out.gguf"

if have_models; then
    S=$CKE_MODELS/stories260K
    # issue 15 item 7: a tensor named blk.2147483647.* (overflowed the layer index) -- crafted now
    python3 tests/quant/gguf_rename.py "$S/stories260K.gguf" "$T/q-blkmax.gguf" blk.0.ffn_up.weight blk.2147483647.ffn_up.weight --copy
    refuses quant_layer_int_max 1 "blk.2147483647.ffn_up.weight' is beyond n_layers 5" "$CKE" quantize "$T/q-blkmax.gguf" "$T/q-o.gguf" Q4_K_M
    python3 tests/quant/gguf_rename.py "$S/stories260K.gguf" "$T/q-blkbig.gguf" blk.0.ffn_up.weight blk.99999999999999999999.ffn_up.weight
    refuses quant_layer_overflow 1 "^cke quantize: .*(l0.ffn_up|99999999999999999999)" "$CKE" quantize "$T/q-blkbig.gguf" "$T/q-o.gguf" Q4_K_M

    # fallbacks: one summary line, not one note per tensor
    out=$("$CKE" quantize "$S/stories260K.gguf" "$T/q-q4k.gguf" Q4_K 2>&1)
    check quant_fallback_summary grep -q 'cke quantize: 37 of 48 tensors fell back: 31 x q4_K -> q5_0 (rows of 64 not a multiple of 256), 1 x q6_K -> q8_0 (rows of 64 not a multiple of 256), 5 x q4_K -> f16 (rows of 172 not a multiple of 256)' <<<"$out"
    check quant_fallback_one_line test "$(grep -c 'fell back\|note:' <<<"$out")" = 1

    # an already quantized input: refused (naming its type) unless --allow-requantize; F16 is not quantized
    refuses quant_requantize 1 'q-q4k.gguf is already quantized \(32 of 48 tensors in block formats, mostly q5_0\).*--allow-requantize' \
        "$CKE" quantize "$T/q-q4k.gguf" "$T/q-re.gguf" Q4_0
    ok quant_requantize_allowed "$CKE" quantize "$T/q-q4k.gguf" "$T/q-re.gguf" Q4_0 --allow-requantize
    ok quant_dequantize_to_f32 "$CKE" quantize "$T/q-q4k.gguf" "$T/q-deq.gguf" F32
    ok quant_from_f16 "$CKE" quantize "$S/stories260K-F16.gguf" "$T/q-f16.gguf" Q8_0

    # llama.cpp's output head: Q6_K for the block formats below Q8_0 (Q8_0 where rows are not 256s)
    "$CKE" quantize "$S/stories260K.gguf" "$T/q-q40.gguf" Q4_0 >/dev/null 2>&1
    check quant_output_q8_fallback grep -Eq 'q8_0 +\[512, 64\].*output\.weight' <<<"$("$CKE" inspect "$T/q-q40.gguf" 2>&1)"
    check quant_embd_untied_base grep -Eq 'q4_0 +\[512, 64\].*token_embd\.weight' <<<"$("$CKE" inspect "$T/q-q40.gguf" 2>&1)"
    if "$(dirname "$CKE")/bench_quant" make-model "$T/q-rand.gguf" 256 512 1 4 2 512 "$S/stories260K.gguf" 3 >/dev/null 2>&1; then
        "$CKE" quantize "$T/q-rand.gguf" "$T/q-rand-q40.gguf" Q4_0 >/dev/null 2>&1
        check quant_output_q6k grep -Eq 'q6_K +\[512, 256\].*output\.weight' <<<"$("$CKE" inspect "$T/q-rand-q40.gguf" 2>&1)"
        "$CKE" quantize "$T/q-rand.gguf" "$T/q-rand-q80.gguf" Q8_0 >/dev/null 2>&1
        check quant_output_q8_stays grep -Eq 'q8_0 +\[512, 256\].*output\.weight' <<<"$("$CKE" inspect "$T/q-rand-q80.gguf" 2>&1)"
    else
        check quant_make_model false
    fi
    # issue 17: a tied output head stays in its block format (SmolLM2, Qwen, Gemma tie a Q8_0
    # token_embd to the output): weights.bin holds it once as q8_0r, the embedding dequantizes its
    # looked-up rows, and the model scores exactly as the same weights untied (same values, kernels)
    "$CKE" quantize "$S/stories260K.gguf" "$T/q-s8.gguf" Q8_0 >/dev/null 2>&1
    python3 tests/quant/gguf_rename.py "$T/q-s8.gguf" "$T/q-s8-tied.gguf" output.weight -
    check quant_tied_is_tied grep -q 'tied_output yes' <<<"$("$CKE" inspect "$T/q-s8-tied.gguf" 2>&1)"
    ok quant_tied_compile "$CKE" compile "$T/q-s8-tied.gguf" -o "$T/q-s8-tied"
    check quant_tied_embd_blocks grep -q 'cke_qembed_fwd(kt, x, tok, WQ(W_tok_embd), Q_tok_embd' "$T/q-s8-tied/model.c"
    check quant_tied_head_blocks grep -q 'cke_qlinear_fwd(kt, logits, out_norm, WQ(W_tok_embd), Q_tok_embd' "$T/q-s8-tied/model.c"
    check quant_tied_q8_0r grep -Eq 'W_tok_embd +0u /\* \[512,64\] q8_0r' "$T/q-s8-tied/model.c"
    # 512 x 64 as q8_0r is 34816 bytes: the whole of weights.bin is 0.31 MiB (0.43 with an f32 table)
    check quant_tied_small awk -v b="$(stat -c %s "$T/q-s8-tied/weights.bin")" 'BEGIN { exit !(b < 360000) }'
    p_untied=$("$CKE" perplexity "$T/q-s8.gguf" tests/data/tinystories_ppl.txt --ctx 128 2>/dev/null | grep "^Final estimate")
    p_tied=$("$CKE" perplexity "$T/q-s8-tied.gguf" tests/data/tinystories_ppl.txt --ctx 128 2>/dev/null | grep "^Final estimate")
    check quant_tied_same_ppl test -n "$p_tied" -a "$p_tied" = "$p_untied"
    # tied output (GPT-2): the token embedding gets the output head's type (Q6_K -> Q8_0 for rows of 32)
    G=$CKE_MODELS/tiny-random-gpt2
    if [ -f "$G/config.json" ]; then
        "$CKE" quantize "$G" "$T/q-g2.gguf" Q4_0 >/dev/null 2>&1
        check quant_tied_embd grep -Eq 'q8_0 +\[1000, 32\].*token_embd\.weight' <<<"$("$CKE" inspect "$T/q-g2.gguf" 2>&1)"
    fi
fi
