# Mixture of experts (issue 16: Mixtral, Qwen3-MoE, OLMoE): configs refused by name, and (with Debian's python3 and
# its torch, which tests/torch/ref_families.py needs) a tiny random Mixtral compiled from its HF
# directory, quantized to a GGUF whose expert stacks keep their blocks, and GGUFs refused by name.
moe_cfg() { # moe_cfg DIR EXTRA-JSON [MODEL_TYPE]: a config.json (no weights: the config is refused first)
    mkdir -p "$1"
    printf '{"model_type":"%s","hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":48,"vocab_size":61%s}' \
        "${3:-mixtral}" "$2" >"$1/config.json"
}
moe_cfg "$T/moe_k0" ',"num_local_experts":4,"num_experts_per_tok":0'
refuses moe_hf_k_0 1 "num_experts_per_tok = 0 with num_local_experts = 4: expected 1 <= num_experts_per_tok <= num_local_experts" \
    "$CKE" inspect "$T/moe_k0"
moe_cfg "$T/moe_k5" ',"num_local_experts":4,"num_experts_per_tok":5'
refuses moe_hf_k_above_experts 1 "num_experts_per_tok = 5 with num_local_experts = 4" "$CKE" inspect "$T/moe_k5"
moe_cfg "$T/moe_e5000" ',"num_local_experts":5000,"num_experts_per_tok":2'
refuses moe_hf_experts_out_of_range 1 "num_local_experts = 5000 is out of range \[1, 4096\]" "$CKE" inspect "$T/moe_e5000"
moe_cfg "$T/moe_noe" ''
refuses moe_hf_no_expert_count 1 "mixtral config.json needs num_local_experts and num_experts_per_tok" "$CKE" inspect "$T/moe_noe"
moe_cfg "$T/q3m_nof" ',"num_experts":8,"num_experts_per_tok":2' qwen3_moe
refuses moe_qwen3_no_expert_width 1 "qwen3_moe config.json needs moe_intermediate_size" "$CKE" inspect "$T/q3m_nof"
moe_cfg "$T/q3m_step" ',"num_experts":8,"num_experts_per_tok":2,"moe_intermediate_size":16,"decoder_sparse_step":2' qwen3_moe
refuses moe_qwen3_dense_layers 1 "qwen3_moe with dense MLP layers among the experts' \(decoder_sparse_step 2" "$CKE" inspect "$T/q3m_step"
moe_cfg "$T/olmoe_clip" ',"num_experts":8,"num_experts_per_tok":2,"clip_qkv":8.0' olmoe
refuses moe_olmoe_clip_qkv 1 "olmoe with clip_qkv is not supported" "$CKE" inspect "$T/olmoe_clip"

if /usr/bin/python3 -c "import torch" 2>/dev/null && /usr/bin/python3 tests/torch/ref_families.py "$T/mx" mixtral >"$T/mx.log" 2>&1; then
    check moe_inspect_names_the_experts sh -c "'$CKE' inspect '$T/mx' | grep -q 'experts:     4 per layer, 2 used per token'"
    ok moe_compile_hf "$CKE" compile "$T/mx" -o "$T/mx_out"
    check moe_ir_has_the_moe_op grep -q '"op": "moe"' "$T/mx_out/ir.json"
    ok moe_parity_hf "$CKE" parity "$T/mx_out" "$T/mx/ref.trace"
    # a config promising 65536 layers of 4096 experts beside a small checkpoint: refused before any
    # table is sized by it
    moe_cfg "$T/mx_huge" ',"num_local_experts":4096,"num_experts_per_tok":2' && ln -s "$T/mx/model.safetensors" "$T/mx_huge/"
    sed -i 's/"num_hidden_layers":2/"num_hidden_layers":65536/' "$T/mx_huge/config.json"
    refuses moe_hf_experts_beyond_checkpoint 1 "65536 layers x 4096 experts need 805306368 expert matrices; the checkpoint has" \
        "$CKE" inspect "$T/mx_huge"
    ok moe_embedded_compiles "$CKE" compile "$T/mx" -o "$T/mx_emb" --embedded
    check moe_embedded_copies_moe_kernels test -f "$T/mx_emb/kernels/moe.c" -a -f "$T/mx_emb/kernels/moe_route.h"
    ok moe_quantize_q4_0 "$CKE" quantize "$T/mx" "$T/mx-q4_0.gguf" Q4_0
    ok moe_compile_q4_0 "$CKE" compile "$T/mx-q4_0.gguf" -o "$T/mx_q4_0"
    check moe_q4_0_experts_keep_blocks grep -q '"name": "l1.ffn_up_exps", "layer": 1, "dtype": "q4_0r"' "$T/mx_q4_0/layout.json"
    check moe_router_stays_f32 grep -q '"name": "l1.ffn_gate_inp", "layer": 1, "dtype": "f32"' "$T/mx_q4_0/layout.json"
    ok moe_quantize_f32 "$CKE" quantize "$T/mx" "$T/mx-f32.gguf" F32
    # llama.expert_used_count above llama.expert_count: the u32 value after the key, patched
    /usr/bin/python3 - "$T/mx-f32.gguf" "$T/mx-k9.gguf" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
key = b"llama.expert_used_count"
i = b.find(struct.pack("<Q", len(key)) + key) + 8 + len(key)
assert struct.unpack_from("<I", b, i)[0] == 4, "expected a u32 key"  # GGUF_TYPE_UINT32
struct.pack_into("<I", b, i + 4, 9)
open(sys.argv[2], "wb").write(b)
PY
    refuses moe_gguf_used_above_count 1 "GGUF key 'llama.expert_used_count' = 9 is out of range \[1, 4\]" "$CKE" inspect "$T/mx-k9.gguf"
    python3 tests/quant/gguf_rename.py "$T/mx-f32.gguf" "$T/mx-noexp.gguf" blk.1.ffn_down_exps.weight -
    refuses moe_gguf_missing_expert_stack 1 "tensor 'l1.ffn_down_exps' is missing" "$CKE" inspect "$T/mx-noexp.gguf"
    python3 tests/quant/gguf_rename.py "$T/mx-f32.gguf" "$T/mx-2d.gguf" blk.0.ffn_up_exps.weight blk.0.ffn_up.weight
    refuses moe_gguf_dense_ffn_in_moe 1 "tensor 'l0.ffn_up_exps' is missing" "$CKE" inspect "$T/mx-2d.gguf"
    # the MoE GGUFs cke writes, read by gguf-py (llama.cpp's own Python package, where the suite
    # installed it): every tensor one llama.cpp's architecture declares, and its expert keys
    if [ -f "$BUILD/pydeps/gguf/__init__.py" ]; then
        for f in mixtral qwen3_moe_norm olmoe qwen2_moe glm4_moe deepseek_v3; do
            [ "$f" = mixtral ] || /usr/bin/python3 tests/torch/ref_families.py "$T/gg_$f" $f >"$T/gg_$f.log" 2>&1
            [ "$f" = mixtral ] && ln -sfn "$T/mx" "$T/gg_$f"
            "$CKE" quantize "$T/gg_$f" "$T/gg_$f.gguf" F32 >/dev/null 2>&1
            check moe_gguf_py_reads_$f env PYTHONPATH="$BUILD/pydeps" /usr/bin/python3 - "$T/gg_$f.gguf" <<'PY'
import sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
march = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch]
names = {gguf.TENSOR_NAMES[t].format(bid=b) for t in gguf.MODEL_TENSORS[march] for b in range(8)}
bad = [t.name for t in r.tensors if t.name.rsplit(".", 1)[0] not in names]
exps = [t for t in r.tensors if t.name.endswith("_exps.weight")]
keys = [f"{arch}.expert_count", f"{arch}.expert_used_count"]
if arch in ("glm4moe", "deepseek2"):  # GLM-4.5, DeepSeek-V3: leading dense layers, shared experts, sigmoid gating
    keys += [f"{arch}.{k}" for k in ("leading_dense_block_count", "expert_shared_count", "expert_gating_func",
                                     "expert_weights_scale", "expert_weights_norm", "expert_feed_forward_length")]
if arch == "deepseek2":  # multi-head latent attention, with the key/value up-projection split as llama.cpp's loader wants
    keys += [f"{arch}.attention.{k}" for k in ("q_lora_rank", "kv_lora_rank", "key_length_mla", "value_length_mla")]
    if not any(t.name == "blk.1.attn_k_b.weight" and len(t.shape) == 3 for t in r.tensors):
        keys.append("blk.1.attn_k_b.weight (3-D)")
ok = not bad and exps and all(len(t.shape) == 3 for t in exps) and all(k in r.fields for k in keys)
print(arch, "unknown tensors:", bad, "3-D expert stacks:", len(exps))
sys.exit(0 if ok else 1)
PY
        done
    fi
    # GLM-4.5 (DeepSeek-style experts after a dense first layer): quantized by cke, its experts keep
    # their blocks in the MoE layers, the dense layer's MLP its own, and the model runs
    if /usr/bin/python3 tests/torch/ref_families.py "$T/glm" glm4_moe >"$T/glm.log" 2>&1; then
        check moe_glm4_inspect_names_the_routing sh -c "'$CKE' inspect '$T/glm' | grep -q 'routing:     sigmoid scores, chosen with a bias (exp_probs_b) among the best 2 of 4 groups, weights x 2.5'"
        ok moe_glm4_quantize_q8_0 "$CKE" quantize "$T/glm" "$T/glm-q8_0.gguf" Q8_0
        ok moe_glm4_compile_q8_0 "$CKE" compile "$T/glm-q8_0.gguf" -o "$T/glm_q8"
        check moe_glm4_experts_keep_blocks grep -q '"name": "l2.ffn_up_exps", "layer": 2, "dtype": "q8_0' "$T/glm_q8/layout.json"
        check moe_glm4_dense_mlp_keeps_blocks grep -q '"name": "l0.ffn_up", "layer": 0, "dtype": "q8_0' "$T/glm_q8/layout.json"
        check moe_glm4_no_expert_bytes_in_dense_layer sh -c "! grep -q '\"name\": \"l0.ffn_up_exps\"' '$T/glm_q8/layout.json'"
        check moe_glm4_model_c_has_layer_kinds grep -q 'if (L_is_moe\[l\])' "$T/glm_q8/model.c"
        ok moe_glm4_runs "$CKE" profile "$T/glm_q8" --prompt-tokens 12 -n 4 -t 1 -o "$T/glm_prof"
        # per layer, as the layer kinds say: the dense MLP ran in layer 0 only, the experts in layers 1 and 2
        check moe_glm4_profile_per_layer_kind /usr/bin/python3 -c '
import json, sys
ops = [(o["name"], o["op"]) for m in json.load(open(sys.argv[1]))["modes"] for o in m["ops"]]
want = {("l0.ffn_out", "linear"), ("l1.moe_out", "moe"), ("l2.moe_out", "moe")}
wrong = {("l0.moe_out", "moe"), ("l1.ffn_out", "linear"), ("l2.ffn_out", "linear"), ("l1.gate", "linear")}
sys.exit(0 if want <= set(ops) and not wrong & set(ops) else 1)' "$T/glm_prof/profile.json"
        # expert_gating_func softmax on glm4moe: refused by name
        /usr/bin/python3 - "$T/glm-q8_0.gguf" "$T/glm-gf1.gguf" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
key = b"glm4moe.expert_gating_func"
i = b.find(struct.pack("<Q", len(key)) + key) + 8 + len(key)
assert struct.unpack_from("<I", b, i)[0] == 4 and struct.unpack_from("<I", b, i + 4)[0] == 2
struct.pack_into("<I", b, i + 4, 1)
open(sys.argv[2], "wb").write(b)
PY
        refuses moe_glm4_softmax_gating_refused 1 "glm4moe.expert_gating_func = 1: cke's glm4moe experts are sigmoid-gated" \
            "$CKE" inspect "$T/glm-gf1.gguf"
    else
        check moe_glm4_reference_script false
    fi
    # DeepSeek-V3 through GGUFs: llama.cpp's split attn_k_b / attn_v_b in q8_0 blocks, decoded exactly by
    # the loader to join kv_b (f32); with only those two in blocks (the file rewritten by gguf-py) every
    # value before kv_b's product matches the reference and the first divergence is that product, at
    # Q8_0's size (a wrong join would be off by the values themselves)
    if /usr/bin/python3 tests/torch/ref_families.py "$T/dsw" deepseek_v3_wide >"$T/dsw.log" 2>&1; then
        ok moe_deepseek_quantize_q8_0 "$CKE" quantize "$T/dsw" "$T/dsw-q8_0.gguf" Q8_0
        ok moe_deepseek_compile_q8_0 "$CKE" compile "$T/dsw-q8_0.gguf" -o "$T/dsw_q8"
        check moe_deepseek_joined_kv_b_f32 grep -q '"name": "l1.attn_kv_up", "layer": 1, "dtype": "f32"' "$T/dsw_q8/layout.json"
        check moe_deepseek_experts_keep_blocks grep -q '"name": "l1.ffn_up_exps", "layer": 1, "dtype": "q8_0' "$T/dsw_q8/layout.json"
        if [ -f "$BUILD/pydeps/gguf/__init__.py" ]; then
            "$CKE" quantize "$T/dsw" "$T/dsw-f32.gguf" F32 >/dev/null 2>&1
            PYTHONPATH="$BUILD/pydeps" /usr/bin/python3 - "$T/dsw-f32.gguf" "$T/dsw-kb8.gguf" <<'PY'
import sys
import numpy as np
import gguf
r = gguf.GGUFReader(sys.argv[1])
w = gguf.GGUFWriter(sys.argv[2], bytes(r.fields["general.architecture"].parts[-1]).decode())
for name, f in r.fields.items():
    if name.startswith("GGUF.") or name == "general.architecture":
        continue
    if f.types[0] == gguf.GGUFValueType.STRING:
        w.add_string(name, bytes(f.parts[-1]).decode())
    elif f.types[0] != gguf.GGUFValueType.ARRAY:
        w.add_key_value(name, f.parts[-1].tolist()[0], f.types[0])
for t in r.tensors:
    if t.name.endswith(("attn_k_b.weight", "attn_v_b.weight")):
        w.add_tensor(t.name, gguf.quants.quantize(np.asarray(t.data, np.float32), gguf.GGMLQuantizationType.Q8_0),
                     raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    else:
        w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
            "$CKE" compile "$T/dsw-kb8.gguf" -o "$T/dsw_kb8" --kv-type f32 >/dev/null 2>&1
            out=$("$CKE" parity "$T/dsw_kb8" "$T/dsw/ref.trace" --tol 3e-3 2>&1)
            check moe_deepseek_q8_0_kv_b_join_exact sh -c 'echo "$1" | grep -q "first divergence: kv (layer 0) at position" &&
                echo "$1" | sed -n "s/.*relative \([0-9.e+-]*\) (tolerance.*/\1/p" | awk "{ exit !(\$1 < 0.01) }"' _ "$out"
        fi
    else
        check moe_deepseek_reference_script false
    fi
else
    echo "SKIP t_moe model cases (no /usr/bin/python3 with torch)"
fi

# Training a mixture of experts from a GGUF (random Mixtral-layout weights, stories260K's
# vocabulary): the load-balancing loss switched on by --router-aux-coef, recorded in the
# checkpoint and held to on resume; a weight for a dense model is refused.
if have_models; then
    BQ=$PWD/$BUILD/bench_quant
    "$BQ" make-model "$T/moe_tr.gguf" 64 96 2 4 2 512 "$CKE_MODELS/stories260K/stories260K.gguf" 7 4 2 >/dev/null 2>&1
    out=$("$CKE" train "$T/moe_tr.gguf" --data README.md --out "$T/moe_run" --steps 12 --batch 4 --seq 32 --eval-every 12 \
        --router-aux-coef 0.02 --threads 2 2>&1); rc=$?
    check moe_train_gguf_runs [ "$rc" = 0 ]
    # validation loss at the end below the start (random weights: a real descent, ~6.83 -> ~6.44)
    check moe_train_val_loss_falls sh -c 'echo "$1" | sed -n "s/.*validation \([0-9.]*\) (at start \([0-9.]*\)).*/\1 \2/p" |
        awk "{ exit !(\$1 < \$2 - 0.1) }"' _ "$out"
    check moe_train_model_c_has_aux grep -q 'cke_moe_router_stats(kt, t->moe_stats' "$T/moe_run/build/model.c"
    check moe_train_state_records_aux grep -q '"router_aux_coef":.*0.0199' "$T/moe_run/checkpoint/trainer.json"
    refuses moe_train_resume_other_aux 1 "--router-aux-coef 0.5 differs from the checkpoint's 0.02" \
        "$CKE" train --resume --out "$T/moe_run" --steps 14 --router-aux-coef 0.5
    ok moe_train_resume_keeps_aux "$CKE" train --resume --out "$T/moe_run" --steps 14 --threads 2
    refuses moe_train_aux_on_dense 1 "a router aux loss weight \(0.1\) for .*stories260K.gguf, which has no experts" \
        "$CKE" train "$CKE_MODELS/stories260K/stories260K.gguf" --data README.md --out "$T/moe_dense" --steps 2 --router-aux-coef 0.1
    refuses moe_train_aux_range 2 "cke train: --router-aux-coef: -1 is not a loss weight" \
        "$CKE" train "$T/moe_tr.gguf" --data README.md --out "$T/moe_neg" --router-aux-coef -1
fi
