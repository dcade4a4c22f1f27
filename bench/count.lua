-- bench/count.lua: N sequential accepts against a server answering the
-- canned JSON (BENCH_NGINX, as bench/run.sh starts it), for counting
-- instructions per call under callgrind:
--   valgrind --tool=callgrind lua5.4 bench/count.lua 2000   (then 4000; subtract)
local vpcep = require "vpcep"
local n = tonumber(arg[1] or "2000")
local c = vpcep.new { endpoint = assert(os.getenv("BENCH_NGINX"), "BENCH_NGINX is not set"),
                      project_id = "0123456789abcdef0123456789abcdef", token = "bench-token-0123456789",
                      retries = 0 }
for _ = 1, n do
  assert(c:accept("4e9a7c1b-5d2f-4a8e-9b3c-0123456789ab", "ep-0001")[1].status == "accepted")
end
c:close()
