# cke compile --embedded [--weights const|blob]: options refused before anything is loaded, the
# directory it writes, and what the other commands say about it. The builds themselves (host,
# aarch64 under qemu, quantized, Cortex-M) are tests/embed/test_embed.sh.

refuses embed_weights_without_embedded 2 'cke compile: --weights const\|blob is for the embedded build: add --embedded' \
    "$CKE" compile "$T/no-model" --weights blob -o "$T/x"
refuses embed_debug 2 'cke compile: --embedded has no debug build' "$CKE" compile "$T/no-model" --embedded --debug -o "$T/x"
refuses embed_weights_unknown 2 'cke compile: --weights: flash is not const or blob' \
    "$CKE" compile "$T/no-model" --embedded --weights flash -o "$T/x"
refuses embed_weights_missing 2 'cke compile: --weights needs a value' "$CKE" compile "$T/no-model" --embedded --weights
check embed_help sh -c "'$CKE' compile --help | grep -q -- '--embedded \[--weights const|blob\]'"

if have_models; then
    S=$CKE_MODELS/stories260K
    ok embed_compile "$CKE" compile "$S/stories260K.bin" --embedded -o "$T/emb" --ctx 64
    check embed_files sh -c "cd '$T/emb' && test -f model.c -a -f model.h -a -f main.c -a -f Makefile -a -f weights.c -a -f kernels/cke/kernels.h -a ! -e model.so -a ! -e weights.bin"
    check embed_manifest grep -qx 'embedded const' "$T/emb/cke-model.txt"
    check embed_map grep -q '^  static RAM .* bytes (.bss): arena' "$T/emb/memory_map.txt"
    # compiling again into it replaces it (it is a cke directory), as blob this time
    ok embed_recompile_blob "$CKE" compile "$S/stories260K.bin" --embedded --weights blob -o "$T/emb" --ctx 64
    check embed_blob_files sh -c "test -f '$T/emb/weights.bin' -a ! -e '$T/emb/weights.c'"
    # a cke whose tree lacks its kernel sources (make install ships them: tests/cli/t_lib.sh)
    mkdir -p "$T/ehome/build" "$T/ehome/src"
    ln -s "$PWD/include" "$T/ehome/include"
    cp -r src/templates "$T/ehome/src/templates"
    ln -s "$(cd "$(dirname "$CKE")" && pwd)/libckekernels.a" "$T/ehome/build/libckekernels.a"
    CKE_HOME=$T/ehome refuses embed_no_kernel_sources 1 'cke compile: missing: embedded build: kernel source .*/kdecl.h not found' \
        "$CKE" compile "$S/stories260K.bin" --embedded -o "$T/emb-nokernels"
    check embed_no_kernel_sources_nothing_left sh -c "! ls -a '$T' | grep -q 'emb-nokernels'"
    refuses embed_run_refused 1 'cke run: .* is an embedded build \(a C program: make in it' "$CKE" run "$T/emb" -n 2
fi
