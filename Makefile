# vpcep: build, test and demo targets. `make help` lists them.
#
# One source tree, one build folder per Lua: build/<lua>/vpcep.so, where
# <lua> is lua5.1, lua5.3, lua5.4 or luajit (make LUA=...).

LUA ?= lua5.4
LUAS_KNOWN := lua5.1 lua5.3 lua5.4 luajit
# The Lua versions whose interpreter and headers are both installed.
LUAS = $(foreach v,$(LUAS_KNOWN),$(if $(shell command -v $(v) >/dev/null 2>&1 && pkg-config --exists $(v) 2>/dev/null && echo y),$(v)))

CC ?= cc
# O: the build root (helpers and CI jobs can build side by side).
O ?= build
BUILD := $(O)/$(LUA)
SRCS := $(sort $(wildcard src/*.c))
HDRS := $(wildcard src/*.h)
OBJS := $(patsubst src/%.c,$(BUILD)/%.o,$(SRCS))

WARN := -Wall -Wextra -Werror -std=c99 -pedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT ?= -O2 -g
LUA_CFLAGS = $(shell pkg-config --cflags $(LUA))
DEP_CFLAGS = $(shell pkg-config --cflags libcurl libcrypto)
DEP_LIBS = $(shell pkg-config --libs libcurl libcrypto)
CFLAGS_ALL = $(OPT) $(WARN) -fPIC -D_POSIX_C_SOURCE=200809L $(LUA_CFLAGS) $(DEP_CFLAGS) $(EXTRA_CFLAGS)
# -z nodelete: Lua unloads C modules when a state closes, and with vpcep.so
# would go libcurl's and libcrypto's global state (curl_global_init, the
# signer's fetched algorithms, OpenSSL's thread-locals) while the process
# still runs; LeakSanitizer's exit check crashes on such unloaded TLS.
LDFLAGS_ALL = -shared -Wl,-z,nodelete $(DEP_LIBS) $(EXTRA_LDFLAGS)

.PHONY: all lib deps test lint demo clean help

all: deps lib

help:
	@echo "make            build build/$(LUA)/vpcep.so"
	@echo "make demo       accept and reject against the bundled mock server"
	@echo "make test       the busted suite on every installed Lua ($(LUAS)), and luacheck"
	@echo "make lint       luacheck over every Lua file (.luacheckrc)"
	@echo "make LUA=luajit build for another Lua (lua5.1 lua5.3 lua5.4 luajit)"
	@echo "make clean      remove build/"

deps:
	@sh mk/deps.sh build

lib: $(BUILD)/vpcep.so

$(BUILD)/vpcep.so: $(OBJS) Makefile
	$(CC) -o $@ $(OBJS) $(LDFLAGS_ALL)

$(BUILD)/%.o: src/%.c $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD):
	mkdir -p $@

demo: all
	@sh mk/deps.sh test
	@LUA=$(LUA) sh mk/demo.sh

test:
	@sh mk/deps.sh build test
	@O=$(O) sh mk/test.sh $(LUAS)

lint:
	@sh mk/deps.sh test
	luacheck -q .

clean:
	rm -rf build

-include mk/*.mk
