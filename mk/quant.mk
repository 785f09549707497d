# Quantized models: bench_quant (random-model writer + decode/prefill speed), used by
# tests/quant/test_quant_models.sh and bench/quant/bench_quant.sh (`make bench-quant`).
BQ_OBJ := $(BUILD)/bench/quant/bench_quant.o $(BUILD)/bench/machine.o

$(BUILD)/bench_quant: $(BQ_OBJ) $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS) $(LDLIBS)

bench-quant: $(BUILD)/bench_quant $(BUILD)/cke
	BUILD=$(BUILD) ./bench/quant/bench_quant.sh

ALL_EXTRA += $(BUILD)/bench_quant
.PHONY: bench-quant
-include $(BQ_OBJ:.o=.d)
