# Chat templates (src/chat: Jinja-subset interpreter, fallback formats) go into libcke.a: one
# more prerequisite of the archive ($^ picks it up). Tests: build/test_chat.
CHAT_SRC := $(wildcard src/chat/*.c)
CHAT_OBJ := $(CHAT_SRC:%.c=$(BUILD)/%.o)
$(LIBCORE): $(CHAT_OBJ)

CHAT_TEST_SRC := $(wildcard tests/chat/*.c)
CHAT_TEST_OBJ := $(CHAT_TEST_SRC:%.c=$(BUILD)/%.o)

# The end-to-end part runs $(BUILD)/cke (chat vs run on stories260K), so it needs it built.
$(BUILD)/test_chat: $(CHAT_TEST_OBJ) $(TCOMMON_OBJ) $(LIBCORE) $(LIBK) | $(BUILD)/cke
	$(CC) $(LDFLAGS) -o $@ $(CHAT_TEST_OBJ) $(TCOMMON_OBJ) $(LIBCORE) $(LIBK) $(CORE_LIBS) $(LDLIBS)

ALL_EXTRA += $(BUILD)/test_chat

# cke chat reads lines with libedit (Debian libedit-dev): only the cke binary links it
$(BUILD)/cke: LDLIBS += -ledit
-include $(CHAT_OBJ:.o=.d) $(CHAT_TEST_OBJ:.o=.d)
