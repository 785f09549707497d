# cke run / compile / inspect / parity / tokenize / vocab / bench: arguments, prompts, BOS,
# special tokens, stop strings, and what each kind of directory is taken for.
for c in run compile inspect parity tokenize vocab bench; do ok "help_$c" "$CKE" $c --help; done
refuses run_no_model 2 'no model given' "$CKE" run
refuses run_unknown_flag 2 'unknown option --frob' "$CKE" run x --frob
refuses run_missing_value 2 '^cke run: -p needs a value' "$CKE" run x -p
refuses run_temp_negative 2 'cke run: --temp: -1 is not a temperature' "$CKE" run x --temp -1
refuses run_temp_nan 2 'cke run: --temp: nan is not a temperature' "$CKE" run x --temp nan
refuses run_top_p_nan 2 'cke run: --top-p: nan is not a top-p' "$CKE" run x --top-p nan
refuses run_min_p_inf 2 'cke run: --min-p: inf is not a min-p' "$CKE" run x --min-p inf
refuses run_penalty_nan 2 'cke run: --repeat-penalty: NaN is not a repeat penalty' "$CKE" run x --repeat-penalty NaN
refuses run_n_overflow 2 'cke run: -n: 99999999999999999999 is not a token count' "$CKE" run x -n 99999999999999999999
refuses run_threads_zero 2 'cke run: -t: 0 is not a thread count' "$CKE" run x -t 0
refuses run_p_and_f 2 'not both' "$CKE" run x -p a -f b
refuses run_missing_model 1 'cannot open /nonexistent' "$CKE" run /nonexistent -p a
mkfifo "$T/fifo"
refuses run_fifo 1 'not a regular file' "$CKE" run "$T/fifo" -p a
refuses inspect_fifo 1 'not a regular file' "$CKE" inspect "$T/fifo"
mkdir -p "$T/empty"
refuses run_plain_dir 1 'is a directory but not a model' "$CKE" run "$T/empty"
refuses compile_ctx_nan 2 'cke compile: --ctx: nan is not a context length' "$CKE" compile x -o y --ctx nan
refuses parity_tol 2 'cke parity: --tol: -1 is not a tolerance' "$CKE" parity a b --tol -1

if have_models; then
    G=$CKE_MODELS/stories260K/stories260K.gguf
    # -n far beyond the context: generation stops when the context is full (was a heap overflow)
    refuses run_n_huge 0 'context of 24 tokens is full' "$CKE" run "$G" -p Once -n 4611686018427387901 --temp 0 -c 24
    refuses run_n_unlimited 0 'context of 24 tokens is full' "$CKE" run "$G" -p Once -n -1 --temp 0 -c 24
    # aliases, prompt from a file and from standard input: the same greedy text
    a=$("$CKE" run "$G" -p "Once upon a time" -n 12 --temp 0 2>/dev/null)
    echo "Once upon a time" | tr -d '\n' >"$T/prompt.txt"
    b=$("$CKE" run -m "$G" -f "$T/prompt.txt" --n-predict 12 --temp 0 -s 3 -t 1 2>/dev/null)
    c=$("$CKE" run "$G" -f - -n 12 --temp 0 2>/dev/null <"$T/prompt.txt")
    check run_prompt_file_same_text [ -n "$a" -a "$a" = "$b" -a "$a" = "$c" ]
    # BOS as the model says: stories260K adds it; the same file with add_bos_token=false does not
    python3 tests/tools/gguf_set.py "$G" "$T/nobos.gguf" tokenizer.ggml.add_bos_token=bool:false
    refuses run_bos_from_model 0 'prompt 3 tokens' "$CKE" run "$G" -p "Once upon" -n 1 --temp 0
    refuses run_no_bos_from_model 0 'prompt 2 tokens' "$CKE" run "$T/nobos.gguf" -p "Once upon" -n 1 --temp 0
    refuses run_bos_forced 0 'prompt 3 tokens' "$CKE" run "$T/nobos.gguf" -p "Once upon" -n 1 --temp 0 --bos
    refuses run_empty_prompt_bos 0 'prompt 1 tokens' "$CKE" run "$T/nobos.gguf" -n 3 --temp 0
    # special tokens written in the prompt are one token each (<s> is BOS here), unless --no-special
    refuses run_special_parsed 0 'prompt 3 tokens' "$CKE" run "$G" -p "<s>Once" -n 1 --temp 0
    refuses run_special_plain 0 'prompt ([4-9]|[0-9]{2,}) tokens' "$CKE" run "$G" -p "<s>Once" -n 1 --temp 0 --no-special
    # --stop: the output ends before the first stop string
    full=$("$CKE" run "$G" -p "Once upon a time" -n 40 --temp 0 2>/dev/null)
    cut=$("$CKE" run "$G" -p "Once upon a time" -n 40 --temp 0 --stop "Lily" 2>/dev/null)
    check run_stop_string [ "$cut" = "${full%%Lily*}" -a "$cut" != "$full" ]
    # directories: compiled, training output (checkpoint/), checkpoint, plain
    "$CKE" compile "$G" -o "$T/compiled" >/dev/null 2>&1
    refuses run_compiled_dir 0 'generated 4 tokens' "$CKE" run "$T/compiled" -p Once -n 4 --temp 0
    refuses inspect_compiled_dir 0 '^model: +.*stories260K\.gguf' "$CKE" inspect "$T/compiled"
    mkdir -p "$T/trainout/checkpoint"; echo '{}' >"$T/trainout/checkpoint/trainer.json"
    ln -s "$G" "$T/trainout/checkpoint/model.gguf"
    refuses run_train_out 0 'training output directory: running its checkpoint' "$CKE" run "$T/trainout" -p Once -n 2 --temp 0
    refuses inspect_checkpoint 0 'checkpoint: .*family: +llama|family: +llama' "$CKE" inspect "$T/trainout/checkpoint"
    mkdir -p "$T/badout/checkpoint.tmp"
    mkdir -p "$T/halfout/checkpoint"
    refuses run_train_out_incomplete 1 'checkpoint is incomplete' "$CKE" run "$T/halfout" -p Once
    rm -f "$T/compiled/model.so"
    refuses run_half_compiled 1 'unfinished compiled directory' "$CKE" run "$T/compiled" -p Once
fi

# every JSON artifact of a compiled directory parses with a real JSON parser
if have_models; then
    "$CKE" compile "$CKE_MODELS/stories260K/stories260K.gguf" -o "$T/json" >/dev/null 2>&1
    for j in ir.json layout.json; do
        check "json_parses_$j" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d' "$T/json/$j"
    done
fi
