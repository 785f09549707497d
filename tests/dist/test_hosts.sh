#!/usr/bin/env bash
# Two "machines" on this one: network namespaces ckeA and ckeB joined by a veth pair (10.77.x.1
# and .2/24), each running one MPI rank, Open MPI's TCP transport between them (and its daemons'
# out-of-band channel) over the veth only. mpirun starts in ckeA; its "remote" daemon is started
# in ckeB by an rsh agent that runs the command in that namespace instead of over ssh. Cases:
#   - tensor parallel (mpirun -np 2 cke run across the hosts): the single-process greedy text
#   - data parallel (mpirun -np 2 cke train across the hosts): the losses of the same run with both
#     ranks on one host, bit for bit (the reduction is cke's own, in rank order, whatever the wire)
# Needs root (network namespaces); without the right to create them it says so and runs nothing.
# Usage: BUILD=build tests/dist/test_hosts.sh; ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CKE=$PWD/$BUILD/cke
CKE_MODELS=${CKE_MODELS:-$(cd .. && pwd)/shared/models}
T=$(mktemp -d "${TMPDIR:-/tmp}/cke-hosts.XXXXXX")
export CKE_CACHE=$T/cache
pass=0
fail=0
check() { local n=$1; shift; if "$@"; then pass=$((pass + 1)); echo "PASS $n"; else fail=$((fail + 1)); echo "FAIL $n"; fi; }
finish() { rm -rf "$T"; echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

S=$CKE_MODELS/stories260K
if ! command -v mpirun >/dev/null || ! command -v ip >/dev/null || [ ! -f "$S/tok512.bin" ]; then
    echo "FAIL hosts: needs mpirun (openmpi-bin), ip (iproute2) and $S"; fail=1; finish
fi
# unique names: two runs of the suite may share the machine
A=ckeA$$ B=ckeB$$ N=$((($$ % 200) + 20))
NA=10.77.$N.1 NB=10.77.$N.2
cleanup() { ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; }
trap cleanup EXIT
if ! ip netns add "$A" 2>"$T/ns.err"; then
    echo "SKIP hosts: cannot create a network namespace here ($(head -1 "$T/ns.err")): run as root"
    finish
fi
ip netns add "$B" && ip link add "v$A" type veth peer name "v$B" && ip link set "v$A" netns "$A" && ip link set "v$B" netns "$B" &&
    ip -n "$A" addr add "$NA/24" dev "v$A" && ip -n "$B" addr add "$NB/24" dev "v$B" &&
    ip -n "$A" link set "v$A" up && ip -n "$B" link set "v$B" up && ip -n "$A" link set lo up && ip -n "$B" link set lo up
check hosts_veth_up ip netns exec "$A" sh -c "cat /sys/class/net/v$A/operstate | grep -qx up"

# the rsh agent: "agent HOST COMMAND..." runs COMMAND in HOST's namespace
cat >"$T/agent.sh" <<AGENT
#!/bin/sh
h=\$1; shift
case "\$h" in $NA) ns=$A ;; $NB) ns=$B ;; *) echo "agent: unknown host \$h" >&2; exit 1 ;; esac
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
chmod +x "$T/agent.sh"
MPI=(timeout 120 ip netns exec "$A" mpirun --allow-run-as-root --oversubscribe --host "$NA:1,$NB:1" -np 2
     --mca plm_rsh_agent "$T/agent.sh" --mca btl self,tcp --mca btl_tcp_if_include "10.77.$N.0/24"
     --mca oob_tcp_if_include "10.77.$N.0/24" -x CKE_CACHE)
if [ "$BUILD" = build-san ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export LSAN_OPTIONS=suppressions=$PWD/tests/dist/lsan.supp:fast_unwind_on_malloc=0:print_suppressions=0
    export OMPI_MCA_mca_base_component_disable_dlclose=1
    MPI+=(-x ASAN_OPTIONS -x UBSAN_OPTIONS -x LSAN_OPTIONS -x OMPI_MCA_mca_base_component_disable_dlclose)
fi
clean() { ! grep -q 'Sanitizer\|runtime error' "$1"; }

# each rank says where it runs: one per namespace
"${MPI[@]}" sh -c 'echo "$OMPI_COMM_WORLD_RANK $(ip -br addr | grep -o "10\.77\.[0-9.]*")"' 2>&1 | sort >"$T/where.txt"
check hosts_one_rank_per_namespace sh -c "[ \"\$(cat '$T/where.txt')\" = \"\$(printf '0 $NA\n1 $NB')\" ]"

# tensor parallel across the hosts
ARGS=(-p "Once upon a time" -n 100 --temp 0 --tokenizer "$S/tok512.bin")
"$CKE" run "$S/stories260K.bin" "${ARGS[@]}" >"$T/one.txt" 2>/dev/null
"${MPI[@]}" "$CKE" run "$S/stories260K.bin" "${ARGS[@]}" -t 1 >"$T/two.txt" 2>"$T/two.err"
check hosts_tp_text_eq_one_process sh -c "[ -s '$T/one.txt' ] && cmp -s '$T/one.txt' '$T/two.txt'"
check hosts_tp_sanitizer_clean clean "$T/two.err"

# data parallel across the hosts = the same two ranks on one host
DATA=$T/data.txt
head -c 20000 data/stories.txt >"$DATA"
TR=(--init llama --tokenizer "$S/tok512.bin" --dim 16 --layers 1 --heads 2 --ffn 32 --data "$DATA" --seq 16 --batch 4
    --steps 6 --eval-every 0 --eval-batches 1 --threads 1 --warmup 2)
"${MPI[@]}" "$CKE" train "${TR[@]}" --out "$T/dp_hosts" >"$T/dp_hosts.log" 2>&1
timeout 120 mpirun --allow-run-as-root --oversubscribe --mca btl self,tcp -np 2 "$CKE" train "${TR[@]}" --out "$T/dp_local" \
    >"$T/dp_local.log" 2>&1
awk '$1 == "step" && $3 == "loss" { print $4 }' "$T/dp_hosts/log.txt" >"$T/loss_hosts.txt" 2>/dev/null
awk '$1 == "step" && $3 == "loss" { print $4 }' "$T/dp_local/log.txt" >"$T/loss_local.txt" 2>/dev/null
check hosts_dp_losses_eq_one_host sh -c "[ \$(wc -l <'$T/loss_local.txt') = 6 ] && cmp -s '$T/loss_hosts.txt' '$T/loss_local.txt'"
check hosts_dp_sanitizer_clean clean "$T/dp_hosts.log"
finish
