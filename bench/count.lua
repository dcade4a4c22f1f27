-- bench/count.lua: N sequential accepts against a server answering the
-- canned JSON (BENCH_NGINX, as bench/run.sh starts it), for counting
-- instructions per call under callgrind:
--   valgrind --tool=callgrind lua5.4 bench/count.lua 2000   (then 4000; subtract)
--   ... bench/count.lua 2000 aksk                           (an AK/SK client)
local vpcep = require "vpcep"
local n = tonumber(arg[1] or "2000")
local opts = { endpoint = assert(os.getenv("BENCH_NGINX"), "BENCH_NGINX is not set"),
               project_id = "0123456789abcdef0123456789abcdef", retries = 0 }
if arg[2] == "aksk" then
  opts.ak, opts.sk = "BENCHAK0123456789ABC", "bench-sk-0123456789abcdefghijklmnopqrstuv"
else
  opts.token = "bench-token-0123456789"
end
local c = vpcep.new(opts)
for _ = 1, n do
  assert(c:accept("4e9a7c1b-5d2f-4a8e-9b3c-0123456789ab", "ep-0001")[1].status == "accepted")
end
c:close()
