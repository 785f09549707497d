#!/usr/bin/env python3
"""Aggregate generation throughput of `cke serve` next to llama.cpp's llama-server (issue 12).

Not a test: numbers only. For each server and each client count C, C client threads each send
REQUESTS /v1/completions requests one after another (greedy, max_tokens fixed, a different prompt
per request) over loopback; the aggregate rate is the completion tokens the servers report in
`usage` divided by the wall time of the round. Both servers get the same GGUF, the same number of
slots (-np / --parallel, the largest C), the same threads, the same context per slot.

usage: serve_bench.py MODEL.gguf [--clients 1,4,8] [--requests 4] [--max-tokens 64] [--threads 2]
                      [--ctx 512] [--cke build/cke] [--cke-args "--batch"] [--llama-server PATH]
                      [--markdown]
Without --llama-server (or when the path is missing) only cke is measured.
Servers are spawned with argv lists (no shell) on 127.0.0.1 with a free port, and killed at exit.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

PROMPTS = [
    "Once upon a time, there was a little girl named",
    "The old man walked to the river and",
    "In a small town by the sea, the children",
    "The cat looked at the dog and said",
    "Tom had a red ball. One day he",
    "Far away in the forest lived a tiny",
    "The sun was hot and the birds",
    "Lily wanted to bake a cake for her",
    "A big truck drove down the street while",
    "The teacher asked the class to",
    "Every morning the farmer would",
    "Sam found a shiny key under the",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, path, body, timeout=600):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
        return json.loads(data)
    finally:
        c.close()


def model_id(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/v1/models")
        return json.loads(c.getresponse().read())["data"][0]["id"]
    finally:
        c.close()


def healthy(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/health")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


class Server:
    def __init__(self, name, argv, port, log):
        self.name, self.port = name, port
        self.log = open(log, "w")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 900  # the first cke serve compiles the model
        while not healthy(port):
            if self.p.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.p.returncode}; see {log}")
            if time.time() > deadline:
                raise RuntimeError(f"{name} did not become healthy; see {log}")
            time.sleep(0.5)

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log.close()


def one_round(port, model, clients, requests, max_tokens):
    """C threads x `requests` sequential requests; returns (completion tokens, seconds, errors)."""
    tokens = [0] * clients
    errors = []

    def client(ci):
        for r in range(requests):
            prompt = PROMPTS[(ci * requests + r) % len(PROMPTS)]
            try:
                a = post(port, "/v1/completions", {"model": model, "prompt": prompt, "max_tokens": max_tokens,
                                                   "temperature": 0})
                tokens[ci] += int(a["usage"]["completion_tokens"])
            except Exception as e:  # noqa: BLE001 - reported, not fatal to the other clients
                errors.append(str(e))

    th = [threading.Thread(target=client, args=(ci,)) for ci in range(clients)]
    t0 = time.perf_counter()
    for t in th:
        t.start()
    for t in th:
        t.join()
    return sum(tokens), time.perf_counter() - t0, errors


def measure(srv, counts, a):
    model = model_id(srv.port)
    post(srv.port, "/v1/completions", {"model": model, "prompt": PROMPTS[0], "max_tokens": 8, "temperature": 0})  # warm
    out = {}
    for c in counts:
        tok, sec, err = one_round(srv.port, model, c, a.requests, a.max_tokens)
        out[c] = (tok / sec if sec > 0 else 0.0, tok, sec, len(err))
        print(f"  {srv.name:13s} clients {c:2d}: {tok:5d} tokens in {sec:6.2f} s = {out[c][0]:7.1f} tok/s"
              + (f"  ({len(err)} errors: {err[0]})" if err else ""), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--requests", type=int, default=4, help="requests per client per round")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=512, help="context per slot")
    ap.add_argument("--cke", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "cke"))
    ap.add_argument("--cke-args", default="--batch", help="extra cke serve options (split on spaces)")
    ap.add_argument("--llama-server", default="")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    counts = [int(x) for x in a.clients.split(",")]
    npar = max(counts)
    logdir = os.environ.get("CKE_BENCH_DIR", "/tmp/cke-bench-serve")
    os.makedirs(logdir, exist_ok=True)
    res = {}
    runs = [("cke", [a.cke, "serve", a.model, "--parallel", str(npar), "--ctx", str(a.ctx), "--threads",
                     str(a.threads)] + a.cke_args.split())]
    if a.llama_server and os.path.exists(a.llama_server):
        runs.append(("llama-server", [a.llama_server, "-m", a.model, "-np", str(npar), "-c", str(a.ctx * npar),
                                      "-t", str(a.threads), "-tb", str(a.threads), "--no-webui"]))
    for name, argv in runs:
        port = free_port()
        argv = argv + (["--port", str(port)] if name == "cke" else ["--host", "127.0.0.1", "--port", str(port)])
        print(f"{name}: {' '.join(argv)}", flush=True)
        srv = Server(name, argv, port, os.path.join(logdir, name + ".log"))
        try:
            res[name] = measure(srv, counts, a)
        finally:
            srv.stop()
    model = os.path.basename(a.model)
    head = ["clients", "cke tok/s", "x cke@1"] + (["llama-server tok/s", "x llama-server@1", "cke / llama-server"]
                                                  if "llama-server" in res else [])
    rows = []
    for c in counts:
        k = res["cke"][c][0]
        row = [str(c), f"{k:.1f}", f"{k / res['cke'][counts[0]][0]:.2f}" if res["cke"][counts[0]][0] else "-"]
        if "llama-server" in res:
            l = res["llama-server"][c][0]
            row += [f"{l:.1f}", f"{l / res['llama-server'][counts[0]][0]:.2f}" if res["llama-server"][counts[0]][0] else "-",
                    f"{k / l:.2f}" if l else "-"]
        rows.append(row)
    print(f"\n{model}: {a.threads} threads, {npar} slots, max_tokens {a.max_tokens}, {a.requests} requests per client")
    if a.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(h), 8) for h in head]
        print("  ".join(h.rjust(x) for h, x in zip(head, w)))
        for r in rows:
            print("  ".join(v.rjust(x) for v, x in zip(r, w)))


if __name__ == "__main__":
    sys.exit(main())
