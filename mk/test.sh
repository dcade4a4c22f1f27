#!/bin/sh
# test.sh LUA...: builds the module for each Lua and runs the busted suite
# with it, and luacheck over every Lua file (.luacheckrc) as one more suite
# (clean: 1 passed; else 1 failed, and its findings are printed); ends with
# one line "N passed, M failed" over every suite and Lua, and exits non-zero
# on any failure.
#   SPECS  spec files (default: spec/)
#   JOBS   Lua versions tested at once (default 2: the suites mostly wait
#          on their servers, so two share a machine well)
#   LINT   0 leaves luacheck out
passed=0
failed=0
specs=${SPECS:-spec}
jobs=${JOBS:-2}
O=${O:-build}
[ $# -gt 0 ] || { echo "test.sh: no Lua with headers is installed" >&2; echo "0 passed, 1 failed"; exit 1; }
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for lua in "$@"; do
  make -s LUA="$lua" O="$O" lib || echo "build failed" >"$logs/$lua.build"
done
running=0
for lua in "$@"; do
  [ -e "$logs/$lua.build" ] && continue
  ( "$lua" /usr/bin/busted --lpath='./?.lua;./lua/?.lua' --cpath="$O/$lua/?.so" -o plainTerminal $specs \
      >"$logs/$lua.out" 2>&1; echo $? >"$logs/$lua.rc" ) &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait; running=0; fi
done
wait
for lua in "$@"; do
  echo "== $lua"
  if [ -e "$logs/$lua.build" ]; then
    echo "$lua: build failed"
    failed=$((failed + 1))
    continue
  fi
  cat "$logs/$lua.out"
  rc=$(cat "$logs/$lua.rc")
  summary=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$logs/$lua.out" | tail -n 1)
  if [ -z "$summary" ]; then
    echo "$lua: busted ended without a summary (exit $rc)"
    failed=$((failed + 1))
    continue
  fi
  s=$(echo "$summary" | awk '{print $1}')
  f=$(echo "$summary" | awk '{print $4}')
  e=$(echo "$summary" | awk '{print $7}')
  passed=$((passed + s))
  failed=$((failed + f + e))
  if [ "$rc" -ne 0 ] && [ $((f + e)) -eq 0 ]; then
    echo "$lua: busted exited $rc"
    failed=$((failed + 1))
  fi
done
if [ "${LINT:-1}" != 0 ]; then
  echo "== luacheck"
  if ! command -v luacheck >/dev/null 2>&1; then
    echo "luacheck is not installed (Debian: lua-check)"
    failed=$((failed + 1))
  elif luacheck --no-color -q . >"$logs/luacheck.out" 2>&1; then
    echo "luacheck: clean"
    passed=$((passed + 1))
  else
    cat "$logs/luacheck.out"
    failed=$((failed + 1))
  fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
