-- bench/bulk10k.lua: (e) one bulk accept of 10,000 endpoints at concurrency
-- 64 against a server answering each request 20 ms late, run by
-- bench/run.sh. It starts its own nginx (with the Debian echo module, whose
-- echo_sleep delays an answer on a timer, so concurrent requests are
-- delayed in parallel and nginx stays far faster than the client) and
-- prints:
--   time      elapsed / ideal (n x delay / concurrency), goal <= 1.05
--   peak RSS  VmHWM growth during the call vs the results' Lua size
--             (collectgarbage("count") before/after), goal
--             <= 1.5 x results + 4 MiB
--   repeat    VmRSS growth from the 2nd to the last of the repeated calls
--             (after a full collection each), goal < 1 MiB
--
-- Environment: BENCH_BULK10K_N (10000), BENCH_BULK10K_CONC (64),
-- BENCH_BULK10K_DELAY_MS (20), BENCH_BULK10K_REPEAT (5),
-- NGINX_BIN, BENCH_ECHO_MODULE (the echo module's .so).
local vpcep = require "vpcep"
local socket = require "socket"

local N = tonumber(os.getenv("BENCH_BULK10K_N") or "10000")
local CONC = tonumber(os.getenv("BENCH_BULK10K_CONC") or "64")
local DELAY = tonumber(os.getenv("BENCH_BULK10K_DELAY_MS") or "20")
local REPEAT = tonumber(os.getenv("BENCH_BULK10K_REPEAT") or "5")
local NGINX_BIN = os.getenv("NGINX_BIN") or "/usr/sbin/nginx"
local ECHO = os.getenv("BENCH_ECHO_MODULE") or "/usr/lib/nginx/modules/ngx_http_echo_module.so"
local now = socket.gettime

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function status_kib(field)
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+) kB"))
end

-- Resets VmHWM to the current RSS (Linux >= 4.0); false when refused.
local function reset_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if not f then return false end
  local ok = f:write("5")
  ok = f:close() and ok
  return ok and true or false
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

print(string.format("\n(e) bulk accept of %d endpoints, concurrency %d, server delay %d ms "
  .. "(nginx + echo_sleep)", N, CONC, DELAY))
local fe = io.open(ECHO, "r")
if not fe then
  print("  skipped: no nginx echo module at " .. ECHO .. " (apt-get install libnginx-mod-http-echo)")
  print("\nsummary (e)\n  bulk10k      MISS not run (no echo module)")
  return
end
fe:close()

local dir = assert(io.popen("mktemp -d /tmp/vpcep-bulk10k.XXXXXX")):read("*l")
local port = free_port()
local conf = [[
load_module ECHO;
worker_processes 1;
pid DIR/nginx.pid;
error_log DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path DIR;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  map $request_body $ep {
    "~\"endpoints\":\[\"(?<e>[^\"]+)\"" $e;
    default unknown;
  }
  server {
    listen 127.0.0.1:PORT;
    location / {
      default_type application/json;
      add_header X-Request-Id 0123456789abcdef0123456789abcdef always;
      echo_read_request_body;
      echo_sleep SLEEP;
      echo -n 'ANSWER';
    }
  }
}
]]
local answer = '{"connections":[{"id":"$ep","marker_id":422321321312321321,'
  .. '"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:01Z",'
  .. '"domain_id":"6e9dfd51d1124e8d8498dce894923a0d","status":"accepted","description":""}]}'
conf = conf:gsub("ANSWER", answer):gsub("ECHO", ECHO):gsub("DIR", dir):gsub("PORT", tostring(port))
  :gsub("SLEEP", string.format("%.3f", DELAY / 1000))
local f = assert(io.open(dir .. "/nginx.conf", "w"))
f:write(conf)
f:close()
local pid = assert(io.popen(q(NGINX_BIN) .. " -p " .. q(dir) .. " -c " .. q(dir .. "/nginx.conf")
  .. " -g " .. q("daemon off; " .. (os.getenv("BENCH_NGINX_PIN") or "")) .. " >/dev/null 2>&1 & echo $!")):read("*l")
local function stop()
  os.execute("kill " .. pid .. " 2>/dev/null; sleep 0.2; rm -rf " .. q(dir))
end

local url = "http://127.0.0.1:" .. port
local up = false
for _ = 1, 100 do
  local c = socket.tcp()
  c:settimeout(0.1)
  if c:connect("127.0.0.1", port) then c:close(); up = true; break end
  c:close()
  socket.sleep(0.05)
end
if not up then
  stop()
  error("bulk10k: nginx did not start")
end

local ok, err = pcall(function()
  local ids = {}
  for i = 1, N do ids[i] = string.format("ep-%05d", i) end
  local c = vpcep.new { endpoint = url, project_id = "p-bench", token = "bench-token-0123456789",
    concurrency = CONC, retries = 0, timeout = 60 }
  -- warm-up: connections opened, handles made, allocator settled
  local warm = {}
  for i = 1, math.min(N, 4 * CONC) do warm[i] = ids[i] end
  local w = c:accept("svc-bench", warm)
  assert(w[1].id == ids[1] and w[1].status == "accepted", "bulk10k: unexpected warm-up answer")
  w = nil -- luacheck: ignore 311

  local best, rss_after, results_kib, peak_growth = math.huge, {}, nil, nil
  local have_peak = true
  for round = 1, REPEAT do
    collectgarbage("collect")
    collectgarbage("collect")
    local lua0, rss0 = collectgarbage("count"), status_kib("VmRSS")
    have_peak = reset_peak() and have_peak
    local t0, c0 = now(), os.clock()
    local r = c:accept("svc-bench", ids, { max_endpoints = N })
    local dt = now() - t0
    local cpu = os.clock() - c0
    local hwm = status_kib("VmHWM")
    collectgarbage("collect")
    local lua1 = collectgarbage("count") -- the results alone, the call's garbage gone
    assert(#r == N and r[N].id == ids[N] and r[1].status == "accepted", "bulk10k: wrong results")
    for i = 1, N, 997 do assert(r[i].id == ids[i], "bulk10k: results out of order") end
    if dt < best then best = dt end
    if round == 1 then
      results_kib = lua1 - lua0
      peak_growth = hwm - rss0
    end
    r = nil -- luacheck: ignore 311
    collectgarbage("collect")
    collectgarbage("collect")
    rss_after[round] = status_kib("VmRSS")
    print(string.format("  call %d: %.3f s (%.3f s CPU), VmRSS %d -> peak %d KiB, after GC %d KiB; results %.0f KiB",
      round, dt, cpu, rss0, hwm, rss_after[round], lua1 - lua0))
  end
  local ideal = N * DELAY / 1000 / CONC
  local ratio = best / ideal
  local mem_goal = 1.5 * results_kib + 4096
  local rep = REPEAT >= 3 and rss_after[REPEAT] - rss_after[2] or 0
  print(string.format("  best %.3f s, ideal %d x %d ms / %d = %.3f s, ratio %.3f (goal <= 1.05)",
    best, N, DELAY, CONC, ideal, ratio))
  print(string.format("  peak RSS growth %d KiB for %.0f KiB of results (goal <= 1.5 x + 4096 = %.0f KiB)%s",
    peak_growth, results_kib, mem_goal, have_peak and "" or " [VmHWM could not be reset: not measured]"))
  print(string.format("  VmRSS after GC, call 2 -> call %d: %+d KiB (goal < 1024)", REPEAT, rep))
  print("\nsummary (e)")
  print(string.format("  %-12s %-4s %.3f of ideal (goal <= 1.05)", "bulk10k", ratio <= 1.05 and "MET" or "MISS",
    ratio))
  print(string.format("  %-12s %-4s %d KiB peak growth for %.0f KiB of results (goal <= %.0f KiB)", "bulk10k mem",
    have_peak and peak_growth <= mem_goal and "MET" or "MISS", peak_growth, results_kib, mem_goal))
  print(string.format("  %-12s %-4s %+d KiB between repeated calls (goal < 1024)", "bulk10k rep",
    rep < 1024 and "MET" or "MISS", rep))
  c:close()
end)
stop()
if not ok then error(err, 0) end
