#!/usr/bin/env bash
# Tokenizer throughput, cke vs Hugging Face `tokenizers` (Rust, pip install tokenizers) on the same
# text and the same tokenizer files, single-threaded, 4 KiB newline-aligned chunks, best of 3.
#   bench/bench_tokenizer.sh [BUILD_DIR]     (default build; CKE_MODELS as for the tests)
# The SPM vocabulary (llama-spm GGUF) has no HF peer here: there is no tokenizer.json/.model for it.
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
M=${CKE_MODELS:-../shared/models}
TXT=${TMPDIR:-/tmp}/cke_bench_corpus.txt
# ~4 MB of mixed English prose, code and some Unicode, from files every Debian has.
if [ ! -s "$TXT" ]; then
    { cat /usr/share/common-licenses/* ; cat "$M"/tokenizers/*.inp;
      find /usr/lib/python3* -name '*.py' 2>/dev/null | sort | head -400 | xargs cat 2>/dev/null; } | head -c 4000000 > "$TXT"
fi
echo "corpus: $TXT ($(stat -c %s "$TXT") bytes)"
[ -x "$B/bench_tokenizer" ] || make -s BUILD="$B" "$B/bench_tokenizer" >/dev/null
GPT2_JSON=$M/tiny-random-gpt2/tokenizer.json
QWEN_JSON=$M/tokenizers/qwen3-hf/tokenizer.json
"$B/bench_tokenizer" "$TXT" "$M/tokenizers/ggml-vocab-llama-spm.gguf" "$M/tokenizers/ggml-vocab-gpt-2.gguf" \
    "$GPT2_JSON" "$QWEN_JSON" | tee /tmp/cke_bench_cke.txt
PY=python3
if ! $PY -c 'import tokenizers' 2>/dev/null; then echo "peer: python 'tokenizers' not installed (pip install tokenizers)"; exit 0; fi
RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false $PY - "$TXT" "$GPT2_JSON" "$QWEN_JSON" <<'PYEOF' | tee /tmp/cke_bench_hf.txt
import sys, time
from tokenizers import Tokenizer
text = open(sys.argv[1], 'rb').read().decode('utf-8', 'replace')
chunks, pos = [], 0
raw = text.encode('utf-8')
# same newline-aligned ~4 KiB chunks as bench_tokenizer.c (by bytes)
while pos < len(raw):
    end = min(pos + 4096, len(raw))
    nl = raw.find(b'\n', end) if end < len(raw) else -1
    end = nl + 1 if nl >= 0 else len(raw)
    chunks.append(raw[pos:end].decode('utf-8', 'replace')); pos = end
for path in sys.argv[2:]:
    tk = Tokenizer.from_file(path)
    best = 1e30
    for _ in range(3):
        t0 = time.perf_counter(); n = 0
        for c in chunks: n += len(tk.encode(c, add_special_tokens=False).ids)
        best = min(best, time.perf_counter() - t0)
    print("hf   %-60s %8.2f MB/s  %9d tokens" % (path, len(raw) / best / 1e6, n))
PYEOF
echo "ratio cke/hf:"
for f in "$GPT2_JSON" "$QWEN_JSON"; do
    c=$(grep -F "$f" /tmp/cke_bench_cke.txt | awk '{print $3}'); h=$(grep -F "$f" /tmp/cke_bench_hf.txt | awk '{print $3}')
    awk -v c="$c" -v h="$h" -v f="$f" 'BEGIN { printf "  %-60s %.2fx\n", f, c / h }'
done
