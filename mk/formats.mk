# Model-format tests (src/formats): build/test_formats.
FMT_TEST_SRC := $(wildcard tests/formats/*.c)
FMT_TEST_OBJ := $(FMT_TEST_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/test_formats: $(FMT_TEST_OBJ) $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS) $(LDLIBS)

ALL_EXTRA += $(BUILD)/test_formats
-include $(FMT_TEST_OBJ:.o=.d)
