# The public library (include/cke/cke.h, src/api): engine, sessions, the compile cache. Its objects
# go into libcke.a like src/chat; libcke.so is the same objects plus the kernels, for programs
# that link cke dynamically (pkg-config cke). Tests: build/test_api, tests/cli/t_lib.sh.
API_SRC := $(wildcard src/api/*.c)
API_OBJ := $(API_SRC:%.c=$(BUILD)/%.o)
$(LIBCORE): $(API_OBJ)

LIBSO := $(BUILD)/libcke.so
# (the archives' members are all -fPIC; whole-archive: every public function, not only the used)
$(LIBSO): $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libcke.so -o $@ -Wl,--whole-archive $^ -Wl,--no-whole-archive \
	    $(CORE_LIBS) $(LDLIBS)

API_TEST_OBJ := $(BUILD)/tests/api/test_api.o
$(BUILD)/test_api: $(API_TEST_OBJ) $(LIBCORE) $(LIBK) | $(BUILD)/cke
	$(CC) $(LDFLAGS) -o $@ $(API_TEST_OBJ) $(LIBCORE) $(LIBK) $(CORE_LIBS) $(LDLIBS) -lpthread

ALL_EXTRA += $(LIBSO) $(BUILD)/test_api
-include $(API_OBJ:.o=.d) $(API_TEST_OBJ:.o=.d)
