# Model-family tests (templates gpt2, qwen2, qwen3, gemma, gemma2 and llama.json's Mistral, Phi-3,
# Llama 3 rope scaling, each against a PyTorch reference): build/test_families.
FAM_TEST_OBJ := $(BUILD)/tests/compiler/test_families.o

# Like test_compiler, it compiles models, so the kernel library linked into them must exist too.
$(BUILD)/test_families: $(FAM_TEST_OBJ) $(TCOMMON_OBJ) $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $(FAM_TEST_OBJ) $(TCOMMON_OBJ) $(LIBCORE) $(LIBK) $(CORE_LIBS) $(LDLIBS)

ALL_EXTRA += $(BUILD)/test_families
-include $(FAM_TEST_OBJ:.o=.d)
