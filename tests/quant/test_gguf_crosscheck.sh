#!/usr/bin/env bash
# cke's GGUF block formats against gguf-py (llama.cpp's Python GGUF package, an independent
# numpy implementation): see gguf_crosscheck.py. gguf-py is pinned and installed (without
# dependencies) into $BUILD/pydeps; it runs on Debian's Python, which has NumPy and PyYAML
# (tools/deps.sh --test).
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
PYDEPS="$B/pydeps"
GGUF_PY_VERSION=0.19.0
if [ ! -f "$PYDEPS/gguf-$GGUF_PY_VERSION.ok" ]; then
    rm -rf "$PYDEPS"
    pip_ok=0
    for py in python3 /usr/bin/python3; do
        if "$py" -m pip install -q --no-deps --target "$PYDEPS" "gguf==$GGUF_PY_VERSION" >"$B/pydeps.log" 2>&1; then pip_ok=1; break; fi
    done
    if [ "$pip_ok" != 1 ]; then
        echo "FAIL cannot install gguf==$GGUF_PY_VERSION from PyPI with pip: $(tail -2 "$B/pydeps.log")"
        echo "0 passed, 1 failed"; exit 1
    fi
    touch "$PYDEPS/gguf-$GGUF_PY_VERSION.ok"
fi
T=$(mktemp -d /tmp/cke-gguf-xcheck.XXXXXX)
trap 'rm -rf "$T"' EXIT
PYTHONPATH="$PYDEPS" /usr/bin/python3 tests/quant/gguf_crosscheck.py "$B/cke" "$T"
