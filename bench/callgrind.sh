#!/bin/sh
# callgrind.sh: instructions per call under valgrind --tool=callgrind for the
# plain libcurl floor, a token client:accept and an AK/SK client:accept,
# each the difference between a run of BENCH_CG_HI and one of BENCH_CG_LO
# calls divided by their difference (start-up cancels out). Instruction
# counts do not depend on what else the machine is doing: the speed goals
# are judged on them (token <= 1.15 x floor, AK/SK <= 1.10 x token).
#   BENCH_NGINX=http://127.0.0.1:PORT BUILD=build/lua5.4 LUA=lua5.4 sh bench/callgrind.sh
# Skipped (with a line saying so) when valgrind is not installed.
set -e
LUA=${LUA:-lua5.4}
BUILD=${BUILD:-build/$LUA}
LO=${BENCH_CG_LO:-500}
HI=${BENCH_CG_HI:-1500}
: "${BENCH_NGINX:?BENCH_NGINX is not set}"
echo
echo "(callgrind) instructions per call, runs of $HI and $LO calls (valgrind --tool=callgrind)"
if ! command -v valgrind >/dev/null 2>&1; then
  echo "  skipped: valgrind is not installed"
  exit 0
fi
dir=$(mktemp -d /tmp/vpcep-cg.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
export BENCH_NGINX LUA_CPATH="$BUILD/?.so;;" LUA_PATH="./?.lua;;"

# Total instructions of one run: callgrind's summary line.
total() {
  out="$dir/cg.out"
  valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out" "$@" >/dev/null 2>"$dir/vg.err" ||
    { cat "$dir/vg.err" >&2; exit 1; }
  sed -n 's/^summary: *//p' "$out"
}
request() {
  # the same URL, body and headers as the token client's request
  "$LUA" -e '
    local vpcep = require "vpcep"
    local c = vpcep.new { endpoint = os.getenv("BENCH_NGINX"), project_id = "0123456789abcdef0123456789abcdef",
                          token = "bench-token-0123456789", retries = 0 }
    local r = c:prepare("receive", "4e9a7c1b-5d2f-4a8e-9b3c-0123456789ab", "ep-0001")
    io.write(r.url, "\n", r.body, "\n")
    for k, v in pairs(r.headers) do io.write(k, ": ", v, "\n") end' >"$dir/req"
}
request
url=$(sed -n 1p "$dir/req")
body=$(sed -n 2p "$dir/req")
floor_total() {
  out="$dir/cg.out"
  sed -n '3,$p' "$dir/req" | tr '\n' '\0' |
    xargs -0 valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out" \
      "$BUILD/bench-floor" "$url" "$1" "$body" >/dev/null 2>"$dir/vg.err" ||
    { cat "$dir/vg.err" >&2; exit 1; }
  sed -n 's/^summary: *//p' "$out"
}
f_lo=$(floor_total "$LO")
f_hi=$(floor_total "$HI")
f=$(( (f_hi - f_lo) / (HI - LO) ))
t_lo=$(total "$LUA" bench/count.lua "$LO")
t_hi=$(total "$LUA" bench/count.lua "$HI")
t=$(( (t_hi - t_lo) / (HI - LO) ))
s_lo=$(total "$LUA" bench/count.lua "$LO" aksk)
s_hi=$(total "$LUA" bench/count.lua "$HI" aksk)
s=$(( (s_hi - s_lo) / (HI - LO) ))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r <= g ? "MET " : "MISS") }'; }
rt=$(ratio "$t" "$f")
rs=$(ratio "$s" "$t")
printf '  floor (bench/floor.c)        %8d per call\n' "$f"
printf '  token client:accept          %8d per call (%s x floor)\n' "$t" "$rt"
printf '  AK/SK client:accept          %8d per call (%s x token)\n' "$s" "$rs"
printf '  callgrind token  %s  %s x floor (goal <= 1.15)\n' "$(verdict "$rt" 1.15)" "$rt"
printf '  callgrind AK/SK  %s  %s x token (goal <= 1.10)\n' "$(verdict "$rs" 1.10)" "$rs"
