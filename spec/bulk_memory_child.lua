-- spec/bulk_memory_child.lua: the runs of spec/bulk_memory_spec.lua, in a
-- process of its own started with VPCEP_DEBUG=1 (so that vpcep._debug, the
-- count of live transfer slots, exists), against the parent's mock:
--   VPCEP_DEBUG=1 lua spec/bulk_memory_child.lua MOCK_URL RUNS_JSON
-- RUNS_JSON is [{n=, concurrency=, driver="blocking"|"plan", retries=}, ...].
-- Prints one line "RESULT <json>": per run {peak=, before=, after=,
-- results=, in_order=, accepted=, most_out=} (peak, before and after:
-- live slots of the whole process; most_out: the most requests a plan had
-- handed out and not yet answered).
local helper = require "spec.helper"
local vpcep = require "vpcep"

local url, runs_json = ...
local runs = helper.json.decode(runs_json)
local mock = helper.attach(url)
local debug_slots = assert(vpcep._debug, "vpcep._debug is missing: VPCEP_DEBUG not set?")

-- Drives a plan with answers fed in reverse order of their handing out,
-- several out at once, so slots are lent and taken back out of order.
local function drive(op, seen)
  local out = {}
  while true do
    local what, x = op:next()
    if what == "done" then break end
    if what == "send" then
      for _, i in ipairs(x) do out[#out + 1] = i end
      if #out > seen.most_out then seen.most_out = #out end
    end
    -- answer what is out, last first; a "wait" with nothing out is a back-off
    while #out > 0 do
      local i = table.remove(out)
      local req = op:request(i)
      local status, body, headers = mock:request{ method = req.method,
        path = req.url:sub(#mock.url + 1), headers = req.headers, body = req.body }
      op:feed(i, status, body, headers)
    end
    if what == "wait" then require("socket").sleep(math.min(x, 0.05)) end
  end
  return op:result()
end

local out = {}
local c_opts = { endpoint = url, project_id = helper.defaults.project_id, token = helper.defaults.token }
for k, run in ipairs(runs) do
  local c = vpcep.new(helper.merge(c_opts, { concurrency = run.concurrency, retries = run.retries or 0 }))
  local ids = helper.ids(run.n)
  collectgarbage("collect")
  local before = debug_slots(true).live_slots
  local seen = { most_out = 0 }
  local r
  if run.driver == "plan" then
    r = drive(c:plan("accept", helper.defaults.service_id, ids, { max_endpoints = run.n }), seen)
  else
    r = c:accept(helper.defaults.service_id, ids, { max_endpoints = run.n })
  end
  local d = debug_slots()
  local in_order, accepted = true, 0
  for i = 1, run.n do
    if not r[i] or r[i].id ~= ids[i] then in_order = false end
    if r[i] and r[i].status == "accepted" then accepted = accepted + 1 end
  end
  r = nil -- luacheck: ignore 311
  c:close()
  collectgarbage("collect")
  collectgarbage("collect")
  out[k] = { peak = d.peak_slots, before = before, during_end = d.live_slots, after = debug_slots().live_slots,
             results = run.n, in_order = in_order, accepted = accepted, most_out = seen.most_out }
end
print("RESULT " .. helper.json.encode(out))
