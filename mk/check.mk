# make check: the busted suite under AddressSanitizer + UndefinedBehavior-
# Sanitizer (with LeakSanitizer), under valgrind memcheck, and the libFuzzer
# targets for the answer parser, the signer and the credentials file,
# each for FUZZ_TIME seconds.
# Any finding fails the target. Debian packages: mk/deps.sh build test check.
#
#   make check                  everything (lua5.4)
#   make check-asan | check-valgrind | check-fuzz
#   make check FUZZ_TIME=300    fuzz longer
#   make check CHECK_SPECS=spec/leak_spec.lua   limit the spec files

.PHONY: check check-asan check-valgrind check-fuzz

CHECK_LUA := lua5.4
# rockspec_spec drives luarocks, which looks for Lua's headers beside the
# `lua5.4` it finds on PATH (the sanitizer runner here): not a memory test.
CHECK_SPECS ?= $(filter-out spec/rockspec_spec.lua,$(wildcard spec/*_spec.lua))
FUZZ_TIME ?= 30
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_O := $(O)/asan
VG_O := $(O)/valgrind
FUZZ_O := $(O)/fuzz
CHECK_ENV = VPCEP_UNDER_TOOL=1 LUA_PATH='./?.lua;;'
BUSTED_ARGS = /usr/bin/busted --lpath='./?.lua;./lua/?.lua' -o plainTerminal $(CHECK_SPECS)

check: check-asan check-valgrind check-fuzz
	@echo "make check: sanitizers, valgrind and fuzzers found nothing"

check-deps:
	@sh mk/deps.sh build test check

# (a) The module and a tiny lua interpreter (spec/fuzz/lua_runner.c) built
# with ASan+UBSan; the runtime lives in the runner, so the children the
# specs start (python3, sh, openssl) run without it.
$(ASAN_O)/lua-asan: spec/fuzz/lua_runner.c | check-deps
	mkdir -p $(ASAN_O)/bin
	$(CC) -O1 -g $(SAN_FLAGS) $$(pkg-config --cflags $(CHECK_LUA)) -o $@ $< $$(pkg-config --libs $(CHECK_LUA)) -lm -ldl
	ln -sf ../lua-asan $(ASAN_O)/bin/$(CHECK_LUA)

check-asan: $(ASAN_O)/lua-asan
	$(MAKE) -s LUA=$(CHECK_LUA) O=$(ASAN_O) OPT="-O1 -g $(SAN_FLAGS)" EXTRA_LDFLAGS="$(SAN_FLAGS)" lib
	$(CHECK_ENV) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/spec/fuzz/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 PATH="$(abspath $(ASAN_O))/bin:$$PATH" \
	  $(ASAN_O)/lua-asan $(BUSTED_ARGS) --cpath='$(ASAN_O)/$(CHECK_LUA)/?.so'

# (b) valgrind memcheck on the interpreter running the suite (children are
# not traced). Definite leaks and any memory error fail.
check-valgrind: check-deps
	$(MAKE) -s LUA=$(CHECK_LUA) O=$(VG_O) OPT="-O1 -g" lib
	$(CHECK_ENV) valgrind -q --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  --error-exitcode=1 --suppressions=$(CURDIR)/spec/fuzz/valgrind.supp \
	  $(CHECK_LUA) $(BUSTED_ARGS) --cpath='$(VG_O)/$(CHECK_LUA)/?.so'

# (c) libFuzzer: the answer parser, the signer's canonicaliser, the
# credentials file parser and the quick decoder against the general path.
# New inputs go to the build folder; the committed seed corpora are only read.
FUZZ_CFLAGS = -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
  -D_POSIX_C_SOURCE=200809L $$(pkg-config --cflags $(CHECK_LUA) libcurl libcrypto)
FUZZ_LIBS = $$(pkg-config --libs $(CHECK_LUA) libcurl libcrypto) -lm -ldl

$(FUZZ_O)/fuzz_%: spec/fuzz/fuzz_%.c $(SRCS) $(wildcard src/*.h) | check-deps
	mkdir -p $(FUZZ_O)
	clang $(FUZZ_CFLAGS) -o $@ $< $(SRCS) $(FUZZ_LIBS)

check-fuzz: $(FUZZ_O)/fuzz_parse $(FUZZ_O)/fuzz_sign $(FUZZ_O)/fuzz_profile $(FUZZ_O)/fuzz_quick
	@for t in parse sign profile quick; do \
	  mkdir -p $(FUZZ_O)/corpus-$$t $(FUZZ_O)/artifacts-$$t; \
	  echo "fuzz_$$t: $(FUZZ_TIME) s"; \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
	  $(FUZZ_O)/fuzz_$$t -max_total_time=$(FUZZ_TIME) -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_O)/artifacts-$$t/ \
	    $(FUZZ_O)/corpus-$$t spec/fuzz/corpus/$$t 2>$(FUZZ_O)/fuzz_$$t.log \
	  || { tail -n 60 $(FUZZ_O)/fuzz_$$t.log; echo "fuzz_$$t: FINDING (input in $(FUZZ_O)/artifacts-$$t/)"; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' $(FUZZ_O)/fuzz_$$t.log | tail -n 2; \
	done
