# cke report / the report.html of cke compile / cke parity --html: arguments and bad input, every
# JSON artifact parses with its schema fields, and the pages open in headless Chromium with no
# console errors, one roofline point per profiled op, a table that sorts (the page's own
# self-test), hostile names escaped; screenshots go to $BUILD/test-logs/report*.png.
RFX=$PWD/tests/report/fixtures
RLOGS=$PWD/$BUILD/test-logs
mkdir -p "$RLOGS"

ok report_help "$CKE" report --help
refuses report_no_dir 2 'usage: cke report DIR' "$CKE" report
refuses report_unknown 2 'cke report: unknown option --frob' "$CKE" report "$T" --frob
refuses report_o_no_value 2 'cke report: -o needs a value' "$CKE" report "$T" -o
refuses report_two_dirs 2 'cke report: unexpected argument' "$CKE" report "$T" "$T"
mkdir -p "$T/rep-empty" "$T/rep-badjson" "$T/rep-prof" "$T/rep-train"
refuses report_empty_dir 1 'cke report: .*rep-empty holds no cke artifacts \(profile.json, layout.json or ir.json\)' \
    "$CKE" report "$T/rep-empty"
printf '{"schema": "cke-profile/1", "modes": [' >"$T/rep-badjson/profile.json"
refuses report_bad_json 1 'cke report: .*profile.json is not valid JSON \(near byte [0-9]+\)' "$CKE" report "$T/rep-badjson"
refuses report_parity_html_no_value 2 'cke parity: --html needs a value' "$CKE" parity a b --html

# the fixtures: hand-written profiles of stories260K (inference; training with the optimizer),
# with a '<script>' op name; model.dir is filled in below when the compiled model exists
check report_fixtures_parse python3 tests/report/check_artifacts.py "$RFX/profile_infer.json" "$RFX/profile_train.json"
SDIR=$T/rep-s260
if have_models; then
    ok report_compile "$CKE" compile "$CKE_MODELS/stories260K/stories260K.gguf" -o "$SDIR"
    check report_compile_writes_html test -s "$SDIR/report.html"
    check report_compiled_json_parses python3 tests/report/check_artifacts.py "$SDIR/ir.json" "$SDIR/layout.json"
    # the page is a function of the artifacts (no clock, no temporary paths): cke report gives the same bytes
    ok report_rerender "$CKE" report "$SDIR" -o "$T/rep-s260-again.html"
    check report_compile_deterministic cmp -s "$SDIR/report.html" "$T/rep-s260-again.html"
    nodes=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["nodes"]))' "$SDIR/ir.json")
    check report_compile_every_op test "$(grep -c '^<tr><td class="n">[0-9]*</td><td>\(prologue\|layer\|epilogue\)' "$SDIR/report.html")" = "$nodes"
    modes=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["modes"]))' "$SDIR/layout.json")
    check report_compile_memory_maps test "$(grep -c '<svg class="memmap"' "$SDIR/report.html")" = "$modes"
fi
sed "s|@MODEL_DIR@|$SDIR|" "$RFX/profile_infer.json" >"$T/rep-prof/profile.json"
sed "s|@MODEL_DIR@|$SDIR|" "$RFX/profile_train.json" >"$T/rep-train/profile.json"
ok report_profile "$CKE" report "$T/rep-prof"
ok report_train "$CKE" report "$T/rep-train" -o "$T/rep-train/train.html"
refuses report_unwritable 1 'cke report: .*cannot write .*/no/such/dir/r.html' "$CKE" report "$T/rep-prof" -o "$T/no/such/dir/r.html"
# hostile strings: the fixture's op name and kernel, and a layout.json buffer name
check report_escapes_profile test "$(grep -c '<script' "$T/rep-prof/report.html")" = 2
check report_escaped_text grep -q '&lt;script&gt;window.pwned=1&lt;/script&gt;' "$T/rep-prof/report.html"
if have_models; then
    mkdir -p "$T/rep-hostile"
    cp "$SDIR/ir.json" "$SDIR/cke-model.txt" "$T/rep-hostile/"
    sed 's|"name": "x"|"name": "<img src=x onerror=alert(1)>\\" \x27"|' "$SDIR/layout.json" >"$T/rep-hostile/layout.json"
    ok report_hostile_layout "$CKE" report "$T/rep-hostile"
    check report_escapes_layout sh -c "! grep -q '<img' '$T/rep-hostile/report.html' && grep -q '&lt;img src=x onerror=alert(1)&gt;&quot; &#39;' '$T/rep-hostile/report.html'"
fi

# parity --html: a reference of zeros diverges at the first value it lists (attn_in of layer 0);
# with Debian's torch, a model whose layer-1 ffn_up was perturbed diverges first at 'up' layer 1
if have_models; then
    python3 - "$T/zero.trace" <<'PY'
import struct, sys
ids, recs = [1, 403, 407], [("attn_in", 0, 64), ("q", 0, 64), ("attn_in", 1, 64)]
with open(sys.argv[1], "wb") as f:
    f.write(b"CKETRC01" + struct.pack("<i%dii" % len(ids), len(ids), *ids, len(recs)))
    for name, layer, cols in recs:
        f.write(struct.pack("<i", len(name)) + name.encode() + struct.pack("<iqqq", layer, 0, len(ids), cols))
        f.write(b"\0" * (4 * len(ids) * cols))
PY
    refuses parity_html_zero 1 '^first divergence: attn_in \(layer 0\) at position 0' \
        "$CKE" parity "$SDIR" "$T/zero.trace" --chunk 1 --html "$T/parity.html"
    # 3 values x 3 positions (decode steps: --chunk 1)
    check parity_html_rows test "$(grep -c '^<tr[ >]' "$T/parity.html")" = 9
    check parity_html_first grep -q '<tr class="first" id="first-divergence"><td class="n">0</td><td>attn_in</td>' "$T/parity.html"
fi
PERTURBED=""
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    if /usr/bin/python3 tests/torch/ref_llama.py "$T/hf_perturbed" gqa perturb=model.layers.1.mlp.up_proj.weight >/dev/null 2>&1 &&
        "$CKE" compile "$T/hf_perturbed" -o "$T/hf_perturbed_model" >/dev/null 2>&1; then
        refuses parity_html_perturbed 1 '^first divergence: up \(layer 1\)' \
            "$CKE" parity "$T/hf_perturbed_model" "$T/hf_perturbed/ref.trace" --html "$T/parity2.html"
        check parity_html_perturbed_first grep -q 'id="first-divergence"><td class="n">[0-9]*</td><td>up</td><td class="n">1</td>' "$T/parity2.html"
        check parity_html_has_passes grep -q '<td class="pass">pass</td>' "$T/parity2.html"
        PERTURBED=$T/parity2.html
    else
        fail=$((fail + 1)); echo "FAIL parity_html_perturbed: tests/torch/ref_llama.py or compile failed"
    fi
else
    fail=$((fail + 1)); echo "FAIL parity_html_perturbed: Debian's python3-torch is not installed (tools/deps.sh --test installs it)"
fi

# headless Chromium: each page loads with no console message and no error caught in the page
# (its window.onerror / console.error hook writes into #js-errors), and its table self-test passes
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
chrome() { timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$T/chrome-profile" \
    --enable-logging=stderr --v=0 "$@" </dev/null; }
no_console() { # LOG: the browser's log has no CONSOLE line (a page error, a console call)
    if grep -E ':CONSOLE|Uncaught' "$1"; then return 1; fi
}
page_check() { # NAME FILE.html
    chrome --dump-dom "file://$2" >"$T/$1.dom" 2>"$T/$1.log"
    check "${1}_loads_self_test_sorts" grep -q '<body data-sort-test="ok"' "$T/$1.dom"
    check "${1}_no_page_errors" grep -q '<ul id="js-errors" hidden=""></ul>' "$T/$1.dom"
    check "${1}_no_console_messages" no_console "$T/$1.log"
}
shot() { # FILE.html OUT.png HEIGHT
    rm -f "$2"
    chrome --screenshot="$2" --window-size=1400,"$3" --hide-scrollbars "file://$1" >/dev/null 2>&1
    check "screenshot_$(basename "$2" .png)" test -s "$2"
}
if [ -z "$CHROMIUM" ]; then
    echo "SKIP report_chromium: chromium is not installed (tools/deps.sh --test installs Debian's chromium)"
else
    page_check chromium_profile "$T/rep-prof/report.html"
    # one <circle class="op"> per op row of profile.json (every mode), in the loaded DOM
    want=$(python3 tests/report/check_artifacts.py --count-ops "$T/rep-prof/profile.json")
    check chromium_profile_one_point_per_op test "$(grep -o '<circle class="op[ "]' "$T/chromium_profile.dom" | wc -l)" = "$want"
    check chromium_profile_hostile_inert sh -c "! grep -q '<script>window.pwned' '$T/chromium_profile.dom'"
    page_check chromium_train "$T/rep-train/train.html"
    want=$(python3 tests/report/check_artifacts.py --count-ops "$T/rep-train/profile.json")
    check chromium_train_one_point_per_op test "$(grep -o '<circle class="op[ "]' "$T/chromium_train.dom" | wc -l)" = "$want"
    check chromium_train_split grep -q 'Training step: forward, backward, optimizer' "$T/chromium_train.dom"
    # the harness sees errors: a copy of the page with a broken script must fail both checks
    sed 's|</body>|<script>noSuchFunction();</script></body>|' "$T/rep-prof/report.html" >"$T/broken.html"
    chrome --dump-dom "file://$T/broken.html" >"$T/broken.dom" 2>"$T/broken.log"
    detects() { grep -q 'noSuchFunction is not defined' "$T/broken.dom" && ! no_console "$T/broken.log" >/dev/null; }
    check chromium_detects_errors detects
    shot "$T/rep-prof/report.html" "$RLOGS/report.png" 3000
    shot "$T/rep-train/train.html" "$RLOGS/report-train.png" 2400
    if have_models; then
        page_check chromium_compile "$SDIR/report.html"
        page_check chromium_parity "$T/parity.html"
        shot "$SDIR/report.html" "$RLOGS/report-compile.png" 2000
        shot "$T/parity.html" "$RLOGS/report-parity.png" 1400
    fi
    [ -n "$PERTURBED" ] && page_check chromium_parity_perturbed "$PERTURBED"
fi

# a profile.json with wrong types, absurd numbers, markup in every string and non-object entries:
# still a page (under ASan/UBSan too), nothing injected, one point per op object
mkdir -p "$T/rep-hostile-prof"
cp "$RFX/profile_hostile.json" "$T/rep-hostile-prof/profile.json"
ok report_hostile_profile "$CKE" report "$T/rep-hostile-prof"
check report_hostile_profile_scripts test "$(grep -c '<script' "$T/rep-hostile-prof/report.html")" = 2
check report_hostile_profile_no_markup sh -c "! grep -q '<svg onload\|<b>decode\|<i>' '$T/rep-hostile-prof/report.html'"
check report_hostile_profile_points test "$(grep -c '<circle class="op' "$T/rep-hostile-prof/report.html")" = 3
[ -n "$CHROMIUM" ] && page_check chromium_hostile "$T/rep-hostile-prof/report.html"
