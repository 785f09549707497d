# cke serve (src/server: HTTP on libmicrohttpd, request parsing, slots) goes only into the cke
# binary, which is the one thing that links libmicrohttpd (Debian libmicrohttpd-dev).
# Tests: tests/cli/t_serve.sh, tests/fuzz/fuzz_http_request.c.
SERVER_SRC := $(wildcard src/server/*.c)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
$(BUILD)/cke: $(SERVER_OBJ)
$(BUILD)/cke: LDLIBS += -lmicrohttpd -lpthread
-include $(SERVER_OBJ:.o=.d)
