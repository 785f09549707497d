# Tokenizer tests and benchmark (src/tokenizer/ is part of libcke.a through CORE_SRC).
TOK_TEST_SRC := $(wildcard tests/tokenizer/*.c)
TOK_TEST_OBJ := $(TOK_TEST_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/test_tokenizer: $(TOK_TEST_OBJ) $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS) $(LDLIBS)

# Not in BENCH_SRC (the Makefile filters it out): it links the tokenizer, not OpenBLAS.
$(BUILD)/bench_tokenizer: $(BUILD)/bench/bench_tokenizer.o $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS) $(LDLIBS)

ALL_EXTRA += $(BUILD)/test_tokenizer $(BUILD)/bench_tokenizer

-include $(TOK_TEST_OBJ:.o=.d) $(BUILD)/bench/bench_tokenizer.d
