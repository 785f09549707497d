#!/usr/bin/env bash
# Data-parallel training on this machine: tokens/s of one process with 2 threads against
# mpirun -np 2 with 1 thread per rank (reduction overlapped with the backward, and after it), the
# exposed communication per step (log.txt's comm_ms: time a rank waits in collectives after its
# backward), then the all-reduce bandwidth over 1-64 MiB (build/bench_dist_allreduce).
# Short (about a minute); run it on a quiet machine. Usage:
#   bench/dist/run.sh [--dim D --layers L --heads H --ffn F --seq T --batch B --steps N]
#   MPI_BTL=self,vader bench/dist/run.sh    (shared memory instead of TCP over loopback)
set -eu
cd "$(dirname "$0")/../.."
CKE_MODELS=${CKE_MODELS:-$(cd .. && pwd)/shared/models}
BTL=${MPI_BTL:-self,tcp}
DIM=256 LAYERS=4 HEADS=4 FFN=768 SEQ=128 BATCH=8 STEPS=12
while [ $# -gt 0 ]; do
    case $1 in
    --dim) DIM=$2 ;; --layers) LAYERS=$2 ;; --heads) HEADS=$2 ;; --ffn) FFN=$2 ;;
    --seq) SEQ=$2 ;; --batch) BATCH=$2 ;; --steps) STEPS=$2 ;;
    *) echo "usage: $0 [--dim D --layers L --heads H --ffn F --seq T --batch B --steps N]"; exit 2 ;;
    esac
    shift 2
done
make -j1 build/cke build/bench_dist_allreduce >/dev/null
T=$(mktemp -d "${TMPDIR:-/tmp}/cke-bench-dist.XXXXXX")
trap 'rm -rf "$T"' EXIT
head -c 400000 data/stories.txt >"$T/data.txt"
MODEL=(--init llama --tokenizer "$CKE_MODELS/stories260K/tok512.bin" --dim "$DIM" --layers "$LAYERS" --heads "$HEADS" --ffn "$FFN")
RUN=(--data "$T/data.txt" --seq "$SEQ" --batch "$BATCH" --steps "$STEPS" --eval-every 0 --eval-batches 1 --warmup 2)
MPI=(mpirun --allow-run-as-root --oversubscribe --mca btl "$BTL" -np 2)

tps() { grep -o '[0-9]* tokens/s' "$1" | tail -1 | cut -d' ' -f1; }
# mean comm_ms and step ms over the steps after the first (which pays for first-touch faults)
means() { awk '$3 == "loss" && $2 > 1 { n++; ms += $10; if ($11 == "comm_ms") c += $12 }
    END { if (n) printf "%.1f %.2f", ms / n, c / n; else print "- -" }' "$1"; }

./build/cke train "${MODEL[@]}" "${RUN[@]}" --threads 1 --out "$T/np1t1" 2>"$T/np1t1.err"
./build/cke train "${MODEL[@]}" "${RUN[@]}" --threads 2 --out "$T/np1" 2>"$T/np1.err"
"${MPI[@]}" ./build/cke train "${MODEL[@]}" "${RUN[@]}" --threads 1 --out "$T/ov" 2>"$T/ov.err"
"${MPI[@]}" ./build/cke train "${MODEL[@]}" "${RUN[@]}" --threads 1 --no-overlap --out "$T/nov" 2>"$T/nov.err"
read -r ms0 _ <<<"$(means "$T/np1t1/log.txt")"
read -r ms1 _ <<<"$(means "$T/np1/log.txt")"
read -r ms2 c2 <<<"$(means "$T/ov/log.txt")"
read -r ms3 c3 <<<"$(means "$T/nov/log.txt")"
params=$(grep -o 'AdamW m and v per rank: [0-9]* bytes of [0-9]*' "$T/ov/build/memory_map.txt" | awk '{print $NF / 8}')
echo "llama dim $DIM, $LAYERS layers, ffn $FFN ($params parameters), global batch $BATCH x $SEQ tokens, $STEPS steps, btl $BTL"
echo
echo "| run | tokens/s | ms/step | exposed comm ms/step |"
echo "|---|---|---|---|"
echo "| np=1, 1 thread | $(tps "$T/np1t1.err") | $ms0 | - |"
echo "| np=1, 2 threads | $(tps "$T/np1.err") | $ms1 | - |"
echo "| np=2, 1 thread each, overlapped | $(tps "$T/ov.err") | $ms2 | $c2 |"
echo "| np=2, 1 thread each, --no-overlap | $(tps "$T/nov.err") | $ms3 | $c3 |"
echo
grep -h 'AdamW m and v per rank' "$T/ov/build/memory_map.txt" | sed 's/^ *//'
echo
"${MPI[@]}" ./build/bench_dist_allreduce
