#!/usr/bin/env bash
# Builds llama.cpp's llama-server (CPU, native, Release) from the sources bench/llama/llama_bench.sh
# unpacks from llama-cpp-python's sdist (run that first, or `bench/llama/llama_bench.sh --build-only`),
# into $WORK/server-build/bin/llama-server, for bench/serve/serve_bench.py --llama-server.
# Not a test. WORK as llama_bench.sh's (default build/llama-bench), JOBS (default 1).
set -eu
cd "$(dirname "$0")/../.."
WORK=${WORK:-build/llama-bench}
SRC=$WORK/src/vendor/llama.cpp
[ -f "$SRC/CMakeLists.txt" ] || { echo "build_llama_server.sh: no llama.cpp sources in $SRC: run bench/llama/llama_bench.sh --build-only first" >&2; exit 1; }
cmake -S "$SRC" -B "$WORK/server-build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >"$WORK/server-cmake.log" 2>&1 ||
    { echo "cmake failed: see $WORK/server-cmake.log" >&2; exit 1; }
nice -n 19 cmake --build "$WORK/server-build" -j "${JOBS:-1}" --target llama-server >"$WORK/server-make.log" 2>&1 ||
    { echo "llama-server build failed: see $WORK/server-make.log" >&2; exit 1; }
echo "$WORK/server-build/bin/llama-server"
