#!/bin/sh
# test.sh LUA...: builds the module for each Lua and runs the busted suite
# with it; ends with one line "N passed, M failed" over every suite and Lua,
# and exits non-zero on any failure. SPECS may name spec files (default: spec/).
passed=0
failed=0
specs=${SPECS:-spec}
[ $# -gt 0 ] || { echo "test.sh: no Lua with headers is installed" >&2; echo "0 passed, 1 failed"; exit 1; }
for lua in "$@"; do
  echo "== $lua"
  if ! make -s LUA="$lua" O="${O:-build}" lib; then
    echo "$lua: build failed"
    failed=$((failed + 1))
    continue
  fi
  out=$(mktemp)
  "$lua" /usr/bin/busted --lpath='./?.lua' --cpath="${O:-build}/$lua/?.so" -o plainTerminal $specs >"$out" 2>&1
  rc=$?
  cat "$out"
  summary=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$out" | tail -n 1)
  rm -f "$out"
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
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
