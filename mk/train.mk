# Training tests (src/plan/plan_train.c, src/codegen/codegen_train.c, src/train): build/test_train.
TRN_TEST_SRC := $(wildcard tests/train/*.c)
TRN_TEST_OBJ := $(TRN_TEST_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/test_train: $(TRN_TEST_OBJ) $(TCOMMON_OBJ) $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -o $@ $(TRN_TEST_OBJ) $(TCOMMON_OBJ) $(LIBCORE) $(LIBK) $(CORE_LIBS) $(LDLIBS)

ALL_EXTRA += $(BUILD)/test_train
-include $(TRN_TEST_OBJ:.o=.d)
