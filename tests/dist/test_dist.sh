#!/usr/bin/env bash
# Data-parallel training over Open MPI: `mpirun -np 2 cke train` on one machine (TCP between the
# ranks, as root --allow-run-as-root, --oversubscribe for 2 cores). Usage:
#   BUILD=build tests/dist/test_dist.sh        (build-san: the sanitized binary; Open MPI's own
#                                              allocations at MPI_Init are suppressed, lsan.supp)
# Ends with "N passed, N failed". Cases:
#   - the collectives of src/dist (build/test_dist_api) in one process, 2 and 3 ranks
#   - np=2 with global batch 2B gives the losses of one process with batch 2B over 20 steps, within
#     a relative 1e-5 (the ranks' gradients are summed in another grouping than one process's
#     rows: float rounding, which AdamW's first steps amplify a little; measured 2.4e-7)
#   - two np=2 runs are bit-identical (gradients summed in rank order, not in MPI's order)
#   - ZeRO-1 (sharded AdamW state) equals --no-zero (every rank all of it) after 5 steps, bit for bit
#   - per-layer reduction overlapped with the backward equals reducing after it, bit for bit
#   - a batch that does not split over the ranks is refused with a message
#   - a rank that dies (fault point: _exit(137) after step 3) ends the job with an error within
#     30 s, the checkpoint of step 2 resumes with np=2 to the bytes of an uninterrupted run
#   - a rank that hangs (SIGSTOP) ends the job: the other's --dist-timeout 3 names the wait
#   - an np=2 checkpoint resumes with np=1 (the moments are saved whole), with a note
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CKE=$PWD/$BUILD/cke
CKE_MODELS=${CKE_MODELS:-$(cd .. && pwd)/shared/models}
T=$(mktemp -d "${TMPDIR:-/tmp}/cke-dist.XXXXXX")
pass=0
fail=0
ok_() { pass=$((pass + 1)); echo "PASS $1${2:+: $2}"; }
bad() { fail=$((fail + 1)); echo "FAIL $1${2:+: $2}"; }
check() { local n=$1; shift; if "$@"; then ok_ "$n"; else bad "$n"; fi; }

if ! command -v mpirun >/dev/null; then
    echo "SKIP dist: no mpirun (tools/deps.sh installs openmpi-bin)"; echo "0 passed, 0 failed"; exit 0
fi
if [ ! -f "$CKE_MODELS/stories260K/tok512.bin" ]; then
    echo "SKIP dist: no $CKE_MODELS/stories260K"; echo "0 passed, 0 failed"; exit 0
fi
if [ "$BUILD" = build-san ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export LSAN_OPTIONS=suppressions=$PWD/tests/dist/lsan.supp:fast_unwind_on_malloc=0:print_suppressions=0
    export OMPI_MCA_mca_base_component_disable_dlclose=1
fi
sanitizer_clean() { ! grep -q 'Sanitizer\|runtime error' "$1"; }
MPIRUN=(timeout 120 mpirun --allow-run-as-root --oversubscribe --mca btl self,tcp)
MPI=("${MPIRUN[@]}" -np 2)

# ---- the MPI layer's collectives value by value: one process without mpirun, 2 and 3 ranks
for np in 1 2 3; do
    if [ $np = 1 ]; then out=$(timeout 60 "$BUILD/test_dist_api" 2>&1); rc=$?
    else out=$("${MPIRUN[@]}" -np $np "$BUILD/test_dist_api" 2>&1); rc=$?; fi
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    if [ $rc = 0 ] && [ -n "$line" ] && [ "$(echo "$line" | awk '{print $3}')" = 0 ] && sanitizer_clean <(echo "$out"); then
        ok_ "dist_api_np$np" "$line"
    else bad "dist_api_np$np" "exit $rc"; echo "$out" | tail -8; fi
done
TOK=$CKE_MODELS/stories260K/tok512.bin
DATA=$T/data.txt
head -c 20000 data/stories.txt >"$DATA"
TINY=(--init llama --tokenizer "$TOK" --dim 16 --layers 1 --heads 2 --ffn 32)
RUN=(--data "$DATA" --seq 16 --eval-every 0 --eval-batches 1 --threads 1 --warmup 2)

# the losses of log.txt, one per line
losses() { awk '$1 == "step" && $3 == "loss" { print $4 }' "$1"; }
# max relative difference of two loss columns, and the line count of each
loss_diff() { paste <(losses "$1") <(losses "$2") | awk -v want="$3" '
    { n++; d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1); if (r > m) m = r }
    END { printf "%d steps, max relative difference %.3g\n", n, m; exit !(n == want && m <= 1e-5) }'; }

# ---- np=2 x 2 rows = np=1 x 4 rows, 20 steps: a real model (stories260K) fine-tuned
FT=(--data "$DATA" --seq 32 --batch 4 --steps 20 --eval-every 0 --eval-batches 1 --threads 1 --warmup 2 --lr 1e-3)
"$CKE" train "$CKE_MODELS/stories260K/stories260K.gguf" "${FT[@]}" --out "$T/ft1" >"$T/ft1.log" 2>&1
"${MPI[@]}" "$CKE" train "$CKE_MODELS/stories260K/stories260K.gguf" "${FT[@]}" --out "$T/ft2" >"$T/ft2.log" 2>&1
rc=$?
if [ $rc = 0 ] && sanitizer_clean "$T/ft2.log" && out=$(loss_diff "$T/ft1/log.txt" "$T/ft2/log.txt" 20); then
    ok_ dist_np2_equals_np1 "$out"
else bad dist_np2_equals_np1 "exit $rc; ${out:-}"; tail -5 "$T/ft2.log"; fi
check dist_memory_map grep -q 'AdamW m and v per rank: .*ZeRO-1.*saved per rank' "$T/ft2/build/memory_map.txt"

# ---- two np=2 runs: the same bytes
for k in a b; do "${MPI[@]}" "$CKE" train "${TINY[@]}" "${RUN[@]}" --batch 4 --steps 5 --out "$T/z$k" >"$T/z$k.log" 2>&1; done
check dist_np2_runs_clean sh -c '[ -f "$1/checkpoint/trainer.json" ] && [ -f "$2/checkpoint/trainer.json" ]' _ "$T/za" "$T/zb"
check dist_np2_bit_identical sh -c 'cmp -s "$1/checkpoint/model.safetensors" "$2/checkpoint/model.safetensors" &&
    cmp -s "$1/checkpoint/optimizer.safetensors" "$2/checkpoint/optimizer.safetensors" &&
    [ "$(grep loss "$1/log.txt" | cut -d" " -f1-4)" = "$(grep loss "$2/log.txt" | cut -d" " -f1-4)" ]' _ "$T/za" "$T/zb"

# ---- ZeRO-1 (the default) against every rank holding the whole AdamW state, after 5 steps
"${MPI[@]}" "$CKE" train "${TINY[@]}" "${RUN[@]}" --batch 4 --steps 5 --no-zero --out "$T/nz" >"$T/nz.log" 2>&1
check dist_zero_equals_unsharded sh -c 'cmp -s "$1/checkpoint/optimizer.safetensors" "$2/checkpoint/optimizer.safetensors" &&
    cmp -s "$1/checkpoint/model.safetensors" "$2/checkpoint/model.safetensors"' _ "$T/za" "$T/nz"
check dist_sanitizer_clean sh -c 'for f in "$@"; do ! grep -q "Sanitizer\|runtime error" "$f" || exit 1; done' _ "$T"/z?.log "$T/nz.log"

# ---- overlap (each layer's gradients reduced during the backward) against reducing after it:
# the same sums, so the same bytes; 3 layers, 2 micro-batches (the hook starts only in the last)
OVL=(--init llama --tokenizer "$TOK" --dim 16 --layers 3 --heads 2 --ffn 32 "${RUN[@]}" --batch 4 --steps 4 --accum 2)
"${MPI[@]}" "$CKE" train "${OVL[@]}" --out "$T/ov" >"$T/ov.log" 2>&1
"${MPI[@]}" "$CKE" train "${OVL[@]}" --no-overlap --out "$T/nov" >"$T/nov.log" 2>&1
check dist_overlap_equals_after sh -c '[ -f "$1/checkpoint/trainer.json" ] &&
    cmp -s "$1/checkpoint/optimizer.safetensors" "$2/checkpoint/optimizer.safetensors" &&
    cmp -s "$1/checkpoint/model.safetensors" "$2/checkpoint/model.safetensors"' _ "$T/ov" "$T/nov"
check dist_log_comm_ms grep -q 'comm_ms [0-9]' "$T/ov/log.txt"
check dist_overlap_sanitizer_clean sh -c '! grep -q "Sanitizer\|runtime error" "$1" "$2"' _ "$T/ov.log" "$T/nov.log"

# ---- refusals
out=$("${MPI[@]}" "$CKE" train "${TINY[@]}" "${RUN[@]}" --batch 3 --steps 2 --out "$T/b3" 2>&1); rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q 'cke train: rank 0 of 2: bad argument: train: --batch 3 does not split over 2 ranks' &&
    [ "$(echo "$out" | grep -c 'does not split')" = 1 ]; then ok_ dist_refuses_odd_batch "$(echo "$out" | grep 'does not split')"
else bad dist_refuses_odd_batch "exit $rc"; echo "$out" | tail -5; fi
for v in 0 -1 nan inf 1e99; do
    out=$("$CKE" train "${TINY[@]}" "${RUN[@]}" --dist-timeout $v --out "$T/dt" 2>&1); rc=$?
    if [ $rc = 2 ] && echo "$out" | grep -q "cke train: --dist-timeout: $v is not a time in seconds"; then ok_ "dist_timeout_flag_$v" "$out"
    else bad "dist_timeout_flag_$v" "exit $rc: $out"; fi
done

# ---- a rank dies after step 3: the job ends with an error in bounded time, step 2's checkpoint resumes
"${MPI[@]}" "$CKE" train "${TINY[@]}" "${RUN[@]}" --batch 4 --steps 6 --save-every 2 --out "$T/ref6" >"$T/ref6.log" 2>&1
t0=$(date +%s)
"${MPI[@]}" sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then export CKE_FAULT_AT=step:3; fi; exec "$0" "$@"' \
    "$CKE" train "${TINY[@]}" "${RUN[@]}" --batch 4 --steps 6 --save-every 2 --out "$T/kill" >"$T/kill.log" 2>&1
rc=$?
dt=$(($(date +%s) - t0))
check dist_rank_dies_job_ends sh -c '[ "$1" != 0 ] && [ "$1" != 124 ] && [ "$2" -le 30 ]' _ $rc $dt
echo "   (exit $rc after ${dt}s)"
check dist_killed_checkpoint_step2 grep -Eq '"step":[[:space:]]*2,' "$T/kill/checkpoint/trainer.json"
"${MPI[@]}" "$CKE" train --resume --out "$T/kill" >"$T/resume.log" 2>&1
check dist_resume_bit_identical sh -c 'cmp -s "$1/checkpoint/model.safetensors" "$2/checkpoint/model.safetensors" &&
    cmp -s "$1/checkpoint/optimizer.safetensors" "$2/checkpoint/optimizer.safetensors"' _ "$T/kill" "$T/ref6"

# ---- a rank hangs: the other's deadline names the wait and ends the job
(cd "$T" && exec "${MPI[@]}" sh -c 'echo $$ >"pid.$OMPI_COMM_WORLD_RANK"; exec "$0" "$@"' "$CKE" train "${TINY[@]}" \
    "${RUN[@]}" --batch 4 --steps 1000000 --save-every 20 --dist-timeout 3 --out "$T/hang" >"$T/hang.log" 2>&1) &
job=$!
for _ in $(seq 300); do [ -s "$T/hang/checkpoint/trainer.json" ] && [ -s "$T/pid.1" ] && break; sleep 0.1; done
kill -STOP "$(cat "$T/pid.1")"
t0=$(date +%s)
wait $job
rc=$?
dt=$(($(date +%s) - t0))
kill -KILL "$(cat "$T/pid.1")" 2>/dev/null
if [ $rc != 0 ] && [ $rc != 124 ] && [ $dt -le 30 ] &&
    grep -q 'cke train: rank 0 of 2: i/o error: MPI .*: no answer from the other ranks in 3 s (--dist-timeout)' "$T/hang.log"; then
    ok_ dist_rank_hangs_timeout "exit $rc after ${dt}s: $(grep -m1 'no answer' "$T/hang.log")"
else bad dist_rank_hangs_timeout "exit $rc after ${dt}s"; tail -5 "$T/hang.log"; fi
out=$("$CKE" train --resume --stop-after 1 --out "$T/hang" 2>&1); rc=$?
if [ $rc = 0 ] && echo "$out" | grep -q 'stopped after step'; then ok_ dist_hang_checkpoint_resumes "$(echo "$out" | tail -1 | cut -c1-100)"
else bad dist_hang_checkpoint_resumes "exit $rc"; echo "$out" | tail -5; fi

# ---- an np=2 checkpoint continues in one process (re-sharded: the moments were saved whole)
out=$("$CKE" train --resume --steps 8 --out "$T/ref6" 2>&1); rc=$?
if [ $rc = 0 ] && echo "$out" | grep -q 'trained by 2 rank(s), now 1' && sanitizer_clean <(echo "$out"); then
    ok_ dist_resume_other_n "$(echo "$out" | grep -o 'the checkpoint was trained by 2 rank(s), now 1')"
else bad dist_resume_other_n "exit $rc"; echo "$out" | tail -5; fi

rm -rf "$T"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
