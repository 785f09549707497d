# The public library (include/cke/cke.h, src/api): engine, sessions, the compile cache. Its objects
# go into libcke.a like src/chat; libcke.so is the same objects plus the kernels, for programs
# that link cke dynamically (pkg-config cke). Tests: build/test_api, tests/cli/t_lib.sh.
API_SRC := $(wildcard src/api/*.c)
API_OBJ := $(API_SRC:%.c=$(BUILD)/%.o)
$(LIBCORE): $(API_OBJ)

LIBSO := $(BUILD)/libcke.so
# Every public function of libcke.a (whole-archive), and of the kernels only what the planner
# needs, kept local (--exclude-libs): model.so links its own kernels, and an exported copy here
# would interpose on them (and ASan reports that as an ODR violation). Members are all -fPIC.
$(LIBSO): $(LIBCORE) $(LIBK)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libcke.so -o $@ -Wl,--whole-archive $(LIBCORE) -Wl,--no-whole-archive \
	    $(LIBK) -Wl,--exclude-libs,libckekernels.a -Wl,--no-undefined $(CORE_LIBS) $(LDLIBS)

API_TEST_OBJ := $(BUILD)/tests/api/test_api.o
$(BUILD)/test_api: $(API_TEST_OBJ) $(LIBCORE) $(LIBK) | $(BUILD)/cke
	$(CC) $(LDFLAGS) -o $@ $(API_TEST_OBJ) $(LIBCORE) $(LIBK) $(CORE_LIBS) $(LDLIBS) -lpthread

ALL_EXTRA += $(LIBSO) $(BUILD)/test_api
-include $(API_OBJ:.o=.d) $(API_TEST_OBJ:.o=.d)

# make install [PREFIX=/usr/local] [DESTDIR=]: an installed cke finds its kernel library and
# templates relative to itself (cke_locate_resources), so it works from any directory.
PREFIX ?= /usr/local
INSTALL_ROOT = $(DESTDIR)$(PREFIX)
CKE_VERSION_STR = $(shell sed -n 's/^\#define CKE_VERSION "\(.*\)"/\1/p' include/cke/cke.h)

install: $(BUILD)/cke $(LIBSO) $(LIBCORE) $(LIBK)
	install -d $(INSTALL_ROOT)/bin $(INSTALL_ROOT)/lib/cke $(INSTALL_ROOT)/lib/pkgconfig \
	    $(INSTALL_ROOT)/include/cke $(INSTALL_ROOT)/share/cke/templates $(INSTALL_ROOT)/share/cke/kernels/ref
	install -m 755 $(BUILD)/cke $(INSTALL_ROOT)/bin/cke
	install -m 755 $(LIBSO) $(INSTALL_ROOT)/lib/libcke.so
	install -m 644 $(LIBCORE) $(INSTALL_ROOT)/lib/libcke.a
	install -m 644 $(LIBK) $(INSTALL_ROOT)/lib/cke/libckekernels.a
	install -m 644 include/cke/*.h $(INSTALL_ROOT)/include/cke/
	install -m 644 src/templates/*.json $(INSTALL_ROOT)/share/cke/templates/
	# the kernel sources `cke compile --embedded` copies into a program (next to templates/)
	install -m 644 src/kernels/*.c src/kernels/*.h $(INSTALL_ROOT)/share/cke/kernels/
	install -m 644 src/kernels/ref/*.c $(INSTALL_ROOT)/share/cke/kernels/ref/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(CKE_VERSION_STR)|' cke.pc.in >$(INSTALL_ROOT)/lib/pkgconfig/cke.pc

.PHONY: install
