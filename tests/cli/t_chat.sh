# cke chat: flags, templates that render nothing or attack the interpreter, the slash commands,
# Ctrl-C (SIGINT) during a reply and at the prompt, and the terminal path (libedit) in tmux.
# Sourced by tests/cli/run.sh (ok, refuses, check, have_models, $CKE, $T).
refuses chat_help 0 '^usage: cke chat' "$CKE" chat --help
help_on_stdout() { "$CKE" chat -h 2>/dev/null | grep -q '^usage: cke chat'; }
check chat_help_on_stdout help_on_stdout
refuses chat_no_model 2 'which model' "$CKE" chat
refuses chat_unknown_flag 2 'cke chat: unknown option --frob' "$CKE" chat x --frob
refuses chat_temp_nan 2 'cke chat: --temp: nan is not a temperature' "$CKE" chat x --temp nan
refuses chat_temp_negative 2 'cke chat: --temp: -1 is not a temperature' "$CKE" chat x --temp -1
refuses chat_top_p_nan 2 'cke chat: --top-p: nan is not a probability' "$CKE" chat x --top-p nan
refuses chat_min_p_negative 2 'cke chat: --min-p: -0.5 is not a probability' "$CKE" chat x --min-p -0.5
refuses chat_repeat_penalty_nan 2 'cke chat: --repeat-penalty: nan is not a repetition penalty' "$CKE" chat x --repeat-penalty nan
refuses chat_repeat_penalty_negative 2 'cke chat: --repeat-penalty: -2 is not a repetition penalty' "$CKE" chat x --repeat-penalty -2
refuses chat_n_missing 2 'cke chat: -n needs a value' "$CKE" chat x -n

if have_models; then
    M=$CKE_MODELS/stories260K/stories260K.gguf
    # chat_pipe INPUT ARGS...: cke chat on stories260K with INPUT (printf format) on stdin
    printf '#!/usr/bin/env bash\nin=$1; shift; printf "$in" | "%s" chat "%s" --threads 1 "$@"\n' "$CKE" "$M" > "$T/chat_pipe"
    chmod +x "$T/chat_pipe"
    chat_pipe=$T/chat_pipe
    printf '{{ "" }}' > "$T/empty.jinja"
    refuses chat_empty_prompt 1 'the chat template rendered an empty prompt' "$chat_pipe" 'hi\n' --template "$T/empty.jinja"
    python3 -c "print('{{ ' + '(' * 50000 + '1' + ')' * 50000 + ' }}')" > "$T/deep.jinja"
    refuses chat_deep_template 1 'line 1: blocks or expressions nested more than 256 levels' "$chat_pipe" 'hi\n' --template "$T/deep.jinja"
    printf '{%% for i in range(1000000) %%}{%% for j in range(1000000) %%}{%% endfor %%}{%% endfor %%}x' > "$T/loops.jinja"
    refuses chat_runaway_template 1 'loops ran more than 1000000 iterations' "$chat_pipe" 'hi\n' --template "$T/loops.jinja"

    # /regen at --temp 0 gives the same reply again; /clear starts over; /exit ends the input
    "$chat_pipe" 'Once upon a time\n/regen\n/help\n/clear\nOnce upon a time\n/frob\n/exit\nnever read\n' \
        --template chatml --temp 0 -n 24 >"$T/cmd.out" 2>"$T/cmd.err"
    check chat_commands_exit0 [ $? = 0 ]
    # three equal replies (each may contain newlines): the first, /regen's, and after /clear
    same3() { python3 -c 'import sys; d = open(sys.argv[1]).read(); n = len(d) // 3; sys.exit(not (n > 1 and d == d[:n] * 3))' "$1"; }
    check chat_regen_and_clear_same_reply same3 "$T/cmd.out"
    check chat_three_replies [ "$(grep -c '^cke: prompt' "$T/cmd.err")" = 3 ]
    check chat_clear_says_so grep -q 'conversation cleared' "$T/cmd.err"
    check chat_help_lists grep -q '/regen' "$T/cmd.err"
    check chat_unknown_command grep -q 'unknown command /frob' "$T/cmd.err"
    check chat_exit_stops_reading [ "$(grep -c '^cke: prompt' "$T/cmd.err")" = 3 ]

    # SIGINT during a reply: stdout is a FIFO already full, so the reply's first write blocks
    # until the signal; the reply stops, and the next line is answered.
    mkfifo "$T/out.fifo"
    exec 7<>"$T/out.fifo"
    head -c 65536 /dev/zero >&7
    { printf 'Once upon a time\n'; sleep 4; printf 'The end\n/exit\n'; } |
        timeout 60 "$CKE" chat "$M" --threads 1 --template chatml --temp 0 -n 64 >"$T/out.fifo" 2>"$T/int.err" &
    pid=$!
    for _ in $(seq 100); do grep -q 'using the built-in' "$T/int.err" 2>/dev/null && break; sleep 0.1; done
    sleep 1
    kill -INT "$pid" 2>/dev/null
    cat <&7 >/dev/null &
    drain=$!
    wait "$pid"
    rc=$?
    kill "$drain" 2>/dev/null
    exec 7>&-
    check chat_sigint_stops_reply grep -q 'reply stopped (Ctrl-C)' "$T/int.err"
    check chat_sigint_then_next_turn [ "$rc" = 0 -a "$(grep -c '^cke: prompt' "$T/int.err")" = 2 ]
    [ "$rc" = 0 ] || sed 's/^/    /' "$T/int.err" | tail -8
    no_reports() { ! grep -q 'Sanitizer\|runtime error' "$@"; }
    check chat_no_sanitizer_reports no_reports "$T/cmd.err" "$T/int.err"

    # The terminal: libedit, the banner, Ctrl-C at the prompt (twice leaves), /exit
    if command -v tmux >/dev/null; then
        S=cke-chat-test-$$
        tmx() { tmux -L "$S-$session" "$@"; } # a server per session: no race with the last one's exit
        session=1
        pane_has() { # PATTERN SECONDS
            local i=0
            while [ $i -lt $(($2 * 10)) ]; do
                tmx capture-pane -p -t "$S" -S -300 2>/dev/null | grep -Eq -- "$1" && return 0
                sleep 0.1; i=$((i + 1))
            done
            return 1
        }
        run_tmux() { # ARGS: the session runs cke chat, then prints its exit status
            tmx -f /dev/null new-session -d -s "$S" -x 160 -y 50 \
                "CKE_CACHE='$CKE_CACHE' '$CKE' chat '$M' --template chatml --threads 1 -n 200 --temp 1 --seed 1; echo EXIT=\$?; sleep 60"
        }
        run_tmux
        check chat_tty_banner pane_has '/exit or Ctrl-D to leave' 30
        # a reply of 200 tokens takes milliseconds here: a Ctrl-C sent with the line lands
        # before or after it (the FIFO case above stops one for certain); either way the
        # prompt must come back
        tmx send-keys -t "$S" 'Once upon a time' Enter
        check chat_tty_reply pane_has '^cke: prompt' 20
        tmx send-keys -t "$S" C-c
        check chat_tty_ctrl_c_prompt_back pane_has 'Ctrl-C again' 10
        check chat_tty_prompt_back pane_has '^>\s*$' 10
        tmx send-keys -t "$S" Up   # history: the last line comes back for editing
        check chat_tty_history pane_has '^> Once upon a time$' 10
        tmx send-keys -t "$S" C-u '/exit' Enter
        check chat_tty_exit pane_has 'EXIT=0' 10
        pane_clean() { ! pane_has 'Sanitizer|runtime error' 1; }
        check chat_tty_no_sanitizer_reports pane_clean
        tmx kill-server 2>/dev/null
        session=2
        run_tmux
        pane_has '/exit or Ctrl-D to leave' 30
        tmx send-keys -t "$S" C-c
        check chat_tty_ctrl_c_once pane_has 'Ctrl-C again, /exit or Ctrl-D to leave' 10
        tmx send-keys -t "$S" C-c
        check chat_tty_ctrl_c_twice_leaves pane_has 'EXIT=0' 10
        tmx kill-server 2>/dev/null
        session=3
        run_tmux
        pane_has '/exit or Ctrl-D to leave' 30
        tmx send-keys -t "$S" C-d
        check chat_tty_ctrl_d_leaves pane_has 'EXIT=0' 10
        tmx kill-server 2>/dev/null
    else
        echo "SKIP chat_tty: tmux not installed (tools/deps.sh --test)"
    fi
fi
