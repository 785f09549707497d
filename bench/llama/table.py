#!/usr/bin/env python3
"""Helpers of bench/llama/llama_bench.sh (numbers only; no shell strings).

  table.py llama-jsonl FILE          llama-bench -o jsonl output -> "pp|tg DEPTH tok/s" lines
                                     (best sample of the repetitions, as cke's side reports)
  table.py llama-settings FILE       its KV cache type, flash attention, batch sizes, mmap
  table.py render RESULTS OUT.md     the ratio table of a results file (lines "shape format
                                     threads engine test depth tok/s"), printed and written as
                                     markdown (with the header lines of RESULTS.meta)
  table.py update-docs OUT.md DOC    replaces DOC's text between the llama-bench markers by OUT.md
"""
import json
import sys

BEGIN = "<!-- llama-bench:begin (bench/llama/llama_bench.sh --update-docs writes this section) -->"
END = "<!-- llama-bench:end -->"
FORMATS = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M"]
SHAPES = ["110m", "1.1b"]


def llama_jsonl(path):
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        test = "pp" if r["n_prompt"] > 0 else "tg"
        print(test, r["n_depth"], "%.3f" % max(r["samples_ts"]))


def llama_settings(path):
    """the settings of llama-bench's last result that bear on speed, as words"""
    r = [json.loads(l) for l in open(path) if l.startswith("{")][-1]
    fa = {-1: "auto", 0: "off", 1: "on"}.get(r.get("flash_attn"), r.get("flash_attn"))
    load = r.get("load_mode", "mmap" if r.get("use_mmap") else "read")
    print("KV cache %s/%s, flash attention %s, batch %s, ubatch %s, load mode %s, repack %s" % (
        r.get("type_k"), r.get("type_v"), fa, r.get("n_batch"), r.get("n_ubatch"), load,
        r.get("repack", "?")))


def order(seq, x):
    return (seq.index(x), x) if x in seq else (len(seq), x)


def render(results, out):
    tps = {}  # (shape, fmt, threads) -> {(test, depth): {engine: tok/s}}
    tests = set()
    for line in open(results):
        f = line.split()
        if len(f) != 7:
            continue
        shape, fmt, nth, engine, test, depth, v = f
        tps.setdefault((shape, fmt, int(nth)), {}).setdefault((test, int(depth)), {})[engine] = float(v)
        tests.add((test, int(depth)))
    cols = sorted(tests, key=lambda t: (t[0] != "pp", t[1]))
    try:
        meta = open(results + ".meta").read().strip().splitlines()
    except OSError:
        meta = []
    names = {"pp": "prefill pp%s", "tg": "decode tg%s"}
    pp, tg = (meta_value(meta, k) for k in ("PP", "TG"))
    head = ["format", "shape", "threads"]
    for t, d in cols:
        h = names[t] % (pp if t == "pp" else tg)
        head.append(h + (" @ depth %d" % d if d else ""))
    rows = []
    for key in sorted(tps, key=lambda k: (order(FORMATS, k[1]), order(SHAPES, k[0]), k[2])):
        shape, fmt, nth = key
        row = [fmt, shape, str(nth)]
        for c in cols:
            e = tps[key].get(c, {})
            ck, ll = e.get("cke"), e.get("llama")
            if ck is None or ll is None:
                row.append("-")
            else:
                row.append("%s / %s = **%.2fx**" % (num(ck), num(ll), ck / ll))
        rows.append(row)
    md = [l for l in meta if not l.startswith("#")]
    md += ["", "Cells: cke tok/s / llama.cpp tok/s = ratio (above 1: cke is faster).", ""]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * len(head))
    md += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(md) + "\n"
    open(out, "w").write(text)
    # the terminal gets the same table with aligned plain columns
    plain = [head] + [[c.replace("**", "") for c in r] for r in rows]
    w = [max(len(r[i]) for r in plain) for i in range(len(head))]
    for r in plain:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())


def meta_value(meta, key):
    for l in meta:
        if l.startswith("# " + key + "="):
            return l.split("=", 1)[1]
    return "?"


def num(v):
    return "%.0f" % v if v >= 100 else "%.1f" % v


def update_docs(md, doc):
    text = open(doc).read()
    if BEGIN not in text or END not in text:
        sys.exit("table.py: %s has no llama-bench markers (%s ... %s)" % (doc, BEGIN, END))
    a = text.index(BEGIN) + len(BEGIN)
    b = text.index(END)
    open(doc, "w").write(text[:a] + "\n" + open(md).read() + text[b:])


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "llama-jsonl" and len(sys.argv) == 3:
        llama_jsonl(sys.argv[2])
    elif cmd == "llama-settings" and len(sys.argv) == 3:
        llama_settings(sys.argv[2])
    elif cmd == "render" and len(sys.argv) == 4:
        render(sys.argv[2], sys.argv[3])
    elif cmd == "update-docs" and len(sys.argv) == 4:
        update_docs(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
