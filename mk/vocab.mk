# Vocabulary training tests (src/tokenizer/vocab_train.c on data/stories.txt): build/test_vocab.
VOC_TEST_SRC := $(wildcard tests/vocab/*.c)
VOC_TEST_OBJ := $(VOC_TEST_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/test_vocab: $(VOC_TEST_OBJ) $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $(VOC_TEST_OBJ) $(LIBCORE) $(LIBK) $(CORE_LIBS) $(LDLIBS)

ALL_EXTRA += $(BUILD)/test_vocab
-include $(VOC_TEST_OBJ:.o=.d)
