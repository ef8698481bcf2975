# mk/fuzz.mk - libFuzzer harnesses (tests/fuzz/*.c) for the daemon's hostile
# input surfaces: JSON request bodies, CSV uploads, model blobs, the router.
# Included by the main Makefile (-include mk/*.mk); uses its PKGS, CORE_SRC,
# SERVER_SRC and MIGRATIONS.
#
#   make fuzz-build        build every harness into build/fuzz/
#   make fuzz              build, then run each harness for FUZZ_SECONDS
#                          (default 60), two at a time (FUZZ_JOBS), on a copy
#                          of its seed corpus in build/fuzz/corpus/<harness>;
#                          exits non-zero when any harness finds something
#                          (the input is left in build/fuzz/artifacts/<harness>/)
#   make fuzz FUZZ_SECONDS=600 FUZZ_HARNESSES="fuzz_csv fuzz_router"
#   make fuzz-run-fuzz_csv one harness only
#
# Everything (core, server, harness) is compiled by clang with ASan + UBSan
# and libFuzzer's coverage instrumentation; the committed corpora under
# tests/fuzz/corpus/ are only read (new inputs grow the copy in build/).
# Reproduce a finding: build/fuzz/<harness> build/fuzz/artifacts/<harness>/crash-...

FUZZ_DIR       := build/fuzz
FUZZ_CC        ?= clang
FUZZ_SECONDS   ?= 60
FUZZ_JOBS      ?= 2
FUZZ_TIMEOUT   ?= 10
FUZZ_RSS_MB    ?= 2048
# No single allocation may exceed this: the harnesses use small limits, so a
# bigger malloc means a size was trusted before it was checked.
FUZZ_MALLOC_MB ?= 64
FUZZ_ARGS      ?=
FUZZ_ALL       := $(sort $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c))))
FUZZ_HARNESSES ?= $(FUZZ_ALL)

FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wshadow -Wstrict-prototypes -pthread \
               -MMD -MP $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(shell pkg-config --cflags $(PKGS))
# The main Makefile's libraries, so a package added there is linked here too.
FUZZ_LIBS   := $(LIBS)

# Per-harness run options: the largest input worth trying, extra flags.
FUZZ_MAXLEN_fuzz_json_bodies := 16384
FUZZ_MAXLEN_fuzz_json_stream := 16384
FUZZ_MAXLEN_fuzz_csv         := 16384
FUZZ_MAXLEN_fuzz_model_blob  := 8192
FUZZ_MAXLEN_fuzz_router      := 512
FUZZ_FLAGS_fuzz_model_blob   := -use_value_profile=1
FUZZ_FLAGS_fuzz_router       := -use_value_profile=1

FUZZ_CORE_OBJ   := $(CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_SERVER_OBJ := $(SERVER_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/gen/migrations.o \
                   $(if $(wildcard openapi.yaml),$(FUZZ_DIR)/obj/gen/openapi.o) \
                   $(FUZZ_DIR)/obj/gen/onnx.pb-c.o
FUZZ_BINS       := $(FUZZ_ALL:%=$(FUZZ_DIR)/%)
FUZZ_DICTS      := $(FUZZ_ALL:%=$(FUZZ_DIR)/%.dict)
FUZZ_RUNS       := $(FUZZ_HARNESSES:%=fuzz-run-%)

.PHONY: fuzz fuzz-build $(FUZZ_RUNS)

fuzz-build: $(FUZZ_BINS) $(FUZZ_DICTS)

# clang 14 emits a target_clones function defined in one file and called
# from another under the wrong symbol (bp_gemv.ifunc, not bp_gemv: an
# undefined reference at link time), so the fuzz build compiles core's
# SIMD kernels once, for the default target.
FUZZ_CORE_FLAGS := '-Dtarget_clones(...)=unused'
$(FUZZ_DIR)/obj/core/%.o: core/%.c mk/fuzz.mk
	@mkdir -p $(@D); $(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_CORE_FLAGS) -c $< -o $@
$(FUZZ_DIR)/obj/server/%.o: server/%.c mk/fuzz.mk
	@mkdir -p $(@D); $(FUZZ_CC) $(FUZZ_CFLAGS) -Icore -Iserver -c $< -o $@
$(FUZZ_DIR)/gen/migrations.c: $(MIGRATIONS) scripts/embed_migrations.sh
	@mkdir -p $(@D); sh scripts/embed_migrations.sh $(MIGRATIONS) > $@
$(FUZZ_DIR)/gen/openapi.c: openapi.yaml scripts/embed_file.sh
	@mkdir -p $(@D); sh scripts/embed_file.sh openapi_yaml openapi.yaml > $@
# the ONNX encoder's protoc-c output (the main Makefile's %/gen/onnx.pb-c.c rule)
$(FUZZ_DIR)/obj/server/export/onnx.o: $(FUZZ_DIR)/gen/onnx.pb-c.h
$(FUZZ_DIR)/obj/server/export/onnx.o: FUZZ_CFLAGS += -I$(FUZZ_DIR)/gen
$(FUZZ_DIR)/obj/gen/%.o: $(FUZZ_DIR)/gen/%.c
	@mkdir -p $(@D); $(FUZZ_CC) $(FUZZ_CFLAGS) -Iserver -c $< -o $@
$(FUZZ_DIR)/obj/tests/fuzz/%.o: tests/fuzz/%.c mk/fuzz.mk
	@mkdir -p $(@D); $(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -iquote core -iquote server -c $< -o $@

.SECONDARY: $(FUZZ_ALL:%=$(FUZZ_DIR)/obj/tests/fuzz/%.o)

$(FUZZ_DIR)/libcore.a: $(FUZZ_CORE_OBJ)
	@mkdir -p $(@D); rm -f $@; ar rcs $@ $^
$(FUZZ_DIR)/libserver.a: $(FUZZ_SERVER_OBJ)
	@mkdir -p $(@D); rm -f $@; ar rcs $@ $^

# Archives: each harness links only the objects it reaches.
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_DIR)/libserver.a $(FUZZ_DIR)/libcore.a
	$(FUZZ_CC) -g $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

# Dictionaries, derived from the code so they stay true to it: every quoted
# identifier of the decoders and core's names, as a JSON string.
$(FUZZ_DIR)/fuzz_json_bodies.dict $(FUZZ_DIR)/fuzz_json_stream.dict: $(wildcard server/decode/decode*.c) core/names.c
	@mkdir -p $(@D)
	@{ grep -oh '"[a-z][a-z0-9_]*"' $(filter %.c,$^) | sort -u | sed 's/"\(.*\)"/"\\"\1\\""/'; \
	   for t in '{' '}' '[' ']' ':' ',' '{\"' '\":' 'true' 'false' 'null' '1e999' '-0' \
	            '0.5' '4294967296' '9223372036854775808' '1.5e-45' '3.5e38' '\\u0000' '\\ud800'; do \
	     printf '"%s"\n' "$$t"; done; } > $@
$(FUZZ_DIR)/fuzz_csv.dict:
	@mkdir -p $(@D)
	@for t in ',' '\"' '\"\"' '\x0d\x0a' '\x0a' '\x0d' '\xef\xbb\xbf' '1e5' '-0' 'nan' 'inf' '0x1p3' \
	          '1e39' ' 1' '1 ' 'label' 'species' 'setosa'; do printf '"%s"\n' "$$t"; done > $@
$(FUZZ_DIR)/fuzz_model_blob.dict:
	@mkdir -p $(@D)
	@for t in 'BPNN' '\x01\x00\x00\x00' '\x00\x00\x80\x7f' '\x00\x00\xc0\x7f' '\xff\xff\xff\xff' \
	          '\x00\x00\x00\x01' '\x10\x00\x00\x00'; do printf '"%s"\n' "$$t"; done > $@
$(FUZZ_DIR)/fuzz_router.dict: server/api/routes.c
	@mkdir -p $(@D)
	@{ grep -oh '"/[a-z0-9/{}._]*"' $^ | tr -d '"' | tr '/' '\n' | grep -v '^$$' | sort -u | \
	     sed 's/.*/"\/&"/'; \
	   for t in '/' '%' '%2F' '%2f' '%00' '%25' '%zz' '..' '.' '//' '?' '/v1'; do \
	     printf '"%s"\n' "$$t"; done; } > $@

$(FUZZ_RUNS): fuzz-run-%: $(FUZZ_DIR)/% $(FUZZ_DIR)/%.dict
	@mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/artifacts/$*
	@if [ -d tests/fuzz/corpus/$* ]; then cp -R tests/fuzz/corpus/$*/. $(FUZZ_DIR)/corpus/$*/; fi
	@echo "fuzz: $* for $(FUZZ_SECONDS) s, log in $(FUZZ_DIR)/$*.log"
	@OPENBLAS_NUM_THREADS=1 \
	 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 $(FUZZ_DIR)/$* -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
	   -rss_limit_mb=$(FUZZ_RSS_MB) -malloc_limit_mb=$(FUZZ_MALLOC_MB) \
	   -max_len=$(or $(FUZZ_MAXLEN_$*),4096) -dict=$(FUZZ_DIR)/$*.dict $(FUZZ_FLAGS_$*) \
	   -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$*/ $(FUZZ_ARGS) \
	   $(FUZZ_DIR)/corpus/$* > $(FUZZ_DIR)/$*.log 2>&1; \
	 rc=$$?; \
	 last=$$(grep -E '^#[0-9]+' $(FUZZ_DIR)/$*.log | tail -n 1); \
	 runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/$*.log); \
	 if [ $$rc -eq 0 ]; then echo "fuzz: $* ok: $$runs runs; $$last"; \
	 else echo "fuzz: $* FOUND SOMETHING (exit $$rc): see $(FUZZ_DIR)/$*.log and $(FUZZ_DIR)/artifacts/$*/"; \
	      grep -E 'ERROR|SUMMARY|invariant|runtime error' $(FUZZ_DIR)/$*.log | head -n 5; fi; \
	 exit $$rc

# -k: one harness's finding does not stop the others; the exit status
# still reports it.
fuzz: fuzz-build
	@$(MAKE) --no-print-directory -k -j$(FUZZ_JOBS) $(FUZZ_RUNS)

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
