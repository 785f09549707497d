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
# the embedded build's and aarch64 cross checks (tests/embed, tests/cross): aarch64 gcc + qemu-user,
# bare-metal arm-none-eabi, and the arm64 builds of the libraries the aarch64 cke links (Debian
# multiarch: dpkg --add-architecture arm64)
ARM64="libcjson-dev:arm64 libpcre2-dev:arm64 libutf8proc-dev:arm64 libedit-dev:arm64 libmicrohttpd-dev:arm64"
[ "${1:-}" = "--test" ] && NEED="$NEED gcc-aarch64-linux-gnu qemu-user gcc-arm-none-eabi libnewlib-arm-none-eabi $ARM64"
# two "machines" as network namespaces for MPI over TCP (tests/dist/test_hosts.sh)
[ "${1:-}" = "--test" ] && NEED="$NEED iproute2"
missing=""
# dpkg-query -W, not dpkg -s: with arm64 added, a name installed for both architectures is ambiguous to -s
for p in $NEED; do dpkg-query -W -f='${db:Status-Abbrev}\n' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
case "$missing" in *:arm64*)
    dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64 ;;
esac
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
