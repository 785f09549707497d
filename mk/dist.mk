# MPI (Open MPI from Debian: libopenmpi-dev, openmpi-bin) for src/dist/: the flags come from
# Open MPI's own pkg-config file (mpicc --showme when it is missing). libcke links libmpi; a
# process not started by mpirun never calls into it (src/dist/dist.h). `make MPI=0`, or no Open
# MPI on the machine (a cross build), builds cke without it: one process only (-DCKE_NO_MPI).
# a cross build links no MPI: this machine's Open MPI is not the target's
ifneq ($(TARGET_ARCH),$(shell cc -dumpmachine))
MPI ?= 0
endif
MPI ?= 1
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link 2>/dev/null)
endif
ifeq ($(strip $(MPI_LIBS)),)
MPI_CFLAGS := -DCKE_NO_MPI
ifeq ($(MPI),1)
$(info Open MPI not found (tools/deps.sh installs libopenmpi-dev): building cke without MPI, one process only)
endif
else
CORE_LIBS += $(MPI_LIBS)
endif
$(BUILD)/src/dist/%.o: CFLAGS += $(MPI_CFLAGS)

# bench/dist: the all-reduce bandwidth (mpirun -np 2 build/bench_dist_allreduce; bench/dist/run.sh)
$(BUILD)/bench/dist/%.o: CFLAGS += $(MPI_CFLAGS)
$(BUILD)/bench_dist_allreduce: $(BUILD)/bench/dist/allreduce_bw.o $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS) $(LDLIBS)

# tests/dist: the MPI layer's collectives, value by value (tests/dist/test_dist.sh runs it under mpirun)
$(BUILD)/tests/dist/%.o: CFLAGS += $(MPI_CFLAGS)
$(BUILD)/test_dist_api: $(BUILD)/tests/dist/test_dist_api.o $(LIBCORE)
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS) $(LDLIBS)
ALL_EXTRA += $(BUILD)/test_dist_api
-include $(BUILD)/tests/dist/test_dist_api.d $(BUILD)/bench/dist/allreduce_bw.d
