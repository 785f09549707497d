# cke train: flags, checkpoint state validation, resume checks, and every kill point of a
# checkpoint save (fault injection, CKE_FAULT_AT=NAME:N, src/train/trainer.h) resumed once to
# the same bytes as an uninterrupted run. Tiny models (a 1-layer --init llama), a few steps.

# flags: help on stdout, every numeric flag refuses NaN/Inf/overflow/out of range by name
refuses train_help 0 '^usage: cke train' sh -c "'$CKE' train --help 2>/dev/null"
refuses train_help_short 0 '^usage: cke train' sh -c "'$CKE' train -h 2>/dev/null"
refuses train_unknown_flag 2 'cke train: unknown option --frob' "$CKE" train --frob
refuses train_val_frac_nan 2 'cke train: --val-frac: nan is not a fraction' "$CKE" train --val-frac nan --data x --out y
for f in --batch --seq --steps --accum --warmup --eval-every --eval-batches --save-every --stop-after --threads --seed \
         --lr --min-lr --wd --clip --val-frac --dim --layers --heads --kv-heads --ffn; do
    for v in nan inf -1 99999999999999999999; do
        refuses "train_flag${f}_$v" 2 "cke train: $f: $v is not " "$CKE" train "$f" "$v" --data x --out y
    done
done
refuses train_flag_missing_value 2 'cke train: --lr needs a value' "$CKE" train --data x --out y --lr
refuses train_needs_out 2 'cke train: --out DIR is needed' "$CKE" train m --data x
refuses train_precision_bad 2 'cke train: --precision fp16: expected fp32 or bf16' "$CKE" train --precision fp16 --data x --out y

if have_models; then
    TOK=$CKE_MODELS/stories260K/tok512.bin
    DATA=$T/train_data.txt
    head -c 20000 data/stories.txt > "$DATA"
    TINY=(--init llama --tokenizer "$TOK" --dim 16 --layers 1 --heads 2 --ffn 32)
    RUN=(--data "$DATA" --steps 6 --batch 2 --seq 16 --save-every 2 --eval-every 3 --eval-batches 1 --threads 2 --warmup 2)
    W=$T/train
    mkdir -p "$W"

    # the reference: uninterrupted; validation loss shown from the start (item: not "val nan")
    out=$("$CKE" train "${TINY[@]}" "${RUN[@]}" --out "$W/ref" 2>&1); rc=$?
    check train_ref_run [ "$rc" = 0 ]
    check train_val_at_start sh -c 'echo "$1" | grep -q "at start [0-9]" && ! echo "$1" | grep -q "val nan"' _ "$out"
    REF=$W/ref/checkpoint/model.safetensors

    # a fresh model and a fine-tune write the same output directory shape
    "$CKE" train "$CKE_MODELS/stories260K/stories260K.gguf" "${RUN[@]}" --lr 2e-4 --out "$W/ft" >/dev/null 2>&1
    check train_same_out_shape sh -c '[ "$(ls -A "$1")" = "$(ls -A "$2")" ] && [ "$(ls -A "$1")" = "$(printf "build\ncheckpoint\nlog.txt")" ]' \
        _ "$W/ref" "$W/ft"

    # every kill point of the second save (checkpoint.old exists from the first), resumed once
    for point in save-tmp-clean:2 save-model:2 save-state:2 save-fsync-tmp:2 save-stale-old:2 save-rename-old:2 \
                 save-rename-new:2 save-fsync-dir:2 save-unlink-old:3 save-done:2 step:3 step:4 step:5; do
        d=$W/fault_${point%%:*}_${point##*:}
        CKE_FAULT_AT=$point "$CKE" train "${TINY[@]}" "${RUN[@]}" --out "$d" >/dev/null 2>&1; rc=$?
        "$CKE" train --resume --out "$d" --threads 2 >"$d.log" 2>&1; rc2=$?
        check "train_kill_at_${point}_resumes_to_same_bytes" sh -c \
            '[ "$1" = 137 ] && [ "$2" = 0 ] && cmp -s "$3" "$4/checkpoint/model.safetensors" && ! [ -e "$4/checkpoint.old" ] || { echo "    exit $1, resume exit $2:"; tail -3 "$4.log"; false; }' \
            _ "$rc" "$rc2" "$REF" "$d"
    done

    # the issue's case on a GGUF fine-tune: killed between the two renames (only checkpoint.old),
    # one resume trains to the end (it used to die with checkpoint.old/model.gguf: No such file)
    d=$W/gguf_between
    CKE_FAULT_AT=save-rename-old:2 "$CKE" train "$CKE_MODELS/stories260K/stories260K.gguf" "${RUN[@]}" --lr 2e-4 --out "$d" >/dev/null 2>&1
    check train_gguf_only_old_left sh -c '[ -d "$1/checkpoint.old" ] && ! [ -e "$1/checkpoint" ]' _ "$d"
    ok train_gguf_resume_between_renames "$CKE" train --resume --out "$d"
    check train_gguf_resume_same_bytes cmp -s "$W/ft/checkpoint/model.gguf" "$d/checkpoint/model.gguf"

    # a real kill -9 at two moments of a longer run (wherever it lands), resumed: same bytes
    LONG=(--data "$DATA" --steps 30 --batch 2 --seq 16 --save-every 3 --eval-every 0 --threads 2)
    "$CKE" train "${TINY[@]}" "${LONG[@]}" --out "$W/long_ref" >/dev/null 2>&1
    for k in 7 19; do
        d=$W/kill9_$k
        "$CKE" train "${TINY[@]}" "${LONG[@]}" --out "$d" >/dev/null 2>&1 &
        pid=$!
        for _ in $(seq 1 2000); do grep -q "^step $k loss" "$d/log.txt" 2>/dev/null && break; kill -0 $pid 2>/dev/null || break; sleep 0.01; done
        kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
        "$CKE" train --resume --out "$d" --threads 2 >"$d.log" 2>&1; rc=$?
        check "train_kill9_after_step_${k}_same_bytes" sh -c '[ "$1" = 0 ] && cmp -s "$2" "$3/checkpoint/model.safetensors" || { tail -3 "$3.log"; false; }' \
            _ "$rc" "$W/long_ref/checkpoint/model.safetensors" "$d"
    done

    # resume: a finished run says so; changed settings are refused by name; --steps extends
    refuses train_resume_finished 0 'checkpoint is finished: step 6 of 6' "$CKE" train --resume --out "$W/ref"
    refuses train_resume_other_seed 1 '--resume: --seed 9 differs from the checkpoint.s 1' "$CKE" train --resume --out "$W/ref" --seed 9
    refuses train_resume_other_lr 1 '--resume: --lr 0.5 differs from the checkpoint.s 0.001' "$CKE" train --resume --out "$W/ref" --lr 0.5
    refuses train_resume_other_batch 1 '--resume: --batch 4 differs from the checkpoint.s 2' "$CKE" train --resume --out "$W/ref" --batch 4
    refuses train_resume_other_data 1 '--resume: --data .* is not the data the checkpoint was trained on' \
        "$CKE" train --resume --out "$W/ref" --data README.md
    refuses train_resume_fewer_steps 1 '--steps 4 is fewer than the 6 steps already done' "$CKE" train --resume --out "$W/ref" --steps 4
    refuses train_resume_no_checkpoint 1 '--resume: no checkpoint in' "$CKE" train --resume --out "$W/nothing"
    cp -r "$W/ref" "$W/extend"
    refuses train_resume_extend 0 'after step 8' "$CKE" train --resume --out "$W/extend" --steps 8

    # --precision bf16: recorded in trainer.json and model.c; a resume keeps it, another is refused
    "$CKE" train "${TINY[@]}" "${RUN[@]}" --steps 2 --precision bf16 --out "$W/bf16" >/dev/null 2>&1
    check train_bf16_recorded sh -c 'grep -q "\"precision\":.*\"bf16\"" "$1/checkpoint/trainer.json" && grep -q "kl_.gemm = kt->gemm_bf16" "$1/build/model.c"' _ "$W/bf16"
    check train_fp32_recorded sh -c 'grep -q "\"precision\":.*\"fp32\"" "$1/checkpoint/trainer.json" && ! grep -q gemm_bf16 "$1/build/model.c"' _ "$W/ref"
    refuses train_resume_other_precision 1 '--resume: --precision fp32 differs from the checkpoint.s bf16' \
        "$CKE" train --resume --out "$W/bf16" --steps 4 --precision fp32
    refuses train_resume_keeps_bf16 0 'after step 4' "$CKE" train --resume --out "$W/bf16" --steps 4
    check train_resume_kept_bf16 grep -q "kl_.gemm = kt->gemm_bf16" "$W/bf16/build/model.c"

    # a vocabulary given as a GGUF or a tokenizer.json travels with the checkpoint (vocab-only
    # GGUF / the json and its config): the trained model runs as it is, after --resume too
    SMALL=(--dim 16 --layers 1 --heads 2 --ffn 32 --data "$DATA" --steps 2 --batch 2 --seq 16 --eval-every 0 --threads 2)
    "$CKE" train --init llama --tokenizer "$CKE_MODELS/tokenizers/ggml-vocab-llama-spm.gguf" "${SMALL[@]}" --out "$W/tokg" >/dev/null 2>&1
    check train_ckpt_has_gguf_vocab sh -c '[ -f "$1/checkpoint/tokenizer.gguf" ] && [ "$(stat -c %s "$1/checkpoint/tokenizer.gguf")" -lt 2000000 ]' _ "$W/tokg"
    refuses train_ckpt_gguf_vocab_runs 0 'generated 3 tokens' "$CKE" run "$W/tokg" -p "Once upon a time" -n 3
    "$CKE" train --resume --out "$W/tokg" --steps 3 >/dev/null 2>&1
    check train_resume_keeps_gguf_vocab sh -c 'grep -q "\"step\":[[:space:]]*3," "$1/checkpoint/trainer.json" && [ -f "$1/checkpoint/tokenizer.gguf" ]' _ "$W/tokg"
    refuses train_ckpt_gguf_vocab_runs_resumed 0 'generated 3 tokens' "$CKE" run "$W/tokg" -p "Once upon a time" -n 3
    "$CKE" train --init llama --tokenizer "$CKE_MODELS/tokenizers/qwen3-hf/tokenizer.json" "${SMALL[@]}" --out "$W/tokj" >/dev/null 2>&1
    check train_ckpt_has_tokenizer_json sh -c 'cmp -s "$1/checkpoint/tokenizer.json" "$2/tokenizer.json" && cmp -s "$1/checkpoint/tokenizer_config.json" "$2/tokenizer_config.json"' \
        _ "$W/tokj" "$CKE_MODELS/tokenizers/qwen3-hf"
    refuses train_ckpt_tokenizer_json_runs 0 'generated 3 tokens' "$CKE" run "$W/tokj" -p "Once upon a time" -n 3
    bad_prec=$W/bad_precision; rm -rf "$bad_prec"; cp -r "$W/bf16" "$bad_prec"
    sed -i 's/"bf16"/"fp16"/' "$bad_prec/checkpoint/trainer.json"
    refuses train_state_precision 1 '"precision": "fp16" is not fp32 or bf16' "$CKE" train --resume --out "$bad_prec" --steps 6

    # --init gpt2: GPT-2 written as HF saves it (Conv1D [in, out], q|k|v joined in c_attn) -- the
    # loader splits and transposes, the checkpoint joins and transposes back; a kill and a resume
    # (which reloads that checkpoint) end on the same bytes as an uninterrupted run
    G2=(--init gpt2 --tokenizer "$TOK" --dim 16 --layers 1 --heads 2 --ffn 64)
    refuses train_init_gpt2_no_gqa 1 '--init gpt2: GPT-2 has no grouped-query attention' \
        "$CKE" train "${G2[@]}" --kv-heads 1 "${RUN[@]}" --out "$W/g2bad"
    refuses train_init_unknown_family 1 '--init mamba: the families that can be initialized are llama and gpt2' \
        "$CKE" train --init mamba --tokenizer "$TOK" --dim 16 --layers 1 --heads 2 --ffn 64 "${RUN[@]}" --out "$W/g2bad"
    ok train_init_gpt2_runs "$CKE" train "${G2[@]}" "${RUN[@]}" --out "$W/g2ref"
    check train_init_gpt2_hf_layout python3 -c '
import json, struct, sys
f = open(sys.argv[1] + "/checkpoint/model.safetensors", "rb"); h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
c = json.load(open(sys.argv[1] + "/checkpoint/config.json"))
want = {"h.0.attn.c_attn.weight": [16, 48], "h.0.attn.c_attn.bias": [48], "h.0.mlp.c_fc.weight": [16, 64],
        "h.0.mlp.c_proj.weight": [64, 16], "wpe.weight": [16, 16], "wte.weight": [512, 16]}
bad = [k for k in want if h.get(k, {}).get("shape") != want[k]]
n = len([k for k in h if k != "__metadata__"])
assert not bad and c["model_type"] == "gpt2" and c["n_inner"] == 64 and n == 4 + 12, (bad, n)' "$W/g2ref"
    refuses train_init_gpt2_checkpoint_runs 0 'generated 3 tokens' "$CKE" run "$W/g2ref/checkpoint" -p "Once upon a time" -n 3
    d=$W/g2kill
    CKE_FAULT_AT=step:3 "$CKE" train "${G2[@]}" "${RUN[@]}" --out "$d" >/dev/null 2>&1; rc=$?
    "$CKE" train --resume --out "$d" --threads 2 >"$d.log" 2>&1; rc2=$?
    check train_init_gpt2_resume_same_bytes sh -c '[ "$1" = 137 ] && [ "$2" = 0 ] && cmp -s "$3" "$4/checkpoint/model.safetensors" || { tail -3 "$4.log"; false; }' \
        _ "$rc" "$rc2" "$W/g2ref/checkpoint/model.safetensors" "$d"

    # HF checkpoints whose tensors load split or stacked: Phi-3's fused qkv_proj / gate_up_proj
    # and Mixtral's per-expert matrices (stacked into one tensor per layer and kind) are written
    # back under their own names and shapes; a kill and a resume end on the uninterrupted bytes
    if /usr/bin/python3 -c "import torch" 2>/dev/null; then
        for fam in phi3 mixtral; do
            /usr/bin/python3 tests/torch/ref_families.py "$W/hf_$fam" "$fam" vocab=512 >"$W/hf_$fam.log" 2>&1
            ok "train_hf_${fam}_runs" "$CKE" train "$W/hf_$fam" --tokenizer "$TOK" "${RUN[@]}" --lr 1e-3 --out "$W/${fam}_ref"
            check "train_hf_${fam}_same_tensors" /usr/bin/python3 -c '
import json, struct, sys
def hdr(p):
    f = open(p, "rb"); h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0])); h.pop("__metadata__", None)
    return {k: v["shape"] for k, v in h.items()}
a, b = hdr(sys.argv[1] + "/model.safetensors"), hdr(sys.argv[2] + "/checkpoint/model.safetensors")
assert a == b, (sorted(set(a) ^ set(b)), [k for k in a if k in b and a[k] != b[k]])' "$W/hf_$fam" "$W/${fam}_ref"
            d=$W/${fam}_kill
            CKE_FAULT_AT=step:3 "$CKE" train "$W/hf_$fam" --tokenizer "$TOK" "${RUN[@]}" --lr 1e-3 --out "$d" >/dev/null 2>&1; rc=$?
            "$CKE" train --resume --out "$d" --threads 2 >"$d.log" 2>&1; rc2=$?
            check "train_hf_${fam}_resume_same_bytes" sh -c '[ "$1" = 137 ] && [ "$2" = 0 ] && cmp -s "$3" "$4/checkpoint/model.safetensors" || { tail -3 "$4.log"; false; }' \
                _ "$rc" "$rc2" "$W/${fam}_ref/checkpoint/model.safetensors" "$d"
        done
    fi

    # trainer.json: every field validated, the message names it (index -7 overflowed next_batch's
    # window table; step -1e18 trained forever)
    bad_state() { # NAME SED-EXPR REGEX
        local d=$W/bad_$1
        rm -rf "$d"; cp -r "$W/ref" "$d"
        sed -i "$2" "$d/checkpoint/trainer.json"
        refuses "train_state_$1" 1 "$3" "$CKE" train --resume --out "$d" --steps 8
    }
    bad_state index_negative 's/"index":\t[0-9]*/"index":\t-7/' '"index": -7 is not in \[0, '
    bad_state step_huge_negative 's/"step":\t[0-9]*/"step":\t-1e18/' '"step": -1e\+18 is not in \[0, 6\]'
    bad_state step_fraction 's/"step":\t[0-9]*/"step":\t2.5/' '"step": 2.5 is not an integer'
    bad_state step_inconsistent 's/"step":\t[0-9]*/"step":\t5/' '"epoch": 0, "index": 12 is not where step 5 ends'
    bad_state epoch_string 's/"epoch":\t[0-9]*/"epoch":\t"0"/' '"epoch" is not a number'
    bad_state lr_huge 's/"lr":\t[0-9.e-]*/"lr":\t1e999/' '"lr": inf is not in'
    bad_state seq_missing '/"seq":/d' '"seq" is missing'
    bad_state model_file_path 's/"model_file":\t"[a-z.]*"/"model_file":\t"..\/..\/x"/' '"model_file": "../../x" is not'
    bad_state not_json 's/{/[/' 'trainer.json: not a JSON object|not valid JSON'
    bad_state hash 's/"data_fnv64":\t"[0-9a-f]*"/"data_fnv64":\t"xyz"/' '"data_fnv64": "xyz" is not 16'

    # directories are removed without following symbolic links (nftw, FTW_PHYS)
    d=$W/links
    cp -r "$W/ref" "$d"
    mkdir -p "$W/victim" "$d/checkpoint.old"
    echo keep > "$W/victim/keep.txt"
    ln -s "$W/victim" "$d/checkpoint.tmp"
    ln -s "$W/victim" "$d/checkpoint.old/link"
    "$CKE" train --resume --out "$d" --steps 8 >/dev/null 2>&1
    check train_rm_keeps_link_targets sh -c '[ -f "$1/keep.txt" ] && ! [ -e "$2/checkpoint.tmp" ] && ! [ -e "$2/checkpoint.old" ]' \
        _ "$W/victim" "$d"
fi

if have_models; then
    # resumed on another kernel table (CKE_ISA=ref forces one): allowed, with a note that the
    # result will not be bit-identical
    cp -r "$W/ref" "$W/isa"
    refuses train_resume_other_isa_noted 0 'note: .*the kernels are ref here, the run so far used' \
        env CKE_ISA=ref "$CKE" train --resume --out "$W/isa" --steps 7
    bad_state isa_unknown 's/"isa":\t"[a-z0-9]*"/"isa":\t"sse9"/' '"isa": "sse9" is not ref, avx2, avx512, neon or neon_dot'
    # a checkpoint an aarch64 cke wrote (isa neon) resumes here, with the same note
    cp -r "$W/ref" "$W/isa_neon"
    sed -i 's/"isa":\t"[a-z0-9]*"/"isa":\t"neon"/' "$W/isa_neon/checkpoint/trainer.json"
    refuses train_resume_from_neon_noted 0 'note: .*the run so far used neon' \
        "$CKE" train --resume --out "$W/isa_neon" --steps 7
fi
