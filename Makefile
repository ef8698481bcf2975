# backpropd build.  Plain make + pkg-config; see README.md.
#   make            build the daemon and the libraries
#   make deps       install the Debian packages the build and tests need
#   make test       build and run every test (the README's test command)
#   make asan       the same tests under AddressSanitizer + UBSan
#   make bench      benchmarks, one JSON object a line
#   make run        start the daemon on 127.0.0.1:8080 with ./data/backpropd.db

BUILD   ?= build
CC      ?= cc
PKGS    := openblas jansson libmicrohttpd sqlite3 libsodium zlib yajl
# protobuf-c: the ONNX export's encoder (server/export/onnx.c)
PKGS    += libprotobuf-c
OPT     ?= -O2
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
               -pthread -MMD -MP $(shell pkg-config --cflags $(PKGS))
ifeq ($(NATIVE),1)
CFLAGS_BASE += -march=native
endif
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
endif
ALL_CFLAGS := $(CFLAGS_BASE) $(CFLAGS)
LIBS    := $(shell pkg-config --libs $(PKGS)) -lcsv -lm -pthread $(LDSAN)
TESTLIBS := $(LIBS) $(shell pkg-config --libs criterion libcurl)

CORE_SRC   := $(wildcard core/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c server/*/*.c))
MIGRATIONS := $(sort $(wildcard migrations/*.sql))

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORED_OBJ  := $(CORE_SRC:core/%.c=$(BUILD)/core-double/%.o)
# The dashboard's files (server/api/api_ui.c), each embedded as ui_<name>_<ext>.
UI_FILES   := ui/index.html ui/app.js ui/app.css ui/favicon.svg ui/vendor/uplot.js ui/vendor/uplot.css
UI_OBJ     := $(foreach f,$(UI_FILES),$(BUILD)/gen/ui_$(subst .,_,$(notdir $(f))).o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o \
              $(if $(wildcard openapi.yaml),$(BUILD)/gen/openapi.o) $(BUILD)/gen/onnx.pb-c.o $(UI_OBJ)

# Test binaries: tests/core_*.c -> one float binary, tests/grad_*.c -> the
# double-precision build, tests/server_*.c -> the integration binary.
T_CORE   := $(wildcard tests/core_*.c)
T_GRAD   := $(wildcard tests/grad_*.c)
T_SERVER := $(wildcard tests/server_*.c)
T_UTIL   := $(wildcard tests/util_*.c)
TEST_BINS := $(if $(T_CORE),$(BUILD)/tests/test_core) $(if $(T_GRAD),$(BUILD)/tests/test_grad) \
             $(if $(T_SERVER),$(BUILD)/tests/test_server)

BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps deps-interop test asan bench run clean fuzz
all: $(BUILD)/libbpcore.a $(if $(wildcard server/main.c),$(BUILD)/backpropd)

$(BUILD)/libbpcore.a: $(CORE_OBJ)
	@mkdir -p $(@D); rm -f $@; ar rcs $@ $^
$(BUILD)/libbpcore_d.a: $(CORED_OBJ)
	@mkdir -p $(@D); rm -f $@; ar rcs $@ $^

$(BUILD)/core/%.o: core/%.c
	@mkdir -p $(@D); $(CC) $(ALL_CFLAGS) -c $< -o $@
$(BUILD)/core-double/%.o: core/%.c
	@mkdir -p $(@D); $(CC) $(ALL_CFLAGS) -DBP_DOUBLE -c $< -o $@
$(BUILD)/server/%.o: server/%.c
	@mkdir -p $(@D); $(CC) $(ALL_CFLAGS) -Icore -Iserver -c $< -o $@
$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(@D); $(CC) $(ALL_CFLAGS) -Icore -Iserver -Itests -c $< -o $@
$(BUILD)/tests/grad/%.o: tests/%.c
	@mkdir -p $(@D); $(CC) $(ALL_CFLAGS) -DBP_DOUBLE -Icore -Itests -c $< -o $@
$(BUILD)/bench/%.o: bench/%.c
	@mkdir -p $(@D); $(CC) $(ALL_CFLAGS) -Icore -Itests -c $< -o $@

# The migrations are compiled into the binary so the daemon is one file.
$(BUILD)/gen/migrations.c: $(MIGRATIONS) scripts/embed_migrations.sh
	@mkdir -p $(@D); sh scripts/embed_migrations.sh $(MIGRATIONS) > $@
$(BUILD)/gen/openapi.c: openapi.yaml scripts/embed_file.sh
	@mkdir -p $(@D); sh scripts/embed_file.sh openapi_yaml openapi.yaml > $@
define ui_embed_rule
$(BUILD)/gen/ui_$(subst .,_,$(notdir $(1))).c: $(1) scripts/embed_file.sh
	@mkdir -p $$(@D); sh scripts/embed_file.sh ui_$(subst .,_,$(notdir $(1))) $(1) > $$@
endef
$(foreach f,$(UI_FILES),$(eval $(call ui_embed_rule,$(f))))
$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(ALL_CFLAGS) -Iserver -c $< -o $@

# The ONNX export's message types: protoc-c's C for Debian's onnx.proto
# (libonnx-dev; proto2, package onnx), generated into <build>/gen.  One
# pattern rule for every build directory (build/, build/asan/, build/fuzz/),
# and a pattern so that both outputs come from one protoc-c run.
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
%/gen/onnx.pb-c.c %/gen/onnx.pb-c.h: $(ONNX_PROTO)
	@mkdir -p $(@D); protoc-c --proto_path=$(dir $(ONNX_PROTO)) --c_out=$(@D) $(notdir $(ONNX_PROTO))
.PRECIOUS: %/gen/onnx.pb-c.c %/gen/onnx.pb-c.h
$(BUILD)/server/export/onnx.o: $(BUILD)/gen/onnx.pb-c.h
$(BUILD)/server/export/onnx.o: ALL_CFLAGS += -I$(BUILD)/gen

$(BUILD)/backpropd: $(BUILD)/server/main.o $(SERVER_OBJ) $(BUILD)/libbpcore.a
	$(CC) -o $@ $^ $(LIBS)

$(BUILD)/tests/test_core: $(T_CORE:%.c=$(BUILD)/%.o) $(T_UTIL:%.c=$(BUILD)/%.o) $(BUILD)/libbpcore.a
	$(CC) -o $@ $^ $(TESTLIBS)
$(BUILD)/tests/test_grad: $(T_GRAD:tests/%.c=$(BUILD)/tests/grad/%.o) $(BUILD)/libbpcore_d.a
	$(CC) -o $@ $^ $(TESTLIBS)
$(BUILD)/tests/test_server: $(T_SERVER:%.c=$(BUILD)/%.o) $(T_UTIL:%.c=$(BUILD)/%.o) $(SERVER_OBJ) $(BUILD)/libbpcore.a
	$(CC) -o $@ $^ $(TESTLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(T_UTIL:%.c=$(BUILD)/%.o) $(BUILD)/libbpcore.a
	$(CC) -o $@ $^ $(TESTLIBS)

# The Criterion binaries, then the dashboard in a real browser (tests/ui/;
# skipped with a message where chromium is not installed).
test: all $(TEST_BINS)
	@rc=0; sh tests/run.sh $(TEST_BINS) || rc=1; sh tests/ui/run.sh $(BUILD) || rc=1; exit $$rc

asan:
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(MAKE) BUILD=build/asan SAN=1 OPT=-O1 test

bench: all $(BENCH_BIN)
	@sh bench/run.sh $(BUILD)

run: all
	@mkdir -p data
	$(BUILD)/backpropd --bind 127.0.0.1 --port 8080 --db ./data/backpropd.db

deps:
	@sh scripts/deps.sh

# onnxruntime-node (about 290 MB) for the ONNX round trip of make test,
# kept out of the default npm install: tests/interop/ has its own lock.
deps-interop:
	@sh scripts/deps_interop.sh

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Hardening targets (fuzzing, load test) live in their own makefiles.
-include mk/*.mk
