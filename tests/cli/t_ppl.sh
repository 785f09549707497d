# cke perplexity: batched scoring (prefill_all), llama.cpp's chunks, KL divergence, bad options.
PPL_TXT=tests/data/tinystories_ppl.txt
ok ppl_help "$CKE" perplexity --help
refuses ppl_ctx_word 2 'perplexity: --ctx: abc is not a context length' "$CKE" perplexity m.gguf "$PPL_TXT" --ctx abc
refuses ppl_ctx_one 2 'perplexity: -c: 1 is not a context length' "$CKE" perplexity m.gguf "$PPL_TXT" -c 1
refuses ppl_ctx_overflow 2 'perplexity: --ctx: 99999999999999999999 is not' "$CKE" perplexity m.gguf "$PPL_TXT" --ctx 99999999999999999999
refuses ppl_threads_zero 2 'perplexity: --threads: 0 is not a thread count' "$CKE" perplexity m.gguf "$PPL_TXT" --threads 0
refuses ppl_chunks_neg 2 'perplexity: --chunks: -3 is not a number of chunks' "$CKE" perplexity m.gguf "$PPL_TXT" --chunks -3
refuses ppl_unknown 2 'perplexity: unknown option --frob' "$CKE" perplexity m.gguf "$PPL_TXT" --frob
refuses ppl_no_value 2 'perplexity: --kl-base needs a value' "$CKE" perplexity m.gguf "$PPL_TXT" --kl-base
refuses ppl_no_file 1 'cannot read' "$CKE" perplexity m.gguf "$T/no-such.txt"

if have_models; then
    S=$CKE_MODELS/stories260K
    # the batched windows reproduce what token-by-token decoding gave (3.7733 over 1142 tokens)
    refuses ppl_sliding_value 0 '^Final estimate: PPL = 3\.773[0-9] \+/- 0\.[0-9]+' "$CKE" perplexity "$S/stories260K.gguf" "$PPL_TXT" --ctx 128
    refuses ppl_progress 0 '^\[1\][0-9.]+,\[2\][0-9.]+,.*\[18\][0-9.]+,' "$CKE" perplexity "$S/stories260K.gguf" "$PPL_TXT" --ctx 128
    refuses ppl_sliding_count 0 '1142 tokens scored in 18 windows' "$CKE" perplexity "$S/stories260K.gguf" "$PPL_TXT" -c 128 -t 1
    # llama.cpp's chunks: 1143 tokens (BOS + text) -> 8 chunks of 128, 63 scored in each
    refuses ppl_llama_chunks 0 '504 tokens scored in 8 windows' "$CKE" perplexity "$S/stories260K.gguf" "$PPL_TXT" --ctx 128 --llama-cpp
    refuses ppl_llama_limit 0 '126 tokens scored in 2 windows' "$CKE" perplexity -m "$S/stories260K.gguf" -f "$PPL_TXT" --ctx 128 --chunks 2
    refuses ppl_llama_short 1 'needs at least 2 x ctx = 2048 tokens' "$CKE" perplexity "$S/stories260K.gguf" "$PPL_TXT" --ctx 1024 --llama-cpp
    refuses ppl_ctx_past_model 2 'exceeds the model.s compiled context' "$CKE" perplexity "$S/stories260K.gguf" "$PPL_TXT" --ctx 100000
    # KL divergence: a model against itself is 0 with the same top token everywhere; F16 against F32 small
    refuses ppl_kl_self 0 'Mean KLD: 0 \+/- 0' "$CKE" perplexity "$S/stories260K.gguf" "$PPL_TXT" --kl-base "$S/stories260K.gguf"
    refuses ppl_kl_self_top 0 'Same top token: 100\.000 %' "$CKE" perplexity "$S/stories260K.gguf" "$PPL_TXT" --kl-base "$S/stories260K.gguf"
    kl=$("$CKE" perplexity "$S/stories260K-F16.gguf" "$PPL_TXT" --kl-base "$S/stories260K.gguf" 2>/dev/null | awk '/^Mean KLD/ {print $3}')
    check ppl_kl_f16 awk -v k="${kl:-x}" 'BEGIN { exit !(k != "x" && k > 0 && k < 1e-4) }'
    # a tokenizer larger than the model's vocabulary: its ids would read past the logits
    "$CKE" compile "$S/stories260K.gguf" -o "$T/ppl-small" >/dev/null 2>&1
    cp "$CKE_MODELS/tokenizers/ggml-vocab-llama-spm.gguf" "$T/ppl-small/tokenizer.gguf" 2>/dev/null
    refuses ppl_tok_past_vocab 1 'tokenizer has 32000 tokens but the model.s vocabulary only 512' "$CKE" perplexity "$T/ppl-small" "$PPL_TXT"
fi
