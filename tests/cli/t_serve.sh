# cke serve: the OpenAI-compatible HTTP server on loopback, driven by curl and the `openai`
# Python package. Greedy answers equal `cke run --temp 0`; streams equal whole answers; two
# concurrent streams each get their own text; a client that goes away frees its slot; malformed
# requests get OpenAI error objects and the server goes on; a full queue answers 503; 200
# requests from 8 clients all come back right. Every server runs under `timeout` and is stopped
# by srv_stop (also from the EXIT trap), and must then exit 0 with no sanitizer report.
# Sourced by tests/cli/run.sh (ok, refuses, check, have_models, $CKE, $T, $CKE_MODELS).
refuses serve_help 0 '^usage: cke serve' "$CKE" serve --help
help_on_stdout() { "$CKE" serve -h 2>/dev/null | grep -q '^usage: cke serve'; }
check serve_help_on_stdout help_on_stdout
refuses serve_no_model 2 'no model given' "$CKE" serve
refuses serve_unknown_flag 2 'cke serve: unknown option --frob' "$CKE" serve x --frob
refuses serve_bad_port 2 'cke serve: --port: 70000 is not a port' "$CKE" serve x --port 70000
refuses serve_bad_parallel 2 'cke serve: --parallel: 0 is not a slot count' "$CKE" serve x --parallel 0
refuses serve_bad_queue 2 'cke serve: --queue: -1 is not a queue length' "$CKE" serve x --queue -1
refuses serve_empty_key 2 'cke serve: --api-key: the key is empty' "$CKE" serve x --api-key ''
refuses serve_missing_model 1 'cke serve: .*nonexistent' "$CKE" serve /nonexistent --port 0

SRV_PID=
# srv_start ARGS...: cke serve stories260K on a free loopback port; sets $U (base URL)
srv_start() {
    : >"$T/srv.out"
    timeout -s TERM 300 "$CKE" serve "$M" --port 0 --threads 1 "$@" >"$T/srv.out" 2>"$T/srv.err" &
    SRV_PID=$!
    local i
    for i in $(seq 600); do
        grep -q 'listening on' "$T/srv.out" && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    U=$(sed -n 's|^cke serve: listening on \(http://127.0.0.1:[0-9]*\) .*|\1|p' "$T/srv.out")
    [ -n "$U" ] || { echo "    cke serve did not start: $(tail -3 "$T/srv.err")"; return 1; }
}
# srv_stop: SIGTERM, then SIGKILL after 10 s; $SRV_RC is its exit status
srv_stop() {
    [ -n "$SRV_PID" ] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null
    local i
    for i in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SRV_PID" 2>/dev/null
    wait "$SRV_PID"
    SRV_RC=$?
    SRV_PID=
}
# srv_clean NAME: the server stopped with exit 0 and no sanitizer report
srv_clean() {
    srv_stop
    if [ "$SRV_RC" = 0 ] && ! grep -q 'Sanitizer\|runtime error' "$T/srv.err"; then
        pass=$((pass + 1)); echo "PASS $1"
    else
        fail=$((fail + 1)); echo "FAIL $1: exit $SRV_RC"; tail -20 "$T/srv.err" | sed 's/^/    /'
    fi
}
trap 'srv_stop' EXIT

# cj ARGS...: curl with a time limit, body only
cj() { curl -sS --max-time 60 "$@"; }
# jget FILE EXPR: a Python expression over the JSON in FILE (as d)
jget() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]), end="")' "$1" "$2"; }
# sse_text FILE: the concatenated text of an SSE stream; fails unless it ends with [DONE]
sse_text() {
    python3 - "$1" <<'EOF'
import json, sys
lines = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
if not lines or lines[-1] != "[DONE]":
    sys.exit("no [DONE] at the end")
out = []
for l in lines[:-1]:
    c = json.loads(l)["choices"]
    if c:
        out.append(c[0].get("text", c[0].get("delta", {}).get("content") or ""))
print("".join(out), end="")
EOF
}
# greedy PROMPT N: what `cke run --temp 0` generates after PROMPT (its output without the prompt
# and the newline it ends with)
greedy() {
    "$CKE" run "$M" -p "$1" -n "$2" --temp 0 --threads 1 2>/dev/null | python3 -c 'import sys; p = sys.argv[1]; t = sys.stdin.read(); t = t[:-1] if t.endswith("\n") else t; print(t[len(p):] if t.startswith(p) else "<cke run did not echo the prompt>", end="")' "$1"
}
metric() { cj "$U/metrics" | sed -n "s/^$1 //p"; }

if have_models && command -v curl >/dev/null; then
    M=$CKE_MODELS/stories260K/stories260K.gguf
    P1="Once upon a time"
    P2="The little dog ran to the park"
    greedy "$P1" 48 >"$T/want1"
    greedy "$P2" 48 >"$T/want2"
    check serve_greedy_reference_nonempty [ -s "$T/want1" ] && [ -s "$T/want2" ]

    if srv_start --parallel 2 --batch; then
        check serve_health cj -f "$U/health" -o "$T/health"
        check serve_health_ok grep -q '"status": "ok"' "$T/health"
        cj "$U/v1/models" -o "$T/models"
        check serve_models [ "$(jget "$T/models" 'd["data"][0]["id"]')" = stories260K ]

        # greedy completion = cke run --temp 0, with a usage block
        cj "$U/v1/completions" -d "{\"model\": \"stories260K\", \"prompt\": \"$P1\", \"max_tokens\": 48, \"temperature\": 0}" -o "$T/c1"
        jget "$T/c1" 'd["choices"][0]["text"]' >"$T/got1"
        check serve_greedy_equals_run cmp "$T/got1" "$T/want1"
        check serve_usage [ "$(jget "$T/c1" 'd["usage"]["completion_tokens"] + 0 * d["usage"]["total_tokens"]')" = 48 ]
        check serve_finish_length [ "$(jget "$T/c1" 'd["choices"][0]["finish_reason"]')" = length ]

        # prompt-prefix reuse: another prompt takes the other slot, then a follow-up of the first
        # (its prompt + reply + more) goes to the slot holding it and reuses its 53 tokens
        cj "$U/v1/completions" -d "{\"prompt\": \"$P2\", \"max_tokens\": 4}" -o /dev/null
        python3 -c 'import json, sys; print(json.dumps({"prompt": sys.argv[1] + open(sys.argv[2]).read() + " The end", "max_tokens": 4}))' "$P1" "$T/want1" >"$T/follow.json"
        cj "$U/v1/completions" --data-binary @"$T/follow.json" -o /dev/null
        check serve_prefix_reuse [ "$(metric cke_prompt_tokens_reused_total)" -ge 50 ]

        # streaming: the same text, in chunks, ending with [DONE]
        cj -N "$U/v1/completions" -d "{\"prompt\": \"$P1\", \"max_tokens\": 48, \"temperature\": 0, \"stream\": true}" -o "$T/s1"
        sse_text "$T/s1" >"$T/sgot1"
        check serve_stream_equals_whole cmp "$T/sgot1" "$T/want1"
        check serve_stream_chunks [ "$(grep -c '^data: {' "$T/s1")" -gt 10 ]

        # stop strings and logprobs
        cj "$U/v1/completions" -d "{\"prompt\": \"$P1\", \"max_tokens\": 48, \"temperature\": 0, \"stop\": [\"Lily\"], \"logprobs\": 2}" -o "$T/c2"
        want_stop=$(python3 -c 'import sys; t = open(sys.argv[1]).read(); print(t[:t.find("Lily")] if "Lily" in t else "<no Lily>", end="")' "$T/want1")
        check serve_stop_string [ "$(jget "$T/c2" 'd["choices"][0]["text"]')" = "$want_stop" ]
        check serve_stop_finish [ "$(jget "$T/c2" 'd["choices"][0]["finish_reason"]')" = stop ]
        check serve_logprobs [ "$(jget "$T/c2" 'all(len(t) >= 1 and max(t.values()) <= 0 for t in d["choices"][0]["logprobs"]["top_logprobs"]) and len(d["choices"][0]["logprobs"]["tokens"]) > 0')" = True ]

        # stream_options.include_usage: a last chunk with the usage and no choices
        cj -N "$U/v1/chat/completions" -d '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "stream": true, "stream_options": {"include_usage": true}}' -o "$T/su"
        grep '^data: {' "$T/su" | tail -1 | cut -c7- >"$T/su.last"
        check serve_stream_usage [ "$(jget "$T/su.last" 'd["choices"] == [] and d["usage"]["completion_tokens"]')" = 6 ]
        # chat logprobs: one entry per generated token, alternatives most likely first
        cj "$U/v1/chat/completions" -d '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "logprobs": true, "top_logprobs": 3}' -o "$T/clp"
        check serve_chat_logprobs [ "$(jget "$T/clp" 'len(d["choices"][0]["logprobs"]["content"]) == d["usage"]["completion_tokens"] and all(len(t["top_logprobs"]) == 3 and t["top_logprobs"][0]["logprob"] >= t["top_logprobs"][2]["logprob"] for t in d["choices"][0]["logprobs"]["content"])')" = True ]
        # a seed makes sampling repeatable
        for i in 1 2; do cj "$U/v1/completions" -d "{\"prompt\": \"$P1\", \"max_tokens\": 32, \"temperature\": 1, \"seed\": 5}" -o "$T/seed$i"; done
        check serve_seed_repeatable [ "$(jget "$T/seed1" 'd["choices"][0]["text"]')" = "$(jget "$T/seed2" 'd["choices"][0]["text"]')" ]

        # two concurrent streams with different prompts: each gets exactly its own greedy text
        cj -N "$U/v1/completions" -d "{\"prompt\": \"$P1\", \"max_tokens\": 48, \"temperature\": 0, \"stream\": true}" -o "$T/cc1" &
        a=$!
        cj -N "$U/v1/completions" -d "{\"prompt\": \"$P2\", \"max_tokens\": 48, \"temperature\": 0, \"stream\": true}" -o "$T/cc2" &
        b=$!
        wait $a $b
        sse_text "$T/cc1" >"$T/ccgot1"
        sse_text "$T/cc2" >"$T/ccgot2"
        check serve_concurrent_stream1 cmp "$T/ccgot1" "$T/want1"
        check serve_concurrent_stream2 cmp "$T/ccgot2" "$T/want2"

        # malformed requests: an OpenAI error object with the right status, and the server goes on
        bad() { # NAME STATUS PATH [curl args...]
            local name=$1 want=$2 path=$3; shift 3
            local code
            code=$(curl -sS --max-time 30 -o "$T/bad.json" -w '%{http_code}' "$@" "$U$path")
            if [ "$code" = "$want" ] && { [ "$want" = 404 ] && [ ! -s "$T/bad.json" ] ||
                python3 -c 'import json, sys; e = json.load(open(sys.argv[1]))["error"]; assert e["message"] and e["type"] and "param" in e and "code" in e' "$T/bad.json"; }; then
                pass=$((pass + 1)); echo "PASS serve_bad_$name: $code $(head -c 120 "$T/bad.json")"
            else
                fail=$((fail + 1)); echo "FAIL serve_bad_$name: HTTP $code (want $want): $(head -c 300 "$T/bad.json")"
            fi
        }
        C=/v1/completions
        CH=/v1/chat/completions
        bad not_json 400 $C -d '{"prompt": "a",'
        bad empty_body 400 $C -d ''
        bad array_body 400 $C -d '[1, 2]'
        bad trailing_garbage 400 $C -d '{"prompt": "a"} x'
        bad no_prompt 400 $C -d '{"max_tokens": 3}'
        bad prompt_number 400 $C -d '{"prompt": 5}'
        bad prompt_token_ids 400 $C -d '{"prompt": [1, 2, 3]}'
        bad max_tokens_string 400 $C -d '{"prompt": "a", "max_tokens": "3"}'
        bad max_tokens_negative 400 $C -d '{"prompt": "a", "max_tokens": -3}'
        bad max_tokens_fraction 400 $C -d '{"prompt": "a", "max_tokens": 2.5}'
        bad temperature_negative 400 $C -d '{"prompt": "a", "temperature": -1}'
        bad temperature_huge 400 $C -d '{"prompt": "a", "temperature": 1e999}'
        bad temperature_nan 400 $C -d '{"prompt": "a", "temperature": NaN}'
        bad top_p_string 400 $C -d '{"prompt": "a", "top_p": "high"}'
        bad top_k_negative 400 $C -d '{"prompt": "a", "top_k": -5}'
        bad min_p_above_1 400 $C -d '{"prompt": "a", "min_p": 1.5}'
        bad presence_penalty 400 $C -d '{"prompt": "a", "presence_penalty": 3}'
        bad seed_string 400 $C -d '{"prompt": "a", "seed": "x"}'
        bad stop_number 400 $C -d '{"prompt": "a", "stop": 3}'
        bad stop_too_many 400 $C -d '{"prompt": "a", "stop": ["a", "b", "c", "d", "e"]}'
        bad stop_empty 400 $C -d '{"prompt": "a", "stop": [""]}'
        bad n_2 400 $C -d '{"prompt": "a", "n": 2}'
        bad stream_string 400 $C -d '{"prompt": "a", "stream": "yes"}'
        bad logprobs_big 400 $C -d '{"prompt": "a", "logprobs": 50}'
        bad unknown_model 400 $C -d '{"model": "gpt-9", "prompt": "a"}'
        bad model_number 400 $C -d '{"model": 7, "prompt": "a"}'
        python3 -c 'print("{\"prompt\": \"" + "a " * 3000 + "\", \"max_tokens\": 4}")' >"$T/long.json"
        bad prompt_longer_than_context 400 $C --data-binary @"$T/long.json"
        python3 -c 'print("{\"prompt\": \"" + "a" * (1100 * 1024) + "\"}")' >"$T/huge.json"
        bad body_over_1MiB 413 $C --data-binary @"$T/huge.json"
        bad chunked_body_over_1MiB 413 $C -H 'Transfer-Encoding: chunked' --data-binary @"$T/huge.json"
        bad no_messages 400 $CH -d '{"max_tokens": 3}'
        bad messages_empty 400 $CH -d '{"messages": []}'
        bad messages_object 400 $CH -d '{"messages": {"role": "user"}}'
        bad bad_role 400 $CH -d '{"messages": [{"role": "wizard", "content": "hi"}]}'
        bad role_missing 400 $CH -d '{"messages": [{"content": "hi"}]}'
        bad content_number 400 $CH -d '{"messages": [{"role": "user", "content": 5}]}'
        bad content_image 400 $CH -d '{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}'
        bad top_logprobs_without_logprobs 400 $CH -d '{"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}'
        bad chat_logprobs_int 400 $CH -d '{"messages": [{"role": "user", "content": "hi"}], "logprobs": 3}'
        bad nul_byte 400 $C --data-binary @<(printf '{"prompt": "a\0"}')
        bad unknown_path 404 /v1/nothing
        bad get_completions 405 $C
        bad post_models 405 /v1/models -d '{}'
        bad delete_health 405 /health -X DELETE
        # connections that are not HTTP, have a header over MHD's buffer, or send half a request
        # and stall: they stay open while other clients are served, and the server goes on
        python3 - "$U" <<'EOF' >"$T/raw" 2>&1
import socket, subprocess, sys
host, port = sys.argv[1][len("http://"):].split(":")
held = []
for data in (b"\x00\xff garbage \r\n\r\n", b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
             b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"pro"):
    s = socket.create_connection((host, int(port)), timeout=10)
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may close on the oversized header before reading it all
    held.append(s)
r = subprocess.run(["curl", "-s", "--max-time", "10", sys.argv[1] + "/health"], capture_output=True, text=True)
print("health while held:", r.stdout)
for s in held:
    s.close()
EOF
        check serve_bad_connections_do_not_block grep -q 'health while held: {"status": "ok"' "$T/raw"
        refuses serve_port_in_use 1 'cke serve: .*cannot listen on 127.0.0.1:' "$CKE" serve "$M" --threads 1 --port "${U##*:}"
        cj "$U/v1/completions" -d "{\"prompt\": \"$P1\", \"max_tokens\": 48, \"temperature\": 0}" -o "$T/c3"
        check serve_still_serving_after_bad [ "$(jget "$T/c3" 'd["choices"][0]["text"]')" = "$(cat "$T/want1")" ]
        check serve_metrics_count_400 [ "$(cj "$U/metrics" | sed -n 's/^cke_requests_total{endpoint="\/v1\/completions",status="400"} //p')" -ge 20 ]

        # 200 requests from 8 clients at once: every one answered 200 with its greedy text
        load() { # NAME: prints requests/s and tokens/s; passes when all 200 are right
            python3 - "$U" "$P1" "$P2" "$T/want1" "$T/want2" "$1" <<'EOF'
import json, sys, threading, time, urllib.request
u, p1, p2, w1, w2, name = sys.argv[1:]
want = {p1: open(w1).read(), p2: open(w2).read()}
bad, toks, lock = [], [0], threading.Lock()
def client(k):
    for i in range(25):
        p = p1 if (k + i) % 2 else p2
        body = json.dumps({"prompt": p, "max_tokens": 48, "temperature": 0}).encode()
        try:
            r = urllib.request.urlopen(urllib.request.Request(u + "/v1/completions", body, {"Content-Type": "application/json"}), timeout=60)
            d = json.load(r)
            ok = r.status == 200 and d["choices"][0]["text"] == want[p]
        except Exception as e:
            ok, d = False, {"error": str(e)}
        with lock:
            if ok: toks[0] += d["usage"]["completion_tokens"]
            else: bad.append(d)
t = time.time()
ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
for x in ts: x.start()
for x in ts: x.join()
dt = time.time() - t
print(f"{name}: 200 requests from 8 clients in {dt:.2f} s: {200 / dt:.1f} requests/s, {toks[0] / dt:.0f} generated tokens/s; {len(bad)} wrong: {bad[:2]}")
sys.exit(1 if bad else 0)
EOF
        }
        load parallel2 >"$T/load" 2>&1
        check serve_load_parallel2 [ $? = 0 ]
        sed 's/^/    /' "$T/load"
        cat "$T/load" >>"$T/load_all"
        # --parallel 2 is continuously batched: the load's two slots shared decode steps
        steps=$(metric cke_batch_steps_total) rows=$(metric cke_batch_rows_total)
        echo "    batched: $rows rows in $steps steps"
        check serve_batched_steps_shared [ "${rows:-0}" -gt "${steps:-0}" ]
        srv_clean serve_clean_exit_parallel2
    else
        check serve_starts false
    fi

    # --no-batch: a model instance per slot, the same texts, no batch metrics
    if srv_start --parallel 2 --no-batch; then
        cj -N "$U/v1/completions" -d "{\"prompt\": \"$P1\", \"max_tokens\": 48, \"temperature\": 0, \"stream\": true}" -o "$T/nb1" &
        a=$!
        cj "$U/v1/completions" -d "{\"prompt\": \"$P2\", \"max_tokens\": 48, \"temperature\": 0}" -o "$T/nb2"
        wait $a
        sse_text "$T/nb1" >"$T/nbgot1"
        jget "$T/nb2" 'd["choices"][0]["text"]' >"$T/nbgot2"
        check serve_nobatch_stream1 cmp "$T/nbgot1" "$T/want1"
        check serve_nobatch_whole2 cmp "$T/nbgot2" "$T/want2"
        check serve_nobatch_no_batch_metrics [ -z "$(metric cke_batch_steps_total)" ]
        srv_clean serve_clean_exit_nobatch
    else
        check serve_starts_nobatch false
    fi

    # one slot, a queue of one: while the first request streams, a second waits and a third gets
    # 503; the second's client giving up takes it out of the queue; a client that goes
    # away mid-stream frees the slot (a stream runs at most 32 KiB ahead of its reader, so a
    # reader of 1 KB per 0.1 s with a small receive buffer keeps a long generation going until it leaves)
    if srv_start --parallel 1 --queue 1; then
        long="{\"prompt\": \"$P1\", \"max_tokens\": 2000, \"temperature\": 0, \"stream\": true, \"logprobs\": 5}"
        # (Python: curl cannot make its receive buffer small, and the kernel would take it all)
        python3 - "$U" "$long" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1][len("http://"):].split(":")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, int(port)))
body = sys.argv[2].encode()
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
end = time.time() + 4
while time.time() < end:
    s.recv(1024)
    time.sleep(0.1)
s.close()
EOF
        slow=$!
        sleep 0.7
        curl -sS --max-time 1.5 -o /dev/null "$U/v1/completions" -d '{"prompt": "a", "max_tokens": 2}' 2>/dev/null &
        queued=$!
        sleep 0.5
        check serve_queued_while_busy [ "$(metric cke_queue_depth)" = 1 ]
        code=$(curl -sS --max-time 30 -o "$T/busy.json" -w '%{http_code}' "$U/v1/completions" -d '{"prompt": "a", "max_tokens": 2}')
        check serve_full_queue_503 [ "$code" = 503 ]
        check serve_503_error_object grep -q '"code":"queue_full"' "$T/busy.json"
        check serve_slot_busy_while_streaming [ "$(metric cke_slots_active)" = 1 ]
        wait $queued
        for i in $(seq 20); do [ "$(metric cke_queue_depth)" = 0 ] && break; sleep 0.1; done
        check serve_give_up_leaves_queue [ "$(metric cke_queue_depth)" = 0 ]
        check serve_still_streaming [ "$(metric cke_slots_active)" = 1 ]
        wait $slow
        # the client is gone: its slot must come free within seconds, not after 2000 tokens
        for i in $(seq 50); do [ "$(metric cke_slots_active)" = 0 ] && break; sleep 0.1; done
        check serve_disconnect_frees_slot [ "$(metric cke_slots_active)" = 0 ]
        check serve_disconnects_counted [ "$(metric cke_requests_cancelled_total)" = 2 ]
        cj "$U/v1/completions" -d "{\"prompt\": \"$P1\", \"max_tokens\": 48, \"temperature\": 0}" -o "$T/c4"
        check serve_next_request_after_disconnect [ "$(jget "$T/c4" 'd["choices"][0]["text"]')" = "$(cat "$T/want1")" ]
        srv_clean serve_clean_exit_queue1
    else
        check serve_starts_queue1 false
    fi

    # one slot, a queue: the same load, for its throughput next to --parallel 2's (a measurement:
    # the sanitized build, where it would only add half a minute, leaves it out)
    if [ "${BUILD%-san}" = "$BUILD" ] && srv_start --parallel 1; then
        load parallel1 >"$T/load" 2>&1
        check serve_load_parallel1 [ $? = 0 ]
        sed 's/^/    /' "$T/load"
        cat "$T/load" >>"$T/load_all"
        srv_clean serve_clean_exit_parallel1
    fi

    # --api-key: every request needs it
    if srv_start --api-key sekrit; then
        check serve_key_missing_401 [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 401 ]
        check serve_key_wrong_401 [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$U/v1/models")" = 401 ]
        check serve_key_right_200 [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sekrit' "$U/v1/models")" = 200 ]
        srv_clean serve_clean_exit_key
    fi

    # the openai Python package (pinned, with its dependencies, into $BUILD/pydeps-openai) against
    # a chatml template forced on stories260K: a whole and a streamed chat completion, equal
    PYD=$BUILD/pydeps-openai
    OPENAI_PINS="openai==1.54.4 httpx==0.27.2 httpcore==1.0.9 h11==0.16.0 anyio==4.16.0 sniffio==1.3.1 idna==3.21
        certifi==2026.10.19.post1 distro==1.9.0 jiter==0.19.0 pydantic==2.14.4 pydantic-core==2.50.5
        annotated-types==0.8.0 typing-extensions==4.16.0 typing-inspection==0.4.5 tqdm==4.70.1"
    if [ ! -f "$PYD/openai-1.54.4.ok" ]; then
        rm -rf "$PYD"
        # shellcheck disable=SC2086
        if /usr/bin/python3 -m pip install -q --target "$PYD" $OPENAI_PINS >"$T/pip.log" 2>&1; then touch "$PYD/openai-1.54.4.ok"; fi
    fi
    if [ ! -f "$PYD/openai-1.54.4.ok" ]; then
        fail=$((fail + 1)); echo "FAIL serve_openai: cannot install openai==1.54.4 from PyPI with pip: $(tail -2 "$T/pip.log")"
    elif srv_start --template chatml --api-key k2; then
        openai_chat() {
            PYTHONPATH=$PYD /usr/bin/python3 - "$U" <<'EOF'
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="k2", max_retries=0, timeout=60)
msgs = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Once upon a time"}]
r = c.chat.completions.create(model="stories260K", messages=msgs, max_tokens=40, temperature=0)
whole = r.choices[0].message.content
assert r.choices[0].message.role == "assistant" and whole, r
assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 10, r.usage
parts, finish = [], None
for ch in c.chat.completions.create(model="stories260K", messages=msgs, max_tokens=40, temperature=0, stream=True):
    if ch.choices:
        parts.append(ch.choices[0].delta.content or "")
        finish = ch.choices[0].finish_reason or finish
assert "".join(parts) == whole, ("".join(parts), whole)
assert finish == r.choices[0].finish_reason, (finish, r.choices[0].finish_reason)
try:
    c.chat.completions.create(model="stories260K", messages=[{"role": "user", "content": "x"}], n=2)
    sys.exit("n=2 was accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.body["param"] == "n", e.body
print("openai chat:", repr(whole[:60]))
EOF
        }
        check serve_openai_chat openai_chat
        srv_clean serve_clean_exit_openai
    fi
fi
trap - EXIT
