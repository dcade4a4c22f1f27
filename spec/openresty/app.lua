-- spec/openresty/app.lua: the nginx side of spec/openresty_spec.lua. Runs
-- vpcep.resty calls that the spec describes in JSON, from a handler or a
-- timer, and answers what came out in JSON (results, or the error object's
-- fields), with the worker's clock at the start and the end of the call.
-- luacheck: std +ngx_lua
local cjson = require "cjson"
local resty = require "vpcep.resty"

local M = {}
local unpack = table.unpack or unpack -- luacheck: ignore 143

-- An error object as the spec compares it (every field the contract names).
local function shape(err)
  if not resty.is_error(err) then return { not_an_error_object = tostring(err) } end
  local t = { code = err.code, message = err.message, status = err.status, request_id = err.request_id,
              retryable = err.retryable, endpoint = err.endpoint, tries = err.tries, failed = err.failed,
              tostring = tostring(err), connection = err.connection,
              cause = err.cause and { code = err.cause.code, status = err.cause.status } }
  if err.results then
    t.results = {}
    for i, r in ipairs(err.results) do
      t.results[i] = resty.is_error(r) and { error = shape(r) } or r
    end
  end
  if err.report then t.report = M.report_shape(err.report) end
  return t
end
M.shape = shape

-- A reconcile report as JSON takes it: its counts, and each plan entry's
-- id, action, reason, outcome and error code.
function M.report_shape(r)
  local plan = {}
  for i, e in ipairs(r.plan) do
    plan[i] = { id = e.id, domain_id = e.domain_id, action = e.action, reason = e.reason, outcome = e.outcome,
                described = e.described, error = e.error and e.error.code }
  end
  return { plan = plan, accepted = r.accepted, rejected = r.rejected, left = r.left, failed = r.failed,
           dry_run = r.dry_run, service_id = r.service_id }
end

-- each_connection's loop, run here: the connections it gave, in order.
local function drain(client, ...)
  local next_conn, err = client:each_connection(...)
  if not next_conn then return nil, err end -- a safe client's bad call
  local got = {}
  for conn in next_conn do got[#got + 1] = conn end
  return got
end

-- The spec's arguments, with each { lua = "chunk" } made the function the
-- chunk returns (a policy function, which JSON cannot carry).
local function functions_in(args, n)
  for i = 1, n do
    local a = args[i]
    if type(a) == "table" and type(a.lua) == "string" then args[i] = assert(loadstring(a.lua))() end
  end
  return args
end

-- Made in init_by_lua (see M.init): proof that new does no I/O.
M.made_in_init = nil
M.init_error = nil

function M.init(opts)
  M.made_in_init = resty.new(opts)
  local ok, err = pcall(resty.new, { project_id = "p", region = "xx-nowhere-1", token = "t" })
  M.init_error = not ok and shape(err) or { unexpected = "accepted" }
end

-- The spec's call: { client = opts | "init", safe = bool, method =, args = {...}, nargs = n },
-- or { module = true, safe = bool, method = "accept" | "reject", args = { {...} } } for the one-shots.
local function run(doc)
  local t0 = ngx.now()
  local client
  if doc.module then
    local res = { pcall((doc.safe and resty.safe or resty)[doc.method], unpack(doc.args)) }
    ngx.update_time()
    if res[1] and res[2] ~= nil then return { ok = true, results = res[2], t0 = t0, t1 = ngx.now() } end
    return { ok = false, safe_nil = res[1], err = shape(res[1] and res[3] or res[2]), t0 = t0, t1 = ngx.now() }
  elseif doc.client == "init" then
    client = M.made_in_init
  else
    local maker = doc.safe and resty.safe.new or resty.new
    local fine, c, err = pcall(maker, doc.client)
    if not fine then c, err = nil, c end
    if not c then return { ok = false, safe_nil = fine, err = shape(err), t0 = t0, t1 = ngx.now() } end
    client = c
  end
  if doc.close_first then client:close() end
  local f = doc.method == "each_connection" and drain or client[doc.method]
  local nargs = doc.nargs or #(doc.args or {})
  local res = { pcall(f, client, unpack(functions_in(doc.args or {}, nargs), 1, nargs)) }
  ngx.update_time()
  local out = { t0 = t0, t1 = ngx.now() }
  if doc.safe and res[1] and res[2] == nil then
    out.ok, out.safe_nil, out.err = false, true, shape(res[3])
  elseif res[1] and doc.method == "reconcile" then
    out.ok, out.report = true, M.report_shape(res[2])
  elseif res[1] then
    out.ok, out.results, out.total = true, res[2], res[3]
  else
    out.ok, out.err = false, shape(res[2])
  end
  if doc.client ~= "init" and doc.close ~= false then client:close() end
  return out
end
M.run = run

local function answer(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
end

-- POST /call: the call, in this handler.
function M.call()
  ngx.req.read_body()
  answer(run(cjson.decode(ngx.req.get_body_data())))
end

-- POST /timer?key=K: the call, in an ngx.timer.at callback; GET /result?key=K later.
function M.timer()
  ngx.req.read_body()
  local doc = cjson.decode(ngx.req.get_body_data())
  local key = ngx.var.arg_key
  local ok, err = ngx.timer.at(0, function(premature)
    if premature then return end
    local out = run(doc)
    out.phase = ngx.get_phase()
    ngx.shared.results:set(key, cjson.encode(out))
  end)
  answer({ started = ok and true or false, err = err })
end

function M.result()
  local v = ngx.shared.results:get(ngx.var.arg_key)
  if not v then ngx.status = 404 answer({ pending = true }) return end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(v)
end

-- GET /init: what init_by_lua saw, and a call in this phase is refused
-- when made where cosockets do not exist (init_worker, stored at start).
function M.init_report()
  answer({ init_error = M.init_error, init_worker = M.init_worker_error })
end

function M.init_worker()
  local ok, err = pcall(M.made_in_init.accept, M.made_in_init, "svc", "e1")
  M.init_worker_error = not ok and shape(err) or { unexpected = "ran" }
end

-- POST /cancel?after=S: the call in a light thread of this handler, and
-- client:close() from the handler S seconds later.
function M.cancel()
  ngx.req.read_body()
  local doc = cjson.decode(ngx.req.get_body_data())
  local client = resty.new(doc.client)
  local th = ngx.thread.spawn(function()
    return pcall(client[doc.method], client, unpack(doc.args))
  end)
  ngx.sleep(tonumber(ngx.var.arg_after))
  client:close()
  local _, ok, err = ngx.thread.wait(th)
  ngx.update_time()
  answer({ ok = ok, err = not ok and shape(err) or nil, t1 = ngx.now() })
end

-- GET /ping: answers at once, with the worker's clock.
function M.ping()
  ngx.update_time()
  answer({ t = ngx.now(), pid = ngx.worker.pid() })
end

return M
