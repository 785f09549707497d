# Compiler/runtime tests (src/ir, src/plan, src/codegen, src/driver, src/runtime): build/test_compiler.
CMP_TEST_SRC := $(filter-out tests/compiler/test_families.c,$(wildcard tests/compiler/*.c))
CMP_TEST_OBJ := $(CMP_TEST_SRC:%.c=$(BUILD)/%.o)

# The test compiles models, so the kernel library it links into them must exist too.
$(BUILD)/test_compiler: $(CMP_TEST_OBJ) $(TCOMMON_OBJ) $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $(CMP_TEST_OBJ) $(TCOMMON_OBJ) $(LIBCORE) $(LIBK) $(CORE_LIBS) $(LDLIBS)

ALL_EXTRA += $(BUILD)/test_compiler
-include $(CMP_TEST_OBJ:.o=.d) $(TCOMMON_OBJ:.o=.d)
