# Continuous batching benchmark (decode_batch vs decode): build/batch_decode; bench/batch/batch.sh.
BB_OBJ := $(BUILD)/bench/batch/batch_decode.o

$(BUILD)/batch_decode: $(BB_OBJ) $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS) $(LDLIBS)

ALL_EXTRA += $(BUILD)/batch_decode
-include $(BB_OBJ:.o=.d)
