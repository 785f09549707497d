#!/usr/bin/env bash
# Installs what cke needs on Debian 12, only what is missing (apt-get; sudo when not root).
#   tools/deps.sh          build + run: compiler, cJSON, PCRE2, utf8proc, libedit (cke chat),
#                          libmicrohttpd (cke serve), Open MPI (mpirun -np N cke train)
#   tools/deps.sh --test   also the test suite's: Debian's PyTorch, NumPy and PyYAML (references;
#                          PyYAML and pip for gguf-py, which tests/quant/test_gguf_crosscheck.sh
#                          pip-installs into build/pydeps),
#                          OpenBLAS (benchmarks), clang + libFuzzer (fuzz targets), bc, time,
#                          tmux (cke chat on a terminal: tests/cli/t_chat.sh), pkgconf (examples/embed.c
#                          built against an installed cke: tests/cli/t_lib.sh),
#                          Chromium (tests/cli/t_report.sh opens report.html headless),
#                          curl (tests/cli/t_serve.sh talks to cke serve)
set -u
NEED="build-essential libcjson-dev libpcre2-dev libutf8proc-dev libedit-dev libmicrohttpd-dev libopenmpi-dev openmpi-bin"
[ "${1:-}" = "--test" ] && NEED="$NEED python3-torch python3-numpy python3-yaml python3-pip libopenblas-dev clang libclang-rt-14-dev bc time tmux pkgconf chromium curl"
# the embedded build's cross checks (tests/embed): aarch64 gcc + qemu-user, bare-metal arm-none-eabi
[ "${1:-}" = "--test" ] && NEED="$NEED gcc-aarch64-linux-gnu qemu-user gcc-arm-none-eabi libnewlib-arm-none-eabi"
# two "machines" as network namespaces for MPI over TCP (tests/dist/test_hosts.sh)
[ "${1:-}" = "--test" ] && NEED="$NEED iproute2"
missing=""
for p in $NEED; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
