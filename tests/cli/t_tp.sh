# Tensor parallel across processes: `mpirun -np N cke run MODEL` splits the heads and FFN columns
# over N ranks (cke compile --tp-size N --tp-rank R for each; an allreduce over MPI after attn_o
# and ffn_down). Greedy text equals the single-process text exactly; what cannot be split, or a
# directory compiled for another layout, is refused by name on every rank, without a hang.
# (The compiler's sharding is also checked in-process, logits included: test_compiler's
# tensor_parallel_*, test_families' *_tensor_parallel_2.)

if ! command -v mpirun >/dev/null; then
    fail=$((fail + 1)); echo "FAIL tp_mpirun: mpirun not found (tools/deps.sh installs openmpi-bin)"
elif have_models; then
    S=$CKE_MODELS/stories260K
    # as root (CI), Open MPI needs to be told; 2 ranks on a 2-core machine, or fewer cores: oversubscribe
    MPI=(mpirun --oversubscribe --mca btl self,vader,tcp)
    [ "$(id -u)" = 0 ] && MPI+=(--allow-run-as-root)
    # sanitized builds: Open MPI's own allocations outlive MPI_Finalize (tests/dist/lsan.supp says why)
    MPI=(env "LSAN_OPTIONS=suppressions=$PWD/tests/dist/lsan.supp:fast_unwind_on_malloc=0"
         OMPI_MCA_mca_base_component_disable_dlclose=1 "${MPI[@]}")
    ARGS=(-p "Once upon a time" -n 200 --temp 0)
    "$CKE" run "$S/stories260K.bin" --tokenizer "$S/tok512.bin" "${ARGS[@]}" >"$T/tp1.txt" 2>/dev/null
    timeout "$LIMIT" "${MPI[@]}" -np 2 "$CKE" run "$S/stories260K.bin" --tokenizer "$S/tok512.bin" "${ARGS[@]}" \
        >"$T/tp2.txt" 2>"$T/tp2.err"
    check tp_text_2_ranks_eq_1 sh -c "[ -s '$T/tp1.txt' ] && cmp -s '$T/tp1.txt' '$T/tp2.txt'"
    check tp_cache_variants sh -c "ls -d '$CKE_CACHE'/stories260K.bin-*/ctx-auto-tp2r0 '$CKE_CACHE'/stories260K.bin-*/ctx-auto-tp2r1 >/dev/null"
    check tp_rank_manifest sh -c "grep -qx 'tp_size 2' '$CKE_CACHE'/stories260K.bin-*/ctx-auto-tp2r1/cke-model.txt &&
        grep -qx 'tp_rank 1' '$CKE_CACHE'/stories260K.bin-*/ctx-auto-tp2r1/cke-model.txt"
    timeout "$LIMIT" "${MPI[@]}" -np 4 "$CKE" run "$S/stories260K.bin" --tokenizer "$S/tok512.bin" "${ARGS[@]}" \
        >"$T/tp4.txt" 2>/dev/null
    check tp_text_4_ranks_eq_1 cmp -s "$T/tp1.txt" "$T/tp4.txt"
    # quantized: Q8_0 blocks split by rows and, where a rank's columns are whole blocks, by columns
    "$CKE" quantize "$S/stories260K.gguf" "$T/s-q8.gguf" Q8_0 >/dev/null 2>&1
    "$CKE" run "$T/s-q8.gguf" "${ARGS[@]}" >"$T/q1.txt" 2>/dev/null
    timeout "$LIMIT" "${MPI[@]}" -np 2 "$CKE" run "$T/s-q8.gguf" "${ARGS[@]}" >"$T/q2.txt" 2>/dev/null
    check tp_q8_0_text_2_ranks_eq_1 sh -c "[ -s '$T/q1.txt' ] && cmp -s '$T/q1.txt' '$T/q2.txt'"
    if [ -f "$CKE_MODELS/tiny-random-llama/llama-2-tiny-random.gguf" ]; then
        L=$CKE_MODELS/tiny-random-llama/llama-2-tiny-random.gguf
        "$CKE" run "$L" -p "Hello world" -n 40 --temp 0 --ctx 128 >"$T/l1.txt" 2>/dev/null
        timeout "$LIMIT" "${MPI[@]}" -np 2 "$CKE" run "$L" -p "Hello world" -n 40 --temp 0 --ctx 128 >"$T/l2.txt" 2>/dev/null
        check tp_tiny_random_llama_2_ranks_eq_1 sh -c "[ -s '$T/l1.txt' ] && cmp -s '$T/l1.txt' '$T/l2.txt'"
    fi
    # sampling: rank 0's seed is everyone's, so a sampled text is one text (and a seed reproduces it)
    "$CKE" run "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -p "Once" -n 60 --temp 1 --seed 7 >"$T/s1.txt" 2>/dev/null
    timeout "$LIMIT" "${MPI[@]}" -np 2 "$CKE" run "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -p "Once" -n 60 --temp 1 \
        --seed 7 >"$T/s2.txt" 2>/dev/null
    check tp_sampled_seed_eq_1 sh -c "[ -s '$T/s1.txt' ] && cmp -s '$T/s1.txt' '$T/s2.txt'"
    # serving: rank 0 answers HTTP and announces each model call, rank 1 makes it too; two requests
    # at once (batched in one instance) get the single-process greedy text; SIGTERM ends all ranks
    "$CKE" run "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -p "Once upon a time" -n 40 --temp 0 >"$T/tp40.txt" 2>/dev/null
    : >"$T/tps.out"
    timeout -s TERM 300 "${MPI[@]}" -np 2 "$CKE" serve "$S/stories260K.bin" --tokenizer "$S/tok512.bin" --port 0 \
        --parallel 2 >"$T/tps.out" 2>"$T/tps.err" &
    TPS=$!
    for i in $(seq 600); do grep -q 'listening on' "$T/tps.out" && break; kill -0 $TPS 2>/dev/null || break; sleep 0.1; done
    TU=$(sed -n 's|^cke serve: listening on \(http://127.0.0.1:[0-9]*\) .*|\1|p' "$T/tps.out")
    CURLS=()
    for i in 1 2; do
        curl -s -m 60 "$TU/v1/completions" -d '{"prompt": "Once upon a time", "max_tokens": 40, "temperature": 0}' >"$T/tpc$i.json" &
        CURLS+=($!)
    done
    wait "${CURLS[@]}"
    # SIGTERM to rank 0 (mpirun itself would end the job as killed): it stops serving and announces
    # the close, rank 1's follow loop ends, every rank exits 0
    for p in $(pgrep -f "$CKE serve"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=0' && kill -TERM "$p"
    done
    for i in $(seq 150); do kill -0 $TPS 2>/dev/null || break; sleep 0.1; done
    kill -KILL $TPS 2>/dev/null
    wait $TPS; TPS_RC=$?
    check tp_serve_2_ranks_text_eq_1 /usr/bin/python3 -c "
import json, sys
want = open('$T/tp40.txt').read()[len('Once upon a time'):].rstrip('\n')
got = [json.load(open('$T/tpc%d.json' % i))['choices'][0]['text'] for i in (1, 2)]
sys.exit(0 if want and got == [want, want] else print(repr(want), got) or 1)"
    [ $TPS_RC = 0 ] || { echo "    serve exit $TPS_RC:"; tail -5 "$T/tps.err"; }
    check tp_serve_stops_cleanly sh -c "[ $TPS_RC = 0 ] && ! grep -q 'Sanitizer\|runtime error' '$T/tps.err'"
    # refusals: every rank stops with the message, the job exits non-zero within the time limit
    refuses tp_3_ranks_refused 1 'n_head = 8 is not divisible by 3' \
        "${MPI[@]}" -np 3 "$CKE" run "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -p hi -n 4
    "$CKE" compile "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -o "$T/whole" >/dev/null 2>&1
    refuses tp_whole_dir_refused 1 'compiled as tensor-parallel rank 0 of 1, this process is rank [01] of 2' \
        "${MPI[@]}" -np 2 "$CKE" run "$T/whole" -p hi -n 4
    "$CKE" compile "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -o "$T/r1" --tp-size 2 --tp-rank 1 >/dev/null 2>&1
    refuses tp_inspect_rank 0 '^tensor par.: rank 1 of 2' "$CKE" inspect "$T/r1"
    refuses tp_rank_dir_alone_refused 1 'rank 1 of 2, this process is rank 0 of 1 \(run it with mpirun -np as many ranks\)' \
        "$CKE" run "$T/r1" -p hi -n 4
    refuses tp_compile_rank_out_of_range 2 '--tp-rank 2 needs --tp-size above it' \
        "$CKE" compile "$S/stories260K.bin" -o "$T/x" --tp-size 2 --tp-rank 2
    refuses tp_compile_bad_size 2 'cke compile: --tp-size: 0 is not a number of tensor-parallel ranks' \
        "$CKE" compile "$S/stories260K.bin" -o "$T/x" --tp-size 0
    # a rank that dies (as kill -9, at its 50th allreduce) ends the job; one that hangs (SIGSTOP) makes
    # rank 0 fail after --dist-timeout and take the job down (MPI_Abort): no waiting forever
    FA=(run "$S/stories260K.bin" --tokenizer "$S/tok512.bin" -p "Once upon a time" -n 200 --temp 0 --dist-timeout 2)
    refuses tp_rank_dies_job_ends 137 'exited with non-zero status|non-zero exit code' \
        "${MPI[@]}" -np 1 "$CKE" "${FA[@]}" : -np 1 env CKE_FAULT_AT=tp-die:50 "$CKE" "${FA[@]}"
    refuses tp_rank_hangs_job_ends 1 'no answer from the other ranks in 2 s \(--dist-timeout\)' \
        "${MPI[@]}" -np 1 "$CKE" "${FA[@]}" : -np 1 env CKE_FAULT_AT=tp-hang:50 "$CKE" "${FA[@]}"
    refuses tp_embedded_refused 2 'cke compile: --embedded is one process on one core: no --tp-size' \
        "$CKE" compile "$S/stories260K.bin" -o "$T/x" --embedded --tp-size 2 --tp-rank 0
    refuses tp_dist_timeout_bad 2 'cke run: --dist-timeout: -1 is not a time in seconds' \
        "$CKE" run "$S/stories260K.bin" --dist-timeout -1
fi
