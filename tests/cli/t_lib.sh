# libcke and make install: `make install PREFIX=$T/prefix` (from the build under test: build/ or
# build-san/), the installed cke compiling and running stories260K from another directory with a
# fresh cache, CKE_HOME still overriding, and examples/embed.c built with pkg-config against the
# installed library printing exactly what `cke run --temp 0` prints.
# Under SAN the example is built with -fsanitize too: a sanitized libcke.so needs the ASan
# runtime first in the program, which a plain program does not have.
# Sourced by tests/cli/run.sh (ok, refuses, check, have_models, $CKE, $T).
P=$T/prefix
san=0
[ "$(basename "$BUILD")" = build-san ] && san=1
ok lib_make_install make -s install SAN=$san BUILD="$BUILD" PREFIX="$P"
installed() {
    [ -x "$P/bin/cke" ] && [ -f "$P/lib/libcke.so" ] && [ -f "$P/lib/libcke.a" ] && [ -f "$P/lib/cke/libckekernels.a" ] \
        && [ -f "$P/include/cke/cke.h" ] && [ -f "$P/include/cke/model_abi.h" ] \
        && [ -f "$P/share/cke/templates/llama.json" ] && [ -f "$P/lib/pkgconfig/cke.pc" ] \
        && [ -f "$P/share/cke/kernels/kdecl.h" ] && [ -f "$P/share/cke/kernels/ref/gemm.c" ]
}
check lib_installed_files installed
refuses lib_installed_help 0 '^usage: cke run' "$P/bin/cke" run --help

if have_models; then
    G=$CKE_MODELS/stories260K/stories260K.gguf
    case $G in /*) ;; *) G=$PWD/$G ;; esac
    mkdir -p "$T/elsewhere"
    want=$("$CKE" run "$G" -p "Once upon a time" -n 40 --temp 0 -t 1 2>/dev/null)
    # the installed binary, run from another directory, compiles into a cache of its own
    got=$(cd "$T/elsewhere" && CKE_CACHE="$T/lib-cache1" "$P/bin/cke" run "$G" -p "Once upon a time" -n 40 --temp 0 -t 1 2>"$T/lib1.err")
    check lib_installed_cke_runs sh -c '[ -n "$1" ] && [ "$1" = "$2" ] && grep -q compiling "$3"' _ "$want" "$got" "$T/lib1.err"
    [ "$got" = "$want" ] || { echo "    want: $want"; echo "    got:  $got"; tail -5 "$T/lib1.err" | sed 's/^/    /'; }
    # the installed cke writes embedded builds too (its kernel sources are in share/cke/kernels):
    # the program builds with the plain compiler and decodes what the build tree's does
    S2=$CKE_MODELS/stories260K/stories260K.bin
    case $S2 in /*) ;; *) S2=$PWD/$S2 ;; esac
    (cd "$T/elsewhere" && "$P/bin/cke" compile "$S2" --embedded -o "$T/emb-inst" --ctx 64 >/dev/null 2>"$T/emb-inst.err")
    "$CKE" compile "$S2" --embedded -o "$T/emb-tree" --ctx 64 >/dev/null 2>&1
    ok lib_installed_embedded_builds make -s -C "$T/emb-inst"
    make -s -C "$T/emb-tree" >/dev/null 2>&1
    check lib_installed_embedded_same_ids sh -c '[ -n "$1" ] && [ "$1" = "$2" ]' _ \
        "$("$T/emb-inst/model_main" -n 16 1 2>/dev/null)" "$("$T/emb-tree/model_main" -n 16 1 2>/dev/null)"
    refuses lib_cke_home_overrides 1 'kernel library /nonexistent/build/libckekernels.a not found' \
        env CKE_HOME=/nonexistent CKE_CACHE="$T/lib-cache0" "$P/bin/cke" run "$G" -p Once -n 2
    # the example, built as a user would (pkg-config), against the installed shared library
    sanflags=""
    [ $san = 1 ] && sanflags="-fsanitize=address,undefined -fno-sanitize-recover=all"
    flags=$(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs cke)
    # shellcheck disable=SC2086
    ok lib_embed_builds cc -std=c11 -Wall -Werror $sanflags examples/embed.c $flags -o "$T/embed"
    check lib_embed_uses_the_shared_library sh -c "LD_LIBRARY_PATH='$P/lib' ldd '$T/embed' | grep -qF '$P/lib/libcke.so'"
    emb=$(cd "$T/elsewhere" && LD_LIBRARY_PATH="$P/lib" CKE_CACHE="$T/lib-cache2" "$T/embed" "$G" "Once upon a time" 40 2>"$T/lib2.err")
    check lib_embed_greedy_equals_cke_run sh -c '[ -n "$1" ] && [ "$1" = "$2" ]' _ "$want" "$emb"
    [ "$emb" = "$want" ] || { echo "    want: $want"; echo "    got:  $emb"; tail -5 "$T/lib2.err" | sed 's/^/    /'; }
    check lib_embed_compiled_through_the_library [ -f "$(ls -d "$T"/lib-cache2/*/ctx-auto 2>/dev/null | head -1)/model.so" ]
    refuses lib_embed_missing_model 1 'embed: i/o error: cannot open /nonexistent' \
        env LD_LIBRARY_PATH="$P/lib" "$T/embed" /nonexistent/m.gguf hi
fi
