# cke build. `make` builds the kernel library, the cke CLI and the tests;
# `make SAN=1` does the same with ASan+UBSan into build-san/.
# No -ffast-math anywhere: these numbers are compared against references.

CC      ?= cc
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-san
OPT     ?= -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD   ?= build
OPT     ?= -O2
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wformat=2 -Wundef -Werror -Wno-format-truncation
CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -g $(OPT) -fPIC -fopenmp $(WARN) -Iinclude -Isrc
LDFLAGS := $(OPT) -fopenmp
LDLIBS  := -lm

# Per-ISA flags: only the files of that ISA's folder get them (dispatch picks at run time).
# The ISA folders are those of the target the compiler builds for ($(CC) -dumpmachine):
# x86-64 -> avx2/ avx512/; aarch64 -> neon/ (base armv8-a) + neon/dot/ (armv8.2-a dot
# product); anything else -> the _ref only. Cross build: make CC=aarch64-linux-gnu-gcc BUILD=build-aarch64
TARGET_ARCH := $(shell $(CC) -dumpmachine)
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c
NEON_FLAGS     := -march=armv8-a
NEON_DOT_FLAGS := -march=armv8.2-a+dotprod

KSRC_GEN    := $(wildcard src/kernels/*.c)
KSRC_REF    := $(wildcard src/kernels/ref/*.c)
ifneq ($(filter x86_64% i686% i386%,$(TARGET_ARCH)),)
KSRC_ISA    := $(wildcard src/kernels/avx2/*.c src/kernels/avx512/*.c)
else ifneq ($(filter aarch64%,$(TARGET_ARCH)),)
KSRC_ISA    := $(wildcard src/kernels/neon/*.c src/kernels/neon/dot/*.c)
endif
KSRC        := $(KSRC_GEN) $(KSRC_REF) $(KSRC_ISA)
KOBJ        := $(KSRC:%.c=$(BUILD)/%.o)

# Everything of cke that is not a kernel: formats, tokenizer, IR, planner, codegen, runtime.
CORE_SRC := $(wildcard src/util/*.c src/dist/*.c src/formats/*.c src/tokenizer/*.c src/ir/*.c src/plan/*.c src/codegen/*.c src/runtime/*.c src/driver/*.c src/train/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
LIBCORE  := $(BUILD)/libcke.a
CORE_LIBS := -lcjson -lpcre2-8 -ldl -lutf8proc

CLI_SRC := $(wildcard src/cli/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)

TEST_SRC := $(wildcard tests/kernels/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

BENCH_SRC := $(filter-out bench/bench_tokenizer.c,$(wildcard bench/*.c))
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)

LIBK := $(BUILD)/libckekernels.a

.PHONY: all test bench clean
all: $(LIBK) $(BUILD)/cke $(BUILD)/test_kernels

$(BUILD)/src/kernels/avx2/%.o: CFLAGS += $(AVX2_FLAGS)
$(BUILD)/src/kernels/avx512/%.o: CFLAGS += $(AVX512_FLAGS)
# quantized dot products use VNNI (vpdpbusd); dispatch.c requires it for the avx512 level
$(BUILD)/src/kernels/avx512/quant.o: CFLAGS += -mavx512vnni
# the mixed-precision GEMM's vdpbf16ps; it checks the CPU itself and falls back to gemm_bf16.c
$(BUILD)/src/kernels/avx512/gemm_bf16.o: CFLAGS += -mavx512bf16
# neon/dot/%.o matches both patterns: the later -march (the dot product) is the one gcc keeps
$(BUILD)/src/kernels/neon/%.o: CFLAGS += $(NEON_FLAGS)
$(BUILD)/src/kernels/neon/dot/%.o: CFLAGS += $(NEON_DOT_FLAGS)
ifneq ($(filter aarch64%,$(TARGET_ARCH)),)
# Debian's gcc 12 for aarch64 crashes (ICE in vect_transform_reduction) vectorizing exact_dot's
# double reductions in this test; the test's own loops need no vectorizing
$(BUILD)/tests/kernels/t_quant.o: CFLAGS += -fno-tree-vectorize
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBK): $(KOBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBCORE): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/cke: $(CLI_OBJ) $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS) $(LDLIBS)

$(BUILD)/test_kernels: $(TEST_OBJ) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The benchmark links OpenBLAS to compare against it side by side (not part of cke itself).
$(BUILD)/bench_kernels: $(BENCH_OBJ) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $^ -lopenblas $(LDLIBS)

bench: $(BUILD)/bench_kernels
	$(BUILD)/bench_kernels

test:
	./tests/run.sh

clean:
	rm -rf build build-san build-aarch64

# Further test programs and tools add themselves here (one .mk per area, e.g. mk/formats.mk):
# each appends its binaries to ALL_EXTRA.
ALL_EXTRA :=
# what the end-to-end test programs (compiler, families, train) share
TCOMMON_OBJ := $(BUILD)/tests/common/tcommon.o
-include $(wildcard mk/*.mk)
all: $(ALL_EXTRA)

-include $(KOBJ:.o=.d) $(CORE_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d)
