# deeper — one non-recursive Makefile.
#
#   make              build every program into bin/
#   make test         install what is missing (scripts/setup), build, run every test
#   make test-asan    the same under -fsanitize=address,undefined (build/asan/)
#   make demo         ingest Fashion-MNIST, train, evaluate, classify
#   make NO_CUDA=1    build without the CUDA backend even where nvcc and cuDNN exist
#   make fuzz-build   the libFuzzer targets of tests/fuzz/ (clang, ASan+UBSan) into build/fuzz/
#   make fuzz         run each fuzz target FUZZ_SECONDS (default 600), print a table
#
# Layout rules, so nobody has to edit this file to add a source:
#   shared/*.c                       -> build/libdeeper.a      (every program links it)
#   <prog>/*.c except main*.c        -> build/lib<prog>.a      (prog = ingest, augment, trainer)
#   <prog>/main.c                    -> bin/deeper-<prog>
#   <prog>/main_<name>.c             -> bin/deeper-<name>      (e.g. trainer/main_eval.c -> deeper-eval)
#   front/main.c                     -> bin/deeper             (the git-style front door)
#   tests/test_*.c                   -> build/tests/test_*     (criterion; links every library)
#   tests/e2e/*.sh                   -> run by `make test` with DEEPER_BIN pointing at bin/
#   trainer/backend/*.c, trainer/backend/cpu/*.c -> build/libtrainer.a as well (the CPU backend)
#   kernels/*.cu, trainer/backend/cuda/*.c  -> only when CUDA is enabled (DEEPER_HAVE_CUDA=1)

BUILD ?= build
BIN   ?= bin
CC    ?= cc
OPT   ?= -O2
SAN   ?=

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Wno-unused-parameter \
               -Werror=implicit-function-declaration -Werror=incompatible-pointer-types \
               -I. -MMD -MP -pthread
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
endif

# CPU math library for the CPU backend (chosen by measurement; see docs/benchmarks.md).
CPU_MATH_LIBS ?= -ldnnl -lgomp -lopenblas
CPPFLAGS_MATH ?= -I/usr/include/x86_64-linux-gnu/openblas-pthread -I/usr/include/openblas

LIBS := -lzmq -llmdb -lturbojpeg -ljpeg -lwebp -lwebpdemux -lwebpmux -lpng -lz -lcjson $(CPU_MATH_LIBS) -lm -lpthread

# ---------------------------------------------------------------------------
# CUDA detection
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(shell command -v nvcc 2>/dev/null || { test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc; })
HAVE_CUDNN := $(shell test -f $(CUDA_HOME)/include/cudnn.h -o -f /usr/include/cudnn.h && echo 1)
ifeq ($(NO_CUDA),1)
CUDA := 0
else ifneq ($(and $(NVCC),$(HAVE_CUDNN)),)
CUDA := 1
else
CUDA := 0
endif

CUDA_SRCS_C  := $(wildcard trainer/backend/cuda/*.c)
CUDA_SRCS_CU := $(wildcard kernels/*.cu)
# GPU targets: sm_90 = H100/H200 (the GPU machines); add 80 for an A100.  Each
# extra arch adds compile time on a 2-core build machine (docs/gpu.md).
CUDA_ARCHS  ?= 90
ifeq ($(CUDA),1)
CFLAGS_BASE += -DDEEPER_HAVE_CUDA=1 -I$(CUDA_HOME)/include
NVCCFLAGS   ?= -O2 -std=c++17 -I. -I$(CUDA_HOME)/include -Xcompiler -fPIC -lineinfo \
               $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a))
# CUDA_LIBS is overridable: scripts/gpu-build links the rest statically.
CUDA_LIBS   ?= -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudnn -lcublas -lcudart -lnccl -lstdc++
LIBS += $(CUDA_LIBS)
endif

CFLAGS := $(CFLAGS_BASE) $(CPPFLAGS_MATH) $(CFLAGS_EXTRA)

# ---------------------------------------------------------------------------
# Sources
SHARED_SRCS := $(wildcard shared/*.c)
PROGS_DIRS  := ingest augment trainer

define prog_dir
$(1)_ALL   := $$(wildcard $(1)/*.c)
$(1)_MAINS := $$(filter $(1)/main.c $(1)/main_%.c,$$($(1)_ALL))
$(1)_LIBSRC:= $$(filter-out $$($(1)_MAINS) $$(CUDA_SRCS_C),$$($(1)_ALL))
endef
$(foreach d,$(PROGS_DIRS),$(eval $(call prog_dir,$(d))))

# backends: the registry and the CPU backend always, the CUDA backend with CUDA
trainer_LIBSRC += $(wildcard trainer/backend/*.c trainer/backend/cpu/*.c)
ifeq ($(CUDA),1)
trainer_LIBSRC += $(CUDA_SRCS_C)
endif

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
SHARED_OBJS := $(call obj,$(SHARED_SRCS))
CU_OBJS     := $(if $(filter 1,$(CUDA)),$(patsubst %.cu,$(BUILD)/obj/%.cu.o,$(CUDA_SRCS_CU)))

LIBDEEPER  := $(BUILD)/libdeeper.a
LIBINGEST  := $(BUILD)/libingest.a
LIBAUGMENT := $(BUILD)/libaugment.a
LIBTRAINER := $(BUILD)/libtrainer.a
ALL_LIBS   := $(LIBTRAINER) $(LIBAUGMENT) $(LIBINGEST) $(LIBDEEPER)

prog_name = $(if $(filter main,$(basename $(notdir $(2)))),deeper-$(1),deeper-$(patsubst main_%,%,$(basename $(notdir $(2)))))
PROGRAMS := $(BIN)/deeper \
  $(foreach d,$(PROGS_DIRS),$(foreach m,$($(d)_MAINS),$(BIN)/$(call prog_name,$(d),$(m))))

TEST_SRCS := $(wildcard tests/test_*.c)
TESTS     := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))

.SECONDARY:
.PHONY: all test test-unit test-e2e test-asan test-gpu gpu-bundle demo clean setup bench fuzz fuzz-build fuzz-seeds
all: $(PROGRAMS)
	@echo "built: $(notdir $(PROGRAMS))  (CUDA backend: $(if $(filter 1,$(CUDA)),on,off - $(if $(NO_CUDA),NO_CUDA=1,nvcc or cuDNN not found)))"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

$(LIBDEEPER): $(SHARED_OBJS)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(LIBINGEST): $(call obj,$(ingest_LIBSRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^ $(if $^,,$(BUILD)/obj/empty.o)
$(LIBAUGMENT): $(call obj,$(augment_LIBSRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^ $(if $^,,$(BUILD)/obj/empty.o)
$(LIBTRAINER): $(call obj,$(trainer_LIBSRC)) $(CU_OBJS)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^ $(if $^,,$(BUILD)/obj/empty.o)
$(LIBINGEST) $(LIBAUGMENT) $(LIBTRAINER): | $(BUILD)/obj/empty.o
$(BUILD)/obj/empty.o:
	@mkdir -p $(dir $@); echo 'typedef int deeper_empty_unit;' | $(CC) -x c -c - -o $@

LDFLAGS_ALL = $(LDSAN) $(LDFLAGS) -pthread -Wl,--as-needed

$(BIN)/deeper: $(call obj,front/main.c) $(LIBDEEPER)
	@mkdir -p $(dir $@)
	$(CC) $^ -o $@ $(LDFLAGS_ALL) $(LIBS)

define prog_rule
$(BIN)/$(call prog_name,$(1),$(2)): $(call obj,$(2)) $(ALL_LIBS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$< $(ALL_LIBS) -o $$@ $$(LDFLAGS_ALL) $$(LIBS)
endef
$(foreach d,$(PROGS_DIRS),$(foreach m,$($(d)_MAINS),$(eval $(call prog_rule,$(d),$(m)))))

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $< $(ALL_LIBS) -o $@ $(LDFLAGS_ALL) $(LIBS) -lcriterion

# ---------------------------------------------------------------------------
setup:
	@scripts/setup

test: setup
	@$(MAKE) --no-print-directory all tests-build
	@BUILD=$(BUILD) BIN=$(BIN) scripts/run-tests

tests-build: $(TESTS)

test-asan:
	@scripts/setup
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/bin SAN=1 OPT=-O1 NO_CUDA=1 all tests-build
	@BUILD=build/asan BIN=build/asan/bin DEEPER_ASAN=1 \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 scripts/run-tests

# On a machine without a usable GPU this fails with one line saying why;
# on a GPU machine a skipped GPU test is a failure (scripts/run-tests --gpu).
test-gpu: all tests-build
	@BUILD=$(BUILD) BIN=$(BIN) scripts/run-tests --gpu

# A self-contained bin/ + tests for a GPU machine (static ZeroMQ, LMDB, codecs;
# only CUDA/cuDNN/cuBLAS/NCCL dynamic).  scripts/gpu-run uses it.
gpu-bundle:
	@scripts/gpu-build

demo: setup
	@$(MAKE) --no-print-directory all
	@scripts/demo

# Every benchmark is a folder scripts/bench/NAME/ with an executable `run`.
bench: all
	@for b in scripts/bench/*/run; do [ -f "$$b" ] && [ -x "$$b" ] || continue; echo "== $$b"; $$b || exit 1; done

# ---------------------------------------------------------------------------
# Fuzzing (tests/fuzz/): libFuzzer targets built by clang with ASan + UBSan in
# their own object tree, so the normal build is untouched.  tests/fuzz/run
# runs them; tests/e2e/fuzz_smoke.sh runs each a few seconds under `make test`.
FUZZ_CC      ?= clang
FUZZ_DIR     ?= build/fuzz
FUZZ_SECONDS ?= 600
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas -I. -MMD -MP -pthread \
                $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_LIBSRC  := $(SHARED_SRCS) $(ingest_LIBSRC) $(augment_LIBSRC) trainer/checkpoint.c
FUZZ_LIBS    := -lzmq -llmdb -lturbojpeg -ljpeg -lwebp -lwebpdemux -lwebpmux -lpng -lz -lcjson -lm -lpthread
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB     := $(FUZZ_DIR)/libdeeper-fuzz.a

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_LIB): $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIBSRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ $(FUZZ_LIBS)
$(FUZZ_DIR)/make_seeds: $(FUZZ_DIR)/obj/tests/fuzz/make_seeds.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link $^ -o $@ $(FUZZ_LIBS)

fuzz-build: $(FUZZ_TARGETS) $(FUZZ_DIR)/make_seeds

fuzz: fuzz-build
	@FUZZ_DIR=$(FUZZ_DIR) tests/fuzz/run $(FUZZ_SECONDS)

fuzz-seeds: $(FUZZ_DIR)/make_seeds
	@FUZZ_DIR=$(FUZZ_DIR) tests/fuzz/make-seeds

clean:
	rm -rf build bin

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
