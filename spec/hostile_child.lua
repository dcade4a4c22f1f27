-- spec/hostile_child.lua: one hostile case of spec/hostile_spec.lua, run in
-- a process of its own against the parent's mock (which holds the case's
-- faults already):
--   lua spec/hostile_child.lua MOCK_URL CAFILE CASE_JSON
-- CASE_JSON is {client = {<vpcep.new options>}, steps = {{op=, arg=, opts=}, ...}};
-- op is accept, reject, connections, oneshot_accept (vpcep.accept) or
-- await_extra (arg: how many). Prints one line "RESULT <json>": for each
-- step {ok=true, list=, total=} or {ok=false, err=} (or raw= for a raise
-- that is no error object), every marker_id as a decimal string.
local helper = require "spec.helper"
local vpcep = require "vpcep"

local url, cafile, case_json = ...
local case = helper.json.decode(case_json)
local mock = helper.attach(url)
local sid = helper.defaults.service_id

local function decimal(v)
  if math.type and math.type(v) == "integer" then return string.format("%d", v) end
  if type(v) == "number" then return string.format("%.0f", v) end
  if v ~= nil then return tostring(v) end
end

local function conn(c)
  return { id = c.id, status = c.status, marker_id = decimal(c.marker_id) }
end

local function error_of(e)
  local t = { code = e.code, message = e.message, endpoint = e.endpoint, status = e.status, text = tostring(e),
              retryable = e.retryable, failed = e.failed, request_id = e.request_id }
  if e.results then
    t.results = {}
    for i, r in ipairs(e.results) do t.results[i] = vpcep.is_error(r) and error_of(r) or conn(r) end
  end
  if e.connection then t.connection = conn(e.connection) end
  return t
end

local function outcome(ok, r, total)
  if not ok then
    if vpcep.is_error(r) then return { ok = false, err = error_of(r) } end
    return { ok = false, raw = tostring(r) }
  end
  local list = {}
  for i, c in ipairs(r) do list[i] = conn(c) end
  return { ok = true, list = list, total = decimal(total) }
end

local opts = helper.client_opts(mock, { retries = 0, timeout = 10 }, case.client)
if cafile ~= "" then opts.cafile = cafile end
local client = vpcep.new(opts)
local out = {}
for i, step in ipairs(case.steps) do
  if step.op == "await_extra" then
    mock:await_extra(step.arg)
    out[i] = { ok = true }
  elseif step.op == "oneshot_accept" then
    out[i] = outcome(pcall(vpcep.accept, helper.merge(opts, { service_id = sid, endpoints = step.arg })))
  else
    out[i] = outcome(pcall(client[step.op], client, sid, step.arg, step.opts))
  end
end
client:close()
io.write("RESULT ", helper.json.encode(out), "\n")
