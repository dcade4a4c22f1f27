# mk/bench.mk: `make bench` measures vpcep against a plain libcurl floor, a
# delayed bulk call, memory over 100,000 calls and list decoding (bench/).
.PHONY: bench

bench: lib $(BUILD)/bench-floor
	@sh mk/deps.sh build test bench
	@BUILD=$(BUILD) LUA=$(LUA) sh bench/run.sh

$(BUILD)/bench-floor: bench/floor.c | $(BUILD)
	$(CC) $(OPT) $(WARN) -D_POSIX_C_SOURCE=200809L $(DEP_CFLAGS) -o $@ $< $(DEP_LIBS)
