-- vpcep.resty: the vpcep client for OpenResty (lua-nginx-module), with the
-- blocking client's surface, options, results and error objects, that never
-- blocks the nginx worker.
--
--   local vpcep = require "vpcep.resty"
--   local client = vpcep.new { region = "cn-north-4", project_id = ..., token = ... }
--   local conns = client:accept(service_id, { id1, id2 }, { wait = 60 })
--   local report = client:reconcile(service_id, { accept_domains = { ... } })
--   for conn in client:each_connection(service_id) do ... end
--
-- Each call is the C module's plan (client:plan, the state machine the
-- blocking client runs, with every retry, back-off, deadline, wait poll and
-- page in it); this file only drives it: each request it hands out goes
-- over a cosocket in its own light thread (vpcep.resty.http), and the
-- driver sleeps on a semaphore until the first answer or the plan's pause.
-- Calls run in rewrite/access/content handlers and ngx.timer callbacks;
-- vpcep.new only validates, so a client can be made in init_by_lua.
-- luacheck: std +ngx_lua
local ngx = ngx
if type(ngx) ~= "table" or not ngx.socket then
  error("vpcep.resty needs lua-nginx-module (OpenResty): there is no ngx.socket here", 2)
end

local vpcep = require "vpcep"
local flow = require "vpcep.reconcile"
local semaphore = require "ngx.semaphore"
local http = require "vpcep.resty.http"

local M = { _VERSION = vpcep._VERSION, is_error = vpcep.is_error, parse = vpcep.parse, sign = vpcep.sign }

local DEFAULT_CONCURRENCY = 8 -- as the C client's
local OVERDUE = 0.25          -- seconds past a request's timeout before the driver cuts it off

-- The metatable of the module's error objects, to make one here that
-- vpcep.is_error and tostring treat as the module's own.
local ERROR_MT = getmetatable(select(2, pcall(vpcep.parse, "")))

local function raise(code, message)
  error(setmetatable({ code = code, message = message, retryable = false }, ERROR_MT), 0)
end

-- The phases where cosockets and light threads exist.
local CAN_RUN = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
                  ssl_session_fetch = true, ssl_client_hello = true, preread = true }

local function check_phase(method)
  local phase = ngx.get_phase()
  if not CAN_RUN[phase] then
    raise("vpcep.invalid_argument", "vpcep.resty: client:" .. method .. " cannot run in the " .. phase
      .. " phase (no cosockets there); call it from a handler or an ngx.timer.at callback")
  end
end

-- Waits for the first answer (or a close) or seconds, whichever comes
-- first, always yielding to nginx (a pause of 0 would spin the worker).
local function pause(sema, seconds)
  sema:wait(seconds > 0.001 and seconds or 0.001)
end

-- One run of a plan: the requests out (their threads), the answers back.
local Run = {}
Run.__index = Run

local function carry(run, i, req)
  local answer = { pcall(http.exchange, req, run.pool_size) }
  if answer[1] then
    table.remove(answer, 1)
  else
    answer = { false, "vpcep.transport", "vpcep.resty: " .. tostring(answer[2]) }
  end
  answer.i = i
  run.answers[#run.answers + 1] = answer
  run.sema:post(1)
end

function Run:send(i)
  local req = self.op:request(i)
  -- the plan gives the request its time left; the driver holds it to that
  -- too, for a server that drips bytes slowly enough to keep a read alive
  -- (the exchange's own timeouts end at the same time: they go first)
  self.deadlines[i] = ngx.now() + (req.timeout or 60) + OVERDUE
  local thread, err = ngx.thread.spawn(carry, self, i, req)
  if not thread then
    self.deadlines[i] = nil
    self.op:fail(i, "vpcep.transport", "cannot start a light thread: " .. tostring(err))
    return
  end
  self.threads[i] = thread
  self.out = self.out + 1
end

-- Hands the plan every answer that came, and times out what is overdue.
function Run:settle()
  local answers = self.answers
  self.answers = {}
  for _, a in ipairs(answers) do
    local i = a.i
    if self.threads[i] then
      ngx.thread.wait(self.threads[i]) -- reaps the finished thread (it does not yield)
      self.threads[i], self.deadlines[i] = nil, nil
      self.out = self.out - 1
      if a[1] then
        self.op:feed(i, a[2], a[3], a[4])
      else
        self.op:fail(i, a[2], a[3])
      end
    end
  end
  ngx.update_time()
  local t = ngx.now()
  for i, deadline in pairs(self.deadlines) do
    if t >= deadline then
      ngx.thread.kill(self.threads[i])
      self.threads[i], self.deadlines[i] = nil, nil
      self.out = self.out - 1
      self.op:fail(i, "vpcep.timeout", "no full answer in time")
    end
  end
end

-- Seconds until the nearest overdue request, or math.huge.
function Run:next_deadline()
  local soonest = math.huge
  for _, deadline in pairs(self.deadlines) do
    if deadline < soonest then soonest = deadline end
  end
  return soonest - ngx.now()
end

function Run:loop()
  local op = self.op
  while true do
    local what, x = op:next()
    if what == "send" then
      for _, i in ipairs(x) do self:send(i) end
    elseif what == "wait" then
      if #self.answers == 0 and not self.cancelled then
        pause(self.sema, math.min(x, self:next_deadline()))
      end
    else
      return op:result()
    end
    self:settle()
  end
end

-- Stops what is still out (after an error, or a close that ended the call).
function Run:stop()
  for i, thread in pairs(self.threads) do
    ngx.thread.kill(thread)
    self.threads[i] = nil
  end
  self.deadlines = {}
end

local function pack(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack -- luacheck: ignore 143

-- Runs client.c's plan of method to its end; its results, or raises its error.
local function drive(client, method, ...)
  local op = client.c:plan(method, ...)
  check_phase(method)
  local run = setmetatable({ op = op, sema = semaphore.new(0), answers = {}, threads = {},
                             deadlines = {}, out = 0, pool_size = client.pool_size }, Run)
  client.runs[run] = true
  local res = pack(pcall(run.loop, run))
  client.runs[run] = nil
  if not res[1] then
    run:stop()
    error(res[2], 0)
  end
  return unpack(res, 2, res.n)
end

local Client = {}
Client.__index = Client

function Client:accept(service_id, endpoints, opts)
  return drive(self, "accept", service_id, endpoints, opts)
end

function Client:reject(service_id, endpoints, opts)
  return drive(self, "reject", service_id, endpoints, opts)
end

function Client:connections(service_id, query)
  return drive(self, "connections", service_id, query)
end

function Client:describe(service_id, descriptions, opts)
  return drive(self, "describe", service_id, descriptions, opts)
end

-- The methods above are synchronous in the light thread that calls them,
-- so the blocking client's Lua part (vpcep.reconcile) runs over them as it
-- is: the same pages, policies, plan, report and errors.
--   for conn in client:each_connection(sid [, query]) do ... end
function Client:each_connection(service_id, query)
  check_phase("each_connection")
  return flow.each_connection(self, service_id, query)
end

-- client:reconcile(sid, policy [, opts]) -> report, or raises (err.report)
function Client:reconcile(service_id, policy, opts)
  check_phase("reconcile")
  return flow.reconcile(self, service_id, policy, opts)
end

-- client:info() -> { auth=, project_id=, region=, endpoint=, expires_at= }:
-- what a credential source must fetch first (an IAM token, temporary keys,
-- the project id) is fetched over cosockets, as a call's first steps.
function Client:info()
  drive(self, "credentials")
  return self.c:info()
end

-- The C client's own, no I/O, once the client holds its credentials (a
-- source that fetches is fetched first, over cosockets, where they exist;
-- in init_by_lua a token or AK/SK client's prepare works as it is).
function Client:prepare(action, service_id, endpoint_id)
  if CAN_RUN[ngx.get_phase()] then drive(self, "credentials") end
  return self.c:prepare(action, service_id, endpoint_id)
end

-- Closing ends the calls still running: each wakes and ends with vpcep.cancelled.
function Client:close()
  self.c:close()
  for run in pairs(self.runs) do
    run.cancelled = true
    run.sema:post(1)
  end
end

-- vpcep.safe's way: nil, err instead of raising.
local function safely(f)
  return function(...)
    local res = pack(pcall(f, ...))
    if res[1] then return unpack(res, 2, res.n) end
    return nil, res[2]
  end
end

local SafeClient = {}
SafeClient.__index = SafeClient
-- (each_connection: a bad call returns nil, err; a page that fails during
-- the loop raises, as the blocking safe client's)
for _, name in ipairs({ "accept", "reject", "connections", "describe", "prepare", "each_connection",
                        "reconcile", "info" }) do
  SafeClient[name] = safely(Client[name])
end
SafeClient.close = Client.close

local function new(opts, mt)
  local c = vpcep.new(opts)
  if opts.proxy ~= nil and not http.parse_proxy(opts.proxy) then
    c:close()
    -- (the value is not shown: it may hold a password)
    raise("vpcep.invalid_argument", "vpcep.resty: proxy must be http://[user:password@]host[:port]"
      .. " (cosockets go through a proxy with HTTP CONNECT only)")
  end
  local n = type(opts) == "table" and tonumber(opts.concurrency) or DEFAULT_CONCURRENCY
  -- _core: the C client, which vpcep.reconcile asks to check a listing's arguments
  return setmetatable({ c = c, _core = c, pool_size = n, runs = setmetatable({}, { __mode = "k" }) }, mt)
end

-- vpcep.resty.new(opts): the blocking client's options; validates, connects nowhere.
function M.new(opts)
  return new(opts, Client)
end

-- vpcep.resty.accept{ service_id=, endpoints=, wait=, max_endpoints=, <client options> }
local ONE_SHOT = { service_id = true, endpoints = true, wait = true, max_endpoints = true }

local function one_shot(method)
  return function(t)
    if type(t) ~= "table" then
      raise("vpcep.invalid_argument", "options must be a table, got " .. type(t))
    end
    local opts = {}
    for k, v in pairs(t) do
      if not ONE_SHOT[k] then opts[k] = v end
    end
    local client = M.new(opts)
    local res = pack(pcall(client[method], client, t.service_id, t.endpoints,
                           { wait = t.wait, max_endpoints = t.max_endpoints }))
    client:close()
    if not res[1] then error(res[2], 0) end
    return unpack(res, 2, res.n)
  end
end

M.accept = one_shot("accept")
M.reject = one_shot("reject")

-- vpcep.resty.safe: the same functions, returning nil, err instead of
-- raising; safe.new's client methods do the same.
M.safe = {
  new = safely(function(opts) return new(opts, SafeClient) end),
  accept = safely(M.accept),
  reject = safely(M.reject),
  parse = vpcep.safe.parse,
  sign = vpcep.safe.sign,
  is_error = vpcep.is_error,
}

return M
