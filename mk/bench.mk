# `cke bench` measures the machine's limits with the same code as bench_kernels (bench/machine.c,
# already in BENCH_SRC): the object is one more prerequisite of the cke link ($^ picks it up).
$(BUILD)/cke: $(BUILD)/bench/machine.o
