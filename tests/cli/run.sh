#!/usr/bin/env bash
# Command-line regression tests: every tests/cli/t_*.sh, run against $BUILD/cke (build/ or
# build-san/, where any ASan/UBSan report aborts the process and so fails the case).
# Each case runs the real binary with a time limit: a hang is a failure too.
# Usage: BUILD=build tests/cli/run.sh [t_NAME.sh...]; ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CKE=$PWD/$BUILD/cke
export CKE_MODELS=${CKE_MODELS:-$(cd .. && pwd)/shared/models}
T=$(mktemp -d "${TMPDIR:-/tmp}/cke-cli.XXXXXX")
export CKE_CACHE=$T/cache
pass=0
fail=0
LIMIT=${CLI_TIMEOUT:-120}

# ok NAME CMD...: passes when CMD exits 0 within the limit
ok() {
    local name=$1; shift
    local out rc
    out=$(timeout "$LIMIT" "$@" 2>&1 </dev/null); rc=$?
    if [ $rc = 0 ]; then pass=$((pass + 1)); echo "PASS $name"
    else fail=$((fail + 1)); echo "FAIL $name: exit $rc"; echo "$out" | tail -15 | sed 's/^/    /'; fi
}

# refuses NAME RC PATTERN CMD...: passes when CMD exits with status RC (not a signal, not a
# sanitizer abort, not a time-out) and its output matches the extended regex PATTERN
refuses() {
    local name=$1 want=$2 pat=$3; shift 3
    local out rc
    out=$(timeout "$LIMIT" "$@" 2>&1 </dev/null); rc=$?
    if [ $rc = "$want" ] && echo "$out" | grep -Eq -- "$pat" && ! echo "$out" | grep -q 'Sanitizer\|runtime error'; then
        pass=$((pass + 1)); echo "PASS $name: $(echo "$out" | grep -E -- "$pat" | head -1 | cut -c1-160)"
    else
        fail=$((fail + 1)); echo "FAIL $name: exit $rc (want $want), output should match /$pat/:"
        echo "$out" | tail -15 | sed 's/^/    /'
    fi
}

# check NAME CONDITION-CMD...: a plain assertion (a shell command that must succeed)
check() {
    local name=$1; shift
    if "$@"; then pass=$((pass + 1)); echo "PASS $name"
    else fail=$((fail + 1)); echo "FAIL $name"; fi
}

have_models() { [ -f "$CKE_MODELS/stories260K/stories260K.gguf" ]; }

scripts=${*:-$(ls tests/cli/t_*.sh)}
for s in $scripts; do
    [ -f "$s" ] || s=tests/cli/$s
    echo "== $s"
    # shellcheck disable=SC1090
    . "$s"
done
rm -rf "$T"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
