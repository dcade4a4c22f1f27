-- bench/https.lua: the HTTPS section of `make bench` (bench/https.sh starts
-- nginx with TLS and sets the environment). Over one TLS server, side by
-- side: the plain libcurl floor (bench/floor.c with FLOOR_CAFILE), a kept
-- token client, a kept AK/SK client, and one-shot vpcep.accept{...} calls
-- (token and AK/SK), each a new client whose connection and TLS session
-- come from the Lua state's share (src/share.c).
--
-- Throughput: wall-clock, best of BENCH_HTTPS_ROUNDS rounds of
-- BENCH_HTTPS_N calls. Instructions: under valgrind --tool=callgrind (when
-- installed), the difference between BENCH_HTTPS_CG_N2 and
-- BENCH_HTTPS_CG_N1 calls divided by their difference, so start-up (and
-- the first TLS handshake) cancels out.
--
--   lua bench/https.lua                    the section (needs BENCH_HTTPS, BENCH_CAFILE, BENCH_FLOOR)
--   lua bench/https.lua count KIND N       N calls of KIND (token, aksk, oneshot, oneshot_aksk)
local vpcep = require "vpcep"

local URL = assert(os.getenv("BENCH_HTTPS"), "BENCH_HTTPS is not set")
local CAFILE = assert(os.getenv("BENCH_CAFILE"), "BENCH_CAFILE is not set")
local PROJECT, SERVICE, EP = "0123456789abcdef0123456789abcdef", "4e9a7c1b-5d2f-4a8e-9b3c-0123456789ab", "ep-0001"

local function opts(kind)
  local o = { endpoint = URL, project_id = PROJECT, cafile = CAFILE, retries = 0 }
  if kind:match("aksk$") then
    o.ak, o.sk = "BENCHAK0123456789ABC", "bench-sk-0123456789abcdefghijklmnopqrstuv"
  else
    o.token = "bench-token-0123456789"
  end
  return o
end

-- n calls of kind, each checked
local function calls(kind, n)
  if kind:match("^oneshot") then
    local o = opts(kind)
    o.service_id, o.endpoints = SERVICE, { EP }
    for _ = 1, n do assert(vpcep.accept(o)[1].status == "accepted") end
    return
  end
  local c = vpcep.new(opts(kind))
  for _ = 1, n do assert(c:accept(SERVICE, EP)[1].status == "accepted") end
  c:close()
end

if arg[1] == "count" then
  calls(arg[2], tonumber(arg[3]))
  return
end

local socket = require "socket"
local FLOOR = assert(os.getenv("BENCH_FLOOR"), "BENCH_FLOOR is not set")
local LUA = os.getenv("BENCH_LUA") or "lua5.4"
local N = tonumber(os.getenv("BENCH_HTTPS_N") or "2000")
local ROUNDS = tonumber(os.getenv("BENCH_HTTPS_ROUNDS") or "3")
local CG1 = tonumber(os.getenv("BENCH_HTTPS_CG_N1") or "200")
local CG2 = tonumber(os.getenv("BENCH_HTTPS_CG_N2") or "600")
local KINDS = { "floor", "token", "aksk", "oneshot", "oneshot_aksk" }
local NAMES = { floor = "floor (libcurl, TLS)", token = "token client, kept", aksk = "AK/SK client, kept",
                oneshot = "one-shot accept{}, token", oneshot_aksk = "one-shot accept{}, AK/SK" }

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- the floor's command line (the request a token client sends), run by
-- `wrap` (valgrind, or nothing)
local function floor_cmd(n, wrap)
  local req = vpcep.new(opts("token")):prepare("receive", SERVICE, EP)
  local args = { "FLOOR_CAFILE=" .. q(CAFILE), wrap or "", q(FLOOR), q(req.url), n, q(req.body) }
  for k, v in pairs(req.headers) do args[#args + 1] = q(k .. ": " .. v) end
  return table.concat(args, " ")
end

local function run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  assert(p:close(), "failed: " .. cmd .. "\n" .. out)
  return out
end

print(string.format("\n(https) %s over TLS (nginx, cafile %s)", vpcep._VERSION, CAFILE))

-- throughput
local best = {}
local function rate(kind)
  if kind == "floor" then
    local out = run(floor_cmd(N))
    return assert(tonumber(out:match("([%d.]+)/s")), "floor failed: " .. out)
  end
  local t0 = socket.gettime()
  calls(kind, N)
  return N / (socket.gettime() - t0)
end
print(string.format("  throughput: %d calls per round, best of %d rounds", N, ROUNDS))
for _ = 1, ROUNDS do
  for _, kind in ipairs(KINDS) do
    local r = rate(kind)
    if not best[kind] or r > best[kind] then best[kind] = r end
  end
end
for _, kind in ipairs(KINDS) do
  print(string.format("    %-26s %9.0f calls/s", NAMES[kind], best[kind]))
end

local verdicts = {}
local function verdict(name, ok, text)
  verdicts[#verdicts + 1] = string.format("  %-22s %-4s %s", name, ok and "MET" or "MISS", text)
end
local tr, tra = best.oneshot / best.token, best.oneshot_aksk / best.aksk
verdict("one-shot throughput", tr >= 0.5, string.format("token one-shot/kept %.2f x (goal >= 0.5)", tr))
verdict("one-shot throughput", tra >= 0.5, string.format("AK/SK one-shot/kept %.2f x (goal >= 0.5)", tra))

-- instructions under callgrind
local function have_valgrind() return os.execute("command -v valgrind >/dev/null 2>&1") == true
  or os.execute("command -v valgrind >/dev/null 2>&1") == 0 end
if have_valgrind() then
  local tmp = os.tmpname()
  local function instructions(kind, n)
    local cmd
    if kind == "floor" then
      cmd = floor_cmd(n, "valgrind --tool=callgrind --callgrind-out-file=" .. q(tmp))
    else
      cmd = string.format("valgrind --tool=callgrind --callgrind-out-file=%s %s bench/https.lua count %s %d",
        q(tmp), q(LUA), kind, n)
    end
    run(cmd .. " >/dev/null 2>&1")
    local f = assert(io.open(tmp, "r"))
    local s = f:read("*a")
    f:close()
    return assert(tonumber(s:match("\nsummary: (%d+)") or s:match("\ntotals: (%d+)")), "no callgrind summary")
  end
  local per = {}
  print(string.format("  instructions per call (callgrind, (I(%d) - I(%d)) / %d):", CG2, CG1, CG2 - CG1))
  for _, kind in ipairs(KINDS) do
    per[kind] = (instructions(kind, CG2) - instructions(kind, CG1)) / (CG2 - CG1)
    print(string.format("    %-26s %9.0f", NAMES[kind], per[kind]))
  end
  os.remove(tmp)
  local r, ra = per.oneshot / per.token, per.oneshot_aksk / per.aksk
  verdict("one-shot instructions", r <= 2, string.format("token one-shot/kept %.2f x (goal <= 2)", r))
  verdict("one-shot instructions", ra <= 2, string.format("AK/SK one-shot/kept %.2f x (goal <= 2)", ra))
  print(string.format("    ratios over TLS: token/floor %.2f x, AK/SK/token %.2f x", per.token / per.floor,
    per.aksk / per.token))
else
  print("  (valgrind not installed: no instruction counts)")
end
print("  verdicts (https):")
for _, v in ipairs(verdicts) do print(v) end
