# cke compile --target: cross-compilation refusals (sourced by tests/cli/run.sh). The run of a
# cross-compiled model under qemu is tests/cross/test_aarch64.sh.
if have_models; then
    S="$CKE_MODELS/stories260K"
    refuses cross_unknown_target 1 "unknown target 'sparc-sun-solaris' \(cke cross-compiles for: aarch64-linux-gnu\)" \
        "$CKE" compile "$S/stories260K.gguf" -o "$T/x_unknown" --target sparc-sun-solaris
    refuses cross_target_no_value 2 'compile: --target' "$CKE" compile "$S/stories260K.gguf" -o "$T/x_noval" --target
    # a build tree without build-aarch64/: the missing kernel library is named with the make line
    mkdir -p "$T/home/build" "$T/home/src"
    ln -sf "$(cd "$(dirname "$CKE")" && pwd)/libckekernels.a" "$T/home/build/libckekernels.a"
    ln -sf "$(pwd)/include" "$T/home/include"
    ln -sf "$(pwd)/src/templates" "$T/home/src/templates"
    if command -v aarch64-linux-gnu-gcc >/dev/null; then
        refuses cross_no_kernel_lib 1 'no kernel library for aarch64-linux-gnu: .*build-aarch64/libckekernels.a is missing \(build it: make CC=aarch64-linux-gnu-gcc BUILD=build-aarch64' \
            env CKE_HOME="$T/home" "$CKE" compile "$S/stories260K.gguf" -o "$T/x_nolib" --target aarch64-linux-gnu
    else
        fail=$((fail + 1)); echo "FAIL cross_no_kernel_lib: aarch64-linux-gnu-gcc is not installed (tools/deps.sh --test)"
    fi
    refuses cross_no_compiler 1 'the cross compiler aarch64-linux-gnu-gcc for aarch64-linux-gnu is not on PATH \(Debian: apt-get install gcc-aarch64-linux-gnu\)' \
        env PATH=/nonexistent "$CKE" compile "$S/stories260K.gguf" -o "$T/x_nocc" --target aarch64-linux-gnu
    check cross_nothing_left sh -c "[ ! -e '$T/x_unknown' ] && [ ! -e '$T/x_nolib' ] && [ ! -e '$T/x_nocc' ]"
fi
