#!/bin/sh
# callgrind.sh: instructions per call under valgrind --tool=callgrind for the
# plain libcurl floor, a token client:accept and an AK/SK client:accept,
# each the difference between a run of BENCH_CG_HI and one of BENCH_CG_LO
# calls divided by their difference (start-up cancels out). Instruction
# counts do not depend on what else the machine is doing: the speed goals
# are judged on them (token <= 1.15 x floor, AK/SK <= 1.10 x token). Two
# more floors say where the rest goes, with no goal: the same loop given
# the URL parsed (CURLOPT_CURLU, as vpcep gives it), and that loop sending
# the AK/SK client's request (its signed headers, signature and all).
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
  # the URL, body and headers of a client's request ($1: token or aksk)
  BENCH_AUTH=$1 "$LUA" -e '
    local vpcep = require "vpcep"
    local o = { endpoint = os.getenv("BENCH_NGINX"), project_id = "0123456789abcdef0123456789abcdef", retries = 0 }
    if os.getenv("BENCH_AUTH") == "aksk" then
      o.ak, o.sk = "BENCHAK0123456789ABC", "bench-sk-0123456789abcdefghijklmnopqrstuv"
    else
      o.token = "bench-token-0123456789"
    end
    local r = vpcep.new(o):prepare("receive", "4e9a7c1b-5d2f-4a8e-9b3c-0123456789ab", "ep-0001")
    io.write(r.url, "\n", r.body, "\n")
    for k, v in pairs(r.headers) do io.write(k, ": ", v, "\n") end' >"$dir/req-$1"
}
request token
request aksk
# floor_total REQ N [CURLU]: bench/floor.c sending the request in $dir/req-REQ
# N times; CURLU=1 gives it the URL parsed, as vpcep does.
floor_total() {
  out="$dir/cg.out"
  req="$dir/req-$1"
  sed -n '3,$p' "$req" | tr '\n' '\0' |
    FLOOR_CURLU=${3:-0} xargs -0 valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out" \
      "$BUILD/bench-floor" "$(sed -n 1p "$req")" "$2" "$(sed -n 2p "$req")" >/dev/null 2>"$dir/vg.err" ||
    { cat "$dir/vg.err" >&2; exit 1; }
  sed -n 's/^summary: *//p' "$out"
}
# Each count is its own assignment, so that a failed run stops the script (set -e).
per_call() { echo $(( ($2 - $1) / (HI - LO) )); }
lo=$(floor_total token "$LO"); hi=$(floor_total token "$HI"); f=$(per_call "$lo" "$hi")
lo=$(floor_total token "$LO" 1); hi=$(floor_total token "$HI" 1); fu=$(per_call "$lo" "$hi")
lo=$(floor_total aksk "$LO" 1); hi=$(floor_total aksk "$HI" 1); fs=$(per_call "$lo" "$hi")
lo=$(total "$LUA" bench/count.lua "$LO"); hi=$(total "$LUA" bench/count.lua "$HI"); t=$(per_call "$lo" "$hi")
lo=$(total "$LUA" bench/count.lua "$LO" aksk); hi=$(total "$LUA" bench/count.lua "$HI" aksk); s=$(per_call "$lo" "$hi")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r <= g ? "MET " : "MISS") }'; }
rt=$(ratio "$t" "$f")
rs=$(ratio "$s" "$t")
printf '  floor (bench/floor.c, URL as text)      %8d per call\n' "$f"
printf '  floor, URL parsed (CURLOPT_CURLU)       %8d per call (no goal: what vpcep gives libcurl)\n' "$fu"
printf '  floor, AK/SK request, URL parsed        %8d per call (no goal: libcurl with the signed headers)\n' "$fs"
printf '  token client:accept                     %8d per call (%s x floor; %s x the parsed-URL floor)\n' \
  "$t" "$rt" "$(ratio "$t" "$fu")"
printf '  AK/SK client:accept                     %8d per call (%s x token; %s x its own floor)\n' \
  "$s" "$rs" "$(ratio "$s" "$fs")"
printf '  callgrind token  %s  %s x floor (goal <= 1.15)\n' "$(verdict "$rt" 1.15)" "$rt"
printf '  callgrind AK/SK  %s  %s x token (goal <= 1.10)\n' "$(verdict "$rs" 1.10)" "$rs"
