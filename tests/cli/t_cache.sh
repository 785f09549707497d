# The compile cache and the compiler's invocation: no shell anywhere (file names with quotes,
# spaces, $(...), newlines), compiled directories that appear whole or not at all (concurrent runs
# on a fresh cache, failed and interrupted compiles), one cache entry per model with ctx variants
# sharing weights.bin, and `cke cache list|clean|dir`.
# Sourced by tests/cli/run.sh ($CKE, $T, $CKE_MODELS, ok/refuses/check). Needs stories260K and
# tiny-random-llama; about 30 s.

refuses cache_help 0 'usage: cke cache' "$CKE" cache --help
refuses cache_clean_help 0 'older-than DAYS' "$CKE" cache clean -h
refuses cache_no_sub 2 'usage: cke cache' "$CKE" cache
refuses cache_bad_sub 2 "unknown subcommand 'frob'" "$CKE" cache frob
refuses cache_older_negative 2 'cke cache clean: --older-than: -1 is not a number of days' "$CKE" cache clean --older-than -1
refuses cache_older_nan 2 'cke cache clean: --older-than: nan is not a number of days' "$CKE" cache clean --older-than nan
refuses cache_older_missing 2 'cke cache clean: --older-than needs a value' "$CKE" cache clean --older-than
refuses cache_clean_unknown 2 'cke cache clean: unknown option --all' "$CKE" cache clean --all
refuses cache_dir 0 "^$CKE_CACHE\$" "$CKE" cache dir

if have_models && [ -f "$CKE_MODELS/tiny-random-llama/llama-2-tiny-random.gguf" ]; then
    C_G=$CKE_MODELS/stories260K/stories260K.gguf
    C_BIG=$CKE_MODELS/tiny-random-llama/llama-2-tiny-random.gguf
    C_REF=$(CKE_CACHE=$T/c-ref "$CKE" run "$C_G" -p Once -n 12 --temp 0 2>/dev/null)
    c_run() { "$CKE" run "$@" -p Once -n 12 --temp 0 2>/dev/null; }

    # --- item 9: no shell. A directory named to break out of '...' quoting, and a model whose
    # name has a quote, a space, $(...) and a newline: each compiles, runs, and runs nothing else.
    C_D=$T/inj
    mkdir -p "$C_D"
    C_OUT="$C_D/x';touch PWNED;'"
    ok inject_compile_dir sh -c 'cd "$1" && "$2" compile "$3" -o "$4"' sh "$C_D" "$CKE" "$C_G" "x';touch PWNED;'"
    check inject_compile_dir_runs test "$(c_run "$C_OUT")" = "$C_REF"
    C_M="$C_D/it's a \$(touch PWNED) \"m\"
x.gguf"
    cp "$C_G" "$C_M"
    check inject_model_name_runs test "$(cd "$C_D" && CKE_CACHE=$T/c-inj c_run "$C_M")" = "$C_REF"
    ok inject_model_name_compile "$CKE" compile "$C_M" -o "$C_D/it's \$(touch PWNED) out"
    check inject_model_name_compiled_runs test "$(c_run "$C_D/it's \$(touch PWNED) out")" = "$C_REF"
    check inject_no_pwned test ! -e "$C_D/PWNED" -a ! -e PWNED -a ! -e "$T/PWNED"
    # a directory named like an option is a file argument to cc, not an option
    ok dash_dir sh -c 'cd "$1" && "$2" compile "$3" -o -dash' sh "$C_D" "$CKE" "$C_G"
    check dash_dir_runs test -f "$C_D/-dash/model.so"

    # --- -o DIR: replaced atomically when it is a compiled directory, refused when it is anything else
    ok recompile_same_dir "$CKE" compile "$C_G" -o "$C_OUT" --ctx 64
    check recompile_same_dir_ctx grep -q '^ctx 64$' "$C_OUT/cke-model.txt"
    mkdir -p "$C_D/mine" && echo precious > "$C_D/mine/notes.txt" && echo "int main;" > "$C_D/mine/model.c"
    refuses refuse_foreign_dir 1 'exists and is not a cke model directory.*not replacing it' "$CKE" compile "$C_G" -o "$C_D/mine"
    check foreign_dir_intact grep -q precious "$C_D/mine/notes.txt"
    echo x > "$C_D/afile"
    refuses refuse_file_as_dir 1 'afile exists and is not a directory' "$CKE" compile "$C_G" -o "$C_D/afile"

    # --- a failing or missing compiler: its message is shown, nothing is left behind
    printf '#!/bin/sh\necho "fatal error: the disk is made of cheese" >&2\nexit 1\n' > "$T/badcc"
    chmod +x "$T/badcc"
    refuses cc_fails 1 "C compiler .*badcc' failed \(exit 1\).*the disk is made of cheese" env CC="$T/badcc" "$CKE" compile "$C_G" -o "$C_D/badout"
    refuses cc_missing 1 "cannot run the C compiler '/nonexistent/cc': No such file" env CC=/nonexistent/cc "$CKE" compile "$C_G" -o "$C_D/badout"
    refuses cc_fails_run 1 'the disk is made of cheese' env CC="$T/badcc" CKE_CACHE="$T/c-bad" "$CKE" run "$C_G" -p Once -n 2
    # (the entry the failed compile created is gone too)
    check cc_fails_leaves_nothing test -z "$(ls -A "$C_D" | grep badout)" -a -z "$(find "$T/c-bad" -mindepth 1 2>/dev/null)"

    # --- item 2: concurrent runs on a fresh cache, 5 rounds of 4: all succeed, same output
    c_conc() {
        local round i bad=0
        for round in 1 2 3 4 5; do
            for i in 1 2 3 4; do
                (CKE_CACHE=$T/c-conc$round timeout 120 "$CKE" run "$C_G" -p Once -n 12 --temp 0 > "$T/conc.$round.$i" 2> "$T/conc.$round.$i.err"
                 echo $? > "$T/conc.$round.$i.rc") &
            done
            wait
            for i in 1 2 3 4; do
                if [ "$(cat "$T/conc.$round.$i.rc")" != 0 ] || [ "$(cat "$T/conc.$round.$i")" != "$C_REF" ]; then
                    bad=1; echo "round $round run $i: exit $(cat "$T/conc.$round.$i.rc")"; cat "$T/conc.$round.$i.err"
                fi
            done
            # one variant, no temporary directory left
            [ "$(find "$T/c-conc$round" -mindepth 2 -maxdepth 2 -type d | wc -l)" = 1 ] || { bad=1; find "$T/c-conc$round" -maxdepth 2; }
        done
        return $bad
    }
    check concurrent_fresh_cache c_conc
    # concurrent `cke compile -o` into one directory, new and then existing: each replaces it whole
    c_conc_o() {
        local round i bad=0
        for round in 1 2; do
            for i in 1 2 3; do
                ("$CKE" compile "$C_G" -o "$T/same" > /dev/null 2> "$T/same.$i.err"; echo $? > "$T/same.$i.rc") &
            done
            wait
            for i in 1 2 3; do [ "$(cat "$T/same.$i.rc")" = 0 ] || { bad=1; cat "$T/same.$i.err"; }; done
            [ "$(c_run "$T/same")" = "$C_REF" ] || bad=1
            [ -z "$(ls -A "$T" | grep '^\.same\.tmp')" ] || { bad=1; ls -A "$T"; }
        done
        return $bad
    }
    check concurrent_compile_o c_conc_o

    # --- item 3: one entry per model; --ctx variants share weights.bin (hard links)
    C_C=$T/c-ctx
    for c in "" "--ctx 64" "--ctx 128"; do
        # shellcheck disable=SC2086
        CKE_CACHE=$C_C "$CKE" run "$C_BIG" -p Once -n 2 --temp 0 $c > /dev/null 2>&1
    done
    check ctx_one_entry test "$(ls "$C_C" | wc -l)" = 1
    check ctx_three_variants test "$(ls "$C_C"/*/ | grep -c '^ctx-')" = 3
    check ctx_weights_shared test "$(stat -c %h "$C_C"/*/ctx-64/weights.bin)" = 3
    refuses ctx_list 0 'ctx-64 ctx-128 ctx-auto +.*llama-2-tiny-random.gguf' env CKE_CACHE="$C_C" "$CKE" cache list

    # --- item 5: the first run says it compiles; Ctrl-C during the compile stops it (the compiler's
    # process group is killed), exits 130 and leaves no entry. The compiler is made slow (CC wraps
    # cc with a sleep) so that the signal certainly lands while it runs.
    refuses first_run_says 0 'compiling .*llama-2-tiny-random.gguf into the cache \(first run\)' env CKE_CACHE="$T/c-first" "$CKE" run "$C_BIG" -p Once -n 2
    printf '#!/bin/sh\necho $$ > "%s/slowcc.pid"\nsleep 60\nexec cc "$@"\n' "$T" > "$T/slowcc"
    chmod +x "$T/slowcc"
    c_sigint() {
        rm -f "$T/slowcc.pid"
        CC=$T/slowcc CKE_CACHE=$T/c-int "$CKE" run "$C_BIG" -p Once -n 2 > /dev/null 2> "$T/int.err" &
        local pid=$! n=0 rc
        while [ ! -s "$T/slowcc.pid" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
        kill -INT $pid
        wait $pid; rc=$?
        local cc_pid; cc_pid=$(cat "$T/slowcc.pid")
        sleep 0.2
        [ $rc = 130 ] || { echo "exit $rc"; cat "$T/int.err"; return 1; }
        grep -q 'interrupted' "$T/int.err" || { cat "$T/int.err"; return 1; }
        ! kill -0 "$cc_pid" 2>/dev/null || { echo "compiler $cc_pid still running"; return 1; }
        [ -z "$(find "$T/c-int" -mindepth 1 2>/dev/null)" ] || { find "$T/c-int"; return 1; }
    }
    check sigint_during_compile c_sigint
    # the same for `cke compile -o DIR`: no DIR, no temporary directory beside it
    c_sigint_o() {
        rm -f "$T/slowcc.pid"
        mkdir -p "$T/o-int"
        CC=$T/slowcc "$CKE" compile "$C_BIG" -o "$T/o-int/out" > /dev/null 2> "$T/int.err" &
        local pid=$! n=0 rc
        while [ ! -s "$T/slowcc.pid" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
        kill -INT $pid
        wait $pid; rc=$?
        [ $rc = 130 ] && grep -q 'cke compile: interrupted' "$T/int.err" || { echo "exit $rc"; cat "$T/int.err"; return 1; }
        [ -z "$(ls -A "$T/o-int")" ] || { ls -la "$T/o-int"; return 1; }
    }
    check sigint_during_compile_o c_sigint_o
    # and at a random moment of a real compile: either done (a whole variant) or nothing
    c_sigint_any() {
        local d
        for d in 0.05 0.2 0.4; do
            rm -rf "$T/c-int2"
            CKE_CACHE=$T/c-int2 "$CKE" run "$C_BIG" -p Once -n 2 > /dev/null 2>&1 &
            local pid=$!
            sleep $d
            kill -INT $pid
            wait $pid
            local v; v=$(find "$T/c-int2" -mindepth 2 -maxdepth 2 -type d 2>/dev/null)
            if [ -n "$v" ] && ! [ -f "$v/model.so" -a -f "$v/weights.bin" -a -f "$v/tokenizer.gguf" ]; then
                echo "partial entry $v"; return 1
            fi
        done
    }
    check sigint_any_moment c_sigint_any

    # --- item 4: cke cache clean removes stale temporaries, keeps recent variants, then everything
    C_DEAD=$(sh -c 'echo $$')
    mkdir -p "$C_C/keepme" "$(echo "$C_C"/*-*)/.ctx-9.tmp-$C_DEAD-abcdef"
    refuses clean_older 0 'removed 0 models, 0 compiled variants and 1 stale temporary directory' env CKE_CACHE="$C_C" "$CKE" cache clean --older-than 1
    check clean_older_kept test "$(ls "$C_C"/*-*/ | grep -c '^ctx-')" = 3
    refuses clean_all 0 'removed 1 model, 3 compiled variants' env CKE_CACHE="$C_C" "$CKE" cache clean
    check clean_all_only_ours test -d "$C_C/keepme" -a "$(ls "$C_C")" = keepme
    refuses list_empty 0 'is empty' env CKE_CACHE="$C_C" "$CKE" cache list
    # an entry of an older cke (one compiled directory, no variants) is listed and cleaned
    mkdir -p "$C_C/old.gguf-0123456789abcdef"
    cp "$C_OUT/model.so" "$C_OUT/cke-model.txt" "$C_C/old.gguf-0123456789abcdef/"
    refuses list_old_format 0 '\(old format\) +.*stories260K.gguf' env CKE_CACHE="$C_C" "$CKE" cache list
    refuses clean_old_format 0 'removed 1 model' env CKE_CACHE="$C_C" "$CKE" cache clean
else
    echo "SKIP cache tests with models (no $CKE_MODELS/stories260K or tiny-random-llama)"
fi
