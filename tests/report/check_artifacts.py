#!/usr/bin/python3
"""Parses the JSON artifacts the report reads with Python's json module and checks their schema
fields (tests/cli/t_report.sh). usage: check_artifacts.py FILE... (kind from the file name:
profile*.json, layout.json, ir.json); `--count-ops FILE` prints the number of op rows of a
profile (every mode), the number of roofline points its report must draw."""
import json
import sys


def need(obj, keys, where):
    for k in keys:
        if k not in obj:
            raise SystemExit("%s: missing field '%s'" % (where, k))


def check_profile(d, p):
    if d.get("schema") != "cke-profile/1":
        raise SystemExit("%s: schema is %r, want cke-profile/1" % (p, d.get("schema")))
    need(d, ["model", "machine", "run", "modes"], p)
    need(d["model"], ["name", "family", "n_layers", "dim", "vocab"], p + " model")
    need(d["machine"], ["isa", "threads", "peak_gflops", "bandwidth_gbs"], p + " machine")
    need(d["run"], ["kind", "wall_s"], p + " run")
    for m in d["modes"]:
        need(m, ["mode", "calls", "tokens", "wall_s", "ops_s", "outside_ops_s", "ops"], p + " mode")
        if m["mode"] not in ("prefill", "decode", "train_forward", "train_backward", "optimizer"):
            raise SystemExit("%s: unknown mode %r" % (p, m["mode"]))
        for o in m["ops"]:
            need(o, ["id", "name", "layer", "op", "shape", "kernel", "calls", "time_s", "flops", "bytes", "gflops", "gbs",
                     "intensity", "roof_gflops", "frac_roof", "bound"], "%s %s op" % (p, m["mode"]))
            if o["bound"] not in ("compute", "memory"):
                raise SystemExit("%s: op %s bound %r" % (p, o["name"], o["bound"]))


def check_layout(d, p):
    need(d, ["alignment", "weights", "kv_cache", "modes"], p)
    for t in d["weights"]["tensors"]:
        need(t, ["name", "layer", "dtype", "shape", "offset", "size"], p + " weight")
    for m in d["modes"]:
        need(m, ["mode", "T", "arena_bytes", "sum_of_buffers", "buffers"], p + " mode")
        for b in m["buffers"]:
            need(b, ["name", "offset", "size", "shape", "first", "last"], p + " buffer")
            if b["offset"] + b["size"] > m["arena_bytes"]:
                raise SystemExit("%s: buffer %s ends past the arena" % (p, b["name"]))


def check_ir(d, p):
    need(d, ["family", "n_layer", "hparams", "values", "nodes"], p)
    for n in d["nodes"]:
        need(n, ["op", "section", "layer", "out", "in"], p + " node")


def main():
    a = sys.argv[1:]
    if a and a[0] == "--count-ops":
        d = json.load(open(a[1]))
        print(sum(len(m["ops"]) for m in d["modes"]))
        return
    for p in a:
        with open(p) as f:
            d = json.load(f)
        base = p.rsplit("/", 1)[-1]
        if base.startswith("profile"):
            check_profile(d, p)
        elif base == "layout.json":
            check_layout(d, p)
        elif base == "ir.json":
            check_ir(d, p)


main()
