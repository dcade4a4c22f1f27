-- vpcep.uv: the client for libuv event loops (Neovim's vim.loop, luv).
-- Every call returns at once; its callback runs later, on the loop.
--
--   local vpcep = require "vpcep.uv"
--   local client = vpcep.new(opts [, host])       -- opts: those of vpcep.new
--   client:accept(sid, ids [, opts], function(conns, err) end)
--   client:reject(sid, ids [, opts], function(conns, err) end)
--   client:connections(sid [, query], function(list, err, total) end)
--   client:describe(sid, { [id] = "text" } [, opts], function(conns, err) end)
--   client:reconcile(sid, policy [, opts], function(report, err) end)
--   client:each_connection(sid [, query], function(conn) end, function(n, err) end)
--   client:close()        -- calls in flight: callback(nil, err), err.code "vpcep.cancelled"
--
-- reconcile and each_connection are the blocking client's Lua part
-- (vpcep.reconcile) run in a coroutine over the calls above, which yields
-- while each call is out and resumes in its callback. each_connection
-- calls on_conn(conn) for every connection, one page fetched at a time (the
-- next only once on_conn has seen the last one's connections); on_conn
-- returning false stops the walk. on_done(n, nil) follows, n the count of
-- connections given to on_conn, or on_done(nil, err): the listing's error
-- object, or what on_conn raised (the walk stops there).
--
-- The callback is always the last argument, and its error always the
-- second parameter: (result, nil [, more results]) or (nil, err), err the
-- error object the blocking client raises.
--
-- host (all optional):
--   loop      the luv module to run on (default: vim.uv or vim.loop inside
--             Neovim, else require "luv")
--   schedule  function(fn) that runs fn where callbacks may run (default:
--             vim.schedule inside Neovim, else on the loop's next turn)
--   on_error  function(message) told of an error raised inside a callback
--             (default: vim.notify inside Neovim, else stderr)
--
-- The C module does the work: client:plan(...) is the call's policy
-- (retries, back-off, Retry-After, concurrency, wait, paging) and the
-- client's carrier (client:_carrier(), src/uv.c) carries its requests over
-- libcurl's multi socket interface. This file only watches the sockets and
-- the timers the carrier names, with the loop's poll and timer handles,
-- and hands back what the loop saw. No Lua runs inside libcurl.
local core = require "vpcep"
local flow = require "vpcep.reconcile"

local M = { _VERSION = core._VERSION, is_error = core.is_error, core = core }

local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

local function einval(message)
  return core._error("vpcep.invalid_argument", message)
end

-- luv's poll events for the carrier's `what` (1 readable, 2 writable)
local EVENTS = { "r", "w", "rw" }

local Client = {}
Client.__index = Client

local HOST_KEYS = { loop = true, schedule = true, on_error = true }

local function in_neovim()
  local vim = rawget(_G, "vim")
  return type(vim) == "table" and type(vim.schedule) == "function" and vim or nil
end

local function find_loop()
  local vim = in_neovim()
  if vim then return vim.uv or vim.loop end
  local ok, luv = pcall(require, "luv")
  if ok then return luv end
  error(einval("vpcep.uv: no libuv loop: outside Neovim, install luv (lua-luv) or pass { loop = ... }"), 3)
end

local function default_on_error(message)
  local vim = in_neovim()
  if vim then
    -- it may come from a loop callback, where the editor cannot be touched
    vim.schedule(function() vim.notify("vpcep: " .. message, vim.log.levels.ERROR) end)
  else
    io.stderr:write("vpcep: ", message, "\n")
  end
end

-- vpcep.new(opts [, host]) -> client
function M.new(opts, host)
  if host ~= nil and type(host) ~= "table" then
    error(einval("vpcep.uv.new: host must be a table, got " .. type(host)), 2)
  end
  host = host or {}
  for k in pairs(host) do
    if not HOST_KEYS[k] then error(einval("vpcep.uv.new: unknown host option '" .. tostring(k) .. "'"), 2) end
  end
  for _, k in ipairs({ "schedule", "on_error" }) do
    if host[k] ~= nil and type(host[k]) ~= "function" then
      error(einval("vpcep.uv.new: " .. k .. " must be a function"), 2)
    end
  end
  local loop = host.loop or find_loop()
  local vim = in_neovim()
  local c = core.new(opts)
  local self = setmetatable({
    _c = c,
    _carrier = c:_carrier(),
    _loop = loop,
    _schedule = host.schedule or (vim and vim.schedule) or nil,
    _on_error = host.on_error or default_on_error,
    _polls = {},    -- fd -> poll handle
    _calls = {},    -- plan -> call { op, cb, timer }
    _queue = {},    -- calls to step again
    _due = {},      -- callbacks to run on the loop's next turn (no schedule)
    _flows = {},    -- coroutine -> true: reconcile and each_connection running
    _flow_callbacks = setmetatable({}, { __mode = "k" }), -- the callbacks of their calls
    _closed = false,
  }, Client)
  self._on_curl_timer = function() self:_carry(self._carrier.timeout) end
  self._flush = function() self:_run_due() end
  return self
end

---------------------------------------------------------------------------
-- Callbacks: run later, where the host allows, each error reported once.

function Client:_report(message)
  local ok = pcall(self._on_error, message)
  if not ok then default_on_error(message) end
end

-- Runs fn on the loop's next turn (outside Neovim, without a schedule).
function Client:_later(fn)
  if self._schedule then return self._schedule(fn) end
  local due = self._due
  due[#due + 1] = fn
  if #due == 1 then
    self._later_timer = self._later_timer or self._loop.new_timer()
    self._later_timer:start(0, 0, self._flush)
  end
end

function Client:_run_due()
  local due = self._due
  self._due = {}
  for _, fn in ipairs(due) do fn() end
  -- an idle client holds no handle of the loop (which would keep it alive)
  if #self._due == 0 and self._later_timer then
    self._later_timer:close()
    self._later_timer = nil
  end
end

-- Calls the user's callback later with the n values in t.
function Client:_callback(cb, t, n)
  self:_later(function()
    local ok, err = xpcall(function() return cb(unpack(t, 1, n)) end, debug.traceback)
    if not ok then self:_report("error in a callback: " .. tostring(err)) end
  end)
end

---------------------------------------------------------------------------
-- The loop's handles, as the carrier asks.

function Client:_fatal(err)
  -- the carrier failed (out of memory): every call ends with that error
  self:_report("vpcep.uv stopped: " .. tostring(err))
  self:_shutdown(err)
end

-- Calls f(carrier, ...) and acts on what changed.
function Client:_carry(f, ...)
  if self._closed then return end
  local ok, watch, timer_ms, advanced = pcall(f, self._carrier, ...)
  if not ok then return self:_fatal(watch) end
  self:_apply(watch, timer_ms, advanced)
  self:_drain()
end

function Client:_on_poll(fd, err, events)
  local ev = err and 4 or 0
  if type(events) == "string" then
    if events:find("r", 1, true) then ev = ev + 1 end
    if events:find("w", 1, true) then ev = ev + 2 end
  end
  self:_carry(self._carrier.action, fd, ev == 0 and 4 or ev)
end

function Client:_watch(fd, what)
  local p = self._polls[fd]
  if what == 0 then
    if p then
      self._polls[fd] = nil
      p:stop()
      p:close()
    end
    return
  end
  if not p then
    local err
    p, err = self._loop.new_socket_poll(fd)
    if not p then
      -- the transfer runs into its timeout, which ends it
      return self:_report("vpcep.uv: cannot watch socket " .. fd .. ": " .. tostring(err))
    end
    self._polls[fd] = p
  end
  p:start(EVENTS[what], function(err, events) self:_on_poll(fd, err, events) end)
end

function Client:_curl_timer(ms)
  if ms < 0 then
    if self._timer then
      self._timer:close()
      self._timer = nil
    end
    return
  end
  self._timer = self._timer or self._loop.new_timer()
  self._timer:start(ms, 0, self._on_curl_timer)
end

function Client:_apply(watch, timer_ms, advanced)
  if watch then
    for k = 1, #watch, 2 do self:_watch(watch[k], watch[k + 1]) end
  end
  if timer_ms then self:_curl_timer(timer_ms) end
  for _, op in ipairs(advanced or {}) do
    local call = self._calls[op]
    if call then self._queue[#self._queue + 1] = call end
  end
end

---------------------------------------------------------------------------
-- A call: its plan stepped until it waits or is done.

function Client:_finish(call, ok, a, b)
  if self._calls[call.op] ~= call then return end
  self._calls[call.op] = nil
  if call.timer then
    call.timer:close()
    call.timer = nil
  end
  if not self._closed then
    -- a plan that failed midway may still have requests out
    local done, watch, timer_ms = pcall(self._carrier.cancel, self._carrier, call.op)
    if done then self:_apply(watch, timer_ms) end
  end
  if ok then
    self:_callback(call.cb, { a, nil, b }, b ~= nil and 3 or 1)
  else
    self:_callback(call.cb, { nil, a }, 2)
  end
end

function Client:_wake_in(call, seconds)
  call.timer = call.timer or self._loop.new_timer()
  call.timer:start(math.ceil(seconds * 1000), 0, function()
    self._queue[#self._queue + 1] = call
    self:_drain()
  end)
end

function Client:_step(call)
  local op = call.op
  while self._calls[op] == call do
    local ok, what, x = pcall(op.next, op)
    if not ok then return self:_finish(call, false, what) end
    if what == "send" then
      for _, i in ipairs(x) do
        local started, watch, timer_ms, advanced = pcall(self._carrier.start, self._carrier, op, i)
        if not started then return self:_finish(call, false, watch) end
        self:_apply(watch, timer_ms, advanced)
      end
    elseif what == "wait" then
      return self:_wake_in(call, x)
    else
      return self:_finish(call, pcall(op.result, op))
    end
  end
end

function Client:_drain()
  local queue = self._queue
  while #queue > 0 and not self._closed do
    self:_step(table.remove(queue, 1))
  end
end

-- client:accept / reject / connections / describe (sid, ..., callback)
local function method(name)
  return function(self, ...)
    local n = select("#", ...)
    local cb = n > 0 and select(n, ...) or nil
    if getmetatable(self) ~= Client then
      error(einval("expected a vpcep.uv client (use client:" .. name .. "(...), with a colon)"), 2)
    end
    if type(cb) ~= "function" then
      error(einval(name .. ": the last argument must be the callback, a function"), 2)
    end
    if self._closed then
      return self:_callback(cb, { nil, einval("this client is closed") }, 2)
    end
    local args = { ... }
    local ok, op = pcall(self._c.plan, self._c, name, unpack(args, 1, n - 1))
    if not ok then return self:_callback(cb, { nil, op }, 2) end
    local call = { op = op, cb = cb }
    self._calls[op] = call
    self:_step(call)
    self:_drain()
  end
end

Client.accept = method("accept")
Client.reject = method("reject")
Client.connections = method("connections")
Client.describe = method("describe")

-- client:info(callback): callback(info) with { auth=, project_id=,
-- region=, endpoint=, expires_at= } (no secret), or callback(nil, err).
-- What the source must fetch first is fetched on the loop.
local fetch_credentials = method("credentials")
function Client:info(cb)
  if getmetatable(self) ~= Client then
    error(einval("expected a vpcep.uv client (use client:info(...), with a colon)"), 2)
  end
  if type(cb) ~= "function" then error(einval("info: the argument must be the callback, a function"), 2) end
  fetch_credentials(self, function(_, err)
    if err then return cb(nil, err) end
    local ok, info = pcall(self._c.info, self._c)
    if ok then return cb(info) end
    return cb(nil, info)
  end)
end

---------------------------------------------------------------------------
-- reconcile and each_connection: vpcep.reconcile in a coroutine.

local function pack(...) return { n = select("#", ...), ... } end

-- The blocking-style client vpcep.reconcile takes, for code running in a
-- coroutine: each method starts the uv call and yields until its callback
-- calls resume(), then returns the results, or nil, err. It never raises
-- (reconcile.lua calls such a client without pcall, which Lua 5.1 cannot
-- yield across).
local function blocking_view(self, resume)
  local view = { _never_raises = true, _core = self._c }
  local function wrap(name)
    return function(_, ...)
      local n = select("#", ...)
      local args = { ... }
      local got, waiting
      local cb = function(...)
        got = pack(...)
        if waiting then
          waiting = false
          resume()
        end
      end
      self._flow_callbacks[cb] = true
      args[n + 1] = cb
      self[name](self, unpack(args, 1, n + 1))
      if not got then -- (the callback always comes later; this is for when it did not)
        waiting = true
        coroutine.yield()
      end
      if got[2] ~= nil then return nil, got[2] end
      return got[1], got[3]
    end
  end
  for _, name in ipairs({ "accept", "reject", "connections", "describe" }) do view[name] = wrap(name) end
  return view
end

-- Runs body(view) in a coroutine; done(results...) or done(nil, err) once
-- it ends, through the client's callbacks (its error ends the coroutine:
-- no pcall inside it, which Lua 5.1 could not yield across). Counted by
-- pending() meanwhile.
function Client:_flow(body, done)
  local flows = self._flows
  local co
  local function resume()
    local ok, r = coroutine.resume(co)
    if coroutine.status(co) ~= "dead" then return end
    flows[co] = nil
    if ok then
      self:_callback(done, r, r.n)
    else
      self:_callback(done, { nil, r }, 2)
    end
  end
  local view = blocking_view(self, resume)
  co = coroutine.create(function() return pack(body(view)) end)
  flows[co] = true
  resume()
end

-- The callback at the end of the arguments (raises when it is missing, as
-- every method does), and the arguments before it (as a table with n).
local function split_callback(self, name, nfuncs, ...)
  if getmetatable(self) ~= Client then
    error(einval("expected a vpcep.uv client (use client:" .. name .. "(...), with a colon)"), 3)
  end
  local n = select("#", ...)
  local args = { ... }
  for k = n - nfuncs + 1, n do
    if k < 1 or type(args[k]) ~= "function" then
      error(einval(name .. (nfuncs == 1 and ": the last argument must be the callback, a function"
        or ": the last two arguments must be functions (on_conn, on_done)")), 3)
    end
  end
  args.n = n - nfuncs
  return args, args[n - nfuncs + 1], args[n]
end

-- client:reconcile(sid, policy [, opts], function(report, err) end)
function Client:reconcile(...)
  local args, cb = split_callback(self, "reconcile", 1, ...)
  self:_flow(function(view) return flow.reconcile(view, unpack(args, 1, args.n)) end, cb)
end

-- client:each_connection(sid [, query], on_conn, on_done)
function Client:each_connection(...)
  local args, on_conn, on_done = split_callback(self, "each_connection", 2, ...)
  self:_flow(function(view)
    local next_conn = flow.each_connection(view, unpack(args, 1, args.n))
    local n = 0
    -- (a while loop: Lua 5.1 cannot yield from inside a for's iterator)
    while true do
      local conn = next_conn()
      if conn == nil then return n end
      n = n + 1
      -- what on_conn raises ends the coroutine, and so reaches on_done
      if on_conn(conn) == false then return n end
    end
  end, on_done)
end

---------------------------------------------------------------------------
-- Closing.

-- Ends every call with err (nil: vpcep.cancelled) and frees every handle.
function Client:_shutdown(err)
  if self._closed then return end
  self._closed = true
  pcall(self._carrier.cancel, self._carrier)
  for fd, p in pairs(self._polls) do
    self._polls[fd] = nil
    p:stop()
    p:close()
  end
  if self._timer then
    self._timer:close()
    self._timer = nil
  end
  self._c:close()
  self._queue = {}
  for _, call in pairs(self._calls) do
    self:_finish(call, false, err or core._error("vpcep.cancelled", "the client was closed before the call finished"))
  end
  if self._later_timer and #self._due == 0 then
    self._later_timer:close()
    self._later_timer = nil
  end
end

-- client:close(): calls in flight end with vpcep.cancelled; closing twice is fine.
function Client:close()
  self:_shutdown(nil)
end

-- How many calls are running (not yet handed to their callback).
function Client:pending()
  local n = 0
  -- a reconcile or each_connection counts once, not its calls
  for _, call in pairs(self._calls) do
    if not self._flow_callbacks[call.cb] then n = n + 1 end
  end
  for _ in pairs(self._flows) do n = n + 1 end
  return n
end

function Client:__tostring()
  return "vpcep.uv " .. tostring(self._c)
end

return M
